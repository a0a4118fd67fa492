//! Sealed openings of hidden fields as records of any [`LogStore`].
//!
//! | namespace | key | value |
//! |---|---|---|
//! | [`Namespace::Openings`] | index `i`, `u64` big-endian | `0x01 ‖ sealed openings`, or `0x00 ‖ time` once shredded |
//! | [`Namespace::OpeningKeys`] | index `i`, `u64` big-endian | the wrapped data key of entry `i`'s openings; deleted when shredded |
//! | [`Namespace::OpeningsByAgent`] | agent id ‖ `0x00` ‖ index | empty |
//!
//! The sequencer writes them in the group commit of their entry
//! ([`SealedOpenings::push_records`]); [`Openings`] reads them and shreds
//! them with [`LogStore::erase`], which makes the store drop the sealed
//! bytes and the wrapped key from its files.

use super::{LogStore, Namespace, Record, StorageError};

/// Encrypted openings of one entry: the ciphertext and the wrapped data key
/// that opens it, which a store keeps apart (a backup of the ciphertexts
/// alone opens nothing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedOpenings {
    /// The entry.
    pub index: u64,
    /// Its agent (indexed, for shredding everything of one agent). Kept as
    /// the id's text, as the store's index key spells it: the storage layer
    /// holds bytes, the log hands it an [`AgentId`](verifier::AgentId)'s
    /// text.
    pub agent: String,
    /// [`Envelope::sealed`](crate::sealing::Envelope::sealed).
    pub sealed: Vec<u8>,
    /// [`Envelope::wrapped_key`](crate::sealing::Envelope::wrapped_key);
    /// `None` only for openings sealed with the master key itself (the
    /// legacy v1 format).
    pub wrapped_key: Option<Vec<u8>>,
}

impl SealedOpenings {
    /// Appends the records that store these openings to `out` (for a
    /// [`CommitBatch`](super::CommitBatch) holding entry `index`).
    pub fn push_records(self, out: &mut Vec<Record>) {
        let key = self.index.to_be_bytes();
        out.push(Record::put(Namespace::Openings, key, sealed_value(&self.sealed)));
        if let Some(wrapped) = self.wrapped_key {
            out.push(Record::put(Namespace::OpeningKeys, key, wrapped));
        }
        out.push(Record::put(Namespace::OpeningsByAgent, agent_key(&self.agent, self.index), Vec::new()));
    }

    /// The records that store these openings.
    pub fn records(&self) -> Vec<Record> {
        let mut out = Vec::with_capacity(3);
        self.clone().push_records(&mut out);
        out
    }
}

/// What the secret store holds for an entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpeningsRecord {
    /// Sealed openings, with their wrapped data key if they have one.
    Sealed {
        /// The ciphertext.
        sealed: Vec<u8>,
        /// The wrapped data key (kept in its own namespace).
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

/// Value of an `openings` record for sealed openings: `0x01 ‖ sealed`. The
/// wrapped key is stored apart.
fn sealed_value(sealed: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + sealed.len());
    out.push(TAG_SEALED);
    out.extend_from_slice(sealed);
    out
}

/// Value of an `openings` record once shredded: `0x00 ‖ time`.
fn shredded_value(at_ms: u64) -> Vec<u8> {
    [&[TAG_SHREDDED][..], &at_ms.to_be_bytes()].concat()
}

/// Decodes an `openings` value; `wrapped_key` is the entry's wrapped data
/// key, kept only for sealed records.
fn decode(bytes: &[u8], wrapped_key: Option<Vec<u8>>) -> Result<OpeningsRecord, StorageError> {
    match bytes {
        [TAG_SEALED, sealed @ ..] => Ok(OpeningsRecord::Sealed { sealed: sealed.to_vec(), wrapped_key }),
        [TAG_SHREDDED, at @ ..] => Ok(OpeningsRecord::Shredded {
            at_ms: u64::from_be_bytes(at.try_into().map_err(|_| StorageError::Corrupt("shredded record is not 9 bytes".into()))?),
        }),
        _ => Err(StorageError::Corrupt("openings record has an unknown tag".into())),
    }
}

