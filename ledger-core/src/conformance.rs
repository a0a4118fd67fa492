//! The conformance suite every [`LogStore`] must pass: the raw store
//! contract (entries, nodes, head, generic records, erasure, sealed
//! openings), then the log built on it (appends, concurrency, proofs
//! checked by the verifier crate, tiles, pushback and bad input).
//!
//! A backend's tests call [`run`] with a function that makes a fresh,
//! empty store. It is a public module (hidden from the docs) rather than a
//! cargo feature so that any crate's tests can run it without a second
//! build configuration of this crate (and of RocksDB under it); it needs
//! nothing beyond this crate's own dependencies. Failures panic, as in a
//! test. It sits beside [`store`](crate::store) rather than in it because
//! it drives the whole log: the store module does not depend on the log.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use verifier::hash::leaf_hash;
use verifier::note::{NoteSigner, NoteVerifier};
use verifier::proof::{verify_consistency, verify_inclusion};
use verifier::tiles::{decode_entry_bundle, TileKind, TilePath};
use verifier::tree::{hash_leaves, NodeId};
use verifier::Checkpoint;

use crate::store::{
    first_sealed_openings, CommitBatch, LogStore, Namespace, Openings as _, OpeningsRecord, Record, SealedOpenings, StorageError,
    StoredHead,
};
use crate::{Error, Log, LogConfig, NewEntry};

const ORIGIN: &str = "test.example/log";

/// Runs every case, each on a fresh store from `make_store`.
pub fn run(mut make_store: impl FnMut() -> Arc<dyn LogStore>) {
    store_contract(make_store());
    records_contract(make_store());
    erase_contract(make_store());
    write_contract(make_store());
    openings_contract(make_store());
    first_sealed_openings_skip_shredded_records(make_store());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
    rt.block_on(concurrent_appends_get_contiguous_durable_indices_and_verifiable_proofs(make_store()));
    rt.block_on(tiles_hold_exactly_the_tree(make_store()));
    rt.block_on(bad_requests_change_nothing(make_store()));
    rt.block_on(full_queue_pushes_back_and_loses_nothing_acknowledged(make_store()));
    rt.block_on(shutdown_drains_then_refuses(make_store()));
}

/// The log's signing key in these cases.
pub fn signer() -> NoteSigner {
    NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[42; 32])).unwrap()
}

/// Action entry `i` (of varying length).
pub fn entry(i: u64) -> NewEntry {
    let data = serde_json::json!({ "n": i, "pad": "x".repeat((i % 7) as usize) });
    let agent = verifier::agent_id::AgentId::parse("spiffe://test.example/agent/a").unwrap();
    NewEntry::action(&agent, "read", &format!("db/{i}"), Some(&data), 65_535).unwrap()
}

/// A log on `store` signed by [`signer`], without agent authentication.
pub fn open(store: Arc<dyn LogStore>, config: LogConfig) -> Log {
    Log::open(store, signer(), LogConfig { origin: ORIGIN.into(), agent_auth: false, ..config }, None).unwrap()
}

/// The log's latest checkpoint, verified.
pub fn checkpoint(log: &Log) -> Checkpoint {
    Checkpoint::open(&log.head().checkpoint, &NoteVerifier::new(log.verifier_key())).unwrap()
}

/// Two entries and their nodes, at index 0.
fn two_entries() -> CommitBatch {
    let (a, b) = (b"a".to_vec(), b"b".to_vec());
    let nodes = vec![
        (NodeId::leaf(0), leaf_hash(&a)),
        (NodeId::leaf(1), leaf_hash(&b)),
        (NodeId::new(1, 0), hash_leaves(&[leaf_hash(&a), leaf_hash(&b)])),
    ];
    CommitBatch { first_index: 0, entries: vec![a, b], nodes, head: None, records: Vec::new() }
}

