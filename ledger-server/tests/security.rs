//! Attacks from the security review, each performed against the router as
//! the server runs it, and shown to fail: brute-forcing hidden values from
//! stored signatures, unauthenticated proof work, weak agent keys,
//! cross-log replay, proofs pasted into another entry, forgeries inside a
//! batch; and every entry kind read back in RFC 8785 form (checked with an
//! independent JCS implementation).
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use http_body_util::BodyExt as _;
use ledger_client::RequestSignature;
use ledger_core::store::MemoryStore;
use ledger_core::{CommitObserver, Log, LogConfig};
use ledger_server::auth::AdminToken;
use ledger_server::metrics::Metrics;
use ledger_server::{app, AppState, Limits};
use serde_json::{json, Map, Value};
use tower::ServiceExt as _;
use verifier::entry::signing::{hex, rotation, sign_entry, signing_message, verify_signature};
use verifier::AgentId;

const ORIGIN: &str = "security.example/log";
const TOKEN: &str = "security-admin-token-0123456789";
const CODE: [u8; 32] = [0xc0; 32];

/// Counts the proof work the log does (commitments checked or proven).
#[derive(Default)]
struct ProofWork(AtomicUsize);

impl CommitObserver for ProofWork {
    fn committed(&self, _: usize, _: usize, _: Duration, _: u64) {}
    fn proved(&self, _: Duration, _: &'static str) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

struct H {
    app: Router,
    log: Arc<Log>,
    work: Arc<ProofWork>,
}

impl H {
    fn new() -> Self {
        let signer = verifier::note::NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[9; 32])).unwrap();
        let work = Arc::new(ProofWork::default());
        let config = LogConfig {
            origin: ORIGIN.into(),
            trust_domain: Some("example.org".into()),
            openings_key: Some(ledger_core::sealing::OpeningsKey::from_bytes(&[4; 32])),
            ..LogConfig::default()
        };
        let observer: Arc<dyn CommitObserver> = work.clone();
        let log = Arc::new(Log::open(Arc::new(MemoryStore::new()), signer, config, Some(observer)).unwrap());
        let limits = Limits {
            max_entry_bytes: 65535,
            max_entry_request_bytes: 140_000,
            max_batch_entries: 100,
            max_batch_request_bytes: 1 << 22,
            body_timeout: Duration::from_secs(5),
        };
        let state = AppState {
            log: Arc::clone(&log),
            metrics: Arc::new(Metrics::new()),
            limits,
            admin: Some(AdminToken::new(TOKEN).unwrap()),
            events: Arc::new(ledger_server::bus::RevocationBus::new(Arc::clone(&log), Default::default(), Arc::new(Metrics::new()))),
            ssf: None,
            issuer: None,
            witnessing: None,
        };
        Self { app: app(state), log, work }
    }

    fn proofs_done(&self) -> usize {
        self.work.0.load(Ordering::SeqCst)
    }

    async fn send(&self, req: Request<Body>) -> (StatusCode, Value) {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes: Bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn call(&self, method: Method, uri: &str, admin: bool, body: Option<&Value>) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri).header(header::CONTENT_TYPE, "application/json");
        if admin {
            req = req.header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
        }
        self.send(req.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string()))).unwrap()).await
    }

    /// Asserts a refusal with its status and code, that the log did not
    /// change, and that no proof work was done for it.
    async fn refused(&self, method: Method, uri: &str, body: &Value, want: StatusCode, code: &str) {
        let (size, work) = (self.log.head().size, self.proofs_done());
        let (status, v) = self.call(method, uri, false, Some(body)).await;
        assert_eq!((status, v["error"]["code"].as_str()), (want, Some(code)), "{v}");
        assert_eq!(self.log.head().size, size, "the log changed");
        assert_eq!(self.proofs_done(), work, "proof work was done before the request was authenticated");
    }

    async fn register(&self, name: &str, key: &SigningKey) -> String {
        let agent = format!("spiffe://example.org/agent/{name}");
        let p = json!({"agent": agent, "public_key": B64.encode(key.verifying_key().as_bytes()), "code_hash": hex(&CODE),
            "owner": "payments", "purpose": "pays invoices"});
        let (status, v) = self.call(Method::POST, "/v1/agents", true, Some(&p)).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        agent
    }

    /// `POST /v1/hidden/commit` signed by `agent`.
    async fn commit(&self, agent: &str, key: &SigningKey, seq: u64, hidden: Value) -> (StatusCode, Value) {
        self.commit_body(agent, key, json!({"seq": seq, "salt": "c2FsdC0xMjM0NTY3ODkwYWJjZGVm", "hidden": hidden})).await
    }

    async fn commit_body(&self, agent: &str, key: &SigningKey, body: Value) -> (StatusCode, Value) {
        let body = body.to_string();
        let signed = RequestSignature::sign(ORIGIN, &AgentId::parse(agent).unwrap(), key, "POST", "/v1/hidden/commit", body.as_bytes());
        let mut req = Request::post("/v1/hidden/commit").header(header::CONTENT_TYPE, "application/json");
        for (name, value) in signed.headers() {
            req = req.header(name, value);
        }
        self.send(req.body(Body::from(body)).unwrap()).await
    }
}

