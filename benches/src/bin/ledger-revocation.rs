//! `ledger-revocation`: revocation-to-refusal latency at a resource
//! server, against a running `ledger-server` on a loopback address.
//!
//! Registers `--agents` agents, gets each an action token, and starts a
//! `ledger_client::TokenVerifier` following the log's revocations (what
//! `guarded-db` runs). Then, one agent at a time, an admin quarantines it
//! and the resource checks its token in a tight loop until it is refused
//! with `token_revoked`. Two latencies per agent, from the moment the
//! quarantine is sent: until the log answered (the revocation is durable:
//! the baseline) and until the resource refuses the token. Prints both
//! distributions and the ratio of the p99s.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Parser;
use ledger_client::{Client, Operation, TokenGrant, TokenVerifier};
use serde_json::json;

/// Command line.
#[derive(Debug, Parser)]
#[command(name = "ledger-revocation", about = "Revocation-to-refusal latency at a token-checking resource")]
struct Args {
    /// Server address; must be a loopback address.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Agents to revoke, one after the other (at most 2000).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=2000))]
    agents: u32,
    /// Admin token (default: ./data/admin.token).
    #[arg(long, env = "LEDGER_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Trust domain of the agents (the server's `--trust-domain`).
    #[arg(long, default_value = "example.org")]
    trust_domain: String,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let host = args.url.trim_start_matches("http://").trim_end_matches('/');
    let ip = host.rsplit_once(':').map_or(host, |(h, _)| h);
    if !(ip == "localhost" || ip.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback())) {
        bail!("ledger-revocation only targets loopback addresses, not {ip}");
    }
    let token = match &args.admin_token {
        Some(t) => t.clone(),
        None => std::fs::read_to_string("data/admin.token").context("no --admin-token and no ./data/admin.token")?.trim().to_owned(),
    };
    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis();
    let mut held = Vec::new();
    for i in 0..args.agents {
        let id = format!("spiffe://{}/agent/revoke-{run}-{i}", args.trust_domain);
        let key = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
        let passport = json!({"agent": id, "public_key": ledger_client::public_key_b64(&key), "code_hash": "00".repeat(32),
            "owner": "ledger-revocation", "purpose": "latency measurement"});
        Client::register(&args.url, &token, &passport)?;
        let client = Client::connect(&args.url, &id, key)?;
        let TokenGrant::Token(issued) = client.request_token("db.update", "sqlite://bench/main", json!({"target": "t"}), None)? else {
            bail!("the default class escalated: run against a policy whose default class needs no human");
        };
        held.push((id, issued));
    }
    let verifier = TokenVerifier::for_log(&args.url, Duration::from_millis(0))?;
    let http: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let (mut durable, mut refused) = (Vec::new(), Vec::new());
    for (id, issued) in &held {
        let op = Operation { audience: "sqlite://bench/main", action: "db.update", target: Some("t"), ..Operation::default() };
        // Probed for another target, without taking it: the revocation
        // set is checked before the constraints, so a live token answers
        // `token_target_mismatch` and a revoked one `token_revoked`.
        let t0 = Instant::now();
        let resp = http
            .post(&format!("{}/v1/agents/{}/quarantine", args.url.trim_end_matches('/'), verifier::agent_id::encode_id(id)))
            .header("content-type", "application/json")
            .header("authorization", &format!("Bearer {token}"))
            .send("{}")?;
        if resp.status().as_u16() != 201 {
            bail!("quarantine of {id}: {}", resp.status());
        }
        durable.push(t0.elapsed());
        loop {
            match verifier.check(&issued.token, &Operation { target: Some("other"), ..op }) {
                Err(ledger_client::TokenError::Revoked { .. }) => break,
                _ if t0.elapsed() > Duration::from_secs(10) => bail!("{id}'s token was not refused within 10 s"),
                _ => std::thread::sleep(Duration::from_micros(200)),
            }
        }
        refused.push(t0.elapsed());
    }
    durable.sort_unstable();
    refused.sort_unstable();
    println!("ledger-revocation: {} agents, {}", held.len(), args.url);
    for (name, d) in [("durable", &durable), ("refused", &refused)] {
        println!(
            "{name:<8} p50 {:>7.2} ms  p95 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
            percentile(d, 0.5),
            percentile(d, 0.95),
            percentile(d, 0.99),
            percentile(d, 1.0)
        );
    }
    println!("ratio refused/durable p99: {:.3}", percentile(&refused, 0.99) / percentile(&durable, 0.99));
    Ok(())
}
