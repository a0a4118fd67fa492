//! What the SSF tests share: a transmitter (the real router, the real
//! serving loop, RocksDB in a temporary directory) on 127.0.0.1, that can
//! be stopped and started again on the same data and port; a push
//! receiver (a small axum server on 127.0.0.1); a blocking HTTP client; an
//! independent SET verifier; and events made with `Log::revoke`,
//! `Log::reinstate` and a risk entry.

#![allow(clippy::unwrap_used, dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64URL};
use base64::Engine as _;
use ledger_core::{Log, LogConfig, NewEntry};
use ledger_server::metrics::Metrics;
use ledger_server::serve::ServeLimits;
use ledger_server::ssf::{DefaultSubjects, ReceiverToken, SigningAlg, SsfConfig, Transmitter};
use ledger_server::{app, AppState, Limits};
use serde_json::{json, Value};
use sha2::Digest as _;
use tokio::net::TcpListener;
use verifier::entry::{Level, Passport, Revocation, RevocationReason, RiskChange};
use verifier::AgentId;

pub const ADMIN: &str = "ssf-admin-token-0123456789";
/// The receiver `https://rx.example`: manages its streams.
pub const RECEIVER: &str = "receiver-token-0123456789";
/// The same receiver, read-only.
pub const READER: &str = "reader-token-0123456789ab";
/// The same receiver, poll-only.
pub const POLLER: &str = "poller-token-0123456789ab";
/// Another receiver.
pub const OTHER: &str = "other-receiver-token-0123";
pub const AUDIENCE: &str = "https://rx.example";
pub const TRUST_DOMAIN: &str = "example.org";

/// How long a test waits for something that should happen at once.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub fn agent(name: &str) -> AgentId {
    AgentId::parse(&format!("spiffe://{TRUST_DOMAIN}/agent/{name}")).unwrap()
}

