//! Views: state derived from the log's entries by a deterministic fold.
//!
//! A [`View`] folds each group of entries inside the group commit: the
//! sequencer hands it the group, the view adds the records its new state
//! needs to the group's [`CommitBatch`], and the sequencer adds the index
//! the view has now applied (namespace [`Namespace::Views`], key: the
//! view's name). Entries, records and applied index become durable in one
//! synced write, so a view is never ahead of or behind the log on disk.
//! Only once the write is durable does the view [`publish`](View::publish)
//! its new state to readers; if it fails the view
//! [`discard`](View::discard)s it.
//!
//! At open (`recover`) a view loads its records; when its applied index
//! is behind the head it folds the missing entries from the log, and when
//! it has neither records nor an applied index it is rebuilt from the first
//! entry. Folding is deterministic, so a rebuilt view equals one kept up to
//! date entry by entry. The agent registry ([`registry`]) is the first
//! view, the event index ([`events`]) the second, the signal sources
//! ([`sources`]) the third, the trust view ([`trust`]) the fourth, the grants ([`grants`]: action
//! tokens and escalations) the fifth.

pub mod events;
pub mod grants;
pub mod registry;
pub mod sources;
pub mod trust;

use crate::entry::NewEntry;
use crate::store::{CommitBatch, LogStore, Namespace, Record, StorageError};
use crate::Error;

/// Entries a view folds: contiguous, in index order.
#[derive(Clone, Copy, Debug)]
pub struct Entries<'a> {
    /// Index of the first.
    pub first_index: u64,
    /// Leaf bytes, as stored.
    pub leaves: &'a [Vec<u8>],
    /// On the append path, the same entries as admitted (grouped by
    /// request, in order), so a view need not parse leaves it was handed
    /// parsed; `None` when folding from the log (at open).
    pub admitted: Option<&'a [&'a [NewEntry]]>,
    /// On the append path, the integrated time stamped on all of them.
    pub integrated_time: Option<u64>,
}

/// State derived from entries by a deterministic fold, kept in the same
/// store and the same commits as the log.
///
/// The sequencer calls [`View::fold`], then [`View::publish`] or
/// [`View::discard`], on one thread, one group at a time; readers call the
/// view's own accessors concurrently and see only published state.
pub trait View: Send + Sync + std::fmt::Debug + 'static {
    /// The view's name, unique in a log: the key of its applied index.
    fn name(&self) -> &'static str;

    /// Loads the published state from the view's records; `Ok(false)` when
    /// the store holds none.
    fn load(&self, store: &dyn LogStore) -> Result<bool, Error>;

    /// Folds `entries` into a pending state, on top of the published state
    /// (and of the pending state of earlier folds not yet published), and
    /// appends the records that store it to `records`. Must depend on
    /// nothing but the state and the entries. A view with nothing to do
    /// for these entries should return at once.
    fn fold(&self, entries: &Entries<'_>, records: &mut Vec<Record>) -> Result<(), Error>;

    /// The records of the pending state are durable: readers see it now.
    fn publish(&self);

    /// The records of the pending state were not written: forget it.
    fn discard(&self);
}

/// The record holding the index `view` has applied (the size of the log it
/// reflects).
pub fn applied_record(view: &str, size: u64) -> Record {
    Record::put(Namespace::Views, view.as_bytes(), size.to_be_bytes())
}

/// The index `view` has applied, `None` when it was never written.
pub fn applied(store: &dyn LogStore, view: &str) -> Result<Option<u64>, StorageError> {
    store
        .get(Namespace::Views, view.as_bytes())?
        .map(|v| <[u8; 8]>::try_from(v.as_slice()).map(u64::from_be_bytes))
        .transpose()
        .map_err(|_| StorageError::Corrupt(format!("the applied index of view {view} is not 8 bytes")))
}

/// Key of record `key` of `view` in [`Namespace::Views`], for views without
/// a namespace of their own: `view ‖ 0x00 ‖ key`.
pub fn record_key(view: &str, key: &[u8]) -> Vec<u8> {
    [view.as_bytes(), &[0], key].concat()
}

/// Entries folded at a time when a view catches up with the log.
const CATCH_UP_CHUNK: u64 = 1024;

/// Brings `view` up to the log's `size` at open: loads its records, then
/// folds the entries it has not applied, committing its records and
/// applied index every [`CATCH_UP_CHUNK`] entries. A store written before
/// views had applied indices holds records but no index: those records
/// were written in the same commits as their entries, so they are taken as
/// applied up to the head.
pub(crate) fn recover(store: &dyn LogStore, view: &dyn View, size: u64) -> Result<(), Error> {
    let name = view.name();
    // Loaded first: a view that finds records it cannot read may drop
    // them with its applied index, to be rebuilt from the first entry.
    let loaded = view.load(store)?;
    let marker = applied(store, name)?;
    let from = match marker {
        Some(applied) if applied > size => {
            return Err(StorageError::Corrupt(format!("view {name} has applied {applied} entries but the log holds {size}")).into())
        }
        Some(applied) => applied,
        None if loaded => size,
        None => 0,
    };
    if from < size {
        tracing::info!(view = name, from, size, "folding the log into a view");
    }
    let mut start = from;
    loop {
        let end = start.saturating_add(CATCH_UP_CHUNK).min(size);
        let leaves = store.get_entries(start, end)?;
        if leaves.len() as u64 != end - start {
            return Err(StorageError::Corrupt(format!("entry {} is missing below the tree size", start + leaves.len() as u64)).into());
        }
        let mut records = Vec::new();
        if let Err(e) = view.fold(&Entries { first_index: start, leaves: &leaves, admitted: None, integrated_time: None }, &mut records) {
            view.discard();
            return Err(e);
        }
        records.push(applied_record(name, end));
        if marker == Some(end) && records.len() == 1 {
            return Ok(());
        }
        match store.commit(&CommitBatch { first_index: size, records, ..CommitBatch::default() }) {
            Ok(()) => view.publish(),
            Err(e) => {
                view.discard();
                return Err(e.into());
            }
        }
        if end == size {
            return Ok(());
        }
        start = end;
    }
}
