//! Agent routes through `app()` with `oneshot`, as the server runs them
//! (signatures required): registration, the passport with its proof,
//! signed entries, rotation, retirement, nonces and attestations. Every
//! refusal checks its status, its code and that the log did not change;
//! failing attestations check that exactly one entry (the evidence) was
//! recorded.
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
use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::EncodePublicKey as _;
use serde_json::{json, Map, Value};
use tower::ServiceExt as _;
use verifier::entry::signing::{hex, rotation, sign_entry};
use verifier::note::{NoteSigner, NoteVerifier};
use verifier::tlog_proof::TlogProof;
use verifier::tpm::{encode_quote as quote, expected_pcr_digest};
use verifier::AgentId;

const ORIGIN: &str = "agents.example/log";
const TOKEN: &str = "agents-admin-token-0123456789";
const AGENT: &str = "spiffe://example.org/agent/billing";
const AGENT_PATH: &str = "spiffe%3A%2F%2Fexample.org%2Fagent%2Fbilling";
const CODE: [u8; 32] = [0xc0; 32];

struct H {
    app: Router,
    log: Arc<Log>,
}

fn harness(nonce_ttl: Duration) -> H {
    let signer = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[9; 32])).unwrap();
    let config = LogConfig {
        origin: ORIGIN.into(),
        trust_domain: Some("example.org".into()),
        nonce_ttl,
        openings_key: Some(ledger_core::sealing::OpeningsKey::from_bytes(&[4; 32])),
        ..LogConfig::default()
    };
    let log = Arc::new(Log::open(Arc::new(MemoryStore::new()), signer, config, None).unwrap());
    let limits = Limits {
        max_entry_bytes: 65535,
        max_entry_request_bytes: 140_000,
        max_batch_entries: 100,
        max_batch_request_bytes: 1 << 20,
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
    H { app: app(state), log }
}

async fn call(h: &H, method: Method, uri: &str, admin: bool, body: Option<&Value>) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri).header(header::CONTENT_TYPE, "application/json");
    if admin {
        req = req.header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
    }
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let resp = h.app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes: Bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// Asserts an error and that the log did not change.
async fn refused(h: &H, (status, body): (StatusCode, Value), want: StatusCode, code: &str) {
    let size = h.log.head().size;
    assert_eq!((status, body["error"]["code"].as_str()), (want, Some(code)), "{body}");
    assert_eq!(h.log.head().size, size);
}

fn passport(key: &SigningKey, ak: Option<&[u8]>) -> Value {
    let mut p = json!({"agent": AGENT, "public_key": B64.encode(key.verifying_key().as_bytes()), "code_hash": hex(&CODE),
        "owner": "payments", "purpose": "pays invoices"});
    if let Some(ak) = ak {
        p["tpm_ak"] = Value::from(B64.encode(ak));
    }
    p
}

fn signed(mut v: Value, seq: u64, key: &SigningKey) -> Value {
    let obj = v.as_object_mut().unwrap();
    obj.insert("agent".into(), AGENT.into());
    obj.insert("seq".into(), seq.into());
    sign_entry(obj, ORIGIN, key);
    v
}

