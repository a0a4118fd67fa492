//! `ledger-verify` against forged inputs (issue 8, findings 13 and 14):
//! proof files from two histories of one log must fail `agent` as a fork,
//! checkpoints of different sizes must be shown consistent (with `--url`)
//! or refused, and nothing an agent wrote can add a line to the output.
//!
//! Most logs here live in memory ([`MemoryLog`]), signed with a key the
//! test holds, because an honest server never serves two histories; one
//! test runs the real server and forges a checkpoint with its key file.

// In tests a failed unwrap is the failure report.
#![allow(clippy::unwrap_used)]

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ledger_e2e::{ledger_verify, Agent, MemoryLog, Server};
use serde_json::{json, Map, Value};

const ORIGIN: &str = "verify-cli.example/log";
const LOG_KEY: [u8; 32] = [21; 32];
const AGENT: &str = "spiffe://verify-cli.example/agent/a";

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The root line of a signed checkpoint note.
fn root_line(note: &str) -> String {
    note.lines().nth(2).unwrap().to_owned()
}

fn object(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

fn agent_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[31; 32])
}

/// A passport and `actions` signed actions of agent `id`, as leaves of a
/// log named [`ORIGIN`].
fn agent_leaves(id: &str, actions: u64) -> Vec<Vec<u8>> {
    let key = agent_key();
    let passport = json!({"kind": "passport", "agent": id, "public_key": B64.encode(key.verifying_key().as_bytes()),
        "code_hash": "c0".repeat(32), "owner": "tests", "purpose": "testing", "integrated_time": 1, "v": 2});
    let mut leaves = vec![passport.to_string().into_bytes()];
    for seq in 1..=actions {
        let mut action = object(json!({"kind": "action", "agent": id, "action": "write", "resource": format!("db/{seq}"), "seq": seq}));
        verifier::entry::signing::sign_entry(&mut action, ORIGIN, &key);
        action.insert("integrated_time".into(), Value::from(seq + 1));
        action.insert("v".into(), Value::from(2));
        leaves.push(Value::Object(action).to_string().into_bytes());
    }
    leaves
}

fn memory_log(leaves: Vec<Vec<u8>>) -> MemoryLog {
    let mut log = MemoryLog::new(ORIGIN, LOG_KEY);
    log.leaves = leaves;
    log
}

#[test]
fn agent_files_from_one_checkpoint_verify() {
    let dir = tempfile::tempdir().unwrap();
    let log = memory_log(agent_leaves(AGENT, 2));
    let files: Vec<String> = (0..3).map(|i| write(dir.path(), &format!("{i}.proof"), &log.proof(i, 3).to_text())).collect();
    // The same file twice is one entry, not a fork.
    let key = log.key();
    let out = ledger_verify(&["agent", "--key", &key, &files[2], &files[0], &files[1], &files[1]]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains(&format!("3 entries of {AGENT} verified")), "{}", stdout(&out));
}

