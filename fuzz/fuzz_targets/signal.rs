//! Signals and sources as the log receives them and as an auditor replays
//! them through the agent registry and the sources fold.
//! Body: `agent_ledger_fuzz::targets::signal` (shared with the stable engine).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = agent_ledger_fuzz::targets::signal(data);
});
