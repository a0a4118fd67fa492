//! The auditor's toolkit end to end: exports (`GET /v1/export` and
//! `ledger-server export`) of a log with agents, actions with hidden fields,
//! attestations (one failing), a quarantine and the log's own entries,
//! audited offline by `ledger-verify audit`; then the insider-tamper
//! harness: a copy of the data directory changed in every way someone with
//! disk access (and the log's key, which sits beside the database) could,
//! each caught, and by the check the test names.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ledger_core::store::{CommitBatch, LogStore, Namespace, Record, RocksStore, StoredHead};
use ledger_e2e::{bin_path, ledger_verify, Agent, Server, ORIGIN};
use serde_json::Value;
use verifier::entry::{Severity, SignalType, Subject};
use verifier::hash::leaf_hash;
use verifier::note::NoteSigner;
use verifier::tree::CompactRange;
use verifier::Checkpoint;

fn append(server: &Server, body: &str) -> Value {
    let mut resp = ureq::post(&format!("{}/v1/entries", server.url)).header("content-type", "application/json").send(body).expect("append");
    serde_json::from_str(&resp.body_mut().read_to_string().expect("body")).expect("JSON")
}

/// A request with the admin token: status and body bytes.
fn admin(server: &Server, method: &str, path: &str) -> (u16, Vec<u8>) {
    let http: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let url = format!("{}{path}", server.url);
    let auth = format!("Bearer {}", server.admin_token());
    let mut resp = match method {
        "GET" => http.get(&url).header("authorization", &auth).call(),
        _ => http.post(&url).header("authorization", &auth).header("content-type", "application/json").send("{}"),
    }
    .expect("request");
    let status = resp.status().as_u16();
    (status, resp.body_mut().with_config().limit(1 << 30).read_to_vec().expect("body"))
}

fn tree_size(server: &Server) -> u64 {
    serde_json::from_str::<Value>(&server.get("/healthz")).expect("JSON")["tree_size"].as_u64().expect("tree size")
}

/// Waits until the log stops growing (the trigger logs risk changes after
/// a failed attestation).
fn quiet(server: &Server) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = tree_size(server);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = tree_size(server);
        if now == last || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

fn attest(server: &Server, agent: &Agent, code: &str) -> u16 {
    let (status, nonce) = agent.signed_post(&server.url, &format!("/v1/agents/{}/nonce", agent.path_id()), "");
    assert_eq!(status, 201, "{nonce}");
    let mut att = serde_json::json!({"kind": "attestation", "agent": agent.id, "nonce": nonce["nonce"], "code_hash": code.repeat(32),
        "runtime": {"os": "linux", "version": "6", "image_digest": "sha256:x"},
        "behaviour": {"digest": "00".repeat(32), "calls": 1, "distinct": 1}, "evidence": {"type": "software"}, "seq": agent.next_seq()});
    verifier::entry::signing::sign_entry(att.as_object_mut().expect("object"), ORIGIN, &agent.key);
    let http: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    http.post(&format!("{}/v1/attestations", server.url))
        .header("content-type", "application/json")
        .send(att.to_string())
        .expect("attestation")
        .status()
        .as_u16()
}

/// A log with something of every kind an audit checks.
fn populate(server: &Server) -> (Agent, Agent) {
    let (a, b) = (Agent::new("auditor-a"), Agent::new("auditor-b"));
    server.register(&a);
    server.register(&b);
    for i in 0..5 {
        append(server, &a.action(&format!("db/{i}"), Some(serde_json::json!({"n": i}))));
        append(server, &b.action(&format!("files/{i}"), None));
    }
    let hidden = a.sign_committed(serde_json::json!({"kind": "action", "action": "pay", "resource": "invoices/1",
        "hidden": {"amount": {"u64": 250, "prove": [{"le": 10000}]}, "customer": {"str": "acme"}}}));
    append(server, &hidden);
    assert_eq!(attest(server, &a, "c0"), 201);
    assert_eq!(attest(server, &a, "bb"), 422, "a failing attestation is recorded with its verdict");
    // A registered source files a signal about b.
    let siem = ed25519_dalek::SigningKey::from_bytes(&[21; 32]);
    let token = server.admin_token();
    ledger_client::SignalSource::register(&server.url, &token, "siem-1", &siem.verifying_key(), &[SignalType::Siem]).expect("source");
    let source = ledger_client::SignalSource::connect(&server.url, "siem-1", siem).expect("connect");
    let subject = Subject::Agent(verifier::AgentId::parse(&b.id).expect("id"));
    source.signal(subject, SignalType::Siem, Severity::Low, None).expect("signal");
    assert_eq!(admin(server, "POST", &format!("/v1/agents/{}/quarantine", b.path_id())).0, 201);
    (a, b)
}

