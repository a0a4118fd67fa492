//! The prover stage: a dedicated rayon pool for hidden-field proofs, and
//! the range-prover backends it runs ([`ProverBackends`]).
//!
//! A submission is authenticated first ([`super::admission::preverify`]);
//! only then are the openings and predicate proofs of its committed hidden
//! fields checked here ([`Prover::check_pending`]), so the sequencer never
//! waits on a proof and an unauthenticated caller never gets proof work
//! done. The same pool proves hidden values for `POST /v1/hidden/commit`
//! ([`Prover::commit_hidden`]) and for disclosures ([`Prover::prove`]).
//! Admission to the pool is bounded
//! ([`LogConfig::prover_queue`](crate::LogConfig)): beyond it submissions
//! get [`Error::ProverBusy`] (HTTP 503), never unbounded memory.
//!
//! **Batching.** `POST /v1/hidden/commit` requests go to one batcher
//! thread. It takes the first waiting request and, without waiting for
//! more, everything queued behind it (at most [`MAX_BATCH`]); the batch's
//! predicates are proven in one call: on the single-proof backend when
//! fewer than [`ProverBackends::batch_min`] wait (a lone request is proven
//! at once, as before), else on the batch backend (the lockstep prover,
//! on a GPU when there is one). Under load requests pile up while a batch
//! runs, so batches grow with the load.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};
use verifier::agent_id::AgentId;
use verifier::hidden::HiddenValue;
use zk::prover::{Backend, CpuEngine, LockstepProver, PrecomputedCpuProver, ProverPool, RangeProver, Witness};

use super::sequencer::CommitObserver;
use crate::entry::{EntryError, NewEntry, PendingEntry};
use crate::hidden::{CommitJob, CommittedHidden};
use crate::Error;

/// Most commit requests proven in one batch.
pub const MAX_BATCH: usize = 1024;

/// The range provers the stage runs: one for single proofs (and for
/// disclosures and the SDK in this process, through
/// [`zk::prover::install`]), one for batches.
#[derive(Clone, Debug)]
pub struct ProverBackends {
    /// The backend asked for.
    pub chosen: Backend,
    /// Proves single proofs and small batches.
    pub single: Arc<dyn RangeProver>,
    /// Proves batches of at least [`Self::batch_min`].
    pub batch: Arc<dyn RangeProver>,
    /// Smallest batch sent to [`Self::batch`].
    pub batch_min: usize,
    /// Why the batch backend is not the one asked for (e.g. no GPU), if so.
    pub fallback: Option<String>,
}

impl ProverBackends {
    /// The provers for `backend`: `dalek` and `precomputed` prove
    /// everything themselves; `lockstep-cpu` and `cuda` prove single
    /// proofs on the precomputed CPU prover and batches in lockstep (on
    /// the GPU for `cuda`). Without a usable GPU (or without the `cuda`
    /// feature) `cuda` falls back to `lockstep-cpu`, or, when `strict`,
    /// refuses with [`Error::Config`].
    pub fn new(backend: Backend, batch_min: usize, strict: bool) -> Result<Self, Error> {
        let lockstep_cpu = || Arc::new(LockstepProver::new(Arc::new(CpuEngine), MAX_BATCH)) as Arc<dyn RangeProver>;
        let (single, batch, fallback): (Arc<dyn RangeProver>, Arc<dyn RangeProver>, Option<String>) = match backend {
            Backend::Dalek => (Arc::new(zk::prover::DalekProver), Arc::new(zk::prover::DalekProver), None),
            Backend::Precomputed => (Arc::new(PrecomputedCpuProver), Arc::new(PrecomputedCpuProver), None),
            Backend::LockstepCpu => (Arc::new(PrecomputedCpuProver), lockstep_cpu(), None),
            Backend::Cuda => match cuda_engine() {
                Ok(engine) => (Arc::new(PrecomputedCpuProver), Arc::new(LockstepProver::new(engine, MAX_BATCH)), None),
                Err(why) if strict => return Err(Error::Config(format!("prover backend cuda: {why}"))),
                Err(why) => (Arc::new(PrecomputedCpuProver), lockstep_cpu(), Some(why)),
            },
        };
        Ok(Self { chosen: backend, single, batch, batch_min: batch_min.max(2), fallback })
    }
}

impl Default for ProverBackends {
    fn default() -> Self {
        Self {
            chosen: Backend::Precomputed,
            single: Arc::new(PrecomputedCpuProver),
            batch: Arc::new(PrecomputedCpuProver),
            batch_min: 32,
            fallback: None,
        }
    }
}

#[cfg(feature = "cuda")]
fn cuda_engine() -> Result<Arc<dyn zk::prover::GroupEngine>, String> {
    zk_cuda::CudaEngine::new().map(|e| Arc::new(e) as Arc<dyn zk::prover::GroupEngine>).map_err(|e| e.to_string())
}

