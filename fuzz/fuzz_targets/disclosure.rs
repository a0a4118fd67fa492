//! Disclosure bundles and predicate proofs: decoding and verifying arbitrary
//! bytes must never panic; a decoded proof re-encodes to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(proof) = zk::PredicateProof::from_bytes(data) {
        assert_eq!(proof.to_bytes(), data);
    }
    if let Ok(bundle) = verifier::disclosure::DisclosureBundle::parse(data) {
        let key = verifier::VerifierKey::parse("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW").expect("key");
        let _ = verifier::disclosure::verify(&bundle, &verifier::NoteVerifier::new(key), zk::params());
    }
});
