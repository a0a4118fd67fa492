//! TPM attestation against a real software TPM (swtpm, started here: one
//! per test process, free ports, state in a temporary directory, killed at
//! the end) and the real server binary. Run with `--features tpm`.
//!
//! Quotes are bound to their attestation (`verifier::tpm::qualifying_data`):
//! the server accepts only those, and refuses software evidence from an
//! agent whose passport has a TPM key (the downgrade).
#![cfg(feature = "tpm")]
#![allow(clippy::unwrap_used)]

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use ledger_client::{public_key_b64, Attester, Client, ClientError, Measurements, SoftwareAttester, TpmAttester};
use ledger_e2e::{free_port, Server, TRUST_DOMAIN};
use serde_json::{json, Value};

struct Swtpm {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Swtpm {
    fn start() -> Swtpm {
        let dir = tempfile::tempdir().unwrap();
        let port = loop {
            let p = free_port();
            if p < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
                break p;
            }
        };
        let child = Command::new("swtpm")
            .args(["socket", "--tpm2", "--tpmstate"])
            .arg(format!("dir={}", dir.path().display()))
            .args(["--server", &format!("type=tcp,port={port},bindaddr=127.0.0.1")])
            .args(["--ctrl", &format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1)])
            .args(["--flags", "not-need-init,startup-clear"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("swtpm must be installed (apt-get install swtpm swtpm-tools)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "swtpm did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Swtpm { child, port, _dir: dir }
    }

    fn tcti(&self) -> String {
        format!("swtpm:port={}", self.port)
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Wraps the TPM attester and edits its evidence (given the qualifying
/// data the client computed, and the code hash).
struct Tampered(std::sync::Arc<TpmAttester>, fn(&TpmAttester, &[u8; 32], &[u8; 32]) -> Value);

impl Attester for Tampered {
    fn evidence(&self, qualifying_data: &[u8; 32], code_hash: &[u8; 32]) -> Result<Value, ClientError> {
        Ok((self.1)(&self.0, qualifying_data, code_hash))
    }
}

const CODE: [u8; 32] = [0xc0; 32];

fn evidence(quote: &[u8], sig: &[u8]) -> Value {
    json!({"type": "tpm", "quote": B64.encode(quote), "signature": B64.encode(sig)})
}

#[test]
fn tpm_quotes_attest_and_every_tampering_fails() {
    let tpm = Swtpm::start();
    let attester = std::sync::Arc::new(TpmAttester::new(&tpm.tcti()).unwrap());
    // The AK is re-derived, not re-randomized, on every open.
    assert_eq!(TpmAttester::new(&tpm.tcti()).unwrap().ak_spki_der(), attester.ak_spki_der());

    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let agent = format!("spiffe://{TRUST_DOMAIN}/agent/tpm");
    let key = SigningKey::from_bytes(&[31; 32]);
    let passport = json!({"agent": agent, "public_key": public_key_b64(&key), "code_hash": verifier::entry::signing::hex(&CODE),
        "owner": "t", "purpose": "t", "tpm_ak": attester.ak_b64()});
    Client::register(&server.url, &server.admin_token(), &passport).unwrap();

    // A good quote, checked by the server in pure Rust.
    let client = Client::connect(&server.url, &agent, key.clone()).unwrap();
    let good = Client::connect(&server.url, &agent, key.clone()).unwrap();
    drop(client);
    let ok = good.with_attester(Box::new(TpmAttester::new(&tpm.tcti()).unwrap()), Measurements::new(CODE, None, "sha256:t"));
    let r = ok.attest().unwrap();
    assert_eq!(r.response["verdict"], json!({"evidence": "tpm", "ok": true, "reasons": []}));
    drop(ok);

    type Case = (&'static str, fn(&TpmAttester, &[u8; 32], &[u8; 32]) -> Value, &'static str);
    let cases: Vec<Case> = vec![
        (
            "quote over other qualifying data",
            |t, _, code| {
                t.measure(code).unwrap();
                let (q, s) = t.quote(&[0xee; 32]).unwrap();
                evidence(&q, &s)
            },
            "qualifying data",
        ),
        (
            "wrong PCR value",
            |t, qd, _| {
                t.measure(&[0xbb; 32]).unwrap();
                let (q, s) = t.quote(qd).unwrap();
                evidence(&q, &s)
            },
            "PCR digest",
        ),
        (
            "tampered quote",
            |t, qd, code| {
                t.measure(code).unwrap();
                let (mut q, s) = t.quote(qd).unwrap();
                let last = q.len() - 1;
                q[last] ^= 1;
                evidence(&q, &s)
            },
            "signature",
        ),
        (
            "signature from another key",
            |t, qd, code| {
                t.measure(code).unwrap();
                let (q, _) = t.quote(qd).unwrap();
                use p256::ecdsa::signature::Signer as _;
                let s: p256::ecdsa::Signature = p256::ecdsa::SigningKey::from_slice(&[3; 32]).unwrap().sign(&q);
                evidence(&q, &s.to_bytes())
            },
            "signature",
        ),
    ];
    for (name, tamper, reason) in cases {
        let c = Client::connect(&server.url, &agent, key.clone())
            .unwrap()
            .with_attester(Box::new(Tampered(std::sync::Arc::clone(&attester), tamper)), Measurements::new(CODE, None, "sha256:t"));
        let before: Value = serde_json::from_str(&server.get("/healthz")).unwrap();
        let err = c.attest().unwrap_err();
        let ClientError::Api { status: 422, code, message } = &err else { panic!("{name}: {err:?}") };
        assert_eq!(code, "attestation_failed", "{name}");
        assert!(message.contains(reason), "{name}: {message}");
        // Recorded as evidence, at the next index (the trust view may log a
        // risk-level change after it).
        let at = before["tree_size"].as_u64().unwrap();
        let recorded: Value = serde_json::from_str(&server.get(&format!("/v1/entries/{at}"))).unwrap();
        assert_eq!(recorded["entry"]["kind"], "attestation", "{name}: recorded as evidence");
        assert_eq!(recorded["entry"]["verdict"]["ok"], false, "{name}");
    }

    // The downgrade: the same agent attests without its TPM.
    let soft = Client::connect(&server.url, &agent, key.clone())
        .unwrap()
        .with_attester(Box::new(SoftwareAttester), Measurements::new(CODE, None, "sha256:t"));
    let err = soft.attest().unwrap_err();
    let ClientError::Api { status: 422, code, message } = &err else { panic!("downgrade: {err:?}") };
    assert_eq!(code, "attestation_failed");
    assert!(message.contains("downgrade:"), "{message}");
}

/// Real TPM quotes checked with the verifier's code (what the server and
/// `ledger-verify` run): a quote passes only for the nonce, agent key and
/// claims it was made for; a quote over the bare nonce (the old client)
/// fails.
#[test]
fn real_quotes_are_bound_to_nonce_key_and_claims() {
    use verifier::entry::attestation::attestation_failures;
    use verifier::entry::Passport;
    use verifier::tpm::qualifying_data;

    let tpm = Swtpm::start();
    let attester = TpmAttester::new(&tpm.tcti()).unwrap();
    let key = SigningKey::from_bytes(&[31; 32]);
    let other_key = SigningKey::from_bytes(&[32; 32]);
    let agent = format!("spiffe://{TRUST_DOMAIN}/agent/tpm");
    let passport = Passport {
        agent: agent.parse().unwrap(),
        public_key: key.verifying_key(),
        code_hash: CODE,
        model_hash: None,
        owner: "t".into(),
        purpose: "t".into(),
        tpm_ak: Some(attester.ak_spki_der().to_vec()),
    };
    let nonce = [0x4e; 32];
    let claims = |seq: u64| {
        json!({"kind": "attestation", "agent": agent, "nonce": B64.encode(nonce), "code_hash": verifier::entry::signing::hex(&CODE),
            "runtime": {"os": "linux", "version": "6.1", "image_digest": "sha256:t"},
            "behaviour": {"digest": verifier::entry::signing::hex(&[1; 32]), "calls": 1, "distinct": 1}, "seq": seq})
        .as_object()
        .unwrap()
        .clone()
    };
    let body = claims(7);
    let with_quote = |extra: &[u8]| {
        let (q, s) = attester.quote(extra).unwrap();
        let mut att = body.clone();
        att.insert("evidence".into(), evidence(&q, &s));
        att
    };
    attester.measure(&CODE).unwrap();

    let good = with_quote(&qualifying_data(&nonce, key.verifying_key().as_bytes(), &body));
    assert_eq!(attestation_failures(&good, &passport, &key.verifying_key()), Vec::<String>::new());
    // Checked against another key in force, or with other claims: fails.
    let other: Vec<String> = attestation_failures(&good, &passport, &other_key.verifying_key());
    assert!(other.iter().any(|r| r.contains("qualifying data")), "{other:?}");
    let mut replayed = good.clone();
    replayed.insert("seq".into(), Value::from(8));
    let r = attestation_failures(&replayed, &passport, &key.verifying_key());
    assert!(r.iter().any(|r| r.contains("qualifying data")), "{r:?}");

    let cases: Vec<(&str, [u8; 32])> = vec![
        ("the bare nonce (old style)", nonce),
        ("bound to another agent key", qualifying_data(&nonce, other_key.verifying_key().as_bytes(), &body)),
        ("bound to another seq", qualifying_data(&nonce, key.verifying_key().as_bytes(), &claims(8))),
    ];
    for (name, extra) in cases {
        let att = with_quote(&extra);
        let r = attestation_failures(&att, &passport, &key.verifying_key());
        assert!(r.len() == 1 && r[0].contains("qualifying data"), "{name}: {r:?}");
    }
}

#[test]
fn no_tpm_names_the_tcti_it_tried() {
    let port = free_port();
    let err = TpmAttester::new(&format!("swtpm:port={port}")).unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&format!("swtpm:port={port}")), "{text}");
}
