//! Time driven by hand: integrated times, attestation nonces and the
//! signed-request window all read the log's clock.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use ledger_core::clock::ManualClock;
use ledger_core::conformance::{entry, signer};
use ledger_core::nonces::NonceError;
use ledger_core::requests::{RequestError, REQUEST_WINDOW};
use ledger_core::store::MemoryStore;
use ledger_core::{Error, Log, LogConfig};
use verifier::entry::passport::Passport;
use verifier::AgentId;

const ORIGIN: &str = "test.example/log";
const AGENT: &str = "spiffe://test.example/agent/a";

/// An agent id, parsed once where the test names it.
fn id(agent: &str) -> AgentId {
    agent.parse().unwrap()
}

/// Registers `AGENT` with the key made from `seed`, and returns the key.
async fn register(log: &Log, seed: [u8; 32]) -> SigningKey {
    let key = SigningKey::from_bytes(&seed);
    let passport = Passport {
        agent: AGENT.parse().unwrap(),
        public_key: key.verifying_key(),
        code_hash: [0xc0; 32],
        model_hash: None,
        owner: "o".into(),
        purpose: "p".into(),
        tpm_ak: None,
    };
    log.register(passport).await.unwrap();
    key
}

fn open(clock: &Arc<ManualClock>) -> Log {
    let config = LogConfig { origin: ORIGIN.into(), clock: clock.clone(), nonce_ttl: Duration::from_secs(60), ..LogConfig::default() };
    Log::open(Arc::new(MemoryStore::new()), signer(), config, None).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integrated_time_follows_the_clock_and_never_goes_backwards() {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let log = Log::open(
        Arc::new(MemoryStore::new()),
        signer(),
        LogConfig { origin: ORIGIN.into(), agent_auth: false, clock: clock.clone(), ..LogConfig::default() },
        None,
    )
    .unwrap();
    let time = |appended: Vec<ledger_core::Appended>| appended[0].integrated_time;
    assert_eq!(time(log.append(vec![entry(0)]).await.unwrap()), 1_700_000_000_000);
    clock.set(1_600_000_000_000);
    assert_eq!(time(log.append(vec![entry(1)]).await.unwrap()), 1_700_000_000_000, "the clock went back, the log did not");
    assert_eq!(log.head().integrated_time, 1_700_000_000_000);
    clock.set(1_700_000_005_000);
    assert_eq!(time(log.append(vec![entry(2)]).await.unwrap()), 1_700_000_005_000);
    let leaf: serde_json::Value = serde_json::from_slice(&log.entry(2).unwrap()).unwrap();
    assert_eq!(leaf["integrated_time"], 1_700_000_005_000u64);
    assert_eq!(log.now_ms(), 1_700_000_005_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nonce_expires_and_a_signed_request_is_forgotten_when_the_clock_says_so() {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let log = open(&clock);
    let key = register(&log, [1; 32]).await;
    let attestation = |nonce: [u8; 32], seq: u64| {
        let mut att = serde_json::json!({"kind": "attestation", "agent": AGENT, "nonce": B64.encode(nonce),
            "code_hash": "c0".repeat(32), "runtime": {"os": "linux", "version": "6", "image_digest": "sha256:x"},
            "behaviour": {"digest": "00".repeat(32), "calls": 1, "distinct": 1}, "evidence": {"type": "software"}, "seq": seq});
        verifier::entry::signing::sign_entry(att.as_object_mut().unwrap(), ORIGIN, &key);
        att
    };
    let stale = log.issue_nonce(&id(AGENT)).unwrap();
    clock.advance(Duration::from_secs(61));
    assert!(matches!(log.attest(&attestation(stale, 1)).await, Err(Error::Nonce(NonceError::Expired))));
    let fresh = log.issue_nonce(&id(AGENT)).unwrap();
    clock.advance(Duration::from_secs(59));
    // Within its TTL the nonce is taken and the attestation recorded
    // (whatever its verdict).
    let recorded = log.attest(&attestation(fresh, 1)).await;
    assert!(matches!(recorded, Ok(_) | Err(Error::AttestationFailed { .. })), "{recorded:?}");

    // A signed request is remembered until its timestamp leaves the
    // window, then forgotten (and refused as stale anyway).
    let sign = |ts: u64| {
        let message = verifier::entry::signing::request_message(ORIGIN, AGENT, "POST", "/x", ts, b"body");
        B64.encode(ed25519_dalek::Signer::sign(&key, &message).to_bytes())
    };
    let ts = log.now_ms();
    let auth = |ts: u64, sig: &str| log.authenticate_request(AGENT, "POST", "/x", ts, sig, b"body");
    assert_eq!(auth(ts, &sign(ts)), Ok(id(AGENT)));
    clock.advance(REQUEST_WINDOW);
    assert_eq!(auth(ts, &sign(ts)), Err(RequestError::Replayed));
    clock.advance(Duration::from_millis(1));
    assert_eq!(auth(ts, &sign(ts)), Err(RequestError::Stale { window: REQUEST_WINDOW }));
}

/// The wall clock set back by an hour, then forward again: a request
/// accepted before the step is never accepted twice, and the requests
/// signed after the step are forgotten a window after their timestamps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backward_clock_step_reopens_no_replay() {
    let t0 = 1_700_000_000_000;
    let clock = Arc::new(ManualClock::new(t0));
    let log = open(&clock);
    let key = register(&log, [2; 32]).await;
    let auth = |ts: u64| {
        let message = verifier::entry::signing::request_message(ORIGIN, AGENT, "GET", "/y", ts, b"");
        let sig = B64.encode(ed25519_dalek::Signer::sign(&key, &message).to_bytes());
        log.authenticate_request(AGENT, "GET", "/y", ts, &sig, b"")
    };
    assert!(auth(t0).is_ok());
    clock.set(t0 - 3_600_000);
    assert_eq!(auth(t0), Err(RequestError::Stale { window: REQUEST_WINDOW }), "outside the window after the step");
    let after = log.now_ms();
    assert!(auth(after).is_ok());
    assert_eq!(auth(after), Err(RequestError::Replayed));
    clock.advance(REQUEST_WINDOW + Duration::from_millis(1));
    assert_eq!(auth(after), Err(RequestError::Stale { window: REQUEST_WINDOW }));
    // The clock put right: the request of before the step is still
    // remembered.
    clock.set(t0 + 1);
    assert_eq!(auth(t0), Err(RequestError::Replayed));
}
