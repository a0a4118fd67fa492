//! Storage behind one narrow trait.
//!
//! A store keeps three things: entry leaf bytes by index, the hashes of
//! complete subtrees by [`NodeId`], and the head (tree size, integrated time
//! and the latest signed checkpoint). Beside them it keeps the secret side:
//! sealed openings and, apart from them, the wrapped data keys that open
//! them ([`crate::sealing`]), plus the agent registry. [`LogStore::commit`]
//! writes all of it for a group of entries as one atomic, durable unit;
//! nothing is acknowledged before it returns. Proofs need O(log n) node
//! reads and memory does not grow with the log: the sequencer keeps only
//! the right frontier.
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
    /// Sealed openings of entries in this batch that have hidden fields.
    pub openings: Vec<SealedOpenings>,
    /// Agent registry records this batch changes: `(agent id, record)`.
    pub agents: Vec<(String, Vec<u8>)>,
}

/// Encrypted openings of one entry: the ciphertext and the wrapped data key
/// that opens it, which a store keeps apart (a backup of the ciphertexts
/// alone opens nothing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedOpenings {
    /// The entry.
    pub index: u64,
    /// Its agent (indexed, for shredding everything of one agent).
    pub agent: String,
    /// [`Envelope::sealed`](crate::sealing::Envelope::sealed).
    pub sealed: Vec<u8>,
    /// [`Envelope::wrapped_key`](crate::sealing::Envelope::wrapped_key);
    /// `None` only for openings sealed with the master key itself (the
    /// legacy v1 format).
    pub wrapped_key: Option<Vec<u8>>,
}

/// What the secret store holds for an entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpeningsRecord {
    /// Sealed openings, with their wrapped data key if they have one.
    Sealed {
        /// The ciphertext.
        sealed: Vec<u8>,
        /// The wrapped data key (kept in its own column family).
        wrapped_key: Option<Vec<u8>>,
    },
    /// Erased (crypto-shredded) at this time, ms since the Unix epoch: the
    /// ciphertext and the wrapped data key are gone.
    Shredded {
        /// When.
        at_ms: u64,
    },
}

/// Tag of an `openings` value holding sealed bytes.
const TAG_SEALED: u8 = 1;
/// Tag of an `openings` value holding a shred time.
const TAG_SHREDDED: u8 = 0;

/// Value of the `openings` column family for sealed openings:
/// `0x01 ‖ sealed`. The wrapped key is stored apart.
fn sealed_value(sealed: &[u8]) -> Vec<u8> {
    [&[TAG_SEALED][..], sealed].concat()
}

/// Value of the `openings` column family once shredded: `0x00 ‖ time`.
fn shredded_value(at_ms: u64) -> Vec<u8> {
    [&[TAG_SHREDDED][..], &at_ms.to_be_bytes()].concat()
}

/// Decodes an `openings` value; `wrapped_key` fetches the entry's wrapped
/// data key, read only for sealed records.
fn decode_openings(
    bytes: &[u8],
    wrapped_key: impl FnOnce() -> Result<Option<Vec<u8>>, StorageError>,
) -> Result<OpeningsRecord, StorageError> {
    match bytes {
        [TAG_SEALED, sealed @ ..] => Ok(OpeningsRecord::Sealed { sealed: sealed.to_vec(), wrapped_key: wrapped_key()? }),
        [TAG_SHREDDED, at @ ..] => Ok(OpeningsRecord::Shredded {
            at_ms: u64::from_be_bytes(at.try_into().map_err(|_| StorageError::Corrupt("shredded record is not 9 bytes".into()))?),
        }),
        _ => Err(StorageError::Corrupt("openings record has an unknown tag".into())),
    }
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

    /// The secret-store record of entry `index`, `None` if it never had
    /// openings.
    fn openings(&self, index: u64) -> Result<Option<OpeningsRecord>, StorageError>;

    /// Up to `limit` secret-store records from index `start` on, in index
    /// order, skipping entries that never had openings (finds the sealed
    /// openings a master key must open before the log starts).
    fn openings_from(&self, start: u64, limit: usize) -> Result<Vec<(u64, OpeningsRecord)>, StorageError>;

    /// Indices of the entries of `agent` that have (or had) openings.
    fn openings_of_agent(&self, agent: &str) -> Result<Vec<u64>, StorageError>;

    /// Durably replaces the openings of `indices` by shredded records,
    /// deletes their wrapped data keys, and makes the store drop the old
    /// bytes of both; returns the indices that held sealed openings
    /// (already shredded or absent ones are skipped).
    fn shred_openings(&self, indices: &[u64], at_ms: u64) -> Result<Vec<u64>, StorageError>;

    /// Every agent registry record.
    fn agents(&self) -> Result<Vec<(String, Vec<u8>)>, StorageError>;
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
    fn openings(&self, index: u64) -> Result<Option<OpeningsRecord>, StorageError> {
        (**self).openings(index)
    }
    fn openings_from(&self, start: u64, limit: usize) -> Result<Vec<(u64, OpeningsRecord)>, StorageError> {
        (**self).openings_from(start, limit)
    }
    fn openings_of_agent(&self, agent: &str) -> Result<Vec<u64>, StorageError> {
        (**self).openings_of_agent(agent)
    }
    fn shred_openings(&self, indices: &[u64], at_ms: u64) -> Result<Vec<u64>, StorageError> {
        (**self).shred_openings(indices, at_ms)
    }
    fn agents(&self) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        (**self).agents()
    }
}

/// Up to `max` sealed-openings records, lowest index first, skipping
/// shredded ones. Costs a scan over the shredded records before them; the
/// log runs it once, at start.
pub fn first_sealed_openings(store: &dyn LogStore, max: usize) -> Result<Vec<(u64, OpeningsRecord)>, StorageError> {
    const PAGE: usize = 1024;
    let mut out = Vec::new();
    let mut start = 0;
    while out.len() < max {
        let page = store.openings_from(start, PAGE)?;
        let next = page.last().and_then(|(i, _)| i.checked_add(1));
        let full = page.len() == PAGE;
        out.extend(page.into_iter().filter(|(_, r)| matches!(r, OpeningsRecord::Sealed { .. })).take(max - out.len()));
        match next {
            Some(n) if full => start = n,
            _ => break,
        }
    }
    Ok(out)
}

/// Checks that a batch's openings belong to its entries.
fn check_openings(batch: &CommitBatch) -> Result<(), StorageError> {
    let end = batch.first_index + batch.entries.len() as u64;
    match batch.openings.iter().find(|o| o.index < batch.first_index || o.index >= end) {
        Some(o) => Err(StorageError::BadBatch(format!("openings for entry {} outside the batch", o.index))),
        None => Ok(()),
    }
}

/// Key of the agent index: `agent ‖ 0x00 ‖ index (u64 big-endian)`.
fn agent_key(agent: &str, index: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(agent.len() + 9);
    k.extend_from_slice(agent.as_bytes());
    k.push(0);
    k.extend_from_slice(&index.to_be_bytes());
    k
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