/// Generic records: written with their entries, or alone; read one by one,
/// several at once, and by bounded prefix scans; deleted; kept apart by
/// namespace.
fn records_contract(store: Arc<dyn LogStore>) {
    let ns = Namespace::Views;
    let mut batch = two_entries();
    batch.records = vec![
        Record::put(ns, *b"v\0b", *b"2"),
        Record::put(ns, *b"v\0a", *b"1"),
        Record::put(ns, *b"v\0c", *b"3"),
        Record::put(ns, *b"w\0a", *b"other view"),
        Record::put(Namespace::Agents, *b"v\0a", *b"other namespace"),
        Record::put(ns, *b"v\0d", *b"deleted below"),
        Record::delete(ns, *b"v\0d"),
    ];
    store.commit(&batch).unwrap();
    assert_eq!(store.get(ns, b"v\0a").unwrap(), Some(b"1".to_vec()));
    assert_eq!(store.get(ns, b"v\0d").unwrap(), None, "a later delete in the batch wins");
    assert_eq!(store.get(Namespace::Agents, b"v\0a").unwrap(), Some(b"other namespace".to_vec()));
    assert_eq!(store.get(Namespace::Openings, b"v\0a").unwrap(), None);
    assert_eq!(store.multi_get(ns, &[b"v\0c", b"nope", b"v\0a"]).unwrap(), vec![Some(b"3".to_vec()), None, Some(b"1".to_vec())]);
    let kv = |k: &[u8], v: &[u8]| (k.to_vec(), v.to_vec());
    let all = vec![kv(b"v\0a", b"1"), kv(b"v\0b", b"2"), kv(b"v\0c", b"3")];
    assert_eq!(store.scan_prefix(ns, b"v\0", &[], 10).unwrap(), all, "in key order, other prefixes left out");
    assert_eq!(store.scan_prefix(ns, b"v\0", &[], 2).unwrap(), all[..2].to_vec(), "bounded");
    assert_eq!(store.scan_prefix(ns, b"v\0", b"v\0a\0", 10).unwrap(), all[1..].to_vec(), "paged on from a key");
    assert_eq!(store.scan_prefix(ns, b"v\0", b"a", 10).unwrap(), all, "a start below the prefix starts at the prefix");
    assert!(store.scan_prefix(ns, b"x", &[], 10).unwrap().is_empty());
    assert_eq!(store.scan_prefix(ns, &[], &[], 10).unwrap().len(), 4);
    // A batch of records alone, at the stored size, leaves the log alone.
    let only = CommitBatch {
        first_index: 2,
        records: vec![Record::put(ns, *b"v\0a", *b"1'"), Record::delete(ns, *b"v\0b")],
        ..CommitBatch::default()
    };
    store.commit(&only).unwrap();
    assert_eq!(store.get(ns, b"v\0a").unwrap(), Some(b"1'".to_vec()));
    assert_eq!(store.get(ns, b"v\0b").unwrap(), None);
    assert_eq!(store.get_entries(0, 5).unwrap().len(), 2);
    // A refused batch writes none of its records.
    let stale = CommitBatch { first_index: 1, records: vec![Record::put(ns, *b"v\0z", *b"no")], ..CommitBatch::default() };
    assert!(matches!(store.commit(&stale), Err(StorageError::OutOfOrder { expected: 2, got: 1 })));
    let mut bad_nodes = two_entries();
    bad_nodes.first_index = 2;
    bad_nodes.records = vec![Record::put(ns, *b"v\0z", *b"no")];
    assert!(matches!(store.commit(&bad_nodes), Err(StorageError::BadBatch(_))));
    assert_eq!(store.get(ns, b"v\0z").unwrap(), None);
    // Records keyed by entry index belong to the batch's entries.
    let foreign = CommitBatch {
        first_index: 2,
        records: vec![Record::put(Namespace::OpeningKeys, 1u64.to_be_bytes(), *b"k")],
        ..CommitBatch::default()
    };
    assert!(matches!(store.commit(&foreign), Err(StorageError::BadBatch(_))));
    assert_eq!(store.get(Namespace::OpeningKeys, &1u64.to_be_bytes()).unwrap(), None);
}

