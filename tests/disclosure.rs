//! End-to-end selective disclosure with the real binaries: append entries
//! with hidden fields over HTTP, get a disclosure bundle with the admin
//! token the server generated, verify it with `ledger-verify disclosure`
//! offline, SIGKILL and restart (openings survive), shred, restart
//! (shredded stays shredded, old bundles stay valid).

// In tests and benches a failed unwrap is the failure report.
#![allow(clippy::unwrap_used)]

use ledger_e2e::{ledger_verify, Agent, Server};
use serde_json::Value;

fn send(method: &str, url: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut resp = match method {
        "POST" => {
            let mut req = agent.post(url).header("content-type", "application/json");
            if let Some(t) = token {
                req = req.header("authorization", &format!("Bearer {t}"));
            }
            req.send(body).unwrap()
        }
        _ => {
            let mut req = agent.delete(url);
            if let Some(t) = token {
                req = req.header("authorization", &format!("Bearer {t}"));
            }
            req.call().unwrap()
        }
    };
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn hidden(agent: &Agent, amount: u64, customer: &str) -> String {
    agent.sign_committed(serde_json::json!({"kind": "action", "action": "pay", "resource": "invoices/42",
        "hidden": {"amount": {"u64": amount, "prove": [{"le": 10000}]}, "customer": {"str": customer}}}))
}

/// The values in the clear, signed (the path the log refuses).
fn plain_hidden(agent: &Agent, amount: u64, customer: &str) -> String {
    agent.sign(serde_json::json!({"kind": "action", "action": "pay", "resource": "invoices/42",
        "hidden": {"amount": {"u64": amount, "prove": [{"le": 10000}]}, "customer": {"str": customer}}}))
}

#[test]
fn disclose_verify_offline_restart_and_shred() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start(&data);
    let token = std::fs::read_to_string(data.join("admin.token")).unwrap().trim().to_owned();
    let key = server.key();
    let server_log = std::fs::read_to_string(data.join("server.log")).unwrap();
    assert!(!server_log.contains(&token), "the admin token is never printed");
    assert!(server_log.contains("admin token generated in") && server_log.contains("fingerprint sha256:"), "{server_log}");

    let agent = Agent::new("payments");
    server.register(&agent);
    let (status, v) = send("POST", &format!("{}/v1/entries", server.url), None, &hidden(&agent, 1250, "ACME Corp"));
    assert_eq!((status, v["index"].as_u64()), (201, Some(1)), "{v}");
    let (status, v) = send("POST", &format!("{}/v1/entries", server.url), None, &plain_hidden(&agent, 2_000, "Initech"));
    assert_eq!((status, v["error"]["code"].as_str()), (400, Some("commit_hidden_first")), "{v}");

    let request = r#"{"reveal":["customer"],"prove":[{"field":"amount","ge":1000}]}"#;
    let uri = format!("{}/v1/entries/1/disclosures", server.url);
    assert_eq!(send("POST", &uri, None, request).0, 401);
    let (status, bundle) = send("POST", &uri, Some(&token), request);
    assert_eq!(status, 200, "{bundle}");
    let file = dir.path().join("bundle.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&bundle).unwrap()).unwrap();

    // Offline: the key and the file, nothing else.
    let out = ledger_verify(&["disclosure", "--key", &key, file.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("revealed  customer = ACME Corp"), "{stdout}");
    assert!(stdout.contains("proven    amount ≥ 1000"), "{stdout}");
    assert!(stdout.contains("proven when appended  amount ≤ 10000"), "{stdout}");
    assert!(!stdout.contains("1250"), "the verifier learns nothing else: {stdout}");
    let out = ledger_verify(&["--json", "disclosure", "--key", &key, file.to_str().unwrap()]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["result"]["proven"], serde_json::json!(["amount ≥ 1000"]));

    // A tampered revealed value fails with exit status 1 and says why.
    let tampered = dir.path().join("tampered.json");
    std::fs::write(&tampered, serde_json::to_string(&bundle).unwrap().replace("ACME Corp", "ACME Inc.")).unwrap();
    let out = ledger_verify(&["disclosure", "--key", &key, tampered.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("revealed \"customer\" does not match its commitment"));

    // SIGKILL and restart: openings survive.
    server.kill();
    let server = Server::start(&data);
    let (status, again) = send("POST", &format!("{}/v1/entries/1/disclosures", server.url), Some(&token), r#"{"reveal":["amount"]}"#);
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["revealed"]["amount"]["u64"], 1250);

    // The openings key lost: the server refuses to start, says which file
    // to restore, and makes no new key. Restored, it starts as before.
    drop(server);
    let key_file = data.join("openings.key");
    let saved = dir.path().join("openings.key.saved");
    std::fs::rename(&key_file, &saved).unwrap();
    let stderr = ledger_e2e::Server::start_refused(&data, &dir.path().join("refused.log"));
    assert!(stderr.contains("openings.key") && stderr.contains("restore"), "{stderr}");
    assert!(!key_file.exists(), "a new openings key replaced the lost one");
    std::fs::rename(&saved, &key_file).unwrap();
    let server = Server::start(&data);
    let (status, again) = send("POST", &format!("{}/v1/entries/1/disclosures", server.url), Some(&token), r#"{"reveal":["customer"]}"#);
    assert_eq!((status, again["revealed"]["customer"]["str"].as_str()), (200, Some("ACME Corp")), "{again}");

    // Shred; restart; still shredded, and the first bundle still verifies.
    let (status, v) = send("DELETE", &format!("{}/v1/entries/1/openings", server.url), Some(&token), "");
    assert_eq!((status, v), (200, serde_json::json!({"shredded": [1]})));
    drop(server);
    let server = Server::start(&data);
    let (status, v) = send("POST", &format!("{}/v1/entries/1/disclosures", server.url), Some(&token), request);
    assert_eq!((status, v["error"]["code"].as_str()), (410, Some("openings_shredded")));
    assert!(ledger_verify(&["disclosure", "--key", &key, file.to_str().unwrap()]).status.success());
    assert_eq!(serde_json::from_str::<Value>(&server.get("/healthz")).unwrap()["tree_size"], 2);
}
