//! Times single 64-bit predicate proofs on one thread, for every CPU
//! prover backend, and verification. To compare curve25519-dalek
//! backends, build it twice, in separate target directories so neither
//! build evicts the other:
//!
//! ```text
//! CARGO_TARGET_DIR=/var/tmp/agent-ledger-target-zk cargo run --release -p zk --example zk-speed
//! CARGO_TARGET_DIR=/var/tmp/agent-ledger-target-serial RUSTFLAGS='--cfg curve25519_dalek_backend="serial"' \
//!     cargo run --release -p zk --example zk-speed
//! ```
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use zk::commit::{Blinding, PedersenCommitment};
use zk::predicate::{Claim, Predicate};
use zk::prover::{prove, prove_bound_using, DalekProver, PrecomputedCpuProver, RangeProver, Witness};

fn main() {
    let n: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100);
    let params = zk::params();
    let blinding = Blinding::random(&mut rand_core::OsRng);
    let claims = vec![Claim { field: "x".into(), predicate: Predicate::ge(0), commitment: PedersenCommitment::commit(42, &blinding) }];
    let witnesses = vec![Witness { value: 42, blinding }];
    let proof = prove(&claims, &witnesses, params).unwrap();
    let time = |prover: &dyn RangeProver| -> Duration {
        let mut rng = rand_core::OsRng;
        prove_bound_using(prover, &claims, &witnesses, &[], &mut rng).unwrap();
        let start = Instant::now();
        for _ in 0..n {
            prove_bound_using(prover, &claims, &witnesses, &[], &mut rng).unwrap();
        }
        start.elapsed() / n
    };
    if std::env::var_os("ZK_SPEED_PRECOMPUTED_ONLY").is_some() {
        println!("precomputed {:?}", time(&PrecomputedCpuProver));
        return;
    }
    // Alternate the backends so drift on a shared machine hits both.
    let (mut dalek, mut pre) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..3 {
        dalek += time(&DalekProver) / 3;
        pre += time(&PrecomputedCpuProver) / 3;
    }
    let start = Instant::now();
    for _ in 0..n {
        proof.verify(&claims, params).unwrap();
    }
    let verifying = start.elapsed() / n;
    println!(
        "curve backend: {}; one 64-bit proof on one thread: dalek {dalek:?}, precomputed {pre:?} ({:.2}x); verify {verifying:?} (mean of {n})",
        zk::curve_backend(),
        dalek.as_secs_f64() / pre.as_secs_f64()
    );
}
