//! Times single 64-bit predicate proofs on one thread, to compare
//! curve25519-dalek backends. Build it twice, in separate target
//! directories so neither build evicts the other:
//!
//! ```text
//! CARGO_TARGET_DIR=/var/tmp/agent-ledger-target-zk cargo run --release -p zk --example zk-speed
//! CARGO_TARGET_DIR=/var/tmp/agent-ledger-target-serial RUSTFLAGS='--cfg curve25519_dalek_backend="serial"' \
//!     cargo run --release -p zk --example zk-speed
//! ```
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use zk::commit::{Blinding, PedersenCommitment};
use zk::predicate::{Claim, Predicate};
use zk::prover::{prove, Witness};

fn main() {
    let n: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100);
    let params = zk::params();
    let blinding = Blinding::random(&mut rand_core::OsRng);
    let claims = vec![Claim { field: "x".into(), predicate: Predicate::ge(0), commitment: PedersenCommitment::commit(42, &blinding) }];
    let witnesses = vec![Witness { value: 42, blinding }];
    let proof = prove(&claims, &witnesses, params).unwrap();
    let start = Instant::now();
    for _ in 0..n {
        prove(&claims, &witnesses, params).unwrap();
    }
    let proving = start.elapsed() / n;
    let start = Instant::now();
    for _ in 0..n {
        proof.verify(&claims, params).unwrap();
    }
    let verifying = start.elapsed() / n;
    println!("backend: {}; one 64-bit proof: prove {proving:?}, verify {verifying:?} (mean of {n})", zk::curve_backend());
}
