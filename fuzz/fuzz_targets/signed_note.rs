//! Verifier keys, signed notes and checkpoints (`/tlog/checkpoint`, the
//! checkpoint inside every proof file).
//! Body: `agent_ledger_fuzz::targets::signed_note` (shared with the stable engine).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = agent_ledger_fuzz::targets::signed_note(data);
});
