//! Helpers for end-to-end tests: start the real `ledger-server` binary on a
//! free loopback port, talk to it over HTTP, kill it, run `ledger-verify`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Path of a binary built from this workspace, next to the test executable
/// (`cargo test --workspace` builds every package's binaries).
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target profile directory");
    let path = dir.join(name);
    assert!(path.exists(), "{} is missing: run the tests with `cargo test --release --workspace`", path.display());
    path
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// A running `ledger-server` process.
#[derive(Debug)]
pub struct Server {
    child: Option<Child>,
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    /// Its data directory.
    pub data_dir: PathBuf,
}

/// The origin the tests run their logs under.
pub const ORIGIN: &str = "e2e.example/log";

/// The trust domain of the tests' agents.
pub const TRUST_DOMAIN: &str = "e2e.example";

/// A registered agent: its key and its next sequence number.
#[derive(Debug)]
pub struct Agent {
    /// SPIFFE id.
    pub id: String,
    /// Signing key.
    pub key: ed25519_dalek::SigningKey,
    seq: std::sync::atomic::AtomicU64,
}

impl Agent {
    /// An agent named `name` in the tests' trust domain, with a key derived
    /// from the name (so a restarted test process signs with the same key).
    pub fn new(name: &str) -> Agent {
        Self::with_id(&format!("spiffe://{TRUST_DOMAIN}/agent/{name}"))
    }

    /// An agent with a full SPIFFE id.
    pub fn with_id(id: &str) -> Agent {
        use sha2::Digest as _;
        let id = id.to_owned();
        let seed: [u8; 32] = sha2::Sha256::digest(id.as_bytes()).into();
        Agent { id, key: ed25519_dalek::SigningKey::from_bytes(&seed), seq: std::sync::atomic::AtomicU64::new(0) }
    }

    /// An agent with a given key (e.g. after a rotation).
    pub fn with_key(id: &str, key: ed25519_dalek::SigningKey) -> Agent {
        Agent { id: id.to_owned(), key, seq: std::sync::atomic::AtomicU64::new(0) }
    }

    /// The passport JSON an admin registers.
    pub fn passport(&self) -> serde_json::Value {
        use base64::Engine as _;
        serde_json::json!({
            "agent": self.id,
            "public_key": base64::engine::general_purpose::STANDARD.encode(self.key.verifying_key().as_bytes()),
            "code_hash": "c0".repeat(32),
            "owner": "e2e tests",
            "purpose": "testing",
        })
    }

    /// Next sequence number.
    pub fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1
    }

    /// Starts sequence numbers after `last`.
    pub fn resume_after(&self, last: u64) {
        self.seq.store(last, std::sync::atomic::Ordering::SeqCst);
    }

    /// Signs `entry` (an object; `agent` and `seq` are set here) and
    /// returns the JSON body.
    pub fn sign(&self, mut entry: serde_json::Value) -> String {
        let obj = entry.as_object_mut().expect("an entry object");
        obj.insert("agent".into(), self.id.clone().into());
        obj.insert("seq".into(), self.next_seq().into());
        verifier::entry::signing::sign_entry(obj, ORIGIN, &self.key);
        entry.to_string()
    }

    /// [`Agent::sign`] for an action with plain `hidden` values: commits
    /// them first (as the SDK does), signs the committed form and adds the
    /// openings beside it.
    pub fn sign_committed(&self, mut entry: serde_json::Value) -> String {
        let obj = entry.as_object_mut().expect("an entry object");
        obj.insert("agent".into(), self.id.clone().into());
        obj.insert("seq".into(), self.next_seq().into());
        let openings = verifier::hidden::commit_entry(obj, ORIGIN, &mut rand_core::OsRng, zk::params()).expect("hidden values that commit");
        verifier::entry::signing::sign_entry(obj, ORIGIN, &self.key);
        obj.insert("openings".into(), openings);
        entry.to_string()
    }

    /// POSTs `body` to `path` as a request signed by this agent for a log
    /// of origin [`ORIGIN`]; returns the status and the JSON answer.
    pub fn signed_post(&self, base: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
        let signed = ledger_client::RequestSignature::sign(
            ORIGIN,
            &verifier::AgentId::parse(&self.id).expect("an agent id"),
            &self.key,
            "POST",
            path,
            body.as_bytes(),
        );
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let mut request = agent.post(&format!("{base}{path}")).header("content-type", "application/json");
        for (name, value) in signed.headers() {
            request = request.header(name, &value);
        }
        let mut resp = request.send(body.to_owned()).expect("request");
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().expect("body");
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    }

    /// The id percent-encoded for a path.
    pub fn path_id(&self) -> String {
        self.id.replace(':', "%3A").replace('/', "%2F")
    }

    /// A signed action body.
    pub fn action(&self, resource: &str, data: Option<serde_json::Value>) -> String {
        let mut e = serde_json::json!({"kind": "action", "action": "write", "resource": resource});
        if let Some(d) = data {
            e["data"] = d;
        }
        self.sign(e)
    }
}

