//! Proving and verification, each against a baseline in the same run:
//!
//! * `prove`: a plain single-threaded loop of single 64-bit range proofs
//!   (the bulletproofs crate as a user would call it) vs. the prover pool on
//!   every core, for 1, 16 and 256 proofs;
//! * `backends`: 64-bit range proofs from each `RangeProver` backend
//!   (`dalek` is the baseline): on one core, one proof at a time; and on
//!   every core, 256 proofs per call (`lockstep-cpu` in one batch);
//! * `aggregate`: one proof over m = 1..16 64-bit values (bare crate):
//!   proving and verification time, bytes per value;
//! * `verify`: 64 predicate proofs verified one after another on one core
//!   vs. `zk::verify_all` on every core;
//! * `append`: embedded appends (RocksDB, synced) of entries with two hidden
//!   fields and one predicate vs. the same entries without hidden fields:
//!   committed by the client (the log checks the openings and the proof),
//!   and committed by the log (`Log::commit_hidden`, the
//!   `POST /v1/hidden/commit` step, then the append), with and without the
//!   self-check of each proof.
//!
//! Ratios are printed at the end; docs/PERFORMANCE.md records them.

// In tests and benches a failed unwrap is the failure report.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bulletproofs::{BulletproofGens, PedersenGens, RangeProof};
use criterion::{BenchmarkId, Criterion, Throughput};
use curve25519_dalek::scalar::Scalar;
use ed25519_dalek::SigningKey;
use ledger_benches::Totals;
use ledger_core::store::RocksStore;
use ledger_core::{Log, LogConfig, Submission};
use merlin::Transcript;
use rand::thread_rng;
use verifier::note::NoteSigner;
use zk::commit::{Blinding, PedersenCommitment};
use zk::predicate::{Claim, Predicate};
use zk::prover::{ProofJob, ProverPool, Witness};
use zk::PredicateProof;

/// One job: `x ≥ 0`, a single 64-bit range value, the same work as one
/// bare `prove_single(…, 64)`.
fn job(value: u64) -> ProofJob {
    let blinding = Blinding::random(&mut rand_core::OsRng);
    let commitment = PedersenCommitment::commit(value, &blinding);
    ProofJob {
        claims: vec![Claim { field: "x".into(), predicate: Predicate::ge(0), commitment }],
        witnesses: vec![Witness { value, blinding }],
    }
}

fn prove(c: &mut Criterion, totals: &Totals) {
    let bp = BulletproofGens::new(64, 1);
    let pc = PedersenGens::default();
    let pool = ProverPool::new(0).unwrap();
    let mut group = c.benchmark_group("prove");
    group.sample_size(10).measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1));
    for n in [1usize, 16, 256] {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("bare_loop", n), &n, |b, &n| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    for i in 0..n {
                        let blinding = Scalar::random(&mut thread_rng());
                        let mut t = Transcript::new(b"bench");
                        RangeProof::prove_single_with_rng(&bp, &pc, &mut t, 1000 + i as u64, &blinding, 64, &mut thread_rng()).unwrap();
                    }
                }
                let elapsed = start.elapsed();
                totals.record(&format!("bare/{n}"), elapsed, iters * n as u64);
                elapsed
            })
        });
        let jobs: Vec<ProofJob> = (0..n).map(|i| job(1000 + i as u64)).collect();
        group.bench_with_input(BenchmarkId::new("pool", n), &n, |b, &n| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    assert!(pool.prove_all(&jobs).iter().all(|p| p.result.is_ok()));
                }
                let elapsed = start.elapsed();
                totals.record(&format!("pool/{n}"), elapsed, iters * n as u64);
                elapsed
            })
        });
    }
    group.finish();
}

