//! The append pipeline, in the order an entry goes through it:
//!
//! 1. [`Pipeline::submit`]: agent and source signatures are checked first,
//!    in parallel, against the keys in force ([`admission::preverify`],
//!    [`admission::preverify_signals`]);
//! 2. the prover stage ([`prover`]) checks the openings and predicate
//!    proofs of committed hidden fields on its own pool;
//! 3. [`Pipeline::append`] queues the entries for the sequencer, bounded by
//!    bytes (a full queue is [`Error::Pushback`]);
//! 4. the sequencer ([`sequencer`]) groups what is queued, admits each
//!    request against the registry and the sources ([`admission::admit`]), stamps one
//!    integrated time, seals openings, lets every view fold the group,
//!    signs a checkpoint, and writes it all in one synced commit; then it
//!    publishes the views and the head, answers the appenders and tells the
//!    [`CommitObserver`](sequencer::CommitObserver).

mod admission;
pub(crate) mod prover;
pub(crate) mod sequencer;

use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot, Semaphore};
use verifier::agent_id::AgentId;
use verifier::entry::{Form, Passport, Reinstatement, Retirement, Revocation, Source};
use verifier::hidden::HiddenValue;
use verifier::tree::CompactRange;

use crate::entry::{AdminOp, EntryAuth, EntryKind, NewEntry, PendingEntry, Submission};
use crate::hidden::CommittedHidden;
use crate::signals::SignalAuth;
use crate::views::registry::Registry;
use crate::views::sources::Sources;
use crate::{Error, LogConfig};
use prover::Prover;
use sequencer::{Appended, Context, Request};

/// The append path of one log: the queue, the prover and the sequencer
/// thread.
pub(crate) struct Pipeline {
    config: Arc<LogConfig>,
    registry: Arc<Registry>,
    sources: Arc<Sources>,
    prover: Prover,
    queue: Arc<Semaphore>,
    sender: RwLock<Option<mpsc::UnboundedSender<Request>>>,
    sequencer: Mutex<Option<JoinHandle<()>>>,
}

impl Pipeline {
    /// Starts the prover pool and the sequencer thread on `context`, from
    /// the recovered `frontier` and the last integrated time.
    pub(crate) fn start(context: Context, frontier: CompactRange, last_time: u64) -> Result<Self, Error> {
        let config = Arc::clone(&context.config);
        let prover = Prover::new(
            config.prover_threads,
            config.prover_queue,
            config.retry_after,
            config.prover_backends.clone(),
            context.observer.clone(),
        )?;
        let registry = Arc::clone(&context.registry);
        let sources = Arc::clone(&context.sources);
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = std::thread::Builder::new()
            .name("ledger-sequencer".into())
            .spawn(move || sequencer::run(context, rx, frontier, last_time))
            .map_err(|e| Error::Config(format!("starting the sequencer: {e}")))?;
        Ok(Self {
            queue: Arc::new(Semaphore::new(config.queue_bytes.min(Semaphore::MAX_PERMITS))),
            config,
            registry,
            sources,
            prover,
            sender: RwLock::new(Some(tx)),
            sequencer: Mutex::new(Some(handle)),
        })
    }

    pub(crate) fn prover(&self) -> &Prover {
        &self.prover
    }

