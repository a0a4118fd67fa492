//! Agent-signed requests (nonce draws, disclosures) through `app()` with
//! `oneshot`: each signed request is accepted once, a signature binds the
//! log origin and the agent id, an agent has a request budget, one agent's
//! nonce draws never evict another agent's nonce, and the nonce route reads
//! a bounded, timed body (issue 8, findings 8 and 10); admin routes
//! authenticate before reading a body, and every error body carries a
//! known code.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, Request, StatusCode};
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
use verifier::note::NoteSigner;
use verifier::AgentId;

const ORIGIN: &str = "signed.example/log";
const TOKEN: &str = "signed-admin-token-0123456789";
const A: &str = "spiffe://example.org/agent/a";
const B: &str = "spiffe://example.org/agent/b";
/// Registered with A's key: a request A signed must not pass as this agent.
const SHARED: &str = "spiffe://example.org/agent/shares-a-key";
const CODE: [u8; 32] = [0xc0; 32];

struct H {
    app: Router,
    log: Arc<Log>,
}

fn key_a() -> SigningKey {
    SigningKey::from_bytes(&[1; 32])
}

fn key_b() -> SigningKey {
    SigningKey::from_bytes(&[2; 32])
}

async fn harness() -> H {
    let signer = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[9; 32])).unwrap();
    let config = LogConfig { origin: ORIGIN.into(), trust_domain: Some("example.org".into()), ..LogConfig::default() };
    let log = Arc::new(Log::open(Arc::new(MemoryStore::new()), signer, config, None).unwrap());
    let limits = Limits {
        max_entry_bytes: 65535,
        max_entry_request_bytes: 140_000,
        max_batch_entries: 100,
        max_batch_request_bytes: 1 << 20,
        body_timeout: Duration::from_millis(300),
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
    let h = H { app: app(state), log };
    for (agent, key) in [(A, key_a()), (B, key_b()), (SHARED, key_a())] {
        let passport = json!({"agent": agent, "public_key": B64.encode(key.verifying_key().as_bytes()), "code_hash": hex(&CODE),
            "owner": "tests", "purpose": "signed requests"});
        let req = Request::post("/v1/agents")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .body(Body::from(passport.to_string()))
            .unwrap();
        let (status, v) = send(&h, req).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
    }
    h
}

async fn send(h: &H, req: Request<Body>) -> (StatusCode, Value) {
    let resp = h.app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes: Bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// What an agent signs: which log and which agent the signature is for,
/// and the request.
struct Signed<'a> {
    origin: &'a str,
    signer: &'a str,
    key: SigningKey,
    ts: u64,
}

impl Signed<'_> {
    fn by(signer: &str, key: SigningKey) -> Signed<'_> {
        Signed { origin: ORIGIN, signer, key, ts: RequestSignature::next_timestamp_ms() }
    }

    /// The request sent as `sent_as` (the `x-agent-id` header).
    fn request(&self, uri: &str, body: &str, sent_as: &str) -> Request<Body> {
        let signer = AgentId::parse(self.signer).unwrap();
        let signed = RequestSignature::sign_at(self.origin, &signer, &self.key, "POST", uri, self.ts, body.as_bytes());
        let signed = RequestSignature { agent: AgentId::parse(sent_as).unwrap(), ..signed };
        let mut req = Request::post(uri).header(header::CONTENT_TYPE, "application/json");
        for (name, value) in signed.headers() {
            req = req.header(name, value);
        }
        req.body(Body::from(body.to_owned())).unwrap()
    }
}

fn nonce_uri(agent: &str) -> String {
    format!("/v1/agents/{}/nonce", agent.replace(':', "%3A").replace('/', "%2F"))
}

/// Appends a signed action of `agent`; returns its index.
async fn act(h: &H, agent: &str, key: &SigningKey, seq: u64) -> u64 {
    let mut entry = json!({"kind": "action", "agent": agent, "action": "pay", "resource": "invoices/1", "seq": seq});
    sign_entry(entry.as_object_mut().unwrap(), ORIGIN, key);
    let req = Request::post("/v1/entries").header(header::CONTENT_TYPE, "application/json").body(Body::from(entry.to_string())).unwrap();
    let (status, v) = send(h, req).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v["index"].as_u64().unwrap()
}

