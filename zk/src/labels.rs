//! Every domain-separation label and version byte of the protocol, in one
//! place. Changing any of them changes every proof and commitment: bump
//! [`VERSION`] and keep the old labels for old proofs.

/// Version of the encodings and transcripts defined by this crate.
pub const VERSION: u8 = 1;

/// Merlin transcript label of a predicate proof (an aggregated range proof
/// over the values a set of claims reduces to).
pub const PREDICATE_TRANSCRIPT: &[u8] = b"agent-ledger/zk/v1/predicate-proof";

/// Transcript message labels of the statement a predicate proof is bound to.
pub const STATEMENT_VERSION: &[u8] = b"version";
/// Number of claims in the statement.
pub const STATEMENT_CLAIMS: &[u8] = b"claims";
/// What the proof is bound to, chosen by the caller (e.g. the log origin,
/// agent and sequence number of the entry that carries it, or the entry a
/// disclosure is about). Appended only when non-empty, so proofs made
/// without a context (and the frozen vectors) keep their transcripts.
pub const STATEMENT_CONTEXT: &[u8] = b"context";
/// A claim's field name.
pub const CLAIM_FIELD: &[u8] = b"field";
/// A claim's lower bound (`u64` little-endian).
pub const CLAIM_LO: &[u8] = b"lo";
/// A claim's upper bound (`u64` little-endian).
pub const CLAIM_HI: &[u8] = b"hi";
/// A claim's Pedersen commitment.
pub const CLAIM_COMMITMENT: &[u8] = b"commitment";

/// Label under which the verifier binds its batching randomness to the
/// proof bytes (merlin `TranscriptRng`).
pub const VERIFIER_WITNESS: &[u8] = b"agent-ledger/zk/v1/verifier-proof-bytes";
