//! Frozen proofs (`tests/vectors/zk-predicate-proofs.json`, made once by
//! `examples/zk-vectors.rs`) must keep verifying, and stop verifying when
//! their statement changes.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use zk::commit::PedersenCommitment;
use zk::predicate::{Claim, Predicate};
use zk::{params, PredicateProof};

#[test]
fn frozen_predicate_proofs_verify() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors/zk-predicate-proofs.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 6);
    for (i, case) in cases.iter().enumerate() {
        let claims: Vec<Claim> = case["claims"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| Claim {
                field: c["field"].as_str().unwrap().into(),
                predicate: Predicate { lo: c["lo"].as_str().unwrap().parse().unwrap(), hi: c["hi"].as_str().unwrap().parse().unwrap() },
                commitment: PedersenCommitment::from_bytes(&hex::decode(c["commitment"].as_str().unwrap()).unwrap()).unwrap(),
            })
            .collect();
        let proof = PredicateProof::from_bytes(&hex::decode(case["proof"].as_str().unwrap()).unwrap()).unwrap();
        proof.verify(&claims, params()).unwrap_or_else(|e| panic!("case {i}: {e}"));
        let mut changed = claims.clone();
        changed[0].predicate.hi = changed[0].predicate.hi.wrapping_sub(1);
        assert!(proof.verify(&changed, params()).is_err(), "case {i} verifies a changed bound");
    }
}
