//! The crate's error type.

use std::time::Duration;

use crate::entry::EntryError;
use crate::store::StorageError;

/// Everything a log operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A submitted entry is invalid.
    #[error(transparent)]
    Entry(#[from] EntryError),
    /// An append carried no entries.
    #[error("a batch must hold at least one entry")]
    EmptyBatch,
    /// An append is larger than the whole sequencer queue.
    #[error("batch of {bytes} bytes is larger than the sequencer queue ({max} bytes)")]
    BatchTooLarge { bytes: usize, max: usize },
    /// The sequencer queue is full: back off and retry.
    #[error("the sequencer queue is full; retry after {} s", retry_after.as_secs())]
    Pushback { retry_after: Duration },
    /// The log is shutting down and takes no more appends.
    #[error("the log is shutting down")]
    ShuttingDown,
    /// An entry index at or beyond the tree size.
    #[error("index {index} is beyond the tree (size {size})")]
    IndexBeyondTree { index: u64, size: u64 },
    /// A tree size larger than the log.
    #[error("tree size {requested} is beyond the current tree size {size}")]
    SizeBeyondTree { requested: u64, size: u64 },
    /// A consistency proof asked for an old size above the new size.
    #[error("old size {old} is larger than new size {new}")]
    OldSizeLarger { old: u64, new: u64 },
    /// A tile that does not exist (yet) in the tree.
    #[error("tile {0} is not available at the current tree size")]
    TileNotAvailable(String),
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The log cannot start with this configuration or data.
    #[error("{0}")]
    Config(String),
}
