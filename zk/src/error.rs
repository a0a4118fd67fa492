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
        what: &'static str,
        /// Why it failed.
        reason: &'static str,
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
    Backend(&'static str),
}

impl ZkError {
    pub(crate) fn malformed(what: &'static str, reason: &'static str) -> Self {
        Self::Malformed { what, reason }
    }
}
