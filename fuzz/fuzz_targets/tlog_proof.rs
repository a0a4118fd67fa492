//! c2sp.org/tlog-proof files: a parsed file re-serializes to itself and
//! verifies (or not) without panicking.
//! Body: `agent_ledger_fuzz::targets::tlog_proof` (shared with the stable engine).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = agent_ledger_fuzz::targets::tlog_proof(data);
});