fn run_export(data_dir: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(bin_path("ledger-server"))
        .arg("export")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .expect("running ledger-server export")
}

/// `ledger-verify --json audit` of `archive` with `extra` flags: exit code
/// and the JSON document.
fn audit(key: &str, archive: &Path, extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec!["--json", "audit", "--key", key];
    args.extend_from_slice(extra);
    args.push(archive.to_str().expect("UTF-8 path"));
    let out = ledger_verify(&args);
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code(), json)
}

/// The checks that found something, by name.
fn caught_by(report: &Value) -> Vec<String> {
    let v = &report["evidence"];
    let mut checks: Vec<String> = v["violations_by_check"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
    if checks.is_empty() {
        checks = v["violations"].as_array().into_iter().flatten().filter_map(|x| x["check"].as_str().map(str::to_owned)).collect();
    }
    checks
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else if entry.file_name() != "LOCK" {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Every leaf and the head of a (stopped) data directory.
fn read_log(data_dir: &Path) -> (Vec<Vec<u8>>, StoredHead) {
    let store = RocksStore::open_read_only(&data_dir.join("db")).expect("open");
    let head = store.head().expect("head").expect("a head");
    (store.get_entries(0, head.size).expect("entries"), head)
}

/// What an insider with the data directory writes: a store holding
/// `leaves` (every tree node recomputed) under the checkpoint `note`.
fn forge(dir: &Path, leaves: &[Vec<u8>], note: &str) {
    let store = RocksStore::open(&dir.join("db")).expect("a new store");
    let mut tree = CompactRange::new();
    let mut nodes = Vec::new();
    for leaf in leaves {
        tree.push_recording(leaf_hash(leaf), &mut nodes);
    }
    let head = StoredHead { size: leaves.len() as u64, integrated_time: 0, checkpoint: note.to_owned() };
    store.commit(&CommitBatch { first_index: 0, entries: leaves.to_vec(), nodes, head: Some(head), records: Vec::new() }).expect("commit");
}

/// A checkpoint over `leaves` signed with `signer` (the stolen log key, or
/// another).
fn sign(leaves: &[Vec<u8>], signer: &NoteSigner) -> String {
    let mut tree = CompactRange::new();
    for leaf in leaves {
        tree.push(leaf_hash(leaf));
    }
    Checkpoint { origin: ORIGIN.to_owned(), size: tree.size(), root: tree.root(), extensions: Vec::new() }.sign(signer).expect("signing")
}

/// Rewrites one leaf's JSON (kept canonical).
fn edit(leaf: &[u8], change: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(leaf).expect("a JSON leaf");
    change(v.as_object_mut().expect("an object"));
    verifier::canonical::to_canonical(&v)
}

fn index_of(leaves: &[Vec<u8>], pred: impl Fn(&Value) -> bool) -> usize {
    leaves.iter().position(|l| pred(&serde_json::from_slice(l).expect("JSON"))).expect("a matching leaf")
}

/// One tamper: what the insider wrote, the checkpoint the auditor saw
/// last (if the case needs one) and the check that must name it (none: the
/// archive alone cannot show it).
struct Case<'a> {
    name: &'static str,
    leaves: Vec<Vec<u8>>,
    note: String,
    since: Option<&'a Path>,
    /// Every check that finds something, by name (sorted).
    expected: &'static [&'static str],
}

impl<'a> Case<'a> {
    fn new(name: &'static str, leaves: Vec<Vec<u8>>, note: String, since: Option<&'a Path>, expected: &'static [&'static str]) -> Self {
        Self { name, leaves, note, since, expected }
    }
}

