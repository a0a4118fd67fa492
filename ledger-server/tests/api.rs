//! The HTTP contract, route by route, driven through `app()` with `oneshot`
//! (no socket). Every error case checks its status, its stable code, and
//! that the log did not change.

// In tests and benches a failed unwrap is the failure report.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use ed25519_dalek::SigningKey;
use http_body_util::BodyExt as _;
use ledger_core::store::MemoryStore;
use ledger_core::{CommitObserver, Log, LogConfig};
use ledger_server::metrics::Metrics;
use ledger_server::{app, AppState, Limits};
use serde_json::{json, Value};
use tower::ServiceExt as _;
use verifier::hash::leaf_hash;
use verifier::note::{NoteSigner, NoteVerifier};
use verifier::proof::{verify_consistency, verify_inclusion};
use verifier::tlog_proof::TlogProof;
use verifier::wire::{ConsistencyProofResponse, EntryResponse, InclusionProofResponse};
use verifier::{Checkpoint, VerifierKey};

const ORIGIN: &str = "api.example/log";
const AGENT: &str = "spiffe://example.org/agent/billing";

fn action(resource: &str) -> String {
    format!(r#"{{"kind":"action","agent":"{AGENT}","action":"read","resource":"{resource}"}}"#)
}

struct Harness {
    app: Router,
    log: Arc<Log>,
}

const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// The log routes' contract is tested without agent authentication (the
/// bare log); `agents.rs` tests the server as it runs, signatures required.
fn harness_with(queue_bytes: usize) -> Harness {
    harness_full(queue_bytes, 4096)
}

fn harness_full(queue_bytes: usize, prover_queue: usize) -> Harness {
    let signer = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[9; 32])).unwrap();
    let metrics = Arc::new(Metrics::new());
    let observer: Arc<dyn CommitObserver> = metrics.clone();
    let config = LogConfig {
        origin: ORIGIN.into(),
        queue_bytes,
        openings_key: Some(ledger_core::sealing::OpeningsKey::from_bytes(&[3; 32])),
        prover_queue,
        agent_auth: false,
        ..LogConfig::default()
    };
    let log = Arc::new(Log::open(Arc::new(MemoryStore::new()), signer, config, Some(observer)).unwrap());
    let limits = Limits {
        max_entry_bytes: 4000,
        max_entry_request_bytes: 8000,
        max_batch_entries: 300,
        max_batch_request_bytes: 300 * 1000,
        body_timeout: std::time::Duration::from_millis(200),
    };
    let admin = Some(ledger_server::auth::AdminToken::new(ADMIN_TOKEN).unwrap());
    let events = Arc::new(ledger_server::bus::RevocationBus::new(Arc::clone(&log), Default::default(), Arc::clone(&metrics)));
    Harness { app: app(AppState { log: Arc::clone(&log), metrics, limits, admin, events, ssf: None, issuer: None, witnessing: None }), log }
}

fn harness() -> Harness {
    harness_with(1 << 20)
}

async fn send(
    app: &Router,
    method: Method,
    uri: &str,
    content_type: Option<&str>,
    body: impl Into<Body>,
) -> (StatusCode, HeaderMap, Bytes) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(ct) = content_type {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    let resp = app.clone().oneshot(req.body(body.into()).unwrap()).await.unwrap();
    let (parts, body) = resp.into_parts();
    (parts.status, parts.headers, body.collect().await.unwrap().to_bytes())
}

async fn get(app: &Router, uri: &str) -> (StatusCode, HeaderMap, Bytes) {
    send(app, Method::GET, uri, None, Body::empty()).await
}

async fn post_json(app: &Router, uri: &str, body: &str) -> (StatusCode, HeaderMap, Bytes) {
    send(app, Method::POST, uri, Some("application/json"), body.to_owned()).await
}

fn json_of(body: &Bytes) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

/// Asserts an error response and that the tree did not grow.
async fn assert_error(h: &Harness, resp: (StatusCode, HeaderMap, Bytes), status: StatusCode, code: &str, size_before: u64) {
    let (got, headers, body) = resp;
    let v = json_of(&body);
    assert_eq!(got, status, "{v}");
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(!v["error"]["message"].as_str().unwrap().is_empty());
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(h.log.head().size, size_before, "an error changed the log");
}

