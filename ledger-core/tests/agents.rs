//! Passports, signed agent entries, rotation, retirement and attestation
//! on the log, every rejection checked to leave the log unchanged.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use ledger_core::store::{LogStore as _, MemoryStore, Namespace, Record, RocksStore};
use ledger_core::{EntryKind, Error, Log, LogConfig, NewEntry, Submission};
use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::EncodePublicKey as _;
use serde_json::{json, Map, Value};
use verifier::entry::passport::Passport;
use verifier::entry::signing::{hex, rotation, sign_entry};
use verifier::note::NoteSigner;
use verifier::tpm::{encode_quote as quote, expected_pcr_digest};
use verifier::AgentId;

const ORIGIN: &str = "agents.example/log";
const AGENT: &str = "spiffe://example.org/agent/billing";
const CODE: [u8; 32] = [0xc0; 32];

/// An agent id, parsed once where the test names it.
fn id(agent: &str) -> AgentId {
    agent.parse().unwrap()
}

fn log_on(store: Arc<dyn ledger_core::store::LogStore>) -> Log {
    let signer = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[1; 32])).unwrap();
    let config = LogConfig { origin: ORIGIN.into(), trust_domain: Some("example.org".into()), ..LogConfig::default() };
    Log::open(store, signer, config, None).unwrap()
}

fn passport(agent: &str, key: &SigningKey, ak: Option<Vec<u8>>) -> Passport {
    Passport {
        agent: agent.parse().unwrap(),
        public_key: key.verifying_key(),
        code_hash: CODE,
        model_hash: Some([0x33; 32]),
        owner: "payments team".into(),
        purpose: "pays invoices".into(),
        tpm_ak: ak,
    }
}

fn action(agent: &str, seq: u64, key: &SigningKey) -> Map<String, Value> {
    let mut m =
        json!({"kind": "action", "agent": agent, "action": "pay", "resource": "invoices/1", "seq": seq}).as_object().unwrap().clone();
    sign_entry(&mut m, ORIGIN, key);
    m
}

