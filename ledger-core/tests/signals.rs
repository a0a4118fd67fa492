//! Signal sources and signed signals on the log: registration and
//! replacement, source-signed signals and peer reports through the append
//! pipeline, every refusal checked to leave the log unchanged, one `seq`
//! admitted once however the signals are grouped, and the sources view
//! loaded and rebuilt across restarts.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use ledger_core::store::{LogStore, MemoryStore, Namespace, Record, RocksStore};
use ledger_core::views::{self, sources::SourceState};
use ledger_core::{Error, Log, LogConfig, Submission};
use serde_json::{json, Value};
use verifier::entry::passport::Passport;
use verifier::entry::signing::sign_entry;
use verifier::entry::{EntryError, Revocation, RevocationReason, ShapeError, SignalType, Source};
use verifier::fold::sources::SourceError;
use verifier::note::NoteSigner;

const ORIGIN: &str = "signals.example/log";
const AGENT: &str = "spiffe://example.org/agent/billing";
const PEER: &str = "spiffe://example.org/agent/auditor";

fn open(store: Arc<dyn LogStore>, preverify: bool) -> Log {
    let signer = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[1; 32])).unwrap();
    let config = LogConfig { origin: ORIGIN.into(), preverify, ..LogConfig::default() };
    Log::open(store, signer, config, None).unwrap()
}

fn passport(agent: &str, key: &SigningKey) -> Passport {
    Passport {
        agent: agent.parse().unwrap(),
        public_key: key.verifying_key(),
        // The peer runs other code: the threat intelligence about `c0…`
        // below would take it under the revocation threshold.
        code_hash: if agent == PEER { [0xd0; 32] } else { [0xc0; 32] },
        model_hash: None,
        owner: "o".into(),
        purpose: "p".into(),
        tpm_ak: None,
    }
}

fn source(name: &str, key: &SigningKey, types: &[SignalType]) -> Source {
    Source { name: name.into(), key: key.verifying_key(), types: types.to_vec() }
}

/// A signal signed by `key`, as `POST /v1/signals` takes it.
fn signal(from: &str, subject: Value, signal_type: &str, seq: u64, key: &SigningKey) -> Value {
    let mut v = json!({"kind": "signal", "source": from, "subject": subject, "type": signal_type, "severity": "high",
        "evidence": {"rule": "r-17"}, "seq": seq});
    if signal_type == "peer_report" {
        v["assessment"] = json!("negative");
    }
    sign_entry(v.as_object_mut().unwrap(), ORIGIN, key);
    v
}

async fn submit(log: &Log, signal: &Value) -> Result<u64, Error> {
    let submission = Submission::signal_from_value(signal, 65535)?;
    Ok(log.submit(vec![submission]).await?[0].index)
}

