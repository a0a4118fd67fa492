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
use verifier::hash::{node_hash, Hash};
use verifier::tree::{fold_range, NodeId};
use verifier::Checkpoint;

use crate::entry::NewEntry;
use crate::log::{Head, Shared};
use crate::store::{CommitBatch, StoredHead};
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
}

pub(crate) struct Request {
    pub entries: Vec<NewEntry>,
    pub reply: oneshot::Sender<Result<Vec<Appended>, Error>>,
    pub _permit: OwnedSemaphorePermit,
}

/// The right frontier: complete subtrees covering the tree, largest first.
#[derive(Clone, Debug, Default)]
pub(crate) struct Frontier {
    pub size: u64,
    pub nodes: Vec<(NodeId, Hash)>,
}

impl Frontier {
    /// Appends a leaf, recording every node it completes into `out`.
    pub fn push(&mut self, leaf: Hash, out: &mut Vec<(NodeId, Hash)>) {
        let id = NodeId::leaf(self.size);
        self.nodes.push((id, leaf));
        out.push((id, leaf));
        while self.nodes.len() >= 2 {
            let (r_id, r) = self.nodes[self.nodes.len() - 1];
            let (l_id, l) = self.nodes[self.nodes.len() - 2];
            if l_id.level != r_id.level {
                break;
            }
            self.nodes.truncate(self.nodes.len() - 2);
            let parent = (NodeId::new(l_id.level + 1, l_id.index / 2), node_hash(&l, &r));
            self.nodes.push(parent);
            out.push(parent);
        }
        self.size += 1;
    }

    pub fn root(&self) -> Hash {
        let hashes: Vec<Hash> = self.nodes.iter().map(|(_, h)| *h).collect();
        fold_range(&hashes)
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

pub(crate) fn run(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Request>, mut frontier: Frontier, mut last_time: u64) {
    let max_batch = shared.config.max_batch_entries.max(1);
    let mut requests: Vec<Request> = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        let mut count = first.entries.len();
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
        match commit_group(&shared, &requests, &frontier, time, count) {
            Ok((next, appended)) => {
                frontier = next;
                last_time = time;
                let (mut offset, request_count) = (0, requests.len());
                for r in requests.drain(..) {
                    let n = r.entries.len();
                    let _ = r.reply.send(Ok(appended[offset..offset + n].to_vec()));
                    offset += n;
                }
                if let Some(obs) = &shared.observer {
                    obs.committed(count, request_count, started.elapsed(), frontier.size);
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
    tracing::info!(tree_size = frontier.size, "sequencer drained and stopped");
}

fn commit_group(
    shared: &Shared,
    requests: &[Request],
    frontier: &Frontier,
    time: u64,
    count: usize,
) -> Result<(Frontier, Vec<Appended>), Error> {
    let mut next = frontier.clone();
    let mut batch = CommitBatch {
        first_index: frontier.size,
        entries: Vec::with_capacity(count),
        nodes: Vec::with_capacity(count * 2 + 8),
        head: None,
    };
    let mut appended = Vec::with_capacity(count);
    let time_decimal = time.to_string();
    for entry in requests.iter().flat_map(|r| r.entries.iter()) {
        let (leaf, hash) = entry.stamp(time_decimal.as_bytes());
        appended.push(Appended { index: next.size, leaf_hash: hash, integrated_time: time });
        next.push(hash, &mut batch.nodes);
        batch.entries.push(leaf);
    }
    let root = next.root();
    let checkpoint = Checkpoint { origin: shared.config.origin.clone(), size: next.size, root, extensions: Vec::new() };
    let note = checkpoint.sign(&shared.signer).map_err(|e| Error::Config(format!("signing checkpoint: {e}")))?;
    batch.head = Some(StoredHead { size: next.size, integrated_time: time, checkpoint: note.clone() });
    shared.store.commit(&batch)?;
    shared.publish(Head { size: next.size, root, checkpoint: note.into(), integrated_time: time });
    Ok((next, appended))
}

#[cfg(test)]
mod tests {
    use super::*;
    use verifier::hash::leaf_hash;
    use verifier::tree::{hash_leaves, nodes_completed_by};

    #[test]
    fn frontier_matches_direct_roots_and_completed_nodes() {
        let mut f = Frontier::default();
        let mut leaves = Vec::new();
        for i in 0..300u64 {
            let h = leaf_hash(&i.to_le_bytes());
            leaves.push(h);
            let mut out = Vec::new();
            f.push(h, &mut out);
            let ids: Vec<NodeId> = out.iter().map(|(id, _)| *id).collect();
            assert_eq!(ids, nodes_completed_by(i).collect::<Vec<_>>());
            assert_eq!(f.root(), hash_leaves(&leaves));
        }
    }
}
