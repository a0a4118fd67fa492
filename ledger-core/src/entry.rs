//! Entries as the log appends them (docs/FORMAT.md): what is specific to
//! the log, on top of the entry model of [`verifier::entry`] (kinds,
//! members, limits, agent ids, hidden-field shape, leaf decoding), which
//! validates every entry once.
//!
//! A submission ([`Submission`]) is parsed strictly, validated by the
//! model, and kept as canonical JSON split around the one member the
//! sequencer adds, `integrated_time` ([`NewEntry`]). The sequencer stamps
//! the time and the stored leaf is the RFC 8785 canonical JSON of the whole
//! object plus `"v":2`:
//!
//! ```text
//! {"action":…,"agent":…,"data":{…},"integrated_time":<ms>,"kind":"action","resource":…,"seq":…,"signature":…,"v":2}
//! ```
//!
//! Members are already in canonical order, so stamping is a concatenation.
//! (Version 1 leaves placed `"v"` last even where a member sorts after it,
//! e.g. an attestation's `"verdict"`; they are read as they were written,
//! [`verifier::entry::Leaf::decode`].)
//!
//! An agent's signature travels with its entry as an [`EntryAuth`], checked
//! before any expensive work and re-checked cheaply when the entry is
//! sequenced; committed hidden fields travel as a [`PendingEntry`] until
//! their openings and proof are checked.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use verifier::agent_id::AgentId;
use verifier::canonical;
use verifier::canonical::LEAF_VERSION;
use verifier::disclosure::{CommittedFields, Opening};
use verifier::entry::{Entry, Form, ShapeError, TIME_MEMBER, VERSION_MEMBER};
use verifier::hash::Hash;
use zeroize::Zeroizing;
use zk::ZkParams;

pub use crate::auth::{EntryAuth, SignalAuth, SignedIn};

pub use verifier::entry::{EntryError, EntryKind, HiddenError};

/// Hard upper bound on a leaf: tlog-tiles entry bundles prefix each entry
/// with a big-endian `u16`.
pub const MAX_LEAF_BYTES: usize = u16::MAX as usize;

/// Bytes of `"integrated_time":<u64::MAX>,`, the most stamping adds.
const TIME_MEMBER_MAX: usize = r#""integrated_time":18446744073709551615,"#.len();

/// What an admin entry does to the agent registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminOp {
    /// Registers a new agent.
    Register(Arc<verifier::entry::passport::Passport>),
    /// Retires an agent.
    Retire(AgentId),
    /// Revokes an agent.
    Revoke(AgentId),
    /// Reinstates a revoked agent on the attestation at this index.
    Reinstate(AgentId, u64),
    /// Registers a signal source, or replaces its key and types (the
    /// sources view: [`crate::views::sources`]).
    Source(Arc<verifier::entry::Source>),
    /// An entry that grants an agent something (a `token`): the agent must
    /// be registered, not retired and not revoked when it is sequenced.
    Grant(AgentId),
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
        Self::from_value(&canonical::parse_strict(bytes)?, max_leaf_bytes)
    }

    /// Validates a strictly parsed submission.
    pub fn from_value(value: &Value, max_leaf_bytes: usize) -> Result<Self, EntryError> {
        let obj = value.as_object().ok_or(ShapeError::NotAnObject)?;
        if let Some(openings) = obj.get("openings") {
            // Committed by the client: the entry is in leaf form, the
            // openings travel beside it (never into the leaf). Only cheap
            // checks happen here, before the signature is verified: the
            // commitments and the proof are decoded and checked after it
            // (PendingEntry::check), and only the canonical bytes and the
            // small committed members are kept meanwhile.
            let mut object = obj.clone();
            object.remove("openings");
            let hidden = object.remove("hidden").ok_or(HiddenError::OpeningsWithoutHidden)?;
            let predicates = object.remove("predicates");
            let entry = Entry::from_object(&object, Form::Submitted)?;
            if entry.kind() != EntryKind::Action {
                return Err(HiddenError::NotAnAction.into());
            }
            let agent = entry.agent().cloned().ok_or(HiddenError::NotAnAction)?;
            CommittedFields::check_shape(&hidden, predicates.as_ref()).map_err(|e| HiddenError::Committed(Box::new(e)))?;
            let openings = verifier::hidden::openings_from_json(openings)?;
            let mut committed = Map::new();
            committed.insert("hidden".into(), hidden);
            if let Some(p) = predicates {
                committed.insert("predicates".into(), p);
            }
            object.extend(committed.clone());
            // The signature covers the committed form: its body is taken
            // from the object with the commitments in.
            let auth = EntryAuth::of(&entry).map(|mut auth| {
                auth.signed.body = verifier::entry::signing::signed_body(&object);
                Arc::new(auth)
            });
            let seq = entry.signature().map_or(0, |signature| signature.seq);
            let entry = NewEntry::assemble(EntryKind::Action, &object, max_leaf_bytes, None)?;
            return Ok(Self::Pending(PendingEntry { entry, committed, openings, agent, seq, auth }));
        }
        if obj.contains_key("hidden") || obj.contains_key("predicates") {
            // Without openings the entry either carries hidden values in
            // the clear (which its signature would then cover, for anyone
            // to brute-force) or commitments the log cannot check.
            return Err(EntryError::HiddenInClear);
        }
        let entry = Entry::from_object(obj, Form::Submitted)?;
        let mut ready = NewEntry::assemble(entry.kind(), obj, max_leaf_bytes, None)?;
        ready.auth = EntryAuth::of(&entry).map(Arc::new);
        Ok(Self::Ready(ready))
    }

    /// The entry, when it has no hidden fields to check first.
    pub fn ready(self) -> Option<NewEntry> {
        match self {
            Self::Ready(entry) => Some(entry),
            Self::Pending(_) => None,
        }
    }

    /// The agent signature, if the submission carries one.
    pub fn auth(&self) -> Option<&Arc<EntryAuth>> {
        match self {
            Self::Ready(e) => e.auth.as_ref(),
            Self::Pending(p) => p.auth.as_ref(),
        }
    }

    /// What admission checks of a signed signal, if the submission is one.
    pub fn signal(&self) -> Option<&Arc<SignalAuth>> {
        match self {
            Self::Ready(e) => e.signal.as_ref(),
            Self::Pending(_) => None,
        }
    }
}

