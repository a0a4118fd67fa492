//! Hidden fields end to end on the RocksDB store: commit and prove on
//! append, disclose (reveal and prove on demand), verify the bundle as an
//! offline auditor would, survive restarts, and crypto-shred.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use ledger_core::sealing::OpeningsKey;
use ledger_core::store::{Openings as _, OpeningsRecord, RocksStore};
use ledger_core::{DisclosureRequest, Error, Log, LogConfig, ShredTarget, Submission};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use verifier::disclosure::{self, DisclosureBundle, DisclosureError};
use verifier::note::{NoteSigner, NoteVerifier};
use zk::predicate::Predicate;

const ORIGIN: &str = "hidden.example/log";
const BILLING: &str = "spiffe://example.org/agent/billing";
const OTHER: &str = "spiffe://example.org/agent/other";

fn submission(agent: &str, amount: u64, customer: &str) -> Submission {
    let body = format!(
        r#"{{"kind":"action","agent":"{agent}","action":"pay","resource":"invoices/7",
            "hidden":{{"amount":{{"u64":{amount},"prove":[{{"le":10000}}]}},"customer":{{"str":"{customer}"}}}}}}"#
    );
    committed(&body)
}

/// Commits the plain hidden values of `body` as an agent does before it
/// signs, and returns the submission with its openings.
fn committed(body: &str) -> Submission {
    let mut value: serde_json::Value = serde_json::from_str(body).unwrap();
    let obj = value.as_object_mut().unwrap();
    let openings = verifier::hidden::commit_entry(obj, ORIGIN, &mut rand_core::OsRng, zk::params()).unwrap();
    obj.insert("openings".into(), openings);
    Submission::from_value(&value, 65535).unwrap()
}

fn signer() -> NoteSigner {
    NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[6; 32])).unwrap()
}

fn open(dir: &Path) -> (Log, Arc<RocksStore>) {
    let store = Arc::new(RocksStore::open(dir).unwrap());
    let config = LogConfig {
        origin: ORIGIN.into(),
        openings_key: Some(OpeningsKey::from_bytes(&[8; 32])),
        agent_auth: false,
        ..LogConfig::default()
    };
    (Log::open(store.clone(), signer(), config, None).unwrap(), store)
}

fn verify(bundle: &DisclosureBundle) -> Result<disclosure::VerifiedDisclosure, DisclosureError> {
    // Round-trip through the JSON document an auditor receives.
    let text = serde_json::to_vec(&bundle.to_json()).unwrap();
    let parsed = DisclosureBundle::parse(&text)?;
    disclosure::verify(&parsed, &NoteVerifier::new(signer().verifier_key()), zk::params())
}

