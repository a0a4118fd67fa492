//! JSON shapes of the HTTP API, shared by the server (which serializes
//! them) and `ledger-verify` (which reads them). Hashes and raw bytes are
//! standard base64. These types never decide bytes that get hashed or
//! signed; that is the job of the entry encoding and [`crate::hash`].

use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::hash::Hash;

/// Serde adapters for base64 fields.
pub mod b64 {
    use alloc::string::String;
    use alloc::vec::Vec;

    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine as _;
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::hash::Hash;

    /// Serializes bytes as base64.
    pub fn serialize<S: Serializer>(bytes: impl AsRef<[u8]>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(bytes))
    }

    /// Deserializes base64 bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        B64.decode(s).map_err(D::Error::custom)
    }

    /// Base64 of exactly 32 bytes.
    pub mod hash {
        use super::*;

        /// Serializes a hash as base64.
        pub fn serialize<S: Serializer>(h: &Hash, s: S) -> Result<S::Ok, S::Error> {
            super::serialize(h, s)
        }

        /// Deserializes a base64 hash of exactly 32 bytes.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
            let bytes = super::deserialize(d)?;
            Hash::try_from(bytes.as_slice()).map_err(|_| D::Error::custom("hash must be 32 bytes"))
        }
    }

    /// A list of base64 hashes.
    pub mod hashes {
        use super::*;
        use serde::ser::SerializeSeq;

        /// Serializes hashes as a list of base64 strings.
        pub fn serialize<S: Serializer>(hs: &[Hash], s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(hs.len()))?;
            for h in hs {
                seq.serialize_element(&B64.encode(h))?;
            }
            seq.end()
        }

        /// Deserializes a list of base64 hashes of 32 bytes each.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Hash>, D::Error> {
            let strings = Vec::<String>::deserialize(d)?;
            strings
                .iter()
                .map(|s| {
                    let bytes = B64.decode(s).map_err(D::Error::custom)?;
                    Hash::try_from(bytes.as_slice()).map_err(|_| D::Error::custom("hash must be 32 bytes"))
                })
                .collect()
        }
    }
}

/// What `POST /v1/entries` takes, and each element of a
/// `POST /v1/entries/batch` array: an agent-signed action (plain, or with
/// committed hidden fields and their openings) or a key rotation
/// (docs/FORMAT.md, "Entries" and "Agent signatures"). The server parses
/// submissions strictly itself; these types are for clients and the
/// OpenAPI document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EntryRequest {
    /// `"kind": "action"`.
    Action(ActionEntryRequest),
    /// `"kind": "rotation"`.
    Rotation(RotationEntryRequest),
}

/// An action entry as a client submits it (docs/FORMAT.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActionEntryRequest {
    /// Always `"action"`.
    #[cfg_attr(feature = "openapi", schema(pattern = "^action$", example = "action"))]
    pub kind: String,
    /// The acting agent, `spiffe://<trust-domain>/agent/<name>`.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "^spiffe://[a-z0-9._-]+/agent/[A-Za-z0-9_-][A-Za-z0-9._-]*$",
            max_length = 2048,
            example = "spiffe://example.org/agent/billing"
        )
    )]
    pub agent: String,
    /// What it did.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256, example = "read"))]
    pub action: String,
    /// What it did it to.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 2048, example = "db/invoices"))]
    pub resource: String,
    /// Optional details; numbers must be integers within ±(2^53-1), keys
    /// must not repeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object, nullable = false))]
    pub data: Option<serde_json::Value>,
    /// The agent's sequence number: at least 1, strictly increasing per
    /// agent (gaps allowed). Required, with `signature`, unless the log runs
    /// without agent authentication (then 401 `signature_required`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, nullable = false))]
    pub seq: Option<u64>,
    /// Base64 Ed25519 signature of the agent's key in force over the entry
    /// without `signature` and `openings`, bound to the log's origin
    /// (docs/FORMAT.md, "Agent signatures").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(format = Byte, nullable = false))]
    pub signature: Option<String>,
    /// Optional hidden fields, committed by the agent before it signs:
    /// `{"name": {"u64": "<commitment>"} | {"str": "<digest>"}}`, with
    /// `predicates` and `openings` (docs/FORMAT.md, "Hidden fields"). Values
    /// in the clear are refused (`commit_hidden_first`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object, nullable = false))]
    pub hidden: Option<serde_json::Value>,
    /// The proof of the declared predicates, `{"claims": [...], "proof": "..."}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object, nullable = false))]
    pub predicates: Option<serde_json::Value>,
    /// The openings of the hidden fields (required with `hidden`), checked
    /// and sealed by the log, never stored in the leaf nor signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object, nullable = false))]
    pub openings: Option<serde_json::Value>,
}