/// Erasing records outside a commit: puts and deletes, durable, the log
/// untouched.
fn erase_contract(store: Arc<dyn LogStore>) {
    let ns = Namespace::Views;
    let mut batch = two_entries();
    batch.records = (0..100u8).map(|i| Record::put(ns, [b'k', i], vec![i; 64])).collect();
    store.commit(&batch).unwrap();
    store.erase(&[Record::delete(ns, *b"k\x05"), Record::put(ns, *b"k\x06", *b"tombstone"), Record::delete(ns, *b"absent")]).unwrap();
    assert_eq!(store.get(ns, b"k\x05").unwrap(), None);
    assert_eq!(store.get(ns, b"k\x06").unwrap(), Some(b"tombstone".to_vec()));
    assert_eq!(store.get(ns, b"k\x07").unwrap(), Some(vec![7; 64]));
    assert_eq!(store.scan_prefix(ns, b"k", &[], 1000).unwrap().len(), 99);
    store.erase(&[]).unwrap();
    assert_eq!(store.get_entries(0, 5).unwrap(), two_entries().entries, "erasing leaves the log alone");
    // The log goes on at its size.
    store.commit(&two_more_entries()).unwrap();
    assert_eq!(store.get_entries(0, 9).unwrap().len(), 4);
}

/// [`two_entries`] again, at indices 2 and 3.
fn two_more_entries() -> CommitBatch {
    let mut next = two_entries();
    next.first_index = 2;
    next.nodes = vec![
        (NodeId::leaf(2), leaf_hash(b"a")),
        (NodeId::leaf(3), leaf_hash(b"b")),
        (NodeId::new(1, 1), [1; 32]),
        (NodeId::new(2, 0), [2; 32]),
    ];
    next
}

/// Writing records outside a commit: only in namespaces no commit writes,
/// atomically (a refused write writes nothing), beside the log.
fn write_contract(store: Arc<dyn LogStore>) {
    let ns = Namespace::SsfStreams;
    store.commit(&two_entries()).unwrap();
    store.write(&[Record::put(ns, *b"s\0c", *b"config"), Record::put(ns, *b"s\0n", *b"cursor"), Record::delete(ns, *b"absent")]).unwrap();
    store.write(&[Record::put(ns, *b"s\0n", *b"cursor'")]).unwrap();
    assert_eq!(
        store.scan_prefix(ns, b"s\0", &[], 10).unwrap(),
        vec![(b"s\0c".to_vec(), b"config".to_vec()), (b"s\0n".to_vec(), b"cursor'".to_vec())]
    );
    for owned in [Namespace::Openings, Namespace::OpeningKeys, Namespace::OpeningsByAgent, Namespace::Agents, Namespace::Views] {
        let mixed = [Record::put(ns, *b"t\0c", *b"no"), Record::put(owned, 7u64.to_be_bytes(), *b"no")];
        assert!(matches!(store.write(&mixed), Err(StorageError::BadBatch(_))), "{}", owned.name());
        assert_eq!(store.get(ns, b"t\0c").unwrap(), None, "a refused write writes nothing");
        assert_eq!(store.get(owned, &7u64.to_be_bytes()).unwrap(), None);
    }
    store.write(&[Record::delete(ns, *b"s\0c")]).unwrap();
    assert_eq!(store.get(ns, b"s\0c").unwrap(), None);
    store.write(&[]).unwrap();
    assert_eq!(store.get_entries(0, 5).unwrap(), two_entries().entries, "writing leaves the log alone");
    // The log goes on at its size.
    store.commit(&two_more_entries()).unwrap();
}

