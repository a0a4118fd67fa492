//! `ledger-verify trust` against the real server: every score, revocation
//! (by decay alone, and a quarantine), risk change and drift signal the
//! server logged is recomputed offline and matches what it reports; a
//! server that reports another score than its log gives is caught, naming
//! the agent and the entries that moved its score.

// In tests a failed unwrap is the failure report.
#![allow(clippy::unwrap_used)]

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use ledger_e2e::{ledger_verify, Agent, Server};
use serde_json::Value;

/// Freshness with a one-second grace and half-life: an agent that never
/// attests is revoked by decay a few seconds after it is registered.
fn fast_policy(dir: &std::path::Path) -> String {
    let toml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/policy.example.toml")).unwrap();
    let fast = toml
        .replace("attestation_grace_s = 86400", "attestation_grace_s = 1")
        .replace("attestation_half_life_s = 604800", "attestation_half_life_s = 1")
        .replace("baseline_events = 1000", "baseline_events = 8")
        .replace("window_events = 256", "window_events = 8");
    assert_ne!(fast, toml);
    let path = dir.join("policy.toml");
    std::fs::write(&path, fast).unwrap();
    path.to_str().unwrap().to_owned()
}

fn post(server: &Server, path: &str, body: String, admin: bool) -> u16 {
    let mut req = ureq::post(&format!("{}{path}", server.url)).header("content-type", "application/json");
    if admin {
        req = req.header("authorization", &format!("Bearer {}", server.admin_token()));
    }
    match req.send(body) {
        Ok(resp) => resp.status().as_u16(),
        Err(ureq::Error::StatusCode(code)) => code,
        Err(e) => panic!("POST {path}: {e}"),
    }
}

fn count_kind(server: &Server, kind: &str) -> usize {
    let v: Value = serde_json::from_str(&server.get("/v1/entries?start=0&limit=1000")).unwrap();
    v["entries"].as_array().unwrap().iter().filter(|e| e["entry"]["kind"] == kind).count()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stdout(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn trust_recomputed_offline_matches_the_server_and_a_forged_report_or_listing_fails() {
    let dir = tempfile::tempdir().unwrap();
    let policy = fast_policy(dir.path());
    let server = Server::start_with(&dir.path().join("data"), &["--policy", &policy]);
    let key = server.key();
    let (drifter, idle, held, gone) = (Agent::new("drifter"), Agent::new("idle"), Agent::new("held"), Agent::new("gone"));
    server.register(&drifter);
    server.register(&idle);
    server.register(&held);
    server.register(&gone);
    // Retired at once: it decays below the threshold like the idle agent,
    // but a retired agent is never revoked, and the audit knows it.
    let retire = format!("/v1/agents/{}/retire", gone.path_id());
    assert_eq!(post(&server, &retire, "{\"reason\":\"decommissioned\"}".into(), true), 201);
    // A habit, then something else entirely: a drift finding.
    for i in 0..8 {
        assert_eq!(post(&server, "/v1/entries", drifter.action(&format!("invoices/{i}"), None), false), 201);
    }
    for i in 0..8 {
        assert_eq!(post(&server, "/v1/entries", drifter.action(&format!("users-{i}:accounts/x"), None), false), 201);
    }
    // An admin quarantine (the drifter may already be revoked by its score).
    let quarantine = format!("/v1/agents/{}/quarantine", held.path_id());
    assert_eq!(post(&server, &quarantine, "{\"note\":\"incident\"}".into(), true), 201);
    // A threat-intel feed about the code both agents run, and a peer report.
    let feed_key = ed25519_dalek::SigningKey::from_bytes(&[77; 32]);
    let threat = verifier::entry::SignalType::ThreatIntel;
    ledger_client::SignalSource::register(&server.url, &server.admin_token(), "intel", &feed_key.verifying_key(), &[threat]).unwrap();
    let feed = ledger_client::SignalSource::connect(&server.url, "intel", feed_key).unwrap();
    feed.signal(verifier::entry::Subject::CodeHash([0xc0; 32]), threat, verifier::entry::Severity::Low, None).unwrap();
    let reporter = ledger_client::Client::connect(&server.url, &idle.id, idle.key.clone()).unwrap();
    let drifter_id = verifier::AgentId::parse(&drifter.id).unwrap();
    reporter.report_peer(&drifter_id, verifier::entry::Assessment::Negative, verifier::entry::Severity::Medium, None).unwrap();
    wait_until("the revocations by drift, by decay and by quarantine", || count_kind(&server, "revocation") >= 3);
    wait_until("the drift signal", || count_kind(&server, "signal") >= 3);
    wait_until("risk changes", || count_kind(&server, "risk") >= 3);
    // An entry well after the retired agent crossed the threshold, so an
    // audit that expected its revocation would fail.
    std::thread::sleep(std::time::Duration::from_millis(6_000));
    let late = Agent::new("late");
    server.register(&late);

    let out = ledger_verify(&["--json", "trust", "--url", &server.url, "--key", &key]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let result = &v["result"];
    assert_eq!(result["compared"].as_array().unwrap().len(), 5, "{v}");
    assert!(result["revocations_checked"].as_u64().unwrap() >= 1, "{v}");
    assert!(result["risk_changes_checked"].as_u64().unwrap() >= 2, "{v}");
    assert_eq!(result["drift_signals_checked"].as_u64(), Some(1), "{v}");
    let out = ledger_verify(&["trust", "--url", &server.url, "--key", &key, "--agent", &idle.id]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // The SDK reads the same report.
    let score = reporter.trust(reporter.agent()).unwrap();
    assert_eq!((score.score, score.level.as_str(), score.components.quarantined), (0, "high", true), "{score:?}");

    // A front that forwards everything to the real server but reports a
    // better score for the idle agent.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let front = format!("http://{}", listener.local_addr().unwrap());
    let upstream = server.url.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(64) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 8192];
            let n = stream.read(&mut buf).unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]).to_string();
            let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
            let mut body = ureq::get(&format!("{upstream}{path}")).call().unwrap().body_mut().read_to_vec().unwrap();
            if path.ends_with("/trust") {
                let mut v: Value = serde_json::from_slice(&body).unwrap();
                if path == "/v1/trust" {
                    // The listing leaves out its lowest-scoring agent.
                    v["agents"].as_array_mut().unwrap().remove(0);
                } else {
                    v["score"] = Value::from(95);
                    v["level"] = Value::from("low");
                }
                body = serde_json::to_vec(&v).unwrap();
            }
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    let out = ledger_verify(&["trust", "--url", &front, "--key", &key, "--agent", &idle.id]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("the server reports score 95 (low)") && text.contains(&idle.id), "{text}");
    let out = ledger_verify(&["trust", "--url", &front, "--key", &key]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("listing's agent 1 should be") && text.contains("omits or misorders"), "{text}");
}