/// A key rotation as an agent submits it: both the old key in force
/// (`signature`) and the new key (`new_signature`) sign the entry without
/// either signature; later entries are checked with the new key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RotationEntryRequest {
    /// Always `"rotation"`.
    #[cfg_attr(feature = "openapi", schema(pattern = "^rotation$", example = "rotation"))]
    pub kind: String,
    /// The agent, `spiffe://<trust-domain>/agent/<name>`.
    #[cfg_attr(feature = "openapi", schema(max_length = 2048, example = "spiffe://example.org/agent/billing"))]
    pub agent: String,
    /// The new base64 Ed25519 public key.
    #[cfg_attr(feature = "openapi", schema(format = Byte))]
    pub new_public_key: String,
    /// The agent's sequence number (at least 1, strictly increasing).
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub seq: u64,
    /// Base64 signature of the key in force.
    #[cfg_attr(feature = "openapi", schema(format = Byte))]
    pub signature: String,
    /// Base64 signature of the new key.
    #[cfg_attr(feature = "openapi", schema(format = Byte))]
    pub new_signature: String,
}

/// One appended entry: where it landed and its leaf hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppendedEntry {
    /// Durably assigned index.
    pub index: u64,
    /// RFC 9162 leaf hash of the stored leaf bytes.
    #[serde(with = "b64::hash")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Byte))]
    pub leaf_hash: Hash,
    /// Integrated time the server stamped, milliseconds since the Unix epoch.
    pub integrated_time: u64,
}

/// Response to a batch append.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchAppendResponse {
    /// The entries in request order, at contiguous indices.
    pub entries: Vec<AppendedEntry>,
}

/// What `POST /v1/sources` takes (admin): a signal source's name, its
/// Ed25519 key and the signal types it may file (docs/FORMAT.md,
/// "Signals").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SourceRequest {
    /// 1 to 64 of `a-z`, `0-9`, `.`, `-`, `_`, starting with a letter or
    /// digit; not `ledger`.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$", example = "siem-1"))]
    pub source: String,
    /// The source's base64 Ed25519 public key.
    #[cfg_attr(feature = "openapi", schema(format = Byte))]
    pub key: String,
    /// Distinct signal types among `threat_intel`, `vulnerability`,
    /// `siem`, `ueba`.
    #[cfg_attr(feature = "openapi", schema(min_items = 1, example = json!(["siem", "ueba"])))]
    pub types: Vec<String>,
}

/// A registered signal source, as `GET /v1/sources` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SourceRecord {
    /// Its name.
    pub source: String,
    /// Its base64 Ed25519 public key in force.
    #[cfg_attr(feature = "openapi", schema(format = Byte))]
    pub key: String,
    /// The signal types it may file.
    pub types: Vec<String>,
    /// Index of its first registration.
    pub registered_index: u64,
    /// Index of the `source` entry in force (the last replacement).
    pub key_index: u64,
    /// Its last accepted sequence number (0: none yet).
    pub last_seq: u64,
}

/// Every registered signal source, by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SourcesResponse {
    /// The sources, by name.
    pub sources: Vec<SourceRecord>,
}

/// One stored entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EntryResponse {
    /// Index in the log.
    pub index: u64,
    /// The exact leaf bytes that were hashed (canonical JSON).
    #[serde(with = "b64")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Byte))]
    pub leaf: Vec<u8>,
    /// The leaf decoded.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub entry: serde_json::Value,
}

/// A range of entries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EntriesResponse {
    /// Entries in index order.
    pub entries: Vec<EntryResponse>,
    /// Tree size when the range was read.
    pub tree_size: u64,
}

