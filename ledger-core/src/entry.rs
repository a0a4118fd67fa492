//! Entries and their canonical leaf encoding (docs/FORMAT.md).
//!
//! For now the log accepts one kind, `action`:
//!
//! ```json
//! {"kind":"action","agent":"spiffe://<td>/agent/<name>","action":"<string>","resource":"<string>","data":{...}}
//! ```
//!
//! The submission is parsed strictly ([`crate::canonical`]), validated, and
//! kept as canonical JSON split around the one member the server adds,
//! `integrated_time`. The sequencer stamps the time and the stored leaf is
//! the RFC 8785 canonical JSON of the whole object plus `"v":2`:
//!
//! ```text
//! {"action":…,"agent":…,"data":{…},"integrated_time":<ms>,"kind":"action","resource":…,"seq":…,"signature":…,"v":2}
//! ```
//!
//! Members are already in canonical order, so stamping is a concatenation.
//! (Version 1 leaves placed `"v"` last even where a member sorts after it,
//! e.g. an attestation's `"verdict"`; they are read as they were written,
//! docs/FORMAT.md.)

use std::sync::{Arc, OnceLock};

use ed25519_dalek::VerifyingKey;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use verifier::hash::Hash;

use crate::canonical;
use crate::hidden::{EntrySecret, PendingEntry};
use crate::spiffe::{validate_agent_id, SpiffeIdError};

/// Version of the leaf encoding written now.
pub use verifier::agent::LEAF_VERSION;

/// Hard upper bound on a leaf: tlog-tiles entry bundles prefix each entry
/// with a big-endian `u16`.
pub const MAX_LEAF_BYTES: usize = u16::MAX as usize;

/// Longest `action` string, in characters.
pub const MAX_ACTION_CHARS: usize = 256;
/// Longest `resource` string, in characters.
pub const MAX_RESOURCE_CHARS: usize = 2048;

const TIME_KEY: &str = "integrated_time";
/// Bytes of `"integrated_time":<u64::MAX>,`, the most stamping adds.
const TIME_MEMBER_MAX: usize = r#""integrated_time":18446744073709551615,"#.len();

/// What an entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// Something an agent did (agent-signed).
    Action,
    /// An agent's passport (admin).
    Passport,
    /// A key rotation, signed by the old and the new key (agent-signed).
    Rotation,
    /// An agent taken out of service (admin).
    Retirement,
    /// A self-attestation and the log's verdict on it (agent-signed).
    Attestation,
}

impl EntryKind {
    /// The kind's name on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Action => "action",
            Self::Passport => "passport",
            Self::Rotation => "rotation",
            Self::Retirement => "retirement",
            Self::Attestation => "attestation",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Action, Self::Passport, Self::Rotation, Self::Retirement, Self::Attestation].into_iter().find(|k| k.as_str() == name)
    }
}

/// An agent's signature over an entry: checked before any expensive work
/// (in parallel, before the sequencer), and re-checked cheaply by the
/// sequencer against the key in force when the entry is sequenced.
#[derive(Clone, Debug)]
pub struct EntryAuth {
    /// The signing agent.
    pub agent: String,
    /// Its sequence number.
    pub seq: u64,
    /// The signed body ([`verifier::agent::signed_body`]); the message adds
    /// the context and the log's origin ([`EntryAuth::message`]).
    pub body: Vec<u8>,
    /// The signature.
    pub signature: ed25519_dalek::Signature,
    /// For a rotation: the new key and its signature over the same bytes.
    pub new_key: Option<(VerifyingKey, ed25519_dalek::Signature)>,
    /// The key the signature (and a rotation's new-key signature) verified
    /// with, once checked: the sequencer skips the check when that key is
    /// still the one in force.
    pub(crate) verified_with: OnceLock<VerifyingKey>,
}

impl EntryAuth {
    /// The signed message in the log named `origin`.
    pub fn message(&self, origin: &str) -> Vec<u8> {
        verifier::agent::signed_message(origin, &self.body)
    }

    /// Checks the signature (and a rotation's new-key signature) against
    /// `key` with the ledger's one rule, remembering success.
    pub(crate) fn verify(&self, origin: &str, key: &VerifyingKey) -> bool {
        if self.verified_with.get() == Some(key) {
            return true;
        }
        let message = self.message(origin);
        let ok = verifier::agent::verify_signature(key, &message, &self.signature)
            && self.new_key.as_ref().is_none_or(|(new_key, new_sig)| verifier::agent::verify_signature(new_key, &message, new_sig));
        if ok {
            let _ = self.verified_with.set(*key);
        }
        ok
    }
}

