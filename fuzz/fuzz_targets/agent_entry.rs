//! Agent entries as the log receives them and as an auditor replays them:
//! one entry (passport, action, rotation, attestation), or an array of
//! leaves replayed through the agent's key chain, passport first.
//! Body: `agent_ledger_fuzz::targets::agent_entry` (shared with the stable engine).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = agent_ledger_fuzz::targets::agent_entry(data);
});
