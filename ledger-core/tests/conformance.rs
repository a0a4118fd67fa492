//! One conformance suite, run against every storage backend: the raw store
//! contract, then the log built on it (appends, concurrency, proofs checked
//! by the verifier crate, tiles, pushback and bad input).

// In tests and benches a failed unwrap is the failure report.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use ledger_core::store::{
    first_sealed_openings, CommitBatch, LogStore, MemoryStore, OpeningsRecord, RocksStore, SealedOpenings, StorageError, StoredHead,
};
use ledger_core::{Error, Log, LogConfig, NewEntry};
use verifier::hash::leaf_hash;
use verifier::note::{NoteSigner, NoteVerifier};
use verifier::proof::{verify_consistency, verify_inclusion};
use verifier::tiles::{decode_entry_bundle, TileKind, TilePath};
use verifier::tree::{hash_leaves, NodeId};
use verifier::Checkpoint;

const ORIGIN: &str = "test.example/log";

fn signer() -> NoteSigner {
    NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[42; 32])).unwrap()
}

fn entry(i: u64) -> NewEntry {
    let data = serde_json::json!({ "n": i, "pad": "x".repeat((i % 7) as usize) });
    NewEntry::action("spiffe://test.example/agent/a", "read", &format!("db/{i}"), Some(&data), 65_535).unwrap()
}

/// The backends under test; each call gives a fresh, empty store.
fn backends() -> Vec<(&'static str, Arc<dyn LogStore>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let rocks = RocksStore::open(&dir.path().join("db")).unwrap();
    vec![("memory", Arc::new(MemoryStore::new()), None), ("rocksdb", Arc::new(rocks), Some(dir))]
}

fn open(store: Arc<dyn LogStore>, config: LogConfig) -> Log {
    Log::open(store, signer(), LogConfig { origin: ORIGIN.into(), agent_auth: false, ..config }, None).unwrap()
}

fn checkpoint(log: &Log) -> Checkpoint {
    Checkpoint::open(&log.head().checkpoint, &NoteVerifier::new(log.verifier_key())).unwrap()
}

#[test]
fn store_contract() {
    for (name, store, _dir) in backends() {
        assert_eq!(store.head().unwrap(), None, "{name}");
        let head = StoredHead { size: 2, integrated_time: 7, checkpoint: "cp\n".into() };
        let batch = CommitBatch {
            first_index: 0,
            entries: vec![b"a".to_vec(), b"b".to_vec()],
            nodes: vec![(NodeId::leaf(0), leaf_hash(b"a")), (NodeId::leaf(1), leaf_hash(b"b")), (NodeId::new(1, 0), [3; 32])],
            head: Some(head.clone()),
            openings: Vec::new(),
            agents: Vec::new(),
        };
        store.commit(&batch).unwrap();
        assert_eq!(store.head().unwrap(), Some(head.clone()), "{name}");
        assert_eq!(store.get_entries(0, 2).unwrap(), vec![b"a".to_vec(), b"b".to_vec()], "{name}");
        assert_eq!(store.get_entries(1, 10).unwrap(), vec![b"b".to_vec()], "{name}");
        assert!(store.get_entries(2, 5).unwrap().is_empty(), "{name}");
        assert_eq!(store.get_nodes(&[NodeId::new(1, 0), NodeId::leaf(5)]).unwrap(), vec![Some([3; 32]), None], "{name}");
        // Nodes that the entries do not complete are refused.
        let wrong_nodes = CommitBatch {
            first_index: 2,
            entries: vec![b"c".to_vec()],
            nodes: vec![(NodeId::leaf(3), [9; 32])],
            head: None,
            openings: Vec::new(),
            agents: Vec::new(),
        };
        assert!(matches!(store.commit(&wrong_nodes), Err(StorageError::BadBatch(_))), "{name}");
        let missing = CommitBatch {
            first_index: 2,
            entries: vec![b"c".to_vec(), b"d".to_vec()],
            nodes: vec![(NodeId::leaf(2), [9; 32]), (NodeId::leaf(3), [9; 32])],
            head: None,
            openings: Vec::new(),
            agents: Vec::new(),
        };
        assert!(matches!(store.commit(&missing), Err(StorageError::BadBatch(_))), "{name}");
        assert_eq!(store.get_entries(0, 9).unwrap().len(), 2, "{name}");
        // A commit that does not start at the stored size changes nothing.
        let stale = CommitBatch {
            first_index: 1,
            entries: vec![b"x".to_vec()],
            nodes: vec![(NodeId::leaf(1), [9; 32])],
            head: None,
            openings: Vec::new(),
            agents: Vec::new(),
        };
        assert!(matches!(store.commit(&stale), Err(StorageError::OutOfOrder { expected: 2, got: 1 })), "{name}");
        assert_eq!(store.get_nodes(&[NodeId::leaf(1)]).unwrap(), vec![Some(leaf_hash(b"b"))], "{name}");
        assert_eq!(store.head().unwrap(), Some(head), "{name}");
    }
}

