//! Agents: passports, agent-signed entries, key rotation and attestation
//! evidence (docs/FORMAT.md, "Agents"). The log checks these before it
//! sequences an entry; `ledger-verify agent` checks them again offline from
//! the entries and their inclusion proofs, with the same code.
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
//! One verification rule everywhere ([`verify_signature`]): RFC 8032
//! Ed25519 as `verify_strict` implements it (canonical `S`, small-order `R`
//! and keys refused), with keys that are not torsion-free refused when they
//! are parsed ([`parse_public_key`]). The server and `ledger-verify` call
//! the same function, so no entry can be accepted by one and refused by the
//! other.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::{Map, Value};

use crate::canonical::write_canonical;
use crate::tpm::{verify_quote, QuoteError};

/// Version of the leaf encoding (the `"v"` member the log adds). Version 2
/// binds agent signatures to the log origin and predicate proofs to their
/// entry; version 1 leaves stay readable and provable, but their agent
/// signatures are not checked by this version (docs/FORMAT.md).
pub const LEAF_VERSION: u64 = 2;

/// Domain separation of agent signatures.
pub const SIGNATURE_CONTEXT: &[u8] = b"agent-ledger/agent-entry/v2\n";

/// Members an agent signature does not cover.
pub const UNSIGNED_MEMBERS: [&str; 6] = ["signature", "new_signature", "integrated_time", "v", "verdict", "openings"];

/// Entry kinds an agent writes (and signs).
pub const AGENT_KINDS: [&str; 3] = ["action", "rotation", "attestation"];

/// Why an agent entry, passport or attestation was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// A member is missing or has the wrong shape.
    #[error("{0}")]
    Shape(String),
    /// The signature does not verify with the agent's current key.
    #[error("agent signature does not verify with the key in force for {agent}")]
    BadSignature {
        /// The agent.
        agent: String,
    },
    /// The sequence number does not increase.
    #[error("sequence number {seq} of {agent} is not above the last accepted, {last}")]
    Replayed {
        /// The agent.
        agent: String,
        /// Submitted.
        seq: u64,
        /// Last accepted.
        last: u64,
    },
    /// The entry's agent differs from the passport's.
    #[error("entry is by {got}, not {expected}")]
    WrongAgent {
        /// The passport's agent.
        expected: String,
        /// The entry's.
        got: String,
    },
    /// The agent was retired before this entry.
    #[error("{0} is retired")]
    Retired(String),
    /// The recorded attestation verdict differs from the recomputed one.
    #[error("attestation verdict in the entry ({recorded}) differs from the evidence ({recomputed})")]
    VerdictMismatch {
        /// In the entry.
        recorded: String,
        /// Recomputed.
        recomputed: String,
    },
    /// A leaf of a format version whose agent signatures this version does
    /// not check.
    #[error("leaf format version {0} is not checked here; agent entries are checked from version 2 on")]
    LeafVersion(u64),
}

fn shape(msg: impl Into<String>) -> AgentError {
    AgentError::Shape(msg.into())
}

/// The bytes an agent signs for `entry` in the log named `origin`:
/// [`signed_message`] of [`signed_body`].
pub fn signing_message(origin: &str, entry: &Map<String, Value>) -> Vec<u8> {
    signed_message(origin, &signed_body(entry))
}

