//! The `rotation` entry: an agent hands over to a new key, signed by the
//! old key (in force) and the new one over the same message.

use alloc::string::String;

use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::{Map, Value};

use super::error::EntryError;
use super::members::{only_members, string};
use super::signing::{parse_public_key, parse_signature, parse_stored_public_key, AgentSignature};
use super::{EntryKind, Form};
use crate::agent_id::AgentId;

/// Members of a rotation.
pub const MEMBERS: [&str; 6] = ["kind", "agent", "new_public_key", "seq", "signature", "new_signature"];

/// A key rotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// The agent.
    pub agent: AgentId,
    /// Its signature with the key in force (not decoded in [`Form::Leaf`]).
    pub signature: Option<AgentSignature>,
    /// The key it hands over to.
    pub new_key: VerifyingKey,
    /// The new key's signature over the same message (not decoded in
    /// [`Form::Leaf`]).
    pub new_signature: Option<Signature>,
}

impl Rotation {
    pub(super) fn from_object(obj: &Map<String, Value>, agent: AgentId, form: Form) -> Result<Self, EntryError> {
        only_members(obj, EntryKind::Rotation, &MEMBERS)?;
        let signature = form.reads_signatures().then(|| AgentSignature::from_object(obj)).transpose()?;
        let key = string(obj, "new_public_key")?;
        // A stored rotation is read even if its key is weak by today's
        // rules; the registry refuses to hand over to it.
        let new_key = match form {
            Form::Submitted => parse_public_key(key)?,
            Form::Leaf | Form::Audit => parse_stored_public_key(key)?,
        };
        let new_signature = form.reads_signatures().then(|| parse_signature(string(obj, "new_signature")?)).transpose()?;
        Ok(Self { agent, signature, new_key, new_signature })
    }
}