fn request(reveal: &[&str], prove: &[(&str, Predicate)]) -> DisclosureRequest {
    DisclosureRequest {
        reveal: reveal.iter().map(|s| s.to_string()).collect(),
        prove: prove.iter().map(|(f, p)| (f.to_string(), *p)).collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_disclose_restart_and_shred() {
    let dir = tempfile::tempdir().unwrap();
    let (log, store) = open(dir.path());
    let done = log.submit(vec![submission(BILLING, 1250, "ACME"), submission(OTHER, 99, "Globex")]).await.unwrap();
    assert_eq!((done[0].index, done[1].index), (0, 1));

    // The leaf holds commitments and the append-time proof, not the values.
    let leaf = String::from_utf8(log.entry(0).unwrap()).unwrap();
    assert!(!leaf.contains("1250") && !leaf.contains("ACME"), "{leaf}");
    assert!(leaf.contains(r#""predicates":{"claims":[{"field":"amount","le":10000}]"#), "{leaf}");
    ledger_core::Leaf::decode(leaf.as_bytes()).unwrap();

    let bundle =
        log.disclose(0, &request(&["customer"], &[("amount", Predicate::ge(1000)), ("amount", Predicate::le(5000))])).await.unwrap();
    let v = verify(&bundle).unwrap();
    assert_eq!(v.revealed, vec![("customer".to_string(), "ACME".to_string())]);
    assert_eq!(v.proven, vec!["amount ≥ 1000", "amount ≤ 5000"]);
    assert_eq!(v.proven_at_append, vec!["amount ≤ 10000"]);
    assert!(v.undisclosed.is_empty());
    let text = serde_json::to_string(&bundle.to_json()).unwrap();
    assert!(!text.contains("1250"), "the bundle leaks the hidden amount");

    // Restart: openings survive and disclose the same values.
    drop(log);
    drop(store);
    let (log, store) = open(dir.path());
    let again = log.disclose(0, &request(&["amount"], &[])).await.unwrap();
    assert_eq!(verify(&again).unwrap().revealed, vec![("amount".to_string(), "1250".to_string())]);

    // Shred entry 0: the wrapped data key and the sealed bytes leave every
    // file of the store (they were there before: the search works).
    let Some(OpeningsRecord::Sealed { sealed, wrapped_key: Some(wrapped_key) }) = store.openings(0).unwrap() else {
        panic!("not sealed with a data key")
    };
    assert!(files_contain(dir.path(), &sealed[1..33]) && files_contain(dir.path(), &wrapped_key[1..33]));
    assert_eq!(log.shred(&ShredTarget::Entry(0)).unwrap(), vec![0]);
    assert_eq!(log.shred(&ShredTarget::Entry(0)).unwrap(), Vec::<u64>::new(), "shredding is idempotent");
    assert!(!files_contain(dir.path(), &sealed[1..33]), "sealed openings still on disk after shredding");
    assert!(!files_contain(dir.path(), &wrapped_key[1..33]), "the wrapped data key is still on disk after shredding");
    assert!(matches!(log.disclose(0, &request(&["customer"], &[])).await, Err(Error::OpeningsShredded { index: 0, .. })));
    assert!(matches!(log.disclose(0, &request(&[], &[("amount", Predicate::le(1))])).await, Err(Error::OpeningsShredded { .. })));
    // What needs no openings still works, and old bundles still verify.
    verify(&log.disclose(0, &request(&[], &[])).await.unwrap()).unwrap();
    verify(&bundle).unwrap();
    verify(&log.disclose(1, &request(&["customer"], &[])).await.unwrap()).unwrap();

    // Shredded stays shredded across a restart; shredding by agent.
    drop(log);
    drop(store);
    let (log, _store) = open(dir.path());
    assert!(matches!(log.disclose(0, &request(&["amount"], &[])).await, Err(Error::OpeningsShredded { .. })));
    assert_eq!(log.shred(&ShredTarget::Agent(OTHER.parse().unwrap())).unwrap(), vec![1]);
    assert!(matches!(log.disclose(1, &request(&["amount"], &[])).await, Err(Error::OpeningsShredded { .. })));
    assert_eq!(log.head().size, 2, "shredding never changes the log");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn false_predicates_and_bad_requests_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _store) = open(dir.path());
    // A false predicate cannot be proven: committing refuses it.
    let mut entry = serde_json::json!({"kind": "action", "agent": BILLING, "action": "pay", "resource": "r",
        "hidden": {"amount": {"u64": 10_001, "prove": [{"le": 10000}]}}});
    let err = verifier::hidden::commit_entry(entry.as_object_mut().unwrap(), ORIGIN, &mut rand_core::OsRng, zk::params()).unwrap_err();
    assert!(matches!(err, verifier::hidden::CommitError::Predicate(zk::ZkError::PredicateFalse { .. })), "{err:?}");
    // A proof of 20000 ≤ 30000 relabelled as "≤ 10000" does not verify; a
    // batch holding it appends nothing.
    let mut forged: serde_json::Value = serde_json::from_str(&format!(
        r#"{{"kind":"action","agent":"{BILLING}","action":"pay","resource":"r","hidden":{{"amount":{{"u64":20000,"prove":[{{"le":30000}}]}}}}}}"#
    ))
    .unwrap();
    let obj = forged.as_object_mut().unwrap();
    let openings = verifier::hidden::commit_entry(obj, ORIGIN, &mut rand_core::OsRng, zk::params()).unwrap();
    obj.insert("openings".into(), openings);
    forged["predicates"]["claims"][0]["le"] = 10_000.into();
    let forged = Submission::from_value(&forged, 65535).unwrap();
    let err = log.submit(vec![submission(BILLING, 5, "A"), forged]).await.unwrap_err();
    assert!(matches!(err, Error::Entry(ledger_core::entry::EntryError::Hidden(_))), "{err:?}");
    assert_eq!(log.head().size, 0);

    log.submit(vec![submission(BILLING, 1250, "ACME")]).await.unwrap();
    let plain =
        Submission::from_json(format!(r#"{{"kind":"action","agent":"{BILLING}","action":"a","resource":"r"}}"#).as_bytes(), 65535).unwrap();
    log.submit(vec![plain]).await.unwrap();
    type Case = (DisclosureRequest, fn(&Error) -> bool);
    let cases: Vec<Case> = vec![
        (request(&["nope"], &[]), |e| matches!(e, Error::Disclosure(DisclosureError::UnknownField(_)))),
        (request(&[], &[("customer", Predicate::le(3))]), |e| matches!(e, Error::Disclosure(DisclosureError::NotAnInteger(_)))),
        (request(&[], &[("amount", Predicate::le(1000))]), |e| {
            matches!(e, Error::Entry(ledger_core::entry::EntryError::Predicate(zk::ZkError::PredicateFalse { .. })))
        }),
    ];
    for (req, check) in cases {
        let err = log.disclose(0, &req).await.unwrap_err();
        assert!(check(&err), "{req:?}: {err:?}");
    }
    assert!(matches!(log.disclose(1, &request(&[], &[])).await, Err(Error::NoHiddenFields { index: 1 })));
    assert!(matches!(log.disclose(2, &request(&[], &[])).await, Err(Error::IndexBeyondTree { .. })));
    assert!(matches!(log.shred(&ShredTarget::Entry(1)), Err(Error::NoOpenings { index: 1 })));
    assert_eq!(log.head().size, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_bundles_fail_with_precise_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _store) = open(dir.path());
    log.submit(vec![submission(BILLING, 1250, "ACME"), submission(OTHER, 7, "X")]).await.unwrap();
    let bundle = log.disclose(0, &request(&["customer", "amount"], &[("amount", Predicate::le(2000))])).await.unwrap();
    let good = bundle.to_json();
    verify(&bundle).unwrap();

    type Tamper = (&'static str, fn(&mut serde_json::Value), fn(&DisclosureError) -> bool);
    let cases: Vec<Tamper> = vec![
        (
            "revealed value",
            |b| b["revealed"]["customer"]["str"] = "ACNE".into(),
            |e| matches!(e, DisclosureError::OpeningMismatch(f) if f == "customer"),
        ),
        (
            "revealed amount",
            |b| b["revealed"]["amount"]["u64"] = 1251.into(),
            |e| matches!(e, DisclosureError::OpeningMismatch(f) if f == "amount"),
        ),
        (
            "salt",
            |b| b["revealed"]["customer"]["salt"] = "AQAAAAAAAAAAAAAAAAAAAA".into(),
            |e| matches!(e, DisclosureError::OpeningMismatch(_)),
        ),
        (
            "proof bytes",
            |b| flip_b64(&mut b["proofs"][0]["proof"], 40),
            |e| matches!(e, DisclosureError::ProofInvalid { .. } | DisclosureError::Malformed(_)),
        ),
        ("claimed bound", |b| b["proofs"][0]["claims"][0]["le"] = 1999.into(), |e| matches!(e, DisclosureError::ProofInvalid { .. })),
        ("claimed field", |b| b["proofs"][0]["claims"][0]["field"] = "customer".into(), |e| matches!(e, DisclosureError::NotAnInteger(_))),
        (
            "commitment in the entry",
            |b| tamper_leaf(b, |p| p.replace("\"hidden\":{\"amount\":{\"u64\":\"", "\"hidden\":{\"amount\":{\"u64\":\"A")),
            |e| matches!(e, DisclosureError::TlogProof(_) | DisclosureError::Leaf(_)),
        ),
        (
            "inclusion path",
            |b| tamper_text(b, flip_first_hash),
            |e| matches!(e, DisclosureError::TlogProof(verifier::tlog_proof::TlogProofError::Inclusion(_))),
        ),
        (
            "checkpoint",
            |b| tamper_text(b, |p| p.replacen("\n2\n", "\n3\n", 1)),
            |e| matches!(e, DisclosureError::TlogProof(verifier::tlog_proof::TlogProofError::Checkpoint(_))),
        ),
        ("index", |b| b["index"] = 1.into(), |e| matches!(e, DisclosureError::Malformed(_))),
        // Relabelled as a v1 bundle, its (bound) proof is checked unbound.
        ("format v1", |b| b["format"] = "agent-ledger-disclosure/v1".into(), |e| matches!(e, DisclosureError::ProofInvalid { .. })),
    ];
    for (name, tamper, expected) in cases {
        let mut doc = good.clone();
        tamper(&mut doc);
        let result = DisclosureBundle::parse(&serde_json::to_vec(&doc).unwrap())
            .and_then(|b| disclosure::verify(&b, &NoteVerifier::new(signer().verifier_key()), zk::params()));
        let err = result.expect_err(name);
        assert!(expected(&err), "{name}: {err:?}");
    }
}

fn flip_b64(v: &mut serde_json::Value, at: usize) {
    let mut s: Vec<u8> = v.as_str().unwrap().bytes().collect();
    s[at] = if s[at] == b'A' { b'B' } else { b'A' };
    *v = String::from_utf8(s).unwrap().into();
}

fn tamper_text(b: &mut serde_json::Value, f: fn(&str) -> String) {
    b["tlog_proof"] = f(b["tlog_proof"].as_str().unwrap()).into();
}

fn tamper_leaf(b: &mut serde_json::Value, f: fn(&str) -> String) {
    // The tlog-proof's extra line is the base64 leaf: decode, edit, re-encode.
    use base64::Engine as _;
    let text = b["tlog_proof"].as_str().unwrap().to_string();
    let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    let extra = lines.iter().position(|l| l.starts_with("extra ")).unwrap();
    let leaf = base64::engine::general_purpose::STANDARD.decode(&lines[extra][6..]).unwrap();
    let edited = f(std::str::from_utf8(&leaf).unwrap());
    assert_ne!(edited.as_bytes(), leaf.as_slice());
    lines[extra] = format!("extra {}", base64::engine::general_purpose::STANDARD.encode(edited));
    b["tlog_proof"] = lines.join("\n").into();
}

fn flip_first_hash(text: &str) -> String {
    // Proof hashes are the base64 lines after "index N".
    let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    let at = lines.iter().position(|l| l.starts_with("index ")).unwrap() + 1;
    let mut bytes: Vec<u8> = lines[at].bytes().collect();
    bytes[0] = if bytes[0] == b'A' { b'B' } else { b'A' };
    lines[at] = String::from_utf8(bytes).unwrap();
    lines.join("\n")
}

#[test]
fn committing_is_deterministic_given_the_rng() {
    let leaf = |seed: u8| {
        let mut entry = serde_json::json!({"kind": "action", "agent": BILLING, "action": "pay", "resource": "invoices/7", "seq": 3,
            "hidden": {"amount": {"u64": 1250, "prove": [{"le": 10000}]}, "customer": {"str": "ACME"}}});
        let obj = entry.as_object_mut().unwrap();
        verifier::hidden::commit_entry(obj, ORIGIN, &mut ChaCha20Rng::from_seed([seed; 32]), zk::params()).unwrap();
        entry
    };
    assert_eq!(leaf(1), leaf(1));
    assert_ne!(leaf(1), leaf(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_commitments_are_checked_then_disclosable() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _store) = open(dir.path());
    let committed = |amount: u64| {
        let mut e = serde_json::json!({"kind": "action", "agent": BILLING, "action": "pay", "resource": "invoices/9",
            "hidden": {"amount": {"u64": amount, "prove": [{"ge": 100}]}, "customer": {"str": "Initech"}}})
        .as_object()
        .unwrap()
        .clone();
        let openings = ledger_client::commit_hidden(&mut e, ORIGIN, &mut rand_core::OsRng).unwrap();
        (e, openings)
    };
    let (mut good, openings) = committed(500);
    good.insert("openings".into(), openings.clone());
    log.submit(vec![Submission::from_value(&serde_json::Value::Object(good.clone()), 65535).unwrap()]).await.unwrap();
    let leaf = String::from_utf8(log.entry(0).unwrap()).unwrap();
    assert!(!leaf.contains("openings") && !leaf.contains("Initech"), "{leaf}");
    let bundle = log.disclose(0, &request(&["customer"], &[("amount", Predicate::le(1000))])).await.unwrap();
    let v = verify(&bundle).unwrap();
    assert_eq!(v.revealed, vec![("customer".to_string(), "Initech".to_string())]);
    assert_eq!(v.proven_at_append, vec!["amount ≥ 100"]);

    // Openings that do not open the commitments, a missing opening, or a
    // proof for other commitments: refused, nothing appended.
    let (other, other_openings) = committed(600);
    let mut wrong_opening = good.clone();
    wrong_opening.insert("openings".into(), other_openings);
    let mut missing = good.clone();
    missing["openings"].as_object_mut().unwrap().remove("customer");
    let mut wrong_proof = good.clone();
    wrong_proof.insert("predicates".into(), other["predicates"].clone());
    for (name, bad) in [("wrong opening", wrong_opening), ("missing opening", missing), ("proof of other commitments", wrong_proof)] {
        let s = Submission::from_value(&serde_json::Value::Object(bad), 65535).unwrap();
        let err = log.submit(vec![s]).await.unwrap_err();
        assert!(matches!(err, Error::Entry(ledger_core::entry::EntryError::Hidden(_))), "{name}: {err:?}");
        assert_eq!(log.head().size, 1, "{name}");
    }
}

/// Records which range prover proved each commit.
#[derive(Default)]
struct Backends(std::sync::Mutex<Vec<&'static str>>);

impl ledger_core::CommitObserver for Backends {
    fn committed(&self, _: usize, _: usize, _: std::time::Duration, _: u64) {}
    fn proved(&self, _: std::time::Duration, backend: &'static str) {
        self.0.lock().unwrap().push(backend);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commits_are_proven_and_appended() {
    use std::collections::BTreeMap;
    use verifier::hidden::HiddenValue;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RocksStore::open(dir.path()).unwrap());
    let seen = Arc::new(Backends::default());
    let config = LogConfig {
        origin: ORIGIN.into(),
        openings_key: Some(OpeningsKey::from_bytes(&[8; 32])),
        agent_auth: false,
        prover_backends: ledger_core::ProverBackends::new(zk::prover::Backend::LockstepCpu, 2, false, true).unwrap(),
        ..LogConfig::default()
    };
    let log = Arc::new(Log::open(store, signer(), config, Some(seen.clone() as Arc<dyn ledger_core::CommitObserver>)).unwrap());
    // 24 agents at once, three proof shapes (16-bit pair, 64-bit single,
    // and one entry with no predicate at all).
    let tasks: Vec<_> = (0..24u64)
        .map(|i| {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let agent = verifier::agent_id::AgentId::parse(&format!("spiffe://example.org/agent/batch-{i}")).unwrap();
                let key = SigningKey::from_bytes(&[i as u8 + 40; 32]);
                log.register(verifier::entry::passport::Passport {
                    agent: agent.clone(),
                    public_key: key.verifying_key(),
                    code_hash: [0x22; 32],
                    model_hash: None,
                    owner: "billing".into(),
                    purpose: "pays invoices".into(),
                    tpm_ak: None,
                })
                .await
                .unwrap();
                let prove = match i % 3 {
                    0 => vec![Predicate::le(10_000)],
                    1 => vec![Predicate::ge(18)],
                    _ => vec![],
                };
                let hidden = BTreeMap::from([("amount".to_owned(), HiddenValue::U64 { value: 1000 + i, prove })]);
                let committed = log.commit_hidden(&agent, 1, hidden).await.unwrap();
                // The entry the agent would sign: the log checks the
                // openings and the proof on append.
                let mut entry = serde_json::json!({"kind": "action", "agent": agent.as_str(), "seq": 1, "action": "pay", "resource": "r",
                    "hidden": committed.hidden});
                if let Some(p) = committed.predicates {
                    entry["predicates"] = p;
                }
                let obj = entry.as_object_mut().unwrap();
                verifier::entry::signing::sign_entry(obj, ORIGIN, &key);
                obj.insert("openings".into(), committed.openings);
                log.submit(vec![Submission::from_value(&entry, 65535).unwrap()]).await.unwrap();
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let seen = seen.0.lock().unwrap();
    // The 16 commits with predicates were proven, each on the prover the
    // stage chose for its batch: alone on the single-proof prover, or in
    // lockstep with the others queued meanwhile (which of the two depends
    // on timing; the batcher's unit tests pin the choice).
    let proved: Vec<_> = seen.iter().filter(|b| **b != "verify").collect();
    assert_eq!(proved.len(), 16, "{seen:?}");
    assert!(proved.iter().all(|b| ["precomputed", "lockstep-cpu"].contains(b)), "{seen:?}");
}

#[test]
fn an_unavailable_gpu_backend_falls_back_or_refuses() {
    let relaxed = ledger_core::ProverBackends::new(zk::prover::Backend::Cuda, 32, false, true).unwrap();
    if let Some(why) = relaxed.fallback() {
        assert_eq!(relaxed.batch().name(), "lockstep-cpu", "{why}");
        assert!(matches!(ledger_core::ProverBackends::new(zk::prover::Backend::Cuda, 32, true, true), Err(Error::Config(_))));
    } else {
        // A machine with a working GPU (and a `cuda` build).
        assert_eq!(relaxed.batch().name(), "cuda");
    }
    let dalek = ledger_core::ProverBackends::new(zk::prover::Backend::Dalek, 32, true, true).unwrap();
    assert_eq!((dalek.single().name(), dalek.batch().name()), ("dalek", "dalek"));
    assert_eq!(ledger_core::ProverBackends::new(zk::prover::Backend::LockstepCpu, 0, true, true).unwrap().batch_min(), 2);
}