#[test]
fn openings_contract() {
    // Entries 0 and 2 have a wrapped data key; entry 3 is a legacy record
    // sealed with the master key itself (no data key).
    let sealed = |index: u64, agent: &str| SealedOpenings {
        index,
        agent: agent.into(),
        sealed: vec![index as u8; 40],
        wrapped_key: (index != 3).then(|| vec![0xA0 | index as u8; 73]),
    };
    let record = |index: u64| OpeningsRecord::Sealed {
        sealed: vec![index as u8; 40],
        wrapped_key: (index != 3).then(|| vec![0xA0 | index as u8; 73]),
    };
    let (a, b) = ("spiffe://t.example/agent/a", "spiffe://t.example/agent/ab");
    for (name, store, _dir) in backends() {
        let entries: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i]).collect();
        let nodes = (0..4u64).flat_map(verifier::tree::nodes_completed_by).map(|id| {
            let (s, e) = id.leaf_range();
            (id, hash_leaves(&entries[s as usize..e as usize].iter().map(|x| leaf_hash(x)).collect::<Vec<_>>()))
        });
        let mut batch = CommitBatch {
            first_index: 0,
            entries: entries.clone(),
            nodes: nodes.collect(),
            head: None,
            openings: vec![sealed(9, a)],
            agents: Vec::new(),
        };
        assert!(matches!(store.commit(&batch), Err(StorageError::BadBatch(_))), "{name}: openings outside the batch");
        assert_eq!(store.openings(9).unwrap(), None, "{name}");
        assert!(store.openings_from(0, 10).unwrap().is_empty(), "{name}");
        batch.openings = vec![sealed(0, a), sealed(2, b), sealed(3, a)];
        batch.agents = vec![(a.to_string(), b"record-a".to_vec()), (b.to_string(), b"record-b".to_vec())];
        store.commit(&batch).unwrap();
        let mut agents = store.agents().unwrap();
        agents.sort();
        assert_eq!(agents, vec![(a.to_string(), b"record-a".to_vec()), (b.to_string(), b"record-b".to_vec())], "{name}");
        assert_eq!(store.openings(0).unwrap(), Some(record(0)), "{name}");
        assert_eq!(store.openings(3).unwrap(), Some(record(3)), "{name}: a legacy record has no data key");
        assert_eq!(store.openings(1).unwrap(), None, "{name}");
        assert_eq!(store.openings_from(0, 10).unwrap(), vec![(0, record(0)), (2, record(2)), (3, record(3))], "{name}");
        assert_eq!(store.openings_from(1, 1).unwrap(), vec![(2, record(2))], "{name}");
        assert!(store.openings_from(4, 10).unwrap().is_empty(), "{name}");
        assert_eq!(first_sealed_openings(&*store, 2).unwrap(), vec![(0, record(0)), (2, record(2))], "{name}");
        // Agent ids that prefix one another are kept apart.
        assert_eq!(store.openings_of_agent(a).unwrap(), vec![0, 3], "{name}");
        assert_eq!(store.openings_of_agent(b).unwrap(), vec![2], "{name}");
        assert!(store.openings_of_agent("spiffe://t.example/agent/").unwrap().is_empty(), "{name}");
        assert_eq!(store.shred_openings(&[0, 1, 3], 77).unwrap(), vec![0, 3], "{name}");
        assert_eq!(store.shred_openings(&[0], 78).unwrap(), Vec::<u64>::new(), "{name}: already shredded");
        // Shredding takes the wrapped key with the ciphertext; legacy
        // records shred the same way.
        assert_eq!(store.openings(0).unwrap(), Some(OpeningsRecord::Shredded { at_ms: 77 }), "{name}");
        assert_eq!(store.openings(3).unwrap(), Some(OpeningsRecord::Shredded { at_ms: 77 }), "{name}");
        assert_eq!(store.openings(2).unwrap(), Some(record(2)), "{name}");
        let shredded = OpeningsRecord::Shredded { at_ms: 77 };
        assert_eq!(store.openings_from(0, 10).unwrap(), vec![(0, shredded.clone()), (2, record(2)), (3, shredded)], "{name}");
        assert_eq!(first_sealed_openings(&*store, 8).unwrap(), vec![(2, record(2))], "{name}");
        assert_eq!(store.get_entries(0, 4).unwrap(), entries, "{name}: shredding leaves the log alone");
        assert_eq!(store.shred_openings(&[2], 79).unwrap(), vec![2], "{name}");
        assert!(first_sealed_openings(&*store, 8).unwrap().is_empty(), "{name}: nothing left to open");
    }
}

