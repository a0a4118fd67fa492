//! Proof generation from RocksDB at 10^3..10^6 entries against the raw
//! RocksDB reads of the same node keys, and checkpoint verification against
//! a bare Ed25519 verification of the same note text; ratios printed at the
//! end.

// In tests and benches a failed unwrap is the failure report.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use ed25519_dalek::SigningKey;
use ledger_core::store::{LogStore, RocksStore};
use ledger_core::{Log, LogConfig};
use rand::{Rng, SeedableRng};
use verifier::note::{NoteSigner, NoteVerifier, SignedNote};
use verifier::tree::inclusion_plan;
use verifier::Checkpoint;

const SIZES: [u64; 4] = [1_000, 10_000, 100_000, 1_000_000];
const ORIGIN: &str = "bench.example/log";

type Totals = Mutex<BTreeMap<String, (Duration, u64)>>;

fn timed<F: FnMut()>(totals: &Totals, key: &str, iters: u64, mut f: F) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    let elapsed = start.elapsed();
    let mut t = totals.lock().unwrap();
    let e = t.entry(key.to_owned()).or_default();
    e.0 += elapsed;
    e.1 += iters;
    elapsed
}

fn main() {
    let totals = Totals::default();
    let mut c = Criterion::default().configure_from_args();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();

    // One log of 10^6 entries; proofs are asked for at each smaller size.
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RocksStore::open_with(&dir.path().join("db"), false).unwrap());
    let signer = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[2; 32])).unwrap();
    let verifier = NoteVerifier::new(signer.verifier_key());
    let log =
        Log::open(store.clone(), signer.clone(), LogConfig { origin: ORIGIN.into(), agent_auth: false, ..LogConfig::default() }, None)
            .unwrap();
    let max = *SIZES.last().unwrap();
    let mut rss = Vec::new();
    let mut seq = 0u64;
    while seq < max {
        let batch = ledger_benches::bench_entries(10_000, &mut seq).unwrap();
        rt.block_on(log.append(batch)).unwrap();
        if SIZES.contains(&seq) || seq.is_multiple_of(250_000) {
            rss.push((seq, ledger_benches::rss_kib()));
        }
    }

    // Measure reads against a settled LSM tree, not during the compactions
    // the fast fill started.
    store.compact().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut group = c.benchmark_group("proofs");
    group.sample_size(20).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(300));
    for size in SIZES {
        group.bench_with_input(BenchmarkId::new("inclusion", size), &size, |b, &n| {
            b.iter_custom(|iters| {
                timed(&totals, &format!("inclusion/{n}"), iters, || {
                    log.inclusion_proof(rng.gen_range(0..n), n).unwrap();
                })
            })
        });
        group.bench_with_input(BenchmarkId::new("raw_node_reads", size), &size, |b, &n| {
            b.iter_custom(|iters| {
                timed(&totals, &format!("raw_node_reads/{n}"), iters, || {
                    let plan = inclusion_plan(rng.gen_range(0..n), n).unwrap();
                    store.get_nodes(plan.nodes()).unwrap();
                })
            })
        });
        group.bench_with_input(BenchmarkId::new("consistency", size), &size, |b, &n| {
            b.iter_custom(|iters| {
                timed(&totals, &format!("consistency/{n}"), iters, || {
                    log.consistency_proof(rng.gen_range(1..n), n).unwrap();
                })
            })
        });
    }
    let note = log.head().checkpoint.to_string();
    let parsed = SignedNote::parse(&note).unwrap();
    let sig = ed25519_dalek::Signature::from_slice(&parsed.signatures[0].signature).unwrap();
    let key = *signer.verifier_key().verifying_key();
    group.bench_function("checkpoint_verify", |b| {
        b.iter_custom(|iters| {
            timed(&totals, "checkpoint_verify", iters, || {
                Checkpoint::open(&note, &verifier).unwrap();
            })
        })
    });
    group.bench_function("raw_ed25519_verify", |b| {
        b.iter_custom(|iters| {
            timed(&totals, "raw_ed25519_verify", iters, || {
                key.verify_strict(parsed.text.as_bytes(), &sig).unwrap();
            })
        })
    });
    group.finish();
    c.final_summary();

    let t = totals.lock().unwrap();
    let per = |k: &str| t.get(k).map_or(0.0, |(d, n)| d.as_secs_f64() * 1e6 / *n as f64);
    println!("\nproof generation, µs per proof (all samples of this run):");
    println!("{:>9} {:>11} {:>15} {:>7} {:>13}", "size", "inclusion", "raw node reads", "ratio", "consistency");
    for n in SIZES {
        let (inc, raw) = (per(&format!("inclusion/{n}")), per(&format!("raw_node_reads/{n}")));
        println!("{n:>9} {inc:>11.2} {raw:>15.2} {:>7.2} {:>13.2}", inc / raw, per(&format!("consistency/{n}")));
    }
    let (cv, raw) = (per("checkpoint_verify"), per("raw_ed25519_verify"));
    println!("\ncheckpoint verification: {cv:.2} µs, bare Ed25519 verify {raw:.2} µs, ratio {:.2}", cv / raw);
    println!("\nresident memory while growing the log (KiB):");
    for (n, kib) in rss {
        println!("{n:>9} {kib:>10}");
    }
}
