//! `cuda-speed`: the CUDA engine's table build, `msm_public` and
//! `commit_bits` latency for prover-sized batches, against `zk`'s CPU
//! engine on the same inputs in the same run (one core, rows or proofs in
//! sequence).
//!
//! ```text
//! cargo run --release -p zk-cuda --features cuda --example cuda-speed [-- --cpu-rows N]
//! ```
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use curve25519_dalek::scalar::Scalar;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use zk::prover::engine::{commit_bits_cpu, BitSecrets, CpuEngine, GroupEngine};
use zk::prover::gens::ShapeBases;
use zk_cuda::{CudaEngine, MsmProfile};

fn scalars(width: usize, rows: usize) -> Vec<Scalar> {
    let mut r = ChaCha20Rng::seed_from_u64(7);
    (0..width * rows).map(|_| if r.gen_bool(0.5) { Scalar::ZERO } else { Scalar::random(&mut r) }).collect()
}

/// One proof's `commit_bits` secrets, owned.
struct Secrets {
    values: Vec<u64>,
    a: Scalar,
    s: Scalar,
    s_l: Vec<Scalar>,
    s_r: Vec<Scalar>,
}

fn secrets(shape: &ShapeBases, proofs: usize) -> Vec<Secrets> {
    let mut r = ChaCha20Rng::seed_from_u64(8);
    (0..proofs)
        .map(|_| Secrets {
            values: (0..shape.parties()).map(|_| r.gen()).collect(),
            a: Scalar::random(&mut r),
            s: Scalar::random(&mut r),
            s_l: (0..shape.n()).map(|_| Scalar::random(&mut r)).collect(),
            s_r: (0..shape.n()).map(|_| Scalar::random(&mut r)).collect(),
        })
        .collect()
}

fn best_of(n: usize, mut f: impl FnMut()) -> Duration {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

fn main() {
    let cpu_rows: usize = std::env::args().skip_while(|a| a != "--cpu-rows").nth(1).map_or(16, |v| v.parse().unwrap());
    let t = Instant::now();
    let engine = match CudaEngine::new() {
        Ok(e) => e,
        Err(e) => {
            println!("no CUDA device: {e}");
            return;
        }
    };
    println!("device: {} (context + PTX load {:?})", engine.device_name(), t.elapsed());
    for (bits, parties, rows) in [(64, 1, 128), (64, 1, 512), (64, 1, 2048), (64, 4, 512), (64, 16, 2048)] {
        let shape = ShapeBases::get(bits, parties).expect("a bulletproofs shape");
        let t = Instant::now();
        engine.prepare(&shape).unwrap();
        let build = t.elapsed();
        let s = scalars(shape.len(), rows);
        let gpu = best_of(5, || {
            engine.msm_public(&shape, &s).unwrap();
        });
        // The CPU baseline on a sample of rows, scaled.
        let sample = &s[..shape.len() * cpu_rows.min(rows)];
        let cpu = best_of(1, || {
            CpuEngine.msm_public(&shape, sample).unwrap();
        }) * (rows as u32)
            / (cpu_rows.min(rows) as u32);
        let check = CpuEngine.msm_public(&shape, &s[..shape.len() * 4]).unwrap();
        assert_eq!(engine.msm_public(&shape, &s[..shape.len() * 4]).unwrap(), check);
        // Median of each phase over five profiled calls.
        let profiles: Vec<_> = (0..5).map(|_| engine.msm_profiled(&shape, &s).unwrap().1).collect();
        let median = |f: fn(&MsmProfile) -> Duration| {
            let mut v: Vec<_> = profiles.iter().map(f).collect();
            v.sort();
            v[v.len() / 2]
        };
        println!(
            "({bits:2}, {parties:2}) {:5} bases × {rows:4} rows: tables {build:?}, gpu {gpu:?} ({:.0} rows/ms), \
             cpu one core ≈ {cpu:?}, ratio {:.0}x\n    median phases: pack {:?}, upload {:?}, msm {:?}, encode+download {:?}",
            shape.len(),
            rows as f64 / gpu.as_secs_f64() / 1e3,
            cpu.as_secs_f64() / gpu.as_secs_f64(),
            median(|p| p.pack),
            median(|p| p.upload),
            median(|p| p.msm),
            median(|p| p.encode),
        );
    }
    for (bits, parties, proofs) in [(64, 1, 64), (64, 1, 256), (64, 1, 1024), (64, 4, 256)] {
        let shape = ShapeBases::get(bits, parties).expect("a bulletproofs shape");
        engine.prepare(&shape).unwrap();
        let owned = secrets(&shape, proofs);
        let borrowed: Vec<BitSecrets<'_>> = owned
            .iter()
            .map(|o| BitSecrets { values: &o.values, bits, a_blinding: &o.a, s_blinding: &o.s, s_l: &o.s_l, s_r: &o.s_r })
            .collect();
        let gpu = best_of(5, || {
            engine.commit_bits(&shape, &borrowed).unwrap();
        });
        let sample = &borrowed[..cpu_rows.min(proofs)];
        let cpu = best_of(1, || {
            for s in sample {
                commit_bits_cpu(&shape, s);
            }
        }) * (proofs as u32)
            / (sample.len() as u32);
        let check = &borrowed[..4];
        assert_eq!(engine.commit_bits(&shape, check).unwrap(), CpuEngine.commit_bits(&shape, check).unwrap());
        println!(
            "({bits:2}, {parties:2}) commit_bits × {proofs:4} proofs: gpu {gpu:?} ({:.0} proofs/ms), cpu one core ≈ {cpu:?}, ratio {:.0}x",
            proofs as f64 / gpu.as_secs_f64() / 1e3,
            cpu.as_secs_f64() / gpu.as_secs_f64(),
        );
    }
    println!("engine profile: {:?}", engine.profile());
}
