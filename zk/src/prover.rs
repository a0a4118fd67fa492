//! Proving (feature `prover`): predicate proofs from openings, and a pool
//! that proves many statements at once on every core.
//!
//! Soundness guard: the bulletproofs prover returns `Ok` for a value
//! outside the range and only verification fails. [`prove`] therefore
//! checks every predicate, and that every opening matches its commitment,
//! before it proves, and refuses with a typed error: a proof that cannot
//! verify is never produced.

use std::time::{Duration, Instant};

use curve25519_dalek::scalar::Scalar;
use rand_core::{CryptoRng, OsRng, RngCore, SeedableRng};
use rayon::prelude::*;

use crate::commit::Blinding;
use crate::error::BackendFailure;
use crate::predicate::Claim;
use crate::proof::{PredicateProof, Statement, ZkParams};
use crate::ZkError;

/// The secret side of a claim: the committed value and its blinding.
#[derive(Clone, Debug)]
pub struct Witness {
    /// The committed value.
    pub value: u64,
    /// Its blinding factor.
    pub blinding: Blinding,
}

/// Proves `claims` with one witness per claim, drawing prover randomness
/// from `rng`. With the same `rng` stream the proof bytes are identical.
pub fn prove_with_rng<R: RngCore + CryptoRng>(
    claims: &[Claim],
    witnesses: &[Witness],
    params: &ZkParams,
    rng: &mut R,
) -> Result<PredicateProof, ZkError> {
    prove_bound_with_rng(claims, witnesses, &[], params, rng)
}

/// [`prove_with_rng`] bound to `context` (what the proof is about, e.g. the
/// entry that carries it): it verifies only with
/// [`PredicateProof::verify_bound`] and the same context.
pub fn prove_bound_with_rng<R: RngCore + CryptoRng>(
    claims: &[Claim],
    witnesses: &[Witness],
    context: &[u8],
    params: &ZkParams,
    rng: &mut R,
) -> Result<PredicateProof, ZkError> {
    let statement = Statement::new(claims, context)?;
    if witnesses.len() != claims.len() {
        return Err(ZkError::ClaimCount { got: witnesses.len(), max: claims.len() });
    }
    let mut values = Vec::with_capacity(statement.commitments.len());
    let mut blindings = Vec::with_capacity(statement.commitments.len());
    for (claim, w) in claims.iter().zip(witnesses) {
        if !claim.commitment.is_opened_by(w.value, &w.blinding) {
            return Err(ZkError::OpeningMismatch { field: claim.field.clone() });
        }
        let p = claim.predicate;
        if !p.holds(w.value) {
            return Err(ZkError::PredicateFalse { field: claim.field.clone(), predicate: p.describe(&claim.field) });
        }
        values.push(w.value - p.lo);
        blindings.push(w.blinding.0);
        if p.values() == 2 {
            values.push(p.hi - w.value);
            blindings.push(-w.blinding.0);
        }
    }
    values.resize(statement.commitments.len(), 0);
    blindings.resize(statement.commitments.len(), Scalar::ZERO);
    let mut transcript = statement.transcript();
    let (proof, commitments) = bulletproofs::RangeProof::prove_multiple_with_rng(
        &params.bp,
        &params.pc,
        &mut transcript,
        &values,
        &blindings,
        statement.bits,
        rng,
    )
    .map_err(|_| ZkError::Backend(BackendFailure::Refused))?;
    for b in &mut blindings {
        zeroize::Zeroize::zeroize(b);
    }
    if commitments != statement.commitments {
        return Err(ZkError::Backend(BackendFailure::CommitmentsDiffer));
    }
    Ok(PredicateProof { bits: statement.bits as u8, proof })
}

/// [`prove_with_rng`] with fresh randomness from the OS.
pub fn prove(claims: &[Claim], witnesses: &[Witness], params: &ZkParams) -> Result<PredicateProof, ZkError> {
    prove_bound(claims, witnesses, &[], params)
}

/// [`prove_bound_with_rng`] with fresh randomness from the OS.
pub fn prove_bound(claims: &[Claim], witnesses: &[Witness], context: &[u8], params: &ZkParams) -> Result<PredicateProof, ZkError> {
    // One OS read per proof seeds a ChaCha stream for the hundreds of
    // blinding scalars a proof draws.
    let mut rng = rand_chacha::ChaCha20Rng::from_rng(OsRng).map_err(|_| ZkError::Backend(BackendFailure::Randomness))?;
    prove_bound_with_rng(claims, witnesses, context, params, &mut rng)
}

/// One statement to prove.
#[derive(Clone, Debug)]
pub struct ProofJob {
    /// The public claims.
    pub claims: Vec<Claim>,
    /// One witness per claim.
    pub witnesses: Vec<Witness>,
}

/// A proof with the time it took.
#[derive(Debug)]
pub struct Proved {
    /// The proof, or why it was refused.
    pub result: Result<PredicateProof, ZkError>,
    /// Time spent proving.
    pub latency: Duration,
}

/// A dedicated rayon pool for proofs, so proving never competes with the
/// caller's async runtime threads for its own queue.
#[derive(Debug)]
pub struct ProverPool {
    pool: rayon::ThreadPool,
}

impl ProverPool {
    /// A pool of `threads` workers (0 = one per core).
    pub fn new(threads: usize) -> Result<Self, ZkError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("zk-prover-{i}"))
            .build()
            .map_err(|_| ZkError::Backend(BackendFailure::Threads))?;
        Ok(Self { pool })
    }

    /// Worker count.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Proves every job in parallel; results in job order.
    pub fn prove_all(&self, jobs: &[ProofJob], params: &ZkParams) -> Vec<Proved> {
        self.pool.install(|| jobs.par_iter().map(|job| timed(|| prove(&job.claims, &job.witnesses, params))).collect())
    }

    /// Runs `task` on the pool and returns at once (the task reports its
    /// own result, e.g. through a channel).
    pub fn spawn<F: FnOnce() + Send + 'static>(&self, task: F) {
        self.pool.spawn(task);
    }

    /// Runs `f` inside the pool, so its rayon iterators use these workers.
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.pool.install(f)
    }
}

/// Runs a proving closure and measures it.
pub fn timed(f: impl FnOnce() -> Result<PredicateProof, ZkError>) -> Proved {
    let started = Instant::now();
    let result = f();
    Proved { result, latency: started.elapsed() }
}