/// What an admin entry does to the agent registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminOp {
    /// Registers a new agent.
    Register(Arc<verifier::agent::Passport>),
    /// Retires an agent.
    Retire(String),
}

/// Why a submitted entry was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// Not valid JSON, or not canonicalizable (duplicate keys, fractions).
    #[error("entry is not valid JSON: {0}")]
    Json(String),
    /// The shape is wrong (missing or extra fields, wrong types, limits).
    #[error("invalid entry: {0}")]
    Shape(String),
    /// `kind` is not one the log accepts.
    #[error("entry kind {0:?} cannot be submitted here; POST /v1/entries takes \"action\" and \"rotation\"")]
    UnknownKind(String),
    /// `agent` is not a SPIFFE agent id.
    #[error("invalid agent id {id:?}: {reason}")]
    AgentId { id: String, reason: SpiffeIdError },
    /// The `hidden` fields are malformed.
    #[error("invalid hidden fields: {0}")]
    Hidden(String),
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
    Agent(verifier::agent::AgentError),
    /// The stored leaf would be larger than the configured limit.
    #[error("entry is {size} bytes as a stored leaf; the limit is {max}")]
    TooLarge { size: usize, max: usize },
}

fn shape(msg: impl Into<String>) -> EntryError {
    EntryError::Shape(msg.into())
}

pub(crate) fn required_string<'a>(obj: &'a Map<String, Value>, key: &str, max: usize) -> Result<&'a str, EntryError> {
    match obj.get(key) {
        Some(Value::String(s)) if s.is_empty() => Err(shape(format!("\"{key}\" must not be empty"))),
        Some(Value::String(s)) if s.chars().count() > max => Err(shape(format!("\"{key}\" is longer than {max} characters"))),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(shape(format!("\"{key}\" must be a string"))),
        None => Err(shape(format!("missing field \"{key}\""))),
    }
}

fn agent_err(e: verifier::agent::AgentError) -> EntryError {
    EntryError::Agent(e)
}

fn only_members(obj: &Map<String, Value>, kind: &str, allowed: &[&str]) -> Result<(), EntryError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(extra) => Err(shape(format!("unexpected field {extra:?}; a {kind} has {}", allowed.join(", ")))),
        None => Ok(()),
    }
}

fn checked_agent(obj: &Map<String, Value>) -> Result<&str, EntryError> {
    let agent = required_string(obj, "agent", crate::spiffe::MAX_SPIFFE_ID_BYTES)?;
    validate_agent_id(agent).map_err(|reason| EntryError::AgentId { id: agent.into(), reason })?;
    Ok(agent)
}

/// Validates an entry object. `leaf` accepts what only the log writes
/// (committed hidden fields, every kind, verdicts); otherwise only the
/// kinds `POST /v1/entries` takes. Returns the kind and the agent.
fn validate(obj: &Map<String, Value>, leaf: bool) -> Result<(EntryKind, &str), EntryError> {
    let kind = match obj.get("kind") {
        Some(Value::String(s)) => EntryKind::parse(s).ok_or_else(|| EntryError::UnknownKind(s.clone()))?,
        Some(_) => return Err(shape("\"kind\" must be a string")),
        None => return Err(shape("missing field \"kind\"")),
    };
    if !leaf && !matches!(kind, EntryKind::Action | EntryKind::Rotation) {
        return Err(EntryError::UnknownKind(kind.as_str().into()));
    }
    let agent = checked_agent(obj)?;
    match kind {
        EntryKind::Action => {
            let fields: &[&str] = if leaf {
                &["kind", "agent", "action", "resource", "data", "seq", "signature", "hidden", "predicates"]
            } else {
                &["kind", "agent", "action", "resource", "data", "seq", "signature"]
            };
            only_members(obj, "action", fields)?;
            required_string(obj, "action", MAX_ACTION_CHARS)?;
            required_string(obj, "resource", MAX_RESOURCE_CHARS)?;
            if obj.get("data").is_some_and(|d| !d.is_object()) {
                return Err(shape("\"data\" must be a JSON object"));
            }
            if leaf {
                verifier::disclosure::CommittedFields::from_leaf(obj).map_err(|e| EntryError::Hidden(e.to_string()))?;
            }
        }
        EntryKind::Rotation => {
            only_members(obj, "rotation", &["kind", "agent", "new_public_key", "seq", "signature", "new_signature"])?;
        }
        EntryKind::Passport if leaf => {
            verifier::agent::Passport::from_stored(obj).map_err(agent_err)?;
        }
        EntryKind::Retirement if leaf => {
            only_members(obj, "retirement", &["kind", "agent", "reason"])?;
            required_string(obj, "reason", 1024)?;
        }
        EntryKind::Attestation if leaf => crate::attest::validate_attestation(obj, true)?,
        other => return Err(EntryError::UnknownKind(other.as_str().into())),
    }
    Ok((kind, agent))
}

