//! The `attestation` entry: an agent's self-attestation (measurements and
//! evidence, signed by the agent) and the verdict the log recorded on it
//! ([`attestation_failures`], [`verdict`]: recomputed offline from the
//! leaf and the passport).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::VerifyingKey;
use serde_json::{Map, Value};

use super::error::{AttestationPart, EntryError, ShapeError};
use super::members::{required_string, string};
use super::passport::Passport;
use super::signing::{parse_hash, AgentSignature};
use super::EntryKind;
use crate::agent_id::AgentId;
use crate::tpm::{verify_quote, QuoteError};

/// Bytes of a nonce.
pub const NONCE_LEN: usize = 32;

/// Members of a submitted attestation (`verdict` only in a leaf).
pub const ATTESTATION_MEMBERS: [&str; 11] =
    ["kind", "agent", "nonce", "code_hash", "model_hash", "runtime", "behaviour", "evidence", "seq", "signature", "verdict"];

/// An attestation, as signed by its agent, with the log's verdict once
/// stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Attestation {
    /// The attesting agent.
    pub agent: AgentId,
    /// Its signature (not decoded in [`super::Form::Leaf`]).
    pub signature: Option<AgentSignature>,
    /// The attestation's members (what [`attestation_failures`] reads).
    pub members: Map<String, Value>,
}

impl Attestation {
    /// The verdict the log recorded (leaves only).
    pub fn verdict(&self) -> Option<&Value> {
        self.members.get("verdict")
    }

    /// Whether the recorded verdict says the attestation held (leaves
    /// only; `false` without a verdict).
    pub fn held(&self) -> bool {
        self.verdict().and_then(|v| v.get("ok")).and_then(Value::as_bool).unwrap_or(false)
    }

    /// The evidence type the recorded verdict names: `software`, `tpm` or
    /// `none` ([`verdict`]; leaves only).
    pub fn evidence_type(&self) -> Option<&str> {
        self.verdict().and_then(|v| v.get("evidence")).and_then(Value::as_str)
    }
}

impl Attestation {
    /// Reads an attestation as an agent submits it (`POST
    /// /v1/attestations`, not `POST /v1/entries`, which refuses the kind):
    /// an object of kind `attestation`, its shape without a verdict
    /// ([`check_shape`]), the agent id, then `seq` and `signature`.
    pub fn from_submitted(value: &Value) -> Result<Self, EntryError> {
        let obj = value.as_object().ok_or(ShapeError::AttestationNotAnObject)?;
        if obj.get("kind").and_then(Value::as_str) != Some(EntryKind::Attestation.as_str()) {
            return Err(ShapeError::NotAnAttestation.into());
        }
        check_shape(obj, false)?;
        let id = string(obj, "agent").map_err(EntryError::Agent)?;
        let agent = AgentId::parse(id).map_err(|reason| EntryError::AgentId { id: id.into(), reason })?;
        let signature = Some(AgentSignature::from_object(obj)?);
        Ok(Self { agent, signature, members: obj.clone() })
    }
}

/// Checks an attestation's shape; `leaf` allows (and requires) the log's
/// `verdict`.
pub fn check_shape(obj: &Map<String, Value>, leaf: bool) -> Result<(), EntryError> {
    if let Some(k) = obj.keys().find(|k| !ATTESTATION_MEMBERS.contains(&k.as_str()) || (!leaf && k.as_str() == "verdict")) {
        return Err(ShapeError::UnexpectedIn { member: k.clone(), within: AttestationPart::Attestation }.into());
    }
    let nonce = obj.get("nonce").and_then(Value::as_str).and_then(|n| B64.decode(n).ok());
    if nonce.is_none_or(|n| n.len() != NONCE_LEN) {
        return Err(ShapeError::Nonce.into());
    }
    required_string(obj, "code_hash", 64)?;
    if obj.contains_key("model_hash") {
        required_string(obj, "model_hash", 64)?;
    }
    let runtime = obj.get("runtime").and_then(Value::as_object).ok_or(ShapeError::NotAnObjectMember("runtime"))?;
    if let Some(k) = runtime.keys().find(|k| !["os", "version", "image_digest"].contains(&k.as_str())) {
        return Err(ShapeError::UnexpectedIn { member: k.clone(), within: AttestationPart::Runtime }.into());
    }
    for k in ["os", "version", "image_digest"] {
        required_string(runtime, k, 256)?;
    }
    let behaviour = obj.get("behaviour").and_then(Value::as_object).ok_or(ShapeError::NotAnObjectMember("behaviour"))?;
    if let Some(k) = behaviour.keys().find(|k| !["digest", "calls", "distinct"].contains(&k.as_str())) {
        return Err(ShapeError::UnexpectedIn { member: k.clone(), within: AttestationPart::Behaviour }.into());
    }
    parse_hash(behaviour.get("digest").and_then(Value::as_str).unwrap_or_default(), "\"behaviour.digest\"")?;
    for (k, name) in [("calls", "behaviour.calls"), ("distinct", "behaviour.distinct")] {
        behaviour.get(k).and_then(Value::as_u64).ok_or(ShapeError::NotAnInteger(name))?;
    }
    let evidence = obj.get("evidence").and_then(Value::as_object).ok_or(ShapeError::NotAnObjectMember("evidence"))?;
    match evidence.get("type").and_then(Value::as_str) {
        Some("software") if evidence.len() == 1 => {}
        Some("tpm") if evidence.len() == 3 => {
            for (k, name) in [("quote", "evidence.quote"), ("signature", "evidence.signature")] {
                let ok = evidence.get(k).and_then(Value::as_str).is_some_and(|s| s.len() <= 4096 && B64.decode(s).is_ok());
                if !ok {
                    return Err(ShapeError::EvidenceBlob(name).into());
                }
            }
        }
        _ => return Err(ShapeError::Evidence.into()),
    }
    if leaf && !obj.get("verdict").is_some_and(Value::is_object) {
        return Err(ShapeError::MissingVerdict.into());
    }
    Ok(())
}

/// Checks an attestation's measurements and evidence against a passport;
/// returns the reasons it fails (empty: it passes). The nonce is the
/// attestation's own (its freshness is the log's to check); `agent_key` is
/// the agent's Ed25519 key in force, to which a TPM quote must be bound
/// ([`crate::tpm::qualifying_data`]). The reasons are recorded in the leaf
/// ([`verdict`]), so their text is part of the format.
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