fn entry(m: &Map<String, Value>) -> NewEntry {
    Submission::from_value(&Value::Object(m.clone()), 65535).unwrap().ready().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_actions_rotation_retirement_and_every_refusal() {
    let log = log_on(Arc::new(MemoryStore::new()));
    let key = SigningKey::from_bytes(&[7; 32]);
    let other = SigningKey::from_bytes(&[8; 32]);
    let at = log.register(passport(AGENT, &key, None)).await.unwrap();
    assert_eq!(at.index, 0);
    assert!(matches!(log.register(passport(AGENT, &key, None)).await, Err(Error::AgentExists(_))));
    assert!(matches!(log.register(passport("spiffe://elsewhere.org/agent/x", &key, None)).await, Err(Error::WrongTrustDomain { .. })));

    log.append(vec![entry(&action(AGENT, 1, &key))]).await.unwrap();
    let size = log.head().size;
    let mut forged = action(AGENT, 2, &key);
    forged.insert("resource".into(), Value::from("invoices/2"));
    let unsigned = NewEntry::action(&id(AGENT), "pay", "x", None, 65535).unwrap();
    type Case = (&'static str, NewEntry, fn(&Error) -> bool);
    let cases: Vec<Case> = vec![
        ("forged", entry(&forged), |e| matches!(e, Error::BadSignature(_))),
        ("wrong key", entry(&action(AGENT, 2, &other)), |e| matches!(e, Error::BadSignature(_))),
        ("replayed", entry(&action(AGENT, 1, &key)), |e| matches!(e, Error::SequenceReplayed { seq: 1, last: 1, .. })),
        ("unknown agent", entry(&action("spiffe://example.org/agent/ghost", 1, &key)), |e| matches!(e, Error::UnknownAgent(_))),
        ("unsigned", unsigned, |e| matches!(e, Error::Unsigned(EntryKind::Action))),
    ];
    for (name, e, check) in cases {
        let err = log.append(vec![e]).await.unwrap_err();
        assert!(check(&err), "{name}: {err:?}");
        assert_eq!(log.head().size, size, "{name} changed the log");
    }

    // Rotation: the old key stops working, the new one works.
    let rotated = SigningKey::from_bytes(&[9; 32]);
    log.append(vec![entry(&rotation(ORIGIN, AGENT, 2, &key, &rotated))]).await.unwrap();
    assert!(matches!(log.append(vec![entry(&action(AGENT, 3, &key))]).await, Err(Error::BadSignature(_))), "rotated-away key");
    log.append(vec![entry(&action(AGENT, 3, &rotated))]).await.unwrap();
    // A rotation must be signed by the new key as well.
    let mut half = rotation(ORIGIN, AGENT, 4, &rotated, &other);
    half.insert("new_signature".into(), rotation(ORIGIN, AGENT, 4, &rotated, &key)["new_signature"].clone());
    assert!(matches!(log.append(vec![entry(&half)]).await, Err(Error::BadSignature(_))));
    let state = log.agent(&id(AGENT)).unwrap();
    assert_eq!((state.last_seq, state.key, state.key_index), (3, rotated.verifying_key(), 2));

    log.retire(&id(AGENT), "decommissioned").await.unwrap();
    assert!(matches!(log.append(vec![entry(&action(AGENT, 5, &rotated))]).await, Err(Error::AgentRetired(_))));
    assert!(matches!(log.retire(&id(AGENT), "again").await, Err(Error::AgentRetired(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgery_in_a_group_is_refused_alone() {
    let log = Arc::new(log_on(Arc::new(MemoryStore::new())));
    let keys: Vec<SigningKey> = (0..8u8).map(|i| SigningKey::from_bytes(&[i + 10; 32])).collect();
    for (i, k) in keys.iter().enumerate() {
        log.register(passport(&format!("spiffe://example.org/agent/a{i}"), k, None)).await.unwrap();
    }
    // Concurrent appends land in shared groups; one in eight is forged.
    let mut tasks = Vec::new();
    for round in 1..=20u64 {
        for (i, k) in keys.iter().enumerate() {
            let log = Arc::clone(&log);
            let signer = if i == 3 { SigningKey::from_bytes(&[99; 32]) } else { k.clone() };
            let m = action(&format!("spiffe://example.org/agent/a{i}"), round, &signer);
            tasks.push(tokio::spawn(async move { (i, log.append(vec![entry(&m)]).await) }));
        }
    }
    let mut ok = 0;
    for t in tasks {
        let (i, result) = t.await.unwrap();
        match result {
            Ok(_) => {
                assert_ne!(i, 3);
                ok += 1;
            }
            Err(Error::BadSignature(_)) => assert_eq!(i, 3),
            // Concurrent submissions of one agent may reach the sequencer out
            // of order; a late lower sequence number is refused.
            Err(Error::SequenceReplayed { .. }) => assert_ne!(i, 3),
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(log.head().size, 8 + ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::from_bytes(&[7; 32]);
    {
        let log = log_on(Arc::new(RocksStore::open(dir.path()).unwrap()));
        log.register(passport(AGENT, &key, None)).await.unwrap();
        log.append(vec![entry(&action(AGENT, 5, &key))]).await.unwrap();
    }
    let log = log_on(Arc::new(RocksStore::open(dir.path()).unwrap()));
    assert_eq!(log.agent(&id(AGENT)).unwrap().last_seq, 5);
    assert!(matches!(log.append(vec![entry(&action(AGENT, 5, &key))]).await, Err(Error::SequenceReplayed { .. })));
    log.append(vec![entry(&action(AGENT, 6, &key))]).await.unwrap();
}

/// The registry is the first view: with its records (and applied index)
/// deleted, it is rebuilt from the log at open, equal to the one kept entry
/// by entry; a store written before views had applied indices (records,
/// no index) opens with its records as they are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_rebuilt_from_the_log_equals_the_one_kept_up_to_date() {
    let dir = tempfile::tempdir().unwrap();
    let (key, rotated, other) = (SigningKey::from_bytes(&[7; 32]), SigningKey::from_bytes(&[9; 32]), SigningKey::from_bytes(&[8; 32]));
    let agents = [AGENT, "spiffe://example.org/agent/b", "spiffe://example.org/agent/c"];
    let store = Arc::new(RocksStore::open(dir.path()).unwrap());
    let (kept, size) = {
        let log = log_on(store.clone());
        log.register(passport(agents[0], &key, None)).await.unwrap();
        log.register(passport(agents[1], &other, None)).await.unwrap();
        log.append(vec![entry(&action(agents[0], 1, &key)), entry(&action(agents[0], 2, &key))]).await.unwrap();
        log.register(passport(agents[2], &other, None)).await.unwrap();
        log.append(vec![entry(&rotation(ORIGIN, agents[0], 3, &key, &rotated))]).await.unwrap();
        log.append(vec![entry(&action(agents[0], 4, &rotated)), entry(&action(agents[1], 1, &other))]).await.unwrap();
        log.retire(&id(agents[2]), "done").await.unwrap();
        (agents.map(|a| log.agent(&id(a)).unwrap()), log.head().size)
    };
    assert_eq!(ledger_core::views::applied(&*store, "agents").unwrap(), Some(size));

    // Written before this change: records but no applied index.
    store.erase(&[Record::delete(Namespace::Views, "agents")]).unwrap();
    drop(log_on(store.clone()));
    assert_eq!(ledger_core::views::applied(&*store, "agents").unwrap(), Some(size), "taken as applied up to the head");

    let mut gone: Vec<Record> = store
        .scan_prefix(Namespace::Agents, &[], &[], 100)
        .unwrap()
        .into_iter()
        .map(|(k, _)| Record::delete(Namespace::Agents, k))
        .collect();
    assert_eq!(gone.len(), 3);
    gone.push(Record::delete(Namespace::Views, "agents"));
    store.erase(&gone).unwrap();
    let log = log_on(store.clone());
    assert_eq!(agents.map(|a| log.agent(&id(a)).unwrap()), kept, "rebuilt from the log");
    assert_eq!(store.scan_prefix(Namespace::Agents, &[], &[], 100).unwrap().len(), 3, "and stored again");
    assert!(matches!(log.append(vec![entry(&action(agents[0], 4, &rotated))]).await, Err(Error::SequenceReplayed { .. })));
    assert!(matches!(log.append(vec![entry(&action(agents[0], 5, &key))]).await, Err(Error::BadSignature(_))));
    assert!(matches!(log.append(vec![entry(&action(agents[2], 1, &other))]).await, Err(Error::AgentRetired(_))));
    log.append(vec![entry(&action(agents[0], 5, &rotated))]).await.unwrap();
}

fn attestation(agent: &str, seq: u64, nonce: &[u8], code: &[u8; 32], evidence: Value, key: &SigningKey) -> Value {
    let mut m = json!({
        "kind": "attestation", "agent": agent, "nonce": B64.encode(nonce), "code_hash": hex(code), "model_hash": hex(&[0x33; 32]),
        "runtime": {"os": "linux", "version": "6.1", "image_digest": "sha256:abc"},
        "behaviour": {"digest": hex(&[1; 32]), "calls": 120, "distinct": 7},
        "evidence": evidence, "seq": seq,
    })
    .as_object()
    .unwrap()
    .clone();
    sign_entry(&mut m, ORIGIN, key);
    Value::Object(m)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attestations_software_and_tpm() {
    let log = log_on(Arc::new(MemoryStore::new()));
    let key = SigningKey::from_bytes(&[7; 32]);
    let ak = p256::ecdsa::SigningKey::from_slice(&[5; 32]).unwrap();
    let spki = ak.verifying_key().to_public_key_der().unwrap().as_bytes().to_vec();
    log.register(passport(AGENT, &key, Some(spki))).await.unwrap();
    let mut seq = 0;
    let mut next = || {
        seq += 1;
        seq
    };
    // What an honest client quotes: the nonce, the key in force and the
    // claims (agent and seq included; evidence and signature excluded).
    let bound = |nonce: &[u8], seq: u64, code: &[u8; 32], key_in_force: &SigningKey| -> Vec<u8> {
        let claims = attestation(AGENT, seq, nonce, code, Value::Null, &key);
        let nonce: &[u8; 32] = nonce.try_into().unwrap();
        verifier::tpm::qualifying_data(nonce, key_in_force.verifying_key().as_bytes(), claims.as_object().unwrap()).to_vec()
    };
    // A quote of `pcr` measured with `measured`, carrying `extra`, signed by the AK.
    let quoted = |extra: &[u8], pcr: u8, measured: &[u8; 32]| {
        let q = quote(extra, pcr, &expected_pcr_digest(measured));
        let s: p256::ecdsa::Signature = ak.sign(&q);
        json!({"type": "tpm", "quote": B64.encode(&q), "signature": B64.encode(s.to_bytes())})
    };

    // The downgrade: software evidence from an agent whose passport has a
    // TPM key is recorded with a failing verdict.
    let nonce = log.issue_nonce(&id(AGENT)).unwrap();
    let before = log.head().size;
    let err = log.attest(&attestation(AGENT, next(), &nonce, &CODE, json!({"type": "software"}), &key)).await.unwrap_err();
    let Error::AttestationFailed { index, reasons } = err else { panic!("{err:?}") };
    assert!(reasons.len() == 1 && reasons[0].starts_with("downgrade:"), "{reasons:?}");
    assert_eq!(index, before);
    let leaf: Value = serde_json::from_slice(&log.entry(index).unwrap()).unwrap();
    assert_eq!(leaf["verdict"], json!({"evidence": "software", "ok": false, "reasons": reasons}));

    // Refused before anything is recorded: reused nonce, unknown nonce, forged signature.
    let size = log.head().size;
    let reused = log.attest(&attestation(AGENT, next(), &nonce, &CODE, json!({"type": "software"}), &key)).await.unwrap_err();
    assert!(matches!(reused, Error::Nonce(ledger_core::nonces::NonceError::Used)), "{reused:?}");
    let unknown = log.attest(&attestation(AGENT, next(), &[4; 32], &CODE, json!({"type": "software"}), &key)).await.unwrap_err();
    assert!(matches!(unknown, Error::Nonce(ledger_core::nonces::NonceError::Unknown)));
    let fresh = log.issue_nonce(&id(AGENT)).unwrap();
    let forged =
        log.attest(&attestation(AGENT, next(), &fresh, &CODE, json!({"type": "software"}), &SigningKey::from_bytes(&[3; 32]))).await;
    assert!(matches!(forged, Err(Error::BadSignature(_))));
    assert_eq!(log.head().size, size);
    // The forgery did not spend the nonce: a bound TPM quote passes with it.
    let s = next();
    let ev = quoted(&bound(&fresh, s, &CODE, &key), 16, &CODE);
    let (a, verdict) = log.attest(&attestation(AGENT, s, &fresh, &CODE, ev, &key)).await.unwrap();
    assert_eq!(verdict, json!({"evidence": "tpm", "ok": true, "reasons": []}));
    let leaf: Value = serde_json::from_slice(&log.entry(a.index).unwrap()).unwrap();
    assert_eq!(leaf["verdict"], verdict);

    // Software evidence passes for an agent registered without a TPM key.
    let soft = "spiffe://example.org/agent/soft";
    let soft_key = SigningKey::from_bytes(&[8; 32]);
    log.register(passport(soft, &soft_key, None)).await.unwrap();
    let n = log.issue_nonce(&id(soft)).unwrap();
    let (_, verdict) = log.attest(&attestation(soft, 1, &n, &CODE, json!({"type": "software"}), &soft_key)).await.unwrap();
    assert_eq!(verdict, json!({"evidence": "software", "ok": true, "reasons": []}));

    // Each bad quote is recorded as failed. `make(nonce, seq)` gives the
    // evidence for the attestation submitted with that nonce and seq.
    type Make<'a> = Box<dyn Fn(&[u8], u64) -> Value + 'a>;
    let other_key = SigningKey::from_bytes(&[9; 32]);
    let bad: Vec<(&str, Make, [u8; 32], &str)> = vec![
        ("quote over the bare nonce (old style)", Box::new(|n: &[u8], _| quoted(n, 16, &CODE)), CODE, "qualifying data"),
        (
            "quote bound to another agent key",
            Box::new(|n: &[u8], s: u64| quoted(&bound(n, s, &CODE, &other_key), 16, &CODE)),
            CODE,
            "qualifying data",
        ),
        (
            "quote bound to another seq",
            Box::new(|n: &[u8], s: u64| quoted(&bound(n, s + 1, &CODE, &key), 16, &CODE)),
            CODE,
            "qualifying data",
        ),
        (
            "quote bound to another code_hash claim",
            Box::new(|n: &[u8], s: u64| quoted(&bound(n, s, &[0xbb; 32], &key), 16, &CODE)),
            CODE,
            "qualifying data",
        ),
        ("wrong PCR", Box::new(|n: &[u8], s: u64| quoted(&bound(n, s, &CODE, &key), 15, &CODE)), CODE, "PCR 16"),
        ("wrong PCR digest", Box::new(|n: &[u8], s: u64| quoted(&bound(n, s, &CODE, &key), 16, &[0xbb; 32])), CODE, "PCR digest"),
        (
            "tampered quote",
            Box::new(|n: &[u8], s: u64| {
                let good = quote(&bound(n, s, &CODE, &key), 16, &expected_pcr_digest(&CODE));
                let mut t = good.clone();
                t[10] ^= 1;
                let sig: p256::ecdsa::Signature = ak.sign(&good);
                json!({"type": "tpm", "quote": B64.encode(&t), "signature": B64.encode(sig.to_bytes())})
            }),
            CODE,
            "signature",
        ),
        (
            "wrong code hash",
            Box::new(|n: &[u8], s: u64| quoted(&bound(n, s, &[0xbb; 32], &key), 16, &CODE)),
            [0xbb; 32],
            "code_hash differs",
        ),
    ];
    for (name, make, code, reason) in bad {
        let n = log.issue_nonce(&id(AGENT)).unwrap();
        let s = next();
        let before = log.head().size;
        let err = log.attest(&attestation(AGENT, s, &n, &code, make(&n, s), &key)).await.unwrap_err();
        let Error::AttestationFailed { index, reasons } = err else { panic!("{name}: {err:?}") };
        assert!(reasons.iter().any(|r| r.contains(reason)), "{name}: {reasons:?}");
        assert_eq!((index, log.head().size), (before, before + 1), "{name}: the failed attestation is recorded");
        let leaf: Value = serde_json::from_slice(&log.entry(index).unwrap()).unwrap();
        assert_eq!((leaf["verdict"]["evidence"].as_str(), leaf["verdict"]["ok"].as_bool()), (Some("tpm"), Some(false)), "{name}");
    }

    // An auditor replaying the agent's chain offline recomputes every
    // verdict (passing and failing) from the leaves alone.
    let mut registry = verifier::fold::registry::Registry::new(ORIGIN);
    for index in 0..log.head().size {
        let (leaf, _) = verifier::entry::Leaf::decode(&log.entry(index).unwrap()).unwrap();
        if leaf.text("agent") == AGENT {
            registry.apply_leaf(index, &leaf).unwrap();
        }
    }

    // An expired nonce.
    let short = {
        let signer = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[1; 32])).unwrap();
        let config = LogConfig { origin: ORIGIN.into(), nonce_ttl: std::time::Duration::from_millis(1), ..LogConfig::default() };
        Log::open(Arc::new(MemoryStore::new()), signer, config, None).unwrap()
    };
    short.register(passport(AGENT, &key, None)).await.unwrap();
    let n = short.issue_nonce(&id(AGENT)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    let stale = short.attest(&attestation(AGENT, 1, &n, &CODE, json!({"type": "software"}), &key)).await.unwrap_err();
    assert!(matches!(stale, Error::Nonce(ledger_core::nonces::NonceError::Expired)), "{stale:?}");
    assert_eq!(short.head().size, 1);
}

/// Admission and the offline fold are one state machine: every entry of a
/// mixed sequence (registrations, signed actions, a rotation, forgeries,
/// replays, unknown and retired agents) that the log admits is accepted by
/// `verifier::fold::registry::Registry::apply_leaf` over the stored leaf,
/// every entry the log refuses is refused offline with the same error, and
/// both end with the same agent states.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_and_the_offline_fold_agree() {
    use verifier::entry::{Entry, Form, Leaf, Retirement};
    use verifier::fold::registry::Registry;

    enum Step {
        Register(Box<Passport>),
        Retire(&'static str),
        Submit(Map<String, Value>),
    }
    let log = log_on(Arc::new(MemoryStore::new()));
    let (k1, k2, kb, forger) = (
        SigningKey::from_bytes(&[7; 32]),
        SigningKey::from_bytes(&[9; 32]),
        SigningKey::from_bytes(&[8; 32]),
        SigningKey::from_bytes(&[6; 32]),
    );
    let b = "spiffe://example.org/agent/b";
    let ghost = "spiffe://example.org/agent/ghost";
    let steps = [
        ("register", Step::Register(Box::new(passport(AGENT, &k1, None))), true),
        ("register again", Step::Register(Box::new(passport(AGENT, &k2, None))), false),
        ("action 1", Step::Submit(action(AGENT, 1, &k1)), true),
        ("action 1 replayed", Step::Submit(action(AGENT, 1, &k1)), false),
        ("forged action 2", Step::Submit(action(AGENT, 2, &forger)), false),
        ("unknown agent", Step::Submit(action(ghost, 1, &k1)), false),
        ("rotation 2", Step::Submit(rotation(ORIGIN, AGENT, 2, &k1, &k2)), true),
        ("action 3, rotated-away key", Step::Submit(action(AGENT, 3, &k1)), false),
        ("action 3", Step::Submit(action(AGENT, 3, &k2)), true),
        ("register b", Step::Register(Box::new(passport(b, &kb, None))), true),
        ("b action 4", Step::Submit(action(b, 4, &kb)), true),
        ("b action 2, out of order", Step::Submit(action(b, 2, &kb)), false),
        ("retire", Step::Retire(AGENT), true),
        ("action 4 after retirement", Step::Submit(action(AGENT, 4, &k2)), false),
        ("retire again", Step::Retire(AGENT), false),
        ("retire the unknown", Step::Retire(ghost), false),
    ];
    let mut offline = Registry::new(ORIGIN);
    for (name, step, admitted) in steps {
        let size = log.head().size;
        let (result, object) = match step {
            Step::Register(p) => (log.register((*p).clone()).await.map(drop), p.to_object()),
            Step::Retire(agent) => {
                let retirement = Retirement { agent: id(agent), reason: "done".into() };
                (log.retire(&retirement.agent, &retirement.reason).await.map(drop), retirement.to_object())
            }
            Step::Submit(m) => {
                let submission = Submission::from_value(&Value::Object(m.clone()), 65535).unwrap();
                (log.submit(vec![submission]).await.map(drop), m)
            }
        };
        match result {
            Ok(()) => {
                assert!(admitted, "{name}: admitted");
                assert_eq!(log.head().size, size + 1, "{name}");
                let (leaf, _) = Leaf::decode(&log.entry(size).unwrap()).unwrap();
                offline.apply_leaf(size, &leaf).unwrap_or_else(|e| panic!("{name}: the fold refuses an admitted entry: {e}"));
            }
            Err(refused) => {
                assert!(!admitted, "{name}: refused with {refused}");
                assert_eq!(log.head().size, size, "{name}");
                let entry = Entry::from_object(&object, Form::Audit).unwrap();
                let offline_refusal = offline.apply(size, &entry).expect_err(name);
                assert_eq!(Error::from(offline_refusal).to_string(), refused.to_string(), "{name}");
            }
        }
    }
    for agent in [AGENT, b] {
        assert_eq!(offline.get(&id(agent)), log.agent(&id(agent)).as_ref(), "{agent}");
    }
    assert!(offline.get(&id(ghost)).is_none() && log.agent(&id(ghost)).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_below_the_threshold_is_isolated_before_its_revocation_and_reinstated_only_on_a_later_attestation() {
    let log = log_on(Arc::new(MemoryStore::new()));
    // Freshness halves every second from registration: 60 falls below 50
    // within half a second. Nothing runs the revocation trigger here, so
    // the agent stays below the threshold unrevoked.
    let policy = verifier::fold::policy::Policy {
        attestation_grace_s: 0,
        attestation_half_life_s: 1,
        revocation_threshold: 50,
        ..Default::default()
    };
    log.set_policy(&policy).await.unwrap();
    let key = SigningKey::from_bytes(&[7; 32]);
    log.register(passport(AGENT, &key, None)).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let size = log.head().size;
    let err = log.append(vec![entry(&action(AGENT, 1, &key))]).await.unwrap_err();
    assert!(matches!(err, Error::BelowThreshold { threshold: 50, score, .. } if score < 50), "{err:?}");
    let err = log.submit(vec![Submission::from_value(&Value::Object(action(AGENT, 1, &key)), 65535).unwrap()]).await.unwrap_err();
    assert!(matches!(err, Error::BelowThreshold { .. }), "{err:?}");
    assert_eq!(log.head().size, size, "a refusal changes nothing");
    assert_eq!(log.agent(&id(AGENT)).unwrap().last_seq, 0);

    // Revoked (here by quarantine), it is reinstated only on an
    // attestation after the revocation: the registry fold checks the order
    // when the entry is sequenced.
    let revocation = verifier::entry::Revocation {
        agent: id(AGENT),
        reason: verifier::entry::RevocationReason::Quarantine,
        score: 0,
        threshold: 50,
        causes: vec![],
        policy_index: None,
        decision: None,
        note: None,
        tokens: Vec::new(),
    };
    let revoked_at = log.revoke(&revocation).await.unwrap().index;
    let size = log.head().size;
    let err = log.reinstate(&id(AGENT), None).await.unwrap_err();
    assert!(matches!(err, Error::AttestationRequired { revoked_at: r, .. } if r == revoked_at), "{err:?}");
    assert!(matches!(log.append(vec![entry(&action(AGENT, 1, &key))]).await, Err(Error::AgentRevoked(_))));
    assert_eq!(log.head().size, size);
    // A revoked agent still attests; then it is reinstated on that
    // attestation, and acts again (freshness restarts at reinstatement).
    let attested = ledger_core::conformance::attest_software(&log, &id(AGENT), &key).await.unwrap().index;
    let reinstated = log.reinstate(&id(AGENT), Some("checked".into())).await.unwrap().index;
    let leaf: Value = serde_json::from_slice(&log.entry(reinstated).unwrap()).unwrap();
    assert_eq!((leaf["kind"].as_str(), leaf["attestation_index"].as_u64()), (Some("reinstatement"), Some(attested)));
    assert!(matches!(log.reinstate(&id(AGENT), None).await, Err(Error::NotRevoked(_))));
    log.append(vec![entry(&action(AGENT, 2, &key))]).await.unwrap();
}