/// The kind of an event on the revocation bus (`GET /v1/events/stream`,
/// `GET /v1/events/ws`): every event is a log entry of one of four kinds,
/// named on the bus as here (the names of the `types=` filter and of the
/// SSE `event:` field). A risk entry is a CAEP `risk-level-change`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub enum EventType {
    /// A `revocation` entry: the agent is revoked.
    #[serde(rename = "revocation")]
    Revocation,
    /// A `reinstatement` entry: the agent is reinstated.
    #[serde(rename = "reinstatement")]
    Reinstatement,
    /// A `risk` entry: the agent's risk level changed.
    #[serde(rename = "risk-level-change")]
    RiskLevelChange,
    /// A `signal` entry: evidence about an agent or a code hash.
    #[serde(rename = "signal")]
    Signal,
    /// An `escalation` entry: a token request waits for a human.
    #[serde(rename = "escalation")]
    Escalation,
    /// A `decision` entry: an escalation approved, denied or expired.
    #[serde(rename = "decision")]
    Decision,
}

impl EventType {
    /// Every event type.
    pub const ALL: [Self; 6] =
        [Self::Revocation, Self::Reinstatement, Self::RiskLevelChange, Self::Signal, Self::Escalation, Self::Decision];

    /// The name on the bus.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Revocation => "revocation",
            Self::Reinstatement => "reinstatement",
            Self::RiskLevelChange => "risk-level-change",
            Self::Signal => "signal",
            Self::Escalation => "escalation",
            Self::Decision => "decision",
        }
    }

    /// The type of a name on the bus.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The event type of entries of `kind`; `None` for kinds that are no
    /// events.
    pub fn of_kind(kind: crate::entry::EntryKind) -> Option<Self> {
        use crate::entry::EntryKind as K;
        match kind {
            K::Revocation => Some(Self::Revocation),
            K::Reinstatement => Some(Self::Reinstatement),
            K::Risk => Some(Self::RiskLevelChange),
            K::Signal => Some(Self::Signal),
            K::Escalation => Some(Self::Escalation),
            K::Decision => Some(Self::Decision),
            _ => None,
        }
    }

    /// The entry kind of this event type.
    pub const fn kind(self) -> crate::entry::EntryKind {
        use crate::entry::EntryKind as K;
        match self {
            Self::Revocation => K::Revocation,
            Self::Reinstatement => K::Reinstatement,
            Self::RiskLevelChange => K::Risk,
            Self::Signal => K::Signal,
            Self::Escalation => K::Escalation,
            Self::Decision => K::Decision,
        }
    }
}

impl core::fmt::Display for EventType {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event on the revocation bus: an SSE event's `data:` and a
/// WebSocket text message. The event's id is its entry's index.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    /// Index of the entry (the event's id; resume after it with
    /// `Last-Event-ID` or `?after=`).
    pub index: u64,
    /// The event type.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// The agent it is about; `null` for a signal about a code hash.
    pub agent: Option<String>,
    /// The entry's integrated time, ms since the Unix epoch.
    pub integrated_time: u64,
    /// The entry, as `GET /v1/entries/{index}` decodes it.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub entry: serde_json::Value,
}

/// The response header of `GET /v1/events/stream` and `GET /v1/events/ws`
/// that says where the stream starts: after this index, `-1` for the
/// first entry. A subscriber that asked for the live stream learns here
/// the index to resume after should it lose the connection before its
/// first event.
pub const EVENTS_AFTER_HEADER: &str = "ledger-events-after";

/// An RFC 9162 inclusion proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InclusionProofResponse {
    /// Leaf index.
    pub index: u64,
    /// Tree size the proof is for.
    pub tree_size: u64,
    /// Audit path, leaf sibling first.
    #[serde(with = "b64::hashes")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub hashes: Vec<Hash>,
}

/// An RFC 9162 consistency proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsistencyProofResponse {
    /// Size of the older tree.
    pub old_size: u64,
    /// Size of the newer tree.
    pub new_size: u64,
    /// Consistency path.
    #[serde(with = "b64::hashes")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub hashes: Vec<Hash>,
}

/// The body of every error response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorResponse {
    /// The error.
    pub error: ErrorDetail,
}

/// A stable machine-readable code and a precise human message.
///
/// Deserializing one fails for a code this build does not know; a client
/// that must cope with a newer server reads `code` as a string and
/// [`parse`](core::str::FromStr)s it (as `ledger-client` does).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// Stable snake_case code.
    pub code: ErrorCode,
    /// What exactly was wrong.
    pub message: String,
    /// Machine-readable particulars of some codes (`score_too_low`:
    /// `{"score", "required", "class", "raise"}`; `attestation_required`
    /// on a token request: `{"class", "max_age_s", "last_ok_at", "raise"}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub details: Option<serde_json::Value>,
}

