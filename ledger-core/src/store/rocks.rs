//! The on-disk [`LogStore`]: RocksDB, a column family per [`Namespace`]
//! beside `entries` and `meta`.
//!
//! | column family | key | value |
//! |---|---|---|
//! | `entries` | index `i`, `u64` big-endian | leaf bytes ‖ hashes of the interior nodes leaf `i` completes |
//! | `meta` | `head` | size, integrated time, signed checkpoint |
//! | `openings` | index `i`, `u64` big-endian | `0x01 ‖ sealed openings`, or `0x00 ‖ time` once shredded |
//! | `opening_keys` | index `i`, `u64` big-endian | the wrapped data key of entry `i`'s openings; deleted when shredded |
//! | `openings_by_agent` | agent id ‖ `0x00` ‖ index | empty |
//! | `agents` | agent id | registry record (passport, key in force, last sequence number, retirement) |
//! | `views` | a view's name | the index the view has applied (`u64` big-endian) |
//! | `ssf_streams` | stream id ‖ `0x00` ‖ `c` or `n` | an SSF stream's configuration, or its cursor (`u64` big-endian) |
//!
//! Leaf `i` completes every ancestor whose range ends at `i`:
//! `trailing_zeros(i + 1)` interior nodes, one on average. Storing them in
//! the entry's value makes an append one key per entry (the write
//! amplification of a bare key-value put): node `(l, k)`, `l >= 1`, is found
//! in the value of leaf `((k + 1) << l) - 1` at `32·(l - 1)` bytes past the
//! leaf. Leaf hashes (level 0) are not stored; they are recomputed from the
//! leaf bytes when read.
//!
//! A commit is one `WriteBatch` written with `sync = true` (WAL fsync), so
//! entries, nodes, head and records (sealed openings, their wrapped keys,
//! view records and applied indices) become durable together or not at all.
//!
//! The wrapped data keys have their own column family so that the
//! ciphertexts can be copied (or backed up) without them: without its
//! wrapped key, sealed openings open with nothing, master key included.
//!
//! [`LogStore::erase`] (shredding overwrites an entry's openings with a
//! tombstone and deletes its wrapped key) is one synced write, then a flush
//! of every memtable and a forced compaction of the erased keys' range in
//! each column family it touched, so the old bytes leave the live SST files
//! and, once the flush retires them, the WAL (`keep_log_file_num` bounds
//! only info logs).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use rocksdb::{ColumnFamilyDescriptor, DBCompressionType, Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB};
use verifier::hash::{leaf_hash, Hash, HASH_LEN};
use verifier::tree::NodeId;

use super::{
    check_nodes, check_outside_commits, check_records, decode_head, encode_head, scan_start, CommitBatch, KeyValue, LogStore, Namespace,
    Record, StorageError, StoredHead,
};

const CF_ENTRIES: &str = "entries";
const CF_META: &str = "meta";
const HEAD_KEY: &[u8] = b"head";

/// Every column family: the log's own, then one per namespace.
fn column_families() -> impl Iterator<Item = &'static str> {
    [CF_ENTRIES, CF_META].into_iter().chain(Namespace::ALL.map(Namespace::name))
}

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

/// Number of interior nodes leaf `index` completes (stored in its value).
fn interior_count(index: u64) -> usize {
    index.checked_add(1).map_or(0, |n| n.trailing_zeros() as usize)
}

