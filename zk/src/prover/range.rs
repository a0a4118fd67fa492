//! What a range-prover backend is: the trait, its input and its output.

use alloc::vec::Vec;

use curve25519_dalek::ristretto::CompressedRistretto;
use curve25519_dalek::scalar::Scalar;
use merlin::Transcript;
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::error::BackendFailure;

/// One range-proof statement for a [`RangeProver`]: what
/// `bulletproofs::RangeProof::prove_multiple_with_rng` takes.
pub struct RangeJob<'a> {
    /// The transcript the proof is bound to (statement already absorbed).
    pub transcript: Transcript,
    /// The values, each below `2^bits`; a power-of-two count.
    pub values: Zeroizing<Vec<u64>>,
    /// One blinding per value.
    pub blindings: Zeroizing<Vec<Scalar>>,
    /// Bits per value: 8, 16, 32 or 64.
    pub bits: usize,
    /// The proof's randomness: with the same stream every backend returns
    /// the same bytes.
    pub rng: &'a mut (dyn CryptoRngCore + Send),
}

impl core::fmt::Debug for RangeJob<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RangeJob").field("values", &self.values.len()).field("bits", &self.bits).finish_non_exhaustive()
    }
}

/// A range proof and the value commitments it is about.
#[derive(Clone, Debug)]
pub struct RangeOutput {
    /// The aggregated range proof.
    pub proof: bulletproofs::RangeProof,
    /// `V_j = v_j·B + r_j·B̃`, compressed, in value order.
    pub commitments: Vec<CompressedRistretto>,
}

/// A range-proof backend. Every backend returns proofs that the unchanged
/// bulletproofs verifier accepts; given the same RNG stream, the same
/// bytes as bulletproofs 5.0 itself (`DalekProver`).
pub trait RangeProver: Send + Sync + core::fmt::Debug {
    /// The backend's name, for logs and metrics labels.
    fn name(&self) -> &'static str;

    /// Proves every job (in parallel where the backend can); results in
    /// job order.
    fn prove(&self, jobs: Vec<RangeJob<'_>>) -> Vec<Result<RangeOutput, BackendFailure>>;
}
