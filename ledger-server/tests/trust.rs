//! The trust view end to end through `app()`: the policy entry at start,
//! a revocation by decay alone logged within a second of the instant the
//! fold computes, isolation of the revoked agent, reinstatement only after
//! a fresh attestation, quarantine, scores and listings, the policy routes,
//! and a view rebuilt from the log equal to the one kept entry by entry.
#![allow(clippy::unwrap_used)]

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
use ledger_core::{Log, LogConfig};
use ledger_server::auth::AdminToken;
use ledger_server::metrics::Metrics;
use ledger_server::{app, AppState, Limits};
use serde_json::{json, Value};
use tower::ServiceExt as _;
use verifier::entry::signing::{hex, sign_entry};
use verifier::entry::{EntryKind, Leaf};
use verifier::fold::policy::Policy;
use verifier::note::NoteSigner;
use verifier::AgentId;

const ORIGIN: &str = "trust.example/log";
const TOKEN: &str = "trust-admin-token-0123456789";
const AGENT: &str = "spiffe://example.org/agent/billing";
const AGENT_PATH: &str = "spiffe%3A%2F%2Fexample.org%2Fagent%2Fbilling";

struct H {
    app: Router,
    log: Arc<Log>,
    store: Arc<MemoryStore>,
}

fn open(store: &Arc<MemoryStore>) -> Arc<Log> {
    let signer = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[9; 32])).unwrap();
    let config = LogConfig { origin: ORIGIN.into(), trust_domain: Some("example.org".into()), ..LogConfig::default() };
    Arc::new(Log::open(Arc::clone(store) as Arc<dyn ledger_core::store::LogStore>, signer, config, None).unwrap())
}

/// A policy under which an unattested agent falls below the threshold a
/// few seconds after registration: freshness has a one-second grace and
/// a one-second half-life.
fn fast_policy() -> Policy {
    Policy { attestation_grace_s: 1, attestation_half_life_s: 1, ..Policy::default() }
}

async fn harness(policy: &Policy) -> H {
    let store = Arc::new(MemoryStore::new());
    let log = open(&store);
    ledger_server::policy::start_trust(&log, Some(policy)).await.unwrap();
    let limits = Limits {
        max_entry_bytes: 65535,
        max_entry_request_bytes: 140_000,
        max_batch_entries: 100,
        max_batch_request_bytes: 1 << 20,
        body_timeout: Duration::from_secs(5),
    };
    let metrics = Arc::new(Metrics::new());
    let events = Arc::new(ledger_server::bus::RevocationBus::new(Arc::clone(&log), Default::default(), Arc::clone(&metrics)));
    let state = AppState {
        log: Arc::clone(&log),
        metrics,
        limits,
        admin: Some(AdminToken::new(TOKEN).unwrap()),
        events,
        ssf: None,
        issuer: None,
        witnessing: None,
    };
    H { app: app(state), log, store }
}

async fn send(h: &H, req: Request<Body>) -> (StatusCode, Value) {
    let resp = h.app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes: Bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn call(h: &H, method: Method, uri: &str, admin: bool, body: Option<&Value>) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri).header(header::CONTENT_TYPE, "application/json");
    if admin {
        req = req.header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
    }
    send(h, req.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string()))).unwrap()).await
}

async fn refused(h: &H, (status, body): (StatusCode, Value), want: StatusCode, code: &str) {
    let size = h.log.head().size;
    assert_eq!((status, body["error"]["code"].as_str()), (want, Some(code)), "{body}");
    assert_eq!(h.log.head().size, size);
}

fn signed(mut v: Value, seq: u64, key: &SigningKey) -> Value {
    let obj = v.as_object_mut().unwrap();
    obj.insert("agent".into(), AGENT.into());
    obj.insert("seq".into(), seq.into());
    sign_entry(obj, ORIGIN, key);
    v
}

async fn register(h: &H, key: &SigningKey) {
    let passport = json!({"agent": AGENT, "public_key": B64.encode(key.verifying_key().as_bytes()), "code_hash": hex(&[0xc0; 32]),
        "owner": "payments", "purpose": "pays invoices"});
    assert_eq!(call(h, Method::POST, "/v1/agents", true, Some(&passport)).await.0, StatusCode::CREATED);
}