fn is_sealed(bytes: &[u8]) -> bool {
    bytes.first() == Some(&TAG_SEALED)
}

/// Key of the agent index: `agent ‖ 0x00 ‖ index (u64 big-endian)`.
fn agent_key(agent: &str, index: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(agent.len() + 9);
    k.extend_from_slice(agent.as_bytes());
    k.push(0);
    k.extend_from_slice(&index.to_be_bytes());
    k
}

fn index_of(key: &[u8]) -> Result<u64, StorageError> {
    key.try_into().map(u64::from_be_bytes).map_err(|_| StorageError::Corrupt("openings key is not 8 bytes".into()))
}

/// Records read per page by the scans below.
const PAGE: usize = 1024;

/// Reading and shredding sealed openings, on any [`LogStore`].
pub trait Openings {
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
}

impl<S: LogStore + ?Sized> Openings for S {
    fn openings(&self, index: u64) -> Result<Option<OpeningsRecord>, StorageError> {
        let key = index.to_be_bytes();
        let Some(bytes) = self.get(Namespace::Openings, &key)? else { return Ok(None) };
        let wrapped_key = if is_sealed(&bytes) { self.get(Namespace::OpeningKeys, &key)? } else { None };
        decode(&bytes, wrapped_key).map(Some)
    }

    fn openings_from(&self, start: u64, limit: usize) -> Result<Vec<(u64, OpeningsRecord)>, StorageError> {
        let page = self.scan_prefix(Namespace::Openings, &[], &start.to_be_bytes(), limit)?;
        let sealed: Vec<&[u8]> = page.iter().filter(|(_, v)| is_sealed(v)).map(|(k, _)| k.as_slice()).collect();
        let mut keys = self.multi_get(Namespace::OpeningKeys, &sealed)?.into_iter();
        page.iter()
            .map(|(key, value)| {
                let wrapped_key = if is_sealed(value) { keys.next().flatten() } else { None };
                Ok((index_of(key)?, decode(value, wrapped_key)?))
            })
            .collect()
    }

    fn openings_of_agent(&self, agent: &str) -> Result<Vec<u64>, StorageError> {
        let start = agent_key(agent, 0);
        let prefix = &start[..start.len() - 8];
        let mut out = Vec::new();
        let mut from = start.clone();
        loop {
            let page = self.scan_prefix(Namespace::OpeningsByAgent, prefix, &from, PAGE)?;
            for (key, _) in &page {
                if key.len() == prefix.len() + 8 {
                    out.push(index_of(&key[prefix.len()..])?);
                }
            }
            match page.last() {
                Some((last, _)) if page.len() == PAGE => from = [last.as_slice(), &[0]].concat(),
                _ => return Ok(out),
            }
        }
    }

    fn shred_openings(&self, indices: &[u64], at_ms: u64) -> Result<Vec<u64>, StorageError> {
        let keys: Vec<[u8; 8]> = indices.iter().map(|i| i.to_be_bytes()).collect();
        let refs: Vec<&[u8]> = keys.iter().map(|k| k.as_slice()).collect();
        let mut done = Vec::new();
        let mut records = Vec::new();
        for ((index, key), value) in indices.iter().zip(&keys).zip(self.multi_get(Namespace::Openings, &refs)?) {
            if value.as_deref().is_some_and(is_sealed) {
                records.push(Record::put(Namespace::Openings, *key, shredded_value(at_ms)));
                records.push(Record::delete(Namespace::OpeningKeys, *key));
                done.push(*index);
            }
        }
        if !records.is_empty() {
            self.erase(&records)?;
        }
        Ok(done)
    }
}

/// Up to `max` sealed-openings records, lowest index first, skipping
/// shredded ones. Costs a scan over the shredded records before them; the
/// log runs it once, at start.
pub fn first_sealed_openings(store: &dyn LogStore, max: usize) -> Result<Vec<(u64, OpeningsRecord)>, StorageError> {
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