/// Parses the signature members of an agent entry: `None` when an action
/// carries neither `seq` nor `signature` (the log then refuses it unless
/// it runs without agent authentication).
pub(crate) fn parse_auth(obj: &Map<String, Value>, kind: EntryKind) -> Result<Option<EntryAuth>, EntryError> {
    use verifier::agent::{parse_public_key, parse_seq, parse_signature, signed_body, string};
    if kind == EntryKind::Action && !obj.contains_key("seq") && !obj.contains_key("signature") {
        return Ok(None);
    }
    let agent = string(obj, "agent").map_err(agent_err)?.to_owned();
    let seq = parse_seq(obj).map_err(agent_err)?;
    let signature = parse_signature(string(obj, "signature").map_err(agent_err)?).map_err(agent_err)?;
    let new_key = if kind == EntryKind::Rotation {
        let key = parse_public_key(string(obj, "new_public_key").map_err(agent_err)?).map_err(agent_err)?;
        Some((key, parse_signature(string(obj, "new_signature").map_err(agent_err)?).map_err(agent_err)?))
    } else {
        None
    };
    Ok(Some(EntryAuth { agent, seq, body: signed_body(obj), signature, new_key, verified_with: OnceLock::new() }))
}

/// A submitted entry: ready to append, or with committed hidden fields
/// whose openings and proof are checked first (on the prover pool, after
/// the signature).
#[derive(Clone, Debug)]
pub enum Submission {
    /// No hidden fields.
    Ready(NewEntry),
    /// Committed hidden fields to check.
    Pending(PendingEntry),
}

impl Submission {
    /// Parses and validates raw JSON bytes of one entry.
    pub fn from_json(bytes: &[u8], max_leaf_bytes: usize) -> Result<Self, EntryError> {
        let value = canonical::parse_strict(bytes).map_err(|e| EntryError::Json(e.to_string()))?;
        Self::from_value(&value, max_leaf_bytes)
    }

    /// Validates a strictly parsed submission.
    pub fn from_value(value: &Value, max_leaf_bytes: usize) -> Result<Self, EntryError> {
        let obj = value.as_object().ok_or_else(|| shape("an entry must be a JSON object"))?;
        if let Some(openings) = obj.get("openings") {
            // Committed by the client: the entry is in leaf form, the
            // openings travel beside it (never into the leaf). Only cheap
            // checks happen here, before the signature is verified: the
            // commitments and the proof are decoded and checked after it
            // (PendingEntry::check), and only the canonical bytes and the
            // small committed members are kept meanwhile.
            let mut object = obj.clone();
            object.remove("openings");
            let hidden = object
                .remove("hidden")
                .ok_or_else(|| EntryError::Hidden("\"openings\" come with an action's committed \"hidden\" fields".into()))?;
            let predicates = object.remove("predicates");
            let (kind, agent) = validate(&object, false)?;
            if kind != EntryKind::Action {
                return Err(EntryError::Hidden("only actions carry hidden fields".into()));
            }
            let agent = agent.to_owned();
            verifier::disclosure::CommittedFields::check_shape(&hidden, predicates.as_ref())
                .map_err(|e| EntryError::Hidden(e.to_string()))?;
            let openings = verifier::hidden::openings_from_json(openings).map_err(EntryError::Hidden)?;
            let mut committed = Map::new();
            committed.insert("hidden".into(), hidden);
            if let Some(p) = predicates {
                committed.insert("predicates".into(), p);
            }
            object.extend(committed.clone());
            let auth = parse_auth(&object, kind)?.map(Arc::new);
            let seq = object.get("seq").and_then(Value::as_u64).unwrap_or_default();
            let entry = NewEntry::assemble(&object, max_leaf_bytes, None)?;
            return Ok(Self::Pending(PendingEntry { entry, committed, openings, agent, seq, auth }));
        }
        if obj.contains_key("hidden") || obj.contains_key("predicates") {
            // Without openings the entry either carries hidden values in
            // the clear (which its signature would then cover, for anyone
            // to brute-force) or commitments the log cannot check.
            return Err(EntryError::HiddenInClear);
        }
        NewEntry::from_value(value, max_leaf_bytes).map(Self::Ready)
    }

