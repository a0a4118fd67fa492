//! Every range-prover backend returns bulletproofs 5.0's proof, byte for
//! byte, for the same RNG stream, and the unchanged verifier accepts it.

use std::sync::Arc;

use curve25519_dalek::scalar::Scalar;
use merlin::Transcript;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use zeroize::Zeroizing;
use zk::prover::{CpuEngine, DalekProver, LockstepProver, PrecomputedCpuProver, RangeJob, RangeOutput, RangeProver};

/// A statement drawn from `seed`: `m` values below `2^bits`.
struct Case {
    seed: u64,
    bits: usize,
    values: Vec<u64>,
    blindings: Vec<Scalar>,
}

impl Case {
    fn new(seed: u64, bits: usize, m: usize) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mask = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
        let values = (0..m)
            .map(|i| match (seed + i as u64) % 4 {
                0 => 0,
                1 => mask,
                _ => rng.next_u64() & mask,
            })
            .collect();
        let blindings = (0..m).map(|_| Scalar::random(&mut rng)).collect();
        Self { seed, bits, values, blindings }
    }

    fn transcript(&self) -> Transcript {
        let mut t = Transcript::new(b"zk backends test");
        t.append_u64(b"seed", self.seed);
        t
    }
}

/// `prover`'s results for `cases`, each with its own seeded RNG.
fn results(prover: &dyn RangeProver, cases: &[Case]) -> Vec<Result<RangeOutput, zk::BackendFailure>> {
    let mut rngs: Vec<ChaCha20Rng> = cases.iter().map(|c| ChaCha20Rng::seed_from_u64(c.seed ^ 0x5eed)).collect();
    let jobs = cases
        .iter()
        .zip(rngs.iter_mut())
        .map(|(c, rng)| RangeJob {
            transcript: c.transcript(),
            values: Zeroizing::new(c.values.clone()),
            blindings: Zeroizing::new(c.blindings.clone()),
            bits: c.bits,
            rng,
        })
        .collect();
    prover.prove(jobs)
}

fn prove_all(prover: &dyn RangeProver, cases: &[Case]) -> Vec<RangeOutput> {
    results(prover, cases).into_iter().map(|r| r.expect("proved")).collect()
}

fn check_same(cases: &[Case], backends: &[&dyn RangeProver]) {
    let reference = prove_all(&DalekProver, cases);
    let params = bulletproofs::BulletproofGens::new(64, 16);
    let pc = bulletproofs::PedersenGens::default();
    for (case, out) in cases.iter().zip(&reference) {
        out.proof.verify_multiple(&params, &pc, &mut case.transcript(), &out.commitments, case.bits).expect("the reference proof verifies");
    }
    for backend in backends {
        let got = prove_all(*backend, cases);
        for ((case, want), got) in cases.iter().zip(&reference).zip(&got) {
            assert_eq!(
                got.proof.to_bytes(),
                want.proof.to_bytes(),
                "{} differs from dalek: bits {} values {}",
                backend.name(),
                case.bits,
                case.values.len()
            );
            assert_eq!(got.commitments, want.commitments);
        }
    }
}

#[test]
fn every_shape_is_byte_identical() {
    let lockstep = LockstepProver::new(Arc::new(CpuEngine), 8);
    let mut seed = 0;
    for bits in [8, 16, 32, 64] {
        for m in [1, 2, 4, 8, 16] {
            let cases: Vec<Case> = (0..3)
                .map(|_| {
                    seed += 1;
                    Case::new(seed, bits, m)
                })
                .collect();
            check_same(&cases, &[&PrecomputedCpuProver, &lockstep]);
        }
    }
}

#[test]
fn many_random_64_bit_statements_in_mixed_batches() {
    // Mixed shapes in one call, more than one lockstep batch per shape.
    let cases: Vec<Case> = (0..40).map(|s| Case::new(1000 + s, [64, 8, 32][s as usize % 3], 1 << (s % 3))).collect();
    let lockstep = LockstepProver::new(Arc::new(CpuEngine), 5);
    check_same(&cases, &[&PrecomputedCpuProver, &lockstep]);
}

#[test]
fn refused_shapes_are_refused_by_every_backend() {
    let lockstep = LockstepProver::new(Arc::new(CpuEngine), 4);
    for backend in [&DalekProver as &dyn RangeProver, &PrecomputedCpuProver, &lockstep] {
        for (bits, m) in [(7, 1), (64, 3), (128, 1), (64, 32)] {
            let mut rng = ChaCha20Rng::seed_from_u64(1);
            let job = RangeJob {
                transcript: Transcript::new(b"t"),
                values: Zeroizing::new(vec![1; m]),
                blindings: Zeroizing::new(vec![Scalar::ONE; m]),
                bits,
                rng: &mut rng,
            };
            assert!(backend.prove(vec![job])[0].is_err(), "{} accepted bits {bits} m {m}", backend.name());
        }
    }
}

/// An engine that fails: an error from the round multiplications, too few
/// points from them, or an error from `commit_bits`.
#[derive(Debug)]
enum Broken {
    MsmError,
    MsmShort,
    BitsError,
}

impl zk::prover::GroupEngine for Broken {
    fn name(&self) -> &'static str {
        "broken"
    }

    fn msm_public(
        &self,
        bases: &zk::prover::gens::ShapeBases,
        scalars: &[Scalar],
    ) -> Result<Vec<curve25519_dalek::ristretto::CompressedRistretto>, zk::BackendFailure> {
        match self {
            Broken::MsmError => Err(zk::BackendFailure::Device),
            Broken::MsmShort => Ok(CpuEngine.msm_public(bases, scalars)?.into_iter().skip(1).collect()),
            Broken::BitsError => CpuEngine.msm_public(bases, scalars),
        }
    }

    fn commit_bits(
        &self,
        shape: &zk::prover::gens::ShapeBases,
        secrets: &[zk::prover::engine::BitSecrets<'_>],
    ) -> Result<Vec<[curve25519_dalek::ristretto::CompressedRistretto; 2]>, zk::BackendFailure> {
        match self {
            Broken::BitsError => Err(zk::BackendFailure::Device),
            _ => CpuEngine.commit_bits(shape, secrets),
        }
    }
}

#[test]
fn a_failing_engine_fails_its_proofs_with_device() {
    for broken in [Broken::MsmError, Broken::MsmShort, Broken::BitsError] {
        let name = format!("{broken:?}");
        let lockstep = LockstepProver::new(Arc::new(broken), 8);
        assert_eq!(lockstep.name(), "broken");
        let cases: Vec<Case> = (0..3).map(|s| Case::new(7000 + s, 32, 1)).chain([Case::new(7010, 8, 2)]).collect();
        let results = results(&lockstep, &cases);
        assert_eq!(results.len(), 4);
        assert!(results.iter().all(|r| matches!(r, Err(zk::BackendFailure::Device))), "{name}: {results:?}");
    }
}
