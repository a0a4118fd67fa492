//! Entries and their canonical leaf encoding (docs/FORMAT.md).
//!
//! A client submits `{"kind": "<kind>", "body": {...}}`. The body is parsed
//! strictly and canonicalized ([`crate::canonical`]); the sequencer stamps
//! the integrated time and the stored leaf is the RFC 8785 canonical JSON
//!
//! ```text
//! {"body":<canonical body>,"integrated_time":<ms since epoch>,"kind":"<kind>","v":1}
//! ```
//!
//! Keys are already in canonical order, so the sequencer builds the leaf by
//! concatenation without re-parsing the body.

use serde_json::Value;

use crate::canonical;

/// Version of the leaf encoding.
pub const LEAF_VERSION: u64 = 1;

/// Hard upper bound on a leaf: entry bundles prefix each entry with a `u16`.
pub const MAX_LEAF_BYTES: usize = u16::MAX as usize;

/// Bytes the envelope adds around a body, with the longest kind and time.
pub const ENVELOPE_OVERHEAD: usize = r#"{"body":,"integrated_time":18446744073709551615,"kind":"attestation","v":1}"#.len();

/// What an entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// An agent's identity document.
    Passport,
    /// Evidence an agent presented about itself.
    Attestation,
    /// Something an agent did.
    Action,
    /// A risk signal about an agent.
    Signal,
    /// An action token the server issued.
    Token,
    /// A revocation of an agent and its tokens.
    Revocation,
}

impl EntryKind {
    /// Every kind, in documentation order.
    pub const ALL: [EntryKind; 6] = [Self::Passport, Self::Attestation, Self::Action, Self::Signal, Self::Token, Self::Revocation];

    /// The kind's name on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Passport => "passport",
            Self::Attestation => "attestation",
            Self::Action => "action",
            Self::Signal => "signal",
            Self::Token => "token",
            Self::Revocation => "revocation",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether only the server itself may write entries of this kind.
    pub const fn server_only(self) -> bool {
        matches!(self, Self::Token)
    }
}

/// Why a submitted entry was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// Not valid JSON, or not canonicalizable (duplicate keys, fractions).
    #[error("entry is not valid JSON: {0}")]
    Json(String),
    /// The shape is wrong (missing `kind`/`body`, extra fields, wrong types).
    #[error("invalid entry: {0}")]
    Shape(String),
    /// `kind` is not one of the known kinds.
    #[error("unknown entry kind {0:?}; expected one of passport, attestation, action, signal, revocation")]
    UnknownKind(String),
    /// The kind is written by the server only.
    #[error("entries of kind {0:?} are written by the server only")]
    KindNotWritable(&'static str),
    /// The canonical body is larger than the configured limit.
    #[error("entry body is {size} bytes canonicalized; the limit is {max}")]
    TooLarge { size: usize, max: usize },
}

/// A validated, canonicalized entry waiting for its index and time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEntry {
    kind: EntryKind,
    body: Vec<u8>,
}

impl NewEntry {
    /// Validates a submitted JSON value. `max_body_bytes` bounds the
    /// canonical body.
    pub fn from_value(value: &Value, max_body_bytes: usize) -> Result<Self, EntryError> {
        let obj = value.as_object().ok_or_else(|| EntryError::Shape("entry must be a JSON object".into()))?;
        if let Some(extra) = obj.keys().find(|k| *k != "kind" && *k != "body") {
            return Err(EntryError::Shape(format!("unexpected field {extra:?}; an entry has only \"kind\" and \"body\"")));
        }
        let kind_name = match obj.get("kind") {
            Some(Value::String(s)) => s,
            Some(_) => return Err(EntryError::Shape("\"kind\" must be a string".into())),
            None => return Err(EntryError::Shape("missing field \"kind\"".into())),
        };
        let kind = EntryKind::parse(kind_name).ok_or_else(|| EntryError::UnknownKind(kind_name.clone()))?;
        if kind.server_only() {
            return Err(EntryError::KindNotWritable(kind.as_str()));
        }
        let body = match obj.get("body") {
            Some(b @ Value::Object(_)) => b,
            Some(_) => return Err(EntryError::Shape("\"body\" must be a JSON object".into())),
            None => return Err(EntryError::Shape("missing field \"body\"".into())),
        };
        Self::new(kind, body, max_body_bytes)
    }

    /// Parses and validates raw JSON bytes of one entry.
    pub fn from_json(bytes: &[u8], max_body_bytes: usize) -> Result<Self, EntryError> {
        let value = canonical::parse_strict(bytes).map_err(|e| EntryError::Json(e.to_string()))?;
        Self::from_value(&value, max_body_bytes)
    }

    /// An entry of any kind (including server-only kinds) with `body`.
    pub fn new(kind: EntryKind, body: &Value, max_body_bytes: usize) -> Result<Self, EntryError> {
        if !body.is_object() {
            return Err(EntryError::Shape("\"body\" must be a JSON object".into()));
        }
        let body = canonical::to_canonical(body);
        let max = max_body_bytes.min(MAX_LEAF_BYTES - ENVELOPE_OVERHEAD);
        if body.len() > max {
            return Err(EntryError::TooLarge { size: body.len(), max });
        }
        Ok(Self { kind, body })
    }

