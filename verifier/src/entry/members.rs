//! Reading an entry object's members: the string limits, the allowed
//! members of a kind and the agent id, checked the same way for every
//! kind.

use alloc::string::String;

use serde_json::{Map, Value};

use super::error::{AgentError, EntryError, Members, ShapeError};
use super::{EntryKind, Form};
use crate::agent_id::{AgentId, MAX_SPIFFE_ID_BYTES};

/// A required string member (agent members: keys, signatures, digests).
pub fn string<'a>(obj: &'a Map<String, Value>, key: &'static str) -> Result<&'a str, AgentError> {
    obj.get(key).and_then(Value::as_str).ok_or(AgentError::NotAString(key))
}

/// A required, non-empty string member of at most `max` characters.
pub fn required_string<'a>(obj: &'a Map<String, Value>, key: &'static str, max: usize) -> Result<&'a str, ShapeError> {
    match obj.get(key) {
        Some(Value::String(s)) if s.is_empty() => Err(ShapeError::Empty(key)),
        Some(Value::String(s)) if s.chars().count() > max => Err(ShapeError::TooLong { member: key, max }),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ShapeError::NotAString(key)),
        None => Err(ShapeError::Missing(key)),
    }
}

/// Refuses members outside `allowed`.
pub fn only_members(obj: &Map<String, Value>, kind: EntryKind, allowed: &'static [&'static str]) -> Result<(), ShapeError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(extra) => Err(ShapeError::UnexpectedMember { member: extra.clone(), kind, allowed: Members(allowed) }),
        None => Ok(()),
    }
}

/// The `agent` member, a SPIFFE agent id (taken as stored in
/// [`Form::Audit`]).
pub fn agent(obj: &Map<String, Value>, form: Form) -> Result<AgentId, EntryError> {
    if form == Form::Audit {
        return match obj.get("agent") {
            Some(Value::String(s)) => Ok(AgentId::from_stored_unchecked(s)),
            Some(_) => Err(ShapeError::NotAString("agent").into()),
            None => Err(ShapeError::Missing("agent").into()),
        };
    }
    let agent = required_string(obj, "agent", MAX_SPIFFE_ID_BYTES)?;
    AgentId::parse(agent).map_err(|reason| EntryError::AgentId { id: agent.into(), reason })
}
