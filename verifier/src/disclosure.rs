//! Hidden fields as they appear in a leaf, and disclosure bundles
//! (docs/FORMAT.md, "Hidden fields" and "Disclosure bundles").
//!
//! A leaf with hidden fields carries only commitments, plus at most one
//! aggregated predicate proof made when the entry was appended:
//!
//! ```json
//! "hidden": {"amount": {"u64": "<commitment>"}, "customer": {"str": "<digest>"}},
//! "predicates": {"claims": [{"field": "amount", "le": 10000}], "proof": "<predicate proof>"}
//! ```
//!
//! (binary values are base64url without padding). A disclosure bundle is
//! one JSON document that anyone holding the log's public key can check with
//! no network: the tlog-proof (entry bytes, inclusion path, signed
//! checkpoint), the openings of the revealed fields, and predicate proofs
//! about fields that stay hidden.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};
use zk::commit::{Blinding, HashCommitment, PedersenCommitment, Salt};
use zk::predicate::{Claim, Predicate};
use zk::{PredicateProof, ZkError, ZkParams};

use crate::note::NoteVerifier;
use crate::tlog_proof::{TlogProof, TlogProofError};

/// The `format` member of a disclosure bundle.
pub const BUNDLE_FORMAT: &str = "agent-ledger-disclosure/v2";

/// The format of bundles issued before disclosure proofs were bound to
/// their entry ([`disclosure_proof_context`]): still verified, with their
/// proofs checked unbound, as they were made.
pub const BUNDLE_FORMAT_V1: &str = "agent-ledger-disclosure/v1";

/// Largest integer a JSON number may carry here (I-JSON, RFC 7493).
pub const MAX_JSON_INT: u64 = (1 << 53) - 1;

/// Why hidden fields or a disclosure bundle were rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DisclosureError {
    /// The bundle is not the expected JSON document.
    #[error("malformed disclosure bundle: {0}")]
    Malformed(BundleError),
    /// The entry's hidden fields or predicates are malformed.
    #[error("malformed hidden fields in the entry: {0}")]
    Leaf(HiddenError),
    /// The tlog-proof (checkpoint signature or inclusion) failed.
    #[error("entry is not proven in the log: {0}")]
    TlogProof(#[from] TlogProofError),
    /// A field named by the bundle is not hidden in the entry.
    #[error("field {0:?} is not a hidden field of the entry")]
    UnknownField(String),
    /// A predicate about a field that is not a hidden integer.
    #[error("field {0:?} is not a hidden u64; predicates apply to u64 fields")]
    NotAnInteger(String),
    /// A revealed value (or its salt or blinding) does not open the
    /// commitment in the entry.
    #[error("revealed {0:?} does not match its commitment in the entry")]
    OpeningMismatch(String),
    /// A predicate proof failed.
    #[error("predicate proof for [{}] does not verify: {reason}", describe(claims))]
    ProofInvalid {
        /// The claims the proof was for.
        claims: Vec<(String, Predicate)>,
        /// Why.
        reason: ZkError,
    },
}