/// A successful software attestation.
async fn attest(h: &H, key: &SigningKey, seq: u64) -> (StatusCode, Value) {
    let uri = format!("/v1/agents/{AGENT_PATH}/nonce");
    let signature =
        RequestSignature::sign_at(ORIGIN, &AgentId::parse(AGENT).unwrap(), key, "POST", &uri, RequestSignature::next_timestamp_ms(), b"");
    let mut req = Request::post(&uri).header(header::CONTENT_TYPE, "application/json");
    for (name, value) in signature.headers() {
        req = req.header(name, value);
    }
    let (status, v) = send(h, req.body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let claims = json!({"kind": "attestation", "nonce": v["nonce"], "code_hash": hex(&[0xc0; 32]),
        "runtime": {"os": "linux", "version": "6.1", "image_digest": "sha256:abc"},
        "behaviour": {"digest": hex(&[1; 32]), "calls": 10, "distinct": 3}, "evidence": {"type": "software"}});
    call(h, Method::POST, "/v1/attestations", false, Some(&signed(claims, seq, key))).await
}

/// Waits (bounded) for the first entry of `kind` at or after `from`.
async fn wait_for(log: &Log, kind: EntryKind, from: u64) -> (u64, Leaf) {
    for _ in 0..200 {
        let size = log.head().size;
        for index in from..size {
            let (leaf, _) = Leaf::decode(&log.entry(index).unwrap()).unwrap();
            if leaf.kind == kind {
                return (index, leaf);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {kind} entry appeared");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decay_alone_revokes_within_a_second_and_reinstatement_needs_a_fresh_attestation() {
    let policy = fast_policy();
    let h = harness(&policy).await;
    // The policy in force is the log's first entry.
    let (status, v) = call(&h, Method::GET, "/v1/policy", false, None).await;
    assert_eq!((status, v["policy_index"].as_u64(), v["sha256"].as_str()), (StatusCode::OK, Some(0), Some(hex(&policy.hash()).as_str())));
    let key = SigningKey::from_bytes(&[1; 32]);
    register(&h, &key).await;
    let agent = AgentId::parse(AGENT).unwrap();
    let record = h.log.trust().get(&agent).unwrap();
    let (_, registered_at) = record.trust.registered();
    let crossing = record.trust.crossing(&policy, registered_at, policy.revocation_threshold).unwrap();
    let (status, v) = call(&h, Method::GET, &format!("/v1/agents/{AGENT_PATH}/trust"), false, None).await;
    assert_eq!((status, v["score"].as_u64(), v["level"].as_str()), (StatusCode::OK, Some(60), Some("medium")), "{v}");

    let (index, leaf) = wait_for(&h.log, EntryKind::Revocation, 0).await;
    assert_eq!(leaf.text("reason"), "score");
    assert!(leaf.integrated_time >= crossing, "revoked before the crossing");
    assert!(leaf.integrated_time - crossing <= 1000, "revoked {} ms after the crossing", leaf.integrated_time - crossing);
    assert!(leaf.members["score"].as_u64().unwrap() < u64::from(policy.revocation_threshold));
    let resp = h.app.clone().oneshot(Request::get("/metrics").body(Body::empty()).unwrap()).await.unwrap();
    let text = String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    for line in
        ["ledger_revocations{reason=\"score\"} 1", "ledger_trust_agents{level=\"revoked\"} 1", "ledger_trust_score_agents{le=\"0\"} 1"]
    {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }

    // Isolated: no action, no quarantine on top, no reinstatement yet.
    let action = signed(json!({"kind": "action", "action": "pay", "resource": "invoices/1"}), 1, &key);
    refused(&h, call(&h, Method::POST, "/v1/entries", false, Some(&action)).await, StatusCode::FORBIDDEN, "agent_revoked").await;
    let quarantine = format!("/v1/agents/{AGENT_PATH}/quarantine");
    let reinstate = format!("/v1/agents/{AGENT_PATH}/reinstate");
    refused(&h, call(&h, Method::POST, &quarantine, true, None).await, StatusCode::CONFLICT, "already_revoked").await;
    refused(&h, call(&h, Method::POST, &reinstate, false, None).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    refused(&h, call(&h, Method::POST, &reinstate, true, None).await, StatusCode::FORBIDDEN, "attestation_required").await;
    let (status, v) = call(&h, Method::GET, "/v1/trust?below=30", false, None).await;
    assert_eq!(
        (status, v["agents"][0]["agent"].as_str(), v["agents"][0]["quarantined"].as_bool()),
        (StatusCode::OK, Some(AGENT), Some(true))
    );

    // A revoked agent may still attest; then an admin reinstates it.
    let (status, v) = attest(&h, &key, 2).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (status, v) = call(&h, Method::POST, &reinstate, true, Some(&json!({"note": "re-attested"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    refused(&h, call(&h, Method::POST, &reinstate, true, None).await, StatusCode::CONFLICT, "not_revoked").await;
    let action = signed(json!({"kind": "action", "action": "pay", "resource": "invoices/1"}), 3, &key);
    assert_eq!(call(&h, Method::POST, "/v1/entries", false, Some(&action)).await.0, StatusCode::CREATED);

    // An admin quarantine is a revocation with its own reason.
    let (status, v) = call(&h, Method::POST, &quarantine, true, Some(&json!({"note": "incident 42"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (_, leaf) = wait_for(&h.log, EntryKind::Revocation, index + 1).await;
    assert_eq!((leaf.text("reason"), leaf.text("note")), ("quarantine", "incident 42"));

    // The view rebuilt from the log equals the one kept entry by entry.
    h.log.shutdown();
    let size = h.log.head().size;
    let kept: Vec<_> = [agent.clone()].iter().map(|a| h.log.trust().get(a)).collect();
    let records = h.store.scan_prefix(ledger_core::store::Namespace::Views, b"trust\0", b"trust\0", 10_000).unwrap();
    assert!(!records.is_empty());
    let wipe = ledger_core::store::CommitBatch {
        first_index: size,
        records: records
            .iter()
            .map(|(k, _)| ledger_core::store::Record::delete(ledger_core::store::Namespace::Views, k.clone()))
            .chain([ledger_core::store::Record::delete(ledger_core::store::Namespace::Views, b"trust".to_vec())])
            .collect(),
        ..Default::default()
    };
    use ledger_core::store::LogStore as _;
    h.store.commit(&wipe).unwrap();
    let rebuilt = open(&h.store);
    assert_eq!(kept, vec![rebuilt.trust().get(&agent)]);
    assert_eq!(rebuilt.trust().policy(), h.log.trust().policy());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_is_replaced_by_an_admin_and_logged_once() {
    let h = harness(&Policy::default()).await;
    let toml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/policy.example.toml")).unwrap();
    let put = |body: String, admin: bool| {
        let mut req = Request::put("/v1/policy").header(header::CONTENT_TYPE, "application/toml");
        if admin {
            req = req.header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
        }
        req.body(Body::from(body)).unwrap()
    };
    refused(&h, send(&h, put(toml.clone(), false)).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    // The built-in default is in force already, without a policy entry.
    let (status, v) = send(&h, put(toml.clone(), true)).await;
    assert_eq!((status, v["changed"].as_bool(), &v["policy_index"]), (StatusCode::OK, Some(false), &Value::Null));
    assert_eq!(h.log.head().size, 0);
    let stricter = toml.replace("revocation_threshold = 30", "revocation_threshold = 45");
    assert_ne!(stricter, toml);
    let (status, v) = send(&h, put(stricter.clone(), true)).await;
    assert_eq!((status, v["changed"].as_bool(), v["policy_index"].as_u64()), (StatusCode::CREATED, Some(true), Some(0)), "{v}");
    assert_eq!(h.log.trust().policy().policy.revocation_threshold, 45);
    refused(
        &h,
        send(&h, put(toml.replace("revocation_threshold = 30", "revocation_threshold = 300"), true)).await,
        StatusCode::BAD_REQUEST,
        "invalid_policy",
    )
    .await;
    refused(&h, send(&h, put("not = [toml".into(), true)).await, StatusCode::BAD_REQUEST, "invalid_policy").await;
    let (_, v) = call(&h, Method::GET, "/v1/policy", false, None).await;
    assert_eq!(v["policy"]["revocation_threshold"], 45);
}

/// The log records each drift finding of its detector as a `drift` signal,
/// and an auditor folding the same leaves offline reaches the same state,
/// with nothing unjustified and nothing owed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_logged_by_the_log_and_recomputed_offline() {
    let mut policy = Policy::default();
    policy.drift.buckets = 8;
    policy.drift.baseline_events = 8;
    policy.drift.window_events = 8;
    let h = harness(&policy).await;
    let key = SigningKey::from_bytes(&[1; 32]);
    register(&h, &key).await;
    let mut seq = 0;
    let mut act = |action: &str, resource: &str| {
        seq += 1;
        signed(json!({"kind": "action", "action": action, "resource": resource}), seq, &key)
    };
    // A baseline of one habit, then a window of something else entirely.
    let mut batch: Vec<Value> = (0..8).map(|i| act("read", &format!("invoices/{i}"))).collect();
    batch.extend((0..8).map(|i| act("delete", &format!("users-{i}:accounts"))));
    let (status, v) = call(&h, Method::POST, "/v1/entries/batch", false, Some(&Value::Array(batch))).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let first_action = v["entries"][0]["index"].as_u64().unwrap();
    let (index, leaf) = wait_for(&h.log, EntryKind::Signal, first_action).await;
    assert_eq!((leaf.text("source"), leaf.text("type"), leaf.text("severity")), ("ledger", "drift", "high"));
    let evidence = &leaf.members["evidence"];
    assert_eq!((evidence["first_index"].as_u64(), evidence["last_index"].as_u64()), (Some(first_action + 8), Some(first_action + 15)));
    assert!(evidence["psi_milli"].as_u64().unwrap() >= u64::from(policy.drift.significant_milli));
    let agent = AgentId::parse(AGENT).unwrap();
    for _ in 0..100 {
        if h.log.trust().get(&agent).unwrap().owed_drift.is_empty() && h.log.head().size > index {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let kept = h.log.trust().get(&agent).unwrap();
    assert!(kept.owed_drift.is_empty());
    // The window's last action carried the finding's evidence; the signal
    // only announced it.
    assert!(kept.trust.recent().contains(&(first_action + 15)), "the finding moved the score");
    assert!(!kept.trust.recent().contains(&index));

    // Offline: the same fold over the same leaves. The trigger may still
    // be logging what the revocation implies (a risk change): compare once
    // the log holds still.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let size = h.log.head().size;
        let mut offline = verifier::fold::trust_log::TrustMap::default();
        for i in 0..size {
            let (leaf, _) = Leaf::decode(&h.log.entry(i).unwrap()).unwrap();
            let effects = offline.apply_leaf(i, &leaf).unwrap();
            assert!(effects.violations.is_empty(), "entry {i}: {:?}", effects.violations);
        }
        let live = h.log.trust().get(&agent);
        if h.log.head().size == size || std::time::Instant::now() > deadline {
            assert_eq!(offline.agents.get(&agent), live.as_ref());
            assert_eq!(offline.policy, h.log.trust().policy());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A crossing that happened while the log was down is logged when it
/// starts again, before it takes a request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crossing_while_down_is_logged_before_the_first_request() {
    let policy = fast_policy();
    let h = harness(&policy).await;
    let key = SigningKey::from_bytes(&[1; 32]);
    register(&h, &key).await;
    let size = h.log.head().size;
    h.log.shutdown();
    let record = h.log.trust().get(&AgentId::parse(AGENT).unwrap()).unwrap();
    let (_, registered_at) = record.trust.registered();
    let crossing = record.trust.crossing(&policy, registered_at, policy.revocation_threshold).unwrap();
    while h.log.now_ms() <= crossing {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = open(&h.store);
    ledger_server::policy::start_trust(&log, Some(&policy)).await.unwrap();
    let (leaf, _) = Leaf::decode(&log.entry(size).unwrap()).unwrap();
    assert_eq!((leaf.kind, leaf.text("reason")), (EntryKind::Revocation, "score"));
}

/// The body and headers of a GET.
async fn raw_get(h: &H, uri: &str, admin: bool) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let mut req = Request::get(uri);
    if admin {
        req = req.header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
    }
    let resp = h.app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    (status, headers, resp.into_body().collect().await.unwrap().to_bytes().to_vec())
}

/// What the console's table says of the agent: (status, evidence of the
/// last attestation).
async fn console_row(h: &H) -> (String, Option<String>) {
    let (status, v) = call(h, Method::GET, "/v1/console/agents", true, None).await;
    assert_eq!((status, v["total"].as_u64()), (StatusCode::OK, Some(1)), "{v}");
    let row = &v["agents"][0];
    assert_eq!(
        (row["agent"].as_str(), row["owner"].as_str(), row["purpose"].as_str()),
        (Some(AGENT), Some("payments"), Some("pays invoices"))
    );
    (row["status"].as_str().unwrap().to_owned(), row["last_attestation"]["evidence"].as_str().map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_reads_are_admin_only_and_tell_status_history_and_proofs() {
    let h = harness(&Policy::default()).await;
    let detail = format!("/v1/console/agents/{AGENT_PATH}");
    // The page is served to anyone, under its CSP; its data only to the
    // admin.
    for uri in ["/console", "/console/app.js", "/console/app.css"] {
        let (status, headers, _) = raw_get(&h, uri, false).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("default-src 'none'") && !csp.contains("unsafe"), "{csp}");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
    assert_eq!(raw_get(&h, "/console/index.html", false).await.0, StatusCode::NOT_FOUND);
    assert_eq!(raw_get(&h, "/console/..%2Fadmin.token", false).await.0, StatusCode::NOT_FOUND);
    for uri in ["/v1/console/agents", &detail, "/v1/console/health", "/v1/console/entries/0", "/v1/console/events?after=-1"] {
        let (status, headers, body) = raw_get(&h, uri, false).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}");
        assert!(headers.contains_key(header::WWW_AUTHENTICATE), "{uri}");
        assert!(String::from_utf8(body).unwrap().contains("\"unauthorized\""), "{uri}");
    }
    let (status, v) = call(&h, Method::GET, &detail, true, None).await;
    assert_eq!((status, v["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("unknown_agent")));

    // Status and last attestation follow the log.
    let key = SigningKey::from_bytes(&[1; 32]);
    register(&h, &key).await;
    assert_eq!(console_row(&h).await, ("active".into(), None));
    assert_eq!(attest(&h, &key, 1).await.0, StatusCode::CREATED);
    assert_eq!(console_row(&h).await, ("active".into(), Some("software".into())));
    let (status, v) = call(&h, Method::POST, &format!("/v1/agents/{AGENT_PATH}/quarantine"), true, None).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(console_row(&h).await.0, "quarantined");
    assert_eq!(attest(&h, &key, 2).await.0, StatusCode::CREATED);
    let (status, v) = call(&h, Method::POST, &format!("/v1/agents/{AGENT_PATH}/reinstate"), true, None).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(console_row(&h).await.0, "active");
    let (status, v) =
        call(&h, Method::POST, &format!("/v1/agents/{AGENT_PATH}/retire"), true, Some(&json!({"reason": "decommissioned"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(console_row(&h).await.0, "retired");
    // Filtered by text (id, owner, purpose; any case) and status.
    for (query, matching) in [("q=PAYS", 1), ("q=billing&status=retired", 1), ("q=nobody", 0), ("status=active", 0), ("status=retired", 1)]
    {
        let (status, v) = call(&h, Method::GET, &format!("/v1/console/agents?{query}"), true, None).await;
        assert_eq!(
            (status, v["total"].as_u64(), v["agents"].as_array().map(Vec::len)),
            (StatusCode::OK, Some(matching), Some(matching as usize)),
            "{query}: {v}"
        );
    }
    let long = "x".repeat(257);
    for query in ["status=asleep", "colour=red", &format!("q={long}")] {
        let (status, v) = call(&h, Method::GET, &format!("/v1/console/agents?{query}"), true, None).await;
        assert_eq!((status, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_query")), "{query}");
    }

    // The detail: the score after each entry that moved it, as the trust
    // fold computed it (0 while quarantined).
    let (status, v) = call(&h, Method::GET, &detail, true, None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let history: Vec<(String, u64)> =
        v["history"].as_array().unwrap().iter().map(|p| (p["kind"].as_str().unwrap().to_owned(), p["score"].as_u64().unwrap())).collect();
    // The logged risk level moves with the revocation and back: the
    // trigger appends those `risk` entries on its own, so where they fall
    // among the test's entries varies.
    let (risk, moved): (Vec<_>, Vec<_>) = history.iter().partition(|(k, _)| k == "risk");
    let kinds: Vec<&str> = moved.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["passport", "attestation", "revocation", "attestation", "reinstatement", "retirement"], "{v}");
    assert_eq!(risk.len(), 2, "{v}");
    assert_eq!(moved[0].1, 60);
    assert!(moved[1].1 > 60, "{history:?}");
    assert_eq!((moved[2].1, moved[3].1), (0, 0), "no score while quarantined");
    assert!(moved[4].1 > 0, "{history:?}");
    let indices: Vec<u64> = v["history"].as_array().unwrap().iter().map(|p| p["index"].as_u64().unwrap()).collect();
    assert!(indices.windows(2).all(|w| w[0] < w[1]), "{indices:?}");
    for p in v["history"].as_array().unwrap() {
        let (leaf, _) = Leaf::decode(&h.log.entry(p["index"].as_u64().unwrap()).unwrap()).unwrap();
        assert_eq!((leaf.kind.as_str(), leaf.integrated_time), (p["kind"].as_str().unwrap(), p["time"].as_u64().unwrap()));
    }
    assert_eq!((v["status"].as_str(), v["passport"]["entry"]["owner"].as_str()), (Some("retired"), Some("payments")));
    assert_eq!(v["passport"]["index"], v["history"][0]["index"]);
    assert_eq!(v["trust"]["agent"].as_str(), Some(AGENT));

    // Health, and an entry with what proves it, checked here as the page
    // checks it.
    let (status, health) = call(&h, Method::GET, "/v1/console/health", true, None).await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert_eq!(health["tree_size"].as_u64(), Some(h.log.head().size));
    assert_eq!(health["log_key"].as_str(), Some(h.log.verifier_key().to_string().as_str()));
    // (This harness's metrics see no commits: `null` until the first.)
    assert!(health["commit_latency_ms"].is_null(), "{health}");
    // Reading samples the size (an idle log has its series too); `after`
    // leaves out what a poller has seen.
    let last = health["series"].as_array().and_then(|s| s.last()).cloned().unwrap_or_default();
    assert_eq!(last["tree_size"].as_u64(), Some(h.log.head().size), "{health}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, all) = call(&h, Method::GET, "/v1/console/health", true, None).await;
    let all = all["series"].as_array().unwrap().clone();
    assert!(all.len() >= 2, "a second later, another sample: {all:?}");
    let (_, after) = call(&h, Method::GET, &format!("/v1/console/health?after={}", last["time"]), true, None).await;
    let after = after["series"].as_array().unwrap().clone();
    assert!(!after.is_empty() && after.len() < all.len(), "{after:?} of {all:?}");
    assert!(after.iter().all(|s| s["time"].as_u64() > last["time"].as_u64()), "{after:?}");
    let (status, bad) = call(&h, Method::GET, "/v1/console/health?after=soon", true, None).await;
    assert_eq!((status, bad["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_query")));
    let passport_index = v["passport"]["index"].as_u64().unwrap();
    let (status, e) = call(&h, Method::GET, &format!("/v1/console/entries/{passport_index}"), true, None).await;
    assert_eq!(status, StatusCode::OK, "{e}");
    let verifier = verifier::note::NoteVerifier::new(h.log.verifier_key());
    let checkpoint = verifier::Checkpoint::open(e["checkpoint"].as_str().unwrap(), &verifier).unwrap();
    assert_eq!(checkpoint.size, e["tree_size"].as_u64().unwrap());
    let leaf = B64.decode(e["leaf"].as_str().unwrap()).unwrap();
    assert_eq!(leaf, h.log.entry(passport_index).unwrap());
    let proof: Vec<verifier::hash::Hash> =
        e["inclusion"].as_array().unwrap().iter().map(|h| B64.decode(h.as_str().unwrap()).unwrap().try_into().unwrap()).collect();
    verifier::proof::verify_inclusion(&verifier::hash::leaf_hash(&leaf), passport_index, checkpoint.size, &proof, &checkpoint.root)
        .unwrap();
    let (status, e) = call(&h, Method::GET, &format!("/v1/console/entries/{}", checkpoint.size), true, None).await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("index_beyond_tree")));

    // The history rebuilt from the log equals the one kept entry by entry.
    let agent = AgentId::parse(AGENT).unwrap();
    let kept = h.log.score_history(&agent, 100).unwrap();
    h.log.shutdown();
    use ledger_core::store::{CommitBatch, LogStore as _, Namespace, Record};
    let mut wipe = vec![Record::delete(Namespace::Views, b"trust".to_vec())];
    for prefix in [&b"trust\0"[..], b"trust-history\0"] {
        let records = h.store.scan_prefix(Namespace::Views, prefix, prefix, 10_000).unwrap();
        assert!(!records.is_empty());
        wipe.extend(records.into_iter().map(|(k, _)| Record::delete(Namespace::Views, k)));
    }
    h.store.commit(&CommitBatch { first_index: h.log.head().size, records: wipe, ..Default::default() }).unwrap();
    assert_eq!(open(&h.store).score_history(&agent, 100).unwrap(), kept);
    assert_eq!(open(&h.store).score_history(&agent, 2).unwrap(), kept[kept.len() - 2..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_score_history_keeps_the_latest_points_in_a_ring() {
    use ledger_core::store::{LogStore as _, Namespace};
    use ledger_core::views::trust::HISTORY_RING;
    let h = harness(&Policy::default()).await;
    let key = SigningKey::from_bytes(&[1; 32]);
    register(&h, &key).await;
    let agent = AgentId::parse(AGENT).unwrap();
    let attestations = HISTORY_RING + 10;
    for seq in 1..=attestations {
        assert_eq!(attest(&h, &key, seq).await.0, StatusCode::CREATED);
    }
    let points = h.log.score_history(&agent, usize::MAX).unwrap();
    let ring = usize::try_from(HISTORY_RING).unwrap();
    assert_eq!(points.len(), ring);
    // The newest, in order: the passport and the first attestations fell
    // out of the ring.
    let last = h.log.head().size - 1;
    assert_eq!(points.last().map(|p| (p.index, p.kind)), Some((last, EntryKind::Attestation)));
    assert!(points.windows(2).all(|w| w[0].index < w[1].index));
    assert!(points.iter().all(|p| p.kind == EntryKind::Attestation));
    let stored = h.store.scan_prefix(Namespace::Views, b"trust-history\0", b"trust-history\0", 10 * ring).unwrap();
    assert_eq!(stored.len(), ring, "one record per slot, however many points");
    assert_eq!(h.log.score_history(&agent, 3).unwrap(), points[ring - 3..]);
    // Across a restart the ring goes on where it was: the next point
    // takes the oldest's slot.
    h.log.shutdown();
    let reopened = open(&h.store);
    assert_eq!(reopened.score_history(&agent, usize::MAX).unwrap(), points);
    let retired = reopened.retire(&agent, "decommissioned").await.unwrap();
    let after = reopened.score_history(&agent, usize::MAX).unwrap();
    assert_eq!(after.len(), ring);
    assert_eq!(after[..ring - 1], points[1..]);
    assert_eq!(after.last().map(|p| (p.index, p.kind)), Some((retired.index, EntryKind::Retirement)));
}
