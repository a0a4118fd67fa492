//! Writes the frozen predicate-proof vectors to stdout:
//!
//! ```text
//! cargo run --release -p zk --example zk-vectors > tests/vectors/zk-predicate-proofs.json
//! ```
//!
//! Blindings and prover randomness come from ChaCha20 seeded with the fixed
//! seed below, so the file is reproducible with this version of the code.
//! Once checked in, the file is never regenerated: its proofs must keep
//! verifying (`zk/tests/vectors.rs`).
#![allow(clippy::unwrap_used)]

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{json, Value};
use zk::commit::{Blinding, PedersenCommitment};
use zk::predicate::{Claim, Predicate};
use zk::prover::{prove_with_rng, Witness};

const SEED: [u8; 32] = *b"agent-ledger zk vectors, v1 2026";

fn main() {
    let mut rng = ChaCha20Rng::from_seed(SEED);
    let cases: [&[(&str, u64, Predicate)]; 6] = [
        &[("amount", 1250, Predicate::le(10_000))],
        &[("age", 42, Predicate::ge(18))],
        &[("score", 70, Predicate { lo: 50, hi: 100 })],
        &[("balance", u64::MAX - 1, Predicate { lo: 1 << 40, hi: u64::MAX - 1 })],
        &[("amount", 0, Predicate::le(0)), ("age", 65, Predicate { lo: 18, hi: 65 })],
        &[
            ("a", 1, Predicate::le(1)),
            ("b", 2, Predicate::ge(2)),
            ("c", 300, Predicate { lo: 299, hi: 301 }),
            ("d", 1 << 33, Predicate::le(1 << 34)),
            ("e", 7, Predicate::ge(0)),
        ],
    ];
    let mut out = Vec::new();
    for case in cases {
        let mut claims = Vec::new();
        let mut witnesses = Vec::new();
        for &(field, value, predicate) in case {
            let blinding = Blinding::random(&mut rng);
            claims.push(Claim { field: field.into(), predicate, commitment: PedersenCommitment::commit(value, &blinding) });
            witnesses.push(Witness { value, blinding });
        }
        let proof = prove_with_rng(&claims, &witnesses, zk::params(), &mut rng).unwrap();
        proof.verify(&claims, zk::params()).unwrap();
        let claims: Vec<Value> = claims
            .iter()
            .map(|c| {
                json!({"field": c.field, "lo": c.predicate.lo.to_string(), "hi": c.predicate.hi.to_string(),
                       "commitment": hex::encode(c.commitment.to_bytes())})
            })
            .collect();
        out.push(json!({"claims": claims, "proof": hex::encode(proof.to_bytes())}));
    }
    let doc = json!({
        "description": "Frozen Agent Ledger predicate proofs (zk encoding v1). They must keep verifying.",
        "generated_by": "cargo run --release -p zk --example zk-vectors (zk 0.1.0, bulletproofs 5.0.0, curve25519-dalek 4.1.3)",
        "seed": String::from_utf8_lossy(&SEED),
        "cases": out,
    });
    println!("{}", serde_json::to_string_pretty(&doc).unwrap());
}