/// Hidden fields, their openings or their predicates are malformed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HiddenError {
    /// `hidden` is not an object.
    #[error("\"hidden\" must be an object")]
    NotAnObject,
    /// `hidden` holds too few or too many fields.
    #[error("\"hidden\" holds 1 to {max} fields")]
    FieldCount {
        /// The most fields.
        max: usize,
    },
    /// `hidden` is empty (in a leaf).
    #[error("\"hidden\" must not be empty")]
    Empty,
    /// A field name outside `[A-Za-z0-9_.-]{1,64}`.
    #[error("field name {name:?} must be 1 to {max} characters of A-Z a-z 0-9 _ . -")]
    FieldName {
        /// The name.
        name: String,
        /// The longest name.
        max: usize,
    },
    /// A submitted hidden field is not an object.
    #[error("hidden field {0:?} must be an object")]
    FieldNotAnObject(String),
    /// A member a submitted hidden field does not have.
    #[error("unexpected member {member:?} in hidden field {field:?}")]
    UnexpectedMember {
        /// The member.
        member: String,
        /// The field.
        field: String,
    },
    /// A hidden integer out of range.
    #[error("{0:?}: \"u64\" must be an integer in 0..=2^53-1")]
    U64Range(String),
    /// A predicate is not an object.
    #[error("{0:?}: each predicate must be an object")]
    PredicateNotAnObject(String),
    /// `prove` is not an array.
    #[error("{0:?}: \"prove\" must be an array")]
    ProveNotAnArray(String),
    /// A hidden string has members besides `str`.
    #[error("hidden string {0:?} holds only \"str\"")]
    StrOnly(String),
    /// `str` is not a string.
    #[error("{0:?}: \"str\" must be a string")]
    StrNotAString(String),
    /// A hidden string over its limit.
    #[error("{field:?} is longer than {max} characters")]
    StrTooLong {
        /// The field.
        field: String,
        /// Its limit.
        max: usize,
    },
    /// A hidden field that is neither `u64` nor `str`.
    #[error("hidden field {0:?} must hold \"u64\" or \"str\"")]
    FieldType(String),
    /// More predicates than one proof holds.
    #[error("an entry proves at most {max} predicates, not {count}")]
    TooManyClaims {
        /// Declared.
        count: usize,
        /// The most.
        max: usize,
    },
    /// A predicate member besides `le`/`ge`.
    #[error("unexpected member {member:?} in a predicate on {field:?}; use \"le\" and/or \"ge\"")]
    PredicateMember {
        /// The member.
        member: String,
        /// The field.
        field: String,
    },
    /// A predicate bound out of range.
    #[error("\"{bound}\" in a predicate on {field:?} must be an integer in 0..=2^53-1")]
    Bound {
        /// `le` or `ge`.
        bound: &'static str,
        /// The field.
        field: String,
    },
    /// A predicate with no bound.
    #[error("a predicate on {0:?} needs \"le\", \"ge\" or both")]
    NoBound(String),
    /// A predicate whose bounds are empty.
    #[error("{0}")]
    Predicate(zk::ZkError),
    /// A claim is not an object.
    #[error("a claim must be an object")]
    ClaimNotAnObject,
    /// A claim without its field.
    #[error("a claim needs a string \"field\"")]
    ClaimField,
    /// `predicates` is not an object.
    #[error("predicates must be an object")]
    PredicatesNotAnObject,
    /// `predicates` has other members than `claims` and `proof`.
    #[error("predicates hold exactly \"claims\" and \"proof\"")]
    PredicatesMembers,
    /// `claims` is not an array.
    #[error("\"claims\" must be an array")]
    ClaimsNotAnArray,
    /// Too few or too many claims.
    #[error("\"claims\" holds 1 to {max} claims")]
    ClaimCount {
        /// The most claims.
        max: usize,
    },
    /// `proof` is not a string.
    #[error("\"proof\" must be a string")]
    ProofNotAString,
    /// `proof` is not base64url.
    #[error("\"proof\" must be base64url")]
    ProofEncoding,
    /// `proof` is over its limit.
    #[error("\"proof\" must be a string of at most {max} characters")]
    ProofTooLong {
        /// The limit.
        max: usize,
    },
    /// The proof bytes do not decode.
    #[error("{0}")]
    Proof(zk::ZkError),
    /// A commitment is not `{"u64"|"str": <base64url>}` (shape check).
    #[error("commitment of {0:?} must be {{\"u64\"|\"str\": <base64url>}}")]
    CommitmentShape(String),
    /// A commitment object has more than one member.
    #[error("commitment of {0:?} must be an object with one member")]
    CommitmentMembers(String),
    /// A commitment is not base64url.
    #[error("commitment of {0:?} must be base64url")]
    CommitmentEncoding(String),
    /// A commitment that does not decode.
    #[error("{field:?}: {reason}")]
    Commitment {
        /// The field.
        field: String,
        /// Why.
        reason: zk::ZkError,
    },
    /// A commitment of neither type.
    #[error("commitment of {0:?} must be \"u64\" or \"str\"")]
    CommitmentType(String),
    /// `predicates` without `hidden`.
    #[error("\"predicates\" without \"hidden\"")]
    PredicatesWithoutHidden,
    /// A claim about a field that is not a hidden integer.
    #[error("{0}")]
    Claim(Box<DisclosureError>),
    /// Openings are not an object.
    #[error("openings must be an object")]
    OpeningsNotAnObject,
    /// Too many openings.
    #[error("openings hold at most {max} fields")]
    OpeningCount {
        /// The most.
        max: usize,
    },
    /// One opening is malformed.
    #[error("opening {field:?}: {reason}")]
    Opening {
        /// The field.
        field: String,
        /// Why.
        reason: OpeningError,
    },
    /// Openings sent with an entry that has no committed `hidden`.
    #[error("\"openings\" come with an action's committed \"hidden\" fields")]
    OpeningsWithoutHidden,
    /// Openings sent with another kind than an action.
    #[error("only actions carry hidden fields")]
    NotAnAction,
    /// `openings` checked without `hidden`.
    #[error("\"openings\" without \"hidden\"")]
    OpeningsWithoutCommitments,
    /// The client's openings do not open its commitments, or its proof fails.
    #[error("client commitments: {0}")]
    ClientCommitments(Box<DisclosureError>),
    /// Stored openings are not JSON.
    #[error("stored openings are not JSON")]
    StoredNotJson,
    /// Stored openings do not parse.
    #[error("stored openings: {0}")]
    Stored(Box<HiddenError>),
    /// The committed hidden fields of an entry are malformed.
    #[error("malformed hidden fields in the entry: {0}")]
    Committed(Box<HiddenError>),
    /// A disclosure's entry is not JSON.
    #[error("entry is not JSON")]
    EntryNotJson,
    /// A disclosure's entry is not an object.
    #[error("entry is not a JSON object")]
    EntryNotAnObject,
    /// A disclosure's entry has no hidden fields.
    #[error("entry has no hidden fields")]
    NoHiddenFields,
    /// The OS random source failed.
    #[error("the OS random source failed")]
    Randomness,
    /// A disclosure asks for more proofs than one holds.
    #[error("a disclosure proves at most {max} predicates")]
    DisclosureClaims {
        /// The most.
        max: usize,
    },
    /// No `hidden` member to commit.
    #[error("no \"hidden\" member")]
    NothingToCommit,
    /// No `agent` to bind the commitments to.
    #[error("the entry has no \"agent\"")]
    NoAgent,
    /// `seq` is not an integer.
    #[error("\"seq\" must be an integer")]
    SeqNotAnInteger,
}