fn backends(c: &mut Criterion, totals: &Totals) {
    use zk::prover::{CpuEngine, DalekProver, LockstepProver, PrecomputedCpuProver, RangeProver};
    let one = ProverPool::new(1).unwrap();
    let all = ProverPool::new(0).unwrap();
    let lockstep = LockstepProver::new(Arc::new(CpuEngine), 256);
    let provers: [&dyn RangeProver; 3] = [&DalekProver, &PrecomputedCpuProver, &lockstep];
    let mut group = c.benchmark_group("backends");
    group.sample_size(10).measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1));
    for (pool, cores, n) in [(&one, "one_core", 1usize), (&all, "all_cores", 256)] {
        let jobs: Vec<ProofJob> = (0..n).map(|i| job(1000 + i as u64)).collect();
        group.throughput(Throughput::Elements(n as u64));
        for prover in provers {
            if cores == "one_core" && prover.name() == "lockstep-cpu" {
                continue;
            }
            let key = format!("{cores}/{}", prover.name());
            group.bench_function(&key, |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        assert!(pool.prove_all_using(prover, &jobs).iter().all(|p| p.result.is_ok()));
                    }
                    let elapsed = start.elapsed();
                    totals.record(&key, elapsed, iters * n as u64);
                    elapsed
                })
            });
        }
    }
    group.finish();
}

fn aggregate(c: &mut Criterion, totals: &Totals, bytes: &Mutex<BTreeMap<usize, usize>>) {
    let bp = BulletproofGens::new(64, 16);
    let pc = PedersenGens::default();
    let mut group = c.benchmark_group("aggregate");
    group.sample_size(10).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_millis(500));
    for m in [1usize, 2, 4, 8, 16] {
        group.throughput(Throughput::Elements(m as u64));
        let values: Vec<u64> = (0..m as u64).map(|i| 7 + i).collect();
        let blindings: Vec<Scalar> = (0..m).map(|_| Scalar::random(&mut thread_rng())).collect();
        group.bench_with_input(BenchmarkId::new("prove", m), &m, |b, &m| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    RangeProof::prove_multiple(&bp, &pc, &mut Transcript::new(b"agg"), &values, &blindings, 64).unwrap();
                }
                let elapsed = start.elapsed();
                totals.record(&format!("agg_prove/{m}"), elapsed, iters * m as u64);
                elapsed
            })
        });
        let (proof, commitments) = RangeProof::prove_multiple(&bp, &pc, &mut Transcript::new(b"agg"), &values, &blindings, 64).unwrap();
        bytes.lock().unwrap().insert(m, proof.to_bytes().len());
        group.bench_with_input(BenchmarkId::new("verify", m), &m, |b, &m| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    proof.verify_multiple(&bp, &pc, &mut Transcript::new(b"agg"), &commitments, 64).unwrap();
                }
                let elapsed = start.elapsed();
                totals.record(&format!("agg_verify/{m}"), elapsed, iters * m as u64);
                elapsed
            })
        });
    }
    group.finish();
}

fn verify(c: &mut Criterion, totals: &Totals) {
    const N: usize = 64;
    let pool = ProverPool::new(0).unwrap();
    let params = zk::params();
    let jobs: Vec<ProofJob> = (0..N).map(|i| job(i as u64)).collect();
    let proofs: Vec<PredicateProof> = pool.prove_all(&jobs).into_iter().map(|p| p.result.unwrap()).collect();
    let items: Vec<(&PredicateProof, &[Claim])> = proofs.iter().zip(&jobs).map(|(p, j)| (p, j.claims.as_slice())).collect();
    let mut group = c.benchmark_group("verify");
    group.sample_size(10).measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_millis(500));
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("one_core/64", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                for (p, claims) in &items {
                    p.verify(claims, params).unwrap();
                }
            }
            let elapsed = start.elapsed();
            totals.record("verify_one_core", elapsed, iters * N as u64);
            elapsed
        })
    });
    group.bench_function("verify_all/64", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                assert!(zk::verify_all(&items, params).iter().all(Result::is_ok));
            }
            let elapsed = start.elapsed();
            totals.record("verify_all", elapsed, iters * N as u64);
            elapsed
        })
    });
    group.finish();
}

const ORIGIN: &str = "bench.example/log";
/// Agents taking turns (entry `seq` is written by agent `seq % AGENTS`, so
/// each agent's sequence numbers increase and one batch holds each agent
/// once): like concurrent HTTP clients, and within the log's per-agent cap
/// on commit proofs in flight.
const AGENTS: u64 = 64;

fn agent_id(seq: u64) -> verifier::AgentId {
    verifier::AgentId::parse(&format!("spiffe://bench.example/agent/a{}", seq % AGENTS)).expect("a valid agent id")
}