/// Submits and checks the refusal and that nothing was appended.
async fn refused(log: &Log, signal: &Value, check: impl Fn(&Error) -> bool) {
    let size = log.head().size;
    let err = submit(log, signal).await.unwrap_err();
    assert!(check(&err), "{signal}: {err:?}");
    assert_eq!(log.head().size, size, "{signal}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_file_signals_and_agents_report_peers() {
    let log = open(Arc::new(MemoryStore::new()), true);
    let (agent_key, peer_key, siem_key) =
        (SigningKey::from_bytes(&[2; 32]), SigningKey::from_bytes(&[3; 32]), SigningKey::from_bytes(&[4; 32]));
    log.register(passport(AGENT, &agent_key)).await.unwrap();
    log.register(passport(PEER, &peer_key)).await.unwrap();
    let at = log.register_source(source("siem-1", &siem_key, &[SignalType::Siem, SignalType::ThreatIntel])).await.unwrap();
    assert_eq!(at.index, 2);
    let state = log.source("siem-1").unwrap();
    assert_eq!((state.registered_index, state.key_index, state.last_seq), (2, 2, 0));

    // Accepted: about an agent, and threat intelligence about a code hash.
    submit(&log, &signal("siem-1", json!(AGENT), "siem", 1, &siem_key)).await.unwrap();
    let index = submit(&log, &signal("siem-1", json!({"code_hash": "c0".repeat(32)}), "threat_intel", 7, &siem_key)).await.unwrap();
    assert_eq!(log.source("siem-1").unwrap().last_seq, 7);
    let leaf: Value = serde_json::from_slice(&log.entry(index).unwrap()).unwrap();
    assert_eq!((leaf["source"].as_str(), leaf["seq"].as_u64()), (Some("siem-1"), Some(7)));

    // Refused, nothing appended.
    let mut forged = signal("siem-1", json!(AGENT), "siem", 8, &siem_key);
    forged["severity"] = json!("low");
    refused(&log, &forged, |e| matches!(e, Error::Source(SourceError::BadSignature { .. }))).await;
    refused(&log, &signal("siem-1", json!(AGENT), "siem", 8, &peer_key), |e| matches!(e, Error::Source(SourceError::BadSignature { .. })))
        .await;
    refused(&log, &signal("siem-1", json!(AGENT), "siem", 7, &siem_key), |e| {
        matches!(e, Error::Source(SourceError::Replayed { seq: 7, last: 7, .. }))
    })
    .await;
    refused(&log, &signal("siem-1", json!(AGENT), "ueba", 8, &siem_key), |e| {
        matches!(e, Error::Source(SourceError::TypeNotAllowed { signal_type: SignalType::Ueba, .. }))
    })
    .await;
    refused(&log, &signal("feed", json!(AGENT), "siem", 1, &siem_key), |e| matches!(e, Error::Source(SourceError::UnknownSource(_)))).await;
    refused(&log, &signal("siem-1", json!("spiffe://example.org/agent/ghost"), "siem", 8, &siem_key), |e| {
        matches!(e, Error::Source(SourceError::UnknownSubject(_)))
    })
    .await;
    refused(&log, &signal("siem-1", json!({"code_hash": "c0".repeat(32)}), "siem", 8, &siem_key), |e| {
        matches!(e, Error::Entry(EntryError::Shape(ShapeError::Subject)))
    })
    .await;
    // A drift signal is the log's: nobody submits one.
    refused(&log, &json!({"kind": "signal", "source": "ledger", "subject": AGENT, "type": "drift", "severity": "low"}), |e| {
        matches!(e, Error::Entry(EntryError::Shape(ShapeError::SignalSigner)))
    })
    .await;

    // Peer reports are the reporter's own signed entries.
    submit(&log, &signal(PEER, json!(AGENT), "peer_report", 1, &peer_key)).await.unwrap();
    assert_eq!(log.agent(&PEER.parse().unwrap()).unwrap().last_seq, 1);
    refused(&log, &signal(PEER, json!(AGENT), "peer_report", 1, &peer_key), |e| matches!(e, Error::SequenceReplayed { .. })).await;
    refused(&log, &signal(PEER, json!(AGENT), "peer_report", 2, &agent_key), |e| matches!(e, Error::BadSignature(_))).await;
    refused(&log, &signal(PEER, json!(PEER), "peer_report", 2, &peer_key), |e| {
        matches!(e, Error::Entry(EntryError::Shape(ShapeError::SignalSigner)))
    })
    .await;
    // A revoked agent may be reported on, and may not report.
    let revocation = Revocation {
        agent: AGENT.parse().unwrap(),
        reason: RevocationReason::Quarantine,
        score: 0,
        threshold: 30,
        causes: Vec::new(),
        policy_index: None,
        decision: None,
        note: None,
        tokens: Vec::new(),
    };
    log.revoke(&revocation).await.unwrap();
    submit(&log, &signal(PEER, json!(AGENT), "peer_report", 2, &peer_key)).await.unwrap();
    refused(&log, &signal(AGENT, json!(PEER), "peer_report", 1, &agent_key), |e| matches!(e, Error::AgentRevoked(_))).await;
    // A retired agent is no subject.
    log.retire(&AGENT.parse().unwrap(), "done").await.unwrap();
    refused(&log, &signal(PEER, json!(AGENT), "peer_report", 3, &peer_key), |e| matches!(e, Error::Source(SourceError::RetiredSubject(_))))
        .await;
    refused(&log, &signal("siem-1", json!(AGENT), "siem", 8, &siem_key), |e| matches!(e, Error::Source(SourceError::RetiredSubject(_))))
        .await;
    // Re-registered with a new key: the old key is refused, and the
    // sequence numbers carry over.
    let new_key = SigningKey::from_bytes(&[5; 32]);
    log.register_source(source("siem-1", &new_key, &[SignalType::ThreatIntel])).await.unwrap();
    let code = json!({"code_hash": "c0".repeat(32)});
    refused(&log, &signal("siem-1", code.clone(), "threat_intel", 8, &siem_key), |e| {
        matches!(e, Error::Source(SourceError::BadSignature { .. }))
    })
    .await;
    refused(&log, &signal("siem-1", code.clone(), "threat_intel", 7, &new_key), |e| {
        matches!(e, Error::Source(SourceError::Replayed { .. }))
    })
    .await;
    submit(&log, &signal("siem-1", code, "threat_intel", 8, &new_key)).await.unwrap();
    let names: Vec<String> = log.sources().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["siem-1"]);
    // A weak key is refused when the source is registered.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let weak =
        Source { name: "weak".into(), key: ed25519_dalek::VerifyingKey::from_bytes(&identity).unwrap(), types: vec![SignalType::Siem] };
    let size = log.head().size;
    assert!(matches!(log.register_source(weak).await, Err(Error::Source(SourceError::WeakKey { .. }))));
    assert_eq!(log.head().size, size);
}

