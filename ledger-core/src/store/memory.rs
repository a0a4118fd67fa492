//! An in-memory [`LogStore`] for tests and benchmarks. Not durable.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use verifier::hash::Hash;
use verifier::tree::NodeId;

use super::{scan_start, CommitBatch, KeyValue, LogStore, Namespace, Record, StorageError, StoredHead};

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
    records: HashMap<Namespace, BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl Inner {
    fn apply(&mut self, records: &[Record]) {
        for r in records {
            let space = self.records.entry(r.namespace).or_default();
            match &r.value {
                Some(value) => space.insert(r.key.clone(), value.clone()),
                None => space.remove(&r.key),
            };
        }
    }
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

    fn write_lock(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
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

    fn get(&self, namespace: Namespace, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.read().records.get(&namespace).and_then(|space| space.get(key)).cloned())
    }

    fn multi_get(&self, namespace: Namespace, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        let inner = self.read();
        let space = inner.records.get(&namespace);
        Ok(keys.iter().map(|k| space.and_then(|s| s.get(*k)).cloned()).collect())
    }

    fn scan_prefix(&self, namespace: Namespace, prefix: &[u8], from: &[u8], limit: usize) -> Result<Vec<KeyValue>, StorageError> {
        let inner = self.read();
        let Some(space) = inner.records.get(&namespace) else { return Ok(Vec::new()) };
        Ok(space
            .range(scan_start(prefix, from).to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn commit(&self, batch: &CommitBatch) -> Result<(), StorageError> {
        let mut inner = self.write_lock();
        let expected = inner.entries.len() as u64;
        if batch.first_index != expected {
            return Err(StorageError::OutOfOrder { expected, got: batch.first_index });
        }
        super::check_nodes(batch)?;
        super::check_records(batch)?;
        inner.apply(&batch.records);
        inner.entries.extend(batch.entries.iter().cloned());
        inner.nodes.extend(batch.nodes.iter().copied());
        if let Some(head) = &batch.head {
            inner.head = Some(head.clone());
        }
        Ok(())
    }

    fn erase(&self, records: &[Record]) -> Result<(), StorageError> {
        // Replacing or removing a value drops the only copy of its bytes.
        self.write_lock().apply(records);
        Ok(())
    }

    fn write(&self, records: &[Record]) -> Result<(), StorageError> {
        super::check_outside_commits(records)?;
        self.write_lock().apply(records);
        Ok(())
    }
}
