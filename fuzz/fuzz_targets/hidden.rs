//! Hidden fields: the spec of `POST /v1/hidden/commit` (the log commits
//! and proves, the openings must open what it committed), and entries
//! committed by the client with their openings (`POST /v1/entries`).
//! Body: `agent_ledger_fuzz::targets::hidden` (shared with the stable engine).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = agent_ledger_fuzz::targets::hidden(data);
});