/// Why an opening (what reveals a hidden field) was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpeningError {
    /// Not an object.
    #[error("an opening must be an object")]
    NotAnObject,
    /// Not exactly two members.
    #[error("an opening has exactly two members")]
    Members,
    /// `u64` is not a non-negative integer.
    #[error("\"u64\" must be a non-negative integer")]
    U64,
    /// `blinding` is not a string.
    #[error("\"blinding\" must be a string")]
    BlindingNotAString,
    /// `blinding` is not base64url.
    #[error("\"blinding\" must be base64url")]
    BlindingEncoding,
    /// `blinding` is not a canonical scalar.
    #[error("\"blinding\" must be a canonical scalar")]
    BlindingScalar,
    /// A zero blinding hides nothing.
    #[error("\"blinding\" must not be zero")]
    BlindingZero,
    /// `str` is not a string.
    #[error("\"str\" must be a string")]
    Str,
    /// `salt` is not a string.
    #[error("\"salt\" must be a string")]
    SaltNotAString,
    /// `salt` is not 16 bytes of base64url.
    #[error("\"salt\" must be base64url of 16 bytes")]
    SaltEncoding,
    /// A zero salt hides nothing.
    #[error("\"salt\" must not be zero")]
    SaltZero,
    /// Neither `u64` nor `str`.
    #[error("an opening holds \"u64\" or \"str\"")]
    Type,
}

/// What is wrong with a disclosure bundle document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// Not JSON.
    #[error("not JSON")]
    NotJson,
    /// Not an object.
    #[error("not a JSON object")]
    NotAnObject,
    /// An unknown `format`.
    #[error("\"format\" is not agent-ledger-disclosure/v2 (or v1)")]
    Format,
    /// `tlog_proof` is not a string.
    #[error("\"tlog_proof\" must be a string")]
    TlogProof,
    /// `index` differs from the proof's.
    #[error("\"index\" differs from the tlog-proof's index")]
    Index,
    /// `revealed` is not an object.
    #[error("\"revealed\" must be an object")]
    Revealed,
    /// An opening is malformed.
    #[error("{0}")]
    Opening(OpeningError),
    /// `proofs` is not an array.
    #[error("\"proofs\" must be an array")]
    Proofs,
    /// A proof does not decode.
    #[error("a proof in \"proofs\" does not decode")]
    Proof,
    /// The tlog-proof has no entry.
    #[error("the tlog-proof carries no entry")]
    NoEntry,
}

/// Most hidden fields in one entry.
pub const MAX_HIDDEN_FIELDS: usize = 16;
/// Longest encoded predicate proof (base64url), far above the largest one
/// (64-bit values, 16 aggregated: 2 + 32·(9 + 2·10) bytes).
pub const MAX_PROOF_CHARS: usize = 2048;
/// Longest hidden field name, in bytes (`[A-Za-z0-9_.-]`).
pub const MAX_FIELD_NAME: usize = 64;

/// Checks a hidden field name.
pub fn check_field_name(name: &str) -> Result<(), HiddenError> {
    if name.is_empty() || name.len() > MAX_FIELD_NAME || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)) {
        return Err(HiddenError::FieldName { name: name.to_string(), max: MAX_FIELD_NAME });
    }
    Ok(())
}

