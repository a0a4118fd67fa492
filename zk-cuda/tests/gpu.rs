//! [`CudaEngine`] against `zk`'s [`CpuEngine`] on the same inputs. Needs
//! feature `cuda`; on a machine without a CUDA device every test prints
//! "no CUDA device: skipped" and passes.
#![cfg(feature = "cuda")]

use std::sync::OnceLock;

use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use zk::prover::engine::{CpuEngine, GroupEngine};
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
    let shape = ShapeBases::get(bits, parties);
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
    let shape = ShapeBases::get(8, 1);
    let s = vec![Scalar::ONE; shape.len() + 3];
    assert_eq!(engine.msm_public(&shape, &s), Err(BackendFailure::Shape));
    assert_eq!(engine.msm_public(&shape, &[]), Ok(Vec::new()));
}
