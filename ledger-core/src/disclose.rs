//! The prover stage of the append path, disclosures and crypto-shredding.
//!
//! A submission is authenticated first (agent signatures verified in
//! parallel against the keys in force); only then are the openings and
//! predicate proofs of its committed hidden fields checked, on a dedicated
//! rayon pool, so the sequencer never waits on a proof and an
//! unauthenticated caller never gets proof work done. The same pool proves
//! hidden values for `POST /v1/hidden/commit` and for disclosures. The pool's admission is
//! bounded ([`LogConfig::prover_queue`](crate::LogConfig)): beyond it
//! submissions get [`Error::ProverBusy`] (HTTP 503), never unbounded memory.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rayon::prelude::*;
use serde_json::Value;
use tokio::sync::{oneshot, Semaphore};
use verifier::disclosure::{ClaimsProof, CommittedFields, DisclosureBundle, DisclosureError, Opening};
use verifier::hash::leaf_hash;
use zk::predicate::Predicate;
use zk::prover::{ProverPool, Witness};

use crate::entry::{EntryAuth, EntryError, NewEntry, Submission};
use crate::hidden::{parse_openings, CommittedHidden, HiddenValue, PendingEntry};
use crate::sequencer::Appended;
use crate::store::OpeningsRecord;
use crate::{Error, Log};

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
    committing: Arc<Mutex<HashMap<String, usize>>>,
}

impl Prover {
    pub fn new(threads: usize, capacity: usize) -> Result<Self, Error> {
        let pool = ProverPool::new(threads).map_err(|e| Error::Config(e.to_string()))?;
        let capacity = capacity.clamp(1, Semaphore::MAX_PERMITS);
        Ok(Self {
            pool: Arc::new(pool),
            slots: Arc::new(Semaphore::new(capacity)),
            capacity,
            depth: Arc::new(AtomicUsize::new(0)),
            committing: Arc::default(),
        })
    }
}

/// One agent's commit proof in flight; released when dropped.
struct CommitSlot {
    agent: String,
    committing: Arc<Mutex<HashMap<String, usize>>>,
}

