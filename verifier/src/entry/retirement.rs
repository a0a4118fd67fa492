//! The `retirement` entry: an admin takes an agent out of service; its
//! later entries are refused.

use alloc::string::{String, ToString};

use serde_json::{Map, Value};

use super::error::EntryError;
use super::members::{only_members, required_string};
use super::EntryKind;
use crate::agent_id::AgentId;

/// Members of a retirement.
pub const MEMBERS: [&str; 3] = ["kind", "agent", "reason"];

/// Longest `reason`, in characters.
pub const MAX_REASON_CHARS: usize = 1024;

/// An agent taken out of service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retirement {
    /// The agent.
    pub agent: AgentId,
    /// Why.
    pub reason: String,
}

impl Retirement {
    /// The retirement entry's object (as stored, before the log's members).
    pub fn to_object(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("kind".into(), Value::from(EntryKind::Retirement.as_str()));
        m.insert("agent".into(), Value::from(self.agent.as_str()));
        m.insert("reason".into(), Value::from(self.reason.as_str()));
        m
    }

    pub(super) fn from_object(obj: &Map<String, Value>, agent: AgentId) -> Result<Self, EntryError> {
        only_members(obj, EntryKind::Retirement, &MEMBERS)?;
        let reason = required_string(obj, "reason", MAX_REASON_CHARS)?.to_string();
        Ok(Self { agent, reason })
    }
}