/// A transmitter serving on 127.0.0.1.
pub struct Running {
    pub url: String,
    pub addr: SocketAddr,
    pub log: Arc<Log>,
    pub ssf: Arc<Transmitter>,
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Binds `port` on 127.0.0.1 (0: any), retrying while a just-closed
/// listener's port is still taken.
pub async fn bind(port: u16) -> TcpListener {
    for _ in 0..200 {
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)).await {
            return listener;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("port {port} stays taken");
}

/// Starts a transmitter on the log in `dir` (created on first start).
pub async fn start(dir: &Path, port: u16, alg: SigningAlg) -> Running {
    let listener = bind(port).await;
    let addr = listener.local_addr().unwrap();
    let url = format!("http://{addr}");
    let config = LogConfig { origin: "ssf.example/log".into(), trust_domain: Some(TRUST_DOMAIN.into()), ..LogConfig::default() };
    let log = Arc::new(tokio::task::block_in_place(|| Log::open_dir(dir, config, None)).unwrap());
    let tokens = vec![
        ReceiverToken::admin(ADMIN),
        ReceiverToken::parse(&format!("{RECEIVER}:ssf.manage:{AUDIENCE}")).unwrap(),
        ReceiverToken::parse(&format!("{READER}:ssf.read:{AUDIENCE}")).unwrap(),
        ReceiverToken::parse(&format!("{POLLER}:ssf.manage.poll:{AUDIENCE}")).unwrap(),
        ReceiverToken::parse(&format!("{OTHER}:ssf.manage,ssf.read")).unwrap(),
    ];
    let ssf_config = SsfConfig {
        issuer: url.clone(),
        alg,
        default_subjects: DefaultSubjects::All,
        tokens,
        push_timeout: Duration::from_secs(5),
        push_max_backoff: Duration::from_millis(400),
        poll_wait: Duration::from_secs(5),
    };
    let ssf = Arc::new(tokio::task::block_in_place(|| Transmitter::start(Arc::clone(&log), ssf_config, dir)).unwrap());
    let limits = Limits {
        max_entry_bytes: 65_535,
        max_entry_request_bytes: 140_000,
        max_batch_entries: 100,
        max_batch_request_bytes: 1 << 20,
        body_timeout: Duration::from_secs(10),
    };
    let metrics = Arc::new(Metrics::new());
    let events = Arc::new(ledger_server::bus::RevocationBus::new(Arc::clone(&log), Default::default(), Arc::clone(&metrics)));
    let state = AppState {
        log: Arc::clone(&log),
        metrics,
        limits,
        admin: Some(ledger_server::auth::AdminToken::new(ADMIN).unwrap()),
        events,
        ssf: Some(Arc::clone(&ssf)),
        issuer: None,
        witnessing: None,
    };
    let serve_limits = ServeLimits { header_timeout: Duration::from_secs(10), idle_timeout: Duration::from_secs(30), max_connections: 64 };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let stopping = Arc::clone(&ssf);
    let served = tokio::spawn(ledger_server::serve::serve(listener, app(state), serve_limits, async move {
        let _ = stopped.await;
        stopping.stop();
    }));
    Running { url, addr, log, ssf, stop, served }
}

impl Running {
    /// Stops serving and delivering, and closes the log (its RocksDB lock
    /// is free afterwards).
    pub async fn stop(self) {
        let Running { log, ssf, stop, served, .. } = self;
        let _ = stop.send(());
        served.await.unwrap().unwrap();
        ssf.shutdown().await;
        drop(ssf);
        log.shutdown();
        for _ in 0..400 {
            if Arc::strong_count(&log) == 1 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the log is still held after the server stopped");
    }

    /// Registers `name`.
    pub async fn register(&self, name: &str) -> AgentId {
        let id = agent(name);
        let seed: [u8; 32] = sha2::Sha256::digest(id.as_str().as_bytes()).into();
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let passport = json!({
            "agent": id.as_str(),
            "public_key": STANDARD.encode(key.verifying_key().as_bytes()),
            "code_hash": "c0".repeat(32),
            "owner": "ssf tests",
            "purpose": "testing",
        });
        self.log.register(Passport::from_object(passport.as_object().unwrap()).unwrap()).await.unwrap();
        id
    }

    /// Quarantines `agent`: a revocation entry. Returns its index.
    pub async fn revoke(&self, agent: &AgentId, note: &str) -> u64 {
        let revocation = Revocation {
            agent: agent.clone(),
            reason: RevocationReason::Quarantine,
            score: 0,
            threshold: 30,
            causes: Vec::new(),
            policy_index: None,
            decision: None,
            note: Some(note.into()),
            tokens: Vec::new(),
        };
        self.log.revoke(&revocation).await.unwrap().index
    }

    /// Reinstates `agent`. Returns the entry's index.
    pub async fn reinstate(&self, agent: &AgentId) -> u64 {
        // After a successful attestation, as a reinstatement needs.
        let seed: [u8; 32] = sha2::Sha256::digest(agent.as_str().as_bytes()).into();
        ledger_core::conformance::attest_software(&self.log, agent, &ed25519_dalek::SigningKey::from_bytes(&seed)).await.unwrap();
        self.log.reinstate(agent, None).await.unwrap().index
    }

    /// Appends a risk-level change of `agent`. Returns its index.
    pub async fn risk(&self, agent: &AgentId, previous: Level, current: Level) -> u64 {
        let decision = verifier::entry::Decision { as_of_index: 0, decided_at: 0 };
        let risk = RiskChange { agent: agent.clone(), previous, current, score: 42, policy_index: None, decision };
        let entry = NewEntry::from_log(&risk.to_object(), None, None).unwrap();
        self.log.append(vec![entry]).await.unwrap()[0].index
    }

    /// A request to the transmitter.
    pub async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Answer {
        call(method, &format!("{}{path}", self.url), token, body.map(|b| b.to_string()), "application/json").await
    }

    /// A request with a raw body and content type.
    pub async fn call_raw(&self, method: &str, path: &str, token: Option<&str>, body: &str, content_type: &str) -> Answer {
        call(method, &format!("{}{path}", self.url), token, Some(body.to_owned()), content_type).await
    }

    /// The JWK Set, read from the `jwks_uri` the metadata names.
    pub async fn jwks(&self) -> Value {
        let metadata = self.call("GET", "/.well-known/ssf-configuration", None, None).await;
        let uri = metadata.body["jwks_uri"].as_str().unwrap().to_owned();
        call("GET", &uri, None, None, "application/json").await.body
    }

    /// Creates a stream as `token`; returns its configuration.
    pub async fn create(&self, token: &str, body: Value) -> Value {
        let answer = self.call("POST", "/ssf/stream", Some(token), Some(body)).await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        answer.body
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The error code of an error answer.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("-")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

/// A blocking request (ureq), on the blocking pool.
pub async fn call(method: &str, url: &str, token: Option<&str>, body: Option<String>, content_type: &str) -> Answer {
    let (method, url, token, content_type) = (method.to_owned(), url.to_owned(), token.map(str::to_owned), content_type.to_owned());
    tokio::task::spawn_blocking(move || {
        let http: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(PATIENCE)).build().into();
        let mut request = ureq::http::Request::builder().method(method.as_str()).uri(&url);
        if let Some(token) = &token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let mut response = match body {
            Some(body) => http.run(request.header("content-type", content_type).body(body).unwrap()),
            None => http.run(request.body(()).unwrap()),
        }
        .unwrap();
        let status = response.status().as_u16();
        let mut headers = HeaderMap::new();
        for (name, value) in response.headers() {
            headers.insert(name.as_str().parse::<header::HeaderName>().unwrap(), value.as_bytes().try_into().unwrap());
        }
        let text = response.body_mut().read_to_string().unwrap();
        let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        Answer { status, headers, body }
    })
    .await
    .unwrap()
}

/// What a push receiver got and how it answers.
#[derive(Clone, Default)]
pub struct Inbox {
    /// SETs taken (answered 202), in arrival order.
    pub sets: Arc<Mutex<Vec<String>>>,
    /// `Authorization` of each push.
    pub authorizations: Arc<Mutex<Vec<String>>>,
    /// Answer the next push 400 `invalid_key`, once.
    pub refuse_next: Arc<AtomicBool>,
}

impl Inbox {
    pub fn taken(&self) -> Vec<String> {
        self.sets.lock().unwrap().clone()
    }

    /// Waits until `n` SETs were taken.
    pub async fn wait_for(&self, n: usize) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let sets = self.taken();
            if sets.len() >= n {
                return sets;
            }
            assert!(tokio::time::Instant::now() < deadline, "{} SETs arrived, {n} expected", sets.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn receive(State(inbox): State<Inbox>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if content_type != "application/secevent+jwt" {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"err": "invalid_request", "description": "content type"}))).into_response();
    }
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    inbox.authorizations.lock().unwrap().push(authorization);
    if inbox.refuse_next.swap(false, Ordering::SeqCst) {
        let error = json!({"err": "invalid_key", "description": "the receiver refuses this SET"});
        return (StatusCode::BAD_REQUEST, axum::Json(error)).into_response();
    }
    inbox.sets.lock().unwrap().push(String::from_utf8(body.to_vec()).unwrap());
    StatusCode::ACCEPTED.into_response()
}

/// A push receiver on 127.0.0.1.
pub struct Receiver {
    pub addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start(port: u16, inbox: &Inbox) -> Receiver {
        let listener = bind(port).await;
        let addr = listener.local_addr().unwrap();
        let router = Router::new().route("/events", post(receive)).with_state(inbox.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Receiver { addr, stop, served }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}/events", self.addr)
    }

