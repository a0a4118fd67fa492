//! `prover-bench`: range-proof throughput of every backend in one run, on
//! the same machine, with the same statements (64-bit values, one value
//! per proof), so the ratios are same-run ratios.
//!
//! ```text
//! prover-bench [--proofs N] [--batches 64,256,1024] [--rounds R]
//! ```
//!
//! Measures, in order: one core (dalek, then precomputed, alternated);
//! all cores (dalek, precomputed, lockstep on the CPU engine); and, when
//! built with `--features cuda` and a device is present, the CUDA lockstep
//! prover at each batch size (one warm-up batch, then `R` timed batches:
//! proofs/s, per-batch latency). Every backend's proofs are checked
//! byte-for-byte against dalek's for the first statements, and a sample is
//! verified with the unchanged bulletproofs verifier.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use curve25519_dalek::scalar::Scalar;
use merlin::Transcript;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use zeroize::Zeroizing;
use zk::prover::{CpuEngine, DalekProver, LockstepProver, PrecomputedCpuProver, RangeJob, RangeOutput, RangeProver};

struct Args {
    proofs: usize,
    batches: Vec<usize>,
    rounds: usize,
}

fn args() -> Args {
    let mut a = Args { proofs: 256, batches: vec![64, 256, 1024], rounds: 5 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--proofs" => a.proofs = value.parse().unwrap(),
            "--batches" => a.batches = value.split(',').map(|b| b.parse().unwrap()).collect(),
            "--rounds" => a.rounds = value.parse().unwrap(),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// Statement `i`: a seeded 64-bit value and blinding.
struct Statement {
    value: u64,
    blinding: Scalar,
    seed: u64,
}

fn statements(n: usize, offset: u64) -> Vec<Statement> {
    (0..n as u64)
        .map(|i| {
            let seed = offset + i;
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            Statement { value: rng.next_u64(), blinding: Scalar::random(&mut rng), seed }
        })
        .collect()
}

fn transcript(seed: u64) -> Transcript {
    let mut t = Transcript::new(b"agent-ledger prover-bench");
    t.append_u64(b"statement", seed);
    t
}

fn prove(prover: &dyn RangeProver, st: &[Statement]) -> Vec<RangeOutput> {
    let mut rngs: Vec<ChaCha20Rng> = st.iter().map(|s| ChaCha20Rng::seed_from_u64(s.seed ^ 0xb0b)).collect();
    let jobs = st
        .iter()
        .zip(rngs.iter_mut())
        .map(|(s, rng)| RangeJob {
            transcript: transcript(s.seed),
            values: Zeroizing::new(vec![s.value]),
            blindings: Zeroizing::new(vec![s.blinding]),
            bits: 64,
            rng,
        })
        .collect();
    prover.prove(jobs).into_iter().map(|r| r.unwrap()).collect()
}

/// Checks `prover` against dalek on `st` and verifies its proofs.
fn check(prover: &dyn RangeProver, st: &[Statement]) {
    let want = prove(&DalekProver, st);
    let got = prove(prover, st);
    let bp = bulletproofs::BulletproofGens::new(64, 1);
    let pc = bulletproofs::PedersenGens::default();
    for ((s, w), g) in st.iter().zip(&want).zip(&got) {
        assert_eq!(w.proof.to_bytes(), g.proof.to_bytes(), "{} differs from dalek", prover.name());
        g.proof.verify_single(&bp, &pc, &mut transcript(s.seed), &g.commitments[0], 64).expect("verifies");
    }
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap()
}

fn main() {
    let args = args();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("# prover-bench: {cores} cores, curve backend {}", zk::curve_backend());

    // One core, alternated so machine drift hits both.
    let one = pool(1);
    let st = statements(16, 0);
    let (mut d1, mut p1) = (Duration::ZERO, Duration::ZERO);
    one.install(|| {
        prove(&PrecomputedCpuProver, &st[..1]);
        for _ in 0..3 {
            let t = Instant::now();
            prove(&DalekProver, &st);
            d1 += t.elapsed();
            let t = Instant::now();
            prove(&PrecomputedCpuProver, &st);
            p1 += t.elapsed();
        }
    });
    let (r_d1, r_p1) = (rate(48, d1), rate(48, p1));
    println!("one core: dalek {r_d1:.1} proofs/s, precomputed {r_p1:.1} proofs/s, ratio {:.2}x", r_p1 / r_d1);

    // All cores.
    let all = pool(cores);
    let st = statements(args.proofs, 10_000);
    let lockstep_cpu = LockstepProver::new(Arc::new(CpuEngine), 256);
    all.install(|| {
        check(&PrecomputedCpuProver, &st[..8]);
        check(&lockstep_cpu, &st[..8]);
    });
    let timed = |name: &str, prover: &dyn RangeProver| -> f64 {
        let t = Instant::now();
        all.install(|| prove(prover, &st));
        let r = rate(st.len(), t.elapsed());
        println!("all {cores} cores: {name} {r:.1} proofs/s ({} proofs)", st.len());
        r
    };
    let r_d = timed("dalek", &DalekProver);
    let r_p = timed("precomputed", &PrecomputedCpuProver);
    let before = lockstep_cpu.profile();
    let r_l = timed("lockstep-cpu (B=256)", &lockstep_cpu);
    print_profile("lockstep-cpu", before, lockstep_cpu.profile());
    println!("all cores ratios vs dalek: precomputed {:.2}x, lockstep-cpu {:.2}x", r_p / r_d, r_l / r_d);

    gpu(&args, &all, r_d);
}

/// Where a lockstep prover's time went between two profiles.
fn print_profile(name: &str, before: zk::prover::ProfileTimes, after: zk::prover::ProfileTimes) {
    println!(
        "  {name} time: per-proof CPU work {:?} (+ {:?} in the rounds), engine commit_bits (A, S) {:?}, engine round MSMs {:?}",
        after.open - before.open,
        after.rounds - before.rounds,
        after.commit_bits - before.commit_bits,
        after.msm - before.msm
    );
}

#[cfg(feature = "cuda")]
fn gpu(args: &Args, all: &rayon::ThreadPool, dalek_rate: f64) {
    use zk::prover::GroupEngine;
    let engine = match zk_cuda::CudaEngine::new() {
        Ok(e) => Arc::new(e),
        Err(e) => {
            println!("cuda: no device ({e}); GPU measurements skipped");
            return;
        }
    };
    println!("cuda: {}", engine.device_name());
    let variants: [(&str, Arc<dyn GroupEngine>); 2] = [
        ("cuda lockstep (A, S on the GPU, constant time)", Arc::clone(&engine) as Arc<dyn GroupEngine>),
        ("cuda lockstep (A, S on the CPU)", Arc::new(zk_cuda::PublicOnly::new(Arc::clone(&engine)))),
    ];
    for (name, variant) in variants {
        for &b in &args.batches {
            // A failure of one variant (a wrong proof is a panic in
            // `check`) must not hide the others' numbers.
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let prover = LockstepProver::new(Arc::clone(&variant), b);
                let st = statements(b, 1_000_000 + b as u64 * 10_000);
                all.install(|| check(&prover, &st[..b.min(16)]));
                // Warm-up: tables, module load, allocations.
                all.install(|| prove(&prover, &st));
                let mut lat = Vec::with_capacity(args.rounds);
                let before = prover.profile();
                let engine_before = engine.profile();
                for _ in 0..args.rounds {
                    let t = Instant::now();
                    all.install(|| prove(&prover, &st));
                    lat.push(t.elapsed());
                }
                lat.sort();
                let total: Duration = lat.iter().sum();
                let r = rate(b * args.rounds, total);
                println!(
                    "{name} B={b}: {r:.1} proofs/s, batch latency p50 {:?} min {:?} max {:?}, {:.2}x dalek on all cores",
                    lat[lat.len() / 2],
                    lat[0],
                    lat[lat.len() - 1],
                    r / dalek_rate
                );
                print_profile(&format!("B={b}"), before, prover.profile());
                let e = engine.profile();
                println!(
                    "  B={b} engine: {} msm calls {:?}, {} commit_bits calls {:?}",
                    e.msm_calls - engine_before.msm_calls,
                    e.msm_time - engine_before.msm_time,
                    e.bits_calls - engine_before.bits_calls,
                    e.bits_time - engine_before.bits_time
                );
            }));
            if run.is_err() {
                println!("{name} B={b}: FAILED (see the panic above); skipping this variant");
                break;
            }
        }
    }
}

#[cfg(not(feature = "cuda"))]
fn gpu(_: &Args, _: &rayon::ThreadPool, _: f64) {
    println!("cuda: not built (build with --features cuda)");
}
