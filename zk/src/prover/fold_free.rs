//! A fold-free Bulletproofs range prover that reproduces bulletproofs
//! 5.0's proofs byte for byte, and runs many proofs of one shape in
//! lockstep.
//!
//! **Same proof.** The transcript labels, the order of the random draws
//! (per value: `a`, `s`, `s_L[0..n]`, `s_R[0..n]`; then per value `t₁`,
//! `t₂`), the generators ([`ShapeBases`]) and every scalar are those of
//! `RangeProof::prove_multiple_with_rng`, so with the same RNG stream the
//! bytes are identical and the unchanged verifier accepts them. Only the
//! way the points are computed differs, and a point is a point.
//!
//! **Fold-free.** dalek folds the generators every inner-product round
//! (`G'ᵢ = u⁻¹·G_lo,i + u·G_hi,i`, 2N−2 two-point multiplications per
//! proof, about half of its time). Here the folded generators are never
//! formed: after rounds `0 … k−1`, `G'ᵢ = Σⱼ gⱼ·Gⱼ` over the original
//! `Gⱼ` with `j ≡ i (mod N_k)`, where `gⱼ` is the product of `u_r` or
//! `u_r⁻¹` by bit `log₂N − 1 − r` of `j` (likewise `hⱼ`, times `y⁻ʲ`).
//! Each round's `L` and `R` are then one multiscalar multiplication each
//! over the fixed bases `G, H, B`, with tables built once per shape, on
//! whatever [`GroupEngine`] runs them (secp256k1-zkp's inner-product
//! prover works the same way).
//!
//! **Constant time where it matters.** The value bits, the blindings and
//! `s_L`, `s_R` touch only constant-time code: `V`, `T₁`, `T₂` by
//! constant-time fixed-base tables here, `A` and `S` in the engine's
//! [`GroupEngine::commit_bits`] (on the CPU, `A` by conditional selection
//! and `S` by curve25519-dalek's constant-time multiscalar multiplication;
//! an engine may replace it only with constant-time code of its own). The
//! variable-time multiplications (`GroupEngine::msm_public`) see only the
//! inner-product rounds' scalars, built from `l(x)` and `r(x)`, which
//! `s_L` and `s_R` mask (dalek's prover multiplies them in variable time
//! too).

use alloc::vec::Vec;
use core::iter;
use core::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bulletproofs::RangeProof;
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use merlin::Transcript;
use rayon::prelude::*;
use zeroize::{Zeroize, Zeroizing};

use super::engine::{BitSecrets, GroupEngine};
use super::gens::{blinding_table, shape_ok, ShapeBases};
use super::range::{RangeJob, RangeOutput};
use crate::error::BackendFailure;

/// `v·B + r·B̃` in constant time.
fn commit(value: &Scalar, blinding: &Scalar) -> RistrettoPoint {
    value * RISTRETTO_BASEPOINT_TABLE + blinding * blinding_table()
}

/// bulletproofs' `challenge_scalar`: 64 transcript bytes reduced.
fn challenge(t: &mut Transcript, label: &'static [u8]) -> Scalar {
    let mut buf = [0u8; 64];
    t.challenge_bytes(label, &mut buf);
    Scalar::from_bytes_mod_order_wide(&buf)
}

fn inner_product(a: &[Scalar], b: &[Scalar]) -> Scalar {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// One proof before `A` and `S`: its value commitments made and its bit
/// randomness drawn.
pub(crate) struct Pending<'a> {
    transcript: Transcript,
    values: Zeroizing<Vec<u64>>,
    blindings: Zeroizing<Vec<Scalar>>,
    bits: usize,
    rng: &'a mut (dyn rand_core::CryptoRngCore + Send),
    commitments: Vec<CompressedRistretto>,
    a_blinding: Zeroizing<Vec<Scalar>>,
    s_blinding: Zeroizing<Vec<Scalar>>,
    a_sum: Zeroizing<Scalar>,
    s_sum: Zeroizing<Scalar>,
    s_l: Zeroizing<Vec<Scalar>>,
    s_r: Zeroizing<Vec<Scalar>>,
}