    /// Bytes currently waiting for the sequencer.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.config.queue_bytes.min(Semaphore::MAX_PERMITS) - self.queue.available_permits()
    }

    /// See [`crate::Log::submit`].
    pub(crate) async fn submit(&self, submissions: Vec<Submission>) -> Result<Vec<Appended>, Error> {
        // Unsigned entries never reach the prover (the sequencer refuses
        // the others).
        if self.config.agent_auth && submissions.iter().any(|s| s.auth().is_none() && matches!(s, Submission::Pending(_))) {
            return Err(Error::Unsigned(EntryKind::Action));
        }
        // Entries with hidden fields are authenticated before their proofs
        // are checked whatever the setting; `preverify` off (the bench
        // baseline) leaves the other signatures to the sequencer.
        let hidden = submissions.iter().any(|s| matches!(s, Submission::Pending(_)));
        if self.config.preverify || hidden {
            let auths: Vec<Arc<EntryAuth>> = submissions.iter().filter_map(|s| s.auth().cloned()).collect();
            let signals: Vec<Arc<SignalAuth>> = submissions.iter().filter_map(|s| s.signal().cloned()).collect();
            self.preverify(auths, signals).await?;
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

    /// [`admission::preverify`], then [`admission::preverify_signals`]:
    /// inline for one signature, on the blocking pool (and rayon's
    /// threads) for more, so async workers never wait on a large batch.
    async fn preverify(&self, auths: Vec<Arc<EntryAuth>>, signals: Vec<Arc<SignalAuth>>) -> Result<(), Error> {
        let signatures = auths.len() + signals.iter().filter(|s| s.source.is_some()).count();
        let (registry, sources, config) = (Arc::clone(&self.registry), Arc::clone(&self.sources), Arc::clone(&self.config));
        let check = move || {
            admission::preverify(&registry, &config.origin, &auths)?;
            admission::preverify_signals(&registry, &sources, &config.origin, &signals)
        };
        match signatures {
            0 | 1 => check(),
            _ => tokio::task::spawn_blocking(check).await.map_err(|_| Error::ShuttingDown)?,
        }
    }

    /// Checks the openings and proofs of committed entries on the prover
    /// pool, in parallel.
    async fn check_pending(&self, jobs: Vec<PendingEntry>) -> Result<Vec<NewEntry>, Error> {
        self.prover.check_pending(&self.config.origin, jobs).await
    }

    /// See [`crate::Log::commit_hidden`].
    pub(crate) async fn commit_hidden(
        &self,
        agent: &AgentId,
        seq: u64,
        hidden: std::collections::BTreeMap<String, HiddenValue>,
    ) -> Result<CommittedHidden, Error> {
        admission::may_write(&self.registry, agent, seq)?;
        self.prover.commit_hidden(&self.config.origin, agent, seq, hidden, self.config.prover_self_check).await
    }

    /// See [`crate::Log::append`].
    pub(crate) async fn append(&self, entries: Vec<NewEntry>) -> Result<Vec<Appended>, Error> {
        if entries.is_empty() {
            return Err(Error::EmptyBatch);
        }
        if self.config.agent_auth {
            if let Some(e) = entries.iter().find(|e| e.auth().is_none() && e.kind().is_agent_signed()) {
                return Err(Error::Unsigned(e.kind()));
            }
        }
        if self.config.openings_key.is_none() && entries.iter().any(|e| e.secret().is_some()) {
            return Err(Error::Config("entries with hidden fields need an openings key, and none is configured".into()));
        }
        let bytes: usize = entries.iter().map(NewEntry::queued_bytes).sum();
        let max = self.config.queue_bytes.min(Semaphore::MAX_PERMITS);
        if bytes > max {
            return Err(Error::BatchTooLarge { bytes, max });
        }
        let permit = Arc::clone(&self.queue)
            .try_acquire_many_owned(bytes as u32)
            .map_err(|_| Error::Pushback { retry_after: self.config.retry_after })?;
        let (reply, rx) = oneshot::channel();
        {
            let sender = self.sender.read().unwrap_or_else(|e| e.into_inner());
            let sender = sender.as_ref().ok_or(Error::ShuttingDown)?;
            sender.send(Request { entries, reply, _permit: permit }).map_err(|_| Error::ShuttingDown)?;
        }
        rx.await.map_err(|_| Error::ShuttingDown)?
    }

    /// See [`crate::Log::register`].
    pub(crate) async fn register(&self, passport: Passport) -> Result<Appended, Error> {
        if let Some(td) = &self.config.trust_domain {
            if passport.agent.trust_domain() != td {
                return Err(Error::WrongTrustDomain { agent: passport.agent.clone(), trust_domain: td.clone() });
            }
        }
        let entry = NewEntry::from_log(&passport.to_object(), None, Some(AdminOp::Register(Arc::new(passport))))?;
        first(self.append(vec![entry]).await?)
    }

    /// See [`crate::Log::retire`].
    pub(crate) async fn retire(&self, agent: &AgentId, reason: &str) -> Result<Appended, Error> {
        let retirement = Retirement { agent: agent.clone(), reason: reason.to_owned() };
        let entry = NewEntry::from_log(&retirement.to_object(), None, Some(AdminOp::Retire(agent.clone())))?;
        first(self.append(vec![entry]).await?)
    }

    /// See [`crate::Log::revoke`].
    pub(crate) async fn revoke(&self, revocation: &Revocation) -> Result<Appended, Error> {
        let entry = NewEntry::from_log(&revocation.to_object(), None, Some(AdminOp::Revoke(revocation.agent.clone())))?;
        first(self.append(vec![entry]).await?)
    }

    /// See [`crate::Log::reinstate`].
    pub(crate) async fn reinstate(&self, reinstatement: &Reinstatement) -> Result<Appended, Error> {
        let entry = NewEntry::from_log(
            &reinstatement.to_object(),
            None,
            Some(AdminOp::Reinstate(reinstatement.agent.clone(), reinstatement.attestation_index)),
        )?;
        first(self.append(vec![entry]).await?)
    }

    /// See [`crate::Log::register_source`].
    pub(crate) async fn register_source(&self, source: Source) -> Result<Appended, Error> {
        // Read back as the leaf will be: types in canonical order, and
        // refused if empty, repeated or not a source's.
        let source = Source::from_object(&source.to_object(), Form::Leaf)?;
        let entry = NewEntry::from_log(&source.to_object(), None, Some(AdminOp::Source(Arc::new(source))))?;
        first(self.append(vec![entry]).await?)
    }

    /// Stops taking appends, lets the sequencer commit everything queued,
    /// and waits for it. Idempotent.
    pub(crate) fn shutdown(&self) {
        self.sender.write().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = self.sequencer.lock().unwrap_or_else(|e| e.into_inner()).take() {
            if handle.join().is_err() {
                tracing::error!("the sequencer thread panicked");
            }
        }
    }
}

fn first(appended: Vec<Appended>) -> Result<Appended, Error> {
    appended.into_iter().next().ok_or(Error::EmptyBatch)
}