/// Finding the sealed openings a master key must open pages past any
/// number of shredded records.
#[test]
fn first_sealed_openings_skip_shredded_records() {
    const N: u64 = 1100;
    let entries: Vec<Vec<u8>> = (0..N).map(|i| i.to_be_bytes().to_vec()).collect();
    let hashes: Vec<_> = entries.iter().map(|e| leaf_hash(e)).collect();
    let nodes: Vec<_> = (0..N)
        .flat_map(verifier::tree::nodes_completed_by)
        .map(|id| {
            let (s, e) = id.leaf_range();
            (id, hash_leaves(&hashes[s as usize..e as usize]))
        })
        .collect();
    let openings: Vec<_> =
        (0..N).map(|index| SealedOpenings { index, agent: "a".into(), sealed: vec![1; 40], wrapped_key: Some(vec![2; 73]) }).collect();
    for (name, store, _dir) in backends() {
        let batch = CommitBatch {
            first_index: 0,
            entries: entries.clone(),
            nodes: nodes.clone(),
            head: None,
            openings: openings.clone(),
            agents: Vec::new(),
        };
        store.commit(&batch).unwrap();
        assert_eq!(store.shred_openings(&(0..1050).collect::<Vec<_>>(), 5).unwrap().len(), 1050, "{name}");
        let first: Vec<u64> = first_sealed_openings(&*store, 3).unwrap().into_iter().map(|(i, _)| i).collect();
        assert_eq!(first, vec![1050, 1051, 1052], "{name}");
        assert_eq!(store.openings_from(1049, 2).unwrap().len(), 2, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_get_contiguous_durable_indices_and_verifiable_proofs() {
    for (name, store, _dir) in backends() {
        let log = Arc::new(open(store, LogConfig::default()));
        let mut tasks = Vec::new();
        for t in 0..16u64 {
            let log = Arc::clone(&log);
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                for j in 0..20u64 {
                    let batch: Vec<NewEntry> = (0..(j % 3 + 1)).map(|k| entry(t * 1000 + j * 10 + k)).collect();
                    let done = log.append(batch).await.unwrap();
                    // A batch lands at contiguous indices.
                    for w in done.windows(2) {
                        assert_eq!(w[1].index, w[0].index + 1);
                    }
                    got.extend(done);
                }
                got
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all.sort_by_key(|a| a.index);
        let size = all.len() as u64;
        assert_eq!(all.iter().map(|a| a.index).collect::<Vec<_>>(), (0..size).collect::<Vec<_>>(), "{name}");
        let cp = checkpoint(&log);
        assert_eq!(cp.size, size, "{name}");

        // Stored leaves hash to the acknowledged leaf hashes, and the tree
        // over them is the signed root.
        let (leaves, _) = log.entries(0, size).unwrap();
        let hashes: Vec<_> = leaves.iter().map(|l| leaf_hash(l)).collect();
        assert_eq!(hashes, all.iter().map(|a| a.leaf_hash).collect::<Vec<_>>(), "{name}");
        assert_eq!(hash_leaves(&hashes), cp.root, "{name}");

        for a in &all {
            let proof = log.inclusion_proof(a.index, size).unwrap();
            verify_inclusion(&a.leaf_hash, a.index, size, &proof, &cp.root).unwrap();
        }
        for old in [0, 1, 2, 3, 7, 8, 100, size - 1, size] {
            let proof = log.consistency_proof(old, size).unwrap();
            verify_consistency(old, size, &proof, &log.root_at(old).unwrap(), &cp.root).unwrap();
            assert_eq!(log.root_at(old).unwrap(), hash_leaves(&hashes[..old as usize]), "{name}");
        }
        let bundle = verifier::tlog_proof::TlogProof::parse(&log.proof_bundle(5).unwrap()).unwrap();
        assert_eq!(bundle.verify(&NoteVerifier::new(log.verifier_key()), None).unwrap().index, 5, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiles_hold_exactly_the_tree() {
    for (name, store, _dir) in backends() {
        let log = open(store, LogConfig::default());
        let batch: Vec<NewEntry> = (0..600).map(entry).collect();
        log.append(batch).await.unwrap();
        let (leaves, size) = log.entries(0, 600).unwrap();
        assert_eq!((leaves.len(), size), (600, 600), "{name}");
        let hashes: Vec<_> = leaves.iter().map(|l| leaf_hash(l)).collect();

        let full = TilePath { kind: TileKind::Hashes { level: 0 }, index: 1, partial: None };
        assert_eq!(log.tile(&full).unwrap(), hashes[256..512].concat(), "{name}");
        let partial = TilePath { kind: TileKind::Hashes { level: 0 }, index: 2, partial: Some(88) };
        assert_eq!(log.tile(&partial).unwrap(), hashes[512..600].concat(), "{name}");
        let level1 = TilePath { kind: TileKind::Hashes { level: 1 }, index: 0, partial: Some(2) };
        assert_eq!(log.tile(&level1).unwrap(), [hash_leaves(&hashes[..256]), hash_leaves(&hashes[256..512])].concat(), "{name}");
        let bundle = TilePath { kind: TileKind::Entries, index: 0, partial: None };
        let body = log.tile(&bundle).unwrap();
        let decoded = decode_entry_bundle(&body).unwrap();
        assert_eq!(decoded.len(), 256);
        assert_eq!(decoded[3], log.entry(3).unwrap().as_slice(), "{name}");

        for missing in [
            TilePath { kind: TileKind::Hashes { level: 0 }, index: 2, partial: None },
            TilePath { kind: TileKind::Hashes { level: 0 }, index: 2, partial: Some(89) },
            TilePath { kind: TileKind::Hashes { level: 1 }, index: 0, partial: Some(3) },
            TilePath { kind: TileKind::Entries, index: 3, partial: Some(1) },
        ] {
            assert!(matches!(log.tile(&missing), Err(Error::TileNotAvailable(_))), "{name} {missing:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_change_nothing() {
    for (name, store, _dir) in backends() {
        let log = open(store, LogConfig { queue_bytes: 4096, ..LogConfig::default() });
        log.append(vec![entry(1), entry(2)]).await.unwrap();
        let before = log.head();
        assert!(matches!(log.append(vec![]).await, Err(Error::EmptyBatch)), "{name}");
        let huge: Vec<NewEntry> = (0..100).map(entry).collect();
        assert!(matches!(log.append(huge).await, Err(Error::BatchTooLarge { .. })), "{name}");
        assert!(matches!(log.entry(2), Err(Error::IndexBeyondTree { index: 2, size: 2 })), "{name}");
        assert!(matches!(log.entries(5, 1), Err(Error::IndexBeyondTree { .. })), "{name}");
        assert!(matches!(log.inclusion_proof(0, 3), Err(Error::SizeBeyondTree { requested: 3, size: 2 })), "{name}");
        assert!(matches!(log.inclusion_proof(2, 2), Err(Error::IndexBeyondTree { .. })), "{name}");
        assert!(matches!(log.consistency_proof(2, 1), Err(Error::OldSizeLarger { .. })), "{name}");
        assert!(matches!(log.consistency_proof(1, 9), Err(Error::SizeBeyondTree { .. })), "{name}");
        assert_eq!(log.head(), before, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_queue_pushes_back_and_loses_nothing_acknowledged() {
    for (name, store, _dir) in backends() {
        // A queue that holds about two entries forces pushback under load.
        let log = Arc::new(open(store, LogConfig { queue_bytes: 300, ..LogConfig::default() }));
        let mut tasks = Vec::new();
        for t in 0..64u64 {
            let log = Arc::clone(&log);
            tasks.push(tokio::spawn(async move { log.append(vec![entry(t)]).await }));
        }
        let (mut ok, mut pushed_back) = (Vec::new(), 0);
        for t in tasks {
            match t.await.unwrap() {
                Ok(a) => ok.extend(a),
                Err(Error::Pushback { retry_after }) => {
                    assert!(retry_after.as_secs() >= 1);
                    pushed_back += 1;
                }
                Err(e) => panic!("{name}: {e}"),
            }
        }
        assert_eq!(ok.len() + pushed_back, 64, "{name}");
        assert_eq!(log.head().size, ok.len() as u64, "{name}");
        for a in ok {
            assert_eq!(leaf_hash(&log.entry(a.index).unwrap()), a.leaf_hash, "{name}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_then_refuses() {
    for (name, store, _dir) in backends() {
        let log = open(store, LogConfig::default());
        log.append(vec![entry(0)]).await.unwrap();
        log.shutdown();
        assert!(matches!(log.append(vec![entry(1)]).await, Err(Error::ShuttingDown)), "{name}");
        assert_eq!(log.head().size, 1, "{name}");
    }
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
