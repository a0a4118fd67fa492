//! The agent registry, the first view: each agent's passport, the key in
//! force, its last sequence number and whether it is retired.
//!
//! On the append path the registry is folded by admission
//! (module `append`): admission must apply each entry to check the next
//! (sequence numbers, rotations, retirements within one group), so what it
//! computes for the admitted requests is staged as the
//! pending state, and [`View::fold`] only writes its records. Folding from
//! the log (at open, when the records are missing or behind) replays the
//! leaves as they are: they were admitted, so passports, rotations,
//! retirements and every agent entry's `seq` are applied without checks.
//!
//! Records: namespace [`Namespace::Agents`], key the agent id, value
//! [`AgentState::to_bytes`] (canonical JSON), written in the group's commit
//! batch, so the registry is durable exactly when its entries are, and
//! readers see it after the commit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::VerifyingKey;
use serde_json::{Map, Value};
use verifier::agent::Passport;

use super::{Entries, View};
use crate::store::{LogStore, Namespace, Record, StorageError};
use crate::Error;

/// An agent as the log knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentState {
    /// The registered passport (as first written). Shared: the sequencer
    /// copies records for every signed entry it admits.
    pub passport: Arc<Passport>,
    /// Index of the passport entry.
    pub passport_index: u64,
    /// The key in force.
    pub key: VerifyingKey,
    /// Index of the entry that set it (the passport or the last rotation).
    pub key_index: u64,
    /// Index of the retirement entry, if retired.
    pub retired: Option<u64>,
    /// Last accepted sequence number (0: none yet).
    pub last_seq: u64,
}

impl AgentState {
    /// A newly registered agent: passport entry `at`.
    pub(crate) fn registered(passport: Arc<Passport>, at: u64) -> Self {
        Self { key: passport.public_key, passport, passport_index: at, key_index: at, retired: None, last_seq: 0 }
    }

    /// Retirement entry `at`.
    pub(crate) fn retire(&mut self, at: u64) {
        self.retired = Some(at);
    }

    /// Signed entry `at` with sequence number `seq`; a rotation hands over
    /// to `new_key`.
    pub(crate) fn signed(&mut self, seq: u64, new_key: Option<VerifyingKey>, at: u64) {
        if let Some(key) = new_key {
            self.key = key;
            self.key_index = at;
        }
        self.last_seq = seq;
    }

    /// The stored encoding (JSON).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut m = Map::new();
        m.insert("passport".into(), Value::Object(self.passport.to_object()));
        m.insert("passport_index".into(), Value::from(self.passport_index));
        m.insert("key".into(), Value::from(B64.encode(self.key.as_bytes())));
        m.insert("key_index".into(), Value::from(self.key_index));
        m.insert("retired".into(), self.retired.map_or(Value::Null, Value::from));
        m.insert("last_seq".into(), Value::from(self.last_seq));
        crate::canonical::to_canonical(&Value::Object(m))
    }

    /// Decodes [`AgentState::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StorageError> {
        let corrupt = |what: &str| StorageError::Corrupt(format!("agent record: {what}"));
        let v: Value = serde_json::from_slice(bytes).map_err(|_| corrupt("not JSON"))?;
        let u = |k: &str| v.get(k).and_then(Value::as_u64).ok_or_else(|| corrupt(k));
        Ok(Self {
            passport: Arc::new(
                Passport::from_stored(v.get("passport").and_then(Value::as_object).ok_or_else(|| corrupt("passport"))?)
                    .map_err(|_| corrupt("passport"))?,
            ),
            passport_index: u("passport_index")?,
            key: verifier::agent::parse_stored_public_key(v.get("key").and_then(Value::as_str).unwrap_or_default())
                .map_err(|_| corrupt("key"))?,
            key_index: u("key_index")?,
            retired: v.get("retired").and_then(Value::as_u64),
            last_seq: u("last_seq")?,
        })
    }
}