impl Server {
    /// Starts a server on `data_dir` (created if needed) and waits until it
    /// answers `/healthz`.
    pub fn start(data_dir: &Path) -> Server {
        Self::start_with(data_dir, &[])
    }

    /// Like [`Server::start`] with extra flags.
    pub fn start_with(data_dir: &Path, extra: &[&str]) -> Server {
        std::fs::create_dir_all(data_dir).expect("data dir");
        let port = free_port();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(data_dir.join("server.log")).expect("server log");
        let child = Command::new(bin_path("ledger-server"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--origin", ORIGIN, "--trust-domain", TRUST_DOMAIN])
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .env("LEDGER_LOG", "warn")
            .stdout(Stdio::from(log.try_clone().expect("log handle")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawning ledger-server");
        let server = Server { child: Some(child), url: format!("http://127.0.0.1:{port}"), data_dir: data_dir.to_owned() };
        server.wait_ready(data_dir);
        server
    }

    /// Runs `ledger-server` on `data_dir` expecting it to refuse to start
    /// (non-zero exit); returns what it printed, also kept in `log`.
    /// Bounded: a server still running after 30 s fails the test.
    pub fn start_refused(data_dir: &Path, log: &Path) -> String {
        let mut child = Command::new(bin_path("ledger-server"))
            .args(["--listen", &format!("127.0.0.1:{}", free_port()), "--origin", ORIGIN, "--trust-domain", TRUST_DOMAIN])
            .arg("--data-dir")
            .arg(data_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(log).expect("creating the server log")))
            .spawn()
            .expect("starting ledger-server");
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().expect("waiting for ledger-server") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("ledger-server started although it should have refused to");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(!status.success(), "ledger-server exited 0 instead of refusing to start");
        std::fs::read_to_string(log).expect("reading the server log")
    }

    /// Starts `ledger-server` with no flags at all: configuration only from
    /// `env`, working directory `cwd` (so the default `./data` lands there).
    pub fn start_from_env(cwd: &Path, env: &[(&str, &str)], url: String) -> Server {
        let log = std::fs::File::create(cwd.join("server.log")).expect("server log");
        let child = Command::new(bin_path("ledger-server"))
            .current_dir(cwd)
            .envs(env.iter().copied())
            .env("LEDGER_LOG", "warn")
            .stdout(Stdio::from(log.try_clone().expect("log handle")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawning ledger-server");
        let server = Server { child: Some(child), url, data_dir: cwd.join("data") };
        server.wait_ready(cwd);
        server
    }

    fn wait_ready(&self, log_dir: &Path) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if ureq::get(&format!("{}/healthz", self.url)).call().is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("ledger-server did not come up; see {}", log_dir.join("server.log").display());
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for a clean exit and returns whether it was 0.
    pub fn terminate(&mut self) -> bool {
        let Some(mut child) = self.child.take() else { return false };
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid fits i32"));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        false
    }

    /// GET a path and return the body as text.
    pub fn get(&self, path: &str) -> String {
        ureq::get(&format!("{}{path}", self.url)).call().expect("GET").body_mut().read_to_string().expect("body")
    }

    /// The admin token the server generated in its data directory.
    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("admin.token")).expect("admin token file").trim().to_owned()
    }

    /// Registers `agent` with the admin token.
    pub fn register(&self, agent: &Agent) {
        let resp = ureq::post(&format!("{}/v1/agents", self.url))
            .header("content-type", "application/json")
            .header("authorization", &format!("Bearer {}", self.admin_token()))
            .send(agent.passport().to_string());
        assert!(resp.is_ok(), "registering {}: {:?}", agent.id, resp.err());
    }

    /// The log's verifier key line.
    pub fn key(&self) -> String {
        self.get("/v1/log/key").trim().to_owned()
    }

    /// Saves the tlog-proof bundles of entries `indices` in `dir` and runs
    /// `ledger-verify agent` over them with the log's key.
    pub fn verify_agent_entries(&self, dir: &Path, indices: impl IntoIterator<Item = u64>) -> Output {
        let files: Vec<String> = indices
            .into_iter()
            .map(|i| {
                let path = dir.join(format!("{i}.tlog-proof"));
                std::fs::write(&path, self.get(&format!("/v1/proof/bundle?index={i}"))).expect("writing a proof bundle");
                path.to_str().expect("a UTF-8 path").to_owned()
            })
            .collect();
        let key = self.key();
        let mut args = vec!["agent", "--key", key.as_str()];
        args.extend(files.iter().map(String::as_str));
        ledger_verify(&args)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `ledger-verify` with `args`.
pub fn ledger_verify(args: &[&str]) -> Output {
    Command::new(bin_path("ledger-verify")).args(args).output().expect("running ledger-verify")
}

/// Raw HTTP/1.1 over a plain socket, for tests of the connection layer
/// (timeouts, the connection cap) that an HTTP client library would hide.
pub mod raw {
    use std::io::{ErrorKind, Read as _};
    use std::net::TcpStream;
    use std::time::Duration;

    /// How long a raw read may wait before the test fails: generous, so a
    /// slow machine does not fail a test, and bounded, so none hangs.
    pub const READ_WAIT: Duration = Duration::from_secs(30);

    /// A connection to the server at `url` (`http://host:port`).
    pub fn connect(url: &str) -> TcpStream {
        let addr = url.strip_prefix("http://").expect("an http:// URL");
        let stream = TcpStream::connect(addr).expect("connecting");
        stream.set_read_timeout(Some(READ_WAIT)).expect("read timeout");
        stream
    }

    /// Reads one response; returns its head (lower-cased) and its body,
    /// which must have a `content-length`.
    pub fn read_response(stream: &mut TcpStream) -> (String, Vec<u8>) {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let n = stream.read(&mut byte).unwrap_or_else(|e| panic!("reading a response head: {e}"));
            assert_eq!(n, 1, "the connection closed mid-head: {:?}", String::from_utf8_lossy(&head));
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        let len = head.lines().find_map(|l| l.strip_prefix("content-length:")).map_or(0, |v| v.trim().parse().expect("a length"));
        let mut body = vec![0u8; len];
        stream.read_exact(&mut body).expect("reading a response body");
        (head, body)
    }

    /// Reads until the server closes the connection and returns how many
    /// bytes came first; a reset counts as closed. Panics if the server
    /// keeps it open past [`READ_WAIT`].
    pub fn read_until_closed(stream: &mut TcpStream) -> usize {
        let mut total = 0;
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => return total,
                Ok(n) => total += n,
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return total,
                Err(e) => panic!("the server kept the connection open ({e})"),
            }
        }
    }
}

/// A log kept in memory and signed with a key the test holds, for checks
/// that need proof files a real log would never serve (two histories under
/// one key) or no server at all (fuzz seeds).
#[derive(Debug)]
pub struct MemoryLog {
    signer: verifier::note::NoteSigner,
    /// Leaf bytes, in index order.
    pub leaves: Vec<Vec<u8>>,
}

impl MemoryLog {
    /// An empty log named `origin`, signing with `seed` as its Ed25519 key.
    pub fn new(origin: &str, seed: [u8; 32]) -> MemoryLog {
        let signer = verifier::note::NoteSigner::new(origin, ed25519_dalek::SigningKey::from_bytes(&seed)).expect("a valid origin");
        MemoryLog { signer, leaves: Vec::new() }
    }

    /// The verifier key line (`name+id+key`).
    pub fn key(&self) -> String {
        self.signer.verifier_key().to_string()
    }

    /// The signed checkpoint of the first `size` leaves.
    pub fn checkpoint(&self, size: u64) -> String {
        let hashes: Vec<verifier::Hash> = self.leaves[..size as usize].iter().map(|l| verifier::hash::leaf_hash(l)).collect();
        let root = verifier::tree::hash_leaves(&hashes);
        let cp = verifier::Checkpoint { origin: self.signer.verifier_key().name().into(), size, root, extensions: vec![] };
        cp.sign(&self.signer).expect("signing a checkpoint")
    }

    /// The tlog-proof of leaf `index` in the tree of the first `size`
    /// leaves, carrying the leaf in `extra`.
    pub fn proof(&self, index: u64, size: u64) -> verifier::tlog_proof::TlogProof {
        let plan = verifier::tree::inclusion_plan(index, size).expect("index below size");
        let nodes = self.node_hashes(size, plan.nodes());
        verifier::tlog_proof::TlogProof {
            extra: Some(self.leaves[index as usize].clone()),
            index,
            hashes: plan.assemble(&nodes).expect("as many hashes as planned"),
            checkpoint: self.checkpoint(size),
        }
    }

    /// The RFC 9162 consistency proof between the trees of the first `old`
    /// and `new` leaves.
    pub fn consistency(&self, old: u64, new: u64) -> Vec<verifier::Hash> {
        let plan = verifier::tree::consistency_plan(old, new).expect("old not above new");
        plan.assemble(&self.node_hashes(new, plan.nodes())).expect("as many hashes as planned")
    }

    /// The hashes of tree nodes `ids`, from the first `size` leaves.
    fn node_hashes(&self, size: u64, ids: &[verifier::tree::NodeId]) -> Vec<verifier::Hash> {
        let hashes: Vec<verifier::Hash> = self.leaves[..size as usize].iter().map(|l| verifier::hash::leaf_hash(l)).collect();
        ids.iter()
            .map(|id| {
                let (start, end) = id.leaf_range();
                verifier::tree::hash_leaves(&hashes[start as usize..end as usize])
            })
            .collect()
    }
}