/// JCS of `entry` without the [`UNSIGNED_MEMBERS`]: what a signature covers
/// besides the context and the origin.
pub fn signed_body(entry: &Map<String, Value>) -> Vec<u8> {
    let signed: Map<String, Value> =
        entry.iter().filter(|(k, _)| !UNSIGNED_MEMBERS.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut out = Vec::new();
    write_canonical(&Value::Object(signed), &mut out);
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

/// A required string member.
pub fn string<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<&'a str, AgentError> {
    obj.get(key).and_then(Value::as_str).ok_or_else(|| shape(format!("\"{key}\" must be a string")))
}

/// Decodes a base64 Ed25519 public key, refusing weak keys: a key of small
/// order lets anyone forge signatures that verify under it, and a key with
/// a torsion component verifies differently under cofactored and
/// cofactorless rules. Every agent key (passports, rotations) goes through
/// here.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, AgentError> {
    let bytes = B64.decode(text).map_err(|_| shape("public key must be base64"))?;
    let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| shape("public key must be 32 bytes"))?;
    let key = VerifyingKey::from_bytes(&arr).map_err(|_| shape("public key is not a valid Ed25519 point"))?;
    if key.is_weak() || !key.to_edwards().is_torsion_free() {
        return Err(shape("public key is a weak Ed25519 key (small order or not torsion-free)"));
    }
    Ok(key)
}

/// Decodes a base64 Ed25519 public key the log stored, without the
/// weak-key check: a weak key registered before weak keys were refused
/// still loads (so old data stays readable and the server starts), and the
/// strict verification rule refuses every signature under it. Never for
/// keys that arrive in a request.
pub fn parse_stored_public_key(text: &str) -> Result<VerifyingKey, AgentError> {
    let bytes = B64.decode(text).map_err(|_| shape("public key must be base64"))?;
    let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| shape("public key must be 32 bytes"))?;
    VerifyingKey::from_bytes(&arr).map_err(|_| shape("public key is not a valid Ed25519 point"))
}

/// Decodes a base64 Ed25519 signature.
pub fn parse_signature(text: &str) -> Result<Signature, AgentError> {
    let bytes = B64.decode(text).map_err(|_| shape("signature must be base64"))?;
    Signature::from_slice(&bytes).map_err(|_| shape("signature must be 64 bytes"))
}

/// Decodes a lowercase-hex SHA-256 digest.
pub fn parse_hash(text: &str, what: &str) -> Result<[u8; 32], AgentError> {
    let err = || shape(format!("{what} must be 64 lowercase hex digits"));
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(err());
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
    obj.get("seq").and_then(Value::as_u64).filter(|s| *s >= 1).ok_or_else(|| shape("\"seq\" must be an integer ≥ 1"))
}

/// An agent's passport (the `passport` entry, written by an admin).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Passport {
    /// SPIFFE id.
    pub agent: String,
    /// Ed25519 key the agent signs with.
    pub public_key: VerifyingKey,
    /// SHA-256 of the agent's code.
    pub code_hash: [u8; 32],
    /// SHA-256 of its model weights, if it has one.
    pub model_hash: Option<[u8; 32]>,
    /// Who answers for it.
    pub owner: String,
    /// What it is for.
    pub purpose: String,
    /// TPM attestation key: P-256 SubjectPublicKeyInfo, DER.
    pub tpm_ak: Option<Vec<u8>>,
}

/// Members of a passport entry besides those the log adds.
pub const PASSPORT_MEMBERS: [&str; 8] = ["kind", "agent", "public_key", "code_hash", "model_hash", "owner", "purpose", "tpm_ak"];

impl Passport {
    /// Reads a passport object (submitted, or from a leaf to check), refusing
    /// weak keys ([`parse_public_key`]).
    pub fn from_object(obj: &Map<String, Value>) -> Result<Self, AgentError> {
        Self::parse(obj, true)
    }

    /// Reads a passport as the log stored it, accepting a weak key
    /// registered before weak keys were refused (the strict verification
    /// rule refuses every signature under it), so old data stays readable.
    pub fn from_stored(obj: &Map<String, Value>) -> Result<Self, AgentError> {
        Self::parse(obj, false)
    }