    /// The entry's kind.
    pub fn kind(&self) -> EntryKind {
        self.kind
    }

    /// Canonical body bytes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Size used for queue accounting.
    pub fn queued_bytes(&self) -> usize {
        self.body.len() + ENVELOPE_OVERHEAD
    }

    /// The leaf bytes once stamped with `integrated_time`.
    pub fn to_leaf(&self, integrated_time: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + ENVELOPE_OVERHEAD);
        out.extend_from_slice(b"{\"body\":");
        out.extend_from_slice(&self.body);
        out.extend_from_slice(b",\"integrated_time\":");
        out.extend_from_slice(integrated_time.to_string().as_bytes());
        out.extend_from_slice(b",\"kind\":\"");
        out.extend_from_slice(self.kind.as_str().as_bytes());
        out.extend_from_slice(b"\",\"v\":");
        out.extend_from_slice(LEAF_VERSION.to_string().as_bytes());
        out.push(b'}');
        out
    }
}

/// A stored leaf, decoded.
#[derive(Clone, Debug, PartialEq)]
pub struct Leaf {
    /// Entry kind.
    pub kind: EntryKind,
    /// Integrated time, ms since the Unix epoch.
    pub integrated_time: u64,
    /// The body.
    pub body: Value,
}

impl Leaf {
    /// Decodes leaf bytes, checking that they are exactly canonical.
    pub fn decode(leaf: &[u8]) -> Result<(Self, Value), EntryError> {
        let value = canonical::parse_strict(leaf).map_err(|e| EntryError::Json(e.to_string()))?;
        if canonical::to_canonical(&value) != leaf {
            return Err(EntryError::Shape("leaf is not in canonical form".into()));
        }
        let obj = value.as_object().ok_or_else(|| EntryError::Shape("leaf must be an object".into()))?;
        if obj.len() != 4 || obj.get("v").and_then(Value::as_u64) != Some(LEAF_VERSION) {
            return Err(EntryError::Shape("unsupported leaf version".into()));
        }
        let kind_name = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
        let kind = EntryKind::parse(kind_name).ok_or_else(|| EntryError::UnknownKind(kind_name.into()))?;
        let integrated_time =
            obj.get("integrated_time").and_then(Value::as_u64).ok_or_else(|| EntryError::Shape("missing integrated_time".into()))?;
        let body = obj.get("body").filter(|b| b.is_object()).cloned().ok_or_else(|| EntryError::Shape("missing body".into()))?;
        Ok((Self { kind, integrated_time, body }, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_is_canonical_and_decodes() {
        let e = NewEntry::from_json(br#"{"body": {"z": 1, "a": "x"}, "kind": "action"}"#, 1024).unwrap();
        let leaf = e.to_leaf(1_700_000_000_123);
        assert_eq!(
            std::str::from_utf8(&leaf).unwrap(),
            r#"{"body":{"a":"x","z":1},"integrated_time":1700000000123,"kind":"action","v":1}"#
        );
        let (decoded, _) = Leaf::decode(&leaf).unwrap();
        assert_eq!(decoded.kind, EntryKind::Action);
        assert_eq!(decoded.integrated_time, 1_700_000_000_123);
    }

    #[test]
    fn envelope_overhead_is_an_upper_bound() {
        let e = NewEntry::new(EntryKind::Attestation, &serde_json::json!({}), 10).unwrap();
        assert!(e.to_leaf(u64::MAX).len() <= e.body().len() + ENVELOPE_OVERHEAD);
    }

    #[test]
    fn rejections() {
        type Case = (&'static [u8], fn(&EntryError) -> bool);
        let cases: [Case; 9] = [
            (b"[]", |e| matches!(e, EntryError::Shape(_))),
            (b"{\"kind\":\"action\"}", |e| matches!(e, EntryError::Shape(_))),
            (b"{\"body\":{}}", |e| matches!(e, EntryError::Shape(_))),
            (b"{\"kind\":\"nope\",\"body\":{}}", |e| matches!(e, EntryError::UnknownKind(_))),
            (b"{\"kind\":\"token\",\"body\":{}}", |e| matches!(e, EntryError::KindNotWritable(_))),
            (b"{\"kind\":\"action\",\"body\":[]}", |e| matches!(e, EntryError::Shape(_))),
            (b"{\"kind\":\"action\",\"body\":{},\"x\":1}", |e| matches!(e, EntryError::Shape(_))),
            (b"{\"kind\":\"action\",\"body\":{\"a\":1.5}}", |e| matches!(e, EntryError::Json(_))),
            (b"{\"kind\":\"action\",\"body\":{\"a\":\"0123456789\"}}", |e| matches!(e, EntryError::TooLarge { .. })),
        ];
        for (input, check) in cases {
            let err = NewEntry::from_json(input, 12).unwrap_err();
            assert!(check(&err), "{}: {err:?}", String::from_utf8_lossy(input));
        }
    }
}