/// Declares [`ErrorCode`] with the text of each code written once: serde,
/// [`ErrorCode::as_str`], parsing and the OpenAPI enum all come from here.
macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident = $text:literal, )*) => {
        /// Every stable error code of the HTTP API, as sent in
        /// `{"error": {"code": "<code>", "message": "…"}}`. The HTTP status
        /// that goes with each is in its doc (the server maps them in one
        /// place, `ledger-server/src/error.rs`). New codes may be added:
        /// match with a wildcard arm.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        // utoipa does not see the per-variant renames made by this macro;
        // this gives it the same texts (a test in ledger-server checks).
        #[serde(rename_all = "snake_case")]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[$doc])* #[serde(rename = $text)] $variant, )*
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// The code as sent on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $text,)*
                }
            }
        }

        impl core::str::FromStr for ErrorCode {
            type Err = UnknownErrorCode;

            fn from_str(s: &str) -> Result<Self, UnknownErrorCode> {
                match s {
                    $($text => Ok(ErrorCode::$variant),)*
                    _ => Err(UnknownErrorCode),
                }
            }
        }
    };
}

error_codes! {
    // 400
    /// 400: the body (or a batch) is not valid strict JSON (also duplicate keys, non-integer numbers).
    InvalidJson = "invalid_json",
    /// 400: an entry of the wrong shape.
    InvalidEntry = "invalid_entry",
    /// 400: an entry kind `POST /v1/entries` does not take.
    UnknownKind = "unknown_kind",
    /// 400: not a SPIFFE agent id.
    InvalidAgentId = "invalid_agent_id",
    /// 400: malformed hidden fields, commitments, openings or commit request.
    InvalidHidden = "invalid_hidden",
    /// 400: hidden values in the clear with an entry (commit them first).
    CommitHiddenFirst = "commit_hidden_first",
    /// 400: a malformed predicate or predicate proof.
    InvalidPredicate = "invalid_predicate",
    /// 400: a malformed passport.
    InvalidPassport = "invalid_passport",
    /// 400: an agent outside the log's trust domain.
    WrongTrustDomain = "wrong_trust_domain",
    /// 400: a retirement without a valid reason.
    InvalidRetirement = "invalid_retirement",
    /// 400: a malformed signal source registration (name, key, types).
    InvalidSource = "invalid_source",
    /// 400: a malformed signal (members, subject, signer and type that do not fit).
    InvalidSignal = "invalid_signal",
    /// 400: a malformed disclosure request.
    InvalidDisclosure = "invalid_disclosure",
    /// 400: a disclosure names a field the entry does not hide.
    UnknownField = "unknown_field",
    /// 400: a predicate about a hidden field that is not an integer.
    NotAnInteger = "not_an_integer",
    /// 400: a batch body that is not a JSON array.
    InvalidBatch = "invalid_batch",
    /// 400: a batch with no entries.
    EmptyBatch = "empty_batch",
    /// 400: an invalid query string.
    InvalidQuery = "invalid_query",
    /// 400: a path index that is not a non-negative decimal integer.
    InvalidIndex = "invalid_index",
    /// 400: a malformed tile path.
    InvalidTilePath = "invalid_tile_path",
    /// 400: a consistency proof asked from a larger to a smaller tree.
    OldSizeLarger = "old_size_larger",
    /// 400: an export range outside the checkpoint's tree.
    InvalidExportRange = "invalid_export_range",
    /// 503: witnesses are configured and no checkpoint has reached their
    /// quorum yet.
    NotWitnessed = "not_witnessed",
    /// 400: not a valid trust policy (TOML or JSON).
    InvalidPolicy = "invalid_policy",
    /// 400: the request body could not be read.
    BodyReadFailed = "body_read_failed",
    /// 400: a malformed SSF stream configuration or management request, or
    /// a Transmitter-supplied member that does not match (OpenID SSF 1.0 §8.1).
    InvalidStream = "invalid_stream",
    /// 400: an SSF stream status other than `enabled`, `paused`, `disabled`.
    InvalidStreamStatus = "invalid_stream_status",
    /// 400: an SSF subject that is not a `uri` subject naming an agent of the trust domain.
    InvalidSubject = "invalid_subject",
    /// 400: a malformed RFC 8936 poll request, or a poll of a push stream.
    InvalidPoll = "invalid_poll",
    /// 400: a malformed token request (action, resource, constraints, lifetime).
    InvalidTokenRequest = "invalid_token_request",
    /// 400: a token verification request without a token or an operation.
    InvalidTokenCheck = "invalid_token_check",
    // 401
    /// 401: an admin route without the right bearer token (with
    /// `WWW-Authenticate: Bearer`), or a nonce request without an agent signature.
    Unauthorized = "unauthorized",
    /// 401: an agent entry or a commit request without a signature.
    SignatureRequired = "signature_required",
    /// 401: a signature that does not verify with the agent's key in force.
    BadSignature = "bad_signature",
    /// 401: a signed request's timestamp too far from the server's clock.
    StaleRequest = "stale_request",
    // 403
    /// 403: the server has no admin token, so admin routes are disabled.
    AdminDisabled = "admin_disabled",
    /// 403 (404 on `GET /v1/agents/{id}`): no passport is registered for the agent.
    UnknownAgent = "unknown_agent",
    /// 403: the agent is retired.
    AgentRetired = "agent_retired",
    /// 403: the agent is revoked; only its attestations are taken until an
    /// admin reinstates it.
    AgentRevoked = "agent_revoked",
    /// 403: a revoked agent without a successful attestation since its
    /// revocation cannot be reinstated.
    AttestationRequired = "attestation_required",
    /// 403: the signing agent is not the one the request is about.
    NotOwner = "not_owner",
    /// 403: a signal names a source that is not registered.
    UnknownSource = "unknown_source",
    /// 403: a signal of a type its source was not registered for.
    SignalTypeNotAllowed = "signal_type_not_allowed",
    /// 403: the agent's trust score is below the minimum of the action's
    /// risk class (`details`: score, required, class, what would raise it).
    ScoreTooLow = "score_too_low",
    /// 403: an action token is refused: not a token of this log's shape.
    TokenMalformed = "token_malformed",
    /// 403: an action token longer than the limit.
    TokenTooLong = "token_too_long",
    /// 403: an action token whose signature does not verify.
    TokenBadSignature = "token_bad_signature",
    /// 403: an action token issued by another log.
    TokenWrongIssuer = "token_wrong_issuer",
    /// 403: an action token past its `exp` (plus the leeway).
    TokenExpired = "token_expired",
    /// 403: an action token before its `nbf` (minus the leeway).
    TokenNotYetValid = "token_not_yet_valid",
    /// 403: an action token for another resource.
    TokenWrongAudience = "token_wrong_audience",
    /// 403: an action token for another action.
    TokenWrongAction = "token_wrong_action",
    /// 403: a statement other than the one the token pins.
    TokenSqlMismatch = "token_sql_mismatch",
    /// 403: an amount above the token's ceiling.
    TokenAmountOverCeiling = "token_amount_over_ceiling",
    /// 403: a target other than the one the token pins.
    TokenTargetMismatch = "token_target_mismatch",
    /// 403: a revoked action token.
    TokenRevoked = "token_revoked",
    /// 409: a single-use action token presented again.
    TokenReplayed = "token_replayed",
    /// 403: the SSF bearer token lacks the scope the endpoint needs
    /// (`WWW-Authenticate: Bearer error="insufficient_scope"`).
    InsufficientScope = "insufficient_scope",
    // 404
    /// 404: no such route.
    NotFound = "not_found",
    /// 404: an index beyond the tree.
    IndexBeyondTree = "index_beyond_tree",
    /// 404: a tree size beyond the tree.
    SizeBeyondTree = "size_beyond_tree",
    /// 404: a tile not (yet) in the tree.
    TileNotAvailable = "tile_not_available",
    /// 404: the entry has no hidden fields.
    NoHiddenFields = "no_hidden_fields",
    /// 404: the entry has no openings.
    NoOpenings = "no_openings",
    /// 404: no SSF stream with this id for this receiver.
    UnknownStream = "unknown_stream",
    /// 404: no escalation with this id.
    UnknownEscalation = "unknown_escalation",
    /// 404: this server issues no action tokens.
    TokensDisabled = "tokens_disabled",
    /// 405: the route does not take this method.
    MethodNotAllowed = "method_not_allowed",
    /// 408: the body did not arrive in time.
    RequestTimeout = "request_timeout",
    // 409
    /// 409: the agent is already registered.
    AgentExists = "agent_exists",
    /// 409: a sequence number not above the agent's (or the signal source's) last one.
    SequenceReplayed = "sequence_replayed",
    /// 409: an attestation nonce the log never issued (or dropped).
    NonceUnknown = "nonce_unknown",
    /// 409: an expired attestation nonce.
    NonceExpired = "nonce_expired",
    /// 409: an attestation nonce already used.
    NonceUsed = "nonce_used",
    /// 409: another agent's attestation nonce.
    NonceWrongAgent = "nonce_wrong_agent",
    /// 409: a signed request seen before.
    RequestReplayed = "request_replayed",
    /// 409: a quarantine of an agent already revoked.
    AlreadyRevoked = "already_revoked",
    /// 409: a reinstatement of an agent that is not revoked.
    NotRevoked = "not_revoked",
    /// 409: the receiver has as many SSF streams as it may.
    TooManyStreams = "too_many_streams",
    /// 409: the SSF stream names as many subjects as it may.
    TooManySubjects = "too_many_subjects",
    /// 409: the escalation is already decided (or being decided).
    AlreadyDecided = "already_decided",
    /// 410: the openings a disclosure needs were crypto-shredded.
    OpeningsShredded = "openings_shredded",
    // 413
    /// 413: a request body over the route's limit.
    PayloadTooLarge = "payload_too_large",
    /// 413: an entry (or a batch element) over the entry limit.
    EntryTooLarge = "entry_too_large",
    /// 413: a batch over the entry count or queue limit.
    BatchTooLarge = "batch_too_large",
    /// 413: too many hidden fields in one entry.
    TooManyHiddenEntries = "too_many_hidden_entries",
    /// 415: a body that must be `application/json` is not.
    UnsupportedMediaType = "unsupported_media_type",
    /// 426: a WebSocket route asked for without a WebSocket upgrade.
    UpgradeRequired = "upgrade_required",
    // 422
    /// 422: a declared or requested predicate does not hold.
    PredicateFalse = "predicate_false",
    /// 422: an attestation recorded with a failing verdict.
    AttestationFailed = "attestation_failed",
    /// 429: the agent's budget of signed requests is spent (`Retry-After`).
    TooManyRequests = "too_many_requests",
    /// 429: the agent holds as many live action tokens (64) or pending
    /// escalations (16) as it may.
    TooManyTokens = "too_many_tokens",
    /// 500: the server failed (details only in its log).
    Internal = "internal",
    // 503, all with `Retry-After`
    /// 503: the sequencer queue is full.
    Pushback = "pushback",
    /// 503: the prover queue is full.
    ProverBusy = "prover_busy",
    /// 503: the server is shutting down.
    ShuttingDown = "shutting_down",
    /// 503: the replay cache of signed requests is full.
    ReplayCacheFull = "replay_cache_full",
    /// 503: the log's cache of single-use action tokens is full.
    TokenReplayCacheFull = "token_replay_cache_full",
    /// 503: a resource's feed of revocations is down, so it takes no token
    /// (an SDK verifier's code; the log itself never answers it).
    TokenRevocationsUnknown = "token_revocations_unknown",
    /// 503: the nonce store is full of live nonces.
    NonceStoreFull = "nonce_store_full",
    /// 503: the server serves its maximum of connections (from the connection layer).
    TooManyConnections = "too_many_connections",
    /// 503: the server serves its maximum of event subscribers.
    TooManySubscribers = "too_many_subscribers",
}