/// The registry: what readers see (published after each commit), and the
/// pending state of the group being committed.
#[derive(Debug, Default)]
pub struct Registry {
    published: RwLock<HashMap<String, AgentState>>,
    pending: Mutex<HashMap<String, AgentState>>,
}

impl Registry {
    /// The published record of `agent`.
    pub fn get(&self, agent: &str) -> Option<AgentState> {
        self.published.read().unwrap_or_else(|e| e.into_inner()).get(agent).cloned()
    }

    /// Registered agents.
    pub fn len(&self) -> usize {
        self.published.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no agent is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sets the pending state: the records admission changed for the
    /// group being committed.
    pub(crate) fn stage(&self, changes: HashMap<String, AgentState>) {
        *self.pending() = changes;
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, AgentState>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies leaf `index` to `pending` as it is (it was admitted).
    fn replay(&self, pending: &mut HashMap<String, AgentState>, index: u64, leaf: &[u8]) -> Result<(), Error> {
        let corrupt = |what: &str| Error::Storage(StorageError::Corrupt(format!("entry {index}: {what}")));
        let value: Value = serde_json::from_slice(leaf).map_err(|_| corrupt("not JSON"))?;
        let obj = value.as_object().ok_or_else(|| corrupt("not an object"))?;
        let Some(agent) = obj.get("agent").and_then(Value::as_str) else { return Ok(()) };
        let current = |pending: &HashMap<String, AgentState>| pending.get(agent).cloned().or_else(|| self.get(agent));
        match obj.get("kind").and_then(Value::as_str) {
            Some("passport") => {
                let passport = Passport::from_stored(obj).map_err(|_| corrupt("passport does not parse"))?;
                pending.insert(agent.to_owned(), AgentState::registered(Arc::new(passport), index));
            }
            Some("retirement") => {
                if let Some(mut state) = current(pending) {
                    state.retire(index);
                    pending.insert(agent.to_owned(), state);
                }
            }
            Some(kind) => {
                let Some(seq) = obj.get("seq").and_then(Value::as_u64) else { return Ok(()) };
                let Some(mut state) = current(pending) else { return Ok(()) };
                let new_key = match (kind, obj.get("new_public_key").and_then(Value::as_str)) {
                    ("rotation", Some(key)) => {
                        Some(verifier::agent::parse_stored_public_key(key).map_err(|_| corrupt("rotation key does not parse"))?)
                    }
                    _ => None,
                };
                state.signed(seq, new_key, index);
                pending.insert(agent.to_owned(), state);
            }
            None => {}
        }
        Ok(())
    }
}

/// Records read per page when loading.
const LOAD_PAGE: usize = 1024;

impl View for Registry {
    fn name(&self) -> &'static str {
        "agents"
    }

    fn load(&self, store: &dyn LogStore) -> Result<bool, Error> {
        let mut agents = HashMap::new();
        let mut from = Vec::new();
        loop {
            let page = store.scan_prefix(Namespace::Agents, &[], &from, LOAD_PAGE)?;
            for (key, record) in &page {
                let agent = String::from_utf8(key.clone()).map_err(|_| StorageError::Corrupt("agent key is not UTF-8".into()))?;
                agents.insert(agent, AgentState::from_bytes(record)?);
            }
            match page.last() {
                Some((last, _)) if page.len() == LOAD_PAGE => from = [last.as_slice(), &[0]].concat(),
                _ => break,
            }
        }
        let found = !agents.is_empty();
        *self.published.write().unwrap_or_else(|e| e.into_inner()) = agents;
        Ok(found)
    }

    fn fold(&self, entries: &Entries<'_>, records: &mut Vec<Record>) -> Result<(), Error> {
        let mut pending = self.pending();
        if entries.admitted.is_none() {
            for (i, leaf) in entries.leaves.iter().enumerate() {
                self.replay(&mut pending, entries.first_index + i as u64, leaf)?;
            }
        }
        records.extend(pending.iter().map(|(agent, state)| Record::put(Namespace::Agents, agent.as_bytes(), state.to_bytes())));
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
