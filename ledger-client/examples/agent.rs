//! An example agent: registers itself with the admin token (an operator
//! would do this once), attests with software evidence, acts, attests on a
//! timer and before a high-risk action, rotates its key, and acts again.
//!
//! ```text
//! cargo run --release --example agent -- --url http://127.0.0.1:8080 \
//!     --admin-token-file data/admin.token --name billing --key-file billing.key
//! ```
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ledger_client::{load_or_create_key, public_key_b64, Client, ClientError, Measurements, SoftwareAttester};
use serde_json::json;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn main() -> Result<(), ClientError> {
    let url = arg("--url").unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let trust_domain = arg("--trust-domain").unwrap_or_else(|| "example.org".into());
    let name = arg("--name").unwrap_or_else(|| "example".into());
    let key_file = PathBuf::from(arg("--key-file").unwrap_or_else(|| format!("{name}.key")));
    let token_file = PathBuf::from(arg("--admin-token-file").unwrap_or_else(|| "data/admin.token".into()));
    let agent = format!("spiffe://{trust_domain}/agent/{name}");
    let code_hash = [0xc0; 32];

    let key = load_or_create_key(&key_file)?;
    let token = std::fs::read_to_string(&token_file).map_err(|e| ClientError::Key(format!("{}: {e}", token_file.display())))?;
    let passport = json!({
        "agent": agent, "public_key": public_key_b64(&key), "code_hash": verifier::entry::signing::hex(&code_hash),
        "owner": "example team", "purpose": "demonstrates the SDK",
    });
    match Client::register(&url, token.trim(), &passport) {
        Ok(r) => println!("registered {agent} at index {}", r.index),
        Err(ClientError::Api { code, .. }) if code == "agent_exists" => println!("{agent} is already registered"),
        Err(e) => return Err(e),
    }

    let client = Arc::new(
        Client::connect(&url, &agent, key)?.with_attester(Box::new(SoftwareAttester), Measurements::new(code_hash, None, "sha256:example")),
    );
    let r = client.attest()?;
    println!("attested at index {}: verdict {}", r.index, r.response["verdict"]);
    for i in 0..3 {
        let r = client.act("read", &format!("db/invoices/{i}"), Some(json!({"rows": i})))?;
        println!("action at index {}", r.index);
    }
    let r = client.append(json!({"kind": "action", "action": "pay", "resource": "invoices/7",
        "hidden": {"amount": {"u64": 1250, "prove": [{"le": 10000}]}, "customer": {"str": "ACME"}}}))?;
    println!("action with hidden fields at index {}", r.index);
    let timer = client.attest_every(Duration::from_millis(200), |e| eprintln!("attestation failed: {e}"));
    std::thread::sleep(Duration::from_millis(450));
    timer.stop();
    let r = client.act_high_risk("transfer", "payments/42", Some(json!({"amount": 1250})))?;
    println!("high-risk action (attested first) at index {}", r.index);

    let new_key = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
    let r = client.rotate(new_key.clone())?;
    ledger_client::save_key(&key_file, &new_key, true)?;
    println!("rotated key at index {}", r.index);
    let r = client.act("read", "db/after-rotation", None)?;
    println!("action with the new key at index {}", r.index);
    Ok(())
}