/// A code that is not an [`ErrorCode`] of this build (e.g. from a newer
/// server).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown error code")]
pub struct UnknownErrorCode;

impl core::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for ErrorCode {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// An agent's trust score as `GET /v1/agents/{id}/trust` reports it
/// (built by [`crate::fold::trust_log::report`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TrustScore {
    /// The agent.
    pub agent: String,
    /// 0 to 100 (0 while revoked).
    pub score: u8,
    /// Risk level as logged: `low`, `medium` or `high`.
    pub level: String,
    /// The last entry the view had applied.
    pub as_of_index: u64,
    /// The instant the score is read at, ms since the Unix epoch.
    pub as_of_time: u64,
    /// Index of the policy entry in force (`None`: the built-in default).
    pub policy_index: Option<u64>,
    /// What the score is made of.
    pub components: TrustComponents,
    /// Indices of the entries that last moved it.
    pub recent: Vec<u64>,
}

/// The parts of a [`TrustScore`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TrustComponents {
    /// Positive evidence, thousandths (with the initial pseudo-evidence).
    pub evidence_for_milli: u64,
    /// Negative evidence, thousandths.
    pub evidence_against_milli: u64,
    /// The expectation read, per mille.
    pub expectation_permille: u64,
    /// Attestation freshness, per mille.
    pub freshness_permille: u64,
    /// Index of the last successful attestation.
    pub last_attestation_index: Option<u64>,
    /// Whether the agent is revoked (by score or quarantine).
    pub quarantined: bool,
    /// Index of the revocation in force.
    pub revoked_at: Option<u64>,
}

