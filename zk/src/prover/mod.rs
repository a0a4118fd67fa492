//! Proving (feature `prover`): predicate proofs from openings, the range
//! prover backends behind [`RangeProver`], and a pool that proves many
//! statements at once on every core.
//!
//! Soundness guard: the bulletproofs prover returns `Ok` for a value
//! outside the range and only verification fails. [`prove`] therefore
//! checks every predicate, and that every opening matches its commitment,
//! before it proves, and refuses with a typed error: a proof that cannot
//! verify is never produced.
//!
//! Backends ([`Backend`]): [`DalekProver`] (bulletproofs 5.0 itself),
//! [`PrecomputedCpuProver`] (the default: the same proofs, byte for byte,
//! from a fold-free inner-product argument over precomputed tables) and
//! [`LockstepProver`] (many proofs of one shape round by round, the group
//! work of each round in one call to a [`GroupEngine`], e.g. a GPU's).

use std::time::{Duration, Instant};

use curve25519_dalek::scalar::Scalar;
use rand_core::{CryptoRng, CryptoRngCore, OsRng, RngCore, SeedableRng};
use zeroize::Zeroizing;

use crate::commit::Blinding;
use crate::error::BackendFailure;
use crate::predicate::Claim;
use crate::proof::{PredicateProof, Statement, ZkParams};
use crate::ZkError;

mod backends;
pub mod engine;
mod fold_free;
pub mod gens;
mod range;

pub use backends::{Backend, DalekProver, LockstepProver, PrecomputedCpuProver, UnknownBackend};
pub use engine::{CpuEngine, GroupEngine};
pub use fold_free::ProfileTimes;
pub use range::{RangeJob, RangeOutput, RangeProver};

/// The range prover of the free functions here ([`prove`] and the
/// others, which the SDK's client-side commitments use):
/// [`PrecomputedCpuProver`]. The log chooses its own
/// (`ledger_core::ProverBackends`).
pub fn default_prover() -> &'static dyn RangeProver {
    &PrecomputedCpuProver
}

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
pub fn prove_with_rng<R: RngCore + CryptoRng + Send>(
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
pub fn prove_bound_with_rng<R: RngCore + CryptoRng + Send>(
    claims: &[Claim],
    witnesses: &[Witness],
    context: &[u8],
    params: &ZkParams,
    rng: &mut R,
) -> Result<PredicateProof, ZkError> {
    // Every backend proves over the generators of `params` (there is one
    // set: `ZkParams::new`).
    let _ = params;
    prove_bound_using(default_prover(), claims, witnesses, context, rng)
}

/// [`prove_bound_with_rng`] on a given backend.
pub fn prove_bound_using(
    prover: &dyn RangeProver,
    claims: &[Claim],
    witnesses: &[Witness],
    context: &[u8],
    rng: &mut (dyn CryptoRngCore + Send),
) -> Result<PredicateProof, ZkError> {
    let prepared = Prepared::new(claims, witnesses, context)?;
    let out = prover.prove(vec![prepared.job(rng)]).pop().unwrap_or(Err(BackendFailure::Refused));
    prepared.accept(out)
}

/// A checked statement and the range values it reduces to.
struct Prepared<'a> {
    statement: Statement<'a>,
    values: Zeroizing<Vec<u64>>,
    blindings: Zeroizing<Vec<Scalar>>,
}

impl<'a> Prepared<'a> {
    /// Checks every opening and predicate (the soundness guard) and
    /// reduces the claims to range values.
    fn new(claims: &'a [Claim], witnesses: &[Witness], context: &'a [u8]) -> Result<Self, ZkError> {
        let statement = Statement::new(claims, context)?;
        if witnesses.len() != claims.len() {
            return Err(ZkError::ClaimCount { got: witnesses.len(), max: claims.len() });
        }
        let mut values = Zeroizing::new(Vec::with_capacity(statement.commitments.len()));
        let mut blindings = Zeroizing::new(Vec::with_capacity(statement.commitments.len()));
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
        Ok(Self { statement, values, blindings })
    }