impl<'a> Pending<'a> {
    /// The value commitments, the domain separator and the parties' first
    /// draws (`a`, `s`, `s_L`, `s_R` per value, in value order).
    pub(crate) fn new(job: RangeJob<'a>, shape: &ShapeBases) -> Result<Self, BackendFailure> {
        let RangeJob { mut transcript, values, blindings, bits: n, rng } = job;
        let m = values.len();
        if !shape_ok(n, m) || blindings.len() != m || shape.key() != (n, m) {
            return Err(BackendFailure::Refused);
        }
        let nm = n * m;
        let commitments: Vec<CompressedRistretto> =
            values.iter().zip(blindings.iter()).map(|(v, r)| commit(&Scalar::from(*v), r).compress()).collect();
        transcript.append_message(b"dom-sep", b"rangeproof v1");
        transcript.append_u64(b"n", n as u64);
        transcript.append_u64(b"m", m as u64);
        let mut a_blinding = Zeroizing::new(Vec::with_capacity(m));
        let mut s_blinding = Zeroizing::new(Vec::with_capacity(m));
        let mut s_l = Zeroizing::new(Vec::with_capacity(nm));
        let mut s_r = Zeroizing::new(Vec::with_capacity(nm));
        for _ in 0..m {
            a_blinding.push(Scalar::random(rng));
            s_blinding.push(Scalar::random(rng));
            s_l.extend((0..n).map(|_| Scalar::random(rng)));
            s_r.extend((0..n).map(|_| Scalar::random(rng)));
        }
        let a_sum = Zeroizing::new(a_blinding.iter().sum());
        let s_sum = Zeroizing::new(s_blinding.iter().sum());
        Ok(Self { transcript, values, blindings, bits: n, rng, commitments, a_blinding, s_blinding, a_sum, s_sum, s_l, s_r })
    }

    /// What `A` and `S` are made of.
    pub(crate) fn secrets(&self) -> BitSecrets<'_> {
        BitSecrets {
            values: &self.values,
            bits: self.bits,
            a_blinding: &self.a_sum,
            s_blinding: &self.s_sum,
            s_l: &self.s_l,
            s_r: &self.s_r,
        }
    }

    /// Everything after `A` and `S` up to the inner-product argument:
    /// `y, z`, `T₁`, `T₂`, `x`, the blinding scalars and `w`.
    pub(crate) fn resume(mut self, [big_a, big_s]: [CompressedRistretto; 2]) -> Result<Open, BackendFailure> {
        let (n, m) = (self.bits, self.values.len());
        let nm = n * m;
        let transcript = &mut self.transcript;
        for v in &self.commitments {
            transcript.append_message(b"V", v.as_bytes());
        }
        transcript.append_message(b"A", big_a.as_bytes());
        transcript.append_message(b"S", big_s.as_bytes());
        let y = challenge(transcript, b"y");
        let z = challenge(transcript, b"z");

        // Each party's l(X), r(X) and t(X); bulletproofs' party.rs.
        let mut l0 = Zeroizing::new(Vec::with_capacity(nm));
        let mut r0 = Zeroizing::new(Vec::with_capacity(nm));
        let mut r1 = Zeroizing::new(Vec::with_capacity(nm));
        let mut offset_zz = Vec::with_capacity(m);
        let (mut exp_y, mut exp_z) = (Scalar::ONE, Scalar::ONE);
        let zz = z * z;
        for (j, v) in self.values.iter().enumerate() {
            let ozz = zz * exp_z;
            let mut exp_2 = Scalar::ONE;
            for i in 0..n {
                let a_l = Scalar::from((v >> i) & 1);
                let a_r = a_l - Scalar::ONE;
                l0.push(a_l - z);
                r0.push(exp_y * (a_r + z) + ozz * exp_2);
                r1.push(exp_y * self.s_r[j * n + i]);
                exp_y *= y;
                exp_2 = exp_2 + exp_2;
            }
            offset_zz.push(ozz);
            exp_z *= z;
        }
        // t₀, t₁, t₂ of the sum of the parties' t(X) (the commitments to
        // them sum the same way, so T₁ and T₂ are single commitments).
        let mut t0 = Zeroizing::new(Scalar::ZERO);
        let mut t1 = Zeroizing::new(Scalar::ZERO);
        let mut t2 = Zeroizing::new(Scalar::ZERO);
        let mut t_bl = Zeroizing::new(Vec::with_capacity(2 * m));
        for j in 0..m {
            let span = j * n..(j + 1) * n;
            let p0 = Zeroizing::new(inner_product(&l0[span.clone()], &r0[span.clone()]));
            let p2 = Zeroizing::new(inner_product(&self.s_l[span.clone()], &r1[span.clone()]));
            let sum_l: Zeroizing<Vec<Scalar>> = Zeroizing::new(span.clone().map(|i| l0[i] + self.s_l[i]).collect());
            let sum_r: Zeroizing<Vec<Scalar>> = Zeroizing::new(span.clone().map(|i| r0[i] + r1[i]).collect());
            *t0 += *p0;
            *t1 += inner_product(&sum_l, &sum_r) - *p0 - *p2;
            *t2 += *p2;
            t_bl.push(Scalar::random(self.rng));
            t_bl.push(Scalar::random(self.rng));
        }
        let t1_bl: Zeroizing<Scalar> = Zeroizing::new(t_bl.iter().step_by(2).sum());
        let t2_bl: Zeroizing<Scalar> = Zeroizing::new(t_bl.iter().skip(1).step_by(2).sum());
        let big_t1 = commit(&t1, &t1_bl).compress();
        let big_t2 = commit(&t2, &t2_bl).compress();
        transcript.append_message(b"T_1", big_t1.as_bytes());
        transcript.append_message(b"T_2", big_t2.as_bytes());
        let x = challenge(transcript, b"x");
        if x == Scalar::ZERO {
            return Err(BackendFailure::Refused);
        }

        let t_x = *t0 + x * (*t1 + x * *t2);
        let mut t_x_blinding = Scalar::ZERO;
        let mut e_blinding = Scalar::ZERO;
        for j in 0..m {
            t_x_blinding += offset_zz[j] * self.blindings[j] + x * (t_bl[2 * j] + x * t_bl[2 * j + 1]);
            e_blinding += self.a_blinding[j] + self.s_blinding[j] * x;
        }
        transcript.append_message(b"t_x", t_x.as_bytes());
        transcript.append_message(b"t_x_blinding", t_x_blinding.as_bytes());
        transcript.append_message(b"e_blinding", e_blinding.as_bytes());
        let w = challenge(transcript, b"w");

        let a: Vec<Scalar> = l0.iter().zip(self.s_l.iter()).map(|(l, s)| l + s * x).collect();
        let b: Vec<Scalar> = r0.iter().zip(r1.iter()).map(|(r, s)| r + s * x).collect();
        let y_inv = y.invert();
        let h: Vec<Scalar> = iter::successors(Some(Scalar::ONE), |p| Some(p * y_inv)).take(nm).collect();
        transcript.append_message(b"dom-sep", b"ipp v1");
        transcript.append_u64(b"n", nm as u64);
        Ok(Open {
            transcript: core::mem::replace(&mut self.transcript, Transcript::new(b"")),
            head: [big_a, big_s, big_t1, big_t2],
            scalars: [t_x, t_x_blinding, e_blinding],
            commitments: core::mem::take(&mut self.commitments),
            w,
            a,
            b,
            g: alloc::vec![Scalar::ONE; nm],
            h,
            lr: Vec::new(),
        })
    }
}

