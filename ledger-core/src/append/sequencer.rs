//! The sequencer: one thread that owns the right edge of the tree and turns
//! queued appends into group commits.
//!
//! Appenders put requests on a queue bounded by bytes (a semaphore); a full
//! queue is a [`crate::Error::Pushback`], never unbounded memory. The thread
//! takes every request waiting (up to a cap), stamps one integrated time
//! (the clock, never below the last one), admits the requests
//! ([`super::admission::admit`]), hashes the leaves, extends the frontier,
//! seals hidden-field openings, lets every view fold the group, signs one
//! checkpoint and writes everything in one synced batch. Only then are the
//! views and the head published and the appenders answered.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};
use verifier::hash::Hash;
use verifier::note::NoteSigner;
use verifier::tree::CompactRange;
use verifier::Checkpoint;

use super::admission;
use crate::entry::NewEntry;
use crate::store::{CommitBatch, LogStore, SealedOpenings, StorageError, StoredHead};
use crate::views::registry::Registry;
use crate::views::sources::Sources;
use crate::views::{self, Entries, View};
use crate::{Error, LogConfig};

/// Where an appended entry landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// Durably assigned index.
    pub index: u64,
    /// Leaf hash of the stored bytes.
    pub leaf_hash: Hash,
    /// The integrated time stamped on the entry.
    pub integrated_time: u64,
}

/// Receives one call per group commit (for metrics).
pub trait CommitObserver: Send + Sync + 'static {
    /// `entries` from `requests` appends were made durable in `latency`.
    fn committed(&self, entries: usize, requests: usize, latency: Duration, tree_size: u64);

    /// One entry's commitments and predicate proof (or, for `backend`
    /// `"verify"`, the check of a client's) took `latency` on the range
    /// prover `backend` (`zk::prover::RangeProver::name`).
    fn proved(&self, _latency: Duration, _backend: &'static str) {}
}

/// The published head: what readers may see and prove against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// Tree size.
    pub size: u64,
    /// Root hash at `size`.
    pub root: Hash,
    /// Signed C2SP checkpoint note for `size`.
    pub checkpoint: Arc<str>,
    /// Integrated time of the last entry.
    pub integrated_time: u64,
}

/// The head readers see; only the sequencer replaces it.
#[derive(Debug)]
pub(crate) struct PublishedHead(RwLock<Head>, tokio::sync::watch::Sender<u64>);

impl PublishedHead {
    pub(crate) fn new(head: Head) -> Self {
        let size = head.size;
        Self(RwLock::new(head), tokio::sync::watch::Sender::new(size))
    }

    pub(crate) fn get(&self) -> Head {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A receiver of the published tree size, told of every new head.
    pub(crate) fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.1.subscribe()
    }

    fn set(&self, head: Head) {
        let size = head.size;
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = head;
        self.1.send_replace(size);
    }
}

/// One queued append.
pub(crate) struct Request {
    pub(crate) entries: Vec<NewEntry>,
    pub(crate) reply: oneshot::Sender<Result<Vec<Appended>, Error>>,
    pub(crate) _permit: OwnedSemaphorePermit,
}

/// What the sequencer works with.
pub(crate) struct Context {
    /// Origin, openings key, batch cap and clock.
    pub(crate) config: Arc<LogConfig>,
    pub(crate) store: Arc<dyn LogStore>,
    pub(crate) signer: NoteSigner,
    /// The registry, which admission checks against.
    pub(crate) registry: Arc<Registry>,
    /// The signal sources, which admission checks against.
    pub(crate) sources: Arc<Sources>,
    /// Every view, the registry included.
    pub(crate) views: Vec<Arc<dyn View>>,
    pub(crate) observer: Option<Arc<dyn CommitObserver>>,
    pub(crate) head: Arc<PublishedHead>,
}