fn store_contract(store: Arc<dyn LogStore>) {
    {
        assert_eq!(store.head().unwrap(), None);
        let head = StoredHead { size: 2, integrated_time: 7, checkpoint: "cp\n".into() };
        let batch = CommitBatch {
            first_index: 0,
            entries: vec![b"a".to_vec(), b"b".to_vec()],
            nodes: vec![(NodeId::leaf(0), leaf_hash(b"a")), (NodeId::leaf(1), leaf_hash(b"b")), (NodeId::new(1, 0), [3; 32])],
            head: Some(head.clone()),
            records: Vec::new(),
        };
        store.commit(&batch).unwrap();
        assert_eq!(store.head().unwrap(), Some(head.clone()));
        assert_eq!(store.get_entries(0, 2).unwrap(), vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(store.get_entries(1, 10).unwrap(), vec![b"b".to_vec()]);
        assert!(store.get_entries(2, 5).unwrap().is_empty());
        assert_eq!(store.get_nodes(&[NodeId::new(1, 0), NodeId::leaf(5)]).unwrap(), vec![Some([3; 32]), None]);
        // Nodes that the entries do not complete are refused.
        let wrong_nodes = CommitBatch {
            first_index: 2,
            entries: vec![b"c".to_vec()],
            nodes: vec![(NodeId::leaf(3), [9; 32])],
            head: None,
            records: Vec::new(),
        };
        assert!(matches!(store.commit(&wrong_nodes), Err(StorageError::BadBatch(_))));
        let missing = CommitBatch {
            first_index: 2,
            entries: vec![b"c".to_vec(), b"d".to_vec()],
            nodes: vec![(NodeId::leaf(2), [9; 32]), (NodeId::leaf(3), [9; 32])],
            head: None,
            records: Vec::new(),
        };
        assert!(matches!(store.commit(&missing), Err(StorageError::BadBatch(_))));
        assert_eq!(store.get_entries(0, 9).unwrap().len(), 2);
        // A commit that does not start at the stored size changes nothing.
        let stale = CommitBatch {
            first_index: 1,
            entries: vec![b"x".to_vec()],
            nodes: vec![(NodeId::leaf(1), [9; 32])],
            head: None,
            records: Vec::new(),
        };
        assert!(matches!(store.commit(&stale), Err(StorageError::OutOfOrder { expected: 2, got: 1 })));
        assert_eq!(store.get_nodes(&[NodeId::leaf(1)]).unwrap(), vec![Some(leaf_hash(b"b"))]);
        assert_eq!(store.head().unwrap(), Some(head));
    }
}

fn openings_contract(store: Arc<dyn LogStore>) {
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
    {
        let entries: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i]).collect();
        let nodes = (0..4u64).flat_map(verifier::tree::nodes_completed_by).map(|id| {
            let (s, e) = id.leaf_range();
            (id, hash_leaves(&entries[s as usize..e as usize].iter().map(|x| leaf_hash(x)).collect::<Vec<_>>()))
        });
        let mut batch =
            CommitBatch { first_index: 0, entries: entries.clone(), nodes: nodes.collect(), head: None, records: sealed(9, a).records() };
        assert!(matches!(store.commit(&batch), Err(StorageError::BadBatch(_))), "openings outside the batch");
        assert_eq!(store.openings(9).unwrap(), None);
        assert!(store.openings_from(0, 10).unwrap().is_empty());
        batch.records = [sealed(0, a), sealed(2, b), sealed(3, a)]
            .iter()
            .flat_map(SealedOpenings::records)
            .chain([Record::put(Namespace::Agents, a, *b"record-a"), Record::put(Namespace::Agents, b, *b"record-b")])
            .collect();
        store.commit(&batch).unwrap();
        let agents = store.scan_prefix(Namespace::Agents, &[], &[], 10).unwrap();
        assert_eq!(agents, vec![(a.as_bytes().to_vec(), b"record-a".to_vec()), (b.as_bytes().to_vec(), b"record-b".to_vec())]);
        assert_eq!(store.openings(0).unwrap(), Some(record(0)));
        assert_eq!(store.openings(3).unwrap(), Some(record(3)), "a legacy record has no data key");
        assert_eq!(store.openings(1).unwrap(), None);
        assert_eq!(store.openings_from(0, 10).unwrap(), vec![(0, record(0)), (2, record(2)), (3, record(3))]);
        assert_eq!(store.openings_from(1, 1).unwrap(), vec![(2, record(2))]);
        assert!(store.openings_from(4, 10).unwrap().is_empty());
        assert_eq!(first_sealed_openings(&*store, 2).unwrap(), vec![(0, record(0)), (2, record(2))]);
        // Agent ids that prefix one another are kept apart.
        assert_eq!(store.openings_of_agent(a).unwrap(), vec![0, 3]);
        assert_eq!(store.openings_of_agent(b).unwrap(), vec![2]);
        assert!(store.openings_of_agent("spiffe://t.example/agent/").unwrap().is_empty());
        assert_eq!(store.shred_openings(&[0, 1, 3], 77).unwrap(), vec![0, 3]);
        assert_eq!(store.shred_openings(&[0], 78).unwrap(), Vec::<u64>::new(), "already shredded");
        // Shredding takes the wrapped key with the ciphertext; legacy
        // records shred the same way.
        assert_eq!(store.openings(0).unwrap(), Some(OpeningsRecord::Shredded { at_ms: 77 }));
        assert_eq!(store.openings(3).unwrap(), Some(OpeningsRecord::Shredded { at_ms: 77 }));
        assert_eq!(store.openings(2).unwrap(), Some(record(2)));
        let shredded = OpeningsRecord::Shredded { at_ms: 77 };
        assert_eq!(store.openings_from(0, 10).unwrap(), vec![(0, shredded.clone()), (2, record(2)), (3, shredded)]);
        assert_eq!(first_sealed_openings(&*store, 8).unwrap(), vec![(2, record(2))]);
        assert_eq!(store.get_entries(0, 4).unwrap(), entries, "shredding leaves the log alone");
        assert_eq!(store.shred_openings(&[2], 79).unwrap(), vec![2]);
        assert!(first_sealed_openings(&*store, 8).unwrap().is_empty(), "nothing left to open");
    }
}

