//! Openings at rest on the RocksDB store: per-entry data keys wrapped by
//! the master key, kept apart from the ciphertexts; a lost or wrong master
//! key refused at start instead of silently replaced; openings sealed the
//! old way (v1, the master key itself) still open and still shred.

// In tests and benches a failed unwrap is the failure report.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use ledger_core::sealing::{OpeningsKey, UnsealError};
use ledger_core::store::{CommitBatch, LogStore, Openings as _, OpeningsRecord, RocksStore, SealedOpenings, StoredHead};
use ledger_core::{DisclosureRequest, Error, Log, LogConfig, NewEntry, ShredTarget, Submission};
use serde_json::{json, Value};
use verifier::hash::leaf_hash;
use verifier::note::NoteSigner;
use verifier::tree::NodeId;
use verifier::Checkpoint;
use zk::predicate::Predicate;

const ORIGIN: &str = "sealing.example/log";
const AGENT: &str = "spiffe://example.org/agent/billing";
const MASTER: [u8; 32] = [8; 32];

fn config(key: Option<OpeningsKey>) -> LogConfig {
    LogConfig { origin: ORIGIN.into(), openings_key: key, agent_auth: false, ..LogConfig::default() }
}

fn signer() -> NoteSigner {
    NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[6; 32])).unwrap()
}

/// An action whose hidden fields the client committed, sent with its
/// openings. No append-time predicates, so nothing binds it to a sequence
/// number and it needs no agent signature (`agent_auth` is off); its
/// integer still takes predicates proven at disclosure time.
fn committed(amount: u64, customer: &str) -> Submission {
    let mut entry = json!({"kind": "action", "agent": AGENT, "action": "pay", "resource": "invoices/7"}).as_object().unwrap().clone();
    let hidden = verifier::hidden::parse_hidden(&json!({"amount": {"u64": amount}, "customer": {"str": customer}})).unwrap();
    let openings = verifier::hidden::commit(&mut entry, &hidden, b"", &mut rand_core::OsRng, zk::params(), true).unwrap();
    entry.insert("openings".into(), verifier::hidden::openings_to_json(&openings));
    Submission::from_value(&Value::Object(entry), 65535).unwrap()
}

fn reveal(field: &str) -> DisclosureRequest {
    DisclosureRequest { reveal: vec![field.to_owned()], prove: Vec::new() }
}

async fn revealed(log: &Log, index: u64, field: &str) -> Result<String, Error> {
    let bundle = log.disclose(index, &reveal(field)).await?;
    let opening = serde_json::to_value(bundle.to_json()).unwrap()["revealed"][field].clone();
    Ok(opening.get("str").or_else(|| opening.get("u64")).unwrap().to_string().trim_matches('"').to_owned())
}

