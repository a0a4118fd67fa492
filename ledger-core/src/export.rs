//! Audit archives of the log ([`verifier::archive`], docs/FORMAT.md "Audit
//! archives"): a range of entries, the frontier and consistency proofs that
//! tie it to a signed checkpoint, and optionally a consistency proof from
//! the size an auditor last saw; zstd-compressed and written as it is read,
//! so an export of any size holds at most [`CHUNK`] leaves in memory.
//!
//! The running server exports through [`crate::Log::export`]; an auditor
//! handed a copy of a data directory runs `ledger-server export`, which
//! opens the store read-only ([`crate::store::RocksStore::open_read_only`])
//! and calls [`export_archive`] on it.

use std::io::Write;

use verifier::archive::{ArchiveHead, ArchiveHeader, ArchiveWriter, FORMAT};
use verifier::hash::Hash;
use verifier::note::SignedNote;
use verifier::tree;
use verifier::Checkpoint;

use crate::store::{fetch_nodes, LogStore, StorageError};
use crate::Error;

/// Leaves read from the store at a time.
pub const CHUNK: u64 = 64;

/// zstd level: fast enough to keep up with the store on one core.
pub const ZSTD_LEVEL: i32 = 3;

/// Which part of the log to export.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportRange {
    /// First entry (default 0).
    pub start: Option<u64>,
    /// One past the last entry (default: the checkpoint's size).
    pub end: Option<u64>,
    /// The tree size the auditor last saw: a consistency proof from it to
    /// the checkpoint is included.
    pub since_size: Option<u64>,
}

impl ExportRange {
    /// The header of an export of this range under `checkpoint`, or why
    /// the range is not one of its tree.
    pub fn header(&self, checkpoint: &Checkpoint) -> Result<ArchiveHeader, Error> {
        let header = ArchiveHeader {
            format: FORMAT.to_owned(),
            origin: checkpoint.origin.clone(),
            start: self.start.unwrap_or(0),
            end: self.end.unwrap_or(checkpoint.size),
            tree_size: checkpoint.size,
            since_size: self.since_size,
        };
        header.check().map_err(|e| Error::BadExportRange(e.to_string()))?;
        Ok(header)
    }
}

/// The checkpoint a signed note carries (its signatures are the auditor's
/// to check).
pub fn checkpoint_of(note: &str) -> Result<Checkpoint, Error> {
    let corrupt = |e: String| Error::Storage(StorageError::Corrupt(format!("stored checkpoint: {e}")));
    let signed = SignedNote::parse(note).map_err(|e| corrupt(e.to_string()))?;
    Checkpoint::from_text(&signed.text).map_err(|e| corrupt(e.to_string()))
}

/// Writes a zstd-compressed archive of `range` under the signed checkpoint
/// `note` (whose tree the store must hold) to `out`, reading the store as
/// it goes. Returns the header written.
pub fn export_archive(store: &dyn LogStore, note: &str, range: ExportRange, out: impl Write) -> Result<ArchiveHeader, Error> {
    let checkpoint = checkpoint_of(note)?;
    let stored = store.head()?.map_or(0, |h| h.size);
    if checkpoint.size > stored {
        return Err(Error::SizeBeyondTree { requested: checkpoint.size, size: stored });
    }
    let header = range.header(&checkpoint)?;
    let n = header.tree_size;
    let head = ArchiveHead {
        checkpoint: note.to_owned(),
        frontier: fetch_nodes(store, &tree::frontier(header.start))?,
        range_proof: consistency(store, header.end, n)?,
        since_proof: header.since_size.map(|m| consistency(store, m, n)).transpose()?,
        header: header.clone(),
    };
    let encoder = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL).map_err(archive_io)?;
    let mut writer = ArchiveWriter::begin(encoder, &head).map_err(archive)?;
    let mut from = header.start;
    while from < header.end {
        let to = from.saturating_add(CHUNK).min(header.end);
        let leaves = store.get_entries(from, to)?;
        if leaves.len() as u64 != to - from {
            return Err(Error::Storage(StorageError::Corrupt(format!(
                "entry {} is missing below the tree size",
                from + leaves.len() as u64
            ))));
        }
        for leaf in &leaves {
            writer.leaf(leaf).map_err(archive)?;
        }
        from = to;
    }
    writer.finish().map_err(archive)?.finish().map_err(archive_io)?.flush().map_err(archive_io)?;
    Ok(header)
}

/// RFC 9162 consistency proof from `old` to `new` from stored nodes; empty
/// when either tree is empty or they are the same.
fn consistency(store: &dyn LogStore, old: u64, new: u64) -> Result<Vec<Hash>, Error> {
    if old == 0 || old == new {
        return Ok(Vec::new());
    }
    let plan = tree::consistency_plan(old, new).map_err(|_| Error::OldSizeLarger { old, new })?;
    let hashes = fetch_nodes(store, plan.nodes())?;
    plan.assemble(&hashes).map_err(|e| Error::Storage(StorageError::Corrupt(e.to_string())))
}

fn archive(e: verifier::archive::ArchiveError) -> Error {
    Error::Export(e.to_string())
}

fn archive_io(e: std::io::Error) -> Error {
    Error::Export(format!("writing the archive: {e}"))
}