/// Finding the sealed openings a master key must open pages past any
/// number of shredded records.
fn first_sealed_openings_skip_shredded_records(store: Arc<dyn LogStore>) {
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
    {
        let batch = CommitBatch {
            first_index: 0,
            entries: entries.clone(),
            nodes: nodes.clone(),
            head: None,
            records: openings.iter().flat_map(SealedOpenings::records).collect(),
        };
        store.commit(&batch).unwrap();
        assert_eq!(store.shred_openings(&(0..1050).collect::<Vec<_>>(), 5).unwrap().len(), 1050);
        let first: Vec<u64> = first_sealed_openings(&*store, 3).unwrap().into_iter().map(|(i, _)| i).collect();
        assert_eq!(first, vec![1050, 1051, 1052]);
        assert_eq!(store.openings_from(1049, 2).unwrap().len(), 2);
    }
}

async fn concurrent_appends_get_contiguous_durable_indices_and_verifiable_proofs(store: Arc<dyn LogStore>) {
    {
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
        assert_eq!(all.iter().map(|a| a.index).collect::<Vec<_>>(), (0..size).collect::<Vec<_>>());
        let cp = checkpoint(&log);
        assert_eq!(cp.size, size);

        // Stored leaves hash to the acknowledged leaf hashes, and the tree
        // over them is the signed root.
        let (leaves, _) = log.entries(0, size).unwrap();
        let hashes: Vec<_> = leaves.iter().map(|l| leaf_hash(l)).collect();
        assert_eq!(hashes, all.iter().map(|a| a.leaf_hash).collect::<Vec<_>>());
        assert_eq!(hash_leaves(&hashes), cp.root);

        for a in &all {
            let proof = log.inclusion_proof(a.index, size).unwrap();
            verify_inclusion(&a.leaf_hash, a.index, size, &proof, &cp.root).unwrap();
        }
        for old in [0, 1, 2, 3, 7, 8, 100, size - 1, size] {
            let proof = log.consistency_proof(old, size).unwrap();
            verify_consistency(old, size, &proof, &log.root_at(old).unwrap(), &cp.root).unwrap();
            assert_eq!(log.root_at(old).unwrap(), hash_leaves(&hashes[..old as usize]));
        }
        let bundle = verifier::tlog_proof::TlogProof::parse(&log.proof_bundle(5).unwrap()).unwrap();
        assert_eq!(bundle.verify(&NoteVerifier::new(log.verifier_key()), None).unwrap().index, 5);
    }
}

async fn tiles_hold_exactly_the_tree(store: Arc<dyn LogStore>) {
    {
        let log = open(store, LogConfig::default());
        let batch: Vec<NewEntry> = (0..600).map(entry).collect();
        log.append(batch).await.unwrap();
        let (leaves, size) = log.entries(0, 600).unwrap();
        assert_eq!((leaves.len(), size), (600, 600));
        let hashes: Vec<_> = leaves.iter().map(|l| leaf_hash(l)).collect();

        let full = TilePath { kind: TileKind::Hashes { level: 0 }, index: 1, partial: None };
        assert_eq!(log.tile(&full).unwrap(), hashes[256..512].concat());
        let partial = TilePath { kind: TileKind::Hashes { level: 0 }, index: 2, partial: Some(88) };
        assert_eq!(log.tile(&partial).unwrap(), hashes[512..600].concat());
        let level1 = TilePath { kind: TileKind::Hashes { level: 1 }, index: 0, partial: Some(2) };
        assert_eq!(log.tile(&level1).unwrap(), [hash_leaves(&hashes[..256]), hash_leaves(&hashes[256..512])].concat());
        let bundle = TilePath { kind: TileKind::Entries, index: 0, partial: None };
        let body = log.tile(&bundle).unwrap();
        let decoded = decode_entry_bundle(&body).unwrap();
        assert_eq!(decoded.len(), 256);
        assert_eq!(decoded[3], log.entry(3).unwrap().as_slice());

        for missing in [
            TilePath { kind: TileKind::Hashes { level: 0 }, index: 2, partial: None },
            TilePath { kind: TileKind::Hashes { level: 0 }, index: 2, partial: Some(89) },
            TilePath { kind: TileKind::Hashes { level: 1 }, index: 0, partial: Some(3) },
            TilePath { kind: TileKind::Entries, index: 3, partial: Some(1) },
        ] {
            assert!(matches!(log.tile(&missing), Err(Error::TileNotAvailable(_))), "{missing:?}");
        }
    }
}

