//! The Rust SDK's signed appends per second, one after another from one
//! thread: the baseline the Python package's appends are compared with
//! (`scripts/python-bench.sh`, docs/PERFORMANCE.md "Python SDK").
//!
//! ```text
//! append-rate --url http://127.0.0.1:8080 --admin-token TOKEN --count 2000 [--hidden]
//! ```
//! Registers a fresh agent, appends `--count` actions (with one hidden
//! integer each with `--hidden`), and prints one JSON line.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use ledger_client::{public_key_b64, Client, ClientError};
use serde_json::json;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn main() -> Result<(), ClientError> {
    let url = arg("--url").unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let token = arg("--admin-token").ok_or_else(|| ClientError::Key("--admin-token is required".into()))?;
    let count: u64 = arg("--count").map_or(2000, |c| c.parse().unwrap());
    let hidden = std::env::args().any(|a| a == "--hidden");
    let key = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
    let agent = format!("spiffe://example.org/agent/rust-rate-{}", std::process::id());
    let passport = json!({
        "agent": agent, "public_key": public_key_b64(&key), "code_hash": "c0".repeat(32),
        "owner": "benchmarks", "purpose": "measures the SDK's append rate",
    });
    Client::register(&url, &token, &passport)?;
    let client = Client::connect(&url, &agent, key)?;
    let start = Instant::now();
    for i in 0..count {
        let mut entry = json!({"kind": "action", "action": "read", "resource": format!("bench/{i}"), "data": {"i": i}});
        if hidden {
            entry["hidden"] = json!({"amount": {"u64": i}});
        }
        client.append(entry)?;
    }
    let seconds = start.elapsed().as_secs_f64();
    println!("{}", json!({"sdk": "rust", "appends": count, "hidden": hidden, "seconds": seconds, "per_s": count as f64 / seconds}));
    Ok(())
}