/// A hidden field's commitment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Commitment {
    /// Pedersen commitment to an integer.
    U64(PedersenCommitment),
    /// Salted SHA-256 (SD-JWT) commitment to a string.
    Str(HashCommitment),
}

/// The opening of a hidden field: what reveals it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Opening {
    /// An integer and its blinding factor.
    U64 {
        /// The value.
        value: u64,
        /// The blinding factor.
        blinding: Blinding,
    },
    /// A string and its salt.
    Str {
        /// The value.
        value: String,
        /// The salt.
        salt: Salt,
    },
}

impl Opening {
    /// JSON form: `{"u64": 1250, "blinding": "…"}` or `{"str": "ACME", "salt": "…"}`.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        match self {
            Self::U64 { value, blinding } => {
                m.insert("u64".into(), Value::from(*value));
                m.insert("blinding".into(), Value::from(URL_SAFE_NO_PAD.encode(blinding.to_bytes())));
            }
            Self::Str { value, salt } => {
                m.insert("str".into(), Value::from(value.as_str()));
                m.insert("salt".into(), Value::from(salt.to_base64()));
            }
        }
        Value::Object(m)
    }

    /// Parses [`Opening::to_json`].
    pub fn from_json(v: &Value) -> Result<Self, OpeningError> {
        let obj = v.as_object().ok_or(OpeningError::NotAnObject)?;
        if obj.len() != 2 {
            return Err(OpeningError::Members);
        }
        if let Some(value) = obj.get("u64") {
            let value = value.as_u64().ok_or(OpeningError::U64)?;
            let b = obj.get("blinding").and_then(Value::as_str).ok_or(OpeningError::BlindingNotAString)?;
            let bytes = URL_SAFE_NO_PAD.decode(b).map_err(|_| OpeningError::BlindingEncoding)?;
            let blinding = Blinding::from_bytes(&bytes).map_err(|_| OpeningError::BlindingScalar)?;
            // A zero blinding makes the commitment v·B, which anyone can
            // brute-force: such an opening hides nothing.
            if bytes.iter().all(|b| *b == 0) {
                return Err(OpeningError::BlindingZero);
            }
            Ok(Self::U64 { value, blinding })
        } else if let Some(value) = obj.get("str") {
            let value = value.as_str().ok_or(OpeningError::Str)?.to_string();
            let s = obj.get("salt").and_then(Value::as_str).ok_or(OpeningError::SaltNotAString)?;
            let salt = Salt::from_base64(s).map_err(|_| OpeningError::SaltEncoding)?;
            if salt.0.iter().all(|b| *b == 0) {
                return Err(OpeningError::SaltZero);
            }
            Ok(Self::Str { value, salt })
        } else {
            Err(OpeningError::Type)
        }
    }

    /// Whether this opens `commitment` of field `name`.
    pub fn opens(&self, name: &str, commitment: &Commitment) -> bool {
        match (self, commitment) {
            (Self::U64 { value, blinding }, Commitment::U64(c)) => c.is_opened_by(*value, blinding),
            (Self::Str { value, salt }, Commitment::Str(c)) => c.is_opened_by(salt, name, value),
            _ => false,
        }
    }

    /// The value as text.
    pub fn value_text(&self) -> String {
        match self {
            Self::U64 { value, .. } => value.to_string(),
            Self::Str { value, .. } => value.clone(),
        }
    }
}

/// Parses a predicate object (`{"le": n}`, `{"ge": n}` or both) for `field`.
pub fn predicate_from_json(field: &str, obj: &Map<String, Value>, extra_allowed: &[&str]) -> Result<Predicate, HiddenError> {
    if let Some(k) = obj.keys().find(|k| !["le", "ge"].contains(&k.as_str()) && !extra_allowed.contains(&k.as_str())) {
        return Err(HiddenError::PredicateMember { member: k.clone(), field: field.to_string() });
    }
    let bound = |bound: &'static str| -> Result<Option<u64>, HiddenError> {
        match obj.get(bound) {
            None => Ok(None),
            Some(v) => {
                v.as_u64().filter(|n| *n <= MAX_JSON_INT).map(Some).ok_or_else(|| HiddenError::Bound { bound, field: field.to_string() })
            }
        }
    };
    match (bound("ge")?, bound("le")?) {
        (None, None) => Err(HiddenError::NoBound(field.to_string())),
        (Some(lo), None) => Ok(Predicate::ge(lo)),
        (None, Some(hi)) => Ok(Predicate::le(hi)),
        (Some(lo), Some(hi)) => Predicate::between(field, lo, hi).map_err(HiddenError::Predicate),
    }
}