/// One proof between `A`, `S` and its last inner-product round.
pub(crate) struct Open {
    transcript: Transcript,
    /// `A, S, T₁, T₂` compressed.
    head: [CompressedRistretto; 4],
    /// `t_x, t_x_blinding, e_blinding`.
    scalars: [Scalar; 3],
    commitments: Vec<CompressedRistretto>,
    /// `w`: `Q = w·B`.
    w: Scalar,
    /// The current (folded) witness vectors, of length `N_k`.
    a: Vec<Scalar>,
    b: Vec<Scalar>,
    /// Per original generator, the product of the round challenges that
    /// multiplies it in the folded generators (`h` includes `y⁻ʲ`).
    g: Vec<Scalar>,
    h: Vec<Scalar>,
    lr: Vec<[CompressedRistretto; 2]>,
}

impl Open {
    /// Inner-product rounds left.
    pub(crate) fn rounds_left(&self) -> usize {
        self.a.len().trailing_zeros() as usize
    }

    /// This round's `L` and `R` as two rows of scalars over the shape's
    /// bases (`out` holds `2·(2N+1)` scalars).
    pub(crate) fn rows(&self, out: &mut [Scalar]) {
        let nm = self.g.len();
        let width = 2 * nm + 1;
        let (row_l, row_r) = out.split_at_mut(width);
        let nk = self.a.len();
        let half = nk / 2;
        let (a, b) = (&self.a, &self.b);
        for j in 0..nm {
            let pos = j & (nk - 1);
            if pos >= half {
                row_l[j] = a[pos - half] * self.g[j];
                row_r[j] = Scalar::ZERO;
                row_l[nm + j] = Scalar::ZERO;
                row_r[nm + j] = b[pos - half] * self.h[j];
            } else {
                row_l[j] = Scalar::ZERO;
                row_r[j] = a[pos + half] * self.g[j];
                row_l[nm + j] = b[pos + half] * self.h[j];
                row_r[nm + j] = Scalar::ZERO;
            }
        }
        row_l[2 * nm] = inner_product(&a[..half], &b[half..]) * self.w;
        row_r[2 * nm] = inner_product(&a[half..], &b[..half]) * self.w;
    }