    /// The agent signature, if the submission carries one.
    pub fn auth(&self) -> Option<&Arc<EntryAuth>> {
        match self {
            Self::Ready(e) => e.auth.as_ref(),
            Self::Pending(p) => p.auth.as_ref(),
        }
    }
}

/// A validated, canonicalized entry waiting for its index and time.
#[derive(Clone)]
pub struct NewEntry {
    kind: EntryKind,
    /// `{` and the canonical members sorting before `integrated_time`.
    head: Vec<u8>,
    /// The canonical members sorting after it, and `}`.
    tail: Vec<u8>,
    /// SHA-256 state after `0x00 ‖ head`: the appender hashes most of the
    /// leaf, so the single sequencer thread only hashes the time and tail.
    head_hash: Sha256,
    /// Openings of hidden fields, written to the secret store with the entry.
    secret: Option<Arc<EntrySecret>>,
    /// The agent's signature, checked by the sequencer.
    auth: Option<Arc<EntryAuth>>,
    /// What an admin entry does to the registry.
    admin: Option<Arc<AdminOp>>,
}

impl PartialEq for NewEntry {
    fn eq(&self, other: &Self) -> bool {
        (self.kind, &self.head, &self.tail) == (other.kind, &other.head, &other.tail)
    }
}

impl Eq for NewEntry {}

impl std::fmt::Debug for NewEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewEntry")
            .field("kind", &self.kind)
            .field("head", &String::from_utf8_lossy(&self.head))
            .field("tail", &String::from_utf8_lossy(&self.tail))
            .finish()
    }
}

impl NewEntry {
    /// Parses and validates raw JSON bytes of one entry; `max_leaf_bytes`
    /// bounds the stored leaf.
    pub fn from_json(bytes: &[u8], max_leaf_bytes: usize) -> Result<Self, EntryError> {
        let value = canonical::parse_strict(bytes).map_err(|e| EntryError::Json(e.to_string()))?;
        Self::from_value(&value, max_leaf_bytes)
    }

    /// Validates a submitted JSON value (already strictly parsed) without
    /// hidden fields; entries with hidden fields go through [`Submission`].
    pub fn from_value(value: &Value, max_leaf_bytes: usize) -> Result<Self, EntryError> {
        let obj = value.as_object().ok_or_else(|| shape("an entry must be a JSON object"))?;
        if obj.contains_key("hidden") {
            return Err(EntryError::HiddenInClear);
        }
        let (kind, _) = validate(obj, false)?;
        let auth = parse_auth(obj, kind)?.map(Arc::new);
        let mut entry = Self::assemble(obj, max_leaf_bytes, None)?;
        entry.kind = kind;
        entry.auth = auth;
        Ok(entry)
    }

    /// An entry the log itself builds (passports, retirements,
    /// attestations with their verdict), validated as a leaf would be.
    pub fn from_log(obj: &Map<String, Value>, auth: Option<EntryAuth>, admin: Option<AdminOp>) -> Result<Self, EntryError> {
        let (kind, _) = validate(obj, true)?;
        let mut entry = Self::assemble(obj, MAX_LEAF_BYTES, None)?;
        entry.kind = kind;
        entry.auth = auth.map(Arc::new);
        entry.admin = admin.map(Arc::new);
        Ok(entry)
    }

