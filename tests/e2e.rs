//! End-to-end: the real binaries, real HTTP over loopback, RocksDB on disk,
//! and a SIGKILL in the middle of a concurrent load.

// In tests and benches a failed unwrap is the failure report.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ledger_e2e::{ledger_verify, Agent, Server, ORIGIN};
use serde_json::Value;
use verifier::hash::leaf_hash;
use verifier::proof::verify_consistency;
use verifier::wire::{ConsistencyProofResponse, EntryResponse};
use verifier::{Checkpoint, NoteVerifier, VerifierKey};

fn append(url: &str, body: &str) -> Result<Value, String> {
    let mut resp =
        ureq::post(&format!("{url}/v1/entries")).header("content-type", "application/json").send(body).map_err(|e| e.to_string())?;
    serde_json::from_str(&resp.body_mut().read_to_string().map_err(|e| e.to_string())?).map_err(|e| e.to_string())
}

/// Registers a fresh agent on `server` and returns it.
fn agent(server: &Server, name: &str) -> Arc<Agent> {
    let a = Agent::new(name);
    server.register(&a);
    Arc::new(a)
}

fn open_checkpoint(note: &str, key: &str) -> Checkpoint {
    Checkpoint::open(note, &NoteVerifier::new(VerifierKey::parse(key).unwrap())).unwrap()
}

/// Appends from `threads` clients until `stop`, recording every
/// acknowledged (index, leaf hash).
fn load(
    url: &str,
    agents: &[Arc<Agent>],
    stop: &Arc<AtomicBool>,
    acked: &Arc<Mutex<BTreeMap<u64, String>>>,
) -> Vec<std::thread::JoinHandle<()>> {
    agents
        .iter()
        .map(|agent| {
            let (url, stop, acked, agent) = (url.to_owned(), Arc::clone(stop), Arc::clone(acked), Arc::clone(agent));
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let body = agent.action(&format!("db/table-{}", i % 13), Some(serde_json::json!({"i": i})));
                    match append(&url, &body) {
                        Ok(v) => {
                            let index = v["index"].as_u64().unwrap();
                            let prev = acked.lock().unwrap().insert(index, v["leaf_hash"].as_str().unwrap().to_owned());
                            assert!(prev.is_none(), "index {index} acknowledged twice");
                        }
                        // The server is gone (killed): stop.
                        Err(_) => break,
                    }
                    i += 1;
                }
            })
        })
        .collect()
}

#[test]
fn sigkill_under_load_loses_no_acknowledged_entry() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    let key = server.key();
    // Acknowledged entries and served checkpoints, over every kill so far.
    let acked = Arc::new(Mutex::new(BTreeMap::new()));
    let mut seen = Vec::new();
    let agents: Vec<Arc<Agent>> = (0..8).map(|t| agent(&server, &format!("client-{t}"))).collect();
    let main = agent(&server, "main");

    // Three rounds of: load from 8 clients, collect checkpoints, SIGKILL at
    // a different moment each time, restart, check everything ever
    // acknowledged or served.
    for (round, kill_after) in [(0, 15), (1, 4), (2, 9)] {
        let stop = Arc::new(AtomicBool::new(false));
        let workers = load(&server.url, &agents, &stop, &acked);
        for _ in 0..kill_after {
            std::thread::sleep(Duration::from_millis(40));
            seen.push(server.get("/v1/checkpoint"));
        }
        server.kill();
        for w in workers {
            w.join().unwrap();
        }
        let snapshot = acked.lock().unwrap().clone();
        assert!(snapshot.len() > 20 * (round + 1), "round {round}: the load produced only {} appends", snapshot.len());

        server = Server::start(dir.path());
        assert_eq!(server.key(), key, "restart must keep the log key");
        let latest = open_checkpoint(&server.get("/v1/checkpoint"), &key);
        assert!(latest.size >= snapshot.len() as u64);

        // Every acknowledged entry is present, unchanged, at its index.
        for (index, hash) in &snapshot {
            let entry: EntryResponse = serde_json::from_str(&server.get(&format!("/v1/entries/{index}"))).unwrap();
            assert_eq!(&B64.encode(leaf_hash(&entry.leaf)), hash, "round {round}: entry {index} changed");
        }
        // The tree is consistent with every checkpoint ever served.
        for note in &seen {
            let old = open_checkpoint(note, &key);
            let proof: ConsistencyProofResponse =
                serde_json::from_str(&server.get(&format!("/v1/proof/consistency?old_size={}&new_size={}", old.size, latest.size)))
                    .unwrap();
            verify_consistency(old.size, latest.size, &proof.hashes, &old.root, &latest.root).unwrap();
        }
        // Appends continue where the log stopped.
        let next = append(&server.url, &main.action("after-restart", None)).unwrap();
        assert_eq!(next["index"].as_u64().unwrap(), latest.size);
        acked.lock().unwrap().insert(latest.size, next["leaf_hash"].as_str().unwrap().to_owned());
        seen.push(server.get("/v1/checkpoint"));
    }
}

