//! The token routes in process (`app()` + `oneshot`): every refusal with
//! its code and nothing appended, the limits (64 live tokens, 16 pending
//! escalations), and the grants view kept across a reopening of the log.
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
use ledger_core::issuer::{Issuer, IssuerConfig};
use ledger_core::store::MemoryStore;
use ledger_core::{Log, LogConfig};
use ledger_server::auth::AdminToken;
use ledger_server::metrics::Metrics;
use ledger_server::{app, AppState, Limits};
use serde_json::{json, Value};
use tower::ServiceExt as _;
use verifier::entry::signing::hex;
use verifier::fold::policy::{Policy, RiskClass, TokenPolicy};
use verifier::note::NoteSigner;
use verifier::AgentId;

const ORIGIN: &str = "tokens.example/log";
const TOKEN: &str = "tokens-admin-token-0123456789";
const AGENT: &str = "spiffe://example.org/agent/buyer";

struct H {
    app: Router,
    log: Arc<Log>,
}

fn open(store: &Arc<MemoryStore>) -> Arc<Log> {
    let signer = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[9; 32])).unwrap();
    let config = LogConfig { origin: ORIGIN.into(), trust_domain: Some("example.org".into()), ..LogConfig::default() };
    Arc::new(Log::open(Arc::clone(store) as Arc<dyn ledger_core::store::LogStore>, signer, config, None).unwrap())
}

/// The default class needs `default_min`; payments need a human.
fn policy(default_min: u8) -> Policy {
    let human = RiskClass { human_approval: true, min_score: 10, ..RiskClass::default() };
    Policy {
        tokens: TokenPolicy {
            default: RiskClass { min_score: default_min, ..RiskClass::default() },
            classes: [("human".to_owned(), human)].into_iter().collect(),
            rules: vec![verifier::fold::policy::classes::ActionRule { action: "pay".into(), resource: "*".into(), class: "human".into() }],
        },
        ..Policy::default()
    }
}

async fn harness(log: Arc<Log>, policy: Option<&Policy>, tokens: bool) -> H {
    ledger_server::policy::start_trust(&log, policy).await.unwrap();
    let limits = Limits {
        max_entry_bytes: 65535,
        max_entry_request_bytes: 140_000,
        max_batch_entries: 100,
        max_batch_request_bytes: 1 << 20,
        body_timeout: Duration::from_secs(5),
    };
    let metrics = Arc::new(Metrics::new());
    let events = Arc::new(ledger_server::bus::RevocationBus::new(Arc::clone(&log), Default::default(), Arc::clone(&metrics)));
    let issuer = tokens.then(|| Arc::new(Issuer::new(Arc::clone(&log), SigningKey::from_bytes(&[5; 32]), IssuerConfig::default())));
    let state = AppState {
        log: Arc::clone(&log),
        metrics,
        limits,
        admin: Some(AdminToken::new(TOKEN).unwrap()),
        events,
        ssf: None,
        issuer,
        witnessing: None,
    };
    H { app: app(state), log }
}

async fn send(h: &H, req: Request<Body>) -> (StatusCode, Value) {
    let resp = h.app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes: Bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn call(h: &H, method: Method, uri: &str, admin: bool, body: &str) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri).header(header::CONTENT_TYPE, "application/json");
    if admin {
        req = req.header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
    }
    send(h, req.body(Body::from(body.to_owned())).unwrap()).await
}

async fn ask(h: &H, key: &SigningKey, body: &Value) -> (StatusCode, Value) {
    let body = body.to_string();
    let signature = RequestSignature::sign_at(
        ORIGIN,
        &AgentId::parse(AGENT).unwrap(),
        key,
        "POST",
        "/v1/tokens",
        RequestSignature::next_timestamp_ms(),
        body.as_bytes(),
    );
    let mut req = Request::post("/v1/tokens").header(header::CONTENT_TYPE, "application/json");
    for (name, value) in signature.headers() {
        req = req.header(name, value);
    }
    send(h, req.body(Body::from(body)).unwrap()).await
}

/// Asserts the refusal and that nothing was appended.
async fn refused(h: &H, answer: impl std::future::Future<Output = (StatusCode, Value)>, want: StatusCode, code: &str) -> Value {
    let size = h.log.head().size;
    let (status, body) = answer.await;
    assert_eq!((status, body["error"]["code"].as_str()), (want, Some(code)), "{body}");
    assert_eq!(h.log.head().size, size, "a refusal appended something");
    body
}

