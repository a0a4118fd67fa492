//! tlog-proof files: parse, and a parsed file must re-serialize to itself.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(proof) = verifier::tlog_proof::TlogProof::parse(text) {
            let again = verifier::tlog_proof::TlogProof::parse(&proof.to_text()).expect("round trip");
            assert_eq!(again, proof);
        }
    }
});
