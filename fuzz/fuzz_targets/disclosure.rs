//! Predicate proofs and disclosure bundles: decoding and verifying never
//! panic; a decoded proof re-encodes to the same bytes.
//! Body: `agent_ledger_fuzz::targets::disclosure` (shared with the stable engine).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = agent_ledger_fuzz::targets::disclosure(data);
});
