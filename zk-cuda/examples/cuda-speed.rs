//! `cuda-speed`: the CUDA engine's table build and `msm_public` latency
//! for prover-sized batches, against `zk`'s CPU engine on the same inputs
//! in the same run (one core, rows in sequence, as the prover calls it).
//!
//! ```text
//! cargo run --release -p zk-cuda --features cuda --example cuda-speed [-- --cpu-rows N]
//! ```
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use curve25519_dalek::scalar::Scalar;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use zk::prover::engine::{CpuEngine, GroupEngine};
use zk::prover::gens::ShapeBases;
use zk_cuda::{CudaEngine, MsmProfile};

fn scalars(width: usize, rows: usize) -> Vec<Scalar> {
    let mut r = ChaCha20Rng::seed_from_u64(7);
    (0..width * rows).map(|_| if r.gen_bool(0.5) { Scalar::ZERO } else { Scalar::random(&mut r) }).collect()
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
        let shape = ShapeBases::get(bits, parties);
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
}