    fn job<'r>(&self, rng: &'r mut (dyn CryptoRngCore + Send)) -> RangeJob<'r> {
        RangeJob {
            transcript: self.statement.transcript(),
            values: self.values.clone(),
            blindings: self.blindings.clone(),
            bits: self.statement.bits,
            rng,
        }
    }

    fn accept(&self, out: Result<RangeOutput, BackendFailure>) -> Result<PredicateProof, ZkError> {
        let out = out.map_err(ZkError::Backend)?;
        if out.commitments != self.statement.commitments {
            return Err(ZkError::Backend(BackendFailure::CommitmentsDiffer));
        }
        Ok(PredicateProof { bits: self.statement.bits as u8, proof: out.proof })
    }
}

/// A ChaCha20 stream seeded from the OS: one OS read per proof for the
/// hundreds of blinding scalars a proof draws.
pub fn proof_rng() -> Result<rand_chacha::ChaCha20Rng, ZkError> {
    rand_chacha::ChaCha20Rng::from_rng(OsRng).map_err(|_| ZkError::Backend(BackendFailure::Randomness))
}

/// What one predicate proof is about: its claims, their witnesses, and
/// the context it is bound to.
pub type ProofItem<'a> = (&'a [Claim], &'a [Witness], &'a [u8]);

/// Proves every item on `prover` in one call, so that a batching backend
/// sees them together; fresh randomness per proof.
pub fn prove_many(prover: &dyn RangeProver, items: &[ProofItem<'_>]) -> Vec<Result<PredicateProof, ZkError>> {
    let mut out: Vec<Option<Result<PredicateProof, ZkError>>> = Vec::with_capacity(items.len());
    let mut ready = Vec::with_capacity(items.len());
    for (i, (claims, witnesses, context)) in items.iter().enumerate() {
        match Prepared::new(claims, witnesses, context).and_then(|p| Ok((p, proof_rng()?))) {
            Ok(p) => {
                out.push(None);
                ready.push((i, p));
            }
            Err(e) => out.push(Some(Err(e))),
        }
    }
    let jobs: Vec<RangeJob<'_>> = ready.iter_mut().map(|(_, (p, rng))| p.job(rng)).collect();
    let results = prover.prove(jobs);
    for ((i, (p, _)), r) in ready.iter().zip(results) {
        out[*i] = Some(p.accept(r));
    }
    out.into_iter().map(|r| r.unwrap_or(Err(ZkError::Backend(BackendFailure::Refused)))).collect()
}

/// [`prove_with_rng`] with fresh randomness from the OS.
pub fn prove(claims: &[Claim], witnesses: &[Witness], params: &ZkParams) -> Result<PredicateProof, ZkError> {
    prove_bound(claims, witnesses, &[], params)
}

/// [`prove_bound_with_rng`] with fresh randomness from the OS.
pub fn prove_bound(claims: &[Claim], witnesses: &[Witness], context: &[u8], params: &ZkParams) -> Result<PredicateProof, ZkError> {
    let mut rng = proof_rng()?;
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
    /// Time spent proving (by [`ProverPool::prove_all`]: the whole batch's).
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

    /// Proves every job on [`default_prover`] in one batch on the pool's
    /// workers; results in job order, each with the batch's time.
    pub fn prove_all(&self, jobs: &[ProofJob]) -> Vec<Proved> {
        self.prove_all_using(default_prover(), jobs)
    }

    /// [`ProverPool::prove_all`] on a given backend.
    pub fn prove_all_using(&self, prover: &dyn RangeProver, jobs: &[ProofJob]) -> Vec<Proved> {
        let items: Vec<ProofItem<'_>> = jobs.iter().map(|j| (j.claims.as_slice(), j.witnesses.as_slice(), &[][..])).collect();
        let started = Instant::now();
        let results = self.pool.install(|| prove_many(prover, &items));
        let latency = started.elapsed();
        results.into_iter().map(|result| Proved { result, latency }).collect()
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
