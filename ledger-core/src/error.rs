//! The crate's error type.

use std::time::Duration;

use verifier::agent_id::AgentId;
use verifier::entry::AgentError;
use verifier::fold::registry::RegistryError;
use verifier::fold::sources::SourceError;

use crate::entry::{EntryError, EntryKind};
use crate::store::StorageError;

/// Everything a log operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A submitted entry is invalid.
    #[error(transparent)]
    Entry(#[from] EntryError),
    /// An append carried no entries.
    #[error("a batch must hold at least one entry")]
    EmptyBatch,
    /// An append is larger than the whole sequencer queue.
    #[error("batch of {bytes} bytes is larger than the sequencer queue ({max} bytes)")]
    BatchTooLarge { bytes: usize, max: usize },
    /// The sequencer queue is full: back off and retry.
    #[error("the sequencer queue is full; retry after {} s", retry_after.as_secs())]
    Pushback { retry_after: Duration },
    /// The log is shutting down and takes no more appends.
    #[error("the log is shutting down")]
    ShuttingDown,
    /// An entry index at or beyond the tree size.
    #[error("index {index} is beyond the tree (size {size})")]
    IndexBeyondTree { index: u64, size: u64 },
    /// A tree size larger than the log.
    #[error("tree size {requested} is beyond the current tree size {size}")]
    SizeBeyondTree { requested: u64, size: u64 },
    /// A consistency proof asked for an old size above the new size.
    #[error("old size {old} is larger than new size {new}")]
    OldSizeLarger { old: u64, new: u64 },
    /// A tile that does not exist (yet) in the tree.
    #[error("tile {0} is not available at the current tree size")]
    TileNotAvailable(String),
    /// The entry has no hidden fields.
    #[error("entry {index} has no hidden fields")]
    NoHiddenFields { index: u64 },
    /// The entry's openings were never stored (it was appended without
    /// them) and so cannot be disclosed.
    #[error("entry {index} has no stored openings")]
    NoOpenings { index: u64 },
    /// The entry's openings were erased: its hidden fields can no longer be
    /// disclosed.
    #[error("the openings of entry {index} were shredded at {at_ms} ms")]
    OpeningsShredded { index: u64, at_ms: u64 },
    /// A disclosure request names fields the entry does not hide, or a
    /// predicate on a string.
    #[error(transparent)]
    Disclosure(#[from] verifier::disclosure::DisclosureError),
    /// One append holds more entries with hidden fields than the prover
    /// queue admits at once.
    #[error("the append holds {entries} entries with hidden fields; the prover queue admits {max}")]
    TooManyHidden { entries: usize, max: usize },
    /// The prover queue is full: back off and retry.
    #[error("the prover queue is full; retry after {} s", retry_after.as_secs())]
    ProverBusy { retry_after: Duration },
    /// An agent-written entry without `seq` and `signature`.
    #[error("a {0} entry must carry the agent's \"seq\" and \"signature\"")]
    Unsigned(EntryKind),
    /// The signature does not verify with the agent's key in force.
    #[error("the signature does not verify with the key in force for {0}")]
    BadSignature(AgentId),
    /// No passport for this agent.
    #[error("no passport is registered for {0}")]
    UnknownAgent(AgentId),
    /// The agent is retired.
    #[error("{0} is retired")]
    AgentRetired(AgentId),
    /// A passport for this agent already exists.
    #[error("a passport for {0} is already registered")]
    AgentExists(AgentId),
    /// The agent is revoked: only attestations are taken until an admin
    /// reinstates it.
    #[error("{0} is revoked: only attestations are accepted until it is reinstated")]
    AgentRevoked(AgentId),
    /// The agent's score is below the revocation threshold and its
    /// revocation is being logged: only attestations are accepted.
    #[error("{agent} scores {score}, below the revocation threshold {threshold}: its revocation is being logged; only attestations are accepted")]
    BelowThreshold { agent: AgentId, score: u8, threshold: u8 },
    /// A quarantine of an agent already revoked.
    #[error("{0} is already revoked")]
    AlreadyRevoked(AgentId),
    /// A reinstatement of an agent that is not revoked.
    #[error("{0} is not revoked")]
    NotRevoked(AgentId),
    /// A reinstatement before the agent attested successfully after its
    /// revocation.
    #[error("{agent} has not attested successfully since its revocation at index {revoked_at}: attest first")]
    AttestationRequired { agent: AgentId, revoked_at: u64 },
    /// A sequence number at or below the last accepted one.
    #[error("sequence number {seq} of {agent} is not above the last accepted ({last}): replayed or out of order")]
    SequenceReplayed { agent: AgentId, seq: u64, last: u64 },
    /// The sources fold refused a source entry or a signal (unknown
    /// source, type not allowed, replayed sequence number, bad signature,
    /// unknown or retired subject).
    #[error(transparent)]
    Source(#[from] SourceError),
    /// An agent outside the configured trust domain.
    #[error("{agent} is not in the trust domain {trust_domain}")]
    WrongTrustDomain { agent: AgentId, trust_domain: String },
    /// An attestation nonce that is unknown, expired, used or another agent's.
    #[error("attestation nonce: {0}")]
    Nonce(crate::nonces::NonceError),
    /// The attestation was recorded (at `index`) with a failing verdict.
    #[error("attestation recorded at index {index} with a failing verdict: {}", reasons.join("; "))]
    AttestationFailed { index: u64, reasons: Vec<String> },
    /// A malformed token request (action, resource, constraints,
    /// lifetime).
    #[error("invalid token request: {0}")]
    InvalidTokenRequest(String),
    /// The agent's score is below what the action's risk class needs.
    #[error("{agent} scores {score}; {class:?} actions need {required}: attest (or wait for signals against it to decay) to raise it")]
    ScoreTooLow { agent: AgentId, score: u8, required: u8, class: String },
    /// The action's risk class needs an attestation younger than the
    /// agent's latest successful one.
    #[error("{class:?} actions need a successful attestation in the last {max_age_s} s; {agent}'s latest is {}", last_ok_at.map_or("none".to_owned(), |t| format!("at {t} ms")))]
    FreshAttestationRequired { agent: AgentId, class: String, max_age_s: u32, last_ok_at: Option<u64> },
    /// The agent holds as many live action tokens as it may.
    #[error("{0} holds {max} live action tokens; wait for one to expire", max = verifier::token::MAX_LIVE_TOKENS)]
    TooManyTokens(AgentId),
    /// The agent has as many escalations waiting for a human as it may.
    #[error("{0} has {max} escalations waiting for a decision", max = verifier::token::MAX_PENDING_ESCALATIONS)]
    TooManyEscalations(AgentId),
    /// No escalation at this index (or it was decided long ago and
    /// forgotten).
    #[error("no escalation at index {0}")]
    UnknownEscalation(u64),
    /// The escalation was decided already (or is being decided).
    #[error("escalation {escalation} is already {outcome}")]
    AlreadyDecided { escalation: u64, outcome: &'static str },
    /// An action token is refused ([`verifier::token::TokenCheck::verify`]).
    #[error(transparent)]
    Token(#[from] verifier::token::TokenError),
    /// No OpenID SSF stream has this id ([`crate::ssf`]).
    #[error("no SSF stream {0:?}")]
    UnknownStream(String),
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The log cannot start with this configuration or data.
    #[error("{0}")]
    Config(String),
    /// An export range that is not within the checkpoint's tree.
    #[error("export range: {0}")]
    BadExportRange(String),
    /// Writing an export failed (the reader went away, say).
    #[error("export: {0}")]
    Export(String),
}

/// The registry fold's refusals ([`verifier::fold::registry::decide`]) as
/// the log reports them, with the log's own messages.
impl From<RegistryError> for Error {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::UnknownAgent(agent) => Self::UnknownAgent(agent),
            RegistryError::Retired(agent) => Self::AgentRetired(agent),
            RegistryError::Exists(agent) => Self::AgentExists(agent),
            RegistryError::Revoked(agent) => Self::AgentRevoked(agent),
            RegistryError::AlreadyRevoked(agent) => Self::AlreadyRevoked(agent),
            RegistryError::NotRevoked(agent) => Self::NotRevoked(agent),
            RegistryError::AttestationRequired { agent, revoked_at } => Self::AttestationRequired { agent, revoked_at },
            RegistryError::Replayed { agent, seq, last } => Self::SequenceReplayed { agent, seq, last },
            RegistryError::BadSignature { agent } => Self::BadSignature(agent),
            RegistryError::WeakKey { .. } => Self::Entry(EntryError::Agent(AgentError::WeakKey)),
            RegistryError::Entry(e) => Self::Entry(e),
            RegistryError::Unsigned(kind) => Self::Unsigned(kind),
            // `VerdictMismatch` and `LeafVersion` come only from an offline
            // audit of stored leaves (recomputed verdicts, leaf versions):
            // met by the log, they mean its store holds what it never
            // admitted. A refusal added to the fold later is never taken as
            // admitted either.
            other => Self::Storage(StorageError::Corrupt(other.to_string())),
        }
    }
}
