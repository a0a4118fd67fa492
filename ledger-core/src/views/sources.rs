//! Signal sources, a view: each registered source's key in force, the
//! signal types it may file, its last sequence number and the indices of
//! its registration, as the sources fold of [`verifier::fold::sources`]
//! decides them.
//!
//! As with the agent registry ([`super::registry`]), admission (module
//! `append`) decides each group's `source` entries and source-signed
//! signals through [`sources::decide`] and stages what it computes as the
//! pending state; [`View::fold`] only writes its records. Folding from the
//! log (at open, when the records are missing or behind) replays the
//! leaves through the same fold ([`sources::replay`]): they were admitted,
//! so their signatures are not checked again.
//!
//! Records: namespace [`Namespace::Views`], key [`record_key`]`("sources",
//! name)`, value [`to_bytes`] (canonical JSON), written in the group's
//! commit batch.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, RwLock};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{Map, Value};
use verifier::entry::{Leaf, SignalType};
use verifier::fold::sources;

use super::{record_key, Entries, View};
use crate::store::{LogStore, Namespace, Record, StorageError};
use crate::Error;

pub use verifier::fold::sources::SourceState;

/// The view's name.
pub const NAME: &str = "sources";

/// The stored encoding of a source's record (canonical JSON).
pub fn to_bytes(state: &SourceState) -> Vec<u8> {
    let mut m = Map::new();
    m.insert("key".into(), Value::from(B64.encode(state.key.as_bytes())));
    m.insert("types".into(), Value::Array(state.types.iter().map(|t| Value::from(t.as_str())).collect()));
    m.insert("registered_index".into(), Value::from(state.registered_index));
    m.insert("key_index".into(), Value::from(state.key_index));
    m.insert("last_seq".into(), Value::from(state.last_seq));
    verifier::canonical::to_canonical(&Value::Object(m))
}

/// Decodes [`to_bytes`].
pub fn from_bytes(bytes: &[u8]) -> Result<SourceState, StorageError> {
    let corrupt = |what: &str| StorageError::Corrupt(format!("source record: {what}"));
    let v: Value = serde_json::from_slice(bytes).map_err(|_| corrupt("not JSON"))?;
    let u = |k: &str| v.get(k).and_then(Value::as_u64).ok_or_else(|| corrupt(k));
    let types = v
        .get("types")
        .and_then(Value::as_array)
        .ok_or_else(|| corrupt("types"))?
        .iter()
        .map(|t| t.as_str().and_then(SignalType::parse).ok_or_else(|| corrupt("types")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SourceState {
        key: verifier::entry::signing::parse_stored_public_key(v.get("key").and_then(Value::as_str).unwrap_or_default())
            .map_err(|_| corrupt("key"))?,
        types,
        registered_index: u("registered_index")?,
        key_index: u("key_index")?,
        last_seq: u("last_seq")?,
    })
}

/// The sources: what readers see (published after each commit), and the
/// pending state of the group being committed.
#[derive(Debug, Default)]
pub struct Sources {
    published: RwLock<BTreeMap<String, SourceState>>,
    pending: Mutex<HashMap<String, SourceState>>,
}

impl Sources {
    /// The published record of the source `name`.
    pub fn get(&self, name: &str) -> Option<SourceState> {
        self.published.read().unwrap_or_else(|e| e.into_inner()).get(name).cloned()
    }

    /// Every published source, by name.
    pub fn all(&self) -> Vec<(String, SourceState)> {
        self.published.read().unwrap_or_else(|e| e.into_inner()).iter().map(|(n, s)| (n.clone(), s.clone())).collect()
    }

    /// Sets the pending state: the records admission changed for the
    /// group being committed.
    pub(crate) fn stage(&self, changes: HashMap<String, SourceState>) {
        *self.pending() = changes;
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, SourceState>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Records read per page when loading.
const LOAD_PAGE: usize = 1024;

impl View for Sources {
    fn name(&self) -> &'static str {
        NAME
    }

    fn load(&self, store: &dyn LogStore) -> Result<bool, Error> {
        let prefix = record_key(NAME, &[]);
        let mut sources = BTreeMap::new();
        let mut from = prefix.clone();
        loop {
            let page = store.scan_prefix(Namespace::Views, &prefix, &from, LOAD_PAGE)?;
            for (key, record) in &page {
                let name =
                    std::str::from_utf8(&key[prefix.len()..]).map_err(|_| StorageError::Corrupt("source name is not UTF-8".into()))?;
                sources.insert(name.to_owned(), from_bytes(record)?);
            }
            match page.last() {
                Some((last, _)) if page.len() == LOAD_PAGE => from = [last.as_slice(), &[0]].concat(),
                _ => break,
            }
        }
        let found = !sources.is_empty();
        *self.published.write().unwrap_or_else(|e| e.into_inner()) = sources;
        Ok(found)
    }

    fn fold(&self, entries: &Entries<'_>, records: &mut Vec<Record>) -> Result<(), Error> {
        let mut pending = self.pending();
        if entries.admitted.is_none() {
            for (i, leaf) in entries.leaves.iter().enumerate() {
                let index = entries.first_index + i as u64;
                let corrupt = |what: String| Error::Storage(StorageError::Corrupt(format!("entry {index}: {what}")));
                let (leaf, _) = Leaf::decode(leaf).map_err(|e| corrupt(e.to_string()))?;
                let replayed = sources::replay(&leaf, index, |name| pending.get(name).cloned().or_else(|| self.get(name)))
                    .map_err(|e| corrupt(format!("the sources fold refuses the admitted entry: {e}")))?;
                if let Some((name, state)) = replayed {
                    pending.insert(name, state);
                }
            }
        }
        records
            .extend(pending.iter().map(|(name, state)| Record::put(Namespace::Views, record_key(NAME, name.as_bytes()), to_bytes(state))));
        Ok(())
    }

    fn publish(&self) {
        let changes = std::mem::take(&mut *self.pending());
        if !changes.is_empty() {
            self.published.write().unwrap_or_else(|e| e.into_inner()).extend(changes);
        }
    }

    fn discard(&self) {
        self.pending().clear();
    }
}