/// However signals with one `seq` meet the sequencer (one group or
/// several, checked before the queue or only in the sequencer), exactly
/// one is admitted; a request holding two is refused whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_seq_is_admitted_once() {
    for preverify in [true, false] {
        let log = Arc::new(open(Arc::new(MemoryStore::new()), preverify));
        let key = SigningKey::from_bytes(&[4; 32]);
        log.register_source(source("ueba", &key, &[SignalType::Ueba, SignalType::ThreatIntel])).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..16u8 {
            let log = Arc::clone(&log);
            let v = signal("ueba", json!({"code_hash": format!("{i:02x}").repeat(32)}), "threat_intel", 1, &key);
            tasks.push(tokio::spawn(async move { submit(&log, &v).await }));
        }
        let mut admitted = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => admitted += 1,
                Err(e) => assert!(matches!(e, Error::Source(SourceError::Replayed { seq: 1, last: 1, .. })), "{e:?}"),
            }
        }
        assert_eq!((admitted, log.head().size), (1, 2), "preverify {preverify}");
        let two = [2, 2].map(|seq| {
            Submission::signal_from_value(&signal("ueba", json!({"code_hash": "ab".repeat(32)}), "threat_intel", seq, &key), 65535).unwrap()
        });
        assert!(matches!(log.submit(two.to_vec()).await, Err(Error::Source(SourceError::Replayed { seq: 2, last: 2, .. }))));
        assert_eq!(log.head().size, 2);
    }
}

fn forget_sources(store: &dyn LogStore) {
    let mut records: Vec<Record> = store
        .scan_prefix(Namespace::Views, &views::record_key("sources", &[]), &[], 100)
        .unwrap()
        .into_iter()
        .map(|(k, _)| Record::delete(Namespace::Views, k))
        .collect();
    assert!(!records.is_empty());
    records.push(Record::delete(Namespace::Views, "sources"));
    store.erase(&records).unwrap();
}

async fn kept_loaded_and_rebuilt(mut reopen: impl FnMut() -> Arc<dyn LogStore>) {
    let log = open(reopen(), true);
    let key = SigningKey::from_bytes(&[4; 32]);
    log.register(passport(AGENT, &SigningKey::from_bytes(&[2; 32]))).await.unwrap();
    for (i, name) in ["vuln-feed", "intel"].into_iter().enumerate() {
        log.register_source(source(name, &key, &[SignalType::Vulnerability, SignalType::ThreatIntel])).await.unwrap();
        for seq in 1..=3 + i as u64 {
            submit(&log, &signal(name, json!(AGENT), "vulnerability", seq * 2, &key)).await.unwrap();
        }
    }
    log.register_source(source("intel", &SigningKey::from_bytes(&[6; 32]), &[SignalType::ThreatIntel])).await.unwrap();
    let kept: Vec<(String, SourceState)> = log.sources();
    assert_eq!(kept.len(), 2);
    drop(log);

    let log = open(reopen(), true);
    assert_eq!(log.sources(), kept, "loaded from its records");
    drop(log);

    let store = reopen();
    forget_sources(&*store);
    let log = open(store, true);
    assert_eq!(log.sources(), kept, "rebuilt from the log");
    // The rebuilt view admits as the kept one did.
    refused(&log, &signal("intel", json!(AGENT), "threat_intel", 8, &SigningKey::from_bytes(&[6; 32])), |e| {
        matches!(e, Error::Source(SourceError::Replayed { seq: 8, last: 8, .. }))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sources_view_is_loaded_and_rebuilt_in_memory() {
    let store: Arc<dyn LogStore> = Arc::new(MemoryStore::new());
    kept_loaded_and_rebuilt(|| store.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sources_view_is_loaded_and_rebuilt_across_rocksdb_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    kept_loaded_and_rebuilt(|| Arc::new(RocksStore::open(&path).unwrap())).await;
}

#[test]
fn a_source_key_round_trips_through_its_record() {
    let state = SourceState {
        key: SigningKey::from_bytes(&[4; 32]).verifying_key(),
        types: vec![SignalType::Siem, SignalType::Ueba],
        registered_index: 3,
        key_index: 9,
        last_seq: 12,
    };
    let bytes = views::sources::to_bytes(&state);
    assert!(std::str::from_utf8(&bytes).unwrap().contains(&B64.encode(state.key.as_bytes())));
    assert_eq!(views::sources::from_bytes(&bytes).unwrap(), state);
}
