//! Writes tests/vectors/sdk-sealed-entries.json: entries sealed by
//! [`ledger_client::seal_entry`] from fixed keys, entries and RNG seeds.
//! Every binding of the SDK (the Python package's `seal_entry`) must give
//! these bytes; `tests/seal.rs` checks the Rust SDK still does.
//!
//! `cargo run --release -p ledger-client --example sdk-vectors > tests/vectors/sdk-sealed-entries.json`

use rand_core::SeedableRng as _;
use serde_json::{json, Value};

/// The cases: (key seed byte, origin, agent, seq, entry, RNG seed byte).
fn cases() -> Vec<(u8, &'static str, &'static str, u64, Value, u8)> {
    vec![
        (
            7,
            "example.org/agent-ledger",
            "spiffe://example.org/agent/billing",
            1,
            json!({"kind": "action", "action": "read", "resource": "db/invoices", "data": {"rows": 42}}),
            1,
        ),
        (
            7,
            "example.org/agent-ledger",
            "spiffe://example.org/agent/billing",
            2,
            json!({"kind": "action", "action": "pay", "resource": "invoices/7", "data": {"currency": "EUR"},
                   "hidden": {"amount": {"u64": 1250, "prove": [{"le": 10000}, {"ge": 1, "le": 5000}]}, "customer": {"str": "ACME"}}}),
            9,
        ),
        (
            42,
            "test.example/agent-ledger",
            "spiffe://example.org/agent/py.agent_1",
            7,
            json!({"kind": "action", "action": "tool.read_file", "resource": "/tmp/é.txt", "data": {"phase": "start", "n": -3},
                   "hidden": {"input_sha256": {"str": "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"}}}),
            3,
        ),
    ]
}

fn main() -> Result<(), ledger_client::ClientError> {
    let mut out = Vec::new();
    for (key_seed, origin, agent, seq, entry, rng_seed) in cases() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[key_seed; 32]);
        let id = verifier::AgentId::parse(agent).map_err(|reason| ledger_client::ClientError::AgentId { id: agent.into(), reason })?;
        let mut rng = rand_chacha::ChaCha20Rng::from_seed([rng_seed; 32]);
        let sealed = ledger_client::seal_entry(entry.clone(), origin, &id, seq, &key, &mut rng)?;
        out.push(json!({
            "key_seed": hex(&[key_seed; 32]), "origin": origin, "agent": agent, "seq": seq,
            "entry": entry, "rng_seed": hex(&[rng_seed; 32]), "sealed": sealed,
        }));
    }
    let doc = json!({
        "description": "Entries sealed by ledger_client::seal_entry (agent and seq set, hidden fields committed and proven with ChaCha20 seeded by rng_seed, signed with the Ed25519 key whose secret is key_seed, openings beside). Made by `cargo run --release -p ledger-client --example sdk-vectors`; checked by ledger-client/tests/seal.rs and ledger-py/tests/test_sdk.py.",
        "cases": out,
    });
    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
