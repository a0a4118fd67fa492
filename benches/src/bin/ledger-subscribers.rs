//! `ledger-subscribers`: the revocation bus under load. Starts a server
//! in-process on 127.0.0.1 (RocksDB in a temporary directory), then runs
//! phases of the same load: signed appends over HTTP (`POST /v1/entries`,
//! one agent and one keep-alive connection per client, paced to `--rate`)
//! and a revocation every `--probe-ms` (`Log::revoke` of an agent
//! registered for it):
//!
//! 1. warm-up (3 s, not compared), then a baseline without subscribers;
//! 2. the same with `--subscribers` SSE subscribers of
//!    `GET /v1/events/stream?types=revocation`, recording, from the moment
//!    each revocation is acknowledged (durable, its index returned) to the
//!    moment each subscriber has read its frame, the delivery latency;
//! 3. the baseline again, once the subscribers are gone: the ratio is taken
//!    against the mean of both baselines, so that a drift of the machine
//!    (or of RocksDB as the log grows) during the run does not pass for the
//!    subscribers' cost.
//!
//! It prints each phase's append rate and revocation append latency, the
//! ratio, the delivery latency over every (revocation, subscriber) pair,
//! and per revocation the time until the last subscriber had it, with p50,
//! p99 and max. A frame read before the acknowledgement was seen counts as
//! 0. Every subscriber must receive every revocation; missing ones make the
//! run fail. The run stops by itself.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use ledger_core::{Log, LogConfig};
use ledger_server::bus::{BusConfig, RevocationBus};
use ledger_server::metrics::Metrics;
use ledger_server::serve::ServeLimits;
use ledger_server::{app, AppState, Limits};
use verifier::entry::{EntryKind, Passport, Revocation, RevocationReason};
use verifier::AgentId;

const TRUST_DOMAIN: &str = "bench.example";

// The server's allocator (ledger-server's main), so that the in-process
// server runs as the real one does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "ledger-subscribers", about = "Revocation-bus latency under signed appends (in-process server on 127.0.0.1)")]
struct Args {
    /// SSE subscribers held during the second phase.
    #[arg(short = 'n', long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=20_000))]
    subscribers: u64,
    /// Target signed appends per second (both phases).
    #[arg(long, default_value_t = 5000)]
    rate: u64,
    /// Appending clients (one agent and one connection each).
    #[arg(short = 'c', long, default_value_t = 64)]
    clients: usize,
    /// Seconds per phase (at most 300).
    #[arg(short = 't', long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    seconds: u64,
    /// Milliseconds between revocations in the second phase.
    #[arg(long, default_value_t = 250)]
    probe_ms: u64,
    /// Server worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    server_threads: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let server_threads = if args.server_threads == 0 { cores } else { args.server_threads };
    let server_rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(server_threads).thread_name("server").enable_all().build()?;
    let client_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(cores).thread_name("load").enable_all().build()?;
    let dir = tempfile::tempdir()?;
    let subscribers = usize::try_from(args.subscribers)?;
    let server = server_rt.block_on(start_server(dir.path(), subscribers, args.clients))?;
    let result = client_rt.block_on(run(&args, server.addr, &server.log));
    // Ends the subscriptions, lets the connections close, drains the log.
    let _ = server.stop.send(());
    server_rt.block_on(server.serving)??;
    let log = server.log;
    server_rt.block_on(async move { tokio::task::spawn_blocking(move || log.shutdown()).await })?;
    result
}

