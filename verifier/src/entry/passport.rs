//! The `passport` entry: an agent's registration, written by an admin.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::VerifyingKey;
use serde_json::{Map, Value};

use super::error::{AgentError, EntryError};
use super::members::string;
use super::signing::{hex, parse_hash, parse_public_key, parse_stored_public_key};
use super::EntryKind;
use crate::agent_id::AgentId;

/// An agent's passport (the `passport` entry, written by an admin).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Passport {
    /// The agent (checked by [`Passport::from_object`]; taken as stored by
    /// [`Passport::from_stored`]).
    pub agent: AgentId,
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

/// Longest `owner`, in characters.
pub const MAX_OWNER_CHARS: usize = 256;
/// Longest `purpose`, in characters.
pub const MAX_PURPOSE_CHARS: usize = 1024;

impl Passport {
    /// Reads a passport object (submitted, or from a leaf to check), refusing
    /// weak keys ([`parse_public_key`]) with [`EntryError::Agent`], and
    /// checking the agent id last ([`EntryError::AgentId`]).
    pub fn from_object(obj: &Map<String, Value>) -> Result<Self, EntryError> {
        let mut passport = Self::parse(obj, true)?;
        passport.agent =
            AgentId::parse(passport.agent.as_str()).map_err(|reason| EntryError::AgentId { id: passport.agent.as_str().into(), reason })?;
        Ok(passport)
    }

    /// Reads a passport as the log stored it, accepting a weak key
    /// registered before weak keys were refused (the strict verification
    /// rule refuses every signature under it), so old data stays readable;
    /// the agent id is taken as stored ([`AgentId::from_stored_unchecked`]).
    pub fn from_stored(obj: &Map<String, Value>) -> Result<Self, AgentError> {
        Self::parse(obj, false)
    }

    /// Reads the members, the agent id as stored.
    fn parse(obj: &Map<String, Value>, strict_key: bool) -> Result<Self, AgentError> {
        if let Some(k) = obj.keys().find(|k| !PASSPORT_MEMBERS.contains(&k.as_str()) && !["integrated_time", "v"].contains(&k.as_str())) {
            return Err(AgentError::PassportMember(k.clone()));
        }
        let text = |member: &'static str, max: usize| -> Result<String, AgentError> {
            let s = string(obj, member)?;
            if s.is_empty() || s.chars().count() > max {
                return Err(AgentError::TextLength { member, max });
            }
            Ok(s.to_string())
        };
        let tpm_ak = match obj.get("tpm_ak") {
            None => None,
            Some(v) => {
                let der = v.as_str().and_then(|s| B64.decode(s).ok()).ok_or(AgentError::TpmAkEncoding)?;
                <p256::PublicKey as p256::pkcs8::DecodePublicKey>::from_public_key_der(&der).map_err(|_| AgentError::TpmAkKey)?;
                Some(der)
            }
        };
        Ok(Self {
            agent: AgentId::from_stored_unchecked(string(obj, "agent")?),
            public_key: if strict_key {
                parse_public_key(string(obj, "public_key")?)?
            } else {
                parse_stored_public_key(string(obj, "public_key")?)?
            },
            code_hash: parse_hash(string(obj, "code_hash")?, "\"code_hash\"")?,
            model_hash: obj.get("model_hash").map(|v| parse_hash(v.as_str().unwrap_or_default(), "\"model_hash\"")).transpose()?,
            owner: text("owner", MAX_OWNER_CHARS)?,
            purpose: text("purpose", MAX_PURPOSE_CHARS)?,
            tpm_ak,
        })
    }

    /// The passport as a JSON object (as stored, before the log's members).
    pub fn to_object(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("kind".into(), Value::from(EntryKind::Passport.as_str()));
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