fn config_error(result: Result<Log, Error>) -> String {
    match result {
        Err(Error::Config(msg)) => msg,
        Err(e) => panic!("expected a configuration error, got {e:?}"),
        Ok(_) => panic!("the log started"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_or_wrong_openings_key_is_refused_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("openings.key");
    let log = Log::open_dir(dir.path(), config(None), None).unwrap();
    log.submit(vec![committed(1250, "ACME"), committed(7, "Globex")]).await.unwrap();
    assert_eq!(revealed(&log, 0, "customer").await.unwrap(), "ACME");
    let head = log.head();
    drop(log);
    let key_text = std::fs::read_to_string(&key_file).unwrap();

    // The key is lost: the log refuses to start, names the file and says
    // what to do, and creates no new key.
    std::fs::remove_file(&key_file).unwrap();
    let msg = config_error(Log::open_dir(dir.path(), config(None), None));
    assert!(msg.contains(&key_file.display().to_string()) && msg.contains("restore") && msg.contains("LEDGER_OPENINGS_KEY"), "{msg}");
    assert!(!key_file.exists(), "a new openings key was created over sealed openings");

    // Another key, in the file or in the configuration: refused too.
    let other = "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk";
    write_secret(&key_file, other);
    let msg = config_error(Log::open_dir(dir.path(), config(None), None));
    assert!(msg.contains("not the key"), "{msg}");
    write_secret(&key_file, &key_text);
    let msg = config_error(Log::open_dir(dir.path(), config(Some(OpeningsKey::from_text(other).unwrap())), None));
    assert!(msg.contains("not the key"), "{msg}");

    // The right key back: nothing changed, everything opens.
    let log = Log::open_dir(dir.path(), config(None), None).unwrap();
    assert_eq!(log.head(), head);
    assert_eq!(revealed(&log, 0, "amount").await.unwrap(), "1250");
    assert_eq!(revealed(&log, 1, "customer").await.unwrap(), "Globex");
    let same_key_in_config = config(Some(OpeningsKey::from_text(&key_text).unwrap()));
    drop(log);
    let log = Log::open_dir(dir.path(), same_key_in_config, None).unwrap();

    // Once every opening is shredded there is nothing a new key could
    // lose: a missing key file is then created afresh.
    assert_eq!(log.shred(&ShredTarget::Agent(AGENT.parse().unwrap())).unwrap(), vec![0, 1]);
    drop(log);
    std::fs::remove_file(&key_file).unwrap();
    let log = Log::open_dir(dir.path(), config(None), None).unwrap();
    assert!(key_file.exists());
    assert_ne!(std::fs::read_to_string(&key_file).unwrap(), key_text);
    assert!(matches!(revealed(&log, 0, "amount").await, Err(Error::OpeningsShredded { index: 0, .. })));
    assert_eq!(log.head().size, head.size);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_store_gets_a_key_and_entries_without_openings_need_none() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_dir(dir.path(), config(None), None).unwrap();
    let plain = NewEntry::action(&AGENT.parse().unwrap(), "read", "db/1", None, 65_535).unwrap();
    log.append(vec![plain]).await.unwrap();
    drop(log);
    // No sealed openings: losing the key loses nothing, a new one is made.
    std::fs::remove_file(dir.path().join("openings.key")).unwrap();
    let log = Log::open_dir(dir.path(), config(None), None).unwrap();
    assert!(dir.path().join("openings.key").exists());
    assert_eq!(log.head().size, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ciphertexts_without_their_wrapped_keys_open_with_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RocksStore::open(dir.path()).unwrap());
    let master = OpeningsKey::from_bytes(&MASTER);
    let log = Log::open(store.clone(), signer(), config(Some(master.clone())), None).unwrap();
    log.submit(vec![committed(1250, "ACME"), committed(99, "Initech")]).await.unwrap();
    let leaf = leaf_hash(&log.entry(0).unwrap());
    let Some(OpeningsRecord::Sealed { sealed, wrapped_key: Some(wrapped) }) = store.openings(0).unwrap() else { panic!("no data key") };
    let Some(OpeningsRecord::Sealed { wrapped_key: Some(other_wrapped), .. }) = store.openings(1).unwrap() else { panic!("no data key") };
    assert_eq!(sealed[0], ledger_core::sealing::SEALED_V2);
    assert!(master.open(0, &leaf, &sealed, Some(&wrapped)).is_ok());
    // What a backup of the `openings` column family alone holds: the
    // master key does not open it, nor does another entry's data key.
    assert_eq!(master.open(0, &leaf, &sealed, None).unwrap_err(), UnsealError::MissingDataKey { index: 0 });
    assert!(master.open(0, &leaf, &sealed, Some(&other_wrapped)).is_err());
}

/// A store written before envelope encryption: its openings are sealed with
/// the master key itself (`0x01 ‖ nonce ‖ ciphertext ‖ tag`, associated
/// data `agent-ledger/openings/v1 ‖ index ‖ leaf hash`, built here from
/// FORMAT.md). They still disclose, and shredding them erases them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openings_sealed_the_old_way_still_open_and_shred() {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    use chacha20poly1305::{XChaCha20Poly1305, XNonce};

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RocksStore::open(dir.path()).unwrap());
    let Submission::Pending(pending) = committed(4242, "Umbrella") else { panic!("expected hidden fields") };
    let entry = pending.check(ORIGIN, zk::params()).unwrap();
    let (time, leaf) = (1_700_000_000_000u64, entry.to_leaf(1_700_000_000_000));
    let hash = leaf_hash(&leaf);
    let nonce = [7u8; 24];
    let aad = [&b"agent-ledger/openings/v1"[..], &0u64.to_be_bytes(), &hash].concat();
    let ct = XChaCha20Poly1305::new(&MASTER.into())
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: entry.secret().unwrap().openings.as_slice(), aad: &aad })
        .unwrap();
    let legacy = [&[1u8][..], &nonce, &ct].concat();
    let note = Checkpoint { origin: ORIGIN.into(), size: 1, root: hash, extensions: Vec::new() }.sign(&signer()).unwrap();
    store
        .commit(&CommitBatch {
            first_index: 0,
            entries: vec![leaf],
            nodes: vec![(NodeId::leaf(0), hash)],
            head: Some(StoredHead { size: 1, integrated_time: time, checkpoint: note }),
            records: SealedOpenings { index: 0, agent: AGENT.into(), sealed: legacy.clone(), wrapped_key: None }.records(),
        })
        .unwrap();

    let log = Log::open(store.clone(), signer(), config(Some(OpeningsKey::from_bytes(&MASTER))), None).unwrap();
    assert_eq!(revealed(&log, 0, "amount").await.unwrap(), "4242");
    let proven = DisclosureRequest { reveal: Vec::new(), prove: vec![("amount".into(), Predicate::le(5000))] };
    assert_eq!(log.disclose(0, &proven).await.unwrap().proofs.len(), 1);
    // New entries beside it are sealed the new way.
    log.submit(vec![committed(5, "Hooli")]).await.unwrap();
    assert!(matches!(store.openings(1).unwrap(), Some(OpeningsRecord::Sealed { wrapped_key: Some(_), .. })));

    assert!(files_contain(dir.path(), &legacy[25..57]), "the legacy ciphertext is on disk before the shred");
    assert_eq!(log.shred(&ShredTarget::Entry(0)).unwrap(), vec![0]);
    assert!(!files_contain(dir.path(), &legacy[25..57]), "the legacy ciphertext is still on disk after shredding");
    assert!(matches!(log.disclose(0, &reveal("amount")).await, Err(Error::OpeningsShredded { index: 0, .. })));
    assert_eq!(revealed(&log, 1, "customer").await.unwrap(), "Hooli");
}

/// Writes a key file as the log does (mode 0600: it refuses keys others
/// can read).
fn write_secret(path: &Path, text: &str) {
    let _ = std::fs::remove_file(path);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    std::io::Write::write_all(&mut opts.open(path).unwrap(), text.as_bytes()).unwrap();
}

fn files_contain(dir: &Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().any(|e| {
        let path = e.unwrap().path();
        if path.is_dir() {
            return files_contain(&path, needle);
        }
        std::fs::read(&path).map(|bytes| bytes.windows(needle.len()).any(|w| w == needle)).unwrap_or(false)
    })
}