    /// Builds the canonical head and tail of a validated object.
    pub(crate) fn assemble(obj: &Map<String, Value>, max_leaf_bytes: usize, secret: Option<Arc<EntrySecret>>) -> Result<Self, EntryError> {
        let kind = EntryKind::Action;
        let version = Value::from(LEAF_VERSION);
        let v_key = String::from("v");
        // "v" is sorted in with the rest (RFC 8785 orders by UTF-16 code
        // units): members such as an attestation's "verdict" sort after it.
        let mut members: Vec<(&String, &Value)> =
            obj.iter().filter(|(k, _)| k.as_str() != "v" && k.as_str() != TIME_KEY).chain([(&v_key, &version)]).collect();
        members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
        let (mut head, mut tail) = (b"{".to_vec(), Vec::new());
        let after = members.iter().copied().filter(|(k, _)| k.encode_utf16().cmp(TIME_KEY.encode_utf16()).is_gt());
        for (k, v) in members.iter().filter(|(k, _)| k.encode_utf16().cmp(TIME_KEY.encode_utf16()).is_lt()) {
            canonical::write_string(k, &mut head);
            head.push(b':');
            canonical::write_canonical(v, &mut head);
            head.push(b',');
        }
        for (k, v) in after {
            tail.push(b',');
            canonical::write_string(k, &mut tail);
            tail.push(b':');
            canonical::write_canonical(v, &mut tail);
        }
        tail.push(b'}');
        let mut head_hash = Sha256::new();
        head_hash.update([verifier::hash::LEAF_PREFIX]);
        head_hash.update(&head);
        let entry = Self { kind, head, tail, head_hash, secret, auth: None, admin: None };
        let max = max_leaf_bytes.min(MAX_LEAF_BYTES);
        if entry.max_leaf_len() > max {
            return Err(EntryError::TooLarge { size: entry.max_leaf_len(), max });
        }
        Ok(entry)
    }

    /// An action entry built from its fields.
    pub fn action(agent: &str, action: &str, resource: &str, data: Option<&Value>, max_leaf_bytes: usize) -> Result<Self, EntryError> {
        let mut obj = Map::new();
        obj.insert("kind".into(), Value::from("action"));
        obj.insert("agent".into(), Value::from(agent));
        obj.insert("action".into(), Value::from(action));
        obj.insert("resource".into(), Value::from(resource));
        if let Some(d) = data {
            obj.insert("data".into(), d.clone());
        }
        Self::from_value(&Value::Object(obj), max_leaf_bytes)
    }

    /// The entry's kind.
    pub fn kind(&self) -> EntryKind {
        self.kind
    }

    /// Openings to store beside the entry, if it has hidden fields.
    pub fn secret(&self) -> Option<&EntrySecret> {
        self.secret.as_deref()
    }

    /// The agent signature, for agent-written entries that carry one.
    pub fn auth(&self) -> Option<&EntryAuth> {
        self.auth.as_deref()
    }

    /// The registry change of an admin entry.
    pub fn admin(&self) -> Option<&AdminOp> {
        self.admin.as_deref()
    }

    pub(crate) fn with_auth(mut self, auth: Option<Arc<EntryAuth>>) -> Self {
        self.auth = auth;
        self
    }

    pub(crate) fn with_secret(mut self, secret: EntrySecret) -> Self {
        self.secret = Some(Arc::new(secret));
        self
    }

    /// Upper bound of the stored leaf's length (with the longest time).
    pub fn max_leaf_len(&self) -> usize {
        self.head.len() + TIME_MEMBER_MAX + self.tail.len()
    }

    /// Size used for queue accounting.
    pub fn queued_bytes(&self) -> usize {
        self.max_leaf_len()
    }

    /// The leaf bytes once stamped with `integrated_time`.
    pub fn to_leaf(&self, integrated_time: u64) -> Vec<u8> {
        self.to_leaf_with(integrated_time.to_string().as_bytes())
    }

    /// [`NewEntry::to_leaf`] with the time already in decimal, so a group
    /// commit formats its one timestamp once.
    pub(crate) fn to_leaf_with(&self, time_decimal: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.head.len() + TIME_MEMBER_MAX + self.tail.len());
        out.extend_from_slice(&self.head);
        out.extend_from_slice(b"\"integrated_time\":");
        out.extend_from_slice(time_decimal);
        out.extend_from_slice(&self.tail);
        out
    }

    /// The leaf bytes and their RFC 9162 leaf hash, continuing the hash of
    /// the head computed when the entry was validated.
    pub(crate) fn stamp(&self, time_decimal: &[u8]) -> (Vec<u8>, Hash) {
        let leaf = self.to_leaf_with(time_decimal);
        let mut h = self.head_hash.clone();
        h.update(&leaf[self.head.len()..]);
        (leaf, h.finalize().into())
    }
}

