//! `ledger-load`: drives a running ledger-server with C concurrent clients
//! for T seconds and prints appends/s and latency percentiles, next to a
//! same-run baseline of `GET /healthz` at the same concurrency (the cost of
//! HTTP alone), with the ratio between the two.
//!
//! Each client holds one HTTP/1.1 keep-alive connection (hyper's low-level
//! client, no pool), so the generator spends as little of the machine's CPU
//! as it can. Only loopback targets are accepted, and every run stops by
//! itself.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt as _, Either, Empty, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use verifier::entry::EntryKind;
use verifier::AgentId;

#[derive(Debug, Parser)]
#[command(name = "ledger-load", about = "HTTP load generator for ledger-server (loopback only)")]
struct Args {
    /// Server address; must be a loopback address.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Concurrent clients (one connection each).
    #[arg(short = 'c', long, default_value_t = 64)]
    clients: usize,
    /// Seconds per phase (at most 300).
    #[arg(short = 't', long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    seconds: u64,
    /// Approximate size of each stored entry (leaf), in bytes.
    #[arg(long, default_value_t = 256)]
    entry_bytes: usize,
    /// Skip the /healthz baseline phase.
    #[arg(long)]
    no_baseline: bool,
    /// Admin token, to register one agent per client (default: the
    /// server's token file under ./data).
    #[arg(long, env = "LEDGER_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Trust domain of the load's agents (the server's `--trust-domain`).
    #[arg(long, default_value = "example.org")]
    trust_domain: String,
    /// Add a phase of appends with two hidden fields and one predicate,
    /// compared with plain appends: each is committed and proven by the
    /// server (`POST /v1/hidden/commit`, a signed request), then signed in
    /// committed form and appended with its openings (two requests).
    #[arg(long)]
    hidden: bool,
    /// Add a phase of action-token requests (`POST /v1/tokens`, signed,
    /// with the policy check and the `token` entry's durable append),
    /// compared with plain signed appends. Each client rotates over eight
    /// agents: an agent holds at most 64 live tokens.
    #[arg(long)]
    tokens: bool,
}

/// What a phase sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Load {
    Healthz,
    Append,
    Hidden,
    Token,
}

/// One client's agent: a fresh key, registered before the load starts.
#[derive(Debug)]
struct LoadAgent {
    id: AgentId,
    /// The log's origin, which agent signatures are bound to.
    origin: String,
    key: ed25519_dalek::SigningKey,
    seq: std::sync::atomic::AtomicU64,
}

