//! The `policy` entry: the trust policy in force from this entry on
//! (docs/TRUST.md). The log appends one whenever the policy it runs with
//! differs from the one in force (at start, or on `PUT /v1/policy`); every
//! fold applies each entry under the policy in force at its index.

use alloc::string::String;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::error::{EntryError, ShapeError};
use super::members::only_members;
use super::signing::{hex, parse_hash};
use super::EntryKind;
use crate::canonical::to_canonical;

/// Members of a policy entry.
pub const MEMBERS: [&str; 3] = ["kind", "policy", "sha256"];

/// The policy in force from this entry on, with the SHA-256 of its
/// canonical JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyEntry {
    /// The policy object (canonical JSON once written).
    pub policy: Map<String, Value>,
    /// SHA-256 of the policy's RFC 8785 canonical JSON.
    pub sha256: [u8; 32],
}

impl PolicyEntry {
    /// A policy entry for `policy`.
    pub fn new(policy: Map<String, Value>) -> Self {
        let sha256 = Sha256::digest(to_canonical(&Value::Object(policy.clone()))).into();
        Self { policy, sha256 }
    }

    /// The entry's object (as stored, before the log's members).
    pub fn to_object(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("kind".into(), Value::from(EntryKind::Policy.as_str()));
        m.insert("policy".into(), Value::Object(self.policy.clone()));
        m.insert("sha256".into(), Value::from(hex(&self.sha256)));
        m
    }

    pub(super) fn from_object(obj: &Map<String, Value>) -> Result<Self, EntryError> {
        only_members(obj, EntryKind::Policy, &MEMBERS)?;
        let policy = match obj.get("policy") {
            Some(Value::Object(p)) => p.clone(),
            Some(_) => return Err(ShapeError::NotAnObjectMember("policy").into()),
            None => return Err(ShapeError::Missing("policy").into()),
        };
        let sha256 = parse_hash(obj.get("sha256").and_then(Value::as_str).ok_or(ShapeError::NotAString("sha256"))?, "\"sha256\"")?;
        let entry = Self::new(policy);
        if entry.sha256 != sha256 {
            return Err(ShapeError::PolicyHash.into());
        }
        Ok(entry)
    }
}
