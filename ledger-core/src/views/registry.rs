//! The agent registry, the first view: each agent's passport, the key in
//! force, its last sequence number and whether it is retired, as the
//! registry fold of [`verifier::fold::registry`] decides them.
//!
//! On the append path the registry is folded by admission
//! (module `append`, through [`registry::decide`]): admission must apply
//! each entry to check the next (sequence numbers, rotations, retirements
//! within one group), so what it computes for the admitted requests is
//! staged as the pending state, and [`View::fold`] only writes its records.
//! Folding from the log (at open, when the records are missing or behind)
//! replays the leaves through the same fold ([`registry::replay`]): they
//! were admitted, so their signatures are not checked again.
//!
//! Records: namespace [`Namespace::Agents`], key the agent id, value
//! [`to_bytes`] (canonical JSON), written in the group's commit batch, so
//! the registry is durable exactly when its entries are, and readers see it
//! after the commit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{Map, Value};
use verifier::agent_id::AgentId;
use verifier::entry::{Leaf, Passport};
use verifier::fold::registry;

use super::{Entries, View};
use crate::store::{LogStore, Namespace, Record, StorageError};
use crate::Error;

pub use verifier::fold::registry::AgentState;

/// The stored encoding of an agent's record (canonical JSON).
pub fn to_bytes(state: &AgentState) -> Vec<u8> {
    let mut m = Map::new();
    m.insert("passport".into(), Value::Object(state.passport.to_object()));
    m.insert("passport_index".into(), Value::from(state.passport_index));
    m.insert("key".into(), Value::from(B64.encode(state.key.as_bytes())));
    m.insert("key_index".into(), Value::from(state.key_index));
    m.insert("retired".into(), state.retired.map_or(Value::Null, Value::from));
    if let Some(revoked) = state.revoked {
        m.insert("revoked".into(), Value::from(revoked));
    }
    m.insert("last_seq".into(), Value::from(state.last_seq));
    verifier::canonical::to_canonical(&Value::Object(m))
}

/// Decodes [`to_bytes`]. Passports and keys are read as stored (a weak key
/// registered before weak keys were refused still loads).
pub fn from_bytes(bytes: &[u8]) -> Result<AgentState, StorageError> {
    let corrupt = |what: &str| StorageError::Corrupt(format!("agent record: {what}"));
    let v: Value = serde_json::from_slice(bytes).map_err(|_| corrupt("not JSON"))?;
    let u = |k: &str| v.get(k).and_then(Value::as_u64).ok_or_else(|| corrupt(k));
    Ok(AgentState {
        passport: Arc::new(
            Passport::from_stored(v.get("passport").and_then(Value::as_object).ok_or_else(|| corrupt("passport"))?)
                .map_err(|_| corrupt("passport"))?,
        ),
        passport_index: u("passport_index")?,
        key: verifier::entry::signing::parse_stored_public_key(v.get("key").and_then(Value::as_str).unwrap_or_default())
            .map_err(|_| corrupt("key"))?,
        key_index: u("key_index")?,
        retired: v.get("retired").and_then(Value::as_u64),
        revoked: v.get("revoked").and_then(Value::as_u64),
        last_seq: u("last_seq")?,
    })
}

/// The registry: what readers see (published after each commit), and the
/// pending state of the group being committed.
#[derive(Debug, Default)]
pub struct Registry {
    published: RwLock<HashMap<AgentId, AgentState>>,
    pending: Mutex<HashMap<AgentId, AgentState>>,
}

impl Registry {
    /// The published record of `agent`.
    pub fn get(&self, agent: &AgentId) -> Option<AgentState> {
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
    pub(crate) fn stage(&self, changes: HashMap<AgentId, AgentState>) {
        *self.pending() = changes;
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<AgentId, AgentState>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replays leaf `index` onto `pending` through the fold (it was
    /// admitted: [`registry::replay`]).
    fn replay(&self, pending: &mut HashMap<AgentId, AgentState>, index: u64, leaf: &[u8]) -> Result<(), Error> {
        let corrupt = |what: String| Error::Storage(StorageError::Corrupt(format!("entry {index}: {what}")));
        let (leaf, _) = Leaf::decode(leaf).map_err(|e| corrupt(e.to_string()))?;
        let replayed = registry::replay(&leaf, index, |agent| pending.get(agent).cloned().or_else(|| self.get(agent)))
            .map_err(|e| corrupt(format!("the registry refuses the admitted entry: {e}")))?;
        if let Some((agent, state)) = replayed {
            pending.insert(agent, state);
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
                let agent = std::str::from_utf8(key).map_err(|_| StorageError::Corrupt("agent key is not UTF-8".into()))?;
                // Taken as stored: the log admitted it.
                agents.insert(AgentId::from_stored_unchecked(agent), from_bytes(record)?);
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
        records.extend(pending.iter().map(|(agent, state)| Record::put(Namespace::Agents, agent.as_str().as_bytes(), to_bytes(state))));
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
