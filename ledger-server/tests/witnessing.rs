//! `Witnessing` against real `ledger-witness` routers on loopback and a
//! real RocksDB log in a temporary directory: checkpoints reach a quorum
//! of verified cosignatures as the log grows, a restarted client recovers
//! the witnesses' sizes from their 409s, and a witness that is down keeps
//! a quorum of two from forming while a quorum of one still does.

// In tests a failed unwrap is the failure report.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use ledger_core::{Log, LogConfig, NewEntry};
use ledger_server::witnessing::{WitnessConfig, Witnessing};
use ledger_witness::{CheckpointStore, Witness};
use verifier::cosignature::{require_quorum, WitnessKey, WitnessSigner};
use verifier::{Checkpoint, NoteVerifier};

const ORIGIN: &str = "witnessing.example/log";

fn open_log(dir: &std::path::Path) -> Arc<Log> {
    let config = LogConfig {
        origin: ORIGIN.into(),
        openings_key: Some(ledger_core::sealing::OpeningsKey::from_bytes(&[3; 32])),
        agent_auth: false,
        ..LogConfig::default()
    };
    Arc::new(Log::open_dir(dir, config, None).unwrap())
}

/// Starts a witness router on a random loopback port; returns its URL and key.
async fn start_witness(log: &Log, seed: u8, state: &std::path::Path) -> (String, WitnessKey) {
    let signer = WitnessSigner::new(&format!("witness.example/w{seed}"), SigningKey::from_bytes(&[seed; 32])).unwrap();
    let key = signer.witness_key();
    let witness = Arc::new(Witness::open(signer, vec![log.verifier_key()], CheckpointStore::open(state).unwrap()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, ledger_witness::app(witness)).await });
    (format!("http://{addr}"), key)
}

/// A loopback address nothing listens on.
async fn dead_address() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

async fn append(log: &Log, n: usize) -> u64 {
    let agent = "spiffe://example.org/agent/witnessed".parse().unwrap();
    let entries = (0..n).map(|i| NewEntry::action(&agent, "read", &format!("db/{i}"), None, 65_535).unwrap()).collect();
    log.append(entries).await.unwrap();
    log.head().size
}