/// `GET /v1/witnesses`: the witnesses the log submits its checkpoints to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WitnessListing {
    /// Cosignatures that make a checkpoint witnessed (0: no witnesses).
    pub quorum: usize,
    /// Size of the latest checkpoint cosigned by the quorum.
    pub witnessed: Option<u64>,
    /// Each witness, in configuration order.
    pub witnesses: Vec<WitnessRow>,
}

/// One witness's progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WitnessRow {
    /// Its name (from its verifier key).
    pub name: String,
    /// Its verifier key, `name+hex8(key id)+base64(0x04 || public key)`
    /// (c2sp.org/tlog-cosignature): what its cosignature lines verify with
    /// (absent from servers before it was listed).
    #[serde(default)]
    pub key: String,
    /// Its submission prefix.
    pub url: String,
    /// The largest tree size it is known to have cosigned.
    pub cosigned_size: u64,
    /// Failures in a row.
    pub failures: u32,
    /// The last failure, until the next success.
    pub last_error: Option<String>,
}

/// `GET /v1/trust`: agents by (score, id) at one instant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TrustListing {
    /// The last entry the scored state reflects.
    pub as_of_index: u64,
    /// The instant the scores are read at, ms since the Unix epoch.
    pub as_of_time: u64,
    /// Index of the policy entry in force (`None`: the built-in default).
    pub policy_index: Option<u64>,
    /// How many agents score below the bound asked for.
    pub total: u64,
    /// The first of them (at most the limit asked for).
    pub agents: Vec<ListedAgent>,
}

