//! `ledger-load`: drives a running ledger-server with C concurrent clients
//! for T seconds and prints appends/s and latency percentiles, next to a
//! same-run baseline of `GET /healthz` at the same concurrency (the cost of
//! HTTP alone), with the ratio between the two.
//!
//! Only loopback targets are accepted, and every run stops by itself.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "ledger-load", about = "HTTP load generator for ledger-server (loopback only)")]
struct Args {
    /// Server base URL; must be on 127.0.0.1 or localhost.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Concurrent clients.
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

async fn run_phase(client: &reqwest::Client, args: &Args, append: bool) -> Phase {
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let client = client.clone();
        let base = args.url.trim_end_matches('/').to_owned();
        // The leaf adds about 170 bytes around the pad (ids, time, kind, version).
        let pad = "x".repeat(args.entry_bytes.saturating_sub(170));
        tasks.push(tokio::spawn(async move {
            let mut phase = Phase::default();
            let mut seq = 0u64;
            while Instant::now() < deadline {
                seq += 1;
                let t0 = Instant::now();
                let result = if append {
                    let body = format!(
                        r#"{{"kind":"action","agent":"spiffe://load.example/agent/client-{c}","action":"write","resource":"db/items","data":{{"seq":{seq},"pad":"{pad}"}}}}"#
                    );
                    client.post(format!("{base}/v1/entries")).header("content-type", "application/json").body(body).send().await
                } else {
                    client.get(format!("{base}/healthz")).send().await
                };
                let us = t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                match result.map(|r| r.status().as_u16()) {
                    Ok(200 | 201) => {
                        phase.ok += 1;
                        phase.latencies_us.push(us);
                    }
                    Ok(503) => {
                        phase.pushed_back += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    _ => phase.failed += 1,
                }
            }
            phase
        }));
    }
    let mut total = Phase::default();
    for t in tasks {
        if let Ok(p) = t.await {
            total.ok += p.ok;
            total.pushed_back += p.pushed_back;
            total.failed += p.failed;
            total.latencies_us.extend(p.latencies_us);
        }
    }
    total.elapsed = started.elapsed();
    total.latencies_us.sort_unstable();
    total
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let host = args.url.split("://").nth(1).and_then(|r| r.split(['/', ':']).next()).unwrap_or_default();
    if host != "127.0.0.1" && host != "localhost" {
        bail!("ledger-load only targets 127.0.0.1 or localhost, not {host:?}");
    }
    let client = reqwest::Client::builder().pool_max_idle_per_host(args.clients).timeout(Duration::from_secs(30)).build()?;
    client.get(format!("{}/healthz", args.url.trim_end_matches('/'))).send().await.context("server not reachable")?;
    println!("ledger-load: {} clients, {} s per phase, {} B entries, {}", args.clients, args.seconds, args.entry_bytes, args.url);
    let baseline = if args.no_baseline {
        None
    } else {
        let p = run_phase(&client, &args, false).await;
        p.print("healthz");
        Some(p)
    };
    let appends = run_phase(&client, &args, true).await;
    appends.print("append");
    if let Some(b) = baseline {
        println!("ratio append/healthz throughput: {:.3}", appends.rate() / b.rate());
    }
    Ok(())
}
