//! `POST /add-checkpoint` bodies, witness keys and cosigned notes.
//! Body: `agent_ledger_fuzz::targets::witness_request` (shared with the stable engine).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = agent_ledger_fuzz::targets::witness_request(data);
});