/// A passport written as a version 1 leaf (it carries no agent signature)
/// starts a chain whose version 2 signed entries are checked; a weak
/// passport key is refused by the registry fold.
#[test]
fn agent_chain_from_a_version_1_passport_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let mut leaves = agent_leaves(AGENT, 2);
    let mut passport = object(serde_json::from_slice(&leaves[0]).unwrap());
    passport.remove("v");
    leaves[0] = verifier::entry::legacy_v1_form(&passport);
    assert!(String::from_utf8_lossy(&leaves[0]).ends_with(r#""v":1}"#));
    let log = memory_log(leaves);
    let key = log.key();
    let files: Vec<String> = (0..3).map(|i| write(dir.path(), &format!("{i}.proof"), &log.proof(i, 3).to_text())).collect();
    let out = ledger_verify(&["agent", "--key", &key, &files[0], &files[1], &files[2]]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains(&format!("3 entries of {AGENT} verified")), "{}", stdout(&out));
    assert!(stdout(&out).contains("index 2: action seq 2: signature verified"), "{}", stdout(&out));

    let mut identity = [0u8; 32];
    identity[0] = 1;
    passport.insert("public_key".into(), Value::from(B64.encode(identity)));
    let weak = memory_log(vec![verifier::entry::legacy_v1_form(&passport)]);
    let file = write(dir.path(), "weak.proof", &weak.proof(0, 1).to_text());
    let out = ledger_verify(&["agent", "--key", &weak.key(), &file]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("entry 0: public key is a weak Ed25519 key"), "{}", stdout(&out));
}

/// Finding 13: a second, different leaf at one index used to be dropped
/// silently (the first one won). Both proofs verify against checkpoints
/// signed by the log, so the pair is evidence of a fork.
#[test]
fn agent_two_different_leaves_at_one_index_are_a_fork() {
    let dir = tempfile::tempdir().unwrap();
    let honest = memory_log(agent_leaves(AGENT, 1));
    let mut forked = memory_log(agent_leaves(AGENT, 1));
    // What the forked history holds at index 1, newline and all.
    let forged = b"{\"kind\":\"action\",\"agent\":\"x\"}\nOK: 2 entries verified".to_vec();
    forked.leaves[1] = forged.clone();
    let key = honest.key();
    let a0 = write(dir.path(), "a0.proof", &honest.proof(0, 2).to_text());
    let a1 = write(dir.path(), "a1.proof", &honest.proof(1, 2).to_text());
    let b1 = write(dir.path(), "b1.proof", &forked.proof(1, 2).to_text());

    for files in [[&a0, &a1, &b1], [&b1, &a0, &a1]] {
        let out = ledger_verify(&["agent", "--key", &key, files[0], files[1], files[2]]);
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(text.starts_with("FAILED: fork: ") && text.contains("hold different entries at index 1"), "{text}");
        // Both leaves, escaped, and both checkpoints are the evidence.
        assert!(text.contains(&String::from_utf8_lossy(&honest.leaves[1]).replace('"', "\\\"")), "{text}");
        assert!(text.contains("\\nOK: 2 entries verified"), "{text}");
        assert!(!text.lines().any(|l| l.starts_with("OK")), "no line comes from the leaf: {text}");
        assert!(text.contains(&root_line(&honest.checkpoint(2))) && text.contains(&root_line(&forked.checkpoint(2))), "{text}");
    }

    let out = ledger_verify(&["--json", "agent", "--key", &key, &a0, &a1, &b1]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verified"], false);
    let evidence = &v["evidence"];
    assert_eq!(evidence["first"]["leaf_base64"], B64.encode(&honest.leaves[1]));
    assert_eq!(evidence["second"]["leaf_base64"], B64.encode(&forged));
    assert_eq!(evidence["second"]["leaf"], String::from_utf8(forged).unwrap());
    assert_eq!(evidence["first"]["checkpoint"], honest.checkpoint(2));
    assert_eq!(evidence["second"]["checkpoint"], forked.checkpoint(2));
}

/// Finding 13: two checkpoints of one size with different roots are a
/// fork even when the files hold different indices.
#[test]
fn agent_checkpoints_of_one_size_with_different_roots_are_a_fork() {
    let dir = tempfile::tempdir().unwrap();
    let honest = memory_log(agent_leaves(AGENT, 2));
    let mut forked = memory_log(agent_leaves(AGENT, 2));
    forked.leaves[2] = b"{\"kind\":\"action\"}".to_vec();
    let key = honest.key();
    let a0 = write(dir.path(), "a0.proof", &honest.proof(0, 3).to_text());
    let b1 = write(dir.path(), "b1.proof", &forked.proof(1, 3).to_text());
    let out = ledger_verify(&["agent", "--key", &key, &a0, &b1]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("fork: the checkpoints in") && text.contains("have the same tree size 3 and different roots"), "{text}");
    assert!(text.contains(&root_line(&honest.checkpoint(3))) && text.contains(&root_line(&forked.checkpoint(3))), "{text}");
}

/// Finding 13: offline, checkpoints of different sizes cannot be shown
/// consistent; the check refuses (exit 2) and says what to do.
#[test]
fn agent_checkpoints_of_different_sizes_need_url() {
    let dir = tempfile::tempdir().unwrap();
    let log = memory_log(agent_leaves(AGENT, 2));
    let key = log.key();
    let a0 = write(dir.path(), "a0.proof", &log.proof(0, 2).to_text());
    let a2 = write(dir.path(), "a2.proof", &log.proof(2, 3).to_text());
    let out = ledger_verify(&["agent", "--key", &key, &a0, &a2]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}{err}", stdout(&out));
    assert!(err.contains("checkpoints of different tree sizes (2, 3)") && err.contains("cannot be shown consistent offline"), "{err}");
    assert!(err.contains("one tree size") && err.contains("--url"), "{err}");
    let out = ledger_verify(&["--json", "agent", "--key", &key, &a0, &a2]);
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["verified"].as_bool(), v["could_not_check"].as_bool()), (Some(false), Some(true)), "{v}");
}

/// How a stand-in server answers consistency proof requests.
#[derive(Clone, Copy)]
enum Answer {
    /// From this log.
    Honest,
    /// From another history of the same size.
    Forked,
    /// A proof for sizes other than those asked for.
    OtherSizes,
}

