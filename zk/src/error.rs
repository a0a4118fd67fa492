//! The crate's one error type.

use alloc::string::String;

/// What went wrong committing, proving or verifying.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ZkError {
    /// The hidden value does not satisfy the predicate: nothing was proven.
    #[error("the value of {field:?} does not satisfy {predicate}")]
    PredicateFalse {
        /// The field whose value fails.
        field: String,
        /// The predicate, as text.
        predicate: String,
    },
    /// A predicate with `lo > hi`.
    #[error("empty predicate on {field:?}: lower bound {lo} exceeds upper bound {hi}")]
    EmptyPredicate {
        /// The field.
        field: String,
        /// Lower bound.
        lo: u64,
        /// Upper bound.
        hi: u64,
    },
    /// No claims, or more than one proof may carry.
    #[error("a predicate proof carries 1 to {max} claims, not {got}")]
    ClaimCount {
        /// Claims given.
        got: usize,
        /// The most allowed.
        max: usize,
    },
    /// Bytes that do not decode (wrong length, version, point or scalar).
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being decoded.
        what: Encoded,
        /// Why it failed.
        reason: Defect,
    },
    /// A commitment that is not a valid Ristretto point encoding.
    #[error("commitment of {field:?} is not a valid Ristretto point")]
    BadCommitment {
        /// The field.
        field: String,
    },
    /// The proof does not verify against the claims and commitments.
    #[error("predicate proof does not verify for the claimed statement")]
    ProofInvalid,
    /// An opening does not match its commitment.
    #[error("opening of {field:?} does not match its commitment")]
    OpeningMismatch {
        /// The field.
        field: String,
    },
    /// The bulletproofs library refused the inputs.
    #[error("range proof failed: {0}")]
    Backend(BackendFailure),
}

impl ZkError {
    pub(crate) fn malformed(what: Encoded, reason: Defect) -> Self {
        Self::Malformed { what, reason }
    }
}

/// What was being decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Encoded {
    /// A Pedersen commitment.
    #[error("Pedersen commitment")]
    PedersenCommitment,
    /// A blinding factor.
    #[error("blinding factor")]
    BlindingFactor,
    /// A salt.
    #[error("salt")]
    Salt,
    /// A salted hash commitment.
    #[error("hash commitment")]
    HashCommitment,
    /// A predicate proof.
    #[error("predicate proof")]
    PredicateProof,
}

/// Why bytes did not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Defect {
    /// Not the expected length.
    #[error("not {0} bytes")]
    Length(usize),
    /// Not a Ristretto point encoding.
    #[error("not a Ristretto point")]
    NotAPoint,
    /// Not a canonical scalar.
    #[error("not a canonical scalar")]
    NotCanonicalScalar,
    /// Not base64url without padding.
    #[error("not base64url without padding")]
    NotBase64Url,
    /// Shorter than the proof header.
    #[error("shorter than its header")]
    TooShort,
    /// An unknown proof version.
    #[error("unsupported version")]
    Version,
    /// A bit size the proofs do not use.
    #[error("bit size is not 8, 16, 32 or 64")]
    BitSize,
    /// The range proof bytes do not decode.
    #[error("range proof does not decode")]
    RangeProof,
}

/// Why proving failed inside the prover.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackendFailure {
    /// The bulletproofs prover refused its inputs.
    #[error("the bulletproofs prover refused its inputs")]
    Refused,
    /// The value commitments it derived differ from the prover's.
    #[error("derived value commitments differ from the prover's")]
    CommitmentsDiffer,
    /// The OS random source failed.
    #[error("the OS random source failed")]
    Randomness,
    /// The prover threads did not start.
    #[error("could not start the prover threads")]
    Threads,
    /// A prover backend was given inputs of the wrong shape (bit size,
    /// value count, scalar count).
    #[error("inputs of the wrong shape for the prover backend")]
    Shape,
    /// The accelerator of a prover backend failed.
    #[error("the prover's accelerator failed")]
    Device,
    /// The prover panicked (a bug); nothing was proven.
    #[error("the prover panicked")]
    Panicked,
}
