//! Predicate proofs: one aggregated Bulletproofs range proof over every
//! value the claims of one statement reduce to ([`crate::predicate`]).
//!
//! Encoding (`to_bytes`), version 1:
//!
//! ```text
//! version (1 byte, = 1) ‖ n, the range bit size (1 byte: 8, 16, 32 or 64) ‖ bulletproofs RangeProof::to_bytes()
//! ```
//!
//! The statement is not in the encoding: the verifier supplies the claims
//! (field, bounds, commitment), and the merlin transcript binds the proof to
//! all of them ([`crate::labels`]). Values are padded to a power of two with
//! commitments to zero under a zero blinding (the identity point).

use alloc::vec::Vec;

use bulletproofs::{BulletproofGens, PedersenGens, RangeProof};
use curve25519_dalek::ristretto::CompressedRistretto;
use curve25519_dalek::traits::Identity;
use merlin::Transcript;

use crate::commit::pedersen_gens;
use crate::error::{Defect, Encoded};
use crate::labels;
use crate::predicate::Claim;
use crate::ZkError;

/// The most claims one proof carries.
pub const MAX_CLAIMS: usize = 8;
/// The most range values one proof aggregates (two per claim).
pub const MAX_VALUES: usize = 2 * MAX_CLAIMS;

/// Generators, built once and shared (building them takes milliseconds).
#[derive(Clone)]
pub struct ZkParams {
    pub(crate) bp: BulletproofGens,
    pub(crate) pc: PedersenGens,
}

impl core::fmt::Debug for ZkParams {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ZkParams").field("max_bits", &64).field("max_values", &MAX_VALUES).finish()
    }
}

impl Default for ZkParams {
    fn default() -> Self {
        Self::new()
    }
}

impl ZkParams {
    /// Generators for 64-bit values, aggregation up to [`MAX_VALUES`].
    pub fn new() -> Self {
        Self { bp: BulletproofGens::new(64, MAX_VALUES), pc: pedersen_gens() }
    }

    /// The Bulletproofs generators.
    pub fn bulletproof_gens(&self) -> &BulletproofGens {
        &self.bp
    }

    /// The Pedersen generators.
    pub fn pedersen_gens(&self) -> &PedersenGens {
        &self.pc
    }
}

/// The process-wide parameters.
#[cfg(feature = "std")]
pub fn params() -> &'static ZkParams {
    static PARAMS: std::sync::OnceLock<ZkParams> = std::sync::OnceLock::new();
    PARAMS.get_or_init(ZkParams::new)
}

/// A proof that every claim of a statement holds.
#[derive(Clone, Debug)]
pub struct PredicateProof {
    pub(crate) bits: u8,
    pub(crate) proof: RangeProof,
}

impl PredicateProof {
    /// Range bit size used.
    pub fn bits(&self) -> usize {
        usize::from(self.bits)
    }