/// Secret material kept beside (never inside) an entry.
pub struct EntrySecret {
    /// The acting agent, for shredding by agent.
    pub agent: AgentId,
    /// Canonical JSON of the openings, `{"name": {"u64": …, "blinding": …}, …}`.
    pub openings: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for EntrySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntrySecret").field("agent", &self.agent).finish_non_exhaustive()
    }
}

/// An action entry whose hidden fields the agent committed: in leaf form
/// (canonical bytes, signed over that form), waiting for its openings and
/// its predicate proof to be checked (on the prover pool, after the
/// signature verified).
#[derive(Clone, Debug)]
pub struct PendingEntry {
    /// The entry, assembled (its size checked) when it was parsed.
    pub(crate) entry: NewEntry,
    /// Its `hidden` and `predicates` members, decoded only when checked.
    pub(crate) committed: Map<String, Value>,
    pub(crate) openings: BTreeMap<String, Opening>,
    pub(crate) agent: AgentId,
    pub(crate) seq: u64,
    pub(crate) auth: Option<Arc<EntryAuth>>,
}

impl PendingEntry {
    /// Checks the openings against the commitments and the predicate proof
    /// (bound to the log `origin`, the agent and its sequence number), and
    /// returns the entry to append with its openings attached.
    pub fn check(self, origin: &str, params: &ZkParams) -> Result<NewEntry, EntryError> {
        let fields = CommittedFields::from_leaf(&self.committed)
            .map_err(|e| HiddenError::Committed(Box::new(e)))?
            .ok_or(HiddenError::OpeningsWithoutCommitments)?;
        let context = verifier::disclosure::entry_predicates_context(origin, self.agent.as_str(), self.seq);
        verifier::hidden::check_openings(&fields, &self.openings, &context, params)
            .map_err(|e| HiddenError::ClientCommitments(Box::new(e)))?;
        let plain = Zeroizing::new(canonical::to_canonical(&verifier::hidden::openings_to_json(&self.openings)));
        Ok(self.entry.with_secret(EntrySecret { agent: self.agent, openings: plain }).with_auth(self.auth))
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
    /// A signed signal's subject and, for a source's, its signature.
    signal: Option<Arc<SignalAuth>>,
    /// For an action: its agent and drift observation
    /// ([`verifier::fold::drift::observation`]), computed here so the
    /// sequencer's trust view need not read the leaf.
    observed: Option<Arc<(AgentId, u64)>>,
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
    /// An entry the log itself builds (passports, retirements,
    /// attestations with their verdict), validated as a leaf would be.
    pub fn from_log(obj: &Map<String, Value>, auth: Option<EntryAuth>, admin: Option<AdminOp>) -> Result<Self, EntryError> {
        let kind = Entry::from_object(obj, Form::Leaf)?.kind();
        let mut entry = Self::assemble(kind, obj, MAX_LEAF_BYTES, None)?;
        entry.auth = auth.map(Arc::new);
        entry.admin = admin.map(Arc::new);
        Ok(entry)
    }

    /// Builds the canonical head and tail of a validated object of `kind`.
    pub(crate) fn assemble(
        kind: EntryKind,
        obj: &Map<String, Value>,
        max_leaf_bytes: usize,
        secret: Option<Arc<EntrySecret>>,
    ) -> Result<Self, EntryError> {
        let version = Value::from(LEAF_VERSION);
        let v_key = String::from(VERSION_MEMBER);
        // "v" is sorted in with the rest (RFC 8785 orders by UTF-16 code
        // units): members such as an attestation's "verdict" sort after it.
        let mut members: Vec<(&String, &Value)> =
            obj.iter().filter(|(k, _)| k.as_str() != VERSION_MEMBER && k.as_str() != TIME_MEMBER).chain([(&v_key, &version)]).collect();
        members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
        let (mut head, mut tail) = (b"{".to_vec(), Vec::new());
        let after = members.iter().copied().filter(|(k, _)| k.encode_utf16().cmp(TIME_MEMBER.encode_utf16()).is_gt());
        for (k, v) in members.iter().filter(|(k, _)| k.encode_utf16().cmp(TIME_MEMBER.encode_utf16()).is_lt()) {
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
        let observed = match (kind, obj.get("agent"), obj.get("action"), obj.get("resource")) {
            (EntryKind::Action, Some(Value::String(agent)), Some(Value::String(action)), Some(Value::String(resource))) => {
                Some(Arc::new((AgentId::from_stored_unchecked(agent), verifier::fold::drift::observation(action, resource))))
            }
            _ => None,
        };
        let entry = Self { kind, head, tail, head_hash, secret, auth: None, admin: None, signal: None, observed };
        let max = max_leaf_bytes.min(MAX_LEAF_BYTES);
        if entry.max_leaf_len() > max {
            return Err(EntryError::TooLarge { size: entry.max_leaf_len(), max });
        }
        Ok(entry)
    }

    /// An action entry built from its fields.
    pub fn action(agent: &AgentId, action: &str, resource: &str, data: Option<&Value>, max_leaf_bytes: usize) -> Result<Self, EntryError> {
        let mut obj = Map::new();
        obj.insert("kind".into(), Value::from(EntryKind::Action.as_str()));
        obj.insert("agent".into(), Value::from(agent.as_str()));
        obj.insert("action".into(), Value::from(action));
        obj.insert("resource".into(), Value::from(resource));
        if let Some(d) = data {
            obj.insert("data".into(), d.clone());
        }
        Submission::from_value(&Value::Object(obj), max_leaf_bytes)?.ready().ok_or(EntryError::HiddenInClear)
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

    /// For an action: its agent and drift observation.
    pub fn observed(&self) -> Option<&(AgentId, u64)> {
        self.observed.as_deref()
    }

    /// The registry change of an admin entry.
    pub fn admin(&self) -> Option<&AdminOp> {
        self.admin.as_deref()
    }

    /// What admission checks of a signed signal.
    pub fn signal(&self) -> Option<&SignalAuth> {
        self.signal.as_deref()
    }

    pub(crate) fn with_signal(mut self, signal: Arc<SignalAuth>) -> Self {
        self.signal = Some(signal);
        self
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

/// A stored leaf, decoded (the listing view of [`verifier::entry::Leaf`]).
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
    /// Decodes leaf bytes, checking that they are exactly canonical
    /// ([`verifier::entry::Leaf::decode`]). Returns the typed leaf and the
    /// JSON value.
    pub fn decode(leaf: &[u8]) -> Result<(Self, Value), EntryError> {
        let (leaf, value) = verifier::entry::Leaf::decode(leaf)?;
        let decoded = Self {
            kind: leaf.kind,
            agent: leaf.text("agent").to_owned(),
            action: leaf.text("action").to_owned(),
            resource: leaf.text("resource").to_owned(),
            data: leaf.members.get("data").cloned(),
            integrated_time: leaf.integrated_time,
        };
        Ok((decoded, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AGENT: &str = "spiffe://example.org/agent/billing";

    /// Parses a submission without hidden fields.
    fn ready(bytes: &[u8], max_leaf_bytes: usize) -> Result<NewEntry, EntryError> {
        Ok(Submission::from_json(bytes, max_leaf_bytes)?.ready().expect("a submission without hidden fields"))
    }

    #[test]
    fn leaf_is_canonical_and_decodes() {
        let e = ready(
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
        obj.insert(TIME_MEMBER.into(), Value::from(5u64));
        let legacy = verifier::entry::legacy_v1_form(&obj);
        assert!(legacy.ends_with(br#""verdict":{"evidence":"software","ok":true,"reasons":[]},"v":1}"#));
        assert_eq!(Leaf::decode(&legacy).unwrap().0.kind, EntryKind::Attestation);
        // The same bytes claiming version 2 are refused: v2 leaves are canonical.
        let forged = String::from_utf8(legacy).unwrap().replace(r#""v":1}"#, r#""v":2}"#);
        assert!(Leaf::decode(forged.as_bytes()).is_err());
    }

    #[test]
    fn data_is_optional_and_builder_matches_parser() {
        let built = NewEntry::action(&AGENT.parse().unwrap(), "read", "db/x", None, MAX_LEAF_BYTES).unwrap();
        let parsed = ready(format!(r#"{{"kind":"action","agent":"{AGENT}","action":"read","resource":"db/x"}}"#).as_bytes(), 4096).unwrap();
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
            let err = ready(input.as_bytes(), 180).unwrap_err();
            assert!(check(&err), "{input}: {err:?}");
        }
    }
}
