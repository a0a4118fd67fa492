//! The on-disk [`LogStore`]: RocksDB with three column families.
//!
//! | column family | key | value |
//! |---|---|---|
//! | `entries` | index, `u64` big-endian | leaf bytes |
//! | `nodes` | level `u8` + index `u64` big-endian | 32-byte hash |
//! | `meta` | `head` | size, integrated time, signed checkpoint |
//!
//! A commit is one `WriteBatch` written with `sync = true` (WAL fsync), so
//! entries, nodes and head become durable together or not at all. Node keys
//! sort a level's nodes contiguously, so a tile is one short range.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use rocksdb::{ColumnFamilyDescriptor, DBCompressionType, Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB};
use verifier::hash::Hash;
use verifier::tree::NodeId;

use super::{decode_head, encode_head, CommitBatch, LogStore, StorageError, StoredHead};

const CF_ENTRIES: &str = "entries";
const CF_NODES: &str = "nodes";
const CF_META: &str = "meta";
const HEAD_KEY: &[u8] = b"head";

/// A RocksDB-backed store.
pub struct RocksStore {
    db: DB,
    size: AtomicU64,
    sync: bool,
}

impl std::fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStore").field("path", &self.db.path()).field("size", &self.size).finish()
    }
}

fn backend(e: rocksdb::Error) -> StorageError {
    StorageError::Backend(e.into_string())
}

impl RocksStore {
    /// Opens (or creates) a store under `path`, syncing every commit.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        Self::open_with(path, true)
    }

    /// Opens a store; `sync = false` skips the fsync and is only for
    /// benchmarks that want to measure everything but the disk.
    pub fn open_with(path: &Path, sync: bool) -> Result<Self, StorageError> {
        std::fs::create_dir_all(path).map_err(|e| StorageError::Backend(format!("creating {}: {e}", path.display())))?;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_keep_log_file_num(4);
        opts.set_max_background_jobs(2);
        let mut entries = Options::default();
        entries.set_compression_type(DBCompressionType::Lz4);
        let cfs = vec![
            ColumnFamilyDescriptor::new(CF_ENTRIES, entries),
            ColumnFamilyDescriptor::new(CF_NODES, Options::default()),
            ColumnFamilyDescriptor::new(CF_META, Options::default()),
        ];
        let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(backend)?;
        let store = Self { db, size: AtomicU64::new(0), sync };
        let size = store.head()?.map_or(0, |h| h.size);
        store.size.store(size, Ordering::SeqCst);
        Ok(store)
    }

    fn cf(&self, name: &str) -> Result<&rocksdb::ColumnFamily, StorageError> {
        self.db.cf_handle(name).ok_or_else(|| StorageError::Corrupt(format!("column family {name} is missing")))
    }
}

impl LogStore for RocksStore {
    fn head(&self) -> Result<Option<StoredHead>, StorageError> {
        match self.db.get_cf(self.cf(CF_META)?, HEAD_KEY).map_err(backend)? {
            Some(bytes) => decode_head(&bytes).map(Some),
            None => Ok(None),
        }
    }

    fn get_nodes(&self, ids: &[NodeId]) -> Result<Vec<Option<Hash>>, StorageError> {
        let cf = self.cf(CF_NODES)?;
        let keys: Vec<[u8; 9]> = ids.iter().map(NodeId::to_key).collect();
        self.db
            .batched_multi_get_cf(cf, &keys, false)
            .into_iter()
            .map(|r| match r.map_err(backend)? {
                Some(v) => Hash::try_from(&v[..]).map(Some).map_err(|_| StorageError::Corrupt("node hash is not 32 bytes".into())),
                None => Ok(None),
            })
            .collect()
    }

    fn get_entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StorageError> {
        let cf = self.cf(CF_ENTRIES)?;
        let mut out = Vec::with_capacity(end.saturating_sub(start).min(1024) as usize);
        let from = start.to_be_bytes();
        for item in self.db.iterator_cf(cf, IteratorMode::From(&from, Direction::Forward)) {
            let (key, value) = item.map_err(backend)?;
            let index = u64::from_be_bytes(key.as_ref().try_into().map_err(|_| StorageError::Corrupt("entry key is not 8 bytes".into()))?);
            if index >= end || index != start + out.len() as u64 {
                break;
            }
            out.push(value.into_vec());
        }
        Ok(out)
    }

    fn commit(&self, batch: &CommitBatch) -> Result<(), StorageError> {
        let expected = self.size.load(Ordering::SeqCst);
        if batch.first_index != expected {
            return Err(StorageError::OutOfOrder { expected, got: batch.first_index });
        }
        let (entries, nodes, meta) = (self.cf(CF_ENTRIES)?, self.cf(CF_NODES)?, self.cf(CF_META)?);
        let mut wb = WriteBatch::default();
        for (i, leaf) in batch.entries.iter().enumerate() {
            wb.put_cf(entries, (batch.first_index + i as u64).to_be_bytes(), leaf);
        }
        for (id, hash) in &batch.nodes {
            wb.put_cf(nodes, id.to_key(), hash);
        }
        if let Some(head) = &batch.head {
            wb.put_cf(meta, HEAD_KEY, encode_head(head));
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(self.sync);
        self.db.write_opt(wb, &wo).map_err(backend)?;
        self.size.store(expected + batch.entries.len() as u64, Ordering::SeqCst);
        Ok(())
    }
}