/// A claim's JSON form: `{"field": "amount", "le": 10000}` (and/or `"ge"`).
pub fn claim_to_json(field: &str, p: &Predicate) -> Value {
    let mut m = Map::new();
    m.insert("field".into(), Value::from(field));
    if p.lo != 0 || p.hi == u64::MAX {
        m.insert("ge".into(), Value::from(p.lo));
    }
    if p.hi != u64::MAX {
        m.insert("le".into(), Value::from(p.hi));
    }
    Value::Object(m)
}

/// Parses [`claim_to_json`].
pub fn claim_from_json(v: &Value) -> Result<(String, Predicate), HiddenError> {
    let obj = v.as_object().ok_or(HiddenError::ClaimNotAnObject)?;
    let field = obj.get("field").and_then(Value::as_str).ok_or(HiddenError::ClaimField)?;
    Ok((field.to_string(), predicate_from_json(field, obj, &["field"])?))
}

/// Claims as text, e.g. `amount ≤ 10000, age ≥ 18`.
fn describe(claims: &[(String, Predicate)]) -> String {
    claims.iter().map(|(f, p)| p.describe(f)).collect::<Vec<_>>().join(", ")
}

/// Claims and their aggregated proof, as JSON: `{"claims": […], "proof": "…"}`.
#[derive(Clone, Debug)]
pub struct ClaimsProof {
    /// `(field, predicate)` in proof order.
    pub claims: Vec<(String, Predicate)>,
    /// The proof.
    pub proof: PredicateProof,
}

impl ClaimsProof {
    /// JSON form.
    pub fn to_json(&self) -> Value {
        let claims = self.claims.iter().map(|(f, p)| claim_to_json(f, p)).collect();
        let mut m = Map::new();
        m.insert("claims".into(), Value::Array(claims));
        m.insert("proof".into(), Value::from(URL_SAFE_NO_PAD.encode(self.proof.to_bytes())));
        Value::Object(m)
    }

    /// Parses [`ClaimsProof::to_json`].
    pub fn from_json(v: &Value) -> Result<Self, HiddenError> {
        let obj = v.as_object().ok_or(HiddenError::PredicatesNotAnObject)?;
        if obj.len() != 2 {
            return Err(HiddenError::PredicatesMembers);
        }
        let claims = obj.get("claims").and_then(Value::as_array).ok_or(HiddenError::ClaimsNotAnArray)?;
        if claims.is_empty() || claims.len() > zk::MAX_CLAIMS {
            return Err(HiddenError::ClaimCount { max: zk::MAX_CLAIMS });
        }
        let claims = claims.iter().map(claim_from_json).collect::<Result<Vec<_>, _>>()?;
        let text = obj.get("proof").and_then(Value::as_str).ok_or(HiddenError::ProofNotAString)?;
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| HiddenError::ProofEncoding)?;
        let proof = PredicateProof::from_bytes(&bytes).map_err(HiddenError::Proof)?;
        Ok(Self { claims, proof })
    }

    /// The claims as text, e.g. `amount ≤ 10000, age ≥ 18`.
    pub fn describe(&self) -> String {
        describe(&self.claims)
    }

    /// Verifies the proof against the commitments of `fields` and the
    /// `context` it is bound to ([`entry_predicates_context`],
    /// [`disclosure_proof_context`]; empty for version 1 leaves).
    pub fn verify(&self, fields: &CommittedFields, context: &[u8], params: &ZkParams) -> Result<(), DisclosureError> {
        let claims = fields.claims(&self.claims)?;
        self.proof
            .verify_bound(&claims, context, params)
            .map_err(|reason| DisclosureError::ProofInvalid { claims: self.claims.clone(), reason })
    }
}

/// Domain separation of the predicate proof an entry carries.
pub const ENTRY_PREDICATES_CONTEXT: &[u8] = b"agent-ledger/entry-predicates/v1\n";

/// What an entry's own predicate proof is bound to: the log, the agent and
/// its sequence number, so commitments and proof copied into another
/// entry (another agent's, or the same agent's later one) do not verify.
pub fn entry_predicates_context(origin: &str, agent: &str, seq: u64) -> Vec<u8> {
    let mut out = ENTRY_PREDICATES_CONTEXT.to_vec();
    for part in [origin.as_bytes(), b"\n", agent.as_bytes(), b"\n", seq.to_string().as_bytes()] {
        out.extend_from_slice(part);
    }
    out
}

/// Domain separation of the predicate proofs of a disclosure bundle.
pub const DISCLOSURE_PROOF_CONTEXT: &[u8] = b"agent-ledger/disclosure-proof/v1\n";

