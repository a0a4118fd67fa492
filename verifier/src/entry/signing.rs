//! What agents sign, and the one rule that checks it (docs/FORMAT.md,
//! "Agents").
//!
//! An agent signs, with Ed25519, `SIGNATURE_CONTEXT ‖ origin ‖ "\n" ‖
//! JCS(entry)` where `origin` is the log's origin (so an entry signed for
//! one log cannot be replayed into another with the same key) and `entry`
//! is the object as it is stored in the leaf without the members in
//! [`UNSIGNED_MEMBERS`] (the signatures themselves, and what the log adds).
//! A signature therefore never covers a hidden value in the clear: hidden
//! fields are committed before signing, and every stored signature verifies
//! offline. Every agent-written entry carries the agent id and a per-agent
//! sequence number `seq` that must strictly increase.
//!
//! Agent-signed HTTP requests (a nonce draw, a disclosure of the agent's
//! own entry, a hidden-value commit) sign [`request_message`] and carry it
//! in the headers [`HEADER_AGENT_ID`], [`HEADER_AGENT_TIMESTAMP`] and
//! [`HEADER_AGENT_SIGNATURE`].
//!
//! One verification rule everywhere ([`verify_signature`]): RFC 8032
//! Ed25519 as `verify_strict` implements it (canonical `S`, small-order `R`
//! and keys refused), with keys that are not torsion-free refused when they
//! are parsed ([`parse_public_key`]). The server and `ledger-verify` call
//! the same function, so no entry can be accepted by one and refused by the
//! other.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::{Map, Value};

use super::error::AgentError;
use super::members::string;
use super::EntryKind;
use crate::canonical::write_canonical_object;

/// Domain separation of agent signatures.
pub const SIGNATURE_CONTEXT: &[u8] = b"agent-ledger/agent-entry/v2\n";

/// Members an agent signature does not cover.
pub const UNSIGNED_MEMBERS: [&str; 6] = ["signature", "new_signature", "integrated_time", "v", "verdict", "openings"];

/// Domain separation of agent-signed HTTP requests. v2 added the log origin
/// and the agent id, so a request signed for one log or as one agent
/// verifies nowhere else.
pub const REQUEST_CONTEXT: &[u8] = b"agent-ledger/agent-request/v2\n";

/// Header of a signed request: the agent's id.
pub const HEADER_AGENT_ID: &str = "x-agent-id";
/// Header of a signed request: its timestamp, ms since the Unix epoch.
pub const HEADER_AGENT_TIMESTAMP: &str = "x-agent-timestamp";
/// Header of a signed request: base64 Ed25519 signature over [`request_message`].
pub const HEADER_AGENT_SIGNATURE: &str = "x-agent-signature";

/// The bytes an agent signs for `entry` in the log named `origin`:
/// [`signed_message`] of [`signed_body`].
pub fn signing_message(origin: &str, entry: &Map<String, Value>) -> Vec<u8> {
    signed_message(origin, &signed_body(entry))
}

/// JCS of `entry` without the [`UNSIGNED_MEMBERS`]: what a signature covers
/// besides the context and the origin.
pub fn signed_body(entry: &Map<String, Value>) -> Vec<u8> {
    let mut out = Vec::new();
    write_canonical_object(entry.iter().filter(|(k, _)| !UNSIGNED_MEMBERS.contains(&k.as_str())), &mut out);
    out
}

/// `SIGNATURE_CONTEXT ‖ origin ‖ "\n" ‖ body`.
pub fn signed_message(origin: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(SIGNATURE_CONTEXT.len() + origin.len() + 1 + body.len());
    out.extend_from_slice(SIGNATURE_CONTEXT);
    out.extend_from_slice(origin.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

/// The one signature rule of the ledger (entries, rotations, signed
/// requests; server and offline tools alike).
pub fn verify_signature(key: &VerifyingKey, message: &[u8], signature: &Signature) -> bool {
    key.verify_strict(message, signature).is_ok()
}

/// Whether a key is refused for new registrations and rotations: a key of
/// small order lets anyone forge signatures that verify under it, and a key
/// with a torsion component verifies differently under cofactored and
/// cofactorless rules.
pub fn is_weak_key(key: &VerifyingKey) -> bool {
    key.is_weak() || !key.to_edwards().is_torsion_free()
}

/// Decodes a base64 Ed25519 public key, refusing weak keys
/// ([`is_weak_key`]). Every agent key that arrives in a request
/// (passports, rotations) goes through here.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, AgentError> {
    let key = parse_stored_public_key(text)?;
    if is_weak_key(&key) {
        return Err(AgentError::WeakKey);
    }
    Ok(key)
}

/// Decodes a base64 Ed25519 public key the log stored, without the
/// weak-key check: a weak key registered before weak keys were refused
/// still loads (so old data stays readable and the server starts), and the
/// strict verification rule refuses every signature under it. Never for
/// keys that arrive in a request.
pub fn parse_stored_public_key(text: &str) -> Result<VerifyingKey, AgentError> {
    let bytes = B64.decode(text).map_err(|_| AgentError::KeyNotBase64)?;
    let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| AgentError::KeyLength)?;
    VerifyingKey::from_bytes(&arr).map_err(|_| AgentError::KeyNotAPoint)
}

/// Decodes a base64 Ed25519 signature.
pub fn parse_signature(text: &str) -> Result<Signature, AgentError> {
    let bytes = B64.decode(text).map_err(|_| AgentError::SignatureNotBase64)?;
    Signature::from_slice(&bytes).map_err(|_| AgentError::SignatureLength)
}

