//! Storage behind one narrow, generic trait.
//!
//! A store keeps the log itself: entry leaf bytes by index, the hashes of
//! complete subtrees by [`NodeId`], and the head (tree size, integrated time
//! and the latest signed checkpoint). Everything else is a [`Record`]: a
//! key and a value in a [`Namespace`] (a RocksDB column family). Features
//! keep their state there: sealed openings and, apart from them, the
//! wrapped data keys that open them ([`openings`]), the agent registry and
//! the other views ([`crate::views`]) with the index each has applied,
//! and the state of OpenID SSF event streams ([`crate::ssf`]).
//!
//! [`LogStore::commit`] writes a group of entries, their nodes, the new
//! head and the records the group changes as one atomic, durable unit;
//! nothing is acknowledged before it returns. [`LogStore::erase`] changes
//! records outside a commit and makes the store drop the old bytes from its
//! files (crypto-shredding); [`LogStore::write`] changes records that no
//! view folds (stream cursors) outside a commit, cheaply. Proofs need O(log n) node reads and memory
//! does not grow with the log: the sequencer keeps only the right frontier.
//!
//! Two implementations pass one conformance suite ([`crate::conformance::run`]):
//! [`RocksStore`] (the default, on disk) and [`MemoryStore`] (tests and
//! benchmarks).

mod memory;
pub mod openings;
mod rocks;

pub use memory::MemoryStore;
pub use openings::{first_sealed_openings, Openings, OpeningsRecord, SealedOpenings};
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

/// Where a record lives. Each namespace is one RocksDB column family, so
/// its key encoding and compaction are its own (see `README.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Namespace {
    /// Sealed openings by entry index (`u64` big-endian):
    /// [`OpeningsRecord`]'s encoding.
    Openings,
    /// Wrapped data keys of sealed openings, by entry index; kept apart
    /// from the ciphertexts so a copy of those opens nothing.
    OpeningKeys,
    /// `agent ‖ 0x00 ‖ index` of every entry with openings, empty values.
    OpeningsByAgent,
    /// The agent registry view: agent id → its record.
    Agents,
    /// The index each view has applied (key: the view's name) and the
    /// records of views without a namespace of their own (keys start with
    /// the view's name and `0x00`).
    Views,
    /// OpenID SSF event streams ([`crate::ssf`]): each stream's
    /// configuration and delivery cursor. Not derived from the log: written
    /// outside commits, with [`LogStore::write`].
    SsfStreams,
}

impl Namespace {
    /// Every namespace.
    pub const ALL: [Self; 6] = [Self::Openings, Self::OpeningKeys, Self::OpeningsByAgent, Self::Agents, Self::Views, Self::SsfStreams];

    /// Its column family.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Openings => "openings",
            Self::OpeningKeys => "opening_keys",
            Self::OpeningsByAgent => "openings_by_agent",
            Self::Agents => "agents",
            Self::Views => "views",
            Self::SsfStreams => "ssf_streams",
        }
    }

    /// Whether [`LogStore::write`] may change its records: only state that
    /// no commit writes and no view folds, so a write outside the
    /// sequencer can never leave a view out of step with the log.
    pub const fn written_outside_commits(self) -> bool {
        matches!(self, Self::SsfStreams)
    }

    /// Whether its keys are entry indices (`u64` big-endian) of records
    /// that belong to those entries: a commit may write them only for its
    /// own entries.
    const fn keyed_by_entry(self) -> bool {
        matches!(self, Self::Openings | Self::OpeningKeys)
    }
}

/// One record written by a commit or an erase: a put, or a delete when
/// `value` is `None`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Its namespace.
    pub namespace: Namespace,
    /// Its key.
    pub key: Vec<u8>,
    /// The new value; `None` deletes the record.
    pub value: Option<Vec<u8>>,
}

impl Record {
    /// Writes `value` at `key`.
    pub fn put(namespace: Namespace, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Self { namespace, key: key.into(), value: Some(value.into()) }
    }

    /// Deletes `key`.
    pub fn delete(namespace: Namespace, key: impl Into<Vec<u8>>) -> Self {
        Self { namespace, key: key.into(), value: None }
    }
}

/// A key and its value, as scans return them.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// One group commit: contiguous entries, the nodes they complete, the head
/// after them and the records they change. `nodes` holds exactly the
/// subtrees the entries complete, in the order they complete them: for
/// each entry, its leaf hash, then each ancestor it completes, lowest first
/// ([`verifier::tree::nodes_completed_by`]). Leaf nodes must hold the
/// RFC 9162 leaf hash of their entry: a store may recompute them from the
/// entry instead of storing them. A batch without entries (at the stored
/// size) writes only its records.
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
    /// Records this batch puts or deletes, applied in order.
    pub records: Vec<Record>,
}