    fn parse(obj: &Map<String, Value>, strict_key: bool) -> Result<Self, AgentError> {
        if let Some(k) = obj.keys().find(|k| !PASSPORT_MEMBERS.contains(&k.as_str()) && !["integrated_time", "v"].contains(&k.as_str())) {
            return Err(shape(format!("unexpected member {k:?} in a passport")));
        }
        let text = |k: &str, max: usize| -> Result<String, AgentError> {
            let s = string(obj, k)?;
            if s.is_empty() || s.chars().count() > max {
                return Err(shape(format!("\"{k}\" must be 1 to {max} characters")));
            }
            Ok(s.to_string())
        };
        let tpm_ak = match obj.get("tpm_ak") {
            None => None,
            Some(v) => {
                let der = v.as_str().and_then(|s| B64.decode(s).ok()).ok_or_else(|| shape("\"tpm_ak\" must be base64 (SPKI DER)"))?;
                <p256::PublicKey as p256::pkcs8::DecodePublicKey>::from_public_key_der(&der)
                    .map_err(|_| shape("\"tpm_ak\" is not a P-256 SubjectPublicKeyInfo"))?;
                Some(der)
            }
        };
        Ok(Self {
            agent: string(obj, "agent")?.to_string(),
            public_key: if strict_key {
                parse_public_key(string(obj, "public_key")?)?
            } else {
                parse_stored_public_key(string(obj, "public_key")?)?
            },
            code_hash: parse_hash(string(obj, "code_hash")?, "\"code_hash\"")?,
            model_hash: obj.get("model_hash").map(|v| parse_hash(v.as_str().unwrap_or_default(), "\"model_hash\"")).transpose()?,
            owner: text("owner", 256)?,
            purpose: text("purpose", 1024)?,
            tpm_ak,
        })
    }