/// Decodes a lowercase-hex SHA-256 digest; `what` names it in the error.
pub fn parse_hash(text: &str, what: &'static str) -> Result<[u8; 32], AgentError> {
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(AgentError::Hash(what));
    }
    let mut out = [0u8; 32];
    for (i, pair) in text.as_bytes().chunks(2).enumerate() {
        let hex = |c: u8| if c.is_ascii_digit() { c - b'0' } else { c - b'a' + 10 };
        out[i] = hex(pair[0]) << 4 | hex(pair[1]);
    }
    Ok(out)
}

/// The sequence number of an agent entry.
pub fn parse_seq(obj: &Map<String, Value>) -> Result<u64, AgentError> {
    obj.get("seq").and_then(Value::as_u64).filter(|s| *s >= 1).ok_or(AgentError::Seq)
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    bytes.iter().flat_map(|b| [HEX[usize::from(b >> 4)] as char, HEX[usize::from(b & 15)] as char]).collect()
}

/// An agent's signature over one entry: its sequence number, the signature
/// and the signed body ([`signed_body`]; the message adds the context and
/// the log's origin, [`AgentSignature::message`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentSignature {
    /// The agent's sequence number for this entry (≥ 1).
    pub seq: u64,
    /// The signature.
    pub signature: Signature,
    /// The signed body.
    pub body: Vec<u8>,
}

impl AgentSignature {
    /// Reads `seq` and `signature` from an entry object.
    pub fn from_object(obj: &Map<String, Value>) -> Result<Self, AgentError> {
        let seq = parse_seq(obj)?;
        let signature = parse_signature(string(obj, "signature")?)?;
        Ok(Self { seq, signature, body: signed_body(obj) })
    }

    /// The signed message in the log named `origin`.
    pub fn message(&self, origin: &str) -> Vec<u8> {
        signed_message(origin, &self.body)
    }
}

/// An agent-signed entry as every signature check sees it, owned: the
/// signed body, the sequence number, the signature and, for a rotation,
/// the new key with its signature over the same message. The log's
/// admission ([`crate::fold::registry`] through `ledger-core`'s
/// `EntryAuth`) and the offline fold check entries through it alike.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedEntry {
    /// The signed body ([`signed_body`]).
    pub body: Vec<u8>,
    /// The agent's sequence number for this entry (≥ 1).
    pub seq: u64,
    /// The signature with the key in force.
    pub signature: Signature,
    /// For a rotation: the key it hands over to, and that key's signature
    /// over the same message.
    pub new_key: Option<(VerifyingKey, Signature)>,
}

impl SignedEntry {
    /// An entry's signature, and for a rotation its new key and new-key
    /// signature.
    pub fn new(signature: &AgentSignature, new_key: Option<(VerifyingKey, Signature)>) -> Self {
        Self { body: signature.body.clone(), seq: signature.seq, signature: signature.signature, new_key }
    }

    /// The signed message in the log named `origin`.
    pub fn message(&self, origin: &str) -> Vec<u8> {
        signed_message(origin, &self.body)
    }

    /// Whether the signature verifies with `key`, and a rotation's new-key
    /// signature with its new key, in the log named `origin`
    /// ([`verify_signature`]).
    pub fn verify(&self, origin: &str, key: &VerifyingKey) -> bool {
        let message = self.message(origin);
        verify_signature(key, &message, &self.signature)
            && self.new_key.as_ref().is_none_or(|(new_key, new_sig)| verify_signature(new_key, &message, new_sig))
    }
}

/// Signs an agent entry for the log named `origin`, in place: sets
/// `signature` over [`signing_message`] (the entry must already hold
/// `agent` and `seq`, and hidden fields in committed form).
pub fn sign_entry(entry: &mut Map<String, Value>, origin: &str, key: &ed25519_dalek::SigningKey) {
    use ed25519_dalek::Signer as _;
    entry.remove("signature");
    let signature = key.sign(&signing_message(origin, entry));
    entry.insert("signature".into(), Value::from(B64.encode(signature.to_bytes())));
}

/// Builds a rotation entry from `old` to `new` for the log named `origin`,
/// signed by both.
pub fn rotation(
    origin: &str,
    agent: &str,
    seq: u64,
    old: &ed25519_dalek::SigningKey,
    new: &ed25519_dalek::SigningKey,
) -> Map<String, Value> {
    use ed25519_dalek::Signer as _;
    let mut m = Map::new();
    m.insert("kind".into(), Value::from(EntryKind::Rotation.as_str()));
    m.insert("agent".into(), Value::from(agent));
    m.insert("new_public_key".into(), Value::from(B64.encode(new.verifying_key().as_bytes())));
    m.insert("seq".into(), Value::from(seq));
    let message = signing_message(origin, &m);
    m.insert("signature".into(), Value::from(B64.encode(old.sign(&message).to_bytes())));
    m.insert("new_signature".into(), Value::from(B64.encode(new.sign(&message).to_bytes())));
    m
}

/// The bytes an agent signs to authenticate a request:
/// `REQUEST_CONTEXT ‖ origin ‖ "\n" ‖ agent ‖ "\n" ‖ method ‖ "\n" ‖ path ‖ "\n" ‖
/// timestamp (ms, decimal) ‖ "\n" ‖ hex(SHA-256(body))`, where `origin` is
/// the log's checkpoint origin and `agent` the [`HEADER_AGENT_ID`] header.
/// No field can hold a newline (origins are checkpoint lines, the others
/// HTTP header values and paths), so the fields cannot shift into each
/// other.
pub fn request_message(origin: &str, agent: &str, method: &str, path: &str, timestamp_ms: u64, body: &[u8]) -> Vec<u8> {
    use sha2::Digest as _;
    let mut out = REQUEST_CONTEXT.to_vec();
    for field in [origin, agent, method, path] {
        out.extend_from_slice(field.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(timestamp_ms.to_string().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(hex(&sha2::Sha256::digest(body)).as_bytes());
    out
}