fn action(seq: u64, key: &SigningKey) -> Value {
    signed(json!({"kind": "action", "action": "pay", "resource": format!("invoices/{seq}")}), seq, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_sign_rotate_retire() {
    let h = harness(Duration::from_secs(60));
    let key = SigningKey::from_bytes(&[1; 32]);
    refused(&h, call(&h, Method::POST, "/v1/agents", false, Some(&passport(&key, None))).await, StatusCode::UNAUTHORIZED, "unauthorized")
        .await;
    let (status, v) = call(&h, Method::POST, "/v1/agents", true, Some(&passport(&key, None))).await;
    assert_eq!((status, v["index"].as_u64()), (StatusCode::CREATED, Some(0)), "{v}");
    refused(&h, call(&h, Method::POST, "/v1/agents", true, Some(&passport(&key, None))).await, StatusCode::CONFLICT, "agent_exists").await;
    let mut elsewhere = passport(&key, None);
    elsewhere["agent"] = "spiffe://other.org/agent/x".into();
    refused(&h, call(&h, Method::POST, "/v1/agents", true, Some(&elsewhere)).await, StatusCode::BAD_REQUEST, "wrong_trust_domain").await;
    let mut bad = passport(&key, None);
    bad["code_hash"] = "xyz".into();
    refused(&h, call(&h, Method::POST, "/v1/agents", true, Some(&bad)).await, StatusCode::BAD_REQUEST, "invalid_passport").await;

    // The passport, with a tlog-proof anyone can check.
    let (status, v) = call(&h, Method::GET, &format!("/v1/agents/{AGENT_PATH}"), false, None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!((v["passport"]["code_hash"].as_str(), v["key_index"].as_u64()), (Some(hex(&CODE).as_str()), Some(0)));
    let proof = TlogProof::parse(v["proof"].as_str().unwrap()).unwrap();
    proof.verify(&NoteVerifier::new(h.log.verifier_key()), None).unwrap();
    refused(
        &h,
        call(&h, Method::GET, "/v1/agents/spiffe%3A%2F%2Fexample.org%2Fagent%2Fnobody", false, None).await,
        StatusCode::NOT_FOUND,
        "unknown_agent",
    )
    .await;

    // Signed actions and every refusal.
    let (status, _) = call(&h, Method::POST, "/v1/entries", false, Some(&action(1, &key))).await;
    assert_eq!(status, StatusCode::CREATED);
    let mut forged = action(2, &key);
    forged["resource"] = "invoices/forged".into();
    let mut unsigned = action(2, &key);
    unsigned.as_object_mut().unwrap().remove("signature");
    let mut ghost_obj: Map<String, Value> = action(2, &key).as_object().unwrap().clone();
    ghost_obj.insert("agent".into(), "spiffe://example.org/agent/ghost".into());
    sign_entry(&mut ghost_obj, ORIGIN, &key);
    let cases = [
        (forged, StatusCode::UNAUTHORIZED, "bad_signature"),
        (action(2, &SigningKey::from_bytes(&[2; 32])), StatusCode::UNAUTHORIZED, "bad_signature"),
        (unsigned, StatusCode::BAD_REQUEST, "invalid_entry"),
        (json!({"kind": "action", "agent": AGENT, "action": "a", "resource": "r"}), StatusCode::UNAUTHORIZED, "signature_required"),
        (action(1, &key), StatusCode::CONFLICT, "sequence_replayed"),
        (Value::Object(ghost_obj), StatusCode::FORBIDDEN, "unknown_agent"),
    ];
    for (body, status, code) in cases {
        refused(&h, call(&h, Method::POST, "/v1/entries", false, Some(&body)).await, status, code).await;
    }

    // Rotation: the rotated-away key is refused.
    let new_key = SigningKey::from_bytes(&[3; 32]);
    let (status, v) = call(&h, Method::POST, "/v1/entries", false, Some(&Value::Object(rotation(ORIGIN, AGENT, 2, &key, &new_key)))).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    refused(&h, call(&h, Method::POST, "/v1/entries", false, Some(&action(3, &key))).await, StatusCode::UNAUTHORIZED, "bad_signature")
        .await;
    assert_eq!(call(&h, Method::POST, "/v1/entries", false, Some(&action(3, &new_key))).await.0, StatusCode::CREATED);
    let (_, v) = call(&h, Method::GET, &format!("/v1/agents/{AGENT_PATH}"), false, None).await;
    assert_eq!((v["key_index"].as_u64(), v["last_seq"].as_u64()), (Some(2), Some(3)));
    assert_eq!(v["passport"]["public_key"], B64.encode(new_key.verifying_key().as_bytes()));

    // Retirement.
    let uri = format!("/v1/agents/{AGENT_PATH}/retire");
    refused(&h, call(&h, Method::POST, &uri, false, Some(&json!({"reason": "done"}))).await, StatusCode::UNAUTHORIZED, "unauthorized")
        .await;
    assert_eq!(call(&h, Method::POST, &uri, true, Some(&json!({"reason": "done"}))).await.0, StatusCode::CREATED);
    refused(&h, call(&h, Method::POST, "/v1/entries", false, Some(&action(4, &new_key))).await, StatusCode::FORBIDDEN, "agent_retired")
        .await;
    let resp = h
        .app
        .clone()
        .oneshot(signed_raw(
            &format!("/v1/agents/{AGENT_PATH}/nonce"),
            String::new(),
            AGENT,
            &new_key,
            RequestSignature::next_timestamp_ms(),
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN, "a retired agent gets no nonce");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attestations_over_http() {
    let h = harness(Duration::from_millis(300));
    let key = SigningKey::from_bytes(&[1; 32]);
    let ak = p256::ecdsa::SigningKey::from_slice(&[5; 32]).unwrap();
    let spki = ak.verifying_key().to_public_key_der().unwrap().as_bytes().to_vec();
    assert_eq!(call(&h, Method::POST, "/v1/agents", true, Some(&passport(&key, Some(&spki)))).await.0, StatusCode::CREATED);
    let nonce_uri = format!("/v1/agents/{AGENT_PATH}/nonce");
    let claims = |nonce: &str, code: [u8; 32]| {
        json!({"kind": "attestation", "nonce": nonce, "code_hash": hex(&code),
            "runtime": {"os": "linux", "version": "6.1", "image_digest": "sha256:abc"},
            "behaviour": {"digest": hex(&[1; 32]), "calls": 10, "distinct": 3}})
    };
    let attestation = |nonce: &str, code: [u8; 32], evidence: Value, seq: u64| {
        let mut c = claims(nonce, code);
        c["evidence"] = evidence;
        signed(c, seq, &key)
    };
    // The qualifying data an honest client quotes for these claims.
    let bound = |nonce: &str, code: [u8; 32], seq: u64, key_in_force: &SigningKey| {
        let mut c = claims(nonce, code);
        c["agent"] = AGENT.into();
        c["seq"] = seq.into();
        let raw: [u8; 32] = B64.decode(nonce).unwrap().try_into().unwrap();
        verifier::tpm::qualifying_data(&raw, key_in_force.verifying_key().as_bytes(), c.as_object().unwrap())
    };
    let tpm = |q: Vec<u8>, signed_bytes: Option<Vec<u8>>| {
        let s: p256::ecdsa::Signature = ak.sign(signed_bytes.as_deref().unwrap_or(&q));
        json!({"type": "tpm", "quote": B64.encode(&q), "signature": B64.encode(s.to_bytes())})
    };
    let mut seq = 0u64;
    let mut next = || {
        seq += 1;
        seq
    };
    let nonce = |v: Value| v["nonce"].as_str().unwrap().to_owned();
    let draw = |h: &H| {
        let req = signed_raw(&nonce_uri, String::new(), AGENT, &key, RequestSignature::next_timestamp_ms());
        let app = h.app.clone();
        async move {
            let resp = app.oneshot(req).await.unwrap();
            let status = resp.status();
            (status, serde_json::from_slice::<Value>(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap())
        }
    };
    // Only the agent draws its nonces.
    refused(&h, call(&h, Method::POST, &nonce_uri, false, None).await, StatusCode::UNAUTHORIZED, "unauthorized").await;

    // The downgrade: this agent's passport has a TPM key, so software
    // evidence is recorded with a failing verdict.
    let (status, n) = draw(&h).await;
    assert_eq!(status, StatusCode::CREATED);
    let n1 = nonce(n);
    let before = h.log.head().size;
    let (status, v) =
        call(&h, Method::POST, "/v1/attestations", false, Some(&attestation(&n1, CODE, json!({"type": "software"}), next()))).await;
    assert_eq!((status, v["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("attestation_failed")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("downgrade:"), "{v}");
    assert_eq!(h.log.head().size, before + 1);
    let leaf: Value = serde_json::from_slice(&h.log.entry(before).unwrap()).unwrap();
    assert_eq!((leaf["verdict"]["evidence"].as_str(), leaf["verdict"]["ok"].as_bool()), (Some("software"), Some(false)), "{leaf}");

    // Refused, nothing recorded: reused nonce, stale nonce, forged signature.
    refused(
        &h,
        call(&h, Method::POST, "/v1/attestations", false, Some(&attestation(&n1, CODE, json!({"type": "software"}), next()))).await,
        StatusCode::CONFLICT,
        "nonce_used",
    )
    .await;
    let n2 = nonce(draw(&h).await.1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    refused(
        &h,
        call(&h, Method::POST, "/v1/attestations", false, Some(&attestation(&n2, CODE, json!({"type": "software"}), next()))).await,
        StatusCode::CONFLICT,
        "nonce_expired",
    )
    .await;
    let n3 = nonce(draw(&h).await.1);
    let mut forged = attestation(&n3, CODE, json!({"type": "software"}), next());
    forged["runtime"]["os"] = "plan9".into();
    refused(&h, call(&h, Method::POST, "/v1/attestations", false, Some(&forged)).await, StatusCode::UNAUTHORIZED, "bad_signature").await;

    // Recorded with a failing verdict (evidence): exactly one entry each.
    // `make(nonce, seq)` gives the quote (and the bytes signed, if not the
    // quote) for the attestation submitted with that nonce and seq.
    type Make<'a> = Box<dyn Fn(&str, u64) -> (Vec<u8>, Option<Vec<u8>>) + 'a>;
    let other_key = SigningKey::from_bytes(&[2; 32]);
    let good = |n: &str, s: u64| quote(&bound(n, CODE, s, &key), 16, &expected_pcr_digest(&CODE));
    let cases: Vec<(&str, [u8; 32], Make, &str)> = vec![
        (
            "wrong code hash",
            [0xbb; 32],
            Box::new(|n: &str, s: u64| (quote(&bound(n, [0xbb; 32], s, &key), 16, &expected_pcr_digest(&CODE)), None)),
            "code_hash differs",
        ),
        (
            "quote over the bare nonce (old style)",
            CODE,
            Box::new(|n: &str, _| (quote(&B64.decode(n).unwrap(), 16, &expected_pcr_digest(&CODE)), None)),
            "qualifying data",
        ),
        (
            "quote bound to another agent key",
            CODE,
            Box::new(|n: &str, s: u64| (quote(&bound(n, CODE, s, &other_key), 16, &expected_pcr_digest(&CODE)), None)),
            "qualifying data",
        ),
        (
            "quote bound to another seq",
            CODE,
            Box::new(|n: &str, s: u64| (quote(&bound(n, CODE, s + 1, &key), 16, &expected_pcr_digest(&CODE)), None)),
            "qualifying data",
        ),
        (
            "quote bound to another code_hash claim",
            CODE,
            Box::new(|n: &str, s: u64| (quote(&bound(n, [0xbb; 32], s, &key), 16, &expected_pcr_digest(&CODE)), None)),
            "qualifying data",
        ),
        ("wrong PCR", CODE, Box::new(|n: &str, s: u64| (quote(&bound(n, CODE, s, &key), 15, &expected_pcr_digest(&CODE)), None)), "PCR 16"),
        (
            "tampered quote",
            CODE,
            Box::new(|n: &str, s: u64| {
                let good = good(n, s);
                let mut t = good.clone();
                t[12] ^= 1;
                (t, Some(good))
            }),
            "signature",
        ),
    ];
    let failures = cases.len() + 1;
    for (name, code, make, reason) in cases {
        let n = nonce(draw(&h).await.1);
        let s = next();
        let (q, signed_bytes) = make(&n, s);
        let before = h.log.head().size;
        let (status, v) = call(&h, Method::POST, "/v1/attestations", false, Some(&attestation(&n, code, tpm(q, signed_bytes), s))).await;
        assert_eq!((status, v["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("attestation_failed")), "{name}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(reason), "{name}: {v}");
        assert_eq!(h.log.head().size, before + 1, "{name}: the failed attestation is recorded");
        let leaf: Value = serde_json::from_slice(&h.log.entry(before).unwrap()).unwrap();
        assert_eq!((leaf["verdict"]["evidence"].as_str(), leaf["verdict"]["ok"].as_bool()), (Some("tpm"), Some(false)), "{name}");
    }
    // A quote bound to this nonce, key and claims passes.
    let n = nonce(draw(&h).await.1);
    let s = next();
    let ev = tpm(good(&n, s), None);
    let (status, v) = call(&h, Method::POST, "/v1/attestations", false, Some(&attestation(&n, CODE, ev, s))).await;
    assert_eq!((status, &v["verdict"]), (StatusCode::CREATED, &json!({"evidence": "tpm", "ok": true, "reasons": []})), "{v}");

    let resp = h.app.clone().oneshot(Request::get("/metrics").body(Body::empty()).unwrap()).await.unwrap();
    let text = String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    for line in [
        r#"ledger_attestations_total{verdict="ok"} 1"#.to_owned(),
        format!(r#"ledger_attestations_total{{verdict="failed"}} {failures}"#),
        r#"ledger_agent_refusals_total{code="nonce_used"} 1"#.to_owned(),
        r#"ledger_agent_refusals_total{code="bad_signature"} 1"#.to_owned(),
        "ledger_agents 1".to_owned(),
    ] {
        assert!(text.contains(&line), "{line} missing from\n{text}");
    }
}

/// A signed request: the agent's id, a timestamp and its signature.
fn signed_request(uri: &str, body: &Value, agent: &str, key: &SigningKey, ts: u64) -> Request<Body> {
    signed_raw(uri, body.to_string(), agent, key, ts)
}

fn signed_raw(uri: &str, bytes: String, agent: &str, key: &SigningKey, ts: u64) -> Request<Body> {
    let signed = RequestSignature::sign_at(ORIGIN, &AgentId::parse(agent).unwrap(), key, "POST", uri, ts, bytes.as_bytes());
    let mut req = Request::post(uri).header(header::CONTENT_TYPE, "application/json");
    for (name, value) in signed.headers() {
        req = req.header(name, value);
    }
    req.body(Body::from(bytes)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owning_agent_may_disclose() {
    let h = harness(Duration::from_secs(60));
    let key = SigningKey::from_bytes(&[1; 32]);
    assert_eq!(call(&h, Method::POST, "/v1/agents", true, Some(&passport(&key, None))).await.0, StatusCode::CREATED);
    let other = SigningKey::from_bytes(&[2; 32]);
    let mut other_passport = passport(&other, None);
    other_passport["agent"] = "spiffe://example.org/agent/other".into();
    assert_eq!(call(&h, Method::POST, "/v1/agents", true, Some(&other_passport)).await.0, StatusCode::CREATED);
    let mut entry = json!({"kind": "action", "agent": AGENT, "seq": 1, "action": "pay", "resource": "r", "hidden": {"amount": {"u64": 5}}});
    let obj = entry.as_object_mut().unwrap();
    let openings = verifier::hidden::commit_entry(obj, ORIGIN, &mut rand_core::OsRng, zk::params()).unwrap();
    sign_entry(obj, ORIGIN, &key);
    obj.insert("openings".into(), openings);
    let (status, v) = call(&h, Method::POST, "/v1/entries", false, Some(&entry)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let index = v["index"].as_u64().unwrap();
    let uri = format!("/v1/entries/{index}/disclosures");
    let body = json!({"reveal": ["amount"]});
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let send = |req: Request<Body>| async {
        let resp = h.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let v: Value = serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
        (status, v)
    };
    let (status, v) = send(signed_request(&uri, &body, AGENT, &key, now)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["revealed"]["amount"]["u64"], 5);
    let cases = [
        (signed_request(&uri, &body, AGENT, &key, now - 120_000), StatusCode::UNAUTHORIZED, "stale_request"),
        (signed_request(&uri, &body, AGENT, &other, now), StatusCode::UNAUTHORIZED, "bad_signature"),
        (
            signed_request(&uri, &json!({"reveal": []}), AGENT, &key, now).map(|_| Body::from(body.to_string())),
            StatusCode::UNAUTHORIZED,
            "bad_signature",
        ),
        (signed_request(&uri, &body, "spiffe://example.org/agent/other", &other, now), StatusCode::FORBIDDEN, "not_owner"),
        (signed_request(&uri, &body, "spiffe://example.org/agent/nobody", &other, now), StatusCode::FORBIDDEN, "unknown_agent"),
    ];
    for (req, status, code) in cases {
        let (got, v) = send(req).await;
        assert_eq!((got, v["error"]["code"].as_str()), (status, Some(code)), "{v}");
    }
    refused(&h, call(&h, Method::POST, &uri, false, Some(&body)).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
}