/// What a disclosure's proof is bound to: the log, the entry's index and
/// its leaf hash.
pub fn disclosure_proof_context(origin: &str, index: u64, leaf_hash: &crate::hash::Hash) -> Vec<u8> {
    let mut out = DISCLOSURE_PROOF_CONTEXT.to_vec();
    out.extend_from_slice(origin.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(index.to_string().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(leaf_hash);
    out
}

/// The context of the predicate proof inside `leaf` (an action's stored
/// object) in the log named `origin`: bound for version 2 leaves, empty
/// for version 1 (whose proofs were made unbound).
pub fn leaf_predicates_context(origin: &str, leaf: &Map<String, Value>) -> Vec<u8> {
    let version = leaf.get("v").and_then(Value::as_u64).unwrap_or(crate::canonical::LEAF_VERSION);
    if version < 2 {
        return Vec::new();
    }
    let agent = leaf.get("agent").and_then(Value::as_str).unwrap_or_default();
    let seq = leaf.get("seq").and_then(Value::as_u64).unwrap_or_default();
    entry_predicates_context(origin, agent, seq)
}

/// The hidden fields of a leaf: commitments by name, and the predicates
/// proven at append time.
#[derive(Clone, Debug)]
pub struct CommittedFields {
    /// Commitments by field name.
    pub fields: BTreeMap<String, Commitment>,
    /// Claims proven when the entry was appended.
    pub predicates: Option<ClaimsProof>,
}

impl CommittedFields {
    /// The limits of committed hidden fields, checked on the raw members of
    /// a submitted entry before anything is decoded (no point decompression,
    /// no proof parsing), so an unauthenticated caller gets no expensive
    /// work done: 1 to [`MAX_HIDDEN_FIELDS`] fields named by
    /// [`check_field_name`], each `{"u64": s}` or `{"str": s}` with `s` a
    /// string of at most 64 characters; `predicates`, if present, an object
    /// of `claims` (1 to [`zk::MAX_CLAIMS`]) and a `proof` string of at most
    /// [`MAX_PROOF_CHARS`]. (Reading a stored leaf does not apply them:
    /// leaves written before they existed stay readable.)
    pub fn check_shape(hidden: &Value, predicates: Option<&Value>) -> Result<(), HiddenError> {
        let hidden = hidden.as_object().ok_or(HiddenError::NotAnObject)?;
        if hidden.is_empty() || hidden.len() > MAX_HIDDEN_FIELDS {
            return Err(HiddenError::FieldCount { max: MAX_HIDDEN_FIELDS });
        }
        for (name, c) in hidden {
            check_field_name(name)?;
            let ok = c.as_object().is_some_and(|o| {
                o.len() == 1 && o.iter().all(|(k, v)| (k == "u64" || k == "str") && v.as_str().is_some_and(|t| t.len() <= 64))
            });
            if !ok {
                return Err(HiddenError::CommitmentShape(name.clone()));
            }
        }
        if let Some(p) = predicates {
            let p = p.as_object().filter(|o| o.len() == 2).ok_or(HiddenError::PredicatesMembers)?;
            let claims = p.get("claims").and_then(Value::as_array).map_or(0, Vec::len);
            if claims == 0 || claims > zk::MAX_CLAIMS {
                return Err(HiddenError::ClaimCount { max: zk::MAX_CLAIMS });
            }
            if p.get("proof").and_then(Value::as_str).is_none_or(|t| t.len() > MAX_PROOF_CHARS) {
                return Err(HiddenError::ProofTooLong { max: MAX_PROOF_CHARS });
            }
        }
        Ok(())
    }

    /// Reads `hidden` and `predicates` from a leaf object; `None` when the
    /// entry has no hidden fields.
    pub fn from_leaf(leaf: &Map<String, Value>) -> Result<Option<Self>, HiddenError> {
        let Some(hidden) = leaf.get("hidden") else {
            return match leaf.get("predicates") {
                Some(_) => Err(HiddenError::PredicatesWithoutHidden),
                None => Ok(None),
            };
        };
        let hidden = hidden.as_object().ok_or(HiddenError::NotAnObject)?;
        if hidden.is_empty() {
            return Err(HiddenError::Empty);
        }
        let mut fields = BTreeMap::new();
        for (name, c) in hidden {
            let c = c.as_object().filter(|o| o.len() == 1).ok_or_else(|| HiddenError::CommitmentMembers(name.clone()))?;
            let decode = |v: &Value| {
                v.as_str().and_then(|s| URL_SAFE_NO_PAD.decode(s).ok()).ok_or_else(|| HiddenError::CommitmentEncoding(name.clone()))
            };
            let invalid = |reason| HiddenError::Commitment { field: name.clone(), reason };
            let commitment = if let Some(v) = c.get("u64") {
                Commitment::U64(PedersenCommitment::from_bytes(&decode(v)?).map_err(invalid)?)
            } else if let Some(v) = c.get("str") {
                Commitment::Str(HashCommitment::from_bytes(&decode(v)?).map_err(invalid)?)
            } else {
                return Err(HiddenError::CommitmentType(name.clone()));
            };
            fields.insert(name.clone(), commitment);
        }
        let mut out = Self { fields, predicates: None };
        if let Some(p) = leaf.get("predicates") {
            let proof = ClaimsProof::from_json(p)?;
            out.claims(&proof.claims).map_err(|e| HiddenError::Claim(Box::new(e)))?;
            out.predicates = Some(proof);
        }
        Ok(Some(out))
    }

    /// The `hidden` member's JSON value.
    pub fn hidden_json(&self) -> Value {
        let mut m = Map::new();
        for (name, c) in &self.fields {
            let mut one = Map::new();
            match c {
                Commitment::U64(p) => one.insert("u64".into(), Value::from(URL_SAFE_NO_PAD.encode(p.to_bytes()))),
                Commitment::Str(h) => one.insert("str".into(), Value::from(URL_SAFE_NO_PAD.encode(h.0))),
            };
            m.insert(name.clone(), Value::Object(one));
        }
        Value::Object(m)
    }

    /// The public claims for `(field, predicate)` pairs: each field must be
    /// a hidden integer.
    pub fn claims(&self, list: &[(String, Predicate)]) -> Result<Vec<Claim>, DisclosureError> {
        list.iter()
            .map(|(field, predicate)| match self.fields.get(field) {
                Some(Commitment::U64(commitment)) => Ok(Claim { field: field.clone(), predicate: *predicate, commitment: *commitment }),
                Some(Commitment::Str(_)) => Err(DisclosureError::NotAnInteger(field.clone())),
                None => Err(DisclosureError::UnknownField(field.clone())),
            })
            .collect()
    }
}

/// A self-contained disclosure about one entry.
#[derive(Clone, Debug)]
pub struct DisclosureBundle {
    /// Entry bytes (as `extra`), inclusion path and signed checkpoint.
    pub tlog_proof: TlogProof,
    /// Openings of the revealed fields.
    pub revealed: BTreeMap<String, Opening>,
    /// Predicate proofs about fields that stay hidden.
    pub proofs: Vec<ClaimsProof>,
    /// A bundle of format v1 ([`BUNDLE_FORMAT_V1`]), whose proofs were made
    /// before they were bound to their entry.
    pub unbound_proofs: bool,
}

impl DisclosureBundle {
    /// The bundle as a JSON document.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("format".into(), Value::from(if self.unbound_proofs { BUNDLE_FORMAT_V1 } else { BUNDLE_FORMAT }));
        m.insert("index".into(), Value::from(self.tlog_proof.index));
        m.insert("tlog_proof".into(), Value::from(self.tlog_proof.to_text()));
        m.insert("revealed".into(), Value::Object(self.revealed.iter().map(|(k, o)| (k.clone(), o.to_json())).collect()));
        m.insert("proofs".into(), Value::Array(self.proofs.iter().map(ClaimsProof::to_json).collect()));
        Value::Object(m)
    }

    /// Parses a bundle document.
    pub fn parse(text: &[u8]) -> Result<Self, DisclosureError> {
        let malformed = DisclosureError::Malformed;
        let v: Value = serde_json::from_slice(text).map_err(|_| malformed(BundleError::NotJson))?;
        let obj = v.as_object().ok_or(malformed(BundleError::NotAnObject))?;
        let unbound_proofs = match obj.get("format").and_then(Value::as_str) {
            Some(BUNDLE_FORMAT) => false,
            Some(BUNDLE_FORMAT_V1) => true,
            _ => return Err(malformed(BundleError::Format)),
        };
        let text = obj.get("tlog_proof").and_then(Value::as_str).ok_or(malformed(BundleError::TlogProof))?;
        let tlog_proof = TlogProof::parse(text)?;
        if obj.get("index").and_then(Value::as_u64) != Some(tlog_proof.index) {
            return Err(malformed(BundleError::Index));
        }
        let revealed = obj
            .get("revealed")
            .and_then(Value::as_object)
            .ok_or(malformed(BundleError::Revealed))?
            .iter()
            .map(|(k, v)| Opening::from_json(v).map(|o| (k.clone(), o)).map_err(|e| malformed(BundleError::Opening(e))))
            .collect::<Result<_, _>>()?;
        let proofs = obj
            .get("proofs")
            .and_then(Value::as_array)
            .ok_or(malformed(BundleError::Proofs))?
            .iter()
            .map(|p| ClaimsProof::from_json(p).map_err(|_| malformed(BundleError::Proof)))
            .collect::<Result<_, _>>()?;
        Ok(Self { tlog_proof, revealed, proofs, unbound_proofs })
    }
}

/// What a verified bundle establishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedDisclosure {
    /// The checkpoint's origin.
    pub origin: String,
    /// Tree size of the checkpoint.
    pub tree_size: u64,
    /// Entry index.
    pub index: u64,
    /// The public members of the entry (agent, action, resource, time…)
    /// as `(name, canonical JSON value)`, hidden fields and proofs excluded.
    pub public: Vec<(String, String)>,
    /// Revealed fields: `(name, value)`.
    pub revealed: Vec<(String, String)>,
    /// Statements proven by the bundle's proofs (`amount ≤ 10000`).
    pub proven: Vec<String>,
    /// Statements proven by the entry's own proof at append time.
    pub proven_at_append: Vec<String>,
    /// Hidden fields neither revealed nor mentioned by any proof.
    pub undisclosed: Vec<String>,
}

