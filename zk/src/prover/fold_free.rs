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
//! `s_L`, `s_R` touch only constant-time code: `A` by conditional
//! selection, `S` by curve25519-dalek's constant-time multiscalar
//! multiplication, `V`, `T₁`, `T₂` by constant-time fixed-base tables.
//! The inner-product rounds multiply public scalars (dalek's prover does
//! them in variable time too): only they reach an engine.

use alloc::vec::Vec;
use core::iter;

use bulletproofs::RangeProof;
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{Identity, MultiscalarMul};
use merlin::Transcript;
use rayon::prelude::*;
use subtle::{Choice, ConditionallySelectable};
use zeroize::{Zeroize, Zeroizing};

use super::engine::GroupEngine;
use super::gens::{blinding_table, ShapeBases};
use super::{RangeJob, RangeOutput};
use crate::error::BackendFailure;
use crate::proof::MAX_VALUES;

/// Whether bulletproofs accepts the shape `(bits, values)`.
pub(crate) fn shape_ok(bits: usize, values: usize) -> bool {
    matches!(bits, 8 | 16 | 32 | 64) && values.is_power_of_two() && values <= MAX_VALUES
}

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

/// One proof between its opening and its last inner-product round.
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
    /// Everything before the inner-product argument: commitments,
    /// `A`, `S`, `T₁`, `T₂` and the challenges `y, z, x, w`.
    pub(crate) fn new(job: RangeJob<'_>, shape: &ShapeBases) -> Result<Self, BackendFailure> {
        let RangeJob { mut transcript, values, blindings, bits: n, rng } = job;
        let m = values.len();
        if !shape_ok(n, m) || blindings.len() != m || shape.key() != (n, m) {
            return Err(BackendFailure::Refused);
        }
        let nm = n * m;
        let (gens_g, gens_h) = (shape.g(), shape.h());
        let commitments: Vec<CompressedRistretto> =
            values.iter().zip(blindings.iter()).map(|(v, r)| commit(&Scalar::from(*v), r).compress()).collect();

        transcript.append_message(b"dom-sep", b"rangeproof v1");
        transcript.append_u64(b"n", n as u64);
        transcript.append_u64(b"m", m as u64);

        // The dealer sums the parties' A_j and S_j; the sums are computed
        // directly (same points), S as one constant-time multiscalar
        // multiplication over every party's terms.
        let mut a_blinding = Zeroizing::new(Vec::with_capacity(m));
        let mut s_blinding = Zeroizing::new(Vec::with_capacity(m));
        let mut s_l = Zeroizing::new(Vec::with_capacity(nm));
        let mut s_r = Zeroizing::new(Vec::with_capacity(nm));
        let mut big_a = RistrettoPoint::identity();
        for (j, v) in values.iter().enumerate() {
            let a_bl = Scalar::random(rng);
            big_a += &a_bl * blinding_table();
            a_blinding.push(a_bl);
            for i in 0..n {
                let bit = Choice::from(((v >> i) & 1) as u8);
                big_a += RistrettoPoint::conditional_select(&-gens_h[j * n + i], &gens_g[j * n + i], bit);
            }
            s_blinding.push(Scalar::random(rng));
            s_l.extend((0..n).map(|_| Scalar::random(rng)));
            s_r.extend((0..n).map(|_| Scalar::random(rng)));
        }
        let s_bl_sum: Zeroizing<Scalar> = Zeroizing::new(s_blinding.iter().sum());
        let big_s = RistrettoPoint::multiscalar_mul(
            iter::once(&*s_bl_sum).chain(s_l.iter()).chain(s_r.iter()),
            iter::once(&crate::commit::pedersen_gens().B_blinding).chain(gens_g).chain(gens_h),
        );
        let (big_a, big_s) = (big_a.compress(), big_s.compress());
        for v in &commitments {
            transcript.append_message(b"V", v.as_bytes());
        }
        transcript.append_message(b"A", big_a.as_bytes());
        transcript.append_message(b"S", big_s.as_bytes());
        let y = challenge(&mut transcript, b"y");
        let z = challenge(&mut transcript, b"z");

        // Each party's l(X), r(X) and t(X); bulletproofs' party.rs.
        let mut l0 = Zeroizing::new(Vec::with_capacity(nm));
        let mut r0 = Zeroizing::new(Vec::with_capacity(nm));
        let mut r1 = Zeroizing::new(Vec::with_capacity(nm));
        let mut offset_zz = Vec::with_capacity(m);
        let (mut exp_y, mut exp_z) = (Scalar::ONE, Scalar::ONE);
        let zz = z * z;
        for (j, v) in values.iter().enumerate() {
            let ozz = zz * exp_z;
            let mut exp_2 = Scalar::ONE;
            for i in 0..n {
                let a_l = Scalar::from((v >> i) & 1);
                let a_r = a_l - Scalar::ONE;
                l0.push(a_l - z);
                r0.push(exp_y * (a_r + z) + ozz * exp_2);
                r1.push(exp_y * s_r[j * n + i]);
                exp_y *= y;
                exp_2 = exp_2 + exp_2;
            }
            offset_zz.push(ozz);
            exp_z *= z;
        }
        // t₁ and t₂ of the sum of the parties' t(X) (the commitments to
        // them sum the same way, so T₁ and T₂ are single commitments).
        let mut t1 = Zeroizing::new(Scalar::ZERO);
        let mut t2 = Zeroizing::new(Scalar::ZERO);
        let mut t0 = Zeroizing::new(Scalar::ZERO);
        let mut t_bl = Zeroizing::new(Vec::with_capacity(2 * m));
        for j in 0..m {
            let span = j * n..(j + 1) * n;
            let p0 = inner_product(&l0[span.clone()], &r0[span.clone()]);
            let p2 = inner_product(&s_l[span.clone()], &r1[span.clone()]);
            let sum_l: Zeroizing<Vec<Scalar>> = Zeroizing::new(span.clone().map(|i| l0[i] + s_l[i]).collect());
            let sum_r: Zeroizing<Vec<Scalar>> = Zeroizing::new(span.clone().map(|i| r0[i] + r1[i]).collect());
            *t0 += p0;
            *t1 += inner_product(&sum_l, &sum_r) - p0 - p2;
            *t2 += p2;
            t_bl.push(Scalar::random(rng));
            t_bl.push(Scalar::random(rng));
        }
        let t1_bl: Zeroizing<Scalar> = Zeroizing::new(t_bl.iter().step_by(2).sum());
        let t2_bl: Zeroizing<Scalar> = Zeroizing::new(t_bl.iter().skip(1).step_by(2).sum());
        let big_t1 = commit(&t1, &t1_bl).compress();
        let big_t2 = commit(&t2, &t2_bl).compress();
        transcript.append_message(b"T_1", big_t1.as_bytes());
        transcript.append_message(b"T_2", big_t2.as_bytes());
        let x = challenge(&mut transcript, b"x");
        if x == Scalar::ZERO {
            return Err(BackendFailure::Refused);
        }

        let t_x = *t0 + x * (*t1 + x * *t2);
        let mut t_x_blinding = Scalar::ZERO;
        let mut e_blinding = Scalar::ZERO;
        for j in 0..m {
            t_x_blinding += offset_zz[j] * blindings[j] + x * (t_bl[2 * j] + x * t_bl[2 * j + 1]);
            e_blinding += a_blinding[j] + s_blinding[j] * x;
        }
        transcript.append_message(b"t_x", t_x.as_bytes());
        transcript.append_message(b"t_x_blinding", t_x_blinding.as_bytes());
        transcript.append_message(b"e_blinding", e_blinding.as_bytes());
        let w = challenge(&mut transcript, b"w");

        let a: Vec<Scalar> = l0.iter().zip(s_l.iter()).map(|(l, s)| l + s * x).collect();
        let b: Vec<Scalar> = r0.iter().zip(r1.iter()).map(|(r, s)| r + s * x).collect();
        let y_inv = y.invert();
        let h: Vec<Scalar> = iter::successors(Some(Scalar::ONE), |p| Some(p * y_inv)).take(nm).collect();
        transcript.append_message(b"dom-sep", b"ipp v1");
        transcript.append_u64(b"n", nm as u64);
        Ok(Self {
            transcript,
            head: [big_a, big_s, big_t1, big_t2],
            scalars: [t_x, t_x_blinding, e_blinding],
            commitments,
            w,
            a,
            b,
            g: alloc::vec![Scalar::ONE; nm],
            h,
            lr: Vec::new(),
        })
    }

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
) -> Vec<Result<RangeOutput, BackendFailure>> {
    let opened: Vec<Result<Open, BackendFailure>> = if jobs.len() == 1 {
        jobs.into_iter().map(|job| Open::new(job, shape)).collect()
    } else {
        jobs.into_par_iter().map(|job| Open::new(job, shape)).collect()
    };
    let mut slots: Vec<Option<Result<RangeOutput, BackendFailure>>> = Vec::with_capacity(opened.len());
    let mut live: Vec<(usize, Open)> = Vec::with_capacity(opened.len());
    for (i, o) in opened.into_iter().enumerate() {
        match o {
            Ok(open) => {
                slots.push(None);
                live.push((i, open));
            }
            Err(e) => slots.push(Some(Err(e))),
        }
    }
    if let Err(e) = rounds(engine, shape, &mut live) {
        for (i, _) in live.drain(..) {
            slots[i] = Some(Err(e));
        }
    }
    for (i, open) in live {
        slots[i] = Some(open.finish());
    }
    slots.into_iter().map(|s| s.unwrap_or(Err(BackendFailure::Refused))).collect()
}

fn rounds(engine: &dyn GroupEngine, shape: &ShapeBases, live: &mut [(usize, Open)]) -> Result<(), BackendFailure> {
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
        let points = engine.msm_public(shape, &rows)?;
        if points.len() != 2 * live.len() {
            return Err(BackendFailure::Device);
        }
        for (((_, o), lr), u) in live.iter_mut().zip(points.chunks_exact(2)).zip(us.iter_mut()) {
            *u = o.absorb(lr[0], lr[1]);
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
