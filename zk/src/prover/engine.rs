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

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use curve25519_dalek::ristretto::CompressedRistretto;
use curve25519_dalek::scalar::Scalar;
use rayon::prelude::*;

pub use super::fold_free::{commit_bits_cpu, BitSecrets};
use super::gens::ShapeBases;
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
        if width == 0 || scalars.len() % width != 0 {
            return Err(BackendFailure::Shape);
        }
        let table = bases.cpu_table();
        if scalars.len() == width {
            return Ok(alloc::vec![table.vartime_multiscalar_mul(scalars)]);
        }
        Ok(scalars.par_chunks_exact(width).map(|row| table.vartime_multiscalar_mul(row)).collect())
    }
}

/// Precomputed variable-time tables for a shape's bases
/// (curve25519-dalek 5's width-8 precomputed Straus).
pub(crate) struct CpuTable(dalek5::ristretto::VartimeRistrettoPrecomputation);

impl CpuTable {
    pub(crate) fn new(compressed: &[CompressedRistretto]) -> Arc<Self> {
        use dalek5::traits::VartimePrecomputedMultiscalarMul as _;
        let points = compressed
            .iter()
            .map(|c| dalek5::ristretto::CompressedRistretto(c.to_bytes()).decompress().expect("generators are valid encodings"));
        Arc::new(Self(dalek5::ristretto::VartimeRistrettoPrecomputation::new(points)))
    }

    fn vartime_multiscalar_mul(&self, scalars: &[Scalar]) -> CompressedRistretto {
        use dalek5::traits::VartimePrecomputedMultiscalarMul as _;
        let scalars =
            scalars.iter().map(|s| dalek5::scalar::Scalar::from_canonical_bytes(s.to_bytes()).unwrap_or(dalek5::scalar::Scalar::ZERO));
        CompressedRistretto(self.0.vartime_multiscalar_mul(scalars).compress().to_bytes())
    }
}

impl fmt::Debug for CpuTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CpuTable")
    }
}