/// Serves `GET /v1/proof/consistency` from `log` (or `forked`) on a
/// loopback port, one connection at a time, until the test ends.
fn consistency_server(log: MemoryLog, forked: MemoryLog, answer: Answer) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let param = |name: &str| -> u64 {
                head.split(['?', '&', ' '])
                    .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            let (old, new) = (param("old_size"), param("new_size"));
            let (status, body) = if !head.starts_with("GET /v1/proof/consistency?") || old > new || new as usize > log.leaves.len() {
                ("404 Not Found", json!({"error": {"code": "not_found", "message": "no"}}))
            } else {
                let (old_size, hashes) = match answer {
                    Answer::Honest => (old, log.consistency(old, new)),
                    Answer::Forked => (old, forked.consistency(old, new)),
                    Answer::OtherSizes => (old.saturating_sub(1), log.consistency(old.saturating_sub(1), new)),
                };
                let hashes: Vec<String> = hashes.iter().map(|h| B64.encode(h)).collect();
                ("200 OK", json!({"old_size": old_size, "new_size": new, "hashes": hashes}))
            };
            let body = body.to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

/// Finding 13: with `--url`, checkpoints of different sizes are checked
/// with the log's consistency proofs (RFC 9162 §2.1.4.2).
#[test]
fn agent_with_url_checks_consistency_between_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let log = memory_log(agent_leaves(AGENT, 3));
    let key = log.key();
    // Three files at three sizes: 0 at 2, 1 at 3, 2 and 3 at 4.
    let files = [
        write(dir.path(), "0.proof", &log.proof(0, 2).to_text()),
        write(dir.path(), "1.proof", &log.proof(1, 3).to_text()),
        write(dir.path(), "2.proof", &log.proof(2, 4).to_text()),
        write(dir.path(), "3.proof", &log.proof(3, 4).to_text()),
    ];
    let mut forked = memory_log(agent_leaves(AGENT, 3));
    // Another entry 2: the proof from size 2 to 3 (its leaf hash) fails.
    forked.leaves[2] = b"{}".to_vec();
    let run = |answer: Answer| {
        let url = consistency_server(memory_log(log.leaves.clone()), memory_log(forked.leaves.clone()), answer);
        ledger_verify(&["agent", "--key", &key, "--url", &url, &files[0], &files[1], &files[2], &files[3]])
    };

    let out = run(Answer::Honest);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(stdout(&out).contains(&format!("4 entries of {AGENT} verified")), "{}", stdout(&out));

    let out = run(Answer::Forked);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("fork: the checkpoint of size 2 in") && text.contains("is not shown consistent with the one of size 3"),
        "{text}"
    );
    assert!(text.contains("\"proof\""), "the proof is part of the evidence: {text}");

    let out = run(Answer::OtherSizes);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("server answered with a consistency proof for other sizes"), "{}", stdout(&out));

    // An unreachable server: the check could not run.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let out = ledger_verify(&["agent", "--key", &key, "--url", &format!("http://{closed}"), &files[0], &files[1]]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
}