async fn append_n(h: &Harness, n: usize) {
    let batch: Vec<Value> =
        (0..n).map(|i| json!({"kind": "action", "agent": AGENT, "action": "call", "resource": format!("r/{i}")})).collect();
    let (status, _, _) = post_json(&h.app, "/v1/entries/batch", &serde_json::to_string(&batch).unwrap()).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn append_and_fetch_one_entry() {
    let h = harness();
    let body = format!(r#"{{"kind":"action","agent":"{AGENT}","action":"search","resource":"web","data":{{"tool":"search","n":3}}}}"#);
    let (status, _, body) = post_json(&h.app, "/v1/entries", &body).await;
    assert_eq!(status, StatusCode::CREATED);
    let v = json_of(&body);
    assert_eq!(v["index"], 0);
    let (status, _, body) = get(&h.app, "/v1/entries/0").await;
    assert_eq!(status, StatusCode::OK);
    let e: EntryResponse = serde_json::from_slice(&body).unwrap();
    assert_eq!(e.entry["data"], json!({"n": 3, "tool": "search"}));
    assert_eq!(e.entry["kind"], "action");
    assert_eq!(e.entry["agent"], AGENT);
    assert_eq!(e.entry["v"], 2);
    use base64::Engine as _;
    assert_eq!(v["leaf_hash"], base64::engine::general_purpose::STANDARD.encode(leaf_hash(&e.leaf)));
    assert_eq!(v["integrated_time"], e.entry["integrated_time"]);
}

#[tokio::test]
async fn append_rejections_change_nothing() {
    let h = harness();
    append_n(&h, 1).await;
    let ok = |extra: &str| format!(r#"{{"kind":"action","agent":"{AGENT}","action":"read","resource":"r"{extra}}}"#);
    let big = "x".repeat(4100);
    let cases: Vec<(Option<&str>, String, StatusCode, &str)> = vec![
        (Some("application/json"), "{not json".into(), StatusCode::BAD_REQUEST, "invalid_json"),
        (Some("application/json"), ok(r#","data":{"a":1,"a":2}"#), StatusCode::BAD_REQUEST, "invalid_json"),
        (Some("application/json"), ok(r#","data":{"a":0.5}"#), StatusCode::BAD_REQUEST, "invalid_json"),
        (Some("application/json"), r#"{"agent":"x"}"#.into(), StatusCode::BAD_REQUEST, "invalid_entry"),
        (Some("application/json"), ok(r#","extra":1"#), StatusCode::BAD_REQUEST, "invalid_entry"),
        (Some("application/json"), ok(r#","data":"text""#), StatusCode::BAD_REQUEST, "invalid_entry"),
        (
            Some("application/json"),
            format!(r#"{{"kind":"action","agent":"{AGENT}","resource":"r"}}"#),
            StatusCode::BAD_REQUEST,
            "invalid_entry",
        ),
        (Some("application/json"), r#"{"kind":"gossip"}"#.into(), StatusCode::BAD_REQUEST, "unknown_kind"),
        (
            Some("application/json"),
            r#"{"kind":"action","agent":"spiffe://Example/agent/a","action":"a","resource":"r"}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_agent_id",
        ),
        (
            Some("application/json"),
            r#"{"kind":"action","agent":"https://example.org/agent/a","action":"a","resource":"r"}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_agent_id",
        ),
        (Some("application/json"), ok(&format!(r#","data":{{"s":"{big}"}}"#)), StatusCode::PAYLOAD_TOO_LARGE, "entry_too_large"),
        (Some("text/plain"), action("r"), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        (None, action("r"), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
    ];
    for (ct, body, status, code) in cases {
        let resp = send(&h.app, Method::POST, "/v1/entries", ct, body).await;
        assert_error(&h, resp, status, code, 1).await;
    }
    let oversized = ok(&format!(r#","data":{{"s":"{}"}}"#, "x".repeat(9000)));
    assert_error(&h, post_json(&h.app, "/v1/entries", &oversized).await, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", 1).await;
}

#[tokio::test]
async fn slow_body_times_out_and_changes_nothing() {
    let h = harness();
    // One chunk of the body, then nothing: a slow or stalled sender.
    let first = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"{\"kind\":"))]);
    let body = Body::from_stream(futures_util::StreamExt::chain(first, futures_util::stream::pending()));
    let resp = send(&h.app, Method::POST, "/v1/entries", Some("application/json"), body).await;
    assert_error(&h, resp, StatusCode::REQUEST_TIMEOUT, "request_timeout", 0).await;
}

#[tokio::test]
async fn batch_append_is_atomic() {
    let h = harness();
    let (status, _, body) = post_json(&h.app, "/v1/entries/batch", &format!("[{},{}]", action("a"), action("b"))).await;
    assert_eq!(status, StatusCode::CREATED);
    let v = json_of(&body);
    assert_eq!(v["entries"][0]["index"], 0);
    assert_eq!(v["entries"][1]["index"], 1);

    let bad_second = format!(r#"[{},{{"kind":"nope"}}]"#, action("a"));
    let (status, headers, body) = post_json(&h.app, "/v1/entries/batch", &bad_second).await;
    assert!(json_of(&body)["error"]["message"].as_str().unwrap().starts_with("entry 1:"));
    assert_error(&h, (status, headers, body), StatusCode::BAD_REQUEST, "unknown_kind", 2).await;
    assert_error(&h, post_json(&h.app, "/v1/entries/batch", "[]").await, StatusCode::BAD_REQUEST, "empty_batch", 2).await;
    assert_error(&h, post_json(&h.app, "/v1/entries/batch", r#"{"kind":"action"}"#).await, StatusCode::BAD_REQUEST, "invalid_batch", 2)
        .await;
    assert_error(&h, post_json(&h.app, "/v1/entries/batch", "[").await, StatusCode::BAD_REQUEST, "invalid_json", 2).await;
    let too_many: Vec<Value> =
        (0..301).map(|i| json!({"kind": "action", "agent": AGENT, "action": "a", "resource": format!("r/{i}")})).collect();
    let resp = post_json(&h.app, "/v1/entries/batch", &serde_json::to_string(&too_many).unwrap()).await;
    assert_error(&h, resp, StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large", 2).await;
    let resp = send(&h.app, Method::POST, "/v1/entries/batch", Some("application/xml"), "[]").await;
    assert_error(&h, resp, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_queue_answers_503_with_retry_after() {
    let h = harness_with(400);
    let mut tasks = Vec::new();
    for i in 0..64 {
        let app = h.app.clone();
        tasks.push(tokio::spawn(async move { post_json(&app, "/v1/entries", &action(&format!("r/{i}"))).await }));
    }
    let (mut created, mut pushed) = (0, 0);
    for t in tasks {
        let (status, headers, body) = t.await.unwrap();
        match status {
            StatusCode::CREATED => created += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(json_of(&body)["error"]["code"], "pushback");
                assert_eq!(headers[header::RETRY_AFTER], "1");
                pushed += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created + pushed, 64);
    assert!(pushed > 0, "a 200-byte queue must push back under 64 concurrent appends");
    assert_eq!(h.log.head().size, created);
}

#[tokio::test]
async fn entries_and_ranges() {
    let h = harness();
    append_n(&h, 5).await;
    let (status, _, body) = get(&h.app, "/v1/entries?start=1&limit=3").await;
    assert_eq!(status, StatusCode::OK);
    let v = json_of(&body);
    assert_eq!(v["tree_size"], 5);
    assert_eq!(v["entries"].as_array().unwrap().iter().map(|e| e["index"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 2, 3]);
    assert_error(&h, get(&h.app, "/v1/entries/5").await, StatusCode::NOT_FOUND, "index_beyond_tree", 5).await;
    assert_error(&h, get(&h.app, "/v1/entries/abc").await, StatusCode::BAD_REQUEST, "invalid_index", 5).await;
    assert_error(&h, get(&h.app, "/v1/entries/-1").await, StatusCode::BAD_REQUEST, "invalid_index", 5).await;
    assert_error(&h, get(&h.app, "/v1/entries/99999999999999999999999").await, StatusCode::BAD_REQUEST, "invalid_index", 5).await;
    assert_error(&h, get(&h.app, "/v1/entries?limit=3").await, StatusCode::BAD_REQUEST, "invalid_query", 5).await;
    assert_error(&h, get(&h.app, "/v1/entries?start=x").await, StatusCode::BAD_REQUEST, "invalid_query", 5).await;
    assert_error(&h, get(&h.app, "/v1/entries?start=9").await, StatusCode::NOT_FOUND, "index_beyond_tree", 5).await;
}

async fn checkpoint_of(h: &Harness) -> Checkpoint {
    let (status, headers, body) = get(&h.app, "/v1/checkpoint").await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/plain"));
    let (_, _, key) = get(&h.app, "/v1/log/key").await;
    let key = VerifierKey::parse(std::str::from_utf8(&key).unwrap().trim()).unwrap();
    assert_eq!(key.name(), ORIGIN);
    let (_, _, tlog) = get(&h.app, "/tlog/checkpoint").await;
    assert_eq!(tlog, body);
    Checkpoint::open(std::str::from_utf8(&body).unwrap(), &NoteVerifier::new(key)).unwrap()
}

#[tokio::test]
async fn proofs_verify_against_served_checkpoints() {
    let h = harness();
    append_n(&h, 3).await;
    let old = checkpoint_of(&h).await;
    append_n(&h, 10).await;
    let new = checkpoint_of(&h).await;
    assert_eq!((old.size, new.size), (3, 13));

    let (status, _, body) = get(&h.app, "/v1/proof/inclusion?index=4&tree_size=13").await;
    assert_eq!(status, StatusCode::OK);
    let p: InclusionProofResponse = serde_json::from_slice(&body).unwrap();
    let leaf = leaf_hash(&h.log.entry(4).unwrap());
    verify_inclusion(&leaf, 4, 13, &p.hashes, &new.root).unwrap();
    let (_, _, body) = get(&h.app, "/v1/proof/inclusion?index=4").await;
    assert_eq!(serde_json::from_slice::<InclusionProofResponse>(&body).unwrap(), p);

    let (status, _, body) = get(&h.app, "/v1/proof/consistency?old_size=3&new_size=13").await;
    assert_eq!(status, StatusCode::OK);
    let c: ConsistencyProofResponse = serde_json::from_slice(&body).unwrap();
    verify_consistency(3, 13, &c.hashes, &old.root, &new.root).unwrap();

    let (status, _, body) = get(&h.app, "/v1/proof/bundle?index=7").await;
    assert_eq!(status, StatusCode::OK);
    let bundle = TlogProof::parse(std::str::from_utf8(&body).unwrap()).unwrap();
    let (_, _, key) = get(&h.app, "/v1/log/key").await;
    let verifier = NoteVerifier::new(VerifierKey::parse(std::str::from_utf8(&key).unwrap().trim()).unwrap());
    assert_eq!(bundle.verify(&verifier, None).unwrap().checkpoint, new);

    for (uri, status, code) in [
        ("/v1/proof/inclusion?index=13&tree_size=13", StatusCode::NOT_FOUND, "index_beyond_tree"),
        ("/v1/proof/inclusion?index=1&tree_size=14", StatusCode::NOT_FOUND, "size_beyond_tree"),
        ("/v1/proof/inclusion?tree_size=5", StatusCode::BAD_REQUEST, "invalid_query"),
        ("/v1/proof/inclusion?index=-2", StatusCode::BAD_REQUEST, "invalid_query"),
        ("/v1/proof/consistency?old_size=5&new_size=3", StatusCode::BAD_REQUEST, "old_size_larger"),
        ("/v1/proof/consistency?old_size=5&new_size=30", StatusCode::NOT_FOUND, "size_beyond_tree"),
        ("/v1/proof/consistency?new_size=3", StatusCode::BAD_REQUEST, "invalid_query"),
        ("/v1/proof/bundle?index=13", StatusCode::NOT_FOUND, "index_beyond_tree"),
        ("/v1/proof/bundle", StatusCode::BAD_REQUEST, "invalid_query"),
    ] {
        assert_error(&h, get(&h.app, uri).await, status, code, 13).await;
    }
}

#[tokio::test]
async fn tiles_follow_tlog_tiles() {
    let h = harness();
    append_n(&h, 260).await;
    let (status, headers, body) = get(&h.app, "/tlog/tile/0/000").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CACHE_CONTROL], "public, max-age=31536000, immutable");
    assert_eq!(headers[header::CONTENT_TYPE], "application/octet-stream");
    assert_eq!(body.len(), 256 * 32);
    assert_eq!(&body[32..64], leaf_hash(&h.log.entry(1).unwrap()));
    let (status, headers, body) = get(&h.app, "/tlog/tile/0/001.p/4").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
    assert_eq!(body.len(), 4 * 32);
    let (status, _, body) = get(&h.app, "/tlog/tile/entries/001.p/4").await;
    assert_eq!(status, StatusCode::OK);
    let entries = verifier::tiles::decode_entry_bundle(&body).unwrap();
    assert_eq!(entries[0], h.log.entry(256).unwrap().as_slice());
    let (status, _, body) = get(&h.app, "/tlog/tile/1/000.p/1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.len(), 32);

    assert_error(&h, get(&h.app, "/tlog/tile/0/001").await, StatusCode::NOT_FOUND, "tile_not_available", 260).await;
    assert_error(&h, get(&h.app, "/tlog/tile/0/001.p/5").await, StatusCode::NOT_FOUND, "tile_not_available", 260).await;
    assert_error(&h, get(&h.app, "/tlog/tile/0/1").await, StatusCode::BAD_REQUEST, "invalid_tile_path", 260).await;
    assert_error(&h, get(&h.app, "/tlog/tile/9/000").await, StatusCode::BAD_REQUEST, "invalid_tile_path", 260).await;
    assert_error(&h, get(&h.app, "/tlog/tile/0/000.p/0").await, StatusCode::BAD_REQUEST, "invalid_tile_path", 260).await;
}

#[tokio::test]
async fn ops_routes() {
    let h = harness();
    append_n(&h, 2).await;
    let (status, _, body) = get(&h.app, "/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json_of(&body), json!({"status": "ok", "tree_size": 2}));
    let (status, _, body) = get(&h.app, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(body.to_vec()).unwrap();
    for metric in [
        "ledger_appended_entries_total 2",
        "ledger_tree_size 2",
        "ledger_commit_latency_seconds_bucket",
        "ledger_commit_batch_entries_count 1",
        "ledger_http_requests_total{",
    ] {
        assert!(text.contains(metric), "missing {metric} in\n{text}");
    }
    let (status, _, body) = get(&h.app, "/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let doc = json_of(&body);
    for path in [
        "/v1/entries",
        "/v1/entries/batch",
        "/v1/entries/{index}",
        "/v1/proof/inclusion",
        "/v1/proof/consistency",
        "/v1/proof/bundle",
        "/v1/checkpoint",
        "/v1/log/key",
        "/tlog/tile/{path}",
        "/healthz",
        "/metrics",
    ] {
        assert!(doc["paths"][path].is_object(), "openapi lacks {path}");
    }
    assert_eq!(doc["components"]["schemas"]["ActionEntryRequest"]["required"], json!(["kind", "agent", "action", "resource"]));
    // The schema describes what the route takes: signed actions (plain or
    // committed) and rotations, alone or in a batch.
    let schemas = &doc["components"]["schemas"];
    for member in ["seq", "signature", "hidden", "predicates", "openings"] {
        assert!(schemas["ActionEntryRequest"]["properties"][member].is_object(), "ActionEntryRequest lacks {member}");
    }
    for member in ["kind", "agent", "new_public_key", "seq", "signature", "new_signature"] {
        assert!(schemas["RotationEntryRequest"]["properties"][member].is_object(), "RotationEntryRequest lacks {member}");
    }
    let one_of = |schema: &Value| schema["oneOf"].as_array().map(|v| v.iter().map(|s| s["$ref"].clone()).collect::<Vec<_>>());
    let refs = Some(vec![json!("#/components/schemas/ActionEntryRequest"), json!("#/components/schemas/RotationEntryRequest")]);
    assert_eq!(one_of(&schemas["EntryRequest"]), refs);
    let body = |path: &str| doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"].clone();
    assert_eq!(body("/v1/entries"), json!({"$ref": "#/components/schemas/EntryRequest"}));
    assert_eq!(body("/v1/entries/batch")["items"], json!({"$ref": "#/components/schemas/EntryRequest"}));
    // Every error code the server sends is in the document.
    let codes: Vec<Value> = verifier::wire::ErrorCode::ALL.iter().map(|c| json!(c.as_str())).collect();
    assert_eq!(schemas["ErrorCode"]["enum"], Value::Array(codes));
    assert_error(&h, get(&h.app, "/v2/nothing").await, StatusCode::NOT_FOUND, "not_found", 2).await;
    let resp = send(&h.app, Method::DELETE, "/v1/entries/0", None, Body::empty()).await;
    assert_error(&h, resp, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", 2).await;
}

/// An action with hidden fields as an agent sends it: the values in the
/// clear (never accepted by the log).
fn plain_hidden_action(amount: u64, le: u64) -> String {
    format!(
        r#"{{"kind":"action","agent":"{AGENT}","action":"pay","resource":"invoices/1",
            "hidden":{{"amount":{{"u64":{amount},"prove":[{{"le":{le}}}]}},"customer":{{"str":"ACME"}}}}}}"#
    )
}

/// The same action committed on the agent's side, with its openings.
fn hidden_action(amount: u64, le: u64) -> String {
    let mut v: serde_json::Value = serde_json::from_str(&plain_hidden_action(amount, le)).unwrap();
    let obj = v.as_object_mut().unwrap();
    let openings = verifier::hidden::commit_entry(obj, ORIGIN, &mut rand_core::OsRng, zk::params()).unwrap();
    obj.insert("openings".into(), openings);
    v.to_string()
}

/// A committed action whose proof (of `amount ≤ 2·le`) is relabelled as a
/// proof of `amount ≤ le`: it does not verify.
fn relabelled_hidden_action(amount: u64, le: u64) -> String {
    let mut v: serde_json::Value = serde_json::from_str(&hidden_action(amount, 2 * le)).unwrap();
    v["predicates"]["claims"][0]["le"] = le.into();
    v.to_string()
}

async fn admin(app: &Router, method: Method, uri: &str, token: Option<&str>, body: &str) -> (StatusCode, HeaderMap, Bytes) {
    let mut req = Request::builder().method(method).uri(uri).header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let resp = app.clone().oneshot(req.body(Body::from(body.to_owned())).unwrap()).await.unwrap();
    let (parts, body) = resp.into_parts();
    (parts.status, parts.headers, body.collect().await.unwrap().to_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_fields_append_disclose_and_shred() {
    let h = harness();
    let (status, _, body) = post_json(&h.app, "/v1/entries", &hidden_action(1250, 10_000)).await;
    assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
    append_n(&h, 1).await;
    let (_, _, body) = get(&h.app, "/v1/entries/0").await;
    let e: EntryResponse = serde_json::from_slice(&body).unwrap();
    assert!(e.entry["hidden"]["amount"]["u64"].is_string() && e.entry["predicates"]["claims"][0]["le"] == 10_000);
    assert!(!String::from_utf8_lossy(&e.leaf).contains("ACME"));

    // Rejected appends change nothing: values in the clear, a proof that
    // does not verify (alone or in a batch).
    let plain = plain_hidden_action(1250, 10_000);
    assert_error(&h, post_json(&h.app, "/v1/entries", &plain).await, StatusCode::BAD_REQUEST, "commit_hidden_first", 2).await;
    let forged = relabelled_hidden_action(10_001, 10_000);
    assert_error(&h, post_json(&h.app, "/v1/entries", &forged).await, StatusCode::BAD_REQUEST, "invalid_hidden", 2).await;
    let batch = format!("[{},{}]", hidden_action(1, 5), relabelled_hidden_action(6, 5));
    assert_error(&h, post_json(&h.app, "/v1/entries/batch", &batch).await, StatusCode::BAD_REQUEST, "invalid_hidden", 2).await;

    // Admin authentication.
    let req = r#"{"reveal":["customer"],"prove":[{"field":"amount","ge":1000,"le":2000}]}"#;
    let (status, headers, _) = admin(&h.app, Method::POST, "/v1/entries/0/disclosures", None, req).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers[header::WWW_AUTHENTICATE].to_str().unwrap().starts_with("Bearer"));
    let (status, _, _) = admin(&h.app, Method::POST, "/v1/entries/0/disclosures", Some("test-admin-token-0123456788"), req).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, _, body) = admin(&h.app, Method::POST, "/v1/entries/0/disclosures", Some(ADMIN_TOKEN), req).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let bundle = verifier::disclosure::DisclosureBundle::parse(&body).unwrap();
    let v = verifier::disclosure::verify(&bundle, &NoteVerifier::new(h.log.verifier_key()), zk::params()).unwrap();
    assert_eq!(v.revealed, vec![("customer".to_string(), "ACME".to_string())]);
    assert_eq!(v.proven, vec!["1000 ≤ amount ≤ 2000"]);

    let cases = [
        ("/v1/entries/0/disclosures", r#"{"reveal":["nope"]}"#, StatusCode::BAD_REQUEST, "unknown_field"),
        ("/v1/entries/0/disclosures", r#"{"prove":[{"field":"customer","le":1}]}"#, StatusCode::BAD_REQUEST, "not_an_integer"),
        ("/v1/entries/0/disclosures", r#"{"prove":[{"field":"amount","lt":1}]}"#, StatusCode::BAD_REQUEST, "invalid_predicate"),
        ("/v1/entries/0/disclosures", r#"{"prove":[{"field":"amount","le":1}]}"#, StatusCode::UNPROCESSABLE_ENTITY, "predicate_false"),
        ("/v1/entries/0/disclosures", r#"{"reveal":"customer"}"#, StatusCode::BAD_REQUEST, "invalid_disclosure"),
        ("/v1/entries/0/disclosures", r#"{"extra":1}"#, StatusCode::BAD_REQUEST, "invalid_disclosure"),
        ("/v1/entries/1/disclosures", r#"{}"#, StatusCode::NOT_FOUND, "no_hidden_fields"),
        ("/v1/entries/9/disclosures", r#"{}"#, StatusCode::NOT_FOUND, "index_beyond_tree"),
    ];
    for (uri, body, status, code) in cases {
        assert_error(&h, admin(&h.app, Method::POST, uri, Some(ADMIN_TOKEN), body).await, status, code, 2).await;
    }

    // Shredding: admin only, then disclosures of the fields are gone.
    let (status, _, _) = admin(&h.app, Method::DELETE, "/v1/entries/0/openings", None, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(
        &h,
        admin(&h.app, Method::DELETE, "/v1/entries/1/openings", Some(ADMIN_TOKEN), "").await,
        StatusCode::NOT_FOUND,
        "no_openings",
        2,
    )
    .await;
    let (status, _, body) = admin(&h.app, Method::DELETE, "/v1/entries/0/openings", Some(ADMIN_TOKEN), "").await;
    assert_eq!((status, json_of(&body)), (StatusCode::OK, json!({"shredded": [0]})));
    let resp = admin(&h.app, Method::POST, "/v1/entries/0/disclosures", Some(ADMIN_TOKEN), req).await;
    assert_error(&h, resp, StatusCode::GONE, "openings_shredded", 2).await;
    // The bundle issued before shredding still verifies.
    verifier::disclosure::verify(&bundle, &NoteVerifier::new(h.log.verifier_key()), zk::params()).unwrap();

    let (status, _, _) = post_json(&h.app, "/v1/entries", &hidden_action(3, 5)).await;
    assert_eq!(status, StatusCode::CREATED);
    let uri = format!("/v1/openings?agent={}", AGENT.replace(':', "%3A").replace('/', "%2F"));
    let (status, _, body) = admin(&h.app, Method::DELETE, &uri, Some(ADMIN_TOKEN), "").await;
    assert_eq!((status, json_of(&body)), (StatusCode::OK, json!({"shredded": [2]})));
    assert_error(
        &h,
        admin(&h.app, Method::DELETE, "/v1/openings?agent=nope", Some(ADMIN_TOKEN), "").await,
        StatusCode::BAD_REQUEST,
        "invalid_agent_id",
        3,
    )
    .await;

    let (_, _, body) = get(&h.app, "/metrics").await;
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("ledger_prover_queue_entries") && text.contains("ledger_proof_latency_seconds_count"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prover_admission_is_bounded() {
    let h = harness_full(1 << 20, 1);
    let batch = format!("[{},{}]", hidden_action(1, 5), hidden_action(2, 5));
    assert_error(&h, post_json(&h.app, "/v1/entries/batch", &batch).await, StatusCode::PAYLOAD_TOO_LARGE, "too_many_hidden_entries", 0)
        .await;
    // Fill the one slot with a slow batch... concurrently submitted single
    // entries either land or are pushed back with Retry-After, never queued
    // without bound.
    let futures: Vec<_> = (0..8)
        .map(|i| {
            let app = h.app.clone();
            async move { post_json(&app, "/v1/entries", &hidden_action(i, 10)).await }
        })
        .collect();
    let results = futures_util::future::join_all(futures).await;
    let mut created = 0;
    for (status, headers, body) in results {
        match status {
            StatusCode::CREATED => created += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(json_of(&body)["error"]["code"], "prover_busy");
                assert!(headers.contains_key(header::RETRY_AFTER));
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(created >= 1);
    assert_eq!(h.log.head().size, created);
}

/// `[0,0,0,...]`: the server used to parse the whole body into a
/// `serde_json::Value` before counting its elements, so a cheap body cost
/// far more memory than its size. The count now stops the parse.
#[tokio::test]
async fn a_batch_of_many_tiny_elements_is_refused_while_counting() {
    let h = harness();
    append_n(&h, 2).await;
    let zeros = format!("[0{}]", ",0".repeat(100_000));
    let resp = post_json(&h.app, "/v1/entries/batch", &zeros).await;
    let message = json_of(&resp.2)["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("300"), "{message}");
    assert_error(&h, resp, StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large", 2).await;
    // The refusal comes before the end of the body is read: a syntax
    // error there is never reached.
    let truncated = format!("[0{},}}", ",0".repeat(100_000));
    assert_error(&h, post_json(&h.app, "/v1/entries/batch", &truncated).await, StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large", 2).await;
    // One element larger than a single append may be is refused before it is parsed.
    let big = format!(r#"[{},{{"kind":"action","data":{{"s":"{}"}}}}]"#, action("a"), "x".repeat(9000));
    let resp = post_json(&h.app, "/v1/entries/batch", &big).await;
    assert!(json_of(&resp.2)["error"]["message"].as_str().unwrap().starts_with("entry 1:"));
    assert_error(&h, resp, StatusCode::PAYLOAD_TOO_LARGE, "entry_too_large", 2).await;
    // Strict parsing still applies to each element.
    let duplicate = format!(r#"[{},{{"kind":"action","kind":"action"}}]"#, action("a"));
    assert_error(&h, post_json(&h.app, "/v1/entries/batch", &duplicate).await, StatusCode::BAD_REQUEST, "invalid_json", 2).await;
}

/// 1000 leaves of 64 KiB made one unauthenticated range read hold hundreds
/// of MB. A range now stops at 1 MiB of leaf bytes (at least one entry),
/// and the client continues from where it stopped.
#[tokio::test]
async fn range_reads_stop_at_a_byte_budget_and_continue() {
    // ledger_core::log::MAX_RANGE_BYTES
    const RANGE_BYTES: usize = 1 << 20;
    let h = harness();
    let blob = "x".repeat(3600);
    for batch in 0..5 {
        let entries: Vec<Value> = (0..60)
            .map(|i| json!({"kind": "action", "agent": AGENT, "action": "write", "resource": format!("r/{batch}/{i}"), "data": {"blob": blob}}))
            .collect();
        let (status, _, body) = post_json(&h.app, "/v1/entries/batch", &serde_json::to_string(&entries).unwrap()).await;
        assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
    }
    let total = 300u64;
    let leaf_len = |e: &EntryResponse| e.leaf.len();

    let (status, headers, body) = get(&h.app, "/v1/entries?start=0&limit=1000").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    let first: verifier::wire::EntriesResponse = serde_json::from_slice(&body).unwrap();
    assert_eq!(first.tree_size, total);
    let n = first.entries.len();
    let bytes: usize = first.entries.iter().map(leaf_len).sum();
    assert!(n > 1 && (n as u64) < total, "{n} entries");
    assert!(bytes <= RANGE_BYTES, "{bytes} leaf bytes");
    assert!(bytes + 4000 > RANGE_BYTES, "stopped early: {bytes} leaf bytes");
    assert_eq!(first.entries.iter().map(|e| e.index).collect::<Vec<_>>(), (0..n as u64).collect::<Vec<_>>());
    for e in &first.entries {
        assert_eq!(e.entry["data"]["blob"], blob.as_str());
    }

    // Continue from start + entries.len() until the end.
    let mut next = n as u64;
    while next < total {
        let (status, _, body) = get(&h.app, &format!("/v1/entries?start={next}&limit=1000")).await;
        assert_eq!(status, StatusCode::OK);
        let page: verifier::wire::EntriesResponse = serde_json::from_slice(&body).unwrap();
        assert!(!page.entries.is_empty());
        assert!(page.entries.iter().map(leaf_len).sum::<usize>() <= RANGE_BYTES);
        assert_eq!(page.entries[0].index, next);
        next += page.entries.len() as u64;
    }
    assert_eq!(next, total);
    // A small limit is still a limit.
    let (_, _, body) = get(&h.app, "/v1/entries?start=7&limit=2").await;
    let page: verifier::wire::EntriesResponse = serde_json::from_slice(&body).unwrap();
    assert_eq!(page.entries.iter().map(|e| e.index).collect::<Vec<_>>(), [7, 8]);
}