async fn bad_requests_change_nothing(store: Arc<dyn LogStore>) {
    {
        let log = open(store, LogConfig { queue_bytes: 4096, ..LogConfig::default() });
        log.append(vec![entry(1), entry(2)]).await.unwrap();
        let before = log.head();
        assert!(matches!(log.append(vec![]).await, Err(Error::EmptyBatch)));
        let huge: Vec<NewEntry> = (0..100).map(entry).collect();
        assert!(matches!(log.append(huge).await, Err(Error::BatchTooLarge { .. })));
        assert!(matches!(log.entry(2), Err(Error::IndexBeyondTree { index: 2, size: 2 })));
        assert!(matches!(log.entries(5, 1), Err(Error::IndexBeyondTree { .. })));
        assert!(matches!(log.inclusion_proof(0, 3), Err(Error::SizeBeyondTree { requested: 3, size: 2 })));
        assert!(matches!(log.inclusion_proof(2, 2), Err(Error::IndexBeyondTree { .. })));
        assert!(matches!(log.consistency_proof(2, 1), Err(Error::OldSizeLarger { .. })));
        assert!(matches!(log.consistency_proof(1, 9), Err(Error::SizeBeyondTree { .. })));
        assert_eq!(log.head(), before);
    }
}

async fn full_queue_pushes_back_and_loses_nothing_acknowledged(store: Arc<dyn LogStore>) {
    {
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
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(ok.len() + pushed_back, 64);
        assert_eq!(log.head().size, ok.len() as u64);
        for a in ok {
            assert_eq!(leaf_hash(&log.entry(a.index).unwrap()), a.leaf_hash);
        }
    }
}

async fn shutdown_drains_then_refuses(store: Arc<dyn LogStore>) {
    {
        let log = open(store, LogConfig::default());
        log.append(vec![entry(0)]).await.unwrap();
        log.shutdown();
        assert!(matches!(log.append(vec![entry(1)]).await, Err(Error::ShuttingDown)));
        assert_eq!(log.head().size, 1);
    }
}

/// Records a successful software attestation of `agent`, registered with
/// `key` (its next `seq`, a fresh nonce, the passport's hashes): what an
/// agent does before it is reinstated.
pub async fn attest_software(log: &Log, agent: &verifier::agent_id::AgentId, key: &SigningKey) -> Result<crate::Appended, crate::Error> {
    use base64::Engine as _;
    use verifier::entry::signing::{hex, sign_entry};
    let state = log.agent(agent).ok_or_else(|| crate::Error::UnknownAgent(agent.clone()))?;
    let nonce = log.issue_nonce(agent)?;
    let mut m = serde_json::json!({
        "kind": "attestation", "agent": agent.as_str(), "nonce": base64::engine::general_purpose::STANDARD.encode(nonce),
        "code_hash": hex(&state.passport.code_hash),
        "runtime": {"os": "linux", "version": "6.1", "image_digest": "sha256:abc"},
        "behaviour": {"digest": hex(&[1; 32]), "calls": 1, "distinct": 1},
        "evidence": {"type": "software"}, "seq": state.last_seq + 1,
    });
    if let Some(model) = &state.passport.model_hash {
        m["model_hash"] = serde_json::Value::from(hex(model));
    }
    let obj = m.as_object_mut().unwrap();
    sign_entry(obj, &log.config().origin, key);
    Ok(log.attest(&m).await?.0)
}