#[test]
fn exports_audit_clean_and_every_tamper_is_caught_by_its_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut server = Server::start(&data);
    let key = server.key();
    let (a, _b) = populate(&server);
    let early_size = quiet(&server);
    let early_note = server.get("/tlog/checkpoint");
    let early = dir.path().join("early.checkpoint");
    std::fs::write(&early, &early_note).expect("write");
    // A copy of the directory as it was then: the rollback case below.
    server.terminate();
    let old_copy = dir.path().join("old-copy");
    copy_dir(&data, &old_copy);
    server = Server::start(&data);
    for i in 0..3 {
        append(&server, &a.action(&format!("late/{i}"), None));
    }
    let size = quiet(&server);

    // Over HTTP: admin only, ranges checked before anything is streamed.
    let http: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    assert_eq!(http.get(&format!("{}/v1/export", server.url)).call().expect("GET").status().as_u16(), 401);
    let (status, body) = admin(&server, "GET", &format!("/v1/export?start=5&end={}", size + 1));
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert_eq!(serde_json::from_slice::<Value>(&body).expect("JSON")["error"]["code"], "invalid_export_range");
    let (status, body) = admin(&server, "GET", "/v1/export");
    assert_eq!(status, 200);
    let full = dir.path().join("full.alar.zst");
    std::fs::write(&full, &body).expect("write");

    // The clean archive passes every check, and says what it covered.
    let (code, report) = audit(&key, &full, &[]);
    assert_eq!(code, Some(0), "{report}");
    let r = &report["result"];
    assert_eq!(r["entries"], size);
    assert_eq!(r["violation_count"], 0);
    assert!(r["signatures_checked"].as_u64().expect("count") >= 14, "{r}");
    assert_eq!((r["hidden_entries"].as_u64(), r["predicate_proofs"].as_u64()), (Some(1), Some(1)), "{r}");
    for kind in ["passport", "action", "attestation", "revocation", "risk", "source", "signal"] {
        assert!(r["by_kind"][kind].as_u64().is_some_and(|n| n > 0), "{kind}: {r}");
    }
    assert_eq!(r["folds"]["agents"], 2);
    // Consistent with the auditor's earlier checkpoint, from the leaves.
    assert_eq!(audit(&key, &full, &["--since", early.to_str().expect("path")]).0, Some(0));
    // A later range: checked against the same root through the frontier
    // and a consistency proof, and from the earlier size by the archive's
    // own proof; the folds need entry 0 and say so.
    let (status, body) = admin(&server, "GET", &format!("/v1/export?start={early_size}&since_size={early_size}"));
    assert_eq!(status, 200);
    let tail = dir.path().join("tail.alar.zst");
    std::fs::write(&tail, &body).expect("write");
    // Not the whole tree: refused as unchecked unless --partial says the
    // auditor knows signatures and scores are not checked.
    let (code, report) = audit(&key, &tail, &["--since", early.to_str().expect("path")]);
    assert_eq!(code, Some(2), "{report}");
    assert!(report["error"].as_str().is_some_and(|e| e.contains("--partial")), "{report}");
    let (code, report) = audit(&key, &tail, &["--partial", "--since", early.to_str().expect("path")]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["result"]["entries"], size - early_size);
    assert!(report["result"]["folds"].is_null());
    // A range ending before the checkpoint: tied to it by the range proof.
    let (status, body) = admin(&server, "GET", "/v1/export?start=2&end=7");
    assert_eq!(status, 200);
    let middle = dir.path().join("middle.alar.zst");
    std::fs::write(&middle, &body).expect("write");
    assert_eq!(audit(&key, &middle, &[]).0, Some(2));
    assert_eq!(audit(&key, &middle, &["--partial"]).0, Some(0));

    // Offline, beside the running server (read-only): the same archive.
    let offline = dir.path().join("offline.alar.zst");
    let out = run_export(&data, &offline, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(audit(&key, &offline, &[]).0, Some(0));
    let (status, _) = admin(&server, "GET", "/v1/export?since_size=99999");
    assert_eq!(status, 400);

    // A truncated or corrupted archive is refused as such.
    let bytes = std::fs::read(&full).expect("read");
    let cut = dir.path().join("cut.alar.zst");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    let (code, report) = audit(&key, &cut, &[]);
    assert_eq!((code, caught_by(&report)), (Some(1), vec!["archive".to_owned()]), "{report}");

    server.terminate();
    let (leaves, head) = read_log(&data);
    assert_eq!(leaves.len() as u64, size);
    let stolen = ledger_core::keys::load_or_create_signer(&data.join("log.key"), ORIGIN).expect("the log key beside the db");
    let later = dir.path().join("later.checkpoint");
    std::fs::write(&later, &head.checkpoint).expect("write");

    // Each case: a directory an insider wrote, exported by the auditor's
    // own tool, audited (with the checkpoint the auditor saw last when the
    // case needs it), and the check that must name it.
    let action_of_a = |l: &Value| l["kind"] == "action" && l["agent"] == a.id.as_str() && l.get("hidden").is_none();
    let first_action = index_of(&leaves, action_of_a);
    let second_action = first_action + 2; // a and b alternate
    let passport = index_of(&leaves, |l| l["kind"] == "passport");
    let failed_attestation = index_of(&leaves, |l| l["kind"] == "attestation" && l["verdict"]["ok"] == false);

    let mut cases: Vec<Case<'_>> = Vec::new();
    // An entry's bytes changed, the signed checkpoint kept.
    let mut changed = leaves.clone();
    changed[first_action] = edit(&changed[first_action], |m| {
        m.insert("resource".into(), "db/elsewhere".into());
    });
    cases.push(Case::new("changed entry", changed.clone(), head.checkpoint.clone(), None, &["registry", "tree"]));
    // The same change, the tree rewritten and re-signed with the stolen
    // key: the agent's signature no longer verifies.
    cases.push(Case::new("changed agent entry, re-signed", changed.clone(), sign(&changed, &stolen), None, &["registry"]));
    // Two of an agent's entries swapped: the tree no longer matches; once
    // re-signed, its sequence numbers go backwards.
    let mut swapped = leaves.clone();
    swapped.swap(first_action, second_action);
    assert_eq!(serde_json::from_slice::<Value>(&swapped[first_action]).expect("JSON")["agent"], a.id.as_str());
    cases.push(Case::new("reordered entries", swapped.clone(), head.checkpoint.clone(), None, &["registry", "tree"]));
    cases.push(Case::new("reordered entries, re-signed", swapped.clone(), sign(&swapped, &stolen), None, &["registry"]));
    // A failing attestation recorded as passing, re-signed: the verdict is
    // recomputed from the evidence.
    let mut forged = leaves.clone();
    forged[failed_attestation] = edit(&forged[failed_attestation], |m| {
        m.insert("verdict".into(), serde_json::json!({"evidence": "software", "ok": true, "reasons": []}));
    });
    cases.push(Case::new("forged attestation verdict", forged.clone(), sign(&forged, &stolen), None, &["attestation", "trust"]));
    // A leaf that is no longer canonical JSON, re-signed.
    let mut garbled = leaves.clone();
    let mut bytes = garbled[first_action].clone();
    bytes.insert(1, b' ');
    garbled[first_action] = bytes;
    cases.push(Case::new("non-canonical leaf, re-signed", garbled.clone(), sign(&garbled, &stolen), None, &["leaf"]));
    // The hidden amount's range proof altered, re-signed.
    let hidden_action = index_of(&leaves, |l| l.get("hidden").is_some());
    let mut bad_proof = leaves.clone();
    bad_proof[hidden_action] = edit(&bad_proof[hidden_action], |m| {
        let proof = m["predicates"]["proof"].as_str().expect("a proof").to_owned();
        let flipped = if proof.ends_with('A') { 'B' } else { 'A' };
        m["predicates"]["proof"] = format!("{}{flipped}", &proof[..proof.len() - 1]).into();
    });
    cases.push(Case::new("altered range proof, re-signed", bad_proof.clone(), sign(&bad_proof, &stolen), None, &["hidden", "registry"]));
    // A source's signal made more severe, re-signed: the source's
    // signature fails.
    let signal = index_of(&leaves, |l| l["kind"] == "signal" && l["source"] == "siem-1");
    let mut louder = leaves.clone();
    louder[signal] = edit(&louder[signal], |m| {
        m.insert("severity".into(), "critical".into());
    });
    cases.push(Case::new("a source's signal changed, re-signed", louder.clone(), sign(&louder, &stolen), None, &["sources"]));
    // A risk change the log wrote from its trust view, recorded at another
    // score, re-signed: recomputed, the band rule disagrees.
    let risk = index_of(&leaves, |l| l["kind"] == "risk");
    let mut misscored = leaves.clone();
    misscored[risk] = edit(&misscored[risk], |m| {
        let score = m["score"].as_u64().expect("a score");
        m.insert("score".into(), (if score > 50 { score - 40 } else { score + 40 }).into());
    });
    cases.push(Case::new("a risk change's score rewritten, re-signed", misscored.clone(), sign(&misscored, &stolen), None, &["trust"]));
    // History rewritten where no agent signed (a passport's owner), every
    // hash recomputed and re-signed: the archive is self-consistent; only
    // a checkpoint seen before (the monitor's, a witness's) shows the fork.
    let mut hidden_change = leaves.clone();
    hidden_change[passport] = edit(&hidden_change[passport], |m| {
        m.insert("owner".into(), "someone else".into());
    });
    let resigned = sign(&hidden_change, &stolen);
    cases.push(Case::new("rewritten history, re-signed (alone)", hidden_change.clone(), resigned.clone(), None, &[]));
    cases.push(Case::new("rewritten history, re-signed", hidden_change.clone(), resigned, Some(later.as_path()), &["consistency"]));
    // An entry dropped, re-signed: shorter than what the auditor saw.
    let mut dropped = leaves.clone();
    dropped.remove(dropped.len() - 1);
    cases.push(Case::new("dropped entry, re-signed", dropped.clone(), sign(&dropped, &stolen), Some(later.as_path()), &["consistency"]));
    // The log key swapped for the insider's own.
    let other = NoteSigner::new(ORIGIN, ed25519_dalek::SigningKey::from_bytes(&[9; 32])).expect("a key");
    cases.push(Case::new("swapped log key", leaves.clone(), sign(&leaves, &other), None, &["checkpoint"]));

    for (i, Case { name, leaves: forged_leaves, note, since, expected }) in cases.iter().enumerate() {
        let case_dir = dir.path().join(format!("case-{i}"));
        forge(&case_dir, forged_leaves, note);
        let archive = case_dir.join("archive.alar.zst");
        let out = run_export(&case_dir, &archive, &[]);
        assert!(out.status.success(), "{name}: export: {}", String::from_utf8_lossy(&out.stderr));
        let mut extra = Vec::new();
        if let Some(since) = since {
            extra.extend(["--since", since.to_str().expect("path")]);
        }
        let (code, report) = audit(&key, &archive, &extra);
        if expected.is_empty() {
            assert_eq!(code, Some(0), "{name}: only a saved checkpoint or a witness catches it: {report}");
        } else {
            assert_eq!(code, Some(1), "{name}: {report}");
            assert_eq!(caught_by(&report), *expected, "{name}: {report}");
            // Each violation at an entry carries that entry's bytes.
            for v in report["evidence"]["violations"].as_array().expect("violations") {
                if let Some(index) = v["index"].as_u64() {
                    use base64::Engine as _;
                    let leaf =
                        base64::engine::general_purpose::STANDARD.decode(v["evidence"]["leaf"].as_str().expect("leaf")).expect("b64");
                    assert_eq!(leaf, forged_leaves[index as usize], "{name}: {v}");
                }
            }
        }
    }

    // Rolled back to the older copy: a clean archive of an older tree,
    // refused against the newer checkpoint the auditor saw.
    let rolled = dir.path().join("rolled.alar.zst");
    assert!(run_export(&old_copy, &rolled, &[]).status.success());
    assert_eq!(audit(&key, &rolled, &[]).0, Some(0));
    let (code, report) = audit(&key, &rolled, &["--since", later.to_str().expect("path")]);
    assert_eq!((code, caught_by(&report)), (Some(1), vec!["consistency".to_owned()]), "{report}");
    assert!(report["evidence"]["violations"][0]["message"].as_str().expect("message").contains("rollback"), "{report}");

    // An agent's registry record changed on disk (its key swapped for the
    // insider's): the server trusts its view and accepts what that key
    // signs, but the audit replays the registry from the log itself.
    let tampered = dir.path().join("tampered-registry");
    copy_dir(&data, &tampered);
    {
        let store = RocksStore::open(&tampered.join("db")).expect("open");
        let record = store.get(Namespace::Agents, a.id.as_bytes()).expect("get").expect("a's record");
        let mut state = ledger_core::views::registry::from_bytes(&record).expect("a record");
        let insider = ed25519_dalek::SigningKey::from_bytes(&[66; 32]);
        state.key = insider.verifying_key();
        let put = Record::put(Namespace::Agents, a.id.as_bytes().to_vec(), ledger_core::views::registry::to_bytes(&state));
        let head = store.head().expect("head");
        store.commit(&CommitBatch { first_index: size, head, records: vec![put], ..CommitBatch::default() }).expect("commit");
    }
    let server = Server::start(&tampered);
    let impostor = Agent::with_key(&a.id, ed25519_dalek::SigningKey::from_bytes(&[66; 32]));
    impostor.resume_after(1000);
    let accepted = append(&server, &impostor.action("db/impostor", None));
    assert!(accepted["index"].is_u64(), "the tampered view admits the impostor: {accepted}");
    let (status, body) = admin(&server, "GET", "/v1/export");
    assert_eq!(status, 200);
    let archive = dir.path().join("tampered-registry.alar.zst");
    std::fs::write(&archive, body).expect("write");
    let (code, report) = audit(&key, &archive, &[]);
    assert_eq!(code, Some(1), "{report}");
    assert!(caught_by(&report).contains(&"registry".to_owned()), "{report}");
}