/// One agent of a [`TrustListing`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ListedAgent {
    /// The agent.
    pub agent: String,
    /// Its score.
    pub score: u8,
    /// Its logged risk level.
    pub level: String,
    /// Whether it is revoked.
    pub quarantined: bool,
}

/// `GET /v1/policy`: the trust policy in force.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PolicyInForceResponse {
    /// Index of its `policy` entry (`None`: the built-in default, before
    /// any policy entry).
    pub policy_index: Option<u64>,
    /// SHA-256 of its canonical JSON, hex.
    pub sha256: String,
    /// The policy (docs/TRUST.md, "Policy").
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub policy: serde_json::Value,
}

/// `PUT /v1/policy`: whether a `policy` entry was appended, and the index
/// of the policy entry in force after the request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PolicyChange {
    /// Index of the policy entry in force (`None`: the built-in default).
    pub policy_index: Option<u64>,
    /// Whether this request appended it.
    pub changed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_round_trip_through_their_text() {
        for &code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, alloc::format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
            assert_eq!(code.as_str().parse::<ErrorCode>(), Ok(code));
            assert_eq!(alloc::format!("{code}"), code.as_str());
            assert!(code.as_str().bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{code}");
        }
        let mut texts: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        texts.sort_unstable();
        texts.dedup();
        assert_eq!(texts.len(), ErrorCode::ALL.len(), "two codes share a text");
    }

    /// utoipa takes a schema pattern only as a literal: the `kind`
    /// patterns and examples must spell the names [`EntryKind::as_str`]
    /// gives.
    #[cfg(feature = "openapi")]
    #[test]
    fn kind_patterns_are_the_entry_kind_names() {
        use utoipa::PartialSchema as _;

        use crate::entry::EntryKind;
        for (schema, kind) in [(ActionEntryRequest::schema(), EntryKind::Action), (RotationEntryRequest::schema(), EntryKind::Rotation)] {
            let schema = serde_json::to_value(&schema).unwrap();
            assert_eq!(schema["properties"]["kind"]["pattern"], alloc::format!("^{kind}$"), "{kind}");
            assert_eq!(schema["properties"]["kind"]["example"], kind.as_str(), "{kind}");
        }
    }

    #[test]
    fn an_unknown_code_is_an_error_not_a_guess() {
        assert_eq!("teapot".parse::<ErrorCode>(), Err(UnknownErrorCode));
        assert!(serde_json::from_str::<ErrorDetail>(r#"{"code":"teapot","message":"m"}"#).is_err());
        let known: ErrorDetail = serde_json::from_str(r#"{"code":"bad_signature","message":"m"}"#).unwrap();
        assert_eq!(known.code, ErrorCode::BadSignature);
        assert_eq!(known.code, "bad_signature");
    }
}

/// `POST /v1/tokens` answered with a token (201).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IssuedToken {
    /// The PASETO `v4.public` token (a bearer credential: never log it).
    pub token: String,
    /// Its id.
    pub jti: String,
    /// Index of its `token` entry.
    pub log_index: u64,
    /// Valid from, ms since the Unix epoch.
    pub not_before: u64,
    /// Valid until, ms.
    pub expires: u64,
    /// The risk class of the action.
    pub class: String,
    /// Whether a resource takes it once only.
    pub single_use: bool,
    /// The agent's score it was issued at.
    pub score: u8,
}

/// An escalation and what became of it (`POST /v1/tokens` answered 202,
/// `GET /v1/escalations`, `GET /v1/escalations/{id}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EscalationStatus {
    /// Its id: the index of its `escalation` entry.
    pub escalation: u64,
    /// `pending`, `approved`, `denied` or `expired`.
    pub status: String,
    /// The agent.
    pub agent: String,
    /// The action asked for.
    pub action: String,
    /// The resource.
    pub resource: String,
    /// The pinned parameters (`sql_sha256`, `amount_max`, `target`).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub constraints: serde_json::Value,
    /// The risk class.
    pub class: String,
    /// The agent's score when it asked.
    pub score_at_request: u8,
    /// When it expires unanswered, ms.
    pub expires_at: u64,
    /// Index of the `decision` entry, once decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_index: Option<u64>,
    /// The decider's note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Index of the `token` entry, once approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_index: Option<u64>,
    /// The token, once approved: only to its agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<IssuedToken>,
    /// The agent's score now (listings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_now: Option<u8>,
    /// The entries that last moved the agent's score, with their kind and
    /// time (listings).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
}