    /// The passport as a JSON object (as stored, before the log's members).
    pub fn to_object(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("kind".into(), Value::from("passport"));
        m.insert("agent".into(), Value::from(self.agent.as_str()));
        m.insert("public_key".into(), Value::from(B64.encode(self.public_key.as_bytes())));
        m.insert("code_hash".into(), Value::from(hex(&self.code_hash)));
        if let Some(h) = &self.model_hash {
            m.insert("model_hash".into(), Value::from(hex(h)));
        }
        m.insert("owner".into(), Value::from(self.owner.as_str()));
        m.insert("purpose".into(), Value::from(self.purpose.as_str()));
        if let Some(ak) = &self.tpm_ak {
            m.insert("tpm_ak".into(), Value::from(B64.encode(ak)));
        }
        m
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    bytes.iter().flat_map(|b| [HEX[usize::from(b >> 4)] as char, HEX[usize::from(b & 15)] as char]).collect()
}

/// Checks an attestation's measurements and evidence against a passport;
/// returns the reasons it fails (empty: it passes). The nonce is the
/// attestation's own (its freshness is the log's to check); `agent_key` is
/// the agent's Ed25519 key in force, to which a TPM quote must be bound
/// ([`crate::tpm::qualifying_data`]).
///
/// A passport with a TPM attestation key accepts only TPM evidence:
/// software evidence from such an agent is a downgrade (whoever holds the
/// Ed25519 key could otherwise attest without the TPM) and fails with a
/// reason starting `"downgrade:"`. The AK's provenance (EK certificate,
/// credential activation) is not checked: the admin vouches for it by
/// registering the passport.
pub fn attestation_failures(att: &Map<String, Value>, passport: &Passport, agent_key: &VerifyingKey) -> Vec<String> {
    let mut reasons = Vec::new();
    match att.get("code_hash").and_then(Value::as_str).map(|t| parse_hash(t, "code_hash")) {
        Some(Ok(h)) if h == passport.code_hash => {}
        Some(Ok(_)) => reasons.push("code_hash differs from the passport".to_string()),
        _ => reasons.push("code_hash is missing or malformed".to_string()),
    }
    match (att.get("model_hash").and_then(Value::as_str), &passport.model_hash) {
        (None, None) => {}
        (Some(t), Some(expected)) if parse_hash(t, "model_hash").ok().as_ref() == Some(expected) => {}
        (None, Some(_)) => reasons.push("model_hash is missing; the passport has one".to_string()),
        _ => reasons.push("model_hash differs from the passport".to_string()),
    }
    let evidence = att.get("evidence").and_then(Value::as_object);
    match (evidence.and_then(|e| e.get("type")).and_then(Value::as_str), &passport.tpm_ak) {
        // The agent's Ed25519 signature over the entry is the evidence; the
        // log has verified it before this check runs.
        (Some("software"), None) => {}
        (Some("software"), Some(_)) => {
            reasons.push("downgrade: software evidence, but the passport has a TPM attestation key".to_string());
        }
        (Some("tpm"), None) => reasons.push("TPM evidence, but the passport has no attestation key".to_string()),
        (Some("tpm"), Some(ak)) => {
            let nonce: Option<[u8; 32]> =
                att.get("nonce").and_then(Value::as_str).and_then(|n| B64.decode(n).ok()).and_then(|n| n.as_slice().try_into().ok());
            let field = |k: &str| evidence.and_then(|e| e.get(k)).and_then(Value::as_str).and_then(|s| B64.decode(s).ok());
            match (nonce, field("quote"), field("signature")) {
                (None, _, _) => reasons.push("nonce must be the base64 of 32 bytes".to_string()),
                (Some(nonce), Some(quote), Some(sig)) => {
                    let expected = crate::tpm::qualifying_data(&nonce, agent_key.as_bytes(), att);
                    if let Err(e) = verify_quote(ak, &quote, &sig, &expected, &passport.code_hash) {
                        reasons.push(quote_reason(&e));
                    }
                }
                _ => reasons.push("TPM evidence needs base64 \"quote\" and \"signature\"".to_string()),
            }
        }
        _ => reasons.push("evidence type must be \"software\" or \"tpm\"".to_string()),
    }
    reasons
}

fn quote_reason(e: &QuoteError) -> String {
    format!("tpm: {e}")
}

/// The verdict object recorded with an attestation (members in RFC 8785
/// order): `{"evidence":"software"|"tpm"|"none","ok":…,"reasons":[…]}`.
/// `evidence` is the type the attestation presented ("none" when it is
/// missing or unknown), so a trust view can weigh a passing TPM quote above
/// a passing software attestation; `ok` says whether it held.
pub fn verdict(att: &Map<String, Value>, reasons: &[String]) -> Value {
    let evidence = match att.get("evidence").and_then(|e| e.get("type")).and_then(Value::as_str) {
        Some("software") => "software",
        Some("tpm") => "tpm",
        _ => "none",
    };
    let mut m = Map::new();
    m.insert("evidence".into(), Value::from(evidence));
    m.insert("ok".into(), Value::Bool(reasons.is_empty()));
    m.insert("reasons".into(), Value::Array(reasons.iter().map(|r| Value::from(r.as_str())).collect()));
    Value::Object(m)
}

/// What an offline check established about one entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Checked {
    /// A passport: the chain starts here.
    Passport,
    /// A key rotation, signed by the old and the new key.
    Rotation,
    /// A retirement.
    Retirement,
    /// An agent entry whose signature verified with the key in force.
    Signed {
        /// Its kind.
        kind: String,
        /// Its sequence number.
        seq: u64,
    },
}

/// An agent's key history, replayed entry by entry (offline auditors).
#[derive(Clone, Debug)]
pub struct AgentChain {
    origin: String,
    passport: Passport,
    key: VerifyingKey,
    retired: bool,
    last_seq: u64,
}

impl AgentChain {
    /// Starts from a passport leaf of the log named `origin`.
    pub fn new(origin: &str, passport_leaf: &Map<String, Value>) -> Result<Self, AgentError> {
        if passport_leaf.get("kind").and_then(Value::as_str) != Some("passport") {
            return Err(shape("the first entry of a chain must be a passport"));
        }
        let passport = Passport::from_object(passport_leaf)?;
        Ok(Self { origin: origin.to_string(), key: passport.public_key, passport, retired: false, last_seq: 0 })
    }