/// The storage a log runs on. Implementations must make `commit` and
/// `erase` atomic and durable, and must let readers run concurrently with
/// the single writer.
pub trait LogStore: Send + Sync + 'static {
    /// The committed head, `None` for a new store.
    fn head(&self) -> Result<Option<StoredHead>, StorageError>;

    /// Node hashes for `ids`, `None` where a node is not stored.
    fn get_nodes(&self, ids: &[NodeId]) -> Result<Vec<Option<Hash>>, StorageError>;

    /// Leaf bytes of entries `[start, end)`; stops early at the first gap.
    fn get_entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StorageError>;

    /// The record at `key`.
    fn get(&self, namespace: Namespace, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError>;

    /// The records at `keys`, in their order.
    fn multi_get(&self, namespace: Namespace, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, StorageError>;

    /// Up to `limit` records whose key starts with `prefix` and is not
    /// below `from`, in key order (page on with the last key returned
    /// followed by `0x00`).
    fn scan_prefix(&self, namespace: Namespace, prefix: &[u8], from: &[u8], limit: usize) -> Result<Vec<KeyValue>, StorageError>;

    /// Atomically and durably writes a batch. `batch.first_index` must
    /// equal the stored size; its nodes must be the ones its entries
    /// complete ([`StorageError::BadBatch`]), and its records in
    /// namespaces keyed by entry index must belong to its entries.
    fn commit(&self, batch: &CommitBatch) -> Result<(), StorageError>;

    /// Atomically and durably applies `records` outside a group commit,
    /// then makes the store drop the bytes they overwrite or delete from
    /// every file it keeps (crypto-shredding): slow, for rare erasures.
    fn erase(&self, records: &[Record]) -> Result<(), StorageError>;

    /// Atomically and durably applies `records` outside a group commit,
    /// concurrently with it: for namespaces no commit writes
    /// ([`Namespace::written_outside_commits`]; others are
    /// [`StorageError::BadBatch`] and nothing is written).
    fn write(&self, records: &[Record]) -> Result<(), StorageError>;
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
    fn get(&self, namespace: Namespace, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        (**self).get(namespace, key)
    }
    fn multi_get(&self, namespace: Namespace, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        (**self).multi_get(namespace, keys)
    }
    fn scan_prefix(&self, namespace: Namespace, prefix: &[u8], from: &[u8], limit: usize) -> Result<Vec<KeyValue>, StorageError> {
        (**self).scan_prefix(namespace, prefix, from, limit)
    }
    fn commit(&self, batch: &CommitBatch) -> Result<(), StorageError> {
        (**self).commit(batch)
    }
    fn erase(&self, records: &[Record]) -> Result<(), StorageError> {
        (**self).erase(records)
    }
    fn write(&self, records: &[Record]) -> Result<(), StorageError> {
        (**self).write(records)
    }
}

/// Checks that every record of a [`LogStore::write`] is in a namespace it
/// may change.
fn check_outside_commits(records: &[Record]) -> Result<(), StorageError> {
    match records.iter().find(|r| !r.namespace.written_outside_commits()) {
        Some(r) => Err(StorageError::BadBatch(format!("{} records are written only by commits", r.namespace.name()))),
        None => Ok(()),
    }
}

/// Checks that a batch's records keyed by entry index belong to its
/// entries.
fn check_records(batch: &CommitBatch) -> Result<(), StorageError> {
    let end = batch.first_index + batch.entries.len() as u64;
    for record in batch.records.iter().filter(|r| r.namespace.keyed_by_entry()) {
        let index = <[u8; 8]>::try_from(record.key.as_slice()).map(u64::from_be_bytes);
        match index {
            Ok(i) if (batch.first_index..end).contains(&i) => {}
            Ok(i) => return Err(StorageError::BadBatch(format!("{} record for entry {i} outside the batch", record.namespace.name()))),
            Err(_) => return Err(StorageError::BadBatch(format!("{} record key is not an entry index", record.namespace.name()))),
        }
    }
    Ok(())
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

/// Where a prefix scan starts: the larger of `prefix` and `from`.
fn scan_start<'a>(prefix: &'a [u8], from: &'a [u8]) -> &'a [u8] {
    if from > prefix {
        from
    } else {
        prefix
    }
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

/// The stored hashes of `ids`; a missing one means the store is damaged.
pub(crate) fn fetch_nodes(store: &dyn LogStore, ids: &[NodeId]) -> Result<Vec<Hash>, StorageError> {
    store
        .get_nodes(ids)?
        .into_iter()
        .zip(ids)
        .map(|(h, id)| h.ok_or_else(|| StorageError::Corrupt(format!("node {}/{} is missing", id.level, id.index))))
        .collect()
}
