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
    let key = SigningKey::from_bytes(&[1; 32]);
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

    // A signed request is remembered for twice the window, then forgotten.
    log.admit_signed_request(&id(AGENT), b"signed request").unwrap();
    clock.advance(REQUEST_WINDOW * 2 - Duration::from_millis(1));
    assert_eq!(log.admit_signed_request(&id(AGENT), b"signed request"), Err(RequestError::Replayed));
    clock.advance(Duration::from_millis(1));
    assert_eq!(log.admit_signed_request(&id(AGENT), b"signed request"), Ok(()));
}