/// Finding 14: an agent id with a newline cannot print a line of its own.
#[test]
fn agent_output_escapes_the_agent_id() {
    let dir = tempfile::tempdir().unwrap();
    let id = "spiffe://verify-cli.example/agent/a\nindex 9: action seq 9: signature verified\u{202e}";
    let log = memory_log(agent_leaves(id, 1));
    let key = log.key();
    let files: Vec<String> = (0..2).map(|i| write(dir.path(), &format!("{i}.proof"), &log.proof(i, 2).to_text())).collect();
    let out = ledger_verify(&["agent", "--key", &key, &files[0], &files[1]]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(!text.lines().any(|l| l.trim_start().starts_with("index 9")), "{text}");
    assert!(text.contains("agent/a\\nindex 9: action seq 9: signature verified\\u{202e}"), "{text}");
    assert!(!text.contains('\u{202e}'), "{text}");
}

/// Finding 14: a revealed value holding "\n  proven …" used to print a
/// forged "proven" line under a bundle that proves nothing.
#[test]
fn disclosure_prints_revealed_values_escaped_on_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let evil = "ACME\n  proven    amount ≤ 1\r\u{1b}[2K\u{202e}";
    let mut entry = object(json!({"kind": "action", "agent": AGENT, "action": "pay", "resource": "invoices\n  proven    x ≤ 0", "seq": 1,
        "hidden": {"customer": {"str": evil}, "amount": {"u64": 20000}}}));
    let openings = verifier::hidden::commit_entry(&mut entry, ORIGIN, &mut rand_core::OsRng, zk::params()).unwrap();
    verifier::entry::signing::sign_entry(&mut entry, ORIGIN, &agent_key());
    entry.insert("integrated_time".into(), Value::from(5));
    let log = memory_log(vec![Value::Object(entry).to_string().into_bytes()]);
    let openings = verifier::hidden::openings_from_json(&openings).unwrap();
    let revealed = openings.into_iter().filter(|(k, _)| k == "customer").collect();
    let bundle =
        verifier::disclosure::DisclosureBundle { tlog_proof: log.proof(0, 1), revealed, proofs: Vec::new(), unbound_proofs: false };
    let file = write(dir.path(), "bundle.json", &bundle.to_json().to_string());
    let key = log.key();

    let out = ledger_verify(&["disclosure", "--key", &key, &file]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    // The bundle proves nothing: no line may say otherwise.
    assert!(!text.lines().any(|l| l.trim_start().starts_with("proven")), "{text}");
    assert!(text.lines().any(|l| l == "  revealed  customer = ACME\\n  proven    amount ≤ 1\\r\\u{1b}[2K\\u{202e}"), "{text}");
    assert!(text.lines().any(|l| l == "  public    resource = \"invoices\\n  proven    x ≤ 0\""), "{text}");
    assert!(text.lines().any(|l| l == "  hidden, nothing disclosed: amount"), "{text}");
    assert!(!text.contains('\r') && !text.contains('\u{1b}') && !text.contains('\u{202e}'), "{text:?}");

    // JSON output carries the exact value.
    let out = ledger_verify(&["--json", "disclosure", "--key", &key, &file]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["result"]["revealed"][0]["value"], evil);
    assert_eq!(v["result"]["proven"], json!([]));
}

/// Finding 13 against the real server: files fetched at different tree
/// sizes verify with `--url`, need it without; a checkpoint forged with
/// the log's own key (a second history) fails the consistency check.
#[test]
fn agent_with_url_against_the_real_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let key = server.key();
    let agent = Agent::new("consistency");
    server.register(&agent);
    let post = |body: String| {
        let resp = ureq::post(&format!("{}/v1/entries", server.url)).header("content-type", "application/json").send(body);
        assert!(resp.is_ok(), "append: {:?}", resp.err());
    };
    let bundle = |index: u64, name: &str| write(dir.path(), name, &server.get(&format!("/v1/proof/bundle?index={index}")));
    post(agent.action("db/1", None));
    wait_for_size(&server, 2);
    let early = [bundle(0, "0.proof"), bundle(1, "1.proof")];
    post(agent.action("db/2", None));
    post(agent.action("db/3", None));
    wait_for_size(&server, 4);
    let late = [bundle(2, "2.proof"), bundle(3, "3.proof")];
    let files = [&early[0], &early[1], &late[0], &late[1]];

    let out = ledger_verify(&["agent", "--key", &key, files[0], files[1], files[2], files[3]]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let out = ledger_verify(&["agent", "--key", &key, "--url", &server.url, files[0], files[1], files[2], files[3]]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(stdout(&out).contains("4 entries of spiffe://e2e.example/agent/consistency verified"), "{}", stdout(&out));

    // A second history under the log's key: the same first two entries,
    // another third one. Its checkpoint of size 3 is signed like any other,
    // but no proof from the real log takes size 2 to it.
    let log_key = std::fs::read_to_string(server.data_dir.join("log.key")).unwrap();
    let signer = verifier::note::NoteSigner::parse(log_key.trim()).unwrap();
    let leaf = |file: &str| verifier::tlog_proof::TlogProof::parse(&std::fs::read_to_string(file).unwrap()).unwrap().extra.unwrap();
    let mut forked = MemoryLog::new(signer.verifier_key().name(), [0; 32]);
    forked.leaves = vec![leaf(&early[0]), leaf(&early[1]), b"{\"kind\":\"action\"}".to_vec()];
    let mut forged = forked.proof(0, 3);
    let note_text = forged.checkpoint.split_once("\n\n").unwrap().0.to_owned() + "\n";
    forged.checkpoint = signer.sign(&note_text).unwrap();
    let forged_file = write(dir.path(), "forged.proof", &forged.to_text());
    let out = ledger_verify(&["agent", "--key", &key, "--url", &server.url, &forged_file, files[1], files[2], files[3]]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("fork: the checkpoint of size 2") && text.contains("with the one of size 3"), "{text}");
}

/// Waits (bounded) until the log's checkpoint covers `size` entries.
fn wait_for_size(server: &Server, size: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let note = server.get("/tlog/checkpoint");
        let current: u64 = note.lines().nth(1).and_then(|l| l.parse().ok()).unwrap_or(0);
        if current >= size {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "the checkpoint stayed at {current} entries, below {size}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
