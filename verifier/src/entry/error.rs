//! Why an entry, or one of its members, was refused: one typed enum per
//! layer ([`EntryError`] for the entry, [`ShapeError`] for its members,
//! [`AgentError`] for keys, signatures, digests and passports,
//! [`HiddenError`] for hidden fields, from [`crate::disclosure`]), each with a stable message (the
//! HTTP API returns it verbatim).

use alloc::string::String;
use alloc::sync::Arc;
use core::fmt;

use super::EntryKind;
use crate::agent_id::AgentIdError;
pub use crate::disclosure::{HiddenError, OpeningError};

/// Why an entry was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// Not valid JSON, or not canonicalizable (duplicate keys, fractions).
    #[error("entry is not valid JSON: {0}")]
    Json(JsonError),
    /// The shape is wrong (missing or extra fields, wrong types, limits).
    #[error("invalid entry: {0}")]
    Shape(ShapeError),
    /// `kind` is not one the log accepts here (the name as submitted).
    #[error("entry kind {0:?} cannot be submitted here; POST /v1/entries takes \"action\" and \"rotation\"")]
    UnknownKind(String),
    /// `agent` is not a SPIFFE agent id.
    #[error("invalid agent id {id:?}: {reason}")]
    AgentId {
        /// The id as submitted.
        id: String,
        /// Why it is not one.
        reason: AgentIdError,
    },
    /// The `hidden` fields are malformed.
    #[error("invalid hidden fields: {0}")]
    Hidden(HiddenError),
    /// Hidden values sent in the clear with an entry: the agent's signature
    /// would cover them, and every signature in a leaf is public forever.
    #[error(
        "hidden values are never sent in the clear with an entry: commit them first (the SDK does it client-side; or POST \
         /v1/hidden/commit), sign the committed entry and send it with its \"openings\""
    )]
    HiddenInClear,
    /// A declared predicate does not hold for the hidden value; nothing was
    /// proven or stored.
    #[error("{0}")]
    Predicate(zk::ZkError),
    /// A proof failed the verification it gets before it is stored (a bug
    /// in proving, never the caller's fault); nothing was stored.
    #[error("a predicate proof failed its check before storing")]
    ProofSelfCheck,
    /// An agent member (signature, key, hash, sequence) is malformed.
    #[error("invalid entry: {0}")]
    Agent(AgentError),
    /// The stored leaf would be larger than the configured limit.
    #[error("entry is {size} bytes as a stored leaf; the limit is {max}")]
    TooLarge {
        /// Bytes as a stored leaf.
        size: usize,
        /// The limit.
        max: usize,
    },
}

impl From<ShapeError> for EntryError {
    fn from(e: ShapeError) -> Self {
        Self::Shape(e)
    }
}

impl From<AgentError> for EntryError {
    fn from(e: AgentError) -> Self {
        Self::Agent(e)
    }
}

impl From<HiddenError> for EntryError {
    fn from(e: HiddenError) -> Self {
        Self::Hidden(e)
    }
}

impl From<serde_json::Error> for EntryError {
    fn from(e: serde_json::Error) -> Self {
        Self::Json(JsonError(Arc::new(e)))
    }
}

/// A JSON syntax error, or a value the strict parser refuses
/// ([`crate::canonical::parse_strict`]).
#[derive(Clone, Debug)]
pub struct JsonError(Arc<serde_json::Error>);

impl JsonError {
    /// The parser's error.
    pub fn inner(&self) -> &serde_json::Error {
        &self.0
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl PartialEq for JsonError {
    fn eq(&self, other: &Self) -> bool {
        (self.0.classify(), self.0.line(), self.0.column()) == (other.0.classify(), other.0.line(), other.0.column())
    }
}

impl Eq for JsonError {}

/// Which members a kind allows, for [`ShapeError::UnexpectedMember`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Members(pub &'static [&'static str]);

impl fmt::Display for Members {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, m) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(m)?;
        }
        Ok(())
    }
}

/// Where in an attestation an unexpected member was found, for
/// [`ShapeError::UnexpectedIn`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttestationPart {
    /// The attestation object itself.
    Attestation,
    /// Its `"runtime"` object.
    Runtime,
    /// Its `"behaviour"` object.
    Behaviour,
}

impl fmt::Display for AttestationPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Attestation => "an attestation",
            Self::Runtime => "\"runtime\"",
            Self::Behaviour => "\"behaviour\"",
        })
    }
}