/// Splits a stored value into the leaf and its interior node hashes.
fn split_value(index: u64, value: &[u8]) -> Result<(&[u8], &[u8]), StorageError> {
    let hashes = interior_count(index) * HASH_LEN;
    value
        .len()
        .checked_sub(hashes)
        .map(|leaf_len| value.split_at(leaf_len))
        .ok_or_else(|| StorageError::Corrupt(format!("entry {index} is shorter than its node hashes")))
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
        let cfs = column_families().map(|name| {
            let mut cf = Options::default();
            if name == CF_ENTRIES {
                cf.set_compression_type(DBCompressionType::Lz4);
            }
            ColumnFamilyDescriptor::new(name, cf)
        });
        let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(backend)?;
        let store = Self { db, size: AtomicU64::new(0), sync };
        let size = store.head()?.map_or(0, |h| h.size);
        store.size.store(size, Ordering::SeqCst);
        Ok(store)
    }

    /// Opens an existing store read-only: for exporting from a copy of a
    /// data directory, or beside a running server (it reads what was
    /// flushed when it opened). Every write is refused.
    pub fn open_read_only(path: &Path) -> Result<Self, StorageError> {
        if !path.join("CURRENT").exists() {
            return Err(StorageError::Backend(format!("{} holds no database", path.display())));
        }
        let opts = Options::default();
        let db = DB::open_cf_for_read_only(&opts, path, column_families(), false).map_err(backend)?;
        let store = Self { db, size: AtomicU64::new(0), sync: true };
        let size = store.head()?.map_or(0, |h| h.size);
        store.size.store(size, Ordering::SeqCst);
        Ok(store)
    }

    /// Flushes the memtables and compacts every level, so reads measured
    /// afterwards do not race background compactions (benchmarks, offline
    /// maintenance).
    pub fn compact(&self) -> Result<(), StorageError> {
        for name in column_families() {
            let cf = self.cf(name)?;
            self.db.flush_cf(cf).map_err(backend)?;
            self.db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
        }
        Ok(())
    }

    fn cf(&self, name: &str) -> Result<&rocksdb::ColumnFamily, StorageError> {
        self.db.cf_handle(name).ok_or_else(|| StorageError::Corrupt(format!("column family {name} is missing")))
    }

    /// Adds `records` to `wb`.
    fn write_records(&self, wb: &mut WriteBatch, records: &[Record]) -> Result<(), StorageError> {
        // Records come in runs of one namespace: look its handle up once
        // per run.
        let mut current: Option<(Namespace, &rocksdb::ColumnFamily)> = None;
        for record in records {
            let cf = match current {
                Some((namespace, cf)) if namespace == record.namespace => cf,
                _ => {
                    let cf = self.cf(record.namespace.name())?;
                    current = Some((record.namespace, cf));
                    cf
                }
            };
            match &record.value {
                Some(value) => wb.put_cf(cf, &record.key, value),
                None => wb.delete_cf(cf, &record.key),
            }
        }
        Ok(())
    }

    fn write_synced(&self, wb: WriteBatch) -> Result<(), StorageError> {
        let mut wo = WriteOptions::default();
        wo.set_sync(self.sync);
        self.db.write_opt(wb, &wo).map_err(backend)
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
        let cf = self.cf(CF_ENTRIES)?;
        // Node (l, k) lives with leaf ((k + 1) << l) - 1; several nodes may
        // share a leaf, so each leaf is read once.
        let owner = |id: &NodeId| id.index.checked_add(1).and_then(|n| n.checked_shl(u32::from(id.level))).and_then(|n| n.checked_sub(1));
        let mut leaves: Vec<u64> = ids.iter().filter_map(owner).collect();
        leaves.sort_unstable();
        leaves.dedup();
        let keys: Vec<[u8; 8]> = leaves.iter().map(|i| i.to_be_bytes()).collect();
        let mut values = HashMap::with_capacity(leaves.len());
        for (leaf, value) in leaves.iter().zip(self.db.batched_multi_get_cf(cf, &keys, true)) {
            if let Some(v) = value.map_err(backend)? {
                values.insert(*leaf, v);
            }
        }
        ids.iter()
            .map(|id| {
                let Some(leaf) = owner(id) else { return Ok(None) };
                let Some(value) = values.get(&leaf) else { return Ok(None) };
                let (leaf_bytes, hashes) = split_value(leaf, value)?;
                if id.level == 0 {
                    return Ok(Some(leaf_hash(leaf_bytes)));
                }
                let at = usize::from(id.level - 1) * HASH_LEN;
                Ok(hashes.get(at..at + HASH_LEN).and_then(|h| Hash::try_from(h).ok()))
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
            out.push(split_value(index, &value)?.0.to_vec());
        }
        Ok(out)
    }

    fn get(&self, namespace: Namespace, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.db.get_cf(self.cf(namespace.name())?, key).map_err(backend)
    }

    fn multi_get(&self, namespace: Namespace, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        let cf = self.cf(namespace.name())?;
        self.db.batched_multi_get_cf(cf, keys, false).into_iter().map(|v| v.map(|v| v.map(|v| v.to_vec())).map_err(backend)).collect()
    }

    fn scan_prefix(&self, namespace: Namespace, prefix: &[u8], from: &[u8], limit: usize) -> Result<Vec<KeyValue>, StorageError> {
        let cf = self.cf(namespace.name())?;
        let mut out = Vec::new();
        for item in self.db.iterator_cf(cf, IteratorMode::From(scan_start(prefix, from), Direction::Forward)).take(limit) {
            let (key, value) = item.map_err(backend)?;
            if !key.starts_with(prefix) {
                break;
            }
            out.push((key.to_vec(), value.to_vec()));
        }
        Ok(out)
    }

    fn commit(&self, batch: &CommitBatch) -> Result<(), StorageError> {
        let expected = self.size.load(Ordering::SeqCst);
        if batch.first_index != expected {
            return Err(StorageError::OutOfOrder { expected, got: batch.first_index });
        }
        check_nodes(batch)?;
        check_records(batch)?;
        let (entries, meta) = (self.cf(CF_ENTRIES)?, self.cf(CF_META)?);
        let mut wb = WriteBatch::default();
        let mut nodes = batch.nodes.iter();
        let mut value = Vec::new();
        for (i, leaf) in batch.entries.iter().enumerate() {
            let index = batch.first_index + i as u64;
            value.clear();
            value.extend_from_slice(leaf);
            // The leaf's own hash comes first and is not stored.
            for (_, hash) in nodes.by_ref().take(interior_count(index) + 1).skip(1) {
                value.extend_from_slice(hash);
            }
            wb.put_cf(entries, index.to_be_bytes(), &value);
        }
        self.write_records(&mut wb, &batch.records)?;
        if let Some(head) = &batch.head {
            wb.put_cf(meta, HEAD_KEY, encode_head(head));
        }
        self.write_synced(wb)?;
        self.size.store(expected + batch.entries.len() as u64, Ordering::SeqCst);
        Ok(())
    }

    fn erase(&self, records: &[Record]) -> Result<(), StorageError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut wb = WriteBatch::default();
        self.write_records(&mut wb, records)?;
        self.write_synced(wb)?;
        // Drop the old bytes from the memtables, WAL and SST files: a WAL
        // file is deleted only once every column family with data in it is
        // flushed, so all of them are; then a forced compaction down to the
        // bottommost level rewrites each erased range without the
        // overwritten values and deleted keys.
        for name in column_families() {
            self.db.flush_cf(self.cf(name)?).map_err(backend)?;
        }
        let mut ranges: BTreeMap<Namespace, (&[u8], &[u8])> = BTreeMap::new();
        for r in records {
            let range = ranges.entry(r.namespace).or_insert((&r.key, &r.key));
            range.0 = range.0.min(&r.key);
            range.1 = range.1.max(&r.key);
        }
        let mut opts = rocksdb::CompactOptions::default();
        opts.set_bottommost_level_compaction(rocksdb::BottommostLevelCompaction::Force);
        for (namespace, (lo, hi)) in ranges {
            // The successor of `hi`, so the range covers it whatever the
            // bound's inclusiveness.
            let end = [hi, &[0]].concat();
            self.db.compact_range_cf_opt(self.cf(namespace.name())?, Some(lo), Some(end.as_slice()), &opts);
        }
        Ok(())
    }

    fn write(&self, records: &[Record]) -> Result<(), StorageError> {
        check_outside_commits(records)?;
        if records.is_empty() {
            return Ok(());
        }
        // RocksDB serialises this batch with the sequencer's: each is
        // atomic and synced on its own, and they touch disjoint keys.
        let mut wb = WriteBatch::default();
        self.write_records(&mut wb, records)?;
        self.write_synced(wb)
    }
}