impl LoadAgent {
    fn new(id: &str, origin: &str) -> anyhow::Result<Self> {
        Ok(Self {
            id: AgentId::parse(id).map_err(|e| anyhow::anyhow!("agent id {id:?}: {e}"))?,
            origin: origin.to_owned(),
            key: ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng),
            seq: 0.into(),
        })
    }

    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
    }

    fn sign(&self, entry: serde_json::Value) -> String {
        self.sign_as(entry, self.next_seq())
    }

    fn sign_as(&self, mut entry: serde_json::Value, seq: u64) -> String {
        if let Some(obj) = entry.as_object_mut() {
            obj.insert("agent".into(), self.id.as_str().into());
            obj.insert("seq".into(), seq.into());
            verifier::entry::signing::sign_entry(obj, &self.origin, &self.key);
        }
        entry.to_string()
    }

    /// Headers of a request signed by this agent.
    fn request_headers(&self, method: &str, path: &str, body: &[u8]) -> [(&'static str, String); 3] {
        ledger_client::RequestSignature::sign(&self.origin, &self.id, &self.key, method, path, body).headers()
    }

    async fn register(&self, addr: SocketAddr, token: &str) -> anyhow::Result<()> {
        use base64::Engine as _;
        let stream = tokio::net::TcpStream::connect(addr).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let body = serde_json::json!({
            "agent": self.id,
            "public_key": base64::engine::general_purpose::STANDARD.encode(self.key.verifying_key().as_bytes()),
            "code_hash": "00".repeat(32), "owner": "ledger-load", "purpose": "load generation",
        });
        let req = Request::post("/v1/agents")
            .header("host", addr.to_string())
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(Bytes::from(body.to_string())))?;
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        let text = resp.into_body().collect().await?.to_bytes();
        if status != 201 {
            bail!("registering {}: {status} {}", self.id, String::from_utf8_lossy(&text));
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Phase {
    ok: u64,
    pushed_back: u64,
    failed: u64,
    latencies_us: Vec<u32>,
    elapsed: Duration,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
        f64::from(self.latencies_us[i]) / 1000.0
    }

    fn print(&self, name: &str) {
        println!(
            "{name:<10} {:>10.0}/s  ok {:>8}  503 {:>6}  errors {:>5}  p50 {:>7.2} ms  p95 {:>7.2} ms  p99 {:>7.2} ms",
            self.rate(),
            self.ok,
            self.pushed_back,
            self.failed,
            self.percentile(0.50),
            self.percentile(0.95),
            self.percentile(0.99)
        );
    }
}

type Body = Either<Empty<Bytes>, Full<Bytes>>;

fn post_json(path: &str, host: &str, body: String) -> anyhow::Result<Request<Body>> {
    Ok(Request::post(path)
        .header("host", host)
        .header("content-type", "application/json")
        .body(Either::Right(Full::new(Bytes::from(body))))?)
}

/// One client: one connection, requests back to back until the deadline.
async fn client(
    addr: SocketAddr,
    host: String,
    agents: Vec<Arc<LoadAgent>>,
    load: Load,
    pad: String,
    deadline: Instant,
) -> anyhow::Result<Phase> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Body>(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut phase = Phase::default();
    let mut seq = 0u64;
    while Instant::now() < deadline {
        seq += 1;
        let agent = &agents[(seq as usize) % agents.len()];
        let t0 = Instant::now();
        let req = match load {
            Load::Token => {
                // A 1 s token for one statement: the default class.
                let body = serde_json::json!({"action": "db.update", "resource": "sqlite://load/main",
                    "constraints": {"sql": format!("UPDATE items SET n = n + 1 WHERE id = {seq}")}, "lifetime_s": 1})
                .to_string();
                let mut req = post_json("/v1/tokens", &host, body.clone())?;
                for (name, value) in agent.request_headers("POST", "/v1/tokens", body.as_bytes()) {
                    req.headers_mut().insert(name, value.parse()?);
                }
                req
            }
            Load::Append => {
                let entry = serde_json::json!({"kind": EntryKind::Action.as_str(), "action": "write", "resource": "db/items", "data": {"seq": seq, "pad": &pad}});
                post_json("/v1/entries", &host, agent.sign(entry))?
            }
            Load::Hidden => {
                // Step 1: the server commits and proves, keeping nothing.
                let agent_seq = agent.next_seq();
                let hidden = serde_json::json!({"amount": {"u64": seq % 10_000, "prove": [{"le": 10_000}]}, "customer": {"str": format!("customer-{seq}")}});
                let salt = format!(
                    "{:016x}{:016x}",
                    rand_core::RngCore::next_u64(&mut rand_core::OsRng),
                    rand_core::RngCore::next_u64(&mut rand_core::OsRng)
                );
                let body = serde_json::json!({"seq": agent_seq, "salt": salt, "hidden": hidden}).to_string();
                let mut req = post_json("/v1/hidden/commit", &host, body.clone())?;
                for (name, value) in agent.request_headers("POST", "/v1/hidden/commit", body.as_bytes()) {
                    req.headers_mut().insert(name, value.parse()?);
                }
                sender.ready().await?;
                let resp = sender.send_request(req).await?;
                let status = resp.status().as_u16();
                let committed = resp.into_body().collect().await?.to_bytes();
                if status != 200 {
                    if status == 503 {
                        phase.pushed_back += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    } else {
                        phase.failed += 1;
                    }
                    // The sequence number was not used: later ones still
                    // increase, so the agent carries on.
                    continue;
                }
                let committed: serde_json::Value = serde_json::from_slice(&committed)?;
                // Step 2: sign the committed form, send it with the openings.
                let mut entry = serde_json::json!({"kind": EntryKind::Action.as_str(), "action": "pay", "resource": format!("invoices/{seq}"),
                    "hidden": committed["hidden"], "predicates": committed["predicates"]});
                let signed = agent.sign_as(entry.take(), agent_seq);
                let mut signed: serde_json::Value = serde_json::from_str(&signed)?;
                signed["openings"] = committed["openings"].clone();
                post_json("/v1/entries", &host, signed.to_string())?
            }
            Load::Healthz => Request::get("/healthz").header("host", &host).body(Either::Left(Empty::new()))?,
        };
        sender.ready().await?;
        let resp = sender.send_request(req).await?;
        let status = resp.status().as_u16();
        resp.into_body().collect().await?;
        let us = t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
        match status {
            200 | 201 => {
                phase.ok += 1;
                phase.latencies_us.push(us);
            }
            503 => {
                phase.pushed_back += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            _ => phase.failed += 1,
        }
    }
    Ok(phase)
}

async fn run_phase(addr: SocketAddr, args: &Args, agents: &[Vec<Arc<LoadAgent>>], load: Load) -> Phase {
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    // The leaf adds about 170 bytes around the pad (ids, time, kind, version).
    let pad = "x".repeat(args.entry_bytes.saturating_sub(170));
    let tasks: Vec<_> =
        agents.iter().map(|a| tokio::spawn(client(addr, addr.to_string(), a.clone(), load, pad.clone(), deadline))).collect();
    let mut total = Phase::default();
    for t in tasks {
        match t.await {
            Ok(Ok(p)) => {
                total.ok += p.ok;
                total.pushed_back += p.pushed_back;
                total.failed += p.failed;
                total.latencies_us.extend(p.latencies_us);
            }
            _ => total.failed += 1,
        }
    }
    total.elapsed = started.elapsed();
    total.latencies_us.sort_unstable();
    total
}

/// The log's origin: the first line of its checkpoint.
async fn fetch_origin(addr: SocketAddr) -> anyhow::Result<String> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Body>(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = Request::get("/v1/checkpoint").header("host", addr.to_string()).body(Either::Left(Empty::new()))?;
    let text = sender.send_request(req).await?.into_body().collect().await?.to_bytes();
    let origin = String::from_utf8_lossy(&text).lines().next().unwrap_or_default().to_owned();
    if origin.is_empty() {
        bail!("the server's checkpoint has no origin line");
    }
    Ok(origin)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let authority = args.url.trim_start_matches("http://").trim_end_matches('/');
    let authority =
        if authority.starts_with("localhost:") { authority.replacen("localhost", "127.0.0.1", 1) } else { authority.to_owned() };
    let addr: SocketAddr = authority.parse().with_context(|| format!("--url must be http://<loopback ip>:<port>, not {}", args.url))?;
    if !addr.ip().is_loopback() {
        bail!("ledger-load only targets loopback addresses, not {}", addr.ip());
    }
    tokio::net::TcpStream::connect(addr).await.context("server not reachable")?;
    let token = match &args.admin_token {
        Some(t) => t.clone(),
        None => std::fs::read_to_string("data/admin.token").context("no --admin-token and no ./data/admin.token")?.trim().to_owned(),
    };
    let origin = fetch_origin(addr).await?;
    let run_id = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let mut agents = Vec::with_capacity(args.clients);
    let mut token_agents = Vec::new();
    for c in 0..args.clients {
        let agent = Arc::new(LoadAgent::new(&format!("spiffe://{}/agent/load-{run_id}-{c}", args.trust_domain), &origin)?);
        agent.register(addr, &token).await?;
        agents.push(vec![agent]);
        if args.tokens {
            let mut rotation = Vec::with_capacity(8);
            for k in 0..8 {
                let agent = Arc::new(LoadAgent::new(&format!("spiffe://{}/agent/load-{run_id}-{c}-t{k}", args.trust_domain), &origin)?);
                agent.register(addr, &token).await?;
                rotation.push(agent);
            }
            token_agents.push(rotation);
        }
    }
    println!("ledger-load: {} clients, {} s per phase, {} B entries, {}", args.clients, args.seconds, args.entry_bytes, args.url);
    let baseline = if args.no_baseline {
        None
    } else {
        let p = run_phase(addr, &args, &agents, Load::Healthz).await;
        p.print("healthz");
        Some(p)
    };
    let appends = run_phase(addr, &args, &agents, Load::Append).await;
    appends.print("append");
    if let Some(b) = baseline {
        println!("ratio append/healthz throughput: {:.3}", appends.rate() / b.rate());
    }
    if args.tokens {
        let tokens = run_phase(addr, &args, &token_agents, Load::Token).await;
        tokens.print("token");
        println!("ratio token/append throughput: {:.3}", tokens.rate() / appends.rate());
    }
    if args.hidden {
        let hidden = run_phase(addr, &args, &agents, Load::Hidden).await;
        hidden.print("hidden");
        println!("ratio hidden/append throughput: {:.4}", hidden.rate() / appends.rate());
    }
    Ok(())
}