fn entry(agent: &str, seq: u64, extra: Value) -> Map<String, Value> {
    let mut obj = json!({"kind": "action", "agent": agent, "action": "pay", "resource": format!("invoices/{seq}"), "seq": seq});
    for (k, v) in extra.as_object().unwrap() {
        obj[k] = v.clone();
    }
    obj.as_object().unwrap().clone()
}

/// An action with hidden fields committed client-side (as the SDK does),
/// signed, with its openings beside it.
fn committed_entry(origin: &str, agent: &str, seq: u64, key: &SigningKey, hidden: Value) -> Value {
    let mut obj = entry(agent, seq, json!({"hidden": hidden}));
    let openings = verifier::hidden::commit_entry(&mut obj, origin, &mut rand_core::OsRng, zk::params()).unwrap();
    sign_entry(&mut obj, origin, key);
    obj.insert("openings".into(), openings);
    Value::Object(obj)
}

fn amount_and_customer(amount: u64, customer: &str) -> Value {
    json!({"amount": {"u64": amount, "prove": [{"le": 10000}]}, "customer": {"str": customer}})
}

/// The review's proof of concept: with the leaf and the passport key
/// (both public), guess hidden values until the stored signature verifies.
/// It recovered a 4-digit amount in about a second when the log committed
/// plaintext the agent had signed. Now no signature over plaintext exists:
/// plain hidden values are refused, and the committed paths (SDK and
/// `POST /v1/hidden/commit`) sign only the committed form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_values_cannot_be_brute_forced_from_stored_signatures() {
    let h = H::new();
    let key = SigningKey::from_bytes(&[1; 32]);
    let agent = h.register("billing", &key).await;

    // The old path: plain values signed by the agent, for the log to commit.
    let mut plain = entry(&agent, 1, json!({"hidden": amount_and_customer(1250, "ACME")}));
    sign_entry(&mut plain, ORIGIN, &key);
    h.refused(Method::POST, "/v1/entries", &Value::Object(plain.clone()), StatusCode::BAD_REQUEST, "commit_hidden_first").await;
    h.refused(Method::POST, "/v1/entries/batch", &json!([plain]), StatusCode::BAD_REQUEST, "commit_hidden_first").await;

    // Client-side commitment (seq 1) and the two-step flow (seq 2).
    let (status, v) = h
        .call(Method::POST, "/v1/entries", false, Some(&committed_entry(ORIGIN, &agent, 1, &key, amount_and_customer(1250, "ACME"))))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let size = h.log.head().size;
    let (status, committed) = h.commit(&agent, &key, 2, amount_and_customer(4711, "Initech")).await;
    assert_eq!(status, StatusCode::OK, "{committed}");
    assert_eq!(h.log.head().size, size, "committing stores nothing");
    // The request signature covers the body's hash: without a random salt
    // it would be a guessable hash of the values.
    let (status, v) = h.commit_body(&agent, &key, json!({"seq": 2, "hidden": amount_and_customer(4711, "Initech")})).await;
    assert_eq!((status, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_hidden")), "{v}");
    let mut two_step = entry(&agent, 2, json!({"hidden": committed["hidden"], "predicates": committed["predicates"]}));
    sign_entry(&mut two_step, ORIGIN, &key);
    two_step.insert("openings".into(), committed["openings"].clone());
    let (status, v) = h.call(Method::POST, "/v1/entries", false, Some(&Value::Object(two_step))).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");

    let public_key = key.verifying_key();
    for (index, (amount, customer)) in [(1u64, (1250u64, "ACME")), (2, (4711, "Initech"))] {
        let (_, read) = h.call(Method::GET, &format!("/v1/entries/{index}"), false, None).await;
        let leaf: Map<String, Value> = serde_json::from_slice(&B64.decode(read["leaf"].as_str().unwrap()).unwrap()).unwrap();
        let text = serde_json::to_string(&leaf).unwrap();
        assert!(!text.contains(customer) && !text.contains("openings"), "{text}");
        let signature = verifier::entry::signing::parse_signature(leaf["signature"].as_str().unwrap()).unwrap();
        // Positive control: the stored signature covers the leaf as stored.
        assert!(verify_signature(&public_key, &signing_message(ORIGIN, &leaf), &signature));
        // The attack: every amount the public predicate allows, with the
        // true customer even (a dictionary would hold it).
        let mut guess = leaf.clone();
        guess.remove("predicates");
        let hits = (0..=10_000u64)
            .filter(|v| {
                guess.insert("hidden".into(), amount_and_customer(*v, customer));
                verify_signature(&public_key, &signing_message(ORIGIN, &guess), &signature)
            })
            .count();
        assert_eq!(hits, 0, "entry {index}: a guess of the hidden amount ({amount}) verified the stored signature");
    }
}

/// Signatures, agents and sequence numbers are checked before any proof is
/// checked or made, and committed leaves are held to the same limits as
/// plain hidden values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_proof_work_before_authentication() {
    let h = H::new();
    let key = SigningKey::from_bytes(&[1; 32]);
    let agent = h.register("billing", &key).await;
    let stranger = SigningKey::from_bytes(&[2; 32]);
    let hidden = amount_and_customer(10, "ACME");

    // Unsigned: the commitments and proof are fine, the signature is missing.
    let mut unsigned = committed_entry(ORIGIN, &agent, 1, &key, hidden.clone());
    unsigned.as_object_mut().unwrap().remove("signature");
    h.refused(Method::POST, "/v1/entries", &unsigned, StatusCode::BAD_REQUEST, "invalid_entry").await;
    unsigned.as_object_mut().unwrap().remove("seq");
    h.refused(Method::POST, "/v1/entries", &unsigned, StatusCode::UNAUTHORIZED, "signature_required").await;
    // A batch of many such entries costs nothing either.
    let batch: Vec<Value> = (0..50).map(|_| unsigned.clone()).collect();
    h.refused(Method::POST, "/v1/entries/batch", &Value::Array(batch), StatusCode::UNAUTHORIZED, "signature_required").await;
    // Forged (signed by a stranger), unknown agent, replayed sequence.
    let forged = committed_entry(ORIGIN, &agent, 1, &stranger, hidden.clone());
    h.refused(Method::POST, "/v1/entries", &forged, StatusCode::UNAUTHORIZED, "bad_signature").await;
    let batch: Vec<Value> = (1..=50).map(|s| committed_entry(ORIGIN, &agent, s, &stranger, hidden.clone())).collect();
    h.refused(Method::POST, "/v1/entries/batch", &Value::Array(batch), StatusCode::UNAUTHORIZED, "bad_signature").await;
    let ghost = committed_entry(ORIGIN, "spiffe://example.org/agent/ghost", 1, &key, hidden.clone());
    h.refused(Method::POST, "/v1/entries", &ghost, StatusCode::FORBIDDEN, "unknown_agent").await;
    let (status, v) = h.call(Method::POST, "/v1/entries", false, Some(&committed_entry(ORIGIN, &agent, 1, &key, hidden.clone()))).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(h.proofs_done(), 1);
    let replayed = committed_entry(ORIGIN, &agent, 1, &key, hidden.clone());
    h.refused(Method::POST, "/v1/entries", &replayed, StatusCode::CONFLICT, "sequence_replayed").await;
    // The two-step flow proves only for an authenticated, active agent.
    let (status, v) = h.commit(&agent, &stranger, 2, hidden.clone()).await;
    assert_eq!((status, v["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("bad_signature")), "{v}");
    let (status, v) = h.commit(&agent, &key, 1, hidden.clone()).await;
    assert_eq!((status, v["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("sequence_replayed")), "{v}");
    let unsigned = Request::post("/v1/hidden/commit")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"seq": 2, "hidden": hidden}).to_string()))
        .unwrap();
    let (status, _) = h.send(unsigned).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(h.proofs_done(), 1, "refused commit requests did proof work");

    // Limits on committed leaves: too many fields, a bad field name.
    let many: Map<String, Value> = (0..17).map(|i| (format!("f{i}"), json!({"str": "x"}))).collect();
    let mut too_many = entry(&agent, 2, json!({"hidden": Value::Object(many)}));
    let openings = verifier::hidden::commit_entry(&mut too_many, ORIGIN, &mut rand_core::OsRng, zk::params());
    assert!(openings.is_err(), "the SDK refuses 17 fields too");
    let mut sixteen =
        committed_entry(ORIGIN, &agent, 2, &key, Value::Object((0..16).map(|i| (format!("f{i}"), json!({"str": "x"}))).collect()));
    let extra = sixteen["hidden"]["f0"].clone();
    sixteen["hidden"]["f16"] = extra;
    let obj = sixteen.as_object_mut().unwrap();
    sign_entry(obj, ORIGIN, &key);
    h.refused(Method::POST, "/v1/entries", &sixteen, StatusCode::BAD_REQUEST, "invalid_hidden").await;
    let mut renamed = committed_entry(ORIGIN, &agent, 2, &key, json!({"ok": {"str": "x"}}));
    let c = renamed["hidden"]["ok"].clone();
    renamed["hidden"] = json!({"not ok": c});
    sign_entry(renamed.as_object_mut().unwrap(), ORIGIN, &key);
    h.refused(Method::POST, "/v1/entries", &renamed, StatusCode::BAD_REQUEST, "invalid_hidden").await;
}

/// A passport or rotation with a small-order or mixed-order key would let
/// anyone forge the agent's entries: such keys are refused when parsed, and
/// the one verification rule refuses small-order `R` as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weak_agent_keys_are_refused() {
    use curve25519_dalek::edwards::CompressedEdwardsY;
    let h = H::new();
    let identity = {
        let mut b = [0u8; 32];
        b[0] = 1;
        b
    };
    // With the identity as key, (R = identity, s = 0) is a valid signature
    // of every message under the lax rule: the attack the check prevents.
    let weak = ed25519_dalek::VerifyingKey::from_bytes(&identity).unwrap();
    let mut forged = [0u8; 64];
    forged[..32].copy_from_slice(&identity);
    let forged = ed25519_dalek::Signature::from_bytes(&forged);
    assert!(ed25519_dalek::Verifier::verify(&weak, b"any entry", &forged).is_ok());
    assert!(!verify_signature(&weak, b"any entry", &forged));
    // A mixed-order key: a real key plus a point of order 4.
    let honest = SigningKey::from_bytes(&[5; 32]);
    let torsion = CompressedEdwardsY([0u8; 32]).decompress().unwrap();
    let mixed = (honest.verifying_key().to_edwards() + torsion).compress().to_bytes();
    for (name, key) in [("identity", identity), ("order 4", [0u8; 32]), ("mixed order", mixed)] {
        let p = json!({"agent": "spiffe://example.org/agent/weak", "public_key": B64.encode(key), "code_hash": hex(&CODE),
            "owner": "x", "purpose": "y"});
        let (status, v) = h.call(Method::POST, "/v1/agents", true, Some(&p)).await;
        assert_eq!((status, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_passport")), "{name}: {v}");
    }
    assert_eq!(h.log.head().size, 0);
    // Rotating to a weak key.
    let key = SigningKey::from_bytes(&[1; 32]);
    let agent = h.register("billing", &key).await;
    let mut rot = rotation(ORIGIN, &agent, 1, &key, &SigningKey::from_bytes(&[3; 32]));
    rot.insert("new_public_key".into(), B64.encode(mixed).into());
    h.refused(Method::POST, "/v1/entries", &Value::Object(rot), StatusCode::BAD_REQUEST, "invalid_entry").await;
}

/// Entry signatures name the log: an entry signed for a staging log with
/// the same key is refused by production.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_signed_for_another_log_are_refused() {
    let h = H::new();
    let key = SigningKey::from_bytes(&[1; 32]);
    let agent = h.register("billing", &key).await;
    let mut staging = entry(&agent, 1, json!({}));
    sign_entry(&mut staging, "staging.example/log", &key);
    h.refused(Method::POST, "/v1/entries", &Value::Object(staging), StatusCode::UNAUTHORIZED, "bad_signature").await;
    let mut rot = rotation("staging.example/log", &agent, 1, &key, &SigningKey::from_bytes(&[3; 32]));
    h.refused(Method::POST, "/v1/entries", &Value::Object(rot.clone()), StatusCode::UNAUTHORIZED, "bad_signature").await;
    rot = rotation(ORIGIN, &agent, 1, &key, &SigningKey::from_bytes(&[3; 32]));
    let (status, v) = h.call(Method::POST, "/v1/entries", false, Some(&Value::Object(rot))).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
}

/// An entry's predicate proof is bound to its agent and sequence number:
/// commitments and proof copied into another agent's entry, or into a
/// later entry of the same agent, do not verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predicate_proofs_are_bound_to_their_entry() {
    let h = H::new();
    let (ka, kb) = (SigningKey::from_bytes(&[1; 32]), SigningKey::from_bytes(&[2; 32]));
    let (a, b) = (h.register("a", &ka).await, h.register("b", &kb).await);
    let original = committed_entry(ORIGIN, &a, 1, &ka, json!({"amount": {"u64": 50, "prove": [{"le": 100}]}}));
    let (status, v) = h.call(Method::POST, "/v1/entries", false, Some(&original)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    for (who, agent, key, seq) in [("another agent", &b, &kb, 1), ("a later entry", &a, &ka, 2)] {
        let mut copy = entry(agent, seq, json!({"hidden": original["hidden"], "predicates": original["predicates"]}));
        sign_entry(&mut copy, ORIGIN, key);
        copy.insert("openings".into(), original["openings"].clone());
        let (size, work) = (h.log.head().size, h.proofs_done());
        let (status, v) = h.call(Method::POST, "/v1/entries", false, Some(&Value::Object(copy))).await;
        assert_eq!((status, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_hidden")), "{who}: {v}");
        assert_eq!(h.log.head().size, size);
        assert_eq!(h.proofs_done(), work + 1, "{who}: checked after authentication");
    }
}

/// A forgery in a batch is refused (with the batch) before the sequencer,
/// while other appends carry on; valid batches are pre-verified in
/// parallel and commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgery_in_a_batch_is_refused_and_others_commit() {
    let h = H::new();
    let keys: Vec<SigningKey> = (1..=4u8).map(|i| SigningKey::from_bytes(&[i; 32])).collect();
    let mut agents = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        agents.push(h.register(&format!("a{i}"), k).await);
    }
    let signed = |agent: &str, seq: u64, key: &SigningKey| {
        let mut e = entry(agent, seq, json!({}));
        sign_entry(&mut e, ORIGIN, key);
        Value::Object(e)
    };
    let mut batch: Vec<Value> = (1..=60).map(|s| signed(&agents[0], s, &keys[0])).collect();
    batch[37] = signed(&agents[0], 38, &keys[1]);
    let good: Vec<Value> = (1..=60).map(|s| signed(&agents[2], s, &keys[2])).collect();
    let size = h.log.head().size;
    let (batch, good) = (Value::Array(batch), Value::Array(good));
    let (bad, ok) = tokio::join!(
        h.call(Method::POST, "/v1/entries/batch", false, Some(&batch)),
        h.call(Method::POST, "/v1/entries/batch", false, Some(&good)),
    );
    assert_eq!((bad.0, bad.1["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("bad_signature")), "{}", bad.1);
    assert_eq!(ok.0, StatusCode::CREATED, "{}", ok.1);
    assert_eq!(h.log.head().size, size + 60);
    // A rotation inside a batch hands over to the new key at once.
    let new = SigningKey::from_bytes(&[9; 32]);
    let rot = Value::Object(rotation(ORIGIN, &agents[3], 1, &keys[3], &new));
    let batch = json!([rot, signed(&agents[3], 2, &new), signed(&agents[3], 3, &new)]);
    let (status, v) = h.call(Method::POST, "/v1/entries/batch", false, Some(&batch)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let stale = json!([signed(&agents[3], 4, &keys[3])]);
    h.refused(Method::POST, "/v1/entries/batch", &stale, StatusCode::UNAUTHORIZED, "bad_signature").await;
}

/// Every entry kind is stored in RFC 8785 form and reads back through both
/// read routes; an independent JCS implementation reproduces each leaf.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_entry_kind_reads_back_in_canonical_form() {
    let h = H::new();
    let key = SigningKey::from_bytes(&[1; 32]);
    let agent = h.register("billing", &key).await;
    let path = agent.replace(':', "%3A").replace('/', "%2F");
    let mut seq = 0;
    let mut next = || {
        seq += 1;
        seq
    };
    let s = next();
    let mut act = entry(&agent, s, json!({"data": {"z": [1, "é", {"b": null, "a": true}], "a": "\u{1f600}"}}));
    sign_entry(&mut act, ORIGIN, &key);
    assert_eq!(h.call(Method::POST, "/v1/entries", false, Some(&Value::Object(act))).await.0, StatusCode::CREATED);
    let s = next();
    let hidden = committed_entry(ORIGIN, &agent, s, &key, amount_and_customer(7, "ACME"));
    assert_eq!(h.call(Method::POST, "/v1/entries", false, Some(&hidden)).await.0, StatusCode::CREATED);
    for code in [CODE, [0xbb; 32]] {
        let nonce_path = format!("/v1/agents/{path}/nonce");
        // Each signed request is accepted once: the two draws get distinct
        // timestamps from the signer's clock.
        let mut req = Request::post(&nonce_path);
        for (name, value) in RequestSignature::sign(ORIGIN, &AgentId::parse(&agent).unwrap(), &key, "POST", &nonce_path, b"").headers() {
            req = req.header(name, value);
        }
        let (status, nonce) = h.send(req.body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::CREATED, "{nonce}");
        let mut att = json!({"kind": "attestation", "agent": agent, "nonce": nonce["nonce"], "code_hash": hex(&code),
            "runtime": {"os": "linux", "version": "6", "image_digest": "sha256:x"},
            "behaviour": {"digest": "00".repeat(32), "calls": 1, "distinct": 1}, "evidence": {"type": "software"}, "seq": next()});
        sign_entry(att.as_object_mut().unwrap(), ORIGIN, &key);
        let (status, v) = h.call(Method::POST, "/v1/attestations", false, Some(&att)).await;
        assert!(status == StatusCode::CREATED || status == StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    }
    let rot = rotation(ORIGIN, &agent, next(), &key, &SigningKey::from_bytes(&[3; 32]));
    assert_eq!(h.call(Method::POST, "/v1/entries", false, Some(&Value::Object(rot))).await.0, StatusCode::CREATED);
    let (status, v) = h.call(Method::POST, &format!("/v1/agents/{path}/retire"), true, Some(&json!({"reason": "done"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");

    let size = h.log.head().size;
    assert_eq!(size, 7, "passport, action, hidden action, two attestations, rotation, retirement");
    let (status, range) = h.call(Method::GET, &format!("/v1/entries?start=0&limit={size}"), false, None).await;
    assert_eq!(status, StatusCode::OK, "{range}");
    let mut kinds = Vec::new();
    for i in 0..size {
        let (status, one) = h.call(Method::GET, &format!("/v1/entries/{i}"), false, None).await;
        assert_eq!(status, StatusCode::OK, "entry {i}: {one}");
        assert_eq!(range["entries"][i as usize], one, "entry {i}: the range and the single read differ");
        let leaf = B64.decode(one["leaf"].as_str().unwrap()).unwrap();
        let parsed: Value = serde_json::from_slice(&leaf).unwrap();
        assert_eq!(serde_jcs::to_vec(&parsed).unwrap(), leaf, "entry {i} is not RFC 8785: {}", String::from_utf8_lossy(&leaf));
        assert_eq!(one["entry"], parsed);
        kinds.push(parsed["kind"].as_str().unwrap().to_owned());
    }
    assert_eq!(kinds, ["passport", "action", "action", "attestation", "attestation", "rotation", "retirement"]);
}
