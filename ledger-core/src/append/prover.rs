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
//! predicates are proven together: when fewer than
//! [`ProverBackends::batch_min`] of them declare predicates, one by one on
//! the single-proof backend, each answered when its own proof is done;
//! else in one call to the batch backend (the lockstep prover, on a GPU
//! when there is one). Under load requests pile up while a batch runs, so
//! batches grow with the load.

use std::collections::{BTreeMap, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};
use verifier::agent_id::AgentId;
use verifier::hidden::HiddenValue;
use zk::prover::{ProverPool, Witness};

use super::sequencer::CommitObserver;
use crate::entry::{EntryError, NewEntry, PendingEntry};
use crate::hidden::{CommitJob, CommittedHidden};
use crate::prover_backends::{ProverBackends, MAX_BATCH};
use crate::Error;

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
        let (observer, single) = (self.observer.clone(), Arc::clone(self.backends.single()));
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
            self.pool.install(|| self.serve(batch));
        }
    }

    /// Commits, proves and answers `batch`: one by one on the single-proof
    /// backend (each answered as soon as its proof is done) when fewer than
    /// `batch_min` of them declare predicates, else all in one call to the
    /// batch backend. Proofs the batch backend fails on (e.g. the GPU) are
    /// made again on the single-proof backend. A panic answers its requests
    /// with an internal error and leaves the batcher running.
    fn serve(&self, batch: Vec<CommitRequest>) {
        let jobs: Vec<(CommitRequest, Result<CommitJob, EntryError>)> = batch
            .into_par_iter()
            .map(|r| {
                let job = guarded(|| CommitJob::prepare(&r.origin, &r.agent, r.seq, &r.hidden));
                (r, job)
            })
            .collect();
        let proving = jobs.iter().filter(|(_, j)| j.as_ref().is_ok_and(|j| j.statement().is_some())).count();
        if proving < self.backends.batch_min() {
            let single = self.backends.single();
            jobs.into_par_iter().for_each(|(request, job)| {
                let started = Instant::now();
                let mut proven = false;
                let result = guarded(|| {
                    let job = job?;
                    let proof = job.statement().map(|(claims, witnesses, context)| {
                        proven = true;
                        zk::prover::prove_many(single.as_ref(), &[(claims, witnesses, context)]).pop().unwrap_or(Err(PANICKED))
                    });
                    job.finish(proof, zk::params(), request.self_check)
                });
                self.answer(request, result, proven.then(|| (started.elapsed(), single.name())));
            });
            return;
        }
        let started = Instant::now();
        let batch_prover = self.backends.batch();
        let proofs: Vec<Option<Result<zk::PredicateProof, zk::ZkError>>> = {
            let statements: Vec<(usize, zk::prover::ProofItem<'_>)> =
                jobs.iter().enumerate().filter_map(|(i, (_, j))| Some((i, j.as_ref().ok()?.statement()?))).collect();
            let items: Vec<_> = statements.iter().map(|(_, s)| *s).collect();
            let mut proofs = std::panic::catch_unwind(AssertUnwindSafe(|| zk::prover::prove_many(batch_prover.as_ref(), &items)))
                .unwrap_or_else(|_| items.iter().map(|_| Err(PANICKED)).collect());
            let failed: Vec<usize> = (0..proofs.len()).filter(|&k| matches!(proofs[k], Err(zk::ZkError::Backend(_)))).collect();
            if !failed.is_empty() {
                let why = proofs[failed[0]].as_ref().err().map(ToString::to_string).unwrap_or_default();
                tracing::warn!(backend = batch_prover.name(), failed = failed.len(), reason = %why, "batch prover failed; proving again on the CPU");
                let again: Vec<_> = failed.iter().map(|&k| items[k]).collect();
                let single = self.backends.single();
                let redone = std::panic::catch_unwind(AssertUnwindSafe(|| zk::prover::prove_many(single.as_ref(), &again)))
                    .unwrap_or_else(|_| again.iter().map(|_| Err(PANICKED)).collect());
                for (k, r) in failed.into_iter().zip(redone) {
                    proofs[k] = r;
                }
            }
            let mut by_job: Vec<Option<_>> = (0..jobs.len()).map(|_| None).collect();
            for ((i, _), proof) in statements.iter().zip(proofs) {
                by_job[*i] = Some(proof);
            }
            by_job
        };
        let latency = started.elapsed();
        jobs.into_par_iter().zip(proofs).for_each(|((request, job), proof)| {
            let proven = proof.is_some().then_some((latency, batch_prover.name()));
            let result = guarded(|| job?.finish(proof, zk::params(), request.self_check));
            self.answer(request, result, proven);
        });
    }

    /// Answers one request (`proved`: how long its proof took, and on
    /// which backend) and releases its slots.
    fn answer(&self, request: CommitRequest, result: Result<CommittedHidden, EntryError>, proved: Option<(Duration, &'static str)>) {
        if let (Some(obs), Some((latency, backend))) = (&self.observer, proved) {
            obs.proved(latency, backend);
        }
        self.depth.fetch_sub(1, Ordering::Relaxed);
        let CommitRequest { reply, held, .. } = request;
        drop(held);
        let _ = reply.send(result);
    }
}

/// What a proof whose prover panicked is answered with (an internal error).
const PANICKED: zk::ZkError = zk::ZkError::Backend(zk::BackendFailure::Panicked);

/// Runs `f`, turning a panic into [`PANICKED`] (logged).
fn guarded<T>(f: impl FnOnce() -> Result<T, EntryError>) -> Result<T, EntryError> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        tracing::error!("the prover panicked; the request is answered with an internal error");
        Err(EntryError::Predicate(PANICKED))
    })
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use zk::predicate::Predicate;
    use zk::prover::{PrecomputedCpuProver, RangeJob, RangeOutput, RangeProver};
    use zk::{BackendFailure, ZkError};

    use super::*;

    /// Records the size of every call; fails with `Device` or panics when
    /// told to, else proves on the precomputed prover.
    #[derive(Debug, Default)]
    struct Recording {
        calls: Mutex<Vec<usize>>,
        fail: AtomicBool,
        panic: AtomicBool,
    }

    impl RangeProver for Recording {
        fn name(&self) -> &'static str {
            "recording"
        }

        fn prove(&self, jobs: Vec<RangeJob<'_>>) -> Vec<Result<RangeOutput, BackendFailure>> {
            self.calls.lock().unwrap().push(jobs.len());
            if self.panic.load(Ordering::SeqCst) {
                panic!("a prover bug");
            }
            if self.fail.load(Ordering::SeqCst) {
                return jobs.iter().map(|_| Err(BackendFailure::Device)).collect();
            }
            PrecomputedCpuProver.prove(jobs)
        }
    }

    /// Commit requests for `values` (`None`: a hidden value with no
    /// predicate) with `value ≤ 1000` as the predicate, answered through
    /// the returned receivers.
    fn requests(
        values: &[Option<u64>],
        depth: &AtomicUsize,
    ) -> (Vec<CommitRequest>, Vec<oneshot::Receiver<Result<CommittedHidden, EntryError>>>) {
        let slots = Arc::new(Semaphore::new(64));
        let committing = Arc::default();
        values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let agent = AgentId::parse(&format!("spiffe://example.org/agent/b{i}")).unwrap();
                let prove = v.map(|_| vec![Predicate::le(1000)]).unwrap_or_default();
                let hidden = BTreeMap::from([("amount".to_owned(), HiddenValue::U64 { value: v.unwrap_or(5), prove })]);
                let (reply, rx) = oneshot::channel();
                let held = (Arc::clone(&slots).try_acquire_owned().unwrap(), CommitSlot::take(&committing, &agent).unwrap());
                depth.fetch_add(1, Ordering::Relaxed);
                (CommitRequest { origin: "o".into(), agent, seq: 1, hidden, self_check: true, reply, held }, rx)
            })
            .unzip()
    }

    fn batcher(single: &Arc<Recording>, batch: &Arc<Recording>, batch_min: usize) -> Batcher {
        Batcher {
            pool: Arc::new(ProverPool::new(2).unwrap()),
            backends: ProverBackends::of(Arc::clone(single) as _, Arc::clone(batch) as _, batch_min),
            depth: Arc::new(AtomicUsize::new(0)),
            observer: None,
        }
    }

    fn answers(rx: Vec<oneshot::Receiver<Result<CommittedHidden, EntryError>>>) -> Vec<Result<CommittedHidden, EntryError>> {
        rx.into_iter().map(|mut r| r.try_recv().unwrap()).collect()
    }

    #[test]
    fn a_batch_is_proven_in_one_call_and_every_request_answered() {
        let (single, batch) = (Arc::new(Recording::default()), Arc::new(Recording::default()));
        let b = batcher(&single, &batch, 2);
        // Three provable values, one without a predicate, one false.
        let (reqs, rx) = requests(&[Some(1), Some(2), None, Some(5000), Some(3)], &b.depth);
        b.serve(reqs);
        let got = answers(rx);
        assert_eq!(*batch.calls.lock().unwrap(), vec![3], "one call with the three true statements");
        assert!(single.calls.lock().unwrap().is_empty());
        assert!(got[0].as_ref().unwrap().predicates.is_some() && got[1].is_ok() && got[4].is_ok());
        assert!(got[2].as_ref().unwrap().predicates.is_none());
        assert!(matches!(&got[3], Err(EntryError::Predicate(ZkError::PredicateFalse { .. }))));
        assert_eq!(b.depth.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn proofs_the_batch_prover_fails_on_are_made_on_the_single_prover() {
        let (single, batch) = (Arc::new(Recording::default()), Arc::new(Recording::default()));
        batch.fail.store(true, Ordering::SeqCst);
        let b = batcher(&single, &batch, 2);
        let (reqs, rx) = requests(&[Some(1), Some(2), Some(3)], &b.depth);
        b.serve(reqs);
        assert!(answers(rx).iter().all(|a| a.as_ref().is_ok_and(|c| c.predicates.is_some())));
        assert_eq!((batch.calls.lock().unwrap().clone(), single.calls.lock().unwrap().clone()), (vec![3], vec![3]));
    }

    #[test]
    fn small_batches_go_one_by_one_and_a_panic_is_an_internal_error() {
        let (single, batch) = (Arc::new(Recording::default()), Arc::new(Recording::default()));
        let b = batcher(&single, &batch, 4);
        let (reqs, rx) = requests(&[Some(1), Some(2), None], &b.depth);
        b.serve(reqs);
        assert!(answers(rx).iter().all(Result::is_ok));
        assert!(batch.calls.lock().unwrap().is_empty());
        assert_eq!(*single.calls.lock().unwrap(), vec![1, 1]);
        // A prover that panics: its requests get an internal error, the
        // batcher goes on.
        single.panic.store(true, Ordering::SeqCst);
        let (reqs, rx) = requests(&[Some(1)], &b.depth);
        b.serve(reqs);
        assert!(matches!(&answers(rx)[0], Err(EntryError::Predicate(ZkError::Backend(BackendFailure::Panicked)))));
        single.panic.store(false, Ordering::SeqCst);
        let (reqs, rx) = requests(&[Some(1)], &b.depth);
        b.serve(reqs);
        assert!(answers(rx)[0].is_ok());
        assert_eq!(b.depth.load(Ordering::Relaxed), 0);
    }
}
