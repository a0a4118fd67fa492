//! Audit archives (`ledger-verify audit` reads them from a log's operator).
//! Body: `agent_ledger_fuzz::targets::archive` (shared with the stable engine).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = agent_ledger_fuzz::targets::archive(data);
});