    /// The passport.
    pub fn passport(&self) -> &Passport {
        &self.passport
    }

    /// The key in force now.
    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }

    /// Applies the next entry of this agent (in index order).
    pub fn apply(&mut self, leaf: &Map<String, Value>) -> Result<Checked, AgentError> {
        let agent = string(leaf, "agent")?;
        if agent != self.passport.agent {
            return Err(AgentError::WrongAgent { expected: self.passport.agent.clone(), got: agent.to_string() });
        }
        let version = leaf.get("v").and_then(Value::as_u64).unwrap_or(LEAF_VERSION);
        if version != LEAF_VERSION {
            return Err(AgentError::LeafVersion(version));
        }
        let kind = string(leaf, "kind")?;
        if kind == "retirement" {
            self.retired = true;
            return Ok(Checked::Retirement);
        }
        if self.retired {
            return Err(AgentError::Retired(agent.to_string()));
        }
        if !AGENT_KINDS.contains(&kind) {
            return Err(shape(format!("kind {kind:?} is not part of an agent's chain")));
        }
        let seq = parse_seq(leaf)?;
        if seq <= self.last_seq {
            return Err(AgentError::Replayed { agent: agent.to_string(), seq, last: self.last_seq });
        }
        let signature = parse_signature(string(leaf, "signature")?)?;
        let message = signing_message(&self.origin, leaf);
        let bad = || AgentError::BadSignature { agent: agent.to_string() };
        // Every signature covers the leaf as stored (hidden fields as
        // commitments), so any signature that fails is a forgery.
        if !verify_signature(&self.key, &message, &signature) {
            return Err(bad());
        }
        let checked = match kind {
            "rotation" => {
                let new_key = parse_public_key(string(leaf, "new_public_key")?)?;
                let new_sig = parse_signature(string(leaf, "new_signature")?)?;
                if !verify_signature(&new_key, &message, &new_sig) {
                    return Err(bad());
                }
                self.key = new_key;
                Checked::Rotation
            }
            "attestation" => {
                let recomputed = verdict(leaf, &attestation_failures(leaf, &self.passport, &self.key));
                let recorded = leaf.get("verdict").cloned().unwrap_or(Value::Null);
                if recorded != recomputed {
                    return Err(AgentError::VerdictMismatch { recorded: recorded.to_string(), recomputed: recomputed.to_string() });
                }
                Checked::Signed { kind: kind.to_string(), seq }
            }
            _ => Checked::Signed { kind: kind.to_string(), seq },
        };
        self.last_seq = seq;
        Ok(checked)
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
    m.insert("kind".into(), Value::from("rotation"));
    m.insert("agent".into(), Value::from(agent));
    m.insert("new_public_key".into(), Value::from(B64.encode(new.verifying_key().as_bytes())));
    m.insert("seq".into(), Value::from(seq));
    let message = signing_message(origin, &m);
    m.insert("signature".into(), Value::from(B64.encode(old.sign(&message).to_bytes())));
    m.insert("new_signature".into(), Value::from(B64.encode(new.sign(&message).to_bytes())));
    m
}

/// Domain separation of agent-signed HTTP requests (a nonce draw, an agent
/// asking for a disclosure of its own entry). v2 added the log origin and
/// the agent id, so a request signed for one log or as one agent verifies
/// nowhere else.
pub const REQUEST_CONTEXT: &[u8] = b"agent-ledger/agent-request/v2\n";

/// The bytes an agent signs to authenticate a request:
/// `REQUEST_CONTEXT ‖ origin ‖ "\n" ‖ agent ‖ "\n" ‖ method ‖ "\n" ‖ path ‖ "\n" ‖
/// timestamp (ms, decimal) ‖ "\n" ‖ hex(SHA-256(body))`, where `origin` is
/// the log's checkpoint origin and `agent` the `x-agent-id` header. No
/// field can hold a newline (origins are checkpoint lines, the others HTTP
/// header values and paths), so the fields cannot shift into each other.
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