/// An entry in an agent's recent history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct HistoryEntry {
    /// Its index.
    pub index: u64,
    /// Its kind.
    pub kind: String,
    /// Its integrated time, ms.
    pub integrated_time: u64,
    /// Its action, for actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

/// `GET /v1/escalations`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EscalationListing {
    /// Pending escalations, oldest first.
    pub pending: Vec<EscalationStatus>,
}

/// `POST /v1/escalations/{id}/approve|deny`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EscalationDecided {
    /// The escalation.
    pub escalation: u64,
    /// `approved` or `denied`.
    pub outcome: String,
    /// Index of the `decision` entry.
    pub decision_index: u64,
    /// Index of the `token` entry (approvals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_index: Option<u64>,
}

/// `GET /v1/tokens/key`: the key tokens and statements are signed with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TokenKey {
    /// The issuer (`iss`): the log's origin.
    pub issuer: String,
    /// PASERK `k4.public` of the key.
    pub paserk: String,
    /// The Ed25519 public key, base64.
    pub public_key: String,
}

/// `POST /v1/tokens/verify`: a token and the operation it is presented for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TokenCheckRequest {
    /// The token.
    pub token: String,
    /// The resource asking (must be the token's `aud`).
    pub audience: String,
    /// The action asked for.
    pub action: String,
    /// The exact SQL statement, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
    /// The amount, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<u64>,
    /// The target id, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// `POST /v1/tokens/verify` answered: the token holds for the operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TokenValid {
    /// Always true (refusals are errors with a `token_*` code).
    pub valid: bool,
    /// The token id.
    pub jti: String,
    /// The agent.
    pub sub: String,
    /// Valid until, ms.
    pub expires: u64,
    /// Index of its `token` entry.
    pub log_index: u64,
    /// Whether it was single-use (and is now used up).
    pub single_use: bool,
}

/// `GET /v1/agents/{id}/statement`: a trust statement for peers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TrustStatement {
    /// The statement: PASETO `v4.public`, checked with
    /// `verifier::statement::PeerCheck`.
    pub statement: String,
}
