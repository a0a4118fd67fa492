//! The SDK's signals against the real server binary: a source registered
//! by the operator, its signed signals (about an agent and, as threat
//! intelligence, about a code hash), replays, types it may not file and
//! forgeries refused; an agent's peer report accepted and a report about
//! itself refused.
#![allow(clippy::unwrap_used)]

use ed25519_dalek::SigningKey;
use ledger_client::{public_key_b64, Client, ClientError, SignalSource};
use ledger_e2e::{Server, TRUST_DOMAIN};
use serde_json::{json, Value};
use verifier::entry::signing::hex;
use verifier::entry::{Assessment, Severity, SignalType, Subject};

const CODE: [u8; 32] = [0xc0; 32];

fn passport(agent: &str, key: &SigningKey) -> Value {
    json!({"agent": agent, "public_key": public_key_b64(key), "code_hash": hex(&CODE), "owner": "t", "purpose": "t"})
}

fn code(err: &ClientError) -> (u16, &str) {
    match err {
        ClientError::Api { status, code, .. } => (*status, code.as_str()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn tree_size(server: &Server) -> u64 {
    serde_json::from_str::<Value>(&server.get("/healthz")).unwrap()["tree_size"].as_u64().unwrap()
}

/// The default policy with every signal and peer report weighing nothing:
/// this test is about who may sign what, and no score moves (so the log
/// appends no revocation or risk entry between the entries it counts).
fn weightless_signals(dir: &std::path::Path) -> String {
    let toml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/policy.example.toml")).unwrap();
    let mut section = String::new();
    let lines: Vec<String> = toml
        .lines()
        .map(|line| {
            if line.starts_with('[') {
                section = line.to_owned();
            }
            let weightless = section.starts_with("[weights_milli.signals") || section == "[weights_milli.peer_report]";
            match line.split_once(" = ") {
                Some((name, _)) if weightless && !line.starts_with('#') => format!("{name} = 0"),
                _ => line.to_owned(),
            }
        })
        .collect();
    let path = dir.join("policy.toml");
    std::fs::write(&path, lines.join("\n")).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn sources_file_signals_and_agents_report_peers() {
    let dir = tempfile::tempdir().unwrap();
    let policy = weightless_signals(dir.path());
    let server = Server::start_with(&dir.path().join("data"), &["--policy", &policy]);
    let token = server.admin_token();
    let agent = format!("spiffe://{TRUST_DOMAIN}/agent/billing");
    let peer = format!("spiffe://{TRUST_DOMAIN}/agent/auditor");
    let (agent_key, peer_key) = (SigningKey::from_bytes(&[31; 32]), SigningKey::from_bytes(&[32; 32]));
    Client::register(&server.url, &token, &passport(&agent, &agent_key)).unwrap();
    Client::register(&server.url, &token, &passport(&peer, &peer_key)).unwrap();

    // Registration is the operator's.
    let siem_key = SigningKey::from_bytes(&[33; 32]);
    let types = [SignalType::Siem, SignalType::ThreatIntel];
    let err = SignalSource::register(&server.url, "wrong-token-0123456789", "siem-1", &siem_key.verifying_key(), &types).unwrap_err();
    assert_eq!(code(&err), (401, "unauthorized"));
    let err = SignalSource::connect(&server.url, "siem-1", siem_key.clone()).unwrap_err();
    assert_eq!(code(&err), (403, "unknown_source"), "nothing is signed for a source the log does not know");
    let at = SignalSource::register(&server.url, &token, "siem-1", &siem_key.verifying_key(), &types).unwrap();
    // After the log's policy entry and the two passports.
    assert_eq!(at.index, 3);

    // A signed signal about an agent, and threat intelligence about every
    // agent running some code.
    let source = SignalSource::connect(&server.url, "siem-1", siem_key.clone()).unwrap();
    let id = agent.parse().unwrap();
    let mut evidence = serde_json::Map::new();
    evidence.insert("alert".into(), json!("impossible travel"));
    let first = source.signal(Subject::Agent(id), SignalType::Siem, Severity::High, Some(evidence)).unwrap();
    let intel = source.signal(Subject::CodeHash(CODE), SignalType::ThreatIntel, Severity::Critical, None).unwrap();
    let leaf: Value = serde_json::from_str(&server.get(&format!("/v1/entries/{}", intel.index))).unwrap();
    assert_eq!(leaf["entry"]["subject"], json!({"code_hash": hex(&CODE)}));
    assert_eq!((leaf["entry"]["source"].as_str(), leaf["entry"]["seq"].as_u64()), (Some("siem-1"), Some(2)));
    assert_eq!(intel.index, first.index + 1);

    // A second handle resumes the sequence numbers; the first, now behind,
    // is refused its next one as a replay.
    let resumed = SignalSource::connect(&server.url, "siem-1", siem_key.clone()).unwrap();
    resumed.signal(Subject::Agent(agent.parse().unwrap()), SignalType::Siem, Severity::Low, None).unwrap();
    let size = tree_size(&server);
    let err = source.signal(Subject::Agent(agent.parse().unwrap()), SignalType::Siem, Severity::Low, None).unwrap_err();
    assert_eq!(code(&err), (409, "sequence_replayed"));
    // A type the source was not registered for.
    let err = resumed.signal(Subject::Agent(agent.parse().unwrap()), SignalType::Ueba, Severity::Low, None).unwrap_err();
    assert_eq!(code(&err), (403, "signal_type_not_allowed"));
    // A forger holding the name but not the key.
    let forger = SignalSource::connect(&server.url, "siem-1", SigningKey::from_bytes(&[34; 32])).unwrap();
    let err = forger.signal(Subject::Agent(agent.parse().unwrap()), SignalType::Siem, Severity::Critical, None).unwrap_err();
    assert_eq!(code(&err), (401, "bad_signature"));
    assert_eq!(tree_size(&server), size, "refusals append nothing");
    // A refusal does not use up a sequence number.
    resumed.signal(Subject::Agent(agent.parse().unwrap()), SignalType::Siem, Severity::Medium, None).unwrap();

    // Peer reports: the reporting agent's own signed entries, in its own
    // sequence (shared with its actions).
    let reporter = Client::connect(&server.url, &peer, peer_key).unwrap();
    let reviewed = reporter.act("review", "payments/1", None).unwrap();
    let report = reporter.report_peer(&agent.parse().unwrap(), Assessment::Negative, Severity::Medium, None).unwrap();
    let leaf: Value = serde_json::from_str(&server.get(&format!("/v1/entries/{}", report.index))).unwrap();
    assert_eq!((leaf["entry"]["source"].as_str(), leaf["entry"]["seq"].as_u64()), (Some(peer.as_str()), Some(2)));
    assert_eq!(leaf["entry"]["assessment"], "negative");
    let size = tree_size(&server);
    let err = reporter.report_peer(&peer.parse().unwrap(), Assessment::Positive, Severity::Low, None).unwrap_err();
    assert_eq!(code(&err), (400, "invalid_signal"), "an agent does not report on itself");
    let err =
        reporter.report_peer(&format!("spiffe://{TRUST_DOMAIN}/agent/ghost").parse().unwrap(), Assessment::Negative, Severity::Low, None);
    assert_eq!(code(&err.unwrap_err()), (403, "unknown_agent"));
    assert_eq!(tree_size(&server), size);
    let after = reporter.act("review", "payments/2", None).unwrap();

    // Offline, the report is one of the reporter's entries: its chain
    // (passport, action, report, action) verifies through the registry fold.
    let out = server.verify_agent_entries(dir.path(), [2, reviewed.index, report.index, after.index]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("index {}: signal seq 2: signature verified", report.index)), "{stdout}");

    // The listing shows the source's key and where its sequence is.
    let listed: Value = serde_json::from_str(&server.get("/v1/sources")).unwrap();
    assert_eq!(listed["sources"][0]["key"], public_key_b64(&siem_key));
    assert_eq!(listed["sources"][0]["last_seq"], 4);
}
