//! The `risk` entry: the log records that an agent's risk level changed
//! (its trust score crossed a band edge, with hysteresis; docs/TRUST.md),
//! on an entry or by decay alone. Subscribers hear of it as a CAEP
//! `risk-level-change`.

use alloc::string::String;

use serde_json::{Map, Value};

use super::error::{EntryError, Members, ShapeError};
use super::members::only_members;
use super::revocation::{optional_index, score, Decision};
use super::signal::Level;
use super::EntryKind;
use crate::agent_id::AgentId;

/// Members of a risk entry.
pub const MEMBERS: [&str; 8] = ["kind", "agent", "previous", "current", "score", "policy_index", "as_of_index", "decided_at"];

/// An agent's risk level changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RiskChange {
    /// The agent.
    pub agent: AgentId,
    /// The level before.
    pub previous: Level,
    /// The level now.
    pub current: Level,
    /// The score at the entry's integrated time.
    pub score: u8,
    /// Index of the policy entry in force (`None`: the built-in default).
    pub policy_index: Option<u64>,
    /// The state the log decided on.
    pub decision: Decision,
}

fn level(obj: &Map<String, Value>, member: &'static str) -> Result<Level, ShapeError> {
    obj.get(member).and_then(Value::as_str).and_then(Level::parse).ok_or(ShapeError::NotOneOf { member, allowed: Members(Level::NAMES) })
}

impl RiskChange {
    /// The entry's object (as stored, before the log's members).
    pub fn to_object(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("kind".into(), Value::from(EntryKind::Risk.as_str()));
        m.insert("agent".into(), Value::from(self.agent.as_str()));
        m.insert("previous".into(), Value::from(self.previous.as_str()));
        m.insert("current".into(), Value::from(self.current.as_str()));
        m.insert("score".into(), Value::from(self.score));
        if let Some(p) = self.policy_index {
            m.insert("policy_index".into(), Value::from(p));
        }
        self.decision.insert(&mut m);
        m
    }

    pub(super) fn from_object(obj: &Map<String, Value>, agent: AgentId) -> Result<Self, EntryError> {
        only_members(obj, EntryKind::Risk, &MEMBERS)?;
        let (previous, current) = (level(obj, "previous")?, level(obj, "current")?);
        if previous == current {
            return Err(ShapeError::NotOneOf { member: "current", allowed: Members(Level::NAMES) }.into());
        }
        let decision = Decision::read(obj)?.ok_or(ShapeError::Missing("as_of_index"))?;
        Ok(Self { agent, previous, current, score: score(obj, "score")?, policy_index: optional_index(obj, "policy_index")?, decision })
    }
}