#[test]
fn ledger_verify_checks_entries_proofs_checkpoints_and_monitors() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("a"));
    let key = server.key();
    // The passport and 19 actions: 20 entries.
    let a = agent(&server, "a");
    for i in 0..19 {
        append(&server.url, &a.action(&format!("r/{i}"), None)).unwrap();
    }

    let out = ledger_verify(&["entry", "--url", &server.url, "--key", &key, "--index", "7"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("OK: entry 7"));

    let key_file = dir.path().join("log.pub");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();
    let cp_file = dir.path().join("checkpoint");
    std::fs::write(&cp_file, server.get("/tlog/checkpoint")).unwrap();
    let out = ledger_verify(&["--json", "checkpoint", "--key", key_file.to_str().unwrap(), cp_file.to_str().unwrap()]);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["result"]["size"], 20);

    let proof_file = dir.path().join("entry.tlog-proof");
    std::fs::write(&proof_file, server.get("/v1/proof/bundle?index=3")).unwrap();
    let out = ledger_verify(&["proof", "--key", &key, proof_file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    // A tampered proof file fails with exit code 1.
    let tampered = std::fs::read_to_string(&proof_file).unwrap().replacen("index 3", "index 4", 1);
    std::fs::write(&proof_file, tampered).unwrap();
    let out = ledger_verify(&["proof", "--key", &key, proof_file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));

    // Audit: every entry, fetched as tlog-tiles bundles, hashes to the root.
    let out = ledger_verify(&["--json", "audit", "--url", &server.url, "--key", &key]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap()["result"]["entries"], 20);

    // Monitor: first run saves, growth verifies, unchanged verifies.
    let state = dir.path().join("monitor.state");
    let state_s = state.to_str().unwrap();
    assert!(ledger_verify(&["monitor", "--url", &server.url, "--key", &key, "--state", state_s]).status.success());
    append(&server.url, &a.action("more", None)).unwrap();
    let out = ledger_verify(&["--json", "monitor", "--url", &server.url, "--key", &key, "--state", state_s]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap()["result"]["new"]["size"], 21);
    assert!(ledger_verify(&["monitor", "--url", &server.url, "--key", &key, "--state", state_s]).status.success());

    // A fork: a second log with the same key but different history. The
    // monitor refuses it, keeps its saved state and prints the evidence.
    let fork_dir = dir.path().join("b");
    std::fs::create_dir_all(&fork_dir).unwrap();
    std::fs::copy(dir.path().join("a/log.key"), fork_dir.join("log.key")).unwrap();
    let fork = Server::start(&fork_dir);
    assert_eq!(fork.key(), key);
    let f = agent(&fork, "f");
    for i in 0..29 {
        append(&fork.url, &f.action(&format!("forked/{i}"), None)).unwrap();
    }
    let saved = std::fs::read_to_string(&state).unwrap();
    let out = ledger_verify(&["--json", "monitor", "--url", &fork.url, "--key", &key, "--state", state_s]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["error"].as_str().unwrap().starts_with("fork"), "{v}");
    assert_eq!(v["evidence"]["old_checkpoint"], saved);
    assert!(v["evidence"]["new_checkpoint"].as_str().unwrap().contains("\n30\n"));
    assert_eq!(std::fs::read_to_string(&state).unwrap(), saved, "a failed check must not advance the state");

    // A rollback: the fork is smaller than what a monitor already saw.
    let big_state = dir.path().join("big.state");
    std::fs::write(&big_state, fork.get("/v1/checkpoint")).unwrap();
    let small_dir = dir.path().join("c");
    std::fs::create_dir_all(&small_dir).unwrap();
    std::fs::copy(dir.path().join("a/log.key"), small_dir.join("log.key")).unwrap();
    let small = Server::start(&small_dir);
    let x = agent(&small, "x");
    append(&small.url, &x.action("x", None)).unwrap();
    let out = ledger_verify(&["monitor", "--url", &small.url, "--key", &key, "--state", big_state.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("rollback"));

    // Unreachable server: could not check, exit code 2.
    let out = ledger_verify(&["entry", "--url", "http://127.0.0.1:9", "--key", &key, "--index", "0"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn sigterm_drains_and_restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(BTreeMap::new()));
    let agents: Vec<Arc<Agent>> = (0..4).map(|t| agent(&server, &format!("client-{t}"))).collect();
    let workers = load(&server.url, &agents, &stop, &acked);
    std::thread::sleep(Duration::from_millis(300));
    assert!(server.terminate(), "ledger-server did not exit cleanly on SIGTERM");
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let server = Server::start(dir.path());
    for (index, hash) in &acked {
        let entry: EntryResponse = serde_json::from_str(&server.get(&format!("/v1/entries/{index}"))).unwrap();
        assert_eq!(&B64.encode(leaf_hash(&entry.leaf)), hash);
    }
}

#[test]
fn starts_without_flags_from_environment_defaults() {
    let cwd = tempfile::tempdir().unwrap();
    let port = ledger_e2e::free_port();
    let listen = format!("127.0.0.1:{port}");
    let server = Server::start_from_env(cwd.path(), &[("LEDGER_LISTEN", &listen)], format!("http://{listen}"));
    // RocksDB and the key under ./data, the origin derived from the listen address.
    assert!(cwd.path().join("data/db").is_dir());
    let key = server.key();
    assert!(key.starts_with(&format!("{listen}/agent-ledger+")), "{key}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(cwd.path().join("data/log.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The default trust domain is example.org.
    let a = Agent::with_id("spiffe://example.org/agent/env");
    server.register(&a);
    // Agent signatures are bound to the origin, here the derived one.
    let origin = format!("{listen}/agent-ledger");
    let mut act = serde_json::json!({"kind": "action", "agent": a.id, "action": "write", "resource": "env", "seq": a.next_seq()});
    verifier::entry::signing::sign_entry(act.as_object_mut().unwrap(), &origin, &a.key);
    let appended = append(&server.url, &act.to_string()).unwrap();
    assert_eq!(appended["index"], 1, "after the passport");
}

#[test]
fn ledger_verify_checks_an_agents_entries_offline() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let key = server.key();
    let a = agent(&server, "audited");
    append(&server.url, &a.action("db/1", None)).unwrap();
    // Rotate to a new key, then act with it.
    let new = ed25519_dalek::SigningKey::from_bytes(&[77; 32]);
    let rotation = verifier::entry::signing::rotation(ORIGIN, &a.id, a.next_seq(), &a.key, &new);
    append(&server.url, &serde_json::Value::Object(rotation).to_string()).unwrap();
    let mut act = serde_json::json!({"kind": "action", "agent": a.id, "action": "write", "resource": "db/2", "seq": a.next_seq()});
    verifier::entry::signing::sign_entry(act.as_object_mut().unwrap(), ORIGIN, &new);
    append(&server.url, &act.to_string()).unwrap();
    // Two attestations: one that passes, one whose code hash differs
    // (recorded with a failing verdict, which the auditor recomputes).
    for code in ["c0", "bb"] {
        let rotated = Agent::with_key(&a.id, new.clone());
        let (status, nonce) = rotated.signed_post(&server.url, &format!("/v1/agents/{}/nonce", a.path_id()), "");
        assert_eq!(status, 201, "{nonce}");
        let mut att = serde_json::json!({"kind": "attestation", "agent": a.id, "nonce": nonce["nonce"], "code_hash": code.repeat(32),
            "runtime": {"os": "linux", "version": "6", "image_digest": "sha256:x"},
            "behaviour": {"digest": "00".repeat(32), "calls": 1, "distinct": 1}, "evidence": {"type": "software"}, "seq": a.next_seq()});
        verifier::entry::signing::sign_entry(att.as_object_mut().unwrap(), ORIGIN, &new);
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let status = agent
            .post(&format!("{}/v1/attestations", server.url))
            .header("content-type", "application/json")
            .send(att.to_string())
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), if code == "c0" { 201 } else { 422 });
    }
    // The failed attestation moves the agent's risk level: the log records
    // the change after it. Every proof below is fetched at one tree size,
    // once the log is quiet.
    let size = || serde_json::from_str::<serde_json::Value>(&server.get("/healthz")).unwrap()["tree_size"].as_u64().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut last = size();
    loop {
        std::thread::sleep(std::time::Duration::from_millis(300));
        let now = size();
        if now == last || std::time::Instant::now() > deadline {
            break;
        }
        last = now;
    }

    let files: Vec<String> = (0..6)
        .map(|i| {
            let path = dir.path().join(format!("{i}.tlog-proof"));
            std::fs::write(&path, server.get(&format!("/v1/proof/bundle?index={i}"))).unwrap();
            path.to_str().unwrap().to_owned()
        })
        .collect();
    let mut args = vec!["agent", "--key", &key];
    args.extend(files.iter().map(String::as_str));
    let out = ledger_verify(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("6 entries of spiffe://e2e.example/agent/audited verified"), "{stdout}");
    assert!(
        stdout.contains(r#"index 4: attestation seq 4: signature verified, verdict {"evidence":"software","ok":true,"reasons":[]}"#),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            r#"index 5: attestation seq 5: signature verified, verdict {"evidence":"software","ok":false,"reasons":["code_hash differs from the passport"]}"#
        ),
        "{stdout}"
    );
    assert!(stdout.contains("index 2: rotation, signed by the old and the new key"), "{stdout}");
    assert!(stdout.contains("index 3: action seq 3: signature verified"), "{stdout}");

    // Without the rotation, the last action's key is not the one in force.
    let without: Vec<&str> = ["agent", "--key", &key, &files[0], &files[1], &files[3]].to_vec();
    let out = ledger_verify(&without);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("entry 3: agent signature does not verify"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Slowloris: a client sends part of a request line and then nothing. The
/// server used to keep such a connection (and its task) forever.
#[test]
fn an_unfinished_request_head_is_closed_after_the_header_timeout() {
    use ledger_e2e::raw;
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--header-timeout-secs", "1"]);
    let mut stream = raw::connect(&server.url);
    stream.write_all(b"GET /healthz HT").unwrap();
    assert_eq!(raw::read_until_closed(&mut stream), 0, "no answer is owed to a request that never arrived");
    // The server itself is unaffected.
    assert!(server.get("/healthz").contains("\"ok\""));
}

/// With `--max-connections 2`, two idle keep-alive connections hold both
/// slots; a third connection gets 503 `too_many_connections` with
/// Retry-After and is closed, and a freed slot is served again.
#[test]
fn a_connection_over_the_cap_gets_503_too_many_connections() {
    use ledger_e2e::raw;
    use std::io::Write as _;
    const REQUEST: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: ledger\r\n\r\n";
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--max-connections", "2", "--header-timeout-secs", "120", "--idle-timeout-secs", "120"]);
    // A connection that was served and is still open. The readiness probe's
    // connection may hold a slot for a moment after it closed: retry.
    let held = |server: &Server| {
        for _ in 0..400 {
            let mut stream = raw::connect(&server.url);
            if stream.write_all(REQUEST).is_ok() {
                let (head, _) = raw::read_response(&mut stream);
                if head.starts_with("http/1.1 200") {
                    return stream;
                }
                assert!(head.starts_with("http/1.1 503"), "{head}");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("no connection slot came free");
    };
    let first = held(&server);
    let second = held(&server);

    let mut third = raw::connect(&server.url);
    let _ = third.write_all(REQUEST);
    let (head, body) = raw::read_response(&mut third);
    assert!(head.starts_with("http/1.1 503 "), "{head}");
    assert!(head.contains("\r\nretry-after: 1\r\n"), "{head}");
    assert!(head.contains("\r\ncontent-type: application/json\r\n"), "{head}");
    let error: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["error"]["code"], "too_many_connections", "{error}");
    assert!(!error["error"]["message"].as_str().unwrap().is_empty());
    assert_eq!(raw::read_until_closed(&mut third), 0, "the rejected connection is closed");

    drop(first);
    let mut again = held(&server);
    again.write_all(REQUEST).unwrap();
    assert!(raw::read_response(&mut again).0.starts_with("http/1.1 200"), "keep-alive still works");
    drop(second);
}

/// Secrets hygiene at start-up: the generated admin token is never printed
/// (only where it is and a fingerprint), a secret on the command line is
/// warned about, and a secret file others can read stops the server with
/// the fix in the message.
#[cfg(unix)]
#[test]
fn secrets_are_not_printed_and_loose_secret_files_are_refused() {
    use std::os::unix::fs::PermissionsExt as _;

    use sha2::Digest as _;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start(&data);
    let token = server.admin_token();
    let fingerprint: String = sha2::Sha256::digest(token.as_bytes()).iter().take(4).map(|b| format!("{b:02x}")).collect();
    let log = std::fs::read_to_string(data.join("server.log")).unwrap();
    assert!(!log.contains(&token), "the admin token was printed:\n{log}");
    assert!(log.contains(&format!("fingerprint sha256:{fingerprint}")), "{log}");
    assert!(log.contains(&data.join("admin.token").display().to_string()), "{log}");
    assert!(server.terminate());

    // A token on the command line works, with a warning in the log.
    let mut flagged = Server::start_with(&dir.path().join("flagged"), &["--admin-token", &token]);
    let log = std::fs::read_to_string(dir.path().join("flagged/server.log")).unwrap();
    assert!(log.contains("--admin-token") && log.contains("process list"), "{log}");
    assert!(!log.contains(&token), "the admin token was printed:\n{log}");
    assert!(flagged.terminate());

    // A token file readable by others: refused, nothing served.
    let file = data.join("admin.token");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let stderr = Server::start_refused(&data, &dir.path().join("refused.log"));
    assert!(stderr.contains("chmod 600") && stderr.contains(&file.display().to_string()), "{stderr}");
    assert!(!stderr.contains(&token), "{stderr}");
}