/// A stored leaf, decoded.
#[derive(Clone, Debug, PartialEq)]
pub struct Leaf {
    /// Entry kind.
    pub kind: EntryKind,
    /// The acting agent's SPIFFE id.
    pub agent: String,
    /// What it did (actions; empty for other kinds).
    pub action: String,
    /// What it did it to (actions; empty for other kinds).
    pub resource: String,
    /// Free-form details, if any.
    pub data: Option<Value>,
    /// Integrated time, ms since the Unix epoch.
    pub integrated_time: u64,
}

impl Leaf {
    /// Decodes leaf bytes, checking that they are exactly canonical.
    /// Returns the typed leaf and the JSON value.
    pub fn decode(leaf: &[u8]) -> Result<(Self, Value), EntryError> {
        let value = canonical::parse_strict(leaf).map_err(|e| EntryError::Json(e.to_string()))?;
        let mut submitted = value.as_object().cloned().ok_or_else(|| shape("leaf must be an object"))?;
        let version = submitted.remove("v").and_then(|v| v.as_u64());
        let canonical_form = canonical::to_canonical(&value) == leaf;
        match version {
            Some(LEAF_VERSION) if canonical_form => {}
            // Version 1 wrote "v" last; for every kind but attestations
            // that is also the canonical position.
            Some(1) if canonical_form || legacy_v1_form(&submitted) == leaf => {}
            Some(1 | LEAF_VERSION) => return Err(shape("leaf is not in canonical form")),
            _ => return Err(shape("unsupported leaf version")),
        }
        let integrated_time = submitted.remove(TIME_KEY).and_then(|t| t.as_u64()).ok_or_else(|| shape("missing integrated_time"))?;
        let kind = match validate(&submitted, true) {
            Ok((kind, _)) => kind,
            // A version 1 leaf was valid under version 1's rules; later
            // rules (weak keys, hidden-field limits) do not make it
            // unreadable.
            Err(e) if version == Some(1) => submitted.get("kind").and_then(Value::as_str).and_then(EntryKind::parse).ok_or(e)?,
            Err(e) => return Err(e),
        };
        let text = |k: &str| submitted.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
        let leaf = Self {
            kind,
            agent: text("agent"),
            action: text("action"),
            resource: text("resource"),
            data: submitted.get("data").cloned(),
            integrated_time,
        };
        Ok((leaf, value))
    }
}

