//! The Rust SDK still seals entries as tests/vectors/sdk-sealed-entries.json
//! says (the Python package is held to the same file).
#![allow(clippy::unwrap_used)]

use rand_core::SeedableRng as _;
use serde_json::Value;

fn bytes32(hex: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

#[test]
fn sealed_entries_match_the_vectors() {
    let doc: Value = serde_json::from_str(include_str!("../../tests/vectors/sdk-sealed-entries.json")).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 3);
    for case in cases {
        let key = ed25519_dalek::SigningKey::from_bytes(&bytes32(case["key_seed"].as_str().unwrap()));
        let agent = verifier::AgentId::parse(case["agent"].as_str().unwrap()).unwrap();
        let mut rng = rand_chacha::ChaCha20Rng::from_seed(bytes32(case["rng_seed"].as_str().unwrap()));
        let sealed = ledger_client::seal_entry(
            case["entry"].clone(),
            case["origin"].as_str().unwrap(),
            &agent,
            case["seq"].as_u64().unwrap(),
            &key,
            &mut rng,
        )
        .unwrap();
        assert_eq!(sealed, case["sealed"], "case {}", case["seq"]);
        // The signature is the entry's, under the one verification rule.
        let signed = sealed.as_object().unwrap();
        let signature = verifier::entry::signing::parse_signature(signed["signature"].as_str().unwrap()).unwrap();
        let message = verifier::entry::signing::signing_message(case["origin"].as_str().unwrap(), signed);
        assert!(verifier::entry::signing::verify_signature(&key.verifying_key(), &message, &signature));
    }
}