/// Runs the sequencer until every sender is gone and the queue is drained.
pub(crate) fn run(ctx: Context, mut rx: mpsc::UnboundedReceiver<Request>, mut frontier: CompactRange, mut last_time: u64) {
    let max_batch = ctx.config.max_batch_entries.max(1);
    let mut requests: Vec<Request> = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        let mut count = first.entries.len();
        debug_assert!(requests.is_empty());
        requests.push(first);
        while count < max_batch {
            match rx.try_recv() {
                Ok(r) => {
                    count += r.entries.len();
                    requests.push(r);
                }
                Err(_) => break,
            }
        }
        let started = Instant::now();
        // Integrated time never goes backwards, whatever the clock does.
        let time = ctx.config.clock.now_ms().max(last_time);
        // Agent and source checks (registry, sources, sequence numbers,
        // signal subjects, and the signatures that pre-verification did not
        // already check with the key in force);
        // refused requests are answered now and left out.
        let (verdicts, changes) = {
            let groups: Vec<&[NewEntry]> = requests.iter().map(|r| r.entries.as_slice()).collect();
            admission::admit(&ctx.registry, &ctx.sources, &ctx.config.origin, &groups, frontier.size())
        };
        if verdicts.iter().any(Result::is_err) {
            let mut admitted = Vec::with_capacity(requests.len());
            for (r, verdict) in requests.drain(..).zip(verdicts) {
                match verdict {
                    Ok(()) => admitted.push(r),
                    Err(e) => {
                        let _ = r.reply.send(Err(e));
                    }
                }
            }
            requests = admitted;
        }
        if requests.is_empty() {
            continue;
        }
        ctx.registry.stage(changes.agents);
        ctx.sources.stage(changes.sources);
        let count = requests.iter().map(|r| r.entries.len()).sum();
        match commit_group(&ctx, &requests, &frontier, time, count) {
            Ok((next, appended)) => {
                frontier = next;
                last_time = time;
                // The observer hears of the commit before anyone is
                // answered: an appender that reads the metrics next sees it.
                if let Some(obs) = &ctx.observer {
                    obs.committed(count, requests.len(), started.elapsed(), frontier.size());
                }
                let mut offset = 0;
                for r in requests.drain(..) {
                    let n = r.entries.len();
                    let _ = r.reply.send(Ok(appended[offset..offset + n].to_vec()));
                    offset += n;
                }
            }
            Err(e) => {
                for view in &ctx.views {
                    view.discard();
                }
                tracing::error!(error = %e, entries = count, "group commit failed; nothing was acknowledged");
                let msg = e.to_string();
                for r in requests.drain(..) {
                    let _ = r.reply.send(Err(Error::Storage(StorageError::Backend(msg.clone()))));
                }
            }
        }
    }
    tracing::info!(tree_size = frontier.size(), "sequencer drained and stopped");
}

/// Builds, writes and publishes one group commit.
fn commit_group(
    ctx: &Context,
    requests: &[Request],
    frontier: &CompactRange,
    time: u64,
    count: usize,
) -> Result<(CompactRange, Vec<Appended>), Error> {
    let mut next = frontier.clone();
    let mut batch = CommitBatch {
        first_index: frontier.size(),
        entries: Vec::with_capacity(count),
        nodes: Vec::with_capacity(count * 2 + 8),
        head: None,
        records: Vec::new(),
    };
    let mut records = Vec::new();
    let mut appended = Vec::with_capacity(count);
    let time_decimal = time.to_string();
    for entry in requests.iter().flat_map(|r| r.entries.iter()) {
        let (leaf, hash) = entry.stamp(time_decimal.as_bytes());
        let index = next.size();
        if let (Some(secret), Some(key)) = (entry.secret(), &ctx.config.openings_key) {
            // A fresh data key per entry, wrapped by the master key: the
            // store keeps the two apart, and shredding destroys the key.
            let envelope = key
                .seal(index, &hash, &secret.openings)
                .map_err(|e| Error::Config(format!("sealing the openings of entry {index}: {e}")))?;
            SealedOpenings { index, agent: secret.agent.to_string(), sealed: envelope.sealed, wrapped_key: Some(envelope.wrapped_key) }
                .push_records(&mut records);
        }
        appended.push(Appended { index, leaf_hash: hash, integrated_time: time });
        next.push_recording(hash, &mut batch.nodes);
        batch.entries.push(leaf);
    }
    let groups: Vec<&[NewEntry]> = requests.iter().map(|r| r.entries.as_slice()).collect();
    let entries = Entries { first_index: batch.first_index, leaves: &batch.entries, admitted: Some(&groups), integrated_time: Some(time) };
    for view in &ctx.views {
        view.fold(&entries, &mut records)?;
        records.push(views::applied_record(view.name(), next.size()));
    }
    batch.records = records;
    let root = next.root();
    let checkpoint = Checkpoint { origin: ctx.config.origin.clone(), size: next.size(), root, extensions: Vec::new() };
    let note = checkpoint.sign(&ctx.signer).map_err(|e| Error::Config(format!("signing checkpoint: {e}")))?;
    batch.head = Some(StoredHead { size: next.size(), integrated_time: time, checkpoint: note.clone() });
    ctx.store.commit(&batch)?;
    for view in &ctx.views {
        view.publish();
    }
    ctx.head.set(Head { size: next.size(), root, checkpoint: note.into(), integrated_time: time });
    Ok((next, appended))
}
