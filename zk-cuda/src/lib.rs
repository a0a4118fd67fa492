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
//! prover asks for six to ten batches over the same bases
//! ([`GroupEngine::msm_public`](zk::prover::engine::GroupEngine::msm_public)).
//!
//! Before those rounds, every proof commits to its bits
//! ([`GroupEngine::commit_bits`](zk::prover::engine::GroupEngine::commit_bits),
//! what `zk::prover::engine::commit_bits_cpu` computes):
//!
//! ```text
//! A = a·B̃ + Σ_{i<N} (bitᵢ ? Gᵢ : −Hᵢ)        bitᵢ = bit (i mod n) of value ⌊i/n⌋
//! S = s·B̃ + Σᵢ s_L[i]·Gᵢ + Σᵢ s_R[i]·Hᵢ
//! ```
//!
//! with `B̃` the Pedersen blinding base. Those scalars and bits are the
//! prover's secrets.
//!
//! # Two paths
//!
//! **Public path, variable time.** The round scalars are the
//! inner-product argument's folded vectors and challenges, which the
//! verifier recomputes from the proof; dalek's own prover multiplies them
//! in variable time. So `zk_msm` skips zero scalars and zero digits,
//! branches on data and indexes tables by digit.
//!
//! **Secret path, constant time.** `zk_commit_bits` handles the values'
//! bits, `a`, `s`, `s_L`, `s_R`: no branch and no memory address in it
//! depends on them (see [the secret path](#secret-path-constant-time)).
//! The other secret group work of a proof (`T₁`, `T₂`, the value
//! commitments) stays in `zk`'s constant-time CPU code.
//!
//! # Design
//!
//! * **One source, two compilers.** `cuda/curve25519.cuh` holds the field,
//!   point, Ristretto and table code once (and `cuda/ct_fixed_base.cuh`
//!   the secret path's on top of it), every function `ZK_HD`
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
//! * **Profile.** `CudaEngine::profile` sums the wall time of the
//!   engine's `msm_public` and `commit_bits` calls and counts them, so a
//!   benchmark can tell the GPU engine's share of a proof from the CPU's.
//!
//! # Secret path (constant time)
//!
//! * **Tables.** A second, per-shape table over the `2N + 1` bases
//!   `G₀ … G_{N−1}, H₀ … H_{N−1}, B̃` (`B̃` is not among `ShapeBases`; the
//!   engine appends its encoding): signed radix 16, 64 windows of 8
//!   entries, entry `j` of window `k` being `(j + 1)·16ᵏ·P` as affine
//!   Niels, 64 KiB a base (8 MiB for `(64, 1)`), built by the same kernels
//!   as the public tables with another layout ([`host::TableLayout`]):
//!   curve25519-dalek's `EdwardsBasepointTable` without its doublings.
//! * **Recoding.** A canonical scalar becomes 64 digits `dₖ ∈ [−8, 8)`
//!   exactly as dalek's `Scalar::as_radix_16`, by arithmetic: lane `k` of
//!   a warp holds byte `k` and its digits `2k`, `2k + 1`; the carries
//!   between bytes are one 32-bit addition over two ballots ("byte ≥ 0x78
//!   carries out", "byte = 0x77 passes a carry on").
//! * **Selection.** For every digit the lane loads all eight entries of
//!   the window and keeps `|dₖ|`'s with masks, starting from the identity
//!   `(1, 1, 0)` so that `dₖ = 0` goes through the same instructions, then
//!   negates by the sign's mask (dalek's `LookupTable::select`); then one
//!   mixed addition. Every scalar costs 64 selections and 64 additions
//!   whatever its value; no zero is skipped.
//! * **`A`.** Thread `t` takes the bits `i ≡ t (mod 256)`: it loads `Gᵢ`
//!   and `Hᵢ` (window 0, entry 0 of their tables), forms `−Hᵢ`, picks one
//!   by the bit's mask and adds it; warp 0 adds `a·B̃` like any scalar
//!   term.
//! * **Kernel.** `zk_commit_bits`: one block of eight warps per proof;
//!   warp `w` takes the `S` terms `i ≡ w (mod 8)`, the block adds its 256
//!   partial sums in a fixed tree, then does `A` the same way; `zk_encode`
//!   encodes both. The shared-memory partial sums are zeroed before the
//!   block exits; the records, the unencoded sums (on the device) and the
//!   staging buffer (pinned host memory) are zeroed after every call,
//!   failed ones included, except after a sticky device error: the driver
//!   then refuses every access, the staging buffer among them, and its
//!   contents stay in the process's pinned memory until the engine is
//!   dropped (the engine is unusable from then on; the log proves on the
//!   CPU instead).
//! * **Host twin.** The recoding, the selection and the per-term and
//!   per-proof evaluation are `ZK_HD` functions of `cuda/ct_fixed_base.cuh`,
//!   run on the host by [`host::HostSecretTable`] and tested against
//!   curve25519-dalek and `commit_bits_cpu` on every CI run.
//!
//! **What "constant time" means here, and its limits.** Inside
//! `zk_commit_bits`, the instructions each thread executes and the
//! addresses it reads and writes depend only on the shape, the number of
//! proofs and the thread's indices, never on a bit or a scalar: values
//! derived from secrets are only ever arithmetic operands, masks and
//! ballot predicates. This was checked on the code ptxas 12.2 makes for
//! `sm_90` (NVRTC with `--ptxas-options=-v`, then `nvdisasm`): the two
//! secret-derived predicates feed only `VOTE` instructions, the masked
//! selections are `LOP3` bit-selects, every branch tests a loop counter, a
//! thread index or the shape, and there is no `SEL`. Its limits:
//!
//! * The driver JIT-compiles the PTX for the GPU at hand; another ptxas
//!   could in principle turn masks into branches. The PTX has no
//!   secret-dependent branch, and nothing re-checks the machine code at run
//!   time.
//! * It assumes that integer multiply-adds, shifts and logic take the same
//!   time whatever their operands on NVIDIA GPUs, as dalek assumes of the
//!   CPUs it targets; NVIDIA documents no such guarantee.
//! * What the timing of a call does reveal (the shape, the number of
//!   proofs, the GPU's load) is public, and `A`, `S` are published in the
//!   proof.
//! * Registers, the few bytes a thread spills to local memory (56 with
//!   ptxas 12.2, `sm_90`), caches and the driver's own copies are not
//!   cleared; a GPU shared with an untrusted tenant (time-slicing, MPS)
//!   could see residue there. Only the buffers named above are zeroed.
//! * The host twin is the same source built by a C compiler for the
//!   tests; nobody checks what that compiler makes of it.
//!
//! # Building and testing
//!
//! Without features the crate builds the host shim only (a C compiler is
//! enough) and `tests/host_arith.rs` checks it against curve25519-dalek and
//! the secret path against `commit_bits_cpu`.
//! Feature `cuda` adds `CudaEngine` and needs a CUDA compiler for the
//! PTX, found by `build.rs`: `$NVCC`, else NVRTC 12.2 in the venv that
//! `scripts/install-nvcc.sh` makes (`$HOME/.cache/agent-ledger/nvrtc`, or
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
//! without it `CudaEngine::new` returns an error and `tests/gpu.rs` (the
//! engine's `msm_public` and `commit_bits` against the CPU's) prints "no
//! CUDA device: skipped". For a GPU machine without a Rust
//! toolchain, `scripts/gpu-bench.sh prepare` builds the binaries into
//! `gpu-bin/` (ignored by git) and `scripts/gpu-bench.sh run` runs them.
//!
//! # Performance
//!
//! Measured with `cuda-speed` on an H100 80GB HBM3 (driver 580.159),
//! about half of each row's scalars zero, whole calls best of five (the
//! tables column when `prepare` built the public tables only; it now
//! builds the secret ones too):
//!
//! | bases × rows  | tables (once) | `msm_public` | `zk_msm` kernel | one core, `CpuEngine` |
//! |---------------|---------------|--------------|-----------------|-----------------------|
//! | 129 × 128     | 2.8 ms        | 0.35 ms      | 0.11 ms         | 24–37 ms              |
//! | 129 × 512     |               | 0.77–0.89 ms | 0.30 ms         | 24–47 ms              |
//! | 129 × 2048    |               | 1.9–2.7 ms   | 1.1 ms          | 100–150 ms            |
//! | 513 × 512     | 6.6–7.1 ms    | 1.7–2.3 ms   | 0.78 ms         | 0.4–0.57 s            |
//! | 2049 × 2048   | 18 ms         | 15.7–16.3 ms | 9.7 ms          | 6.6–11 s              |
//!
//! The rest of a `msm_public` call is packing and upload (noisy, 0.1–0.4
//! ms for 2 MiB) and the encoding kernel, a fixed ≈ 0.2–0.26 ms: one
//! inverse square root per row, 254 dependent squarings, is latency the
//! GPU cannot spread. The driver JIT-compiles the PTX the first time a
//! machine loads it (≈ 9–11 s) and caches the result (≈ 0.2–0.3 s
//! afterwards).
//!
//! `commit_bits` does `(2N + 1)·64 + N + 64` mixed additions per proof,
//! each after an eight-entry masked selection (8 384 for `(64, 1)`): in the
//! prover on the same H100, 0.82 ms per call for 64 proofs, 1.4 ms for 256
//! and 4.4 ms for 1024 (docs/PERFORMANCE.md, "Range-prover backends").

pub mod host;
mod secret;

#[cfg(feature = "cuda")]
mod cuda;

#[cfg(feature = "cuda")]
pub use cuda::{CudaEngine, EngineError, EngineProfile, MsmProfile, PublicOnly};