fn agent_key(seq: u64) -> SigningKey {
    SigningKey::from_bytes(&[(seq % AGENTS) as u8 + 1; 32])
}

/// How the hidden fields of an append are committed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hidden {
    None,
    ByClient,
    ByLog,
}

fn entry(seq: u64, hidden: bool) -> serde_json::Value {
    if hidden {
        serde_json::json!({"kind": "action", "agent": agent_id(seq), "action": "pay", "resource": format!("invoices/{seq}"), "seq": seq,
            "hidden": {"amount": {"u64": seq % 10_000, "prove": [{"le": 10_000}]}, "customer": {"str": format!("customer-{seq}")}}})
    } else {
        serde_json::json!({"kind": "action", "agent": agent_id(seq), "action": "pay", "resource": format!("invoices/{seq}"), "seq": seq,
            "data": {"amount": seq % 10_000, "customer": format!("customer-{seq}")}})
    }
}

/// Client-committed submissions (committed outside the timed section, as
/// an agent does before it sends).
fn client_committed(n: usize, seq: &mut u64) -> Vec<Submission> {
    (0..n)
        .map(|_| {
            *seq += 1;
            let mut e = entry(*seq, true);
            let obj = e.as_object_mut().unwrap();
            let openings = verifier::hidden::commit_entry(obj, ORIGIN, &mut rand_core::OsRng, zk::params()).unwrap();
            verifier::entry::signing::sign_entry(obj, ORIGIN, &agent_key(*seq));
            obj.insert("openings".into(), openings);
            Submission::from_value(&e, 65_535).unwrap()
        })
        .collect()
}

/// Commits on the log's prover pool (one request per entry, concurrently),
/// then appends the committed entries.
async fn log_committed(log: &Arc<Log>, n: usize, seq: &mut u64) -> Vec<Submission> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        *seq += 1;
        let (log, s) = (Arc::clone(log), *seq);
        tasks.spawn(async move {
            let mut e = entry(s, false);
            let hidden = verifier::hidden::parse_hidden(&entry(s, true)["hidden"]).unwrap();
            let committed = log.commit_hidden(&agent_id(s), s, hidden).await.unwrap();
            let obj = e.as_object_mut().unwrap();
            obj.remove("data");
            obj.insert("hidden".into(), committed.hidden);
            obj.insert("predicates".into(), committed.predicates.unwrap());
            verifier::entry::signing::sign_entry(obj, ORIGIN, &agent_key(s));
            obj.insert("openings".into(), committed.openings);
            (s, Submission::from_value(&e, 65_535).unwrap())
        });
    }
    let mut out = tasks.join_all().await;
    out.sort_by_key(|(s, _)| *s);
    out.into_iter().map(|(_, e)| e).collect()
}

fn append(c: &mut Criterion, totals: &Totals) {
    const BATCH: usize = 64;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut group = c.benchmark_group("append");
    group.sample_size(10).measurement_time(Duration::from_secs(6)).warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(BATCH as u64));
    for (name, hidden, self_check) in [
        ("plain", Hidden::None, true),
        ("hidden_client_committed", Hidden::ByClient, true),
        ("hidden_log_committed", Hidden::ByLog, true),
        ("hidden_log_committed_no_self_check", Hidden::ByLog, false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(RocksStore::open(&dir.path().join("db")).unwrap());
        let signer = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[1; 32])).unwrap();
        let config = LogConfig {
            origin: ORIGIN.into(),
            openings_key: Some(ledger_core::sealing::OpeningsKey::from_bytes(&[2; 32])),
            prover_self_check: self_check,
            ..LogConfig::default()
        };
        let log = Arc::new(Log::open(store, signer, config, None).unwrap());
        // A registered agent signs every entry, plain or hidden, as the
        // server requires (signatures alone are measured in the agents bench).
        for a in 0..AGENTS {
            let passport = verifier::entry::Passport {
                agent: agent_id(a),
                public_key: agent_key(a).verifying_key(),
                code_hash: [0; 32],
                model_hash: None,
                owner: "bench".into(),
                purpose: "bench".into(),
                tpm_ak: None,
            };
            rt.block_on(log.register(passport)).unwrap();
        }
        let mut seq = 0;
        group.bench_function(BenchmarkId::new(name, BATCH), |b| {
            b.iter_custom(|iters| {
                let mut elapsed = Duration::ZERO;
                for _ in 0..iters {
                    let (batch, start) = match hidden {
                        Hidden::None => {
                            let batch = (0..BATCH)
                                .map(|_| {
                                    seq += 1;
                                    let mut e = entry(seq, false);
                                    verifier::entry::signing::sign_entry(e.as_object_mut().unwrap(), ORIGIN, &agent_key(seq));
                                    Submission::from_value(&e, 65_535).unwrap()
                                })
                                .collect();
                            (batch, Instant::now())
                        }
                        Hidden::ByClient => (client_committed(BATCH, &mut seq), Instant::now()),
                        Hidden::ByLog => {
                            let start = Instant::now();
                            (rt.block_on(log_committed(&log, BATCH, &mut seq)), start)
                        }
                    };
                    rt.block_on(log.submit(batch)).unwrap();
                    elapsed += start.elapsed();
                }
                totals.record(name, elapsed, iters * BATCH as u64);
                elapsed
            })
        });
    }
    group.finish();
}