/// A member is missing, extra, of the wrong type or out of its limits.
/// Member names are the entry's own (`&'static str` when the model names
/// them, `String` when the input does).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShapeError {
    /// The entry is not a JSON object.
    #[error("an entry must be a JSON object")]
    NotAnObject,
    /// A stored leaf is not a JSON object.
    #[error("leaf must be an object")]
    LeafNotAnObject,
    /// A stored leaf is not in its version's canonical form.
    #[error("leaf is not in canonical form")]
    NotCanonical,
    /// A stored leaf has no known `"v"`.
    #[error("unsupported leaf version")]
    UnsupportedVersion,
    /// A stored leaf has no `integrated_time`.
    #[error("missing integrated_time")]
    MissingTime,
    /// A required member is missing.
    #[error("missing field \"{0}\"")]
    Missing(&'static str),
    /// A member must be a string.
    #[error("\"{0}\" must be a string")]
    NotAString(&'static str),
    /// A string member is empty.
    #[error("\"{0}\" must not be empty")]
    Empty(&'static str),
    /// A string member is longer than its limit.
    #[error("\"{member}\" is longer than {max} characters")]
    TooLong {
        /// The member.
        member: &'static str,
        /// Its limit, in characters.
        max: usize,
    },
    /// A member the kind does not have.
    #[error("unexpected field {member:?}; a {kind} has {allowed}")]
    UnexpectedMember {
        /// The member.
        member: String,
        /// The entry's kind.
        kind: EntryKind,
        /// What it may hold.
        allowed: Members,
    },
    /// An action's `data` is not an object.
    #[error("\"data\" must be a JSON object")]
    DataNotAnObject,
    /// A member the attestation does not have (`within` one of its objects).
    #[error("unexpected field {member:?} in {within}")]
    UnexpectedIn {
        /// The member.
        member: String,
        /// Where.
        within: AttestationPart,
    },
    /// An attestation's nonce is not 32 bytes of base64.
    #[error("\"nonce\" must be the base64 of a 32-byte nonce")]
    Nonce,
    /// A member must be a JSON object.
    #[error("\"{0}\" must be an object")]
    NotAnObjectMember(&'static str),
    /// A member must be a non-negative integer.
    #[error("\"{0}\" must be a non-negative integer")]
    NotAnInteger(&'static str),
    /// A TPM evidence member is not base64 of at most 4096 characters.
    #[error("\"{0}\" must be base64 (at most 4096 characters)")]
    EvidenceBlob(&'static str),
    /// The evidence is neither software nor TPM.
    #[error("\"evidence\" is {{\"type\":\"software\"}} or {{\"type\":\"tpm\",\"quote\",\"signature\"}}")]
    Evidence,
    /// A stored attestation without its verdict.
    #[error("an attestation leaf carries its verdict")]
    MissingVerdict,
    /// An attestation request is not an object.
    #[error("an attestation must be a JSON object")]
    AttestationNotAnObject,
    /// An attestation request of another kind.
    #[error("\"kind\" must be \"attestation\"")]
    NotAnAttestation,
    /// A retirement's reason.
    #[error("\"reason\" must be a string of 1 to 1024 characters")]
    Reason,
    /// A member is not one of its allowed names.
    #[error("\"{member}\" must be one of {allowed}")]
    NotOneOf {
        /// The member.
        member: &'static str,
        /// Its allowed values.
        allowed: Members,
    },
    /// A policy entry's `sha256` is not the hash of its policy.
    #[error("\"sha256\" must be the SHA-256 of the policy's canonical JSON")]
    PolicyHash,
    /// A source name out of its rules.
    #[error("a source name is 1 to 64 of a-z, 0-9, '.', '-', '_', starting with a letter or digit, and not \"ledger\"")]
    SourceName,
    /// A source's `types`.
    #[error("\"types\" must be a non-empty list of distinct signal types among threat_intel, vulnerability, siem, ueba")]
    SourceTypes,
    /// A signal's `subject`.
    #[error("\"subject\" must be an agent id, or {{\"code_hash\": hex}} for threat_intel and vulnerability signals")]
    Subject,
    /// A signal's signer and type do not fit.
    #[error(
        "drift signals are the log's (source \"ledger\", unsigned); peer_report signals are signed by the reporting agent (its id          as source) about another agent; other types are signed by a registered source"
    )]
    SignalSigner,
    /// A peer report's `assessment`.
    #[error("\"assessment\" (positive or negative) is required on peer_report signals and only there")]
    Assessment,
    /// A revocation's `causes`.
    #[error("\"causes\" must be at most 16 ascending entry indices")]
    Causes,
    /// A score member.
    #[error("\"{0}\" must be an integer from 0 to 100")]
    Score(&'static str),
    /// A revocation's `tokens`.
    #[error("\"tokens\" must be 1 to 64 ascending token ids (32 lowercase hex digits)")]
    RevokedTokens,
}

/// A key, signature, digest, sequence number or passport member is
/// malformed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// A member must be a string.
    #[error("\"{0}\" must be a string")]
    NotAString(&'static str),
    /// A public key is not base64.
    #[error("public key must be base64")]
    KeyNotBase64,
    /// A public key is not 32 bytes.
    #[error("public key must be 32 bytes")]
    KeyLength,
    /// A public key is not a curve point.
    #[error("public key is not a valid Ed25519 point")]
    KeyNotAPoint,
    /// A public key of small order or with a torsion component.
    #[error("public key is a weak Ed25519 key (small order or not torsion-free)")]
    WeakKey,
    /// A signature is not base64.
    #[error("signature must be base64")]
    SignatureNotBase64,
    /// A signature is not 64 bytes.
    #[error("signature must be 64 bytes")]
    SignatureLength,
    /// A digest is not 64 lowercase hex digits (`what` names it).
    #[error("{0} must be 64 lowercase hex digits")]
    Hash(&'static str),
    /// `seq` is not an integer ≥ 1.
    #[error("\"seq\" must be an integer ≥ 1")]
    Seq,
    /// A member a passport does not have.
    #[error("unexpected member {0:?} in a passport")]
    PassportMember(String),
    /// A passport text member out of its limits.
    #[error("\"{member}\" must be 1 to {max} characters")]
    TextLength {
        /// The member.
        member: &'static str,
        /// Its limit, in characters.
        max: usize,
    },
    /// `tpm_ak` is not base64.
    #[error("\"tpm_ak\" must be base64 (SPKI DER)")]
    TpmAkEncoding,
    /// `tpm_ak` is not a P-256 key.
    #[error("\"tpm_ak\" is not a P-256 SubjectPublicKeyInfo")]
    TpmAkKey,
}