    /// Records this round's `L` and `R` and draws its challenge `u`.
    pub(crate) fn absorb(&mut self, l: CompressedRistretto, r: CompressedRistretto) -> Scalar {
        self.transcript.append_message(b"L", l.as_bytes());
        self.transcript.append_message(b"R", r.as_bytes());
        self.lr.push([l, r]);
        challenge(&mut self.transcript, b"u")
    }

    /// Folds the witness and the generator coefficients by `u`.
    pub(crate) fn fold(&mut self, u: Scalar, u_inv: Scalar) {
        let nk = self.a.len();
        let half = nk / 2;
        for i in 0..half {
            self.a[i] = self.a[i] * u + u_inv * self.a[half + i];
            self.b[i] = self.b[i] * u_inv + u * self.b[half + i];
        }
        self.a.truncate(half);
        self.b.truncate(half);
        if half == 1 {
            // The last round: no later row reads the coefficients.
            return;
        }
        for (j, (g, h)) in self.g.iter_mut().zip(self.h.iter_mut()).enumerate() {
            if j & (nk - 1) >= half {
                *g *= u;
                *h *= u_inv;
            } else {
                *g *= u_inv;
                *h *= u;
            }
        }
    }

    /// The finished proof.
    pub(crate) fn finish(mut self) -> Result<RangeOutput, BackendFailure> {
        let mut bytes = Vec::with_capacity((7 + 2 * self.lr.len() + 2) * 32);
        for p in &self.head {
            bytes.extend_from_slice(p.as_bytes());
        }
        for s in &self.scalars {
            bytes.extend_from_slice(s.as_bytes());
        }
        for [l, r] in &self.lr {
            bytes.extend_from_slice(l.as_bytes());
            bytes.extend_from_slice(r.as_bytes());
        }
        bytes.extend_from_slice(self.a[0].as_bytes());
        bytes.extend_from_slice(self.b[0].as_bytes());
        let proof = RangeProof::from_bytes(&bytes).map_err(|_| BackendFailure::Refused)?;
        Ok(RangeOutput { proof, commitments: core::mem::take(&mut self.commitments) })
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.a.zeroize();
        self.b.zeroize();
    }
}

/// Proves `jobs` (all of `shape`) in lockstep: the per-proof work in
/// parallel on the calling rayon pool, each round's group work for all
/// proofs in one call to `engine`. Results in job order.
pub(crate) fn prove_lockstep(
    engine: &dyn GroupEngine,
    shape: &ShapeBases,
    jobs: Vec<RangeJob<'_>>,
    profile: Option<&Profile>,
) -> Vec<Result<RangeOutput, BackendFailure>> {
    let mut clock = Lap::new(profile);
    // A lone proof stays on the caller's thread: from outside a rayon pool
    // every parallel call would be a round trip to the pool's threads.
    let single = jobs.len() == 1;
    let pending: Vec<Result<Pending<'_>, BackendFailure>> = match single {
        true => jobs.into_iter().map(|job| Pending::new(job, shape)).collect(),
        false => jobs.into_par_iter().map(|job| Pending::new(job, shape)).collect(),
    };
    let mut slots: Vec<Option<Result<RangeOutput, BackendFailure>>> = Vec::with_capacity(pending.len());
    let mut live: Vec<(usize, Pending<'_>)> = Vec::with_capacity(pending.len());
    for (i, p) in pending.into_iter().enumerate() {
        match p {
            Ok(p) => {
                slots.push(None);
                live.push((i, p));
            }
            Err(e) => slots.push(Some(Err(e))),
        }
    }
    clock.lap(|p| &p.open);
    let secrets: Vec<BitSecrets<'_>> = live.iter().map(|(_, p)| p.secrets()).collect();
    let heads = engine.commit_bits(shape, &secrets);
    drop(secrets);
    clock.lap(|p| &p.commit_bits);
    let heads = match heads {
        Ok(h) if h.len() == live.len() => h,
        Ok(_) => return fail_all(slots, live.into_iter().map(|(i, _)| i), BackendFailure::Device),
        Err(e) => return fail_all(slots, live.into_iter().map(|(i, _)| i), e),
    };
    let resumed: Vec<(usize, Result<Open, BackendFailure>)> = match single {
        true => live.into_iter().zip(heads).map(|((i, p), h)| (i, p.resume(h))).collect(),
        false => live.into_par_iter().zip(heads).map(|((i, p), h)| (i, p.resume(h))).collect(),
    };
    let mut open: Vec<(usize, Open)> = Vec::with_capacity(resumed.len());
    for (i, r) in resumed {
        match r {
            Ok(o) => open.push((i, o)),
            Err(e) => slots[i] = Some(Err(e)),
        }
    }
    clock.lap(|p| &p.open);
    if let Err(e) = rounds(engine, shape, &mut open, &mut clock) {
        return fail_all(slots, open.into_iter().map(|(i, _)| i), e);
    }
    for (i, o) in open {
        slots[i] = Some(o.finish());
    }
    clock.lap(|p| &p.rounds);
    slots.into_iter().map(|s| s.unwrap_or(Err(BackendFailure::Refused))).collect()
}