/// How version 1 wrote a leaf: the members in canonical order, then
/// `"v":1` last.
fn legacy_v1_form(members: &Map<String, Value>) -> Vec<u8> {
    let mut out = canonical::to_canonical(&Value::Object(members.clone()));
    out.pop();
    if out.len() > 1 {
        out.push(b',');
    }
    out.extend_from_slice(br#""v":1}"#);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const AGENT: &str = "spiffe://example.org/agent/billing";

    #[test]
    fn leaf_is_canonical_and_decodes() {
        let e = NewEntry::from_json(
            br#"{"resource":"db/invoices", "kind": "action", "data": {"z": 1, "a": "x"}, "agent": "spiffe://example.org/agent/billing", "action": "read"}"#,
            MAX_LEAF_BYTES,
        )
        .unwrap();
        let leaf = e.to_leaf(1_700_000_000_123);
        assert_eq!(
            std::str::from_utf8(&leaf).unwrap(),
            r#"{"action":"read","agent":"spiffe://example.org/agent/billing","data":{"a":"x","z":1},"integrated_time":1700000000123,"kind":"action","resource":"db/invoices","v":2}"#
        );
        let (decoded, value) = Leaf::decode(&leaf).unwrap();
        assert_eq!(decoded.kind, EntryKind::Action);
        assert_eq!(decoded.integrated_time, 1_700_000_000_123);
        assert_eq!(decoded.resource, "db/invoices");
        assert_eq!(canonical::to_canonical(&value), leaf);
        assert!(leaf.len() <= e.max_leaf_len());
        let (stamped, hash) = e.stamp(b"1700000000123");
        assert_eq!(stamped, leaf);
        assert_eq!(hash, verifier::hash::leaf_hash(&leaf));
    }

    fn attestation_object() -> Map<String, Value> {
        let nonce = "A".repeat(43) + "=";
        let text = format!(
            r#"{{"kind":"attestation","agent":"{AGENT}","nonce":"{nonce}","code_hash":"{h}","runtime":{{"os":"linux","version":"1","image_digest":"sha256:x"}},
            "behaviour":{{"digest":"{h}","calls":1,"distinct":1}},"evidence":{{"type":"software"}},"seq":1,"signature":"c2ln",
            "verdict":{{"evidence":"software","ok":true,"reasons":[]}}}}"#,
            h = "ab".repeat(32)
        );
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn members_after_v_keep_the_leaf_canonical() {
        // "verdict" sorts after "v": version 1 wrote "v" last, which is not
        // RFC 8785 and made every attestation unreadable.
        let obj = attestation_object();
        let leaf = NewEntry::from_log(&obj, None, None).unwrap().to_leaf(5);
        let value = canonical::parse_strict(&leaf).unwrap();
        assert_eq!(canonical::to_canonical(&value), leaf, "{}", String::from_utf8_lossy(&leaf));
        let (decoded, _) = Leaf::decode(&leaf).unwrap();
        assert_eq!(decoded.kind, EntryKind::Attestation);
    }

    #[test]
    fn version_1_leaves_are_read_as_they_were_written() {
        let mut obj = attestation_object();
        obj.insert(TIME_KEY.into(), Value::from(5u64));
        let legacy = legacy_v1_form(&obj);
        assert!(legacy.ends_with(br#""verdict":{"evidence":"software","ok":true,"reasons":[]},"v":1}"#));
        assert_eq!(Leaf::decode(&legacy).unwrap().0.kind, EntryKind::Attestation);
        // The same bytes claiming version 2 are refused: v2 leaves are canonical.
        let forged = String::from_utf8(legacy).unwrap().replace(r#""v":1}"#, r#""v":2}"#);
        assert!(Leaf::decode(forged.as_bytes()).is_err());
    }

    #[test]
    fn data_is_optional_and_builder_matches_parser() {
        let built = NewEntry::action(AGENT, "read", "db/x", None, MAX_LEAF_BYTES).unwrap();
        let parsed =
            NewEntry::from_json(format!(r#"{{"kind":"action","agent":"{AGENT}","action":"read","resource":"db/x"}}"#).as_bytes(), 4096)
                .unwrap();
        assert_eq!(built, parsed);
        assert_eq!(
            std::str::from_utf8(&built.to_leaf(0)).unwrap(),
            format!(r#"{{"action":"read","agent":"{AGENT}","integrated_time":0,"kind":"action","resource":"db/x","v":2}}"#)
        );
    }

    #[test]
    fn rejections() {
        type Case = (String, fn(&EntryError) -> bool);
        let ok = |extra: &str| format!(r#"{{"kind":"action","agent":"{AGENT}","action":"read","resource":"r"{extra}}}"#);
        let cases: Vec<Case> = vec![
            ("[]".into(), |e| matches!(e, EntryError::Shape(_))),
            (r#"{"agent":"x"}"#.into(), |e| matches!(e, EntryError::Shape(_))),
            (r#"{"kind":"passport"}"#.into(), |e| matches!(e, EntryError::UnknownKind(_))),
            (r#"{"kind":7}"#.into(), |e| matches!(e, EntryError::Shape(_))),
            (ok(r#","extra":1"#), |e| matches!(e, EntryError::Shape(_))),
            (ok(r#","data":[1]"#), |e| matches!(e, EntryError::Shape(_))),
            (ok(r#","data":{"a":1.5}"#), |e| matches!(e, EntryError::Json(_))),
            (ok(r#","data":{"a":1,"a":2}"#), |e| matches!(e, EntryError::Json(_))),
            (ok(r#","data":{"pad":"0123456789012345678901234567890123456789"}"#), |e| matches!(e, EntryError::TooLarge { .. })),
            (r#"{"kind":"action","agent":"spiffe://example.org/x","action":"a","resource":"r"}"#.into(), |e| {
                matches!(e, EntryError::AgentId { .. })
            }),
            (format!(r#"{{"kind":"action","agent":"{AGENT}","action":"","resource":"r"}}"#), |e| matches!(e, EntryError::Shape(_))),
            (format!(r#"{{"kind":"action","agent":"{AGENT}","action":"a"}}"#), |e| matches!(e, EntryError::Shape(_))),
            (format!(r#"{{"kind":"action","agent":"{AGENT}","action":"a","resource":5}}"#), |e| matches!(e, EntryError::Shape(_))),
        ];
        for (input, check) in cases {
            let err = NewEntry::from_json(input.as_bytes(), 180).unwrap_err();
            assert!(check(&err), "{input}: {err:?}");
        }
    }
}
