//! `POST /v1/entries` without hidden fields: strict parsing and
//! canonicalization; an accepted entry's leaf decodes and is canonical.
//! Body: `agent_ledger_fuzz::targets::entry` (shared with the stable engine).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = agent_ledger_fuzz::targets::entry(data);
});
