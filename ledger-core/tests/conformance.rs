//! The exported conformance suite ([`ledger_core::conformance`]) on
//! both backends, and what only RocksDB has: reopening where it stopped.

// In tests and benches a failed unwrap is the failure report.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use ledger_core::conformance::{self, checkpoint, entry, open};
use ledger_core::store::{LogStore, MemoryStore, RocksStore};
use ledger_core::{Error, Log, LogConfig};
use verifier::hash::leaf_hash;
use verifier::note::NoteSigner;
use verifier::proof::verify_consistency;

const ORIGIN: &str = "test.example/log";

#[test]
fn memory_store_conforms() {
    conformance::run(|| Arc::new(MemoryStore::new()));
}

#[test]
fn rocks_store_conforms() {
    let mut dirs = Vec::new();
    conformance::run(|| {
        let dir = tempfile::tempdir().unwrap();
        let store = RocksStore::open(&dir.path().join("db")).unwrap();
        dirs.push(dir);
        Arc::new(store) as Arc<dyn LogStore>
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rocksdb_reopens_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let (first_cp, acked) = {
        let log = open(Arc::new(RocksStore::open(&path).unwrap()), LogConfig::default());
        let mut acked = Vec::new();
        for i in 0..50 {
            acked.extend(log.append(vec![entry(i), entry(i + 100)]).await.unwrap());
        }
        (checkpoint(&log), acked)
    };
    let log = open(Arc::new(RocksStore::open(&path).unwrap()), LogConfig::default());
    assert_eq!(checkpoint(&log), first_cp);
    for a in &acked {
        assert_eq!(leaf_hash(&log.entry(a.index).unwrap()), a.leaf_hash);
    }
    let more = log.append(vec![entry(999)]).await.unwrap();
    assert_eq!(more[0].index, 100);
    let new_cp = checkpoint(&log);
    let proof = log.consistency_proof(first_cp.size, new_cp.size).unwrap();
    verify_consistency(first_cp.size, new_cp.size, &proof, &first_cp.root, &new_cp.root).unwrap();
    assert!(more[0].integrated_time >= acked[0].integrated_time);
    drop(log);

    // Another key or origin must not take over this data.
    let other_key = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[1; 32])).unwrap();
    let cfg = LogConfig { origin: ORIGIN.into(), ..LogConfig::default() };
    assert!(matches!(Log::open(Arc::new(RocksStore::open(&path).unwrap()), other_key, cfg, None), Err(Error::Config(_))));
    let other_origin = NoteSigner::new("other.example/log", SigningKey::from_bytes(&[42; 32])).unwrap();
    let cfg = LogConfig { origin: "other.example/log".into(), ..LogConfig::default() };
    assert!(matches!(Log::open(Arc::new(RocksStore::open(&path).unwrap()), other_origin, cfg, None), Err(Error::Config(_))));
}
