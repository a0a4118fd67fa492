//! Storage behind one narrow trait.
//!
//! A store keeps three things: entry leaf bytes by index, the hashes of
//! complete subtrees by [`NodeId`], and the head (tree size, integrated time
//! and the latest signed checkpoint). [`LogStore::commit`] writes all three
//! for a group of entries as one atomic, durable unit; nothing is
//! acknowledged before it returns. Proofs need O(log n) node reads and memory
//! does not grow with the log: the sequencer keeps only the right frontier.
//!
//! Two implementations share one conformance suite
//! (`ledger-core/tests/conformance.rs`): [`RocksStore`] (the default, on disk)
//! and [`MemoryStore`] (tests and benchmarks).

mod memory;
mod rocks;

pub use memory::MemoryStore;
pub use rocks::RocksStore;

use verifier::hash::Hash;
use verifier::tree::NodeId;

/// What a store failed at.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The underlying database reported an error.
    #[error("database error: {0}")]
    Backend(String),
    /// Stored data is missing or does not decode: the store is damaged.
    #[error("storage is corrupt: {0}")]
    Corrupt(String),
    /// A commit's nodes do not match its entries.
    #[error("malformed commit: {0}")]
    BadBatch(String),
    /// A commit did not start at the stored tree size (two writers).
    #[error("commit starts at index {got} but the tree has {expected} entries")]
    OutOfOrder { expected: u64, got: u64 },
}

/// The durable head of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredHead {
    /// Number of entries.
    pub size: u64,
    /// Integrated time of the last entry (ms since the Unix epoch).
    pub integrated_time: u64,
    /// The signed checkpoint note for `size`.
    pub checkpoint: String,
}

/// One group commit: contiguous entries, the nodes they complete, and the
/// head after them. `nodes` holds exactly the subtrees the entries complete,
/// in the order they complete them: for each entry, its leaf hash, then each
/// ancestor it completes, lowest first ([`verifier::tree::nodes_completed_by`]).
/// Leaf nodes must hold the RFC 9162 leaf hash of their entry: a store may
/// recompute them from the entry instead of storing them.
#[derive(Clone, Debug, Default)]
pub struct CommitBatch {
    /// Index of the first entry.
    pub first_index: u64,
    /// Leaf bytes, in index order.
    pub entries: Vec<Vec<u8>>,
    /// Newly completed subtrees.
    pub nodes: Vec<(NodeId, Hash)>,
    /// The head once committed.
    pub head: Option<StoredHead>,
}

/// The storage a log runs on. Implementations must make `commit` atomic and
/// durable, and must let readers run concurrently with the single writer.
pub trait LogStore: Send + Sync + 'static {
    /// The committed head, `None` for a new store.
    fn head(&self) -> Result<Option<StoredHead>, StorageError>;

    /// Node hashes for `ids`, `None` where a node is not stored.
    fn get_nodes(&self, ids: &[NodeId]) -> Result<Vec<Option<Hash>>, StorageError>;

    /// Leaf bytes of entries `[start, end)`; stops early at the first gap.
    fn get_entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StorageError>;

    /// Atomically and durably writes a batch. `batch.first_index` must equal
    /// the stored size.
    fn commit(&self, batch: &CommitBatch) -> Result<(), StorageError>;
}

impl<S: LogStore + ?Sized> LogStore for std::sync::Arc<S> {
    fn head(&self) -> Result<Option<StoredHead>, StorageError> {
        (**self).head()
    }
    fn get_nodes(&self, ids: &[NodeId]) -> Result<Vec<Option<Hash>>, StorageError> {
        (**self).get_nodes(ids)
    }
    fn get_entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StorageError> {
        (**self).get_entries(start, end)
    }
    fn commit(&self, batch: &CommitBatch) -> Result<(), StorageError> {
        (**self).commit(batch)
    }
}

/// Checks that `batch.nodes` are exactly the nodes its entries complete, in
/// order; stores rely on it to lay nodes out beside their entries.
fn check_nodes(batch: &CommitBatch) -> Result<(), StorageError> {
    let expected = (batch.first_index..batch.first_index + batch.entries.len() as u64).flat_map(verifier::tree::nodes_completed_by);
    let mut got = batch.nodes.iter().map(|(id, _)| *id);
    for id in expected {
        if got.next() != Some(id) {
            return Err(StorageError::BadBatch(format!("node {}/{} missing or out of order", id.level, id.index)));
        }
    }
    if got.next().is_some() {
        return Err(StorageError::BadBatch("batch holds nodes its entries do not complete".into()));
    }
    Ok(())
}

fn encode_head(head: &StoredHead) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + head.checkpoint.len());
    out.extend_from_slice(&head.size.to_be_bytes());
    out.extend_from_slice(&head.integrated_time.to_be_bytes());
    out.extend_from_slice(head.checkpoint.as_bytes());
    out
}

fn decode_head(bytes: &[u8]) -> Result<StoredHead, StorageError> {
    let corrupt = || StorageError::Corrupt("head record does not decode".into());
    let (size, rest) = bytes.split_at_checked(8).ok_or_else(corrupt)?;
    let (time, checkpoint) = rest.split_at_checked(8).ok_or_else(corrupt)?;
    Ok(StoredHead {
        size: u64::from_be_bytes(size.try_into().map_err(|_| corrupt())?),
        integrated_time: u64::from_be_bytes(time.try_into().map_err(|_| corrupt())?),
        checkpoint: String::from_utf8(checkpoint.to_vec()).map_err(|_| corrupt())?,
    })
}