fn code(v: &Value) -> Option<&str> {
    v["error"]["code"].as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_request_is_accepted_once() {
    let h = harness().await;
    // A nonce draw, sent twice: the second is the replay.
    let draw = Signed::by(A, key_a());
    let (status, v) = send(&h, draw.request(&nonce_uri(A), "", A)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (status, v) = send(&h, draw.request(&nonce_uri(A), "", A)).await;
    assert_eq!((status, code(&v)), (StatusCode::CONFLICT, Some("request_replayed")), "{v}");
    // The same request signed again (a new timestamp) is a new request.
    let (status, v) = send(&h, Signed::by(A, key_a()).request(&nonce_uri(A), "", A)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");

    // A disclosure request, sent twice: whatever the first answered (this
    // entry hides nothing), the second is refused as a replay, before the
    // log looks at the entry again.
    let index = act(&h, A, &key_a(), 1).await;
    let size = h.log.head().size;
    let uri = format!("/v1/entries/{index}/disclosures");
    let body = json!({"reveal": ["amount"]}).to_string();
    let disclose = Signed::by(A, key_a());
    let (status, v) = send(&h, disclose.request(&uri, &body, A)).await;
    assert_ne!(status, StatusCode::CONFLICT, "{v}");
    let (status, v) = send(&h, disclose.request(&uri, &body, A)).await;
    assert_eq!((status, code(&v)), (StatusCode::CONFLICT, Some("request_replayed")), "{v}");
    assert_eq!(h.log.head().size, size);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_signed_for_another_log_or_agent_is_refused() {
    let h = harness().await;
    // Signed for a staging log that has the same agent and key.
    let staging = Signed { origin: "staging.example/log", ..Signed::by(A, key_a()) };
    let (status, v) = send(&h, staging.request(&nonce_uri(A), "", A)).await;
    assert_eq!((status, code(&v)), (StatusCode::UNAUTHORIZED, Some("bad_signature")), "{v}");

    // SHARED has A's key. A disclosure request A signed, relabelled as
    // SHARED (the owner of the entry), must not pass as SHARED's.
    let index = act(&h, SHARED, &key_a(), 1).await;
    let uri = format!("/v1/entries/{index}/disclosures");
    let body = json!({"reveal": ["amount"]}).to_string();
    let (status, v) = send(&h, Signed::by(A, key_a()).request(&uri, &body, SHARED)).await;
    assert_eq!((status, code(&v)), (StatusCode::UNAUTHORIZED, Some("bad_signature")), "{v}");
    // Signed as SHARED for this log, it is SHARED's own request.
    let (status, v) = send(&h, Signed::by(SHARED, key_a()).request(&uri, &body, SHARED)).await;
    assert_ne!(status, StatusCode::UNAUTHORIZED, "{v}");

    // Refused requests were not remembered: a refused signature fills no
    // replay slot, so a correct request with the same timestamp still works.
    let ts = RequestSignature::next_timestamp_ms();
    let forged = Signed { ts, ..Signed::by(A, key_b()) };
    let (status, v) = send(&h, forged.request(&nonce_uri(A), "", A)).await;
    assert_eq!((status, code(&v)), (StatusCode::UNAUTHORIZED, Some("bad_signature")), "{v}");
    let (status, v) = send(&h, Signed { ts, ..Signed::by(A, key_a()) }.request(&nonce_uri(A), "", A)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_past_its_request_budget_gets_429() {
    let h = harness().await;
    for _ in 0..ledger_core::requests::REQUESTS_PER_AGENT {
        let (status, v) = send(&h, Signed::by(A, key_a()).request(&nonce_uri(A), "", A)).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
    }
    let resp = h.app.clone().oneshot(Signed::by(A, key_a()).request(&nonce_uri(A), "", A)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = resp.headers()[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=120).contains(&retry_after), "{retry_after}");
    // Another agent's budget is its own.
    let (status, v) = send(&h, Signed::by(B, key_b()).request(&nonce_uri(B), "", B)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_nonces_drawn_by_one_agent_do_not_evict_anothers() {
    let h = harness().await;
    let draw = |agent: &'static str, key: SigningKey| {
        let req = Signed::by(agent, key).request(&nonce_uri(agent), "", agent);
        let h = &h;
        async move {
            let (status, v) = send(h, req).await;
            assert_eq!(status, StatusCode::CREATED, "{v}");
            v["nonce"].as_str().unwrap().to_owned()
        }
    };
    let b_nonce = draw(B, key_b()).await;
    let a_first = draw(A, key_a()).await;
    for _ in 0..100 {
        draw(A, key_a()).await;
    }
    let attest = |agent: &str, key: &SigningKey, nonce: &str| {
        let mut att = json!({"kind": "attestation", "agent": agent, "nonce": nonce, "code_hash": hex(&CODE),
            "runtime": {"os": "linux", "version": "6.1", "image_digest": "sha256:abc"},
            "behaviour": {"digest": hex(&[1; 32]), "calls": 1, "distinct": 1}, "evidence": {"type": "software"}, "seq": 1});
        sign_entry(att.as_object_mut().unwrap(), ORIGIN, key);
        Request::post("/v1/attestations").header(header::CONTENT_TYPE, "application/json").body(Body::from(att.to_string())).unwrap()
    };
    let (status, v) = send(&h, attest(B, &key_b(), &b_nonce)).await;
    assert_eq!((status, v["verdict"]["ok"].as_bool()), (StatusCode::CREATED, Some(true)), "{v}");
    // A only pushed out its own oldest nonces.
    let size = h.log.head().size;
    let (status, v) = send(&h, attest(A, &key_a(), &a_first)).await;
    assert_eq!((status, code(&v)), (StatusCode::CONFLICT, Some("nonce_unknown")), "{v}");
    assert_eq!(h.log.head().size, size);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nonce_route_reads_a_bounded_timed_body() {
    let h = harness().await;
    // Refused before anything else: too large...
    let big = "x".repeat(2048);
    let (status, v) = send(&h, Signed::by(A, key_a()).request(&nonce_uri(A), &big, A)).await;
    assert_eq!((status, code(&v)), (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")), "{v}");
    // ...or never finished (the harness allows 300 ms for a body).
    let stalled = Body::from_stream(futures_util::stream::pending::<Result<Bytes, std::io::Error>>());
    let req = Request::post(nonce_uri(A)).header(header::CONTENT_LENGTH, "10").body(stalled).unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), h.app.clone().oneshot(req)).await.unwrap().unwrap();
    assert_eq!(resp.status(), StatusCode::REQUEST_TIMEOUT);
    // An empty signed body is what the route expects.
    let (status, v) = send(&h, Signed::by(A, key_a()).request(&nonce_uri(A), "", A)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_authenticate_before_reading_the_body() {
    let h = harness().await;
    // A body that never arrives: an admin route refuses a caller without
    // the token at once (401), without waiting for it (408).
    for uri in ["/v1/agents", &format!("{}/retire", nonce_uri(A).trim_end_matches("/nonce"))] {
        let stalled = Body::from_stream(futures_util::stream::pending::<Result<Bytes, std::io::Error>>());
        let req =
            Request::post(uri).header(header::CONTENT_TYPE, "application/json").header(header::CONTENT_LENGTH, "10").body(stalled).unwrap();
        let resp = tokio::time::timeout(Duration::from_secs(10), h.app.clone().oneshot(req)).await.unwrap().unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{uri}");
        assert!(resp.headers()[header::WWW_AUTHENTICATE].to_str().unwrap().starts_with("Bearer"), "{uri}");
    }
    // The disclosure route takes the admin or an agent: it reads the body
    // (an agent's signature covers it) before deciding, within the timeout.
    let stalled = Body::from_stream(futures_util::stream::pending::<Result<Bytes, std::io::Error>>());
    let req = Request::post("/v1/entries/0/disclosures")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, "10")
        .body(stalled)
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), h.app.clone().oneshot(req)).await.unwrap().unwrap();
    assert_eq!(resp.status(), StatusCode::REQUEST_TIMEOUT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_body_carries_a_known_code() {
    let h = harness().await;
    let index = act(&h, A, &key_a(), 1).await;
    let cases = [
        (Request::post("/v1/agents").body(Body::from("{}")).unwrap(), StatusCode::UNAUTHORIZED),
        (Request::post(nonce_uri(A)).body(Body::empty()).unwrap(), StatusCode::UNAUTHORIZED),
        (
            Request::post("/v1/hidden/commit").header(header::CONTENT_TYPE, "application/json").body(Body::from("{}")).unwrap(),
            StatusCode::UNAUTHORIZED,
        ),
        (Signed::by(B, key_b()).request(&format!("/v1/entries/{index}/disclosures"), "{}", B), StatusCode::FORBIDDEN),
        (Signed::by(A, key_a()).request(&nonce_uri(B), "", A), StatusCode::FORBIDDEN),
        (Request::get("/v1/entries/x").body(Body::empty()).unwrap(), StatusCode::BAD_REQUEST),
        (Request::get("/v1/agents/spiffe%3A%2F%2Fexample.org%2Fagent%2Fnobody").body(Body::empty()).unwrap(), StatusCode::NOT_FOUND),
    ];
    for (req, status) in cases {
        let uri = req.uri().to_string();
        let (got, v) = send(&h, req).await;
        assert_eq!(got, status, "{uri}: {v}");
        let body: verifier::wire::ErrorResponse = serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{uri}: {e}: {v}"));
        // One table maps codes to statuses; reading an unknown agent is its
        // one exception (404, where writing as one is 403).
        if body.error.code != verifier::wire::ErrorCode::UnknownAgent {
            assert_eq!(ledger_server::error::status_of(body.error.code), status, "{uri}: {v}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_that_is_no_agent_id_is_answered_as_an_unknown_agent() {
    let h = harness().await;
    let size = h.log.head().size;
    // In the signed-request header: the id is parsed once, and a text that
    // is no SPIFFE agent id names no registered agent (403, as before).
    let mut req = Signed::by(A, key_a()).request(&nonce_uri(A), "", A);
    req.headers_mut().insert(verifier::entry::signing::HEADER_AGENT_ID, "not-an-agent".parse().unwrap());
    let (status, v) = send(&h, req).await;
    assert_eq!((status, code(&v)), (StatusCode::FORBIDDEN, Some("unknown_agent")), "{v}");
    assert_eq!(v["error"]["message"], "no passport is registered for not-an-agent");
    // In a read: 404, as for an id nobody registered.
    let (status, v) = send(&h, Request::get("/v1/agents/not-an-agent").body(Body::empty()).unwrap()).await;
    assert_eq!((status, code(&v)), (StatusCode::NOT_FOUND, Some("unknown_agent")), "{v}");
    // In a retirement: the reason is checked first, then the id.
    let retire = |reason: Value| {
        Request::post("/v1/agents/not-an-agent/retire")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .body(Body::from(json!({ "reason": reason }).to_string()))
            .unwrap()
    };
    let (status, v) = send(&h, retire(json!(""))).await;
    assert_eq!((status, code(&v)), (StatusCode::BAD_REQUEST, Some("invalid_retirement")), "{v}");
    assert_eq!(v["error"]["message"], "\"reason\" must be a string of 1 to 1024 characters");
    let (status, v) = send(&h, retire(json!("done"))).await;
    assert_eq!((status, code(&v)), (StatusCode::BAD_REQUEST, Some("invalid_agent_id")), "{v}");
    assert_eq!(h.log.head().size, size);
}