#[cfg(not(feature = "cuda"))]
fn cuda_engine() -> Result<Arc<dyn zk::prover::GroupEngine>, String> {
    Err("this build has no CUDA support (build with --features cuda)".into())
}

/// Most `POST /v1/hidden/commit` proofs one agent may have in flight: one
/// agent cannot take the whole prover pool from the others.
pub const MAX_COMMITS_IN_FLIGHT_PER_AGENT: usize = 2;

/// The prover pool and its admission control.
pub(crate) struct Prover {
    pool: Arc<ProverPool>,
    backends: ProverBackends,
    /// Commit requests for the batcher thread.
    batcher: std::sync::mpsc::Sender<CommitRequest>,
    slots: Arc<Semaphore>,
    capacity: usize,
    depth: Arc<AtomicUsize>,
    /// Commit proofs in flight, by agent.
    committing: Arc<Mutex<HashMap<AgentId, usize>>>,
    /// What a pushed-back caller is told to wait.
    retry_after: Duration,
    observer: Option<Arc<dyn CommitObserver>>,
}

impl Prover {
    pub(crate) fn new(
        threads: usize,
        capacity: usize,
        retry_after: Duration,
        backends: ProverBackends,
        observer: Option<Arc<dyn CommitObserver>>,
    ) -> Result<Self, Error> {
        let pool = Arc::new(ProverPool::new(threads).map_err(|e| Error::Config(e.to_string()))?);
        let capacity = capacity.clamp(1, Semaphore::MAX_PERMITS);
        let (batcher, requests) = std::sync::mpsc::channel();
        let depth = Arc::new(AtomicUsize::new(0));
        let batcher_state =
            Batcher { pool: Arc::clone(&pool), backends: backends.clone(), depth: Arc::clone(&depth), observer: observer.clone() };
        std::thread::Builder::new()
            .name("zk-batcher".into())
            .spawn(move || batcher_state.run(requests))
            .map_err(|e| Error::Config(format!("prover batcher thread: {e}")))?;
        Ok(Self {
            pool,
            backends,
            batcher,
            slots: Arc::new(Semaphore::new(capacity)),
            capacity,
            depth,
            committing: Arc::default(),
            retry_after,
            observer,
        })
    }

    /// Prover threads.
    pub(crate) fn threads(&self) -> usize {
        self.pool.threads()
    }

    /// The backends in use.
    pub(crate) fn backends(&self) -> &ProverBackends {
        &self.backends
    }

    /// Entries waiting for or in the prover.
    pub(crate) fn depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    fn busy(&self) -> Error {
        Error::ProverBusy { retry_after: self.retry_after }
    }