impl CommitSlot {
    fn take(committing: &Arc<Mutex<HashMap<String, usize>>>, agent: &str) -> Option<Self> {
        let mut map = committing.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(agent.to_owned()).or_insert(0);
        if *n >= MAX_COMMITS_IN_FLIGHT_PER_AGENT {
            return None;
        }
        *n += 1;
        Some(Self { agent: agent.to_owned(), committing: Arc::clone(committing) })
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

/// What to disclose about one entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DisclosureRequest {
    /// Hidden fields to reveal (value and salt or blinding).
    pub reveal: Vec<String>,
    /// Predicates to prove about hidden integers that stay hidden.
    pub prove: Vec<(String, Predicate)>,
}

/// Whose openings to shred.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShredTarget {
    /// One entry.
    Entry(u64),
    /// Every entry of one agent.
    Agent(String),
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Log {
    /// Prover threads.
    pub fn prover_threads(&self) -> usize {
        self.prover.pool.threads()
    }

    /// Entries waiting for or in the prover.
    pub fn prover_queue_depth(&self) -> usize {
        self.prover.depth.load(Ordering::Relaxed)
    }

    /// Appends submissions atomically at contiguous indices. Authentication
    /// comes first: every agent signature is checked against the key in
    /// force (in parallel), with the agents' state and sequence numbers,
    /// before any proof is checked; then the openings and predicate proofs
    /// of committed hidden fields are checked on the prover pool.
    pub async fn submit(&self, submissions: Vec<Submission>) -> Result<Vec<Appended>, Error> {
        // Unsigned entries never reach the prover (the sequencer refuses
        // the others).
        if self.shared.config.agent_auth && submissions.iter().any(|s| s.auth().is_none() && matches!(s, Submission::Pending(_))) {
            return Err(Error::Unsigned("action"));
        }
        // Entries with hidden fields are authenticated before their proofs
        // are checked whatever the setting; `preverify` off (the bench
        // baseline) leaves the other signatures to the sequencer.
        let hidden = submissions.iter().any(|s| matches!(s, Submission::Pending(_)));
        if self.shared.config.preverify || hidden {
            let auths: Vec<Arc<EntryAuth>> = submissions.iter().filter_map(|s| s.auth().cloned()).collect();
            self.preverify(auths).await?;
        }
        let mut ready = Vec::with_capacity(submissions.len());
        let mut pending = Vec::new();
        for (i, s) in submissions.into_iter().enumerate() {
            match s {
                Submission::Ready(e) => ready.push(Some(e)),
                Submission::Pending(p) => {
                    ready.push(None);
                    pending.push((i, p));
                }
            }
        }
        if !pending.is_empty() {
            let (positions, jobs): (Vec<usize>, Vec<PendingEntry>) = pending.into_iter().unzip();
            for (i, entry) in positions.into_iter().zip(self.check_pending(jobs).await?) {
                ready[i] = Some(entry);
            }
        }
        self.append(ready.into_iter().flatten().collect()).await
    }

    /// [`crate::agents::preverify`]: inline for one signature, on the
    /// blocking pool (and rayon's threads) for more, so async workers
    /// never wait on a large batch.
    async fn preverify(&self, auths: Vec<Arc<EntryAuth>>) -> Result<(), Error> {
        match auths.len() {
            0 => Ok(()),
            1 => crate::agents::preverify(&self.shared.registry, &self.shared.config.origin, &auths),
            _ => {
                let shared = Arc::clone(&self.shared);
                tokio::task::spawn_blocking(move || crate::agents::preverify(&shared.registry, &shared.config.origin, &auths))
                    .await
                    .map_err(|_| Error::ShuttingDown)?
            }
        }
    }

    /// Checks the openings and proofs of committed entries on the prover
    /// pool, in parallel.
    pub async fn check_pending(&self, jobs: Vec<PendingEntry>) -> Result<Vec<NewEntry>, Error> {
        let n = jobs.len();
        let retry_after = self.shared.config.retry_after;
        if n > self.prover.capacity {
            return Err(Error::TooManyHidden { entries: n, max: self.prover.capacity });
        }
        let permit = Arc::clone(&self.prover.slots).try_acquire_many_owned(n as u32).map_err(|_| Error::ProverBusy { retry_after })?;
        self.prover.depth.fetch_add(n, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let (pool, depth, observer) = (Arc::clone(&self.prover.pool), Arc::clone(&self.prover.depth), self.shared.observer.clone());
        let origin = self.shared.config.origin.clone();
        self.prover.pool.spawn(move || {
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
    /// predicates on the prover pool (`POST /v1/hidden/commit`; the caller
    /// has authenticated the agent). The log keeps nothing: the agent signs
    /// the committed entry and sends it back with the openings.
    pub async fn commit_hidden(&self, agent: &str, seq: u64, hidden: BTreeMap<String, HiddenValue>) -> Result<CommittedHidden, Error> {
        let state = self.agent(agent).ok_or_else(|| Error::UnknownAgent(agent.to_owned()))?;
        if state.retired.is_some() {
            return Err(Error::AgentRetired(agent.to_owned()));
        }
        if seq <= state.last_seq {
            return Err(Error::SequenceReplayed { agent: agent.to_owned(), seq, last: state.last_seq });
        }
        let retry_after = self.shared.config.retry_after;
        let slot = CommitSlot::take(&self.prover.committing, agent).ok_or(Error::ProverBusy { retry_after })?;
        let permit = Arc::clone(&self.prover.slots).try_acquire_owned().map_err(|_| Error::ProverBusy { retry_after })?;
        self.prover.depth.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let (depth, observer) = (Arc::clone(&self.prover.depth), self.shared.observer.clone());
        let (origin, agent, self_check) = (self.shared.config.origin.clone(), agent.to_owned(), self.shared.config.prover_self_check);
        self.prover.pool.spawn(move || {
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

    /// Builds a disclosure bundle for entry `index`: its tlog-proof against
    /// the latest checkpoint, the openings of `request.reveal`, and one
    /// aggregated proof of `request.prove`, made now from the stored
    /// openings.
    pub async fn disclose(&self, index: u64, request: &DisclosureRequest) -> Result<DisclosureBundle, Error> {
        let tlog_proof = self.tlog_proof(index)?;
        let leaf = tlog_proof.extra.as_deref().unwrap_or_default();
        let value: Value = serde_json::from_slice(leaf).map_err(|e| Error::Entry(e.into()))?;
        let obj = value.as_object().ok_or(Error::Entry(EntryError::Shape(verifier::entry::ShapeError::LeafNotAnObject)))?;
        let fields = CommittedFields::from_leaf(obj).map_err(DisclosureError::Leaf)?.ok_or(Error::NoHiddenFields { index })?;
        if request.prove.len() > zk::MAX_CLAIMS {
            return Err(Error::Entry(EntryError::Hidden(verifier::entry::HiddenError::DisclosureClaims { max: zk::MAX_CLAIMS })));
        }
        for name in &request.reveal {
            if !fields.fields.contains_key(name) {
                return Err(DisclosureError::UnknownField(name.clone()).into());
            }
        }
        let claims = fields.claims(&request.prove)?;
        let mut revealed = BTreeMap::new();
        let mut proofs = Vec::new();
        if !request.reveal.is_empty() || !claims.is_empty() {
            let openings = self.openings(index, leaf)?;
            for name in &request.reveal {
                let opening = openings.get(name).ok_or_else(|| missing_opening(index, name))?;
                revealed.insert(name.clone(), opening.clone());
            }
            if !claims.is_empty() {
                let witnesses = claims
                    .iter()
                    .map(|c| match openings.get(&c.field) {
                        Some(Opening::U64 { value, blinding }) => Ok(Witness { value: *value, blinding: blinding.clone() }),
                        _ => Err(missing_opening(index, &c.field)),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let context = verifier::disclosure::disclosure_proof_context(&self.shared.config.origin, index, &leaf_hash(leaf));
                let proof = self.prove_on_pool(claims.clone(), witnesses, context).await?;
                proofs.push(ClaimsProof { claims: request.prove.clone(), proof });
            }
        }
        Ok(DisclosureBundle { tlog_proof, revealed, proofs, unbound_proofs: false })
    }

    async fn prove_on_pool(
        &self,
        claims: Vec<zk::predicate::Claim>,
        witnesses: Vec<Witness>,
        context: Vec<u8>,
    ) -> Result<zk::PredicateProof, Error> {
        let retry_after = self.shared.config.retry_after;
        let permit = Arc::clone(&self.prover.slots).try_acquire_owned().map_err(|_| Error::ProverBusy { retry_after })?;
        let (tx, rx) = oneshot::channel();
        let observer = self.shared.observer.clone();
        self.prover.pool.spawn(move || {
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

    /// Decrypts the stored openings of entry `index` (leaf bytes `leaf`):
    /// unwraps the entry's data key with the master key, then opens the
    /// ciphertext (legacy v1 records: with the master key itself).
    fn openings(&self, index: u64, leaf: &[u8]) -> Result<BTreeMap<String, Opening>, Error> {
        match self.shared.store.openings(index)? {
            None => Err(Error::NoOpenings { index }),
            Some(OpeningsRecord::Shredded { at_ms }) => Err(Error::OpeningsShredded { index, at_ms }),
            Some(OpeningsRecord::Sealed { sealed, wrapped_key }) => {
                let key = self.shared.config.openings_key.as_ref().ok_or_else(|| Error::Config("no openings key is configured".into()))?;
                let plain = key
                    .open(index, &leaf_hash(leaf), &sealed, wrapped_key.as_deref())
                    .map_err(|e| Error::Storage(crate::store::StorageError::Corrupt(e.to_string())))?;
                Ok(parse_openings(&plain)?)
            }
        }
    }

    /// Crypto-shreds openings: destroys each entry's wrapped data key and
    /// its ciphertext, leaving a "shredded at" tombstone, and makes the
    /// store drop the old bytes from its files. A copy of the ciphertexts
    /// taken earlier without the `opening_keys` column family opens with
    /// nothing; the log, its proofs and bundles already issued stay valid.
    /// Returns the entries whose openings were erased now (entries already
    /// shredded are skipped, so repeating a request is harmless).
    pub fn shred(&self, target: &ShredTarget) -> Result<Vec<u64>, Error> {
        let indices = match target {
            ShredTarget::Entry(index) => {
                let size = self.head().size;
                if *index >= size {
                    return Err(Error::IndexBeyondTree { index: *index, size });
                }
                if self.shared.store.openings(*index)?.is_none() {
                    return Err(Error::NoOpenings { index: *index });
                }
                vec![*index]
            }
            ShredTarget::Agent(agent) => self.shared.store.openings_of_agent(agent)?,
        };
        Ok(self.shared.store.shred_openings(&indices, now_ms())?)
    }
}

fn missing_opening(index: u64, field: &str) -> Error {
    Error::Storage(crate::store::StorageError::Corrupt(format!("stored openings of entry {index} lack field {field:?}")))
}
