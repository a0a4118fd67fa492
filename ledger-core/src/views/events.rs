//! The event index, a view: the index, kind and agent of every entry a
//! subscriber hears of (revocations, reinstatements, risk-level changes,
//! signals, escalations and their decisions). The log is the event store: an event *is* its entry, its id
//! is the entry's index, and this index only lets a subscriber that
//! resumes after index `n` find the next events without reading every
//! entry in between ([`Log::events`](crate::Log::events)).
//!
//! Records: namespace [`Namespace::Views`], key [`record_key`]`("events",
//! index as u64 big-endian)`, value `kind ‖ 0x00 ‖ agent` (the agent empty
//! for a signal about a code hash). Written in the commit of their
//! entries, so the index is never behind the log on disk.

use verifier::entry::{EntryKind, Leaf};

use super::{record_key, Entries, View};
use crate::store::{LogStore, Namespace, Record, StorageError};
use crate::Error;

/// The kinds that are events.
pub const EVENT_KINDS: [EntryKind; 6] =
    [EntryKind::Revocation, EntryKind::Reinstatement, EntryKind::Risk, EntryKind::Signal, EntryKind::Escalation, EntryKind::Decision];

/// The view's name.
pub const NAME: &str = "events";

/// An indexed event: the index of its entry, its kind and the agent it is
/// about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRef {
    /// The entry's index (the event's id).
    pub index: u64,
    /// Its kind.
    pub kind: EntryKind,
    /// The agent it is about (empty for a signal about a code hash).
    pub agent: String,
}

/// The event index. It keeps nothing in memory: readers scan its records.
#[derive(Debug, Default)]
pub struct EventIndex;

/// The key of the record of the event at `index`.
pub fn key(index: u64) -> Vec<u8> {
    record_key(NAME, &index.to_be_bytes())
}

/// Decodes one record.
pub fn decode(key: &[u8], value: &[u8]) -> Result<EventRef, StorageError> {
    let corrupt = || StorageError::Corrupt("event index record".into());
    let prefix = record_key(NAME, &[]);
    let index = key.strip_prefix(prefix.as_slice()).and_then(|k| <[u8; 8]>::try_from(k).ok()).ok_or_else(corrupt)?;
    let split = value.iter().position(|b| *b == 0).ok_or_else(corrupt)?;
    let kind = std::str::from_utf8(&value[..split]).ok().and_then(EntryKind::parse).ok_or_else(corrupt)?;
    let agent = std::str::from_utf8(&value[split + 1..]).map_err(|_| corrupt())?.to_owned();
    Ok(EventRef { index: u64::from_be_bytes(index), kind, agent })
}

/// Reads up to `limit` indexed events after index `after` (from the first
/// when `None`), in index order.
pub fn scan(store: &dyn LogStore, after: Option<u64>, limit: usize) -> Result<Vec<EventRef>, StorageError> {
    let from = match after {
        Some(i) if i == u64::MAX => return Ok(Vec::new()),
        Some(i) => key(i + 1),
        None => key(0),
    };
    store.scan_prefix(Namespace::Views, &record_key(NAME, &[]), &from, limit)?.iter().map(|(k, v)| decode(k, v)).collect()
}

impl View for EventIndex {
    fn name(&self) -> &'static str {
        NAME
    }

    fn load(&self, store: &dyn LogStore) -> Result<bool, Error> {
        Ok(!scan(store, None, 1)?.is_empty())
    }

    fn fold(&self, entries: &Entries<'_>, records: &mut Vec<Record>) -> Result<(), Error> {
        let kinds: Option<Vec<EntryKind>> = entries.admitted.map(|groups| groups.iter().flat_map(|g| g.iter().map(|e| e.kind())).collect());
        for (i, leaf) in entries.leaves.iter().enumerate() {
            // On the append path the kinds are known; a leaf is decoded
            // only when it is an event (or when folding from the log).
            if kinds.as_ref().is_some_and(|k| k.get(i).is_some_and(|k| !EVENT_KINDS.contains(k))) {
                continue;
            }
            let index = entries.first_index + i as u64;
            let (decoded, _) = Leaf::decode(leaf).map_err(|e| Error::Storage(StorageError::Corrupt(format!("entry {index}: {e}"))))?;
            if !EVENT_KINDS.contains(&decoded.kind) {
                continue;
            }
            let agent = match decoded.kind {
                EntryKind::Signal => decoded.members.get("subject").and_then(serde_json::Value::as_str).unwrap_or_default(),
                _ => decoded.text("agent"),
            };
            let value = [decoded.kind.as_str().as_bytes(), &[0], agent.as_bytes()].concat();
            records.push(Record::put(Namespace::Views, key(index), value));
        }
        Ok(())
    }

    // Nothing is kept in memory: the records are the state.
    fn publish(&self) {}

    fn discard(&self) {}
}