    /// Checks the openings and proofs of committed entries of the log
    /// `origin` on the pool, in parallel.
    pub(crate) async fn check_pending(&self, origin: &str, jobs: Vec<PendingEntry>) -> Result<Vec<NewEntry>, Error> {
        let n = jobs.len();
        if n > self.capacity {
            return Err(Error::TooManyHidden { entries: n, max: self.capacity });
        }
        let permit = Arc::clone(&self.slots).try_acquire_many_owned(n as u32).map_err(|_| self.busy())?;
        self.depth.fetch_add(n, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let (pool, depth, observer) = (Arc::clone(&self.pool), Arc::clone(&self.depth), self.observer.clone());
        let origin = origin.to_owned();
        self.pool.spawn(move || {
            let results: Vec<Result<NewEntry, EntryError>> = pool.install(|| {
                jobs.into_par_iter()
                    .map(|job| {
                        let started = Instant::now();
                        let result = job.check(&origin, zk::params());
                        if let Some(obs) = &observer {
                            obs.proved(started.elapsed(), "verify");
                        }
                        depth.fetch_sub(1, Ordering::Relaxed);
                        result
                    })
                    .collect()
            });
            drop(permit);
            let _ = tx.send(results);
        });
        let results = rx.await.map_err(|_| Error::ShuttingDown)?;
        results.into_iter().map(|r| r.map_err(Error::from)).collect()
    }

    /// Commits hidden values for `agent`'s entry `seq` and proves their
    /// predicates (the caller has checked the agent may write `seq`), in
    /// the batcher's next batch.
    pub(crate) async fn commit_hidden(
        &self,
        origin: &str,
        agent: &AgentId,
        seq: u64,
        hidden: BTreeMap<String, HiddenValue>,
        self_check: bool,
    ) -> Result<CommittedHidden, Error> {
        let slot = CommitSlot::take(&self.committing, agent).ok_or_else(|| self.busy())?;
        let permit = Arc::clone(&self.slots).try_acquire_owned().map_err(|_| self.busy())?;
        self.depth.fetch_add(1, Ordering::Relaxed);
        let (reply, rx) = oneshot::channel();
        let request =
            CommitRequest { origin: origin.to_owned(), agent: agent.clone(), seq, hidden, self_check, reply, held: (permit, slot) };
        if self.batcher.send(request).is_err() {
            self.depth.fetch_sub(1, Ordering::Relaxed);
            return Err(Error::ShuttingDown);
        }
        Ok(rx.await.map_err(|_| Error::ShuttingDown)??)
    }

    /// Proves `claims` about `witnesses`, bound to `context`, and checks the
    /// proof before handing it out (disclosures).
    pub(crate) async fn prove(
        &self,
        claims: Vec<zk::predicate::Claim>,
        witnesses: Vec<Witness>,
        context: Vec<u8>,
    ) -> Result<zk::PredicateProof, Error> {
        let permit = Arc::clone(&self.slots).try_acquire_owned().map_err(|_| self.busy())?;
        let (tx, rx) = oneshot::channel();
        let (observer, single) = (self.observer.clone(), Arc::clone(&self.backends.single));
        self.pool.spawn(move || {
            let proved = zk::prover::timed(|| {
                let mut rng = zk::prover::proof_rng()?;
                let proof = zk::prover::prove_bound_using(single.as_ref(), &claims, &witnesses, &context, &mut rng)?;
                proof.verify_bound(&claims, &context, zk::params()).map(|()| proof)
            });
            if let Some(obs) = &observer {
                obs.proved(proved.latency, single.name());
            }
            drop(permit);
            let _ = tx.send(proved.result);
        });
        match rx.await.map_err(|_| Error::ShuttingDown)? {
            Ok(proof) => Ok(proof),
            Err(zk::ZkError::ProofInvalid) => Err(Error::Entry(EntryError::ProofSelfCheck)),
            Err(e) => Err(Error::Entry(EntryError::Predicate(e))),
        }
    }
}

/// One `POST /v1/hidden/commit` waiting for the batcher.
struct CommitRequest {
    origin: String,
    agent: AgentId,
    seq: u64,
    hidden: BTreeMap<String, HiddenValue>,
    self_check: bool,
    reply: oneshot::Sender<Result<CommittedHidden, EntryError>>,
    /// Released when the request is answered.
    held: (OwnedSemaphorePermit, CommitSlot),
}

/// The batcher thread's state.
struct Batcher {
    pool: Arc<ProverPool>,
    backends: ProverBackends,
    depth: Arc<AtomicUsize>,
    observer: Option<Arc<dyn CommitObserver>>,
}

impl Batcher {
    /// Until every sender is gone: take what waits, prove it as one batch.
    fn run(self, requests: std::sync::mpsc::Receiver<CommitRequest>) {
        while let Ok(first) = requests.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match requests.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            self.pool.install(|| self.prove(batch));
        }
    }

    fn prove(&self, batch: Vec<CommitRequest>) {
        let started = Instant::now();
        let jobs: Vec<Result<CommitJob, EntryError>> =
            batch.par_iter().map(|r| CommitJob::prepare(&r.origin, &r.agent, r.seq, &r.hidden)).collect();
        let statements: Vec<(&[zk::predicate::Claim], &[Witness], &[u8])> =
            jobs.iter().filter_map(|j| j.as_ref().ok()?.statement()).collect();
        let prover = match statements.len() >= self.backends.batch_min {
            true => &self.backends.batch,
            false => &self.backends.single,
        };
        let mut proofs = zk::prover::prove_many(prover.as_ref(), &statements).into_iter();
        let with_proofs: Vec<(Result<CommitJob, EntryError>, Option<_>)> = jobs
            .into_iter()
            .map(|job| {
                let proof = match &job {
                    Ok(j) if j.statement().is_some() => proofs.next(),
                    _ => None,
                };
                (job, proof)
            })
            .collect();
        let latency = started.elapsed();
        with_proofs.into_par_iter().zip(batch).for_each(|((job, proof), request)| {
            let result = job.and_then(|j| j.finish(proof, zk::params(), request.self_check));
            if let Some(obs) = &self.observer {
                obs.proved(latency, prover.name());
            }
            self.depth.fetch_sub(1, Ordering::Relaxed);
            let CommitRequest { reply, held, .. } = request;
            drop(held);
            let _ = reply.send(result);
        });
    }
}

/// One agent's commit proof in flight; released when dropped.
struct CommitSlot {
    agent: AgentId,
    committing: Arc<Mutex<HashMap<AgentId, usize>>>,
}

impl CommitSlot {
    fn take(committing: &Arc<Mutex<HashMap<AgentId, usize>>>, agent: &AgentId) -> Option<Self> {
        let mut map = committing.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(agent.clone()).or_insert(0);
        if *n >= MAX_COMMITS_IN_FLIGHT_PER_AGENT {
            return None;
        }
        *n += 1;
        Some(Self { agent: agent.clone(), committing: Arc::clone(committing) })
    }
}

impl Drop for CommitSlot {
    fn drop(&mut self) {
        let mut map = self.committing.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.agent) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.agent);
            }
        }
    }
}