/// The server: as `ledger-server` builds it, with room for every
/// subscriber and client.
/// The in-process server.
struct Server {
    addr: SocketAddr,
    log: Arc<Log>,
    stop: tokio::sync::oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start_server(dir: &std::path::Path, subscribers: usize, clients: usize) -> anyhow::Result<Server> {
    let metrics = Arc::new(Metrics::new());
    let observer: Arc<dyn ledger_core::CommitObserver> = metrics.clone();
    let config = LogConfig { origin: "bench.example/log".into(), trust_domain: Some(TRUST_DOMAIN.into()), ..LogConfig::default() };
    let log = Arc::new(Log::open_dir(dir, config, Some(observer))?);
    let events = Arc::new(RevocationBus::new(
        Arc::clone(&log),
        BusConfig { max_subscribers: subscribers + 16, ..BusConfig::default() },
        Arc::clone(&metrics),
    ));
    let limits = Limits {
        max_entry_bytes: 65_535,
        max_entry_request_bytes: 2 * 65_535 + 1024,
        max_batch_entries: 1000,
        max_batch_request_bytes: 64 << 20,
        body_timeout: Duration::from_secs(30),
    };
    let admin = ledger_server::auth::AdminToken::new("bench-admin-token-0123456789").map_err(|e| anyhow::anyhow!("{e}"))?;
    let router = app(AppState {
        log: Arc::clone(&log),
        metrics,
        limits,
        admin: Some(admin),
        events: Arc::clone(&events),
        ssf: None,
        issuer: None,
        witnessing: None,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let serve_limits = ServeLimits {
        header_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        max_connections: subscribers + clients + 64,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let bus = Arc::clone(&events);
    let serving = tokio::spawn(ledger_server::serve::serve(listener, router, serve_limits, async move {
        let _ = stopped.await;
        bus.close();
    }));
    Ok(Server { addr, log, stop, serving })
}

/// One appending agent.
struct LoadAgent {
    id: AgentId,
    key: ed25519_dalek::SigningKey,
}

fn passport(id: &AgentId, key: &ed25519_dalek::SigningKey) -> Passport {
    Passport {
        agent: id.clone(),
        public_key: key.verifying_key(),
        code_hash: [0; 32],
        model_hash: None,
        owner: "ledger-subscribers".into(),
        purpose: "load".into(),
        tpm_ak: None,
    }
}

async fn run(args: &Args, addr: SocketAddr, log: &Arc<Log>) -> anyhow::Result<()> {
    let origin = log.config().origin.clone();
    let mut agents = Vec::with_capacity(args.clients);
    for c in 0..args.clients {
        let id = AgentId::parse(&format!("spiffe://{TRUST_DOMAIN}/agent/load-{c}")).map_err(|e| anyhow::anyhow!("{e}"))?;
        let key = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
        log.register(passport(&id, &key)).await?;
        agents.push(Arc::new(LoadAgent { id, key }));
    }
    let probes = usize::try_from(args.seconds * 1000 / args.probe_ms.max(1))?.max(1);
    let mut targets = Vec::with_capacity(3 * probes);
    for p in 0..3 * probes {
        let id = AgentId::parse(&format!("spiffe://{TRUST_DOMAIN}/agent/revoked-{p}")).map_err(|e| anyhow::anyhow!("{e}"))?;
        let key = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
        log.register(passport(&id, &key)).await?;
        targets.push(id);
    }
    println!(
        "ledger-subscribers: {} subscribers, {} clients, target {} appends/s, {} s per phase, a revocation every {} ms, {} cores",
        args.subscribers,
        args.clients,
        args.rate,
        args.seconds,
        args.probe_ms,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let seconds = Duration::from_secs(args.seconds);
    let probe = Duration::from_millis(args.probe_ms);
    let mut targets = targets.chunks(probes);
    let mut next_targets = || targets.next().unwrap_or_default().to_vec();

    // A fresh log appends slower for its first seconds (RocksDB, caches).
    let warm = appends(addr, &origin, &agents, args.rate, Duration::from_secs(3)).await?;
    println!("warm-up   (3 s, not compared)   appends {:>8.0}/s", warm.rate());
    let (before, before_acks) = phase(addr, &origin, &agents, args.rate, seconds, log, next_targets(), probe).await?;
    before.print("baseline  (0 subscribers)", &before_acks);

    // Subscribers, all connected before the load starts.
    let deadline = Instant::now() + seconds + Duration::from_secs(60);
    let mut subs = Vec::with_capacity(usize::try_from(args.subscribers)?);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(1024);
    for _ in 0..args.subscribers {
        let ready = ready_tx.clone();
        subs.push(tokio::spawn(subscriber(addr, probes, deadline, ready)));
    }
    drop(ready_tx);
    let mut connected = 0;
    while connected < args.subscribers {
        if ready_rx.recv().await.is_none() {
            bail!("only {connected} of {} subscribers connected", args.subscribers);
        }
        connected += 1;
    }
    let (loaded, acks) = phase(addr, &origin, &agents, args.rate, seconds, log, next_targets(), probe).await?;
    // Each subscriber hangs up once it has every revocation.
    let mut receipts = Vec::with_capacity(subs.len());
    for s in subs {
        receipts.push(s.await??);
    }
    loaded.print(&format!("with {:>5} subscribers", args.subscribers), &acks);

    let (after, after_acks) = phase(addr, &origin, &agents, args.rate, seconds, log, next_targets(), probe).await?;
    after.print("baseline  (0 subscribers)", &after_acks);
    println!("ratio of appends/s with subscribers to the baselines' mean: {:.3}", loaded.rate() / ((before.rate() + after.rate()) / 2.0));

    let mut delivered = Vec::new();
    let mut last_per_probe = Vec::new();
    let mut missing = 0usize;
    for (index, _, ack) in &acks {
        let mut last = Duration::ZERO;
        for got in &receipts {
            match got.iter().find(|(i, _)| i == index) {
                Some((_, at)) => {
                    let latency = at.saturating_duration_since(*ack);
                    last = last.max(latency);
                    delivered.push(latency);
                }
                None => missing += 1,
            }
        }
        last_per_probe.push(last);
    }
    println!("delivery, ack → one subscriber  {:>6} samples  {}", delivered.len(), summary(&mut delivered));
    println!("delivery, ack → all subscribers {:>6} samples  {}", last_per_probe.len(), summary(&mut last_per_probe));
    if missing > 0 {
        bail!("{missing} (revocation, subscriber) pairs never delivered");
    }
    Ok(())
}

/// A revocation: its index, when it was sent, when it was acknowledged.
type Ack = (u64, Instant, Instant);

/// One phase: appends for `length`, and meanwhile one revocation of each
/// of `targets` every `probe`.
#[allow(clippy::too_many_arguments)]
async fn phase(
    addr: SocketAddr,
    origin: &str,
    agents: &[Arc<LoadAgent>],
    rate: u64,
    length: Duration,
    log: &Arc<Log>,
    targets: Vec<AgentId>,
    probe: Duration,
) -> anyhow::Result<(Appends, Vec<Ack>)> {
    let load = tokio::spawn({
        let (origin, agents) = (origin.to_owned(), agents.to_vec());
        async move { appends(addr, &origin, &agents, rate, length).await }
    });
    let mut acks = Vec::with_capacity(targets.len());
    let mut ticker = tokio::time::interval(probe);
    for target in targets {
        ticker.tick().await;
        let revocation = Revocation {
            agent: target,
            reason: RevocationReason::Quarantine,
            score: 0,
            threshold: 30,
            causes: vec![],
            policy_index: None,
            decision: None,
            note: None,
            tokens: Vec::new(),
        };
        let sent = Instant::now();
        let appended = log.revoke(&revocation).await?;
        acks.push((appended.index, sent, Instant::now()));
    }
    Ok((load.await??, acks))
}

fn summary(samples: &mut [Duration]) -> String {
    samples.sort_unstable();
    let at = |p: f64| samples.get(((samples.len().saturating_sub(1)) as f64 * p).round() as usize).map_or(0.0, |d| d.as_secs_f64() * 1e3);
    format!("p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms", at(0.5), at(0.99), at(1.0))
}

#[derive(Debug, Default)]
struct Appends {
    ok: u64,
    refused: u64,
    elapsed: Duration,
}

impl Appends {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    fn print(&self, name: &str, acks: &[Ack]) {
        let mut latency: Vec<Duration> = acks.iter().map(|(_, sent, ack)| ack.duration_since(*sent)).collect();
        println!(
            "{name:<31} appends {:>8.0}/s  ok {:>7}  refused {:>4}  revocation append {}",
            self.rate(),
            self.ok,
            self.refused,
            summary(&mut latency)
        );
    }
}

/// Signed appends from every agent, paced to `rate` in all, for `length`.
async fn appends(addr: SocketAddr, origin: &str, agents: &[Arc<LoadAgent>], rate: u64, length: Duration) -> anyhow::Result<Appends> {
    let started = Instant::now();
    let deadline = started + length;
    let interval = Duration::from_secs_f64(agents.len() as f64 / rate.max(1) as f64);
    let tasks: Vec<_> = agents
        .iter()
        .enumerate()
        .map(|(c, agent)| {
            let (agent, origin) = (Arc::clone(agent), origin.to_owned());
            // Spread the clients' schedules over one interval.
            let first = started + interval.mul_f64(c as f64 / agents.len() as f64);
            tokio::spawn(async move { append_client(addr, &origin, &agent, first, interval, deadline).await })
        })
        .collect();
    let mut total = Appends::default();
    for t in tasks {
        let part = t.await??;
        total.ok += part.ok;
        total.refused += part.refused;
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

/// One client: its own connection, one append per `interval` (catching up
/// without sleeping when behind), until `deadline`.
async fn append_client(
    addr: SocketAddr,
    origin: &str,
    agent: &LoadAgent,
    first: Instant,
    interval: Duration,
    deadline: Instant,
) -> anyhow::Result<Appends> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    // Sequence numbers continue across phases: start after the last one.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let mut out = Appends::default();
    let mut next = first;
    let pad = "p".repeat(80);
    loop {
        tokio::time::sleep_until(next.into()).await;
        if Instant::now() >= deadline {
            break;
        }
        next += interval;
        // One counter for all agents keeps each agent's numbers increasing.
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut entry = serde_json::json!({"kind": EntryKind::Action.as_str(), "action": "write", "resource": "db/items", "data": {"pad": pad},
            "agent": agent.id.as_str(), "seq": seq});
        if let Some(obj) = entry.as_object_mut() {
            verifier::entry::signing::sign_entry(obj, origin, &agent.key);
        }
        let req = Request::post("/v1/entries")
            .header("host", addr.to_string())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(entry.to_string())))?;
        sender.ready().await?;
        let resp = sender.send_request(req).await?;
        let status = resp.status().as_u16();
        resp.into_body().collect().await?;
        match status {
            201 => out.ok += 1,
            _ => out.refused += 1,
        }
    }
    Ok(out)
}

/// One SSE subscriber: reads frames until it has `probes` events or the
/// deadline passes; returns (index, when read) of each event.
async fn subscriber(
    addr: SocketAddr,
    probes: usize,
    deadline: Instant,
    ready: tokio::sync::mpsc::Sender<()>,
) -> anyhow::Result<Vec<(u64, Instant)>> {
    let stream = tokio::net::TcpStream::connect(addr).await.context("a subscriber connecting")?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = Request::get("/v1/events/stream?types=revocation").header("host", addr.to_string()).body(Empty::new())?;
    let resp = sender.send_request(req).await?;
    if resp.status() != 200 {
        bail!("subscribing: {}", resp.status());
    }
    let _ = ready.send(()).await;
    drop(ready);
    let mut body = resp.into_body();
    let mut buf: Vec<u8> = Vec::new();
    let mut got = Vec::with_capacity(probes);
    while got.len() < probes {
        let frame = match tokio::time::timeout_at(deadline.into(), body.frame()).await {
            Ok(Some(frame)) => frame?,
            Ok(None) | Err(_) => break,
        };
        let Ok(data) = frame.into_data() else { continue };
        let now = Instant::now();
        buf.extend_from_slice(&data);
        // Whole frames end with a blank line; an event's first line is its id.
        while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
            let frame: Vec<u8> = buf.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&frame);
            if text.contains("\nevent: ") {
                if let Some(id) = text.strip_prefix("id: ").and_then(|t| t.split('\n').next()).and_then(|t| t.parse().ok()) {
                    got.push((id, now));
                }
            }
        }
    }
    Ok(got)
}