    /// The versioned encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + 32 * 32);
        out.push(labels::VERSION);
        out.push(self.bits);
        out.extend_from_slice(&self.proof.to_bytes());
        out
    }

    /// Decodes [`PredicateProof::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ZkError> {
        let [version, bits, proof @ ..] = bytes else {
            return Err(ZkError::malformed(Encoded::PredicateProof, Defect::TooShort));
        };
        if *version != labels::VERSION {
            return Err(ZkError::malformed(Encoded::PredicateProof, Defect::Version));
        }
        if ![8, 16, 32, 64].contains(bits) {
            return Err(ZkError::malformed(Encoded::PredicateProof, Defect::BitSize));
        }
        let proof = RangeProof::from_bytes(proof).map_err(|_| ZkError::malformed(Encoded::PredicateProof, Defect::RangeProof))?;
        Ok(Self { bits: *bits, proof })
    }

    /// Checks the proof against `claims` (a proof made without a context).
    pub fn verify(&self, claims: &[Claim], params: &ZkParams) -> Result<(), ZkError> {
        self.verify_bound(claims, &[], params)
    }

    /// Checks the proof against `claims` and the `context` it was bound to
    /// when proven ([`crate::prover::prove_bound_with_rng`]): a proof made
    /// for one context fails in any other.
    pub fn verify_bound(&self, claims: &[Claim], context: &[u8], params: &ZkParams) -> Result<(), ZkError> {
        let statement = Statement::new(claims, context)?;
        if usize::from(self.bits) != statement.bits {
            return Err(ZkError::ProofInvalid);
        }
        let mut transcript = statement.transcript();
        // Bulletproofs draws one batching scalar from the caller's RNG. It is
        // bound here to the statement and the proof bytes (merlin's
        // TranscriptRng), so verification needs no OS randomness and a
        // prover cannot predict it before fixing the proof.
        #[cfg(feature = "std")]
        let mut base = rand_core::OsRng;
        #[cfg(not(feature = "std"))]
        let mut base = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::from_seed([0u8; 32]);
        let mut rng = transcript.build_rng().rekey_with_witness_bytes(labels::VERIFIER_WITNESS, &self.proof.to_bytes()).finalize(&mut base);
        self.proof
            .verify_multiple_with_rng(&params.bp, &params.pc, &mut transcript, &statement.commitments, statement.bits, &mut rng)
            .map_err(|_| ZkError::ProofInvalid)
    }
}

/// Verifies many independent proofs on every core; one result per proof,
/// in order. Bulletproofs has no batch verification of independent proofs,
/// so the batch is spread over rayon's pool instead.
#[cfg(feature = "std")]
pub fn verify_all(items: &[(&PredicateProof, &[Claim])], params: &ZkParams) -> Vec<Result<(), ZkError>> {
    use rayon::prelude::*;
    items.par_iter().map(|(proof, claims)| proof.verify(claims, params)).collect()
}

/// The public statement of a proof: the claims, the derived value
/// commitments (padded to a power of two) and the bit size.
pub(crate) struct Statement<'a> {
    pub claims: &'a [Claim],
    pub context: &'a [u8],
    pub commitments: Vec<CompressedRistretto>,
    pub bits: usize,
}

impl<'a> Statement<'a> {
    pub fn new(claims: &'a [Claim], context: &'a [u8]) -> Result<Self, ZkError> {
        if claims.is_empty() || claims.len() > MAX_CLAIMS {
            return Err(ZkError::ClaimCount { got: claims.len(), max: MAX_CLAIMS });
        }
        let mut commitments = Vec::with_capacity(MAX_VALUES);
        let mut bits = 8;
        for claim in claims {
            if claim.predicate.lo > claim.predicate.hi {
                return Err(ZkError::EmptyPredicate { field: claim.field.clone(), lo: claim.predicate.lo, hi: claim.predicate.hi });
            }
            let (values, count) = claim.value_commitments()?;
            commitments.extend_from_slice(&values[..count]);
            bits = bits.max(claim.predicate.bits());
        }
        commitments.resize(commitments.len().next_power_of_two(), CompressedRistretto::identity());
        Ok(Self { claims, context, commitments, bits })
    }

    pub fn transcript(&self) -> Transcript {
        let mut t = Transcript::new(labels::PREDICATE_TRANSCRIPT);
        t.append_message(labels::STATEMENT_VERSION, &[labels::VERSION]);
        if !self.context.is_empty() {
            t.append_message(labels::STATEMENT_CONTEXT, self.context);
        }
        t.append_u64(labels::STATEMENT_CLAIMS, self.claims.len() as u64);
        for claim in self.claims {
            t.append_message(labels::CLAIM_FIELD, claim.field.as_bytes());
            t.append_message(labels::CLAIM_LO, &claim.predicate.lo.to_le_bytes());
            t.append_message(labels::CLAIM_HI, &claim.predicate.hi.to_le_bytes());
            t.append_message(labels::CLAIM_COMMITMENT, claim.commitment.0.as_bytes());
        }
        t
    }
}