/// Polls until `witnessing` holds a quorum checkpoint of `size` (bounded).
async fn wait_for_quorum(witnessing: &Witnessing, size: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(note) = witnessing.latest_quorum() {
            let text = &note[..note.find("\n\n").unwrap() + 1];
            if Checkpoint::from_text(text).unwrap().size == size {
                return note;
            }
        }
        assert!(Instant::now() < deadline, "no quorum at size {size}: {:?}", witnessing.status());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_reach_a_quorum_of_two() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(&dir.path().join("log"));
    let (url1, key1) = start_witness(&log, 1, &dir.path().join("w1")).await;
    let (url2, key2) = start_witness(&log, 2, &dir.path().join("w2")).await;
    let keys = [key1.clone(), key2.clone()];
    let configs = vec![WitnessConfig { url: url1, key: key1 }, WitnessConfig { url: url2, key: key2 }];
    let log_verifier = NoteVerifier::new(log.verifier_key());

    let witnessing = Witnessing::spawn(Arc::clone(&log), configs.clone(), 2);
    assert_eq!(witnessing.latest_quorum(), None);
    let size = append(&log, 3).await;
    let note = wait_for_quorum(&witnessing, size).await;
    assert_eq!(Checkpoint::open(&note, &log_verifier).unwrap().size, size);
    assert_eq!(require_quorum(&note, &keys, 2).unwrap(), ["witness.example/w1", "witness.example/w2"]);

    // Growth: the witnesses get a consistency proof from what they cosigned.
    let size = append(&log, 5).await;
    let note = wait_for_quorum(&witnessing, size).await;
    assert_eq!(require_quorum(&note, &keys, 2).unwrap().len(), 2);
    assert!(witnessing.status().iter().all(|s| s.cosigned_size == size && s.last_error.is_none()), "{:?}", witnessing.status());
    assert_eq!(witnessing.latest(), Some(note));

    // A new client knows no sizes: each witness's 409 tells it, and it
    // retries with a proof from there.
    drop(witnessing);
    let witnessing = Witnessing::spawn(Arc::clone(&log), configs, 2);
    let size = append(&log, 2).await;
    let note = wait_for_quorum(&witnessing, size).await;
    Checkpoint::open(&note, &log_verifier).unwrap();
    assert_eq!(require_quorum(&note, &keys, 2).unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_down_blocks_a_quorum_of_two_but_not_of_one() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(&dir.path().join("log"));
    let (url, key) = start_witness(&log, 1, &dir.path().join("w1")).await;
    let down_key = WitnessSigner::new("witness.example/down", SigningKey::from_bytes(&[5; 32])).unwrap().witness_key();
    let configs =
        vec![WitnessConfig { url, key: key.clone() }, WitnessConfig { url: format!("http://{}", dead_address().await), key: down_key }];
    let two = Witnessing::spawn(Arc::clone(&log), configs.clone(), 2);
    let one = Witnessing::spawn(Arc::clone(&log), configs, 1);

    let size = append(&log, 4).await;
    let note = wait_for_quorum(&one, size).await;
    assert_eq!(require_quorum(&note, std::slice::from_ref(&key), 1).unwrap(), ["witness.example/w1"]);

    // The quorum-2 client got the same single cosignature, and no quorum.
    let deadline = Instant::now() + Duration::from_secs(20);
    while two.status()[1].last_error.is_none() || two.latest().is_none_or(|n| require_quorum(&n, std::slice::from_ref(&key), 1).is_err()) {
        assert!(Instant::now() < deadline, "{:?}", two.status());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(two.latest_quorum(), None);
    let status = two.status();
    assert_eq!((status[0].cosigned_size, status[0].last_error.as_deref()), (size, None));
    assert_eq!(status[1].cosigned_size, 0);
    assert!(status[1].failures >= 1);
}

/// A witness that answers every submission with many valid cosignature
/// lines (15 timestamps) and one honest witness: the log keeps one line
/// per witness, so the served note stays within the signature lines a
/// verifier reads, and both cosignatures verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_answering_many_lines_gets_one() {
    use axum::routing::post;
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(&dir.path().join("log"));
    let (url, honest) = start_witness(&log, 1, &dir.path().join("w1")).await;
    let flood = WitnessSigner::new("witness.example/flood", SigningKey::from_bytes(&[9; 32])).unwrap();
    let flood_key = flood.witness_key();
    let flood = Arc::new(flood);
    let router = axum::Router::new().route(
        "/add-checkpoint",
        post(move |body: String| {
            let flood = Arc::clone(&flood);
            async move {
                let note = body.split_once("\n\n").map(|(_, note)| note.to_owned()).unwrap_or_default();
                let text = &note[..note.find("\n\n").unwrap() + 1];
                (1..=15u64).map(|t| flood.cosign(text, 1_700_000_000 + t).unwrap()).collect::<String>()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let flood_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let keys = [honest.clone(), flood_key.clone()];
    let configs = vec![WitnessConfig { url, key: honest }, WitnessConfig { url: flood_url, key: flood_key }];
    let witnessing = Witnessing::spawn(Arc::clone(&log), configs, 2);
    let size = append(&log, 3).await;
    let note = wait_for_quorum(&witnessing, size).await;
    let parsed = verifier::note::SignedNote::parse(&note).unwrap();
    assert_eq!(parsed.signatures.len(), 3, "the log's line and one per witness: {note}");
    assert_eq!(require_quorum(&note, &keys, 2).unwrap().len(), 2);
    Checkpoint::open(&note, &NoteVerifier::new(log.verifier_key())).unwrap();
}