impl VerifiedDisclosure {
    /// What the bundle establishes as JSON (`index`, `origin`, `tree_size`,
    /// `public`, `revealed` as `[{"field","value"}]`, `proven`,
    /// `proven_at_append`, `undisclosed`): how the offline tools report it.
    pub fn to_json(&self) -> Value {
        let public: Map<String, Value> =
            self.public.iter().map(|(k, j)| (k.clone(), serde_json::from_str(j).unwrap_or(Value::Null))).collect();
        serde_json::json!({
            "index": self.index, "origin": self.origin, "tree_size": self.tree_size, "public": public,
            "revealed": self.revealed.iter().map(|(k, x)| serde_json::json!({"field": k, "value": x})).collect::<Vec<_>>(),
            "proven": self.proven, "proven_at_append": self.proven_at_append, "undisclosed": self.undisclosed,
        })
    }
}

/// Verifies a bundle offline: checkpoint signature, inclusion of the entry,
/// every revealed opening against its commitment, the entry's own predicate
/// proof and every proof in the bundle.
pub fn verify(bundle: &DisclosureBundle, verifier: &NoteVerifier, params: &ZkParams) -> Result<VerifiedDisclosure, DisclosureError> {
    let included = bundle.tlog_proof.verify(verifier, None)?;
    let leaf_bytes = bundle.tlog_proof.extra.as_deref().ok_or(DisclosureError::Malformed(BundleError::NoEntry))?;
    let leaf: Value = serde_json::from_slice(leaf_bytes).map_err(|_| DisclosureError::Leaf(HiddenError::EntryNotJson))?;
    let leaf = leaf.as_object().ok_or(DisclosureError::Leaf(HiddenError::EntryNotAnObject))?;
    let fields =
        CommittedFields::from_leaf(leaf).map_err(DisclosureError::Leaf)?.ok_or(DisclosureError::Leaf(HiddenError::NoHiddenFields))?;

    let mut revealed = Vec::new();
    for (name, opening) in &bundle.revealed {
        let commitment = fields.fields.get(name).ok_or_else(|| DisclosureError::UnknownField(name.clone()))?;
        if !opening.opens(name, commitment) {
            return Err(DisclosureError::OpeningMismatch(name.clone()));
        }
        revealed.push((name.clone(), opening.value_text()));
    }
    let origin = included.checkpoint.origin.as_str();
    let mut proven_at_append = Vec::new();
    if let Some(p) = &fields.predicates {
        p.verify(&fields, &leaf_predicates_context(origin, leaf), params)?;
        proven_at_append.extend(p.claims.iter().map(|(f, pr)| pr.describe(f)));
    }
    let mut proven = Vec::new();
    let context = if bundle.unbound_proofs {
        Vec::new()
    } else {
        disclosure_proof_context(origin, included.index, &crate::hash::leaf_hash(leaf_bytes))
    };
    for p in &bundle.proofs {
        p.verify(&fields, &context, params)?;
        proven.extend(p.claims.iter().map(|(f, pr)| pr.describe(f)));
    }
    let mentioned = |name: &str| {
        bundle.revealed.contains_key(name)
            || bundle.proofs.iter().chain(fields.predicates.iter()).any(|p| p.claims.iter().any(|(f, _)| f == name))
    };
    let undisclosed = fields.fields.keys().filter(|n| !mentioned(n)).cloned().collect();
    let public = leaf
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "hidden" | "predicates"))
        .map(|(k, v)| (k.clone(), serde_json::to_string(v).unwrap_or_default()))
        .collect();
    Ok(VerifiedDisclosure {
        origin: included.checkpoint.origin,
        tree_size: included.checkpoint.size,
        index: included.index,
        public,
        revealed,
        proven,
        proven_at_append,
        undisclosed,
    })
}
