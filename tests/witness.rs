//! Witness cosigning end to end (c2sp.org/tlog-witness and
//! c2sp.org/tlog-cosignature): the real server submits its checkpoints to
//! two real `ledger-witness` processes, serves and exports them cosigned,
//! and `ledger-verify audit` requires the quorum. Then the split view: the
//! server's storage is rewritten (same size, another tree, re-signed with
//! the log key stolen from the data directory) and the server restarted on
//! it; both witnesses refuse to cosign the second tree, and the checkpoint
//! they hold proves the fork offline.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ledger_core::store::{CommitBatch, LogStore, RocksStore, StoredHead};
use ledger_e2e::{bin_path, free_port, ledger_verify, Agent, Server, ORIGIN};
use serde_json::Value;
use verifier::hash::leaf_hash;
use verifier::tree::CompactRange;
use verifier::Checkpoint;

/// A running `ledger-witness`.
struct Witness {
    child: Child,
    url: String,
    key: String,
}

impl Witness {
    fn start(dir: &Path, name: &str, log_key: &str) -> Witness {
        let key_file = dir.join(format!("{name}.key"));
        let out = Command::new(bin_path("ledger-witness"))
            .arg("--witness-key")
            .arg(&key_file)
            .args(["--name", name, "--print-key"])
            .output()
            .expect("ledger-witness --print-key");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let key = String::from_utf8(out.stdout).expect("UTF-8").trim().to_owned();
        let port = free_port();
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("log");
        let child = Command::new(bin_path("ledger-witness"))
            .arg("--witness-key")
            .arg(&key_file)
            .arg("--state")
            .arg(dir.join(format!("{name}-state")))
            .args(["--log-key", log_key, "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("ledger-witness");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "ledger-witness did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
        Witness { child, url, key }
    }

    /// The checkpoint it cosigned last for the tests' log.
    fn latest(&self) -> String {
        use sha2::Digest as _;
        let hash: String = sha2::Sha256::digest(ORIGIN.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
        ureq::get(&format!("{}/{hash}/checkpoint", self.url)).call().expect("GET").body_mut().read_to_string().expect("body")
    }
}

impl Drop for Witness {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn admin_get(server: &Server, path: &str) -> (u16, Vec<u8>) {
    let http: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut resp = http
        .get(&format!("{}{path}", server.url))
        .header("authorization", &format!("Bearer {}", server.admin_token()))
        .call()
        .expect("GET");
    (resp.status().as_u16(), resp.body_mut().with_config().limit(1 << 30).read_to_vec().expect("body"))
}

fn witnesses(server: &Server) -> Value {
    let (status, body) = admin_get(server, "/v1/witnesses");
    assert_eq!(status, 200);
    serde_json::from_slice(&body).expect("JSON")
}

/// Waits (bounded) until `done` holds.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn audit(key: &str, archive: &Path, extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec!["--json", "audit", "--key", key];
    args.extend_from_slice(extra);
    args.push(archive.to_str().expect("UTF-8 path"));
    let out = ledger_verify(&args);
    (out.status.code(), serde_json::from_slice(&out.stdout).unwrap_or(Value::Null))
}

fn start(data: &Path, witnesses: &[&Witness], quorum: usize) -> Server {
    let mut flags = Vec::new();
    for w in witnesses {
        flags.push("--witness".to_owned());
        flags.push(format!("{} {}", w.key, w.url));
    }
    flags.extend(["--witness-quorum".to_owned(), quorum.to_string()]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    Server::start_with(data, &flags)
}

#[test]
fn witnesses_cosign_the_served_checkpoint_and_refuse_a_split_view() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("mkdir");
    // The log's key first, so the witnesses can be told it.
    let signer = ledger_core::keys::load_or_create_signer(&data.join("log.key"), ORIGIN).expect("log key");
    let log_key = signer.verifier_key().to_string();
    let (w1, w2) = (Witness::start(dir.path(), "w1.example", &log_key), Witness::start(dir.path(), "w2.example", &log_key));
    let mut server = start(&data, &[&w1, &w2], 2);
    let agent = Agent::new("witnessed");
    server.register(&agent);
    for i in 0..20 {
        let body = agent.action(&format!("db/{i}"), None);
        ureq::post(&format!("{}/v1/entries", server.url)).header("content-type", "application/json").send(body.as_str()).expect("append");
    }
    let size = 21;
    wait_for("the quorum at the tree size", || witnesses(&server)["witnessed"] == size);
    let listing = witnesses(&server);
    assert!(listing["witnesses"].as_array().expect("rows").iter().all(|w| w["cosigned_size"] == size && w["failures"] == 0), "{listing}");

    // The served checkpoint carries both cosignatures, which verify.
    let note = server.get("/tlog/checkpoint");
    let keys: Vec<_> = [&w1, &w2].iter().map(|w| verifier::cosignature::WitnessKey::parse(&w.key).expect("key")).collect();
    let names = verifier::cosignature::require_quorum(&note, &keys, 2).expect("two cosignatures");
    assert_eq!(names.len(), 2);

    // The export is made under the witnessed checkpoint; the audit
    // requires the quorum, and a quorum the archive cannot meet fails.
    let (status, body) = admin_get(&server, "/v1/export");
    assert_eq!(status, 200);
    let archive = dir.path().join("witnessed.alar.zst");
    std::fs::write(&archive, body).expect("write");
    let (code, report) = audit(&log_key, &archive, &["--witness", &w1.key, "--witness", &w2.key, "--quorum", "2"]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["result"]["witnesses"].as_array().map(Vec::len), Some(2), "{report}");
    let stranger = verifier::cosignature::WitnessSigner::new("w3.example", ed25519_dalek::SigningKey::from_bytes(&[3; 32]))
        .expect("key")
        .witness_key()
        .to_string();
    let (code, report) = audit(&log_key, &archive, &["--witness", &w1.key, "--witness", &stranger, "--quorum", "2"]);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["evidence"]["violations"][0]["check"], "witnesses", "{report}");
    // A quorum above the witnesses named is a usage error, not a verdict.
    assert_eq!(audit(&log_key, &archive, &["--witness", &w1.key, "--quorum", "2"]).0, Some(2));
    let honest = w1.latest();
    assert!(honest.starts_with(&format!("{ORIGIN}\n{size}\n")), "{honest}");

    // The split view: the storage rewritten to another tree of the same
    // size (a passport's owner changed), every hash recomputed and the
    // checkpoint re-signed with the log's own key.
    assert!(server.terminate(), "clean stop");
    // Offline, from the data directory: the export is made under the
    // witnessed checkpoint the server kept, so the quorum can be required.
    let offline = dir.path().join("offline.alar.zst");
    let out = Command::new(bin_path("ledger-server"))
        .arg("export")
        .arg("--data-dir")
        .arg(&data)
        .arg("--out")
        .arg(&offline)
        .output()
        .expect("export");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (code, report) = audit(&log_key, &offline, &["--witness", &w1.key, "--witness", &w2.key]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["result"]["witnesses"].as_array().map(Vec::len), Some(2), "{report}");
    let forged = dir.path().join("forged");
    forge_same_size(&data, &forged);
    let server = start(&forged, &[&w1, &w2], 1);
    wait_for("both witnesses to refuse", || {
        let rows = witnesses(&server);
        rows["witnesses"].as_array().is_some_and(|ws| ws.iter().all(|w| w["failures"].as_u64().unwrap_or(0) >= 1))
    });
    let rows = witnesses(&server);
    assert!(rows["witnessed"].is_null(), "{rows}");
    for w in rows["witnesses"].as_array().expect("rows") {
        assert!(w["last_error"].as_str().is_some_and(|e| e.contains("422")), "{w}");
    }
    // The forged tree is never cosigned: not served, not exportable.
    let served = server.get("/tlog/checkpoint");
    assert!(verifier::cosignature::require_quorum(&served, &keys, 1).is_err(), "{served}");
    assert_eq!(admin_get(&server, "/v1/export").0, 503);
    // The witnesses kept the honest checkpoint; with it, an auditor handed
    // the forged directory sees the fork offline.
    let body = |note: &str| note.split_once("\n\n").map(|(text, _)| text.to_owned());
    assert_eq!(body(&w2.latest()), body(&honest));
    let witnessed = dir.path().join("witnessed.checkpoint");
    std::fs::write(&witnessed, &honest).expect("write");
    let archive = dir.path().join("forged.alar.zst");
    let out = Command::new(bin_path("ledger-server"))
        .arg("export")
        .arg("--data-dir")
        .arg(&forged)
        .arg("--out")
        .arg(&archive)
        .output()
        .expect("export");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(audit(&log_key, &archive, &[]).0, Some(0), "self-consistent and signed by the log key: alone, it passes");
    let (code, report) = audit(&log_key, &archive, &["--since", witnessed.to_str().expect("path")]);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["evidence"]["violations"][0]["check"], "consistency", "{report}");
    // Witnesses named without --quorum: all of them are required.
    let (code, report) = audit(&log_key, &archive, &["--witness", &w1.key]);
    assert_eq!((code, &report["evidence"]["violations"][0]["check"]), (Some(1), &Value::from("witnesses")), "{report}");
}

/// Writes, under `to`, the data directory an insider makes from `from`:
/// the same entries but for one passport's owner, every tree hash
/// recomputed, the checkpoint re-signed with the log key from `from`; the
/// server's other files copied.
fn forge_same_size(from: &Path, to: &Path) {
    let (leaves, head) = {
        let store = RocksStore::open_read_only(&from.join("db")).expect("open");
        let head = store.head().expect("head").expect("a head");
        (store.get_entries(0, head.size).expect("entries"), head)
    };
    let mut leaves = leaves;
    let passport = leaves.iter().position(|l| serde_json::from_slice::<Value>(l).expect("JSON")["kind"] == "passport").expect("a passport");
    let mut v: Value = serde_json::from_slice(&leaves[passport]).expect("JSON");
    v["owner"] = "someone else".into();
    leaves[passport] = verifier::canonical::to_canonical(&v);
    let mut tree = CompactRange::new();
    let mut nodes = Vec::new();
    for leaf in &leaves {
        tree.push_recording(leaf_hash(leaf), &mut nodes);
    }
    std::fs::create_dir_all(to).expect("mkdir");
    for file in ["log.key", "admin.token", "openings.key", "token.key"] {
        let source: PathBuf = from.join(file);
        if source.exists() {
            std::fs::copy(&source, to.join(file)).expect("copy");
        }
    }
    let signer = ledger_core::keys::load_or_create_signer(&from.join("log.key"), ORIGIN).expect("the stolen key");
    let checkpoint = Checkpoint { origin: ORIGIN.to_owned(), size: tree.size(), root: tree.root(), extensions: Vec::new() };
    let note = checkpoint.sign(&signer).expect("signing");
    let store = RocksStore::open(&to.join("db")).expect("a new store");
    let head = StoredHead { size: leaves.len() as u64, integrated_time: head.integrated_time, checkpoint: note };
    store.commit(&CommitBatch { first_index: 0, entries: leaves, nodes, head: Some(head), records: Vec::new() }).expect("commit");
}
