//! The trust fold, offline and in the log, each against a baseline in the
//! same run:
//!
//! * `offline`: what `ledger-verify trust` does per entry, over 4096
//!   leaves of 64 agents (passports, signed actions, attestations): re-hash
//!   only (`rehash`, the floor: `ledger-verify audit`), decode the leaf
//!   (`decode`), decode and fold the trust view (`trust`), and the full
//!   check: decode, the registry fold with every signature verified, and
//!   the trust fold (`registry_and_trust`).
//!
//! What the trust view costs the append path is measured end to end by
//! `agents` (`signed_append`) against the build before the view
//! (docs/PERFORMANCE.md).

// In tests and benches a failed unwrap is the failure report.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use ed25519_dalek::SigningKey;
use ledger_benches::Totals;
use serde_json::{json, Map, Value};
use verifier::canonical::to_canonical;
use verifier::entry::signing::sign_entry;
use verifier::entry::{Form, Leaf, Passport};
use verifier::fold::registry::Registry;
use verifier::fold::trust_log::TrustMap;
use verifier::hash::leaf_hash;

const ORIGIN: &str = "bench.example/log";
const AGENTS: usize = 64;
const LEAVES: usize = 4096;

fn leaf(mut members: Map<String, Value>, time: u64) -> Vec<u8> {
    members.insert("integrated_time".into(), time.into());
    members.insert("v".into(), 2.into());
    to_canonical(&Value::Object(members))
}

/// Passports for every agent, then signed actions and a software
/// attestation verdict now and then, as a log holds them.
fn log_leaves() -> Vec<Vec<u8>> {
    let keys: Vec<SigningKey> = (0..AGENTS).map(|i| SigningKey::from_bytes(&[i as u8 + 1; 32])).collect();
    let id = |i: usize| format!("spiffe://bench.example/agent/a{i}");
    let mut out = Vec::with_capacity(LEAVES);
    for (i, k) in keys.iter().enumerate() {
        let p = Passport {
            agent: verifier::AgentId::parse(&id(i)).unwrap(),
            public_key: k.verifying_key(),
            code_hash: [i as u8; 32],
            model_hash: None,
            owner: "bench".into(),
            purpose: "bench".into(),
            tpm_ak: None,
        };
        out.push(leaf(p.to_object(), 1_000 + i as u64));
    }
    let mut seq = vec![0u64; AGENTS];
    while out.len() < LEAVES {
        let n = out.len();
        let i = n % AGENTS;
        seq[i] += 1;
        let mut m = json!({"kind": "action", "agent": id(i), "action": "write", "resource": format!("db/{}", n % 7), "seq": seq[i]})
            .as_object()
            .unwrap()
            .clone();
        sign_entry(&mut m, ORIGIN, &keys[i]);
        out.push(leaf(m, 2_000 + n as u64));
    }
    out
}

fn offline(c: &mut Criterion, totals: &Totals, leaves: &[Vec<u8>]) {
    let mut group = c.benchmark_group("trust_offline");
    group.sample_size(10).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_millis(300));
    group.throughput(Throughput::Elements(leaves.len() as u64));
    for mode in ["rehash", "decode", "trust", "registry_and_trust"] {
        group.bench_function(BenchmarkId::new(mode, leaves.len()), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    let (mut registry, mut trust) = (Registry::new(ORIGIN), TrustMap::default());
                    for (index, bytes) in leaves.iter().enumerate() {
                        if mode == "rehash" {
                            std::hint::black_box(leaf_hash(bytes));
                            continue;
                        }
                        let (leaf, _) = Leaf::decode_in(bytes, Form::Audit).unwrap();
                        if mode == "registry_and_trust" {
                            registry.apply_leaf(index as u64, &leaf).unwrap();
                        }
                        if mode != "decode" {
                            trust.apply_leaf(index as u64, &leaf).unwrap();
                        }
                        std::hint::black_box(&leaf);
                    }
                }
                let elapsed = start.elapsed();
                totals.record(mode, elapsed, iters * leaves.len() as u64);
                elapsed
            })
        });
    }
    group.finish();
}

fn main() {
    let totals = Totals::default();
    let leaves = log_leaves();
    let mut c = Criterion::default().configure_from_args();
    offline(&mut c, &totals, &leaves);
    c.final_summary();
    let rate = |k: &str| totals.rate(k);
    let (h, d, t, full) = (rate("rehash"), rate("decode"), rate("trust"), rate("registry_and_trust"));
    if h > 0.0 && full > 0.0 {
        println!(
            "offline trust fold over {LEAVES} leaves of {AGENTS} agents: re-hash {h:.0}/s, decode {d:.0}/s, decode + trust fold {t:.0}/s ({:.2}x decode), decode + registry (signatures) + trust {full:.0}/s ({:.3}x re-hash)",
            t / d,
            full / h
        );
    }
}