    /// Stops it: pushes are refused (connection refused) until it starts
    /// again.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.served.await.unwrap();
    }
}

/// Verifies a SET's JWS signature with the JWK Set, independently of the
/// transmitter's JOSE library: RS256 with the `rsa` crate from the JWK's
/// `n` and `e`, ES256 with `p256`, EdDSA with `ed25519-dalek`. Checks the
/// header (`typ: secevent+jwt`, `alg`, `kid`) and returns the claims.
pub fn verify_set(set: &str, jwks: &Value) -> Value {
    let parts: Vec<&str> = set.split('.').collect();
    assert_eq!(parts.len(), 3, "a compact JWS");
    let json = |part: &str| -> Value { serde_json::from_slice(&B64URL.decode(part).unwrap()).unwrap() };
    let header = json(parts[0]);
    assert_eq!(header["typ"], "secevent+jwt");
    let kid = header["kid"].as_str().unwrap();
    let jwk = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid).expect("the kid is in the JWK Set");
    let alg = header["alg"].as_str().unwrap();
    assert_eq!(jwk["alg"], alg);
    let input = format!("{}.{}", parts[0], parts[1]);
    let signature = B64URL.decode(parts[2]).unwrap();
    let member = |name: &str| B64URL.decode(jwk[name].as_str().unwrap()).unwrap();
    match alg {
        "RS256" => {
            use rsa::BigUint;
            let key = rsa::RsaPublicKey::new(BigUint::from_bytes_be(&member("n")), BigUint::from_bytes_be(&member("e"))).unwrap();
            // EMSA-PKCS1-v1_5 DigestInfo prefix of SHA-256 (RFC 8017 §9.2).
            let prefix = [0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20];
            let scheme = rsa::Pkcs1v15Sign { hash_len: Some(32), prefix: Box::new(prefix) };
            key.verify(scheme, &sha2::Sha256::digest(input.as_bytes()), &signature).expect("RS256 signature verifies");
        }
        "ES256" => {
            use p256::ecdsa::signature::Verifier as _;
            let (x, y) = (member("x"), member("y"));
            let point = p256::EncodedPoint::from_affine_coordinates(x.as_slice().into(), y.as_slice().into(), false);
            let key = p256::ecdsa::VerifyingKey::from_encoded_point(&point).unwrap();
            let signature = p256::ecdsa::Signature::from_slice(&signature).unwrap();
            key.verify(input.as_bytes(), &signature).expect("ES256 signature verifies");
        }
        "EdDSA" => {
            let key = ed25519_dalek::VerifyingKey::from_bytes(&member("x").try_into().unwrap()).unwrap();
            let signature = ed25519_dalek::Signature::from_slice(&signature).unwrap();
            key.verify_strict(input.as_bytes(), &signature).expect("EdDSA signature verifies");
        }
        other => panic!("unexpected alg {other}"),
    }
    json(parts[1])
}

/// The event type URI and object of a SET's claims (one event per SET).
pub fn event(claims: &Value) -> (String, Value) {
    let events = claims["events"].as_object().unwrap();
    assert_eq!(events.len(), 1, "one event per SET");
    let (uri, event) = events.iter().next().unwrap();
    (uri.clone(), event.clone())
}

pub const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
pub const ACCOUNT_DISABLED: &str = "https://schemas.openid.net/secevent/risc/event-type/account-disabled";
pub const ACCOUNT_ENABLED: &str = "https://schemas.openid.net/secevent/risc/event-type/account-enabled";
pub const RISK_LEVEL_CHANGE: &str = "https://schemas.openid.net/secevent/caep/event-type/risk-level-change";
pub const VERIFICATION: &str = "https://schemas.openid.net/secevent/ssf/event-type/verification";
pub const STREAM_UPDATED: &str = "https://schemas.openid.net/secevent/ssf/event-type/stream-updated";
