//! [`CudaEngine`] against `zk`'s [`CpuEngine`] on the same inputs:
//! `msm_public`, and `commit_bits` (the constant-time secret path) against
//! `commit_bits_cpu`. Needs feature `cuda`; on a machine without a CUDA
//! device every test prints "no CUDA device: skipped" and passes, unless
//! `ZK_CUDA_REQUIRE_GPU` is set (as `scripts/gpu-bench.sh run` does), when
//! a missing device fails them.
#![cfg(feature = "cuda")]

mod bit_secrets;

use std::sync::OnceLock;

use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use zk::prover::engine::{BitSecrets, CpuEngine, GroupEngine};
use zk::prover::gens::ShapeBases;
use zk::BackendFailure;
use zk_cuda::CudaEngine;

/// One engine for the whole test binary: a context and module load each
/// (PTX JIT included) are slow.
fn engine() -> Option<&'static CudaEngine> {
    static ENGINE: OnceLock<Option<CudaEngine>> = OnceLock::new();
    let e = ENGINE.get_or_init(|| match CudaEngine::new() {
        Ok(e) => {
            println!("cuda device: {}", e.device_name());
            Some(e)
        }
        Err(e) if std::env::var_os("ZK_CUDA_REQUIRE_GPU").is_some() => {
            panic!("ZK_CUDA_REQUIRE_GPU is set but the engine did not start: {e}")
        }
        Err(e) => {
            println!("no CUDA device: skipped ({e})");
            None
        }
    });
    e.as_ref()
}

/// `rows` rows over `width` bases: special rows first (all zero, 0/1/−1,
/// all −1), then rows with about half their scalars zero, like the
/// prover's.
fn scalars(width: usize, rows: usize, seed: u64) -> Vec<Scalar> {
    let mut r = ChaCha20Rng::seed_from_u64(seed);
    (0..rows)
        .flat_map(|row| {
            (0..width)
                .map(|i| match row {
                    0 => Scalar::ZERO,
                    1 => [Scalar::ZERO, Scalar::ONE, -Scalar::ONE][i % 3],
                    2 => -Scalar::ONE,
                    _ if r.gen_bool(0.5) => Scalar::ZERO,
                    _ => Scalar::random(&mut r),
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn matches_cpu(engine: &CudaEngine, bits: usize, parties: usize, rows: usize) {
    let shape = ShapeBases::get(bits, parties).expect("a bulletproofs shape");
    let s = scalars(shape.len(), rows, (bits * 100 + parties) as u64);
    let want = CpuEngine.msm_public(&shape, &s).expect("cpu");
    let got = engine.msm_public(&shape, &s).expect("cuda");
    assert_eq!(got.len(), rows);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "row {i} of shape ({bits}, {parties})");
    }
    assert_eq!(got[0], RistrettoPoint::identity().compress());
}

#[test]
fn msm_matches_the_cpu_engine() {
    let Some(engine) = engine() else { return };
    assert_eq!(engine.name(), "cuda");
    matches_cpu(engine, 64, 1, 128);
    matches_cpu(engine, 8, 2, 40);
    matches_cpu(engine, 32, 4, 64);
    // Second use of a shape: the cached table, new scalars.
    matches_cpu(engine, 64, 1, 7);
    // More rows than the engine's first buffers hold.
    matches_cpu(engine, 64, 1, 600);
}

#[test]
fn concurrent_callers_get_their_own_rows() {
    let Some(engine) = engine() else { return };
    std::thread::scope(|t| {
        for (bits, parties, rows) in [(16, 1, 33), (8, 4, 65), (16, 1, 17)] {
            t.spawn(move || matches_cpu(engine, bits, parties, rows));
        }
    });
}

#[test]
fn msm_rejects_ragged_rows() {
    let Some(engine) = engine() else { return };
    let shape = ShapeBases::get(8, 1).expect("a bulletproofs shape");
    let s = vec![Scalar::ONE; shape.len() + 3];
    assert_eq!(engine.msm_public(&shape, &s), Err(BackendFailure::Shape));
    assert_eq!(engine.msm_public(&shape, &[]), Ok(Vec::new()));
}

fn commit_bits_match_cpu(engine: &CudaEngine, bits: usize, parties: usize, proofs: usize) {
    let shape = ShapeBases::get(bits, parties).expect("a bulletproofs shape");
    let owned = bit_secrets::proofs(&shape, proofs, (bits * 1000 + parties * 10 + proofs) as u64);
    let secrets: Vec<BitSecrets<'_>> = owned.iter().map(|o| o.borrow()).collect();
    // The trait's default: commit_bits_cpu on every proof.
    let want = CpuEngine.commit_bits(&shape, &secrets).expect("cpu");
    let got = engine.commit_bits(&shape, &secrets).expect("cuda");
    assert_eq!(got.len(), proofs);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "[A, S] of proof {i} of shape ({bits}, {parties})");
    }
    assert_eq!(got[0][1], RistrettoPoint::identity().compress(), "all-zero secrets: S is the identity");
}

#[test]
fn commit_bits_matches_commit_bits_cpu() {
    let Some(engine) = engine() else { return };
    commit_bits_match_cpu(engine, 64, 1, 300);
    commit_bits_match_cpu(engine, 8, 2, 40);
    commit_bits_match_cpu(engine, 32, 4, 24);
    // The cached secret tables, after a call that used more buffer; then
    // the public path over the buffers commit_bits zeroed.
    commit_bits_match_cpu(engine, 64, 1, 3);
    matches_cpu(engine, 64, 1, 5);
    commit_bits_match_cpu(engine, 64, 1, 1);
}

#[test]
fn commit_bits_rejects_secrets_of_another_shape() {
    let Some(engine) = engine() else { return };
    let shape = ShapeBases::get(8, 2).expect("a bulletproofs shape");
    let owned = bit_secrets::proofs(&shape, 2, 5);
    let short = owned[1].truncated();
    assert_eq!(engine.commit_bits(&shape, &[owned[0].borrow(), short.borrow()]), Err(BackendFailure::Shape));
    let other = ShapeBases::get(8, 1).expect("a bulletproofs shape");
    assert_eq!(engine.commit_bits(&other, &[owned[0].borrow()]), Err(BackendFailure::Shape));
    assert_eq!(engine.commit_bits(&shape, &[]), Ok(Vec::new()));
}

#[test]
fn profile_counts_calls_and_time() {
    let Some(engine) = engine() else { return };
    let shape = ShapeBases::get(8, 1).expect("a bulletproofs shape");
    engine.prepare(&shape).expect("tables");
    let owned = bit_secrets::proofs(&shape, 4, 6);
    let secrets: Vec<BitSecrets<'_>> = owned.iter().map(|o| o.borrow()).collect();
    let before = engine.profile();
    engine.msm_public(&shape, &scalars(shape.len(), 4, 9)).expect("msm");
    engine.commit_bits(&shape, &secrets).expect("commit_bits");
    let after = engine.profile();
    // Other tests share the engine: at least this test's calls.
    assert!(after.msm_calls > before.msm_calls && after.msm_time > before.msm_time, "{before:?} → {after:?}");
    assert!(after.bits_calls > before.bits_calls && after.bits_time > before.bits_time, "{before:?} → {after:?}");
}
