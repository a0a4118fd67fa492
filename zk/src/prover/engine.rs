//! The group work of the fold-free prover, behind one trait so that it can
//! run on the CPU or on an accelerator.
//!
//! Every inner-product round of a fold-free range proof is two
//! multiscalar multiplications over the *original* generators of the
//! proof's shape ([`ShapeBases`]): nothing is folded, so every base is
//! fixed and tables for it are built once per shape. The scalars of those
//! rounds are public (dalek's own prover multiplies them in variable time),
//! so an engine may use variable-time methods for them. Secret-dependent
//! group work stays constant-time: `T₁`, `T₂`, `V` in the CPU code of the
//! prover, `A` and `S` in [`GroupEngine::commit_bits`], whose default is
//! the CPU's constant-time [`commit_bits_cpu`] and which an engine may only
//! replace with constant-time code of its own.

use alloc::vec::Vec;
use core::fmt;

use core::iter;

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::MultiscalarMul;
use rayon::prelude::*;
use subtle::{Choice, ConditionallySelectable};

use super::gens::{blinding_table, ShapeBases};
use crate::error::BackendFailure;

/// Multiscalar multiplications over the fixed bases of a proof shape.
pub trait GroupEngine: Send + Sync + fmt::Debug {
    /// A short name for logs and metrics (`cpu`, `cuda`).
    fn name(&self) -> &'static str;

    /// For every row `r` of `scalars` (rows of `bases.len()` scalars, one
    /// per base in [`ShapeBases`] order), the compressed point
    /// `Σᵢ scalars[r·len + i] · bases[i]`. The scalars are public: this may
    /// run in variable time.
    fn msm_public(&self, bases: &ShapeBases, scalars: &[Scalar]) -> Result<Vec<CompressedRistretto>, BackendFailure>;

    /// `A` and `S` of every proof, in **constant time** (they depend on
    /// the values and the proof's secret randomness). The default runs
    /// [`commit_bits_cpu`] in parallel on the calling rayon pool; an
    /// engine overrides it only with constant-time code.
    fn commit_bits(&self, shape: &ShapeBases, secrets: &[BitSecrets<'_>]) -> Result<Vec<[CompressedRistretto; 2]>, BackendFailure> {
        Ok(match secrets.len() {
            1 => alloc::vec![commit_bits_cpu(shape, &secrets[0])],
            _ => secrets.par_iter().map(|s| commit_bits_cpu(shape, s)).collect(),
        })
    }
}

/// The CPU engine: curve25519-dalek's precomputed variable-time Straus
/// over the shape's bases, rows in parallel on the calling rayon pool.
#[derive(Debug, Default)]
pub struct CpuEngine;

impl GroupEngine for CpuEngine {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn msm_public(&self, bases: &ShapeBases, scalars: &[Scalar]) -> Result<Vec<CompressedRistretto>, BackendFailure> {
        let width = bases.len();
        if width == 0 || !scalars.len().is_multiple_of(width) {
            return Err(BackendFailure::Shape);
        }
        let table = bases.cpu_table();
        if scalars.len() == width {
            return Ok(alloc::vec![table.vartime_multiscalar_mul(scalars)]);
        }
        Ok(scalars.par_chunks_exact(width).map(|row| table.vartime_multiscalar_mul(row)).collect())
    }
}

/// The secrets behind one proof's `A` and `S` (summed over its values
/// where bulletproofs' dealer sums the parties' commitments). `Debug`
/// shows only their sizes.
pub struct BitSecrets<'a> {
    /// The values; their bits (`bits` per value, value-major) select `Gᵢ`
    /// or `−Hᵢ` in `A`.
    pub values: &'a [u64],
    /// Bits per value.
    pub bits: usize,
    /// `Σ a_blinding` (the `B̃` coefficient of `A`).
    pub a_blinding: &'a Scalar,
    /// `Σ s_blinding` (the `B̃` coefficient of `S`).
    pub s_blinding: &'a Scalar,
    /// `s_L`, value-major (the `G` coefficients of `S`).
    pub s_l: &'a [Scalar],
    /// `s_R` (the `H` coefficients of `S`).
    pub s_r: &'a [Scalar],
}

/// `A` and `S` of one proof in constant time on the CPU:
/// `A = a·B̃ + Σᵢ (bitᵢ ? Gᵢ : −Hᵢ)` by conditional selection,
/// `S = s·B̃ + ⟨s_L, G⟩ + ⟨s_R, H⟩` by a constant-time multiscalar
/// multiplication.
pub fn commit_bits_cpu(shape: &ShapeBases, secrets: &BitSecrets<'_>) -> [CompressedRistretto; 2] {
    let (gens_g, gens_h) = (shape.g(), shape.h());
    let n = secrets.bits;
    let mut big_a = secrets.a_blinding * blinding_table();
    for (j, v) in secrets.values.iter().enumerate() {
        for i in 0..n {
            let bit = Choice::from(((v >> i) & 1) as u8);
            big_a += RistrettoPoint::conditional_select(&-gens_h[j * n + i], &gens_g[j * n + i], bit);
        }
    }
    let big_s = RistrettoPoint::multiscalar_mul(
        iter::once(secrets.s_blinding).chain(secrets.s_l.iter()).chain(secrets.s_r.iter()),
        iter::once(&crate::commit::pedersen_gens().B_blinding).chain(gens_g).chain(gens_h),
    );
    [big_a.compress(), big_s.compress()]
}

impl fmt::Debug for BitSecrets<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BitSecrets").field("values", &self.values.len()).field("bits", &self.bits).finish_non_exhaustive()
    }
}
