//! Signal sources and signed signals through `app()` with `oneshot`:
//! registration (admin), the public listing, signals of sources and peer
//! reports of agents, and every refusal with its status and code, each
//! checked to leave the tree where it was.
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
use ledger_core::store::MemoryStore;
use ledger_core::{Log, LogConfig};
use ledger_server::auth::AdminToken;
use ledger_server::metrics::Metrics;
use ledger_server::{app, AppState, Limits};
use serde_json::{json, Value};
use tower::ServiceExt as _;
use verifier::entry::signing::{hex, sign_entry};
use verifier::note::NoteSigner;

const ORIGIN: &str = "signals.example/log";
const TOKEN: &str = "signals-admin-token-0123456789";
const AGENT: &str = "spiffe://example.org/agent/billing";
const PEER: &str = "spiffe://example.org/agent/auditor";
const CODE: [u8; 32] = [0xc0; 32];

struct H {
    app: Router,
    log: Arc<Log>,
}

fn harness() -> H {
    let signer = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[9; 32])).unwrap();
    let config = LogConfig { origin: ORIGIN.into(), trust_domain: Some("example.org".into()), ..LogConfig::default() };
    let log = Arc::new(Log::open(Arc::new(MemoryStore::new()), signer, config, None).unwrap());
    let limits = Limits {
        max_entry_bytes: 4096,
        max_entry_request_bytes: 8192,
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
    H { app: app(state), log }
}

async fn call(h: &H, method: Method, uri: &str, admin: bool, body: Option<String>) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri).header(header::CONTENT_TYPE, "application/json");
    if admin {
        req = req.header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
    }
    let resp = h.app.clone().oneshot(req.body(body.map_or_else(Body::empty, Body::from)).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes: Bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn post(h: &H, uri: &str, admin: bool, body: &Value) -> (StatusCode, Value) {
    call(h, Method::POST, uri, admin, Some(body.to_string())).await
}

/// Posts, and asserts the error and that the tree did not move.
async fn refused(h: &H, uri: &str, admin: bool, body: &Value, want: StatusCode, code: &str) {
    let size = h.log.head().size;
    let (status, answer) = post(h, uri, admin, body).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (want, Some(code)), "{body}: {answer}");
    assert_eq!(h.log.head().size, size, "{body}");
}

fn key_b64(key: &SigningKey) -> String {
    B64.encode(key.verifying_key().as_bytes())
}

fn signal(from: &str, subject: Value, signal_type: &str, seq: u64, key: &SigningKey) -> Value {
    let mut v = json!({"kind": "signal", "source": from, "subject": subject, "type": signal_type, "severity": "critical",
        "evidence": {"alert": "impossible travel"}, "seq": seq});
    if signal_type == "peer_report" {
        v["assessment"] = json!("negative");
    }
    sign_entry(v.as_object_mut().unwrap(), ORIGIN, key);
    v
}

