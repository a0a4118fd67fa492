//! The prover stage: a dedicated rayon pool for hidden-field proofs.
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

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use tokio::sync::{oneshot, Semaphore};
use verifier::agent_id::AgentId;
use verifier::hidden::HiddenValue;
use zk::prover::{ProverPool, Witness};

use super::sequencer::CommitObserver;
use crate::entry::{EntryError, NewEntry, PendingEntry};
use crate::hidden::CommittedHidden;
use crate::Error;

/// Most `POST /v1/hidden/commit` proofs one agent may have in flight: one
/// agent cannot take the whole prover pool from the others.
pub const MAX_COMMITS_IN_FLIGHT_PER_AGENT: usize = 2;

/// The prover pool and its admission control.
pub(crate) struct Prover {
    pool: Arc<ProverPool>,
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
        observer: Option<Arc<dyn CommitObserver>>,
    ) -> Result<Self, Error> {
        let pool = ProverPool::new(threads).map_err(|e| Error::Config(e.to_string()))?;
        let capacity = capacity.clamp(1, Semaphore::MAX_PERMITS);
        Ok(Self {
            pool: Arc::new(pool),
            slots: Arc::new(Semaphore::new(capacity)),
            capacity,
            depth: Arc::new(AtomicUsize::new(0)),
            committing: Arc::default(),
            retry_after,
            observer,
        })
    }

    /// Prover threads.
    pub(crate) fn threads(&self) -> usize {
        self.pool.threads()
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
                            obs.proved(started.elapsed());
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
    /// predicates (the caller has checked the agent may write `seq`).
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
        let (tx, rx) = oneshot::channel();
        let (depth, observer) = (Arc::clone(&self.depth), self.observer.clone());
        let (origin, agent) = (origin.to_owned(), agent.clone());
        self.pool.spawn(move || {
            let started = Instant::now();
            let result = crate::hidden::commit_for(&origin, &agent, seq, &hidden, zk::params(), self_check);
            if let Some(obs) = &observer {
                obs.proved(started.elapsed());
            }
            depth.fetch_sub(1, Ordering::Relaxed);
            drop((permit, slot));
            let _ = tx.send(result);
        });
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
        let observer = self.observer.clone();
        self.pool.spawn(move || {
            let proved = zk::prover::timed(|| {
                let proof = zk::prover::prove_bound(&claims, &witnesses, &context, zk::params())?;
                proof.verify_bound(&claims, &context, zk::params()).map(|()| proof)
            });
            if let Some(obs) = &observer {
                obs.proved(proved.latency);
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
