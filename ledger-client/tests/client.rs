//! The SDK against the real server binary: registration, software
//! attestation, signed actions, rotation, resuming sequence numbers, and
//! the example agent run as a process.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use ledger_client::{public_key_b64, Client, ClientError, Measurements, SoftwareAttester};
use ledger_e2e::{bin_path, Server, TRUST_DOMAIN};
use serde_json::json;

fn passport(agent: &str, key: &SigningKey, code: [u8; 32]) -> serde_json::Value {
    json!({"agent": agent, "public_key": public_key_b64(key), "code_hash": verifier::entry::signing::hex(&code), "owner": "t", "purpose": "t"})
}

#[test]
fn sdk_attests_acts_rotates_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let token = server.admin_token();
    let agent = format!("spiffe://{TRUST_DOMAIN}/agent/sdk");
    let key = SigningKey::from_bytes(&[21; 32]);
    Client::register(&server.url, &token, &passport(&agent, &key, [0xc0; 32])).unwrap();
    let err = Client::register(&server.url, "wrong-token-0123456789", &passport(&agent, &key, [0xc0; 32])).unwrap_err();
    assert!(matches!(err, ClientError::Api { status: 401, .. }), "{err:?}");

    let client = Arc::new(
        Client::connect(&server.url, &agent, key.clone())
            .unwrap()
            .with_attester(Box::new(SoftwareAttester), Measurements::new([0xc0; 32], None, "sha256:t")),
    );
    let r = client.attest().unwrap();
    assert_eq!(r.response["verdict"]["ok"], true);
    client.act("read", "db/1", None).unwrap();
    let errors = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Arc::clone(&errors);
    let timer = client.attest_every(Duration::from_millis(50), move |e| sink.lock().unwrap().push(e.to_string()));
    std::thread::sleep(Duration::from_millis(220));
    timer.stop();
    assert!(errors.lock().unwrap().is_empty(), "{:?}", errors.lock().unwrap());
    client.act_high_risk("transfer", "payments/1", Some(json!({"amount": 5}))).unwrap();

    // A second client for the same agent resumes the sequence numbers.
    let resumed = Client::connect(&server.url, &agent, key.clone()).unwrap();
    resumed.act("read", "db/2", None).unwrap();

    // Rotation: the old key is refused afterwards.
    let client = Arc::try_unwrap(client).unwrap();
    let new_key = SigningKey::from_bytes(&[22; 32]);
    // `client` is behind `resumed` now: its next sequence number is replayed.
    let err = client.act("read", "db/3", None).unwrap_err();
    assert!(matches!(&err, ClientError::Api { status: 409, code, .. } if code == "sequence_replayed"), "{err:?}");
    let client = Client::connect(&server.url, &agent, key.clone()).unwrap();
    client.rotate(new_key.clone()).unwrap();
    client.act("read", "db/4", None).unwrap();
    let stale = Client::connect(&server.url, &agent, key).unwrap();
    let err = stale.act("read", "db/5", None).unwrap_err();
    assert!(matches!(&err, ClientError::Api { status: 401, code, .. } if code == "bad_signature"), "{err:?}");

    // Measurements that do not match the passport: recorded, and an error.
    let liar = Client::connect(&server.url, &agent, new_key)
        .unwrap()
        .with_attester(Box::new(SoftwareAttester), Measurements::new([0xbb; 32], None, "sha256:t"));
    let err = liar.attest().unwrap_err();
    assert!(matches!(&err, ClientError::Api { status: 422, code, .. } if code == "attestation_failed"), "{err:?}");
    liar.act("read", "db/6", None).unwrap();

    // Hidden fields committed by the SDK: the signature covers the leaf, so
    // the offline check verifies every signature of the agent.
    let hidden = liar
        .append(json!({"kind": "action", "action": "pay", "resource": "invoices/8",
            "hidden": {"amount": {"u64": 700, "prove": [{"le": 1000}]}, "customer": {"str": "ACME"}}}))
        .unwrap();
    // The same through the log's commit route (the log commits, proves and
    // keeps nothing; the agent signs the committed form).
    let by_log = liar
        .append_committed_by_log(json!({"kind": "action", "action": "pay", "resource": "invoices/9",
            "hidden": {"amount": {"u64": 800, "prove": [{"le": 1000}]}, "customer": {"str": "Initech"}}}))
        .unwrap();
    let leaf: serde_json::Value = serde_json::from_str(&server.get(&format!("/v1/entries/{}", by_log.index))).unwrap();
    assert!(leaf["entry"]["hidden"]["amount"]["u64"].is_string() && !leaf.to_string().contains("Initech"), "{leaf}");
    let err = liar
        .append_committed_by_log(json!({"kind": "action", "action": "pay", "resource": "invoices/10",
            "hidden": {"amount": {"u64": 1800, "prove": [{"le": 1000}]}}}))
        .unwrap_err();
    assert!(matches!(&err, ClientError::Api { status: 422, code, .. } if code == "predicate_false"), "{err:?}");
    // The agent discloses its own entry with a signed request; the bundle
    // verifies offline.
    let bundle = liar.disclose(hidden.index, &json!({"reveal": ["customer"], "prove": [{"field": "amount", "ge": 500}]})).unwrap();
    let parsed = verifier::disclosure::DisclosureBundle::parse(bundle.to_string().as_bytes()).unwrap();
    let verifier_key = verifier::NoteVerifier::new(verifier::VerifierKey::parse(&server.key()).unwrap());
    let v = verifier::disclosure::verify(&parsed, &verifier_key, zk::params()).unwrap();
    assert_eq!((v.revealed[0].1.as_str(), v.proven[0].as_str()), ("ACME", "amount ≥ 500"));
    // Another agent may not disclose it.
    let other = format!("spiffe://{TRUST_DOMAIN}/agent/other");
    let other_key = SigningKey::from_bytes(&[23; 32]);
    Client::register(&server.url, &token, &passport(&other, &other_key, [0xc0; 32])).unwrap();
    let err =
        Client::connect(&server.url, &other, other_key).unwrap().disclose(hidden.index, &json!({"reveal": ["customer"]})).unwrap_err();
    assert!(matches!(&err, ClientError::Api { status: 403, code, .. } if code == "not_owner"), "{err:?}");

    let size: serde_json::Value = serde_json::from_str(&server.get("/healthz")).unwrap();
    // Every entry but the last (the other agent's passport).
    let out = server.verify_agent_entries(dir.path(), 0..size["tree_size"].as_u64().unwrap() - 1);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains(&format!("index {}: action seq", hidden.index)) && !stdout.contains("only a full disclosure"), "{stdout}");
}

#[test]
fn the_example_agent_runs_against_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let run = || {
        Command::new(bin_path("examples/agent"))
            .args(["--url", &server.url, "--trust-domain", TRUST_DOMAIN, "--name", "example"])
            .arg("--admin-token-file")
            .arg(dir.path().join("data/admin.token"))
            .arg("--key-file")
            .arg(dir.path().join("example.key"))
            .output()
            .unwrap()
    };
    let out = run();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("registered spiffe://e2e.example/agent/example at index 0"), "{stdout}");
    assert!(stdout.contains("verdict {\"evidence\":\"software\",\"ok\":true,\"reasons\":[]}"), "{stdout}");
    assert!(stdout.contains("rotated key at index") && stdout.contains("action with the new key"), "{stdout}");
    // A second run reuses the stored (rotated) key and the registration.
    let again = run();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stdout));
    assert!(String::from_utf8_lossy(&again.stdout).contains("already registered"));
}