async fn register(h: &H, key: &SigningKey) {
    let passport = json!({"agent": AGENT, "public_key": B64.encode(key.verifying_key().as_bytes()), "code_hash": hex(&[0xc0; 32]),
        "owner": "procurement", "purpose": "buys"});
    assert_eq!(call(h, Method::POST, "/v1/agents", true, &passport.to_string()).await.0, StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_have_their_codes_and_change_nothing() {
    let store = Arc::new(MemoryStore::new());
    // A server without an issuer has no token routes.
    let off = harness(open(&store), None, false).await;
    refused(&off, call(&off, Method::GET, "/v1/tokens/key", false, ""), StatusCode::NOT_FOUND, "tokens_disabled").await;
    off.log.shutdown();

    let store = Arc::new(MemoryStore::new());
    let h = harness(open(&store), Some(&policy(61)), true).await;
    let key = SigningKey::from_bytes(&[3; 32]);
    register(&h, &key).await;
    let ok = json!({"action": "db.read", "resource": "sqlite://x", "constraints": {"target": "t"}});
    // Unsigned.
    refused(&h, call(&h, Method::POST, "/v1/tokens", false, &ok.to_string()), StatusCode::UNAUTHORIZED, "signature_required").await;
    // Malformed requests.
    for bad in [
        json!({"action": "db.read"}),
        json!({"action": "db.read", "resource": "x", "extra": 1}),
        json!({"action": "", "resource": "x"}),
        json!({"action": "a", "resource": "x", "constraints": {"sql": "x", "sql_sha256": "00"}}),
        json!({"action": "a", "resource": "x", "constraints": {"sql_sha256": "AB".repeat(32)}}),
        json!({"action": "a", "resource": "x", "lifetime_s": 0}),
    ] {
        refused(&h, ask(&h, &key, &bad), StatusCode::BAD_REQUEST, "invalid_token_request").await;
    }
    // One point below the class minimum (a new agent scores 60): the
    // details say by how much and what would help.
    let body = refused(&h, ask(&h, &key, &ok), StatusCode::FORBIDDEN, "score_too_low").await;
    assert_eq!(body["error"]["details"], json!({"score": 60, "required": 61, "class": "default", "raise": ["attest"]}));
    // The verify endpoint's own malformed input.
    refused(&h, call(&h, Method::POST, "/v1/tokens/verify", false, r#"{"token":"x"}"#), StatusCode::BAD_REQUEST, "invalid_token_check")
        .await;
    let check = json!({"token": "v4.public.AAAA", "audience": "a", "action": "b"}).to_string();
    refused(&h, call(&h, Method::POST, "/v1/tokens/verify", false, &check), StatusCode::FORBIDDEN, "token_malformed").await;
    // Escalations: unknown, not an admin.
    refused(&h, call(&h, Method::POST, "/v1/escalations/999/approve", true, ""), StatusCode::NOT_FOUND, "unknown_escalation").await;
    refused(&h, call(&h, Method::POST, "/v1/escalations/999/approve", false, ""), StatusCode::UNAUTHORIZED, "unauthorized").await;
    refused(&h, call(&h, Method::GET, "/v1/escalations", false, ""), StatusCode::UNAUTHORIZED, "unauthorized").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_hold_and_the_grants_view_survives_a_reopening() {
    let store = Arc::new(MemoryStore::new());
    let h = harness(open(&store), Some(&policy(50)), true).await;
    let key = SigningKey::from_bytes(&[4; 32]);
    register(&h, &key).await;
    let agent = AgentId::parse(AGENT).unwrap();
    // 16 pending escalations, then 429.
    let mut escalations = Vec::new();
    for i in 0..16 {
        let (status, body) = ask(&h, &key, &json!({"action": "pay", "resource": format!("bank://{i}")})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        escalations.push(body["escalation"].as_u64().unwrap());
    }
    refused(&h, ask(&h, &key, &json!({"action": "pay", "resource": "bank://x"})), StatusCode::TOO_MANY_REQUESTS, "too_many_tokens").await;
    // 64 live tokens, then 429.
    for i in 0..64 {
        let (status, body) = ask(&h, &key, &json!({"action": "db.read", "resource": format!("sqlite://x/{i}")})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    refused(&h, ask(&h, &key, &json!({"action": "db.read", "resource": "sqlite://x"})), StatusCode::TOO_MANY_REQUESTS, "too_many_tokens")
        .await;
    let (status, listing) = call(&h, Method::GET, "/v1/escalations", true, "").await;
    assert_eq!((status, listing["pending"].as_array().unwrap().len()), (StatusCode::OK, 16));
    let (status, _) = call(&h, Method::POST, &format!("/v1/escalations/{}/deny", escalations[0]), true, r#"{"note":"no"}"#).await;
    assert_eq!(status, StatusCode::OK);

    // Reopened, the view holds the same live tokens and escalations.
    let live = h.log.grants().live_tokens(&agent, h.log.now_ms());
    let pending: Vec<u64> = h.log.grants().pending().iter().map(|e| e.index).collect();
    let denied = h.log.grants().escalation(escalations[0]).unwrap();
    assert_eq!((live.len(), pending.len()), (64, 15));
    h.log.shutdown();
    drop(h);
    let reopened = open(&store);
    assert_eq!(reopened.grants().live_tokens(&agent, reopened.now_ms()), live);
    assert_eq!(reopened.grants().pending().iter().map(|e| e.index).collect::<Vec<_>>(), pending);
    assert_eq!(reopened.grants().escalation(escalations[0]), Some(denied));
    reopened.shutdown();
}
