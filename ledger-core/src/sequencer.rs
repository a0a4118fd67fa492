//! The sequencer: one thread that owns the right edge of the tree and turns
//! queued appends into group commits.
//!
//! Appenders put requests on a queue bounded by bytes (a semaphore); a full
//! queue is a [`crate::Error::Pushback`], never unbounded memory. The thread
//! takes every request waiting (up to a cap), stamps one integrated time,
//! hashes the leaves, extends the frontier, signs one checkpoint and writes
//! everything in one synced batch. Only then are the appenders answered.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};
use verifier::hash::Hash;
use verifier::tree::CompactRange;
use verifier::Checkpoint;

use crate::entry::NewEntry;
use crate::log::{Head, Shared};
use crate::store::{CommitBatch, SealedOpenings, StoredHead};
use crate::Error;

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

    /// One entry's commitments and predicate proof took `latency`.
    fn proved(&self, _latency: Duration) {}
}

pub(crate) struct Request {
    pub entries: Vec<NewEntry>,
    pub reply: oneshot::Sender<Result<Vec<Appended>, Error>>,
    pub _permit: OwnedSemaphorePermit,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

pub(crate) fn run(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Request>, mut frontier: CompactRange, mut last_time: u64) {
    let max_batch = shared.config.max_batch_entries.max(1);
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
        let time = now_ms().max(last_time);
        // Agent checks (registry, sequence numbers, and the signatures that
        // pre-verification did not already check with the key in force);
        // refused requests are answered now and left out.
        let (verdicts, changes) = {
            let groups: Vec<&[NewEntry]> = requests.iter().map(|r| r.entries.as_slice()).collect();
            crate::agents::admit(&shared.registry, &shared.config.origin, &groups, frontier.size())
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
        let count = requests.iter().map(|r| r.entries.len()).sum();
        match commit_group(&shared, &requests, &frontier, time, count, &changes) {
            Ok((next, appended)) => {
                shared.registry.apply(changes);
                frontier = next;
                last_time = time;
                let (mut offset, request_count) = (0, requests.len());
                for r in requests.drain(..) {
                    let n = r.entries.len();
                    let _ = r.reply.send(Ok(appended[offset..offset + n].to_vec()));
                    offset += n;
                }
                if let Some(obs) = &shared.observer {
                    obs.committed(count, request_count, started.elapsed(), frontier.size());
                }
            }
            Err(e) => {
                tracing::error!(error = %e, entries = count, "group commit failed; nothing was acknowledged");
                let msg = e.to_string();
                for r in requests.drain(..) {
                    let _ = r.reply.send(Err(Error::Storage(crate::store::StorageError::Backend(msg.clone()))));
                }
            }
        }
    }
    tracing::info!(tree_size = frontier.size(), "sequencer drained and stopped");
}

fn commit_group(
    shared: &Shared,
    requests: &[Request],
    frontier: &CompactRange,
    time: u64,
    count: usize,
    agents: &std::collections::HashMap<String, crate::agents::AgentState>,
) -> Result<(CompactRange, Vec<Appended>), Error> {
    let mut next = frontier.clone();
    let mut batch = CommitBatch {
        first_index: frontier.size(),
        entries: Vec::with_capacity(count),
        nodes: Vec::with_capacity(count * 2 + 8),
        head: None,
        openings: Vec::new(),
        agents: agents.iter().map(|(k, v)| (k.clone(), v.to_bytes())).collect(),
    };
    let mut appended = Vec::with_capacity(count);
    let time_decimal = time.to_string();
    for entry in requests.iter().flat_map(|r| r.entries.iter()) {
        let (leaf, hash) = entry.stamp(time_decimal.as_bytes());
        let index = next.size();
        if let (Some(secret), Some(key)) = (entry.secret(), &shared.config.openings_key) {
            // A fresh data key per entry, wrapped by the master key: the
            // store keeps the two apart, and shredding destroys the key.
            let envelope = key
                .seal(index, &hash, &secret.openings)
                .map_err(|e| Error::Config(format!("sealing the openings of entry {index}: {e}")))?;
            batch.openings.push(SealedOpenings {
                index,
                agent: secret.agent.clone(),
                sealed: envelope.sealed,
                wrapped_key: Some(envelope.wrapped_key),
            });
        }
        appended.push(Appended { index, leaf_hash: hash, integrated_time: time });
        next.push_recording(hash, &mut batch.nodes);
        batch.entries.push(leaf);
    }
    let root = next.root();
    let checkpoint = Checkpoint { origin: shared.config.origin.clone(), size: next.size(), root, extensions: Vec::new() };
    let note = checkpoint.sign(&shared.signer).map_err(|e| Error::Config(format!("signing checkpoint: {e}")))?;
    batch.head = Some(StoredHead { size: next.size(), integrated_time: time, checkpoint: note.clone() });
    shared.store.commit(&batch)?;
    shared.publish(Head { size: next.size(), root, checkpoint: note.into(), integrated_time: time });
    Ok((next, appended))
}
