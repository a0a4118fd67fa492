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
            .args(["--listen", &format!("127.0.0.1:{port}"), "--origin", ORIGIN])
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

    /// The log's verifier key line.
    pub fn key(&self) -> String {
        self.get("/v1/log/key").trim().to_owned()
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