async fn register_agent(h: &H, agent: &str, key: &SigningKey) {
    // The peer runs other code: threat intelligence about `CODE` would
    // take it under the revocation threshold, where it may not report.
    let code = if agent == PEER { [0xd0; 32] } else { CODE };
    let passport = json!({"agent": agent, "public_key": key_b64(key), "code_hash": hex(&code), "owner": "o", "purpose": "p"});
    assert_eq!(post(h, "/v1/agents", true, &passport).await.0, StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_are_registered_by_the_admin_and_listed_with_their_keys() {
    let h = harness();
    let key = SigningKey::from_bytes(&[4; 32]);
    let body = json!({"source": "siem-1", "key": key_b64(&key), "types": ["ueba", "siem"]});
    refused(&h, "/v1/sources", false, &body, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let mut identity = [0u8; 32];
    identity[0] = 1;
    for (member, bad) in [
        ("source", json!("ledger")),
        ("source", json!("Has Spaces")),
        ("types", json!(["drift"])),
        ("types", json!(["peer_report"])),
        ("types", json!([])),
        ("types", json!(["siem", "siem"])),
        ("key", json!("not base64")),
        ("key", json!(B64.encode(identity))),
        ("kind", json!("passport")),
        ("extra", json!(1)),
    ] {
        let mut v = body.clone();
        v[member] = bad;
        refused(&h, "/v1/sources", true, &v, StatusCode::BAD_REQUEST, "invalid_source").await;
    }
    refused(&h, "/v1/sources", true, &json!([1]), StatusCode::BAD_REQUEST, "invalid_source").await;
    let (status, at) = post(&h, "/v1/sources", true, &body).await;
    assert_eq!((status, at["index"].as_u64()), (StatusCode::CREATED, Some(0)), "{at}");
    let (status, list) = call(&h, Method::GET, "/v1/sources", false, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        list,
        json!({"sources": [{"source": "siem-1", "key": key_b64(&key), "types": ["siem", "ueba"], "registered_index": 0,
            "key_index": 0, "last_seq": 0}]})
    );
    // The leaf is the source entry, types in canonical order.
    let leaf: Value = serde_json::from_slice(&h.log.entry(0).unwrap()).unwrap();
    assert_eq!((leaf["kind"].as_str(), &leaf["types"]), (Some("source"), &json!(["siem", "ueba"])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_signals_and_peer_reports_with_every_refusal() {
    let h = harness();
    let (agent_key, peer_key, siem_key) =
        (SigningKey::from_bytes(&[2; 32]), SigningKey::from_bytes(&[3; 32]), SigningKey::from_bytes(&[4; 32]));
    register_agent(&h, AGENT, &agent_key).await;
    register_agent(&h, PEER, &peer_key).await;
    let source = json!({"source": "intel", "key": key_b64(&siem_key), "types": ["threat_intel", "siem"]});
    assert_eq!(post(&h, "/v1/sources", true, &source).await.0, StatusCode::CREATED);

    // Accepted: a SIEM alert about an agent, threat intelligence about a
    // code hash, a peer report.
    let (status, v) = post(&h, "/v1/signals", false, &signal("intel", json!(AGENT), "siem", 1, &siem_key)).await;
    assert_eq!((status, v["index"].as_u64()), (StatusCode::CREATED, Some(3)), "{v}");
    let code = json!({"code_hash": hex(&CODE)});
    assert_eq!(post(&h, "/v1/signals", false, &signal("intel", code.clone(), "threat_intel", 2, &siem_key)).await.0, StatusCode::CREATED);
    assert_eq!(post(&h, "/v1/signals", false, &signal(PEER, json!(AGENT), "peer_report", 1, &peer_key)).await.0, StatusCode::CREATED);
    let (_, listed) = call(&h, Method::GET, "/v1/sources", false, None).await;
    assert_eq!(listed["sources"][0]["last_seq"], 2);

    // Refused, the tree unmoved.
    let mut forged = signal("intel", json!(AGENT), "siem", 3, &siem_key);
    forged["severity"] = json!("low");
    let mut unsigned = signal("intel", json!(AGENT), "siem", 3, &siem_key);
    unsigned.as_object_mut().unwrap().remove("signature");
    let mut extra = signal("intel", json!(AGENT), "siem", 3, &siem_key);
    extra["agent"] = json!(AGENT);
    let cases = [
        (forged, StatusCode::UNAUTHORIZED, "bad_signature"),
        (signal("intel", json!(AGENT), "siem", 3, &agent_key), StatusCode::UNAUTHORIZED, "bad_signature"),
        (signal("intel", json!(AGENT), "siem", 2, &siem_key), StatusCode::CONFLICT, "sequence_replayed"),
        (signal("intel", json!(AGENT), "ueba", 3, &siem_key), StatusCode::FORBIDDEN, "signal_type_not_allowed"),
        (signal("feed", json!(AGENT), "siem", 1, &siem_key), StatusCode::FORBIDDEN, "unknown_source"),
        (signal("intel", json!("spiffe://example.org/agent/ghost"), "siem", 3, &siem_key), StatusCode::FORBIDDEN, "unknown_agent"),
        (signal("intel", code.clone(), "siem", 3, &siem_key), StatusCode::BAD_REQUEST, "invalid_signal"),
        (signal("intel", json!("spiffe://example.org/workload/x"), "siem", 3, &siem_key), StatusCode::BAD_REQUEST, "invalid_agent_id"),
        (unsigned, StatusCode::BAD_REQUEST, "invalid_signal"),
        (extra, StatusCode::BAD_REQUEST, "invalid_signal"),
        (
            json!({"kind": "signal", "source": "ledger", "subject": AGENT, "type": "drift", "severity": "low"}),
            StatusCode::BAD_REQUEST,
            "invalid_signal",
        ),
        (json!({"kind": "action", "agent": AGENT, "action": "a", "resource": "r"}), StatusCode::BAD_REQUEST, "invalid_signal"),
        (json!([signal("intel", json!(AGENT), "siem", 3, &siem_key)]), StatusCode::BAD_REQUEST, "invalid_signal"),
        // Peer reports: the reporter's own seq, its key in force, never about itself.
        (signal(PEER, json!(AGENT), "peer_report", 1, &peer_key), StatusCode::CONFLICT, "sequence_replayed"),
        (signal(PEER, json!(AGENT), "peer_report", 2, &agent_key), StatusCode::UNAUTHORIZED, "bad_signature"),
        (signal(PEER, json!(PEER), "peer_report", 2, &peer_key), StatusCode::BAD_REQUEST, "invalid_signal"),
        (signal("spiffe://example.org/agent/ghost", json!(AGENT), "peer_report", 1, &peer_key), StatusCode::FORBIDDEN, "unknown_agent"),
    ];
    for (body, status, code) in cases {
        refused(&h, "/v1/signals", false, &body, status, code).await;
    }
    // Malformed bodies.
    let size = h.log.head().size;
    let (status, v) = call(&h, Method::POST, "/v1/signals", false, Some("{\"kind\":\"signal\",".into())).await;
    assert_eq!((status, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_json")));
    let mut big = signal("intel", json!(AGENT), "siem", 3, &siem_key);
    big["evidence"] = json!({"pad": "x".repeat(9000)});
    let (status, v) = post(&h, "/v1/signals", false, &big).await;
    assert_eq!((status, v["error"]["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")));
    let req = Request::post("/v1/signals").header(header::CONTENT_TYPE, "text/plain").body(Body::from("{}")).unwrap();
    assert_eq!(h.app.clone().oneshot(req).await.unwrap().status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(h.log.head().size, size);

    // A retired subject is refused, from a source and from a peer.
    let uri = format!("/v1/agents/{}/retire", AGENT.replace(':', "%3A").replace('/', "%2F"));
    assert_eq!(post(&h, &uri, true, &json!({"reason": "done"})).await.0, StatusCode::CREATED);
    refused(&h, "/v1/signals", false, &signal("intel", json!(AGENT), "siem", 3, &siem_key), StatusCode::FORBIDDEN, "agent_retired").await;
    refused(&h, "/v1/signals", false, &signal(PEER, json!(AGENT), "peer_report", 2, &peer_key), StatusCode::FORBIDDEN, "agent_retired")
        .await;
    // ... and a retired agent reports on nobody.
    refused(&h, "/v1/signals", false, &signal(AGENT, json!(PEER), "peer_report", 1, &agent_key), StatusCode::FORBIDDEN, "agent_retired")
        .await;

    // Replaced with a new key: the old one is refused, the seq carries over.
    let new_key = SigningKey::from_bytes(&[5; 32]);
    let replaced = json!({"source": "intel", "key": key_b64(&new_key), "types": ["threat_intel"]});
    assert_eq!(post(&h, "/v1/sources", true, &replaced).await.0, StatusCode::CREATED);
    refused(
        &h,
        "/v1/signals",
        false,
        &signal("intel", code.clone(), "threat_intel", 3, &siem_key),
        StatusCode::UNAUTHORIZED,
        "bad_signature",
    )
    .await;
    refused(
        &h,
        "/v1/signals",
        false,
        &signal("intel", code.clone(), "threat_intel", 2, &new_key),
        StatusCode::CONFLICT,
        "sequence_replayed",
    )
    .await;
    assert_eq!(post(&h, "/v1/signals", false, &signal("intel", code, "threat_intel", 3, &new_key)).await.0, StatusCode::CREATED);

    // Every source and signal leaf reads back in RFC 8785 form (checked
    // with an independent JCS implementation) and decodes to itself.
    let mut kinds = Vec::new();
    for i in 0..h.log.head().size {
        let (status, one) = call(&h, Method::GET, &format!("/v1/entries/{i}"), false, None).await;
        assert_eq!(status, StatusCode::OK, "entry {i}: {one}");
        let leaf = B64.decode(one["leaf"].as_str().unwrap()).unwrap();
        let parsed: Value = serde_json::from_slice(&leaf).unwrap();
        assert_eq!(serde_jcs::to_vec(&parsed).unwrap(), leaf, "entry {i} is not RFC 8785: {}", String::from_utf8_lossy(&leaf));
        assert_eq!(one["entry"], parsed);
        kinds.push(parsed["kind"].as_str().unwrap().to_owned());
    }
    assert_eq!(kinds, ["passport", "passport", "source", "signal", "signal", "signal", "retirement", "source", "signal"]);

    // Refusals of signed signals are counted with the agents'.
    let (_, metrics) = {
        let resp = h.app.clone().oneshot(Request::get("/metrics").body(Body::empty()).unwrap()).await.unwrap();
        (resp.status(), String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap())
    };
    assert!(metrics.contains("ledger_agent_refusals_total{code=\"unknown_source\"} 1"), "{metrics}");
    // The OpenAPI document describes the routes.
    let (_, doc) = call(&h, Method::GET, "/openapi.json", false, None).await;
    for path in ["/v1/sources", "/v1/signals"] {
        assert!(doc["paths"][path]["post"].is_object(), "openapi lacks {path}");
    }
    assert!(doc["paths"]["/v1/sources"]["get"].is_object());
}