fn main() {
    let totals = Totals::default();
    let bytes = Mutex::new(BTreeMap::new());
    let mut c = Criterion::default().configure_from_args();
    prove(&mut c, &totals);
    backends(&mut c, &totals);
    aggregate(&mut c, &totals, &bytes);
    verify(&mut c, &totals);
    append(&mut c, &totals);
    c.final_summary();

    println!("\ncurve25519-dalek backend: {}; prover threads: {}", zk::curve_backend(), rayon::current_num_threads());
    let t = |k: &str| totals.per_element(k);
    for cores in ["one_core", "all_cores"] {
        if let Some(dalek) = t(&format!("{cores}/dalek")) {
            for b in ["precomputed", "lockstep-cpu"] {
                if let Some(x) = t(&format!("{cores}/{b}")) {
                    println!(
                        "backends {cores}: {b} {:.2} ms/proof vs dalek {:.2} ms/proof = {:.2}x (64-bit, m = 1)",
                        x * 1e3,
                        dalek * 1e3,
                        dalek / x
                    );
                }
            }
        }
    }
    for n in [1, 16, 256] {
        if let (Some(bare), Some(pool)) = (t(&format!("bare/{n}")), t(&format!("pool/{n}"))) {
            println!(
                "prove {n:>3}: bare loop {:.2} ms/proof, pool {:.2} ms/proof, pool throughput = {:.2}x the bare loop",
                bare * 1e3,
                pool * 1e3,
                bare / pool
            );
        }
    }
    let single_verify = t("agg_verify/1");
    let bytes = bytes.lock().unwrap();
    for m in [1, 2, 4, 8, 16] {
        if let (Some(p), Some(v), Some(sv), Some(b)) =
            (t(&format!("agg_prove/{m}")), t(&format!("agg_verify/{m}")), single_verify, bytes.get(&m))
        {
            let b1 = bytes.get(&1).copied().unwrap_or(1) as f64;
            println!(
                "aggregate m={m:>2}: prove {:.2} ms/value, verify {:.3} ms/value = {:.2}x a lone proof's, {} bytes = {:.0} bytes/value = {:.3}x a lone proof's",
                p * 1e3,
                v * 1e3,
                v / sv,
                b,
                *b as f64 / m as f64,
                *b as f64 / m as f64 / b1
            );
        }
    }
    if let (Some(one), Some(all)) = (t("verify_one_core"), t("verify_all")) {
        println!("verify 64: one core {:.3} ms/proof, verify_all {:.3} ms/proof = {:.2}x", one * 1e3, all * 1e3, one / all);
    }
    if let (Some(plain), Some(client), Some(by_log), Some(unchecked)) =
        (t("plain"), t("hidden_client_committed"), t("hidden_log_committed"), t("hidden_log_committed_no_self_check"))
    {
        println!(
            "append: plain {:.0} entries/s; hidden (2 fields, 1 predicate) committed by the client {:.0} entries/s = {:.4}x plain; committed by the log {:.0} entries/s = {:.4}x; without the self-check {:.0} entries/s = {:.4}x",
            1.0 / plain,
            1.0 / client,
            plain / client,
            1.0 / by_log,
            plain / by_log,
            1.0 / unchecked,
            plain / unchecked
        );
    }
}
