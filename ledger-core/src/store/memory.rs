//! An in-memory [`LogStore`] for tests and benchmarks. Not durable.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::RwLock;

use verifier::hash::Hash;
use verifier::tree::NodeId;

use super::{CommitBatch, LogStore, OpeningsRecord, StorageError, StoredHead};

/// Keeps everything in process memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: Vec<Vec<u8>>,
    nodes: HashMap<NodeId, Hash>,
    head: Option<StoredHead>,
    openings: BTreeMap<u64, OpeningsRecord>,
    by_agent: BTreeSet<Vec<u8>>,
    agents: BTreeMap<String, Vec<u8>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        // A writer that panicked mid-commit cannot leave partial state
        // behind (commit validates before mutating), so poisoning is benign.
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }
}

impl LogStore for MemoryStore {
    fn head(&self) -> Result<Option<StoredHead>, StorageError> {
        Ok(self.read().head.clone())
    }

    fn get_nodes(&self, ids: &[NodeId]) -> Result<Vec<Option<Hash>>, StorageError> {
        let inner = self.read();
        Ok(ids.iter().map(|id| inner.nodes.get(id).copied()).collect())
    }

    fn get_entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StorageError> {
        let inner = self.read();
        let len = inner.entries.len() as u64;
        let (s, e) = (start.min(len) as usize, end.min(len) as usize);
        Ok(inner.entries[s..e.max(s)].to_vec())
    }

    fn commit(&self, batch: &CommitBatch) -> Result<(), StorageError> {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let expected = inner.entries.len() as u64;
        if batch.first_index != expected {
            return Err(StorageError::OutOfOrder { expected, got: batch.first_index });
        }
        super::check_nodes(batch)?;
        super::check_openings(batch)?;
        for o in &batch.openings {
            inner.openings.insert(o.index, OpeningsRecord::Sealed { sealed: o.sealed.clone(), wrapped_key: o.wrapped_key.clone() });
            inner.by_agent.insert(super::agent_key(&o.agent, o.index));
        }
        inner.agents.extend(batch.agents.iter().cloned());
        inner.entries.extend(batch.entries.iter().cloned());
        inner.nodes.extend(batch.nodes.iter().copied());
        if let Some(head) = &batch.head {
            inner.head = Some(head.clone());
        }
        Ok(())
    }

    fn openings(&self, index: u64) -> Result<Option<OpeningsRecord>, StorageError> {
        Ok(self.read().openings.get(&index).cloned())
    }

    fn openings_from(&self, start: u64, limit: usize) -> Result<Vec<(u64, OpeningsRecord)>, StorageError> {
        Ok(self.read().openings.range(start..).take(limit).map(|(i, r)| (*i, r.clone())).collect())
    }

    fn openings_of_agent(&self, agent: &str) -> Result<Vec<u64>, StorageError> {
        let prefix = super::agent_key(agent, 0);
        let prefix = &prefix[..prefix.len() - 8];
        let inner = self.read();
        Ok(inner
            .by_agent
            .range(prefix.to_vec()..)
            .take_while(|k| k.starts_with(prefix) && k.len() == prefix.len() + 8)
            .filter_map(|k| k[prefix.len()..].try_into().ok().map(u64::from_be_bytes))
            .collect())
    }

    fn shred_openings(&self, indices: &[u64], at_ms: u64) -> Result<Vec<u64>, StorageError> {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let mut done = Vec::new();
        for &i in indices {
            // Replacing the record drops the ciphertext and the wrapped key.
            if let Some(record @ OpeningsRecord::Sealed { .. }) = inner.openings.get_mut(&i) {
                *record = OpeningsRecord::Shredded { at_ms };
                done.push(i);
            }
        }
        Ok(done)
    }

    fn agents(&self) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        Ok(self.read().agents.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }
}
