//! A CUDA [`GroupEngine`](zk::prover::engine::GroupEngine) for the
//! fold-free Bulletproofs prover of `zk`, and the same curve arithmetic
//! compiled for the host so that it is tested on every CI run without a
//! GPU.
//!
//! # What it computes
//!
//! Every inner-product round of a fold-free range proof is a batch of
//! multiscalar multiplications over the fixed bases of the proof's shape
//! ([`ShapeBases`](zk::prover::gens::ShapeBases): `G₀…G_{N−1}, H₀…H_{N−1},
//! B`): for each row `r` of public scalars, `Σᵢ s[r][i] · Pᵢ`, returned as
//! a compressed Ristretto point. A batch is `2·B` rows (`B` = 64 … 1024
//! proofs) over `2·64·m + 1` bases (`m` = 1 … 16 values per proof), and the
//! prover asks for six to ten batches over the same bases.
//!
//! # Why variable time is fine
//!
//! Only public data reaches the engine: the bases are fixed generators and
//! the scalars are the inner-product argument's folded vectors and
//! challenges, which the verifier recomputes from the proof; dalek's own
//! prover multiplies them in variable time. Secret-dependent group work
//! (`A`, `S`, `T₁`, `T₂`, the value commitments) stays in `zk`'s
//! constant-time code. So the kernels skip zero scalars and zero digits,
//! branch on data and index tables by digit.
//!
//! # Design
//!
//! * **One source, two compilers.** `cuda/curve25519.cuh` holds the field,
//!   point, Ristretto and table code once, every function `ZK_HD`
//!   (`__host__ __device__` under nvcc/NVRTC, `static inline` under a C
//!   compiler). `build.rs` always compiles `cuda/host.c` on top of it;
//!   [`host`] wraps that for the tests, which compare it with
//!   curve25519-dalek. With feature `cuda` it also compiles
//!   `cuda/kernels.cu` to PTX for `compute_80` (any GPU from A100 on; the
//!   driver JIT-compiles it when the engine starts).
//! * **Field.** GF(2²⁵⁵ − 19) in ref10's radix-2²⁵·⁵: ten `i32` limbs of
//!   alternately 26 and 25 bits, products in `i64`. A multiplication is 100
//!   32×32→64 multiply-adds, one `IMAD.WIDE` each on the GPU, and nothing
//!   needs 128-bit integers. Inversion and square roots use ref10's
//!   addition chains.
//! * **Curve.** Extended twisted-Edwards coordinates with ref10's
//!   formulas: completed, projective, cached and affine Niels forms. A
//!   mixed addition (extended + affine Niels) costs 7 multiplications.
//!   Ristretto255 decoding and encoding follow RFC 9496 §4.3.1–4.3.2.
//! * **Tables.** A canonical scalar is below 2²⁵³, so 32 signed radix-2⁸
//!   digits `dₖ ∈ [−128, 127]` cover it with no carry out of the top
//!   digit. Base `i` has 32 windows of 128 entries, entry `j` of window `k`
//!   being `(j + 1) · 256ᵏ · Pᵢ` as affine Niels `(y + x, y − x, 2dxy)`
//!   padded to 128 bytes: 512 KiB per base, laid out
//!   `[base][window][entry]`. A digit costs one table load, a conditional
//!   negation (swap `y ± x`, negate `2dxy`) and one mixed addition; no
//!   doublings at all. Tables are built on the device once per shape key:
//!   one thread per base decodes it and doubles out its window bases, one
//!   thread per window adds out its 128 multiples and makes them affine
//!   with one batched inversion (Montgomery's trick).
//! * **MSM kernel.** One block of eight warps per row. Warp `w` takes the
//!   bases `i ≡ w (mod 8)`; lane `k` takes digit `k` of each scalar, so the
//!   warp skips a zero scalar as a whole, recodes the scalar with three
//!   ballots (the carries of signed recoding are a 32-bit addition over
//!   "carries out" and "passes a carry" masks, `zk_recode_carries`), and
//!   its 32 lanes read 32 different windows. The 256 partial sums are
//!   added in shared memory. A second kernel encodes the row sums, one
//!   thread per row: the encoding is a long serial chain (an inverse
//!   square root) that would otherwise hold a whole block's SM.
//! * **Per call** the scalars are packed into pinned, write-combined host
//!   memory (on all cores for large batches), uploaded, multiplied, encoded
//!   and downloaded; buffers are kept and grown. One lock serialises the
//!   engine's calls: callers batch proofs into rows instead.
//!
//! # Building and testing
//!
//! Without features the crate builds the host shim only (a C compiler is
//! enough) and `tests/host_arith.rs` checks it against curve25519-dalek.
//! Feature `cuda` adds `CudaEngine` and needs a CUDA compiler for the
//! PTX, found by `build.rs`: `$NVCC`, else NVRTC 12.2 in the venv that
//! `scripts/install-nvcc.sh` makes (`/var/tmp/agent-ledger-nvcc`, or
//! `$ZK_CUDA_TOOLCHAIN`), else `nvcc` on `PATH`. PyPI's CUDA 12 nvcc
//! wheels hold no `nvcc` driver, hence NVRTC (`scripts/nvrtc-ptx.py`).
//!
//! ```text
//! zk-cuda/scripts/install-nvcc.sh
//! cargo test --release -p zk-cuda --features cuda
//! cargo run --release -p zk-cuda --features cuda --example cuda-speed
//! ```
//!
//! At run time only the driver (`libcuda`, CUDA 12.2 or newer) is needed;
//! without it `CudaEngine::new` returns an error and `tests/gpu.rs`
//! prints "no CUDA device: skipped". For a GPU machine without a Rust
//! toolchain, `scripts/gpu-bench.sh prepare` builds the binaries into
//! `gpu-bin/` (ignored by git) and `scripts/gpu-bench.sh run` runs them.
//!
//! # Performance
//!
//! Measured with `cuda-speed` on an H100 80GB HBM3 (driver 580.159),
//! about half of each row's scalars zero, whole calls best of five:
//!
//! | bases × rows  | tables (once) | `msm_public` | `zk_msm` kernel | one core, `CpuEngine` |
//! |---------------|---------------|--------------|-----------------|-----------------------|
//! | 129 × 128     | 2.8 ms        | 0.35 ms      | 0.11 ms         | 24–37 ms              |
//! | 129 × 512     |               | 0.77–0.89 ms | 0.30 ms         | 24–47 ms              |
//! | 129 × 2048    |               | 1.9–2.7 ms   | 1.1 ms          | 100–150 ms            |
//! | 513 × 512     | 6.6–7.1 ms    | 1.7–2.3 ms   | 0.78 ms         | 0.4–0.57 s            |
//! | 2049 × 2048   | 18 ms         | 15.7–16.3 ms | 9.7 ms          | 6.6–11 s              |
//!
//! The rest of a call is packing and upload (noisy, 0.1–0.4 ms for 2 MiB)
//! and the encoding kernel, a fixed ≈ 0.2–0.26 ms: one inverse square root
//! per row, 254 dependent squarings, is latency the GPU cannot spread.
//! The driver JIT-compiles the PTX the first time a machine loads it
//! (≈ 9–11 s) and caches the result (≈ 0.2–0.3 s afterwards).

pub mod host;

#[cfg(feature = "cuda")]
mod cuda;

#[cfg(feature = "cuda")]
pub use cuda::{CudaEngine, EngineError, MsmProfile};