fn fail_all(
    mut slots: Vec<Option<Result<RangeOutput, BackendFailure>>>,
    live: impl Iterator<Item = usize>,
    e: BackendFailure,
) -> Vec<Result<RangeOutput, BackendFailure>> {
    for i in live {
        slots[i] = Some(Err(e));
    }
    slots.into_iter().map(|s| s.unwrap_or(Err(BackendFailure::Refused))).collect()
}

fn rounds(engine: &dyn GroupEngine, shape: &ShapeBases, live: &mut [(usize, Open)], clock: &mut Lap<'_>) -> Result<(), BackendFailure> {
    let Some(rounds) = live.first().map(|(_, o)| o.rounds_left()) else {
        return Ok(());
    };
    let width = shape.len();
    let mut rows = alloc::vec![Scalar::ZERO; 2 * width * live.len()];
    let mut us = alloc::vec![Scalar::ZERO; live.len()];
    for _ in 0..rounds {
        if live.len() == 1 {
            live[0].1.rows(&mut rows);
        } else {
            rows.par_chunks_exact_mut(2 * width).zip(live.par_iter()).for_each(|(out, (_, o))| o.rows(out));
        }
        clock.lap(|p| &p.rounds);
        let points = engine.msm_public(shape, &rows)?;
        clock.lap(|p| &p.msm);
        if points.len() != 2 * live.len() {
            return Err(BackendFailure::Device);
        }
        if live.len() == 1 {
            us[0] = live[0].1.absorb(points[0], points[1]);
        } else {
            live.par_iter_mut().zip(points.par_chunks_exact(2)).zip(us.par_iter_mut()).for_each(|(((_, o), lr), u)| {
                *u = o.absorb(lr[0], lr[1]);
            });
        }
        let mut inv = us.clone();
        Scalar::batch_invert(&mut inv);
        if live.len() == 1 {
            live[0].1.fold(us[0], inv[0]);
        } else {
            live.par_iter_mut().zip(us.par_iter().zip(inv.par_iter())).for_each(|((_, o), (u, ui))| o.fold(*u, *ui));
        }
    }
    Ok(())
}

/// Where a lockstep prover's time goes, summed over its batches: the
/// per-proof CPU work before and after `A`, `S` (`open`), the engine's
/// `commit_bits`, the engine's round multiplications (`msm`) and the
/// per-proof CPU work of the rounds (`rounds`).
#[derive(Debug, Default)]
pub struct Profile {
    open: AtomicU64,
    commit_bits: AtomicU64,
    msm: AtomicU64,
    rounds: AtomicU64,
}

/// A snapshot of a [`Profile`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProfileTimes {
    /// Per-proof CPU work outside the rounds.
    pub open: Duration,
    /// The engine's `commit_bits`.
    pub commit_bits: Duration,
    /// The engine's `msm_public`.
    pub msm: Duration,
    /// Per-proof CPU work of the rounds.
    pub rounds: Duration,
}

impl Profile {
    /// The times so far.
    pub fn times(&self) -> ProfileTimes {
        let d = |a: &AtomicU64| Duration::from_nanos(a.load(Ordering::Relaxed));
        ProfileTimes { open: d(&self.open), commit_bits: d(&self.commit_bits), msm: d(&self.msm), rounds: d(&self.rounds) }
    }
}

/// Adds the time since the last lap to a [`Profile`] field.
pub(crate) struct Lap<'p> {
    profile: Option<&'p Profile>,
    last: Instant,
}

impl<'p> Lap<'p> {
    fn new(profile: Option<&'p Profile>) -> Self {
        Self { profile, last: Instant::now() }
    }

    fn lap(&mut self, field: impl Fn(&Profile) -> &AtomicU64) {
        if let Some(p) = self.profile {
            let now = Instant::now();
            field(p).fetch_add((now - self.last).as_nanos() as u64, Ordering::Relaxed);
            self.last = now;
        }
    }
}
