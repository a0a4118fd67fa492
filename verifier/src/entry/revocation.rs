//! The `revocation` and `reinstatement` entries. An agent is revoked when
//! its trust score falls below the policy's threshold (on an entry, or by
//! decay alone: the log appends the revocation) or when an admin
//! quarantines it. A revoked agent's entries other than attestations are
//! refused until an admin reinstates it, which needs a successful
//! attestation after the revocation (docs/TRUST.md).

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::{Map, Value};

use super::error::{EntryError, Members, ShapeError};
use super::members::{only_members, required_string};
use super::retirement::MAX_REASON_CHARS;
use super::EntryKind;
use crate::agent_id::AgentId;

/// Members of a revocation.
pub const MEMBERS: [&str; 11] =
    ["kind", "agent", "reason", "score", "threshold", "causes", "policy_index", "as_of_index", "decided_at", "note", "tokens"];
/// Members of a reinstatement.
pub const REINSTATEMENT_MEMBERS: [&str; 4] = ["kind", "agent", "attestation_index", "note"];
/// Most entry indices a revocation names as its causes.
pub const MAX_CAUSES: usize = 16;

/// Why an agent was revoked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevocationReason {
    /// Its trust score fell below the policy's threshold (the log).
    Score,
    /// An admin quarantined it.
    Quarantine,
}

impl RevocationReason {
    /// Every reason, in order ([`RevocationReason::ordinal`]).
    pub const ALL: [Self; 2] = [Self::Score, Self::Quarantine];

    /// Wire names.
    pub const NAMES: &'static [&'static str] = &["score", "quarantine"];

    /// The reason's place in [`RevocationReason::ALL`] (for counters kept
    /// per reason).
    pub const fn ordinal(self) -> usize {
        match self {
            Self::Score => 0,
            Self::Quarantine => 1,
        }
    }

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Score => "score",
            Self::Quarantine => "quarantine",
        }
    }
}

/// An agent revoked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    /// The agent.
    pub agent: AgentId,
    /// Why.
    pub reason: RevocationReason,
    /// Its score at the revocation's integrated time.
    pub score: u8,
    /// The policy's revocation threshold.
    pub threshold: u8,
    /// The entries that moved the score down (ascending, at most
    /// [`MAX_CAUSES`]).
    pub causes: Vec<u64>,
    /// Index of the policy entry in force (`None`: the built-in default,
    /// before any policy entry).
    pub policy_index: Option<u64>,
    /// What the log decided on (reason `score`, required there): the trust
    /// view as of this entry index, read at [`Decision::decided_at`].
    pub decision: Option<Decision>,
    /// An admin's note (quarantines).
    pub note: Option<String>,
    /// The ids of the agent's live action tokens, revoked with it
    /// (ascending, at most [`crate::token::MAX_LIVE_TOKENS`]; the member is
    /// absent when there are none).
    pub tokens: Vec<String>,
}

/// The state a log-written trust entry was decided on: the trust view as
/// of entry `as_of_index`, read at `decided_at` (ms). An auditor recomputes
/// the score from exactly that state, so an entry appended between the
/// decision and the stamp (an attestation, say) does not unjustify it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The last entry the trust view had applied.
    pub as_of_index: u64,
    /// The instant the score was read at, ms since the Unix epoch (at most
    /// the entry's integrated time).
    pub decided_at: u64,
}

impl Decision {
    pub(super) fn insert(&self, m: &mut Map<String, Value>) {
        m.insert("as_of_index".into(), Value::from(self.as_of_index));
        m.insert("decided_at".into(), Value::from(self.decided_at));
    }

    pub(super) fn read(obj: &Map<String, Value>) -> Result<Option<Self>, ShapeError> {
        match (obj.contains_key("as_of_index"), obj.contains_key("decided_at")) {
            (false, false) => Ok(None),
            _ => Ok(Some(Self { as_of_index: index(obj, "as_of_index")?, decided_at: index(obj, "decided_at")? })),
        }
    }
}

/// A revoked agent reinstated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reinstatement {
    /// The agent.
    pub agent: AgentId,
    /// Index of its successful attestation after the revocation.
    pub attestation_index: u64,
    /// An admin's note.
    pub note: Option<String>,
}

pub(super) fn score(obj: &Map<String, Value>, member: &'static str) -> Result<u8, ShapeError> {
    obj.get(member).and_then(Value::as_u64).filter(|s| *s <= 100).map(|s| s as u8).ok_or(ShapeError::Score(member))
}

pub(super) fn index(obj: &Map<String, Value>, member: &'static str) -> Result<u64, ShapeError> {
    obj.get(member).and_then(Value::as_u64).ok_or(ShapeError::NotAnInteger(member))
}

/// An optional index member.
pub(super) fn optional_index(obj: &Map<String, Value>, member: &'static str) -> Result<Option<u64>, ShapeError> {
    obj.get(member).map(|_| index(obj, member)).transpose()
}

fn note(obj: &Map<String, Value>) -> Result<Option<String>, ShapeError> {
    match obj.get("note") {
        None => Ok(None),
        Some(_) => Ok(Some(required_string(obj, "note", MAX_REASON_CHARS)?.to_string())),
    }
}

impl Revocation {
    /// The entry's object (as stored, before the log's members).
    pub fn to_object(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("kind".into(), Value::from(EntryKind::Revocation.as_str()));
        m.insert("agent".into(), Value::from(self.agent.as_str()));
        m.insert("reason".into(), Value::from(self.reason.as_str()));
        m.insert("score".into(), Value::from(self.score));
        m.insert("threshold".into(), Value::from(self.threshold));
        m.insert("causes".into(), Value::Array(self.causes.iter().map(|c| Value::from(*c)).collect()));
        if let Some(p) = self.policy_index {
            m.insert("policy_index".into(), Value::from(p));
        }
        if let Some(d) = &self.decision {
            d.insert(&mut m);
        }
        if let Some(n) = &self.note {
            m.insert("note".into(), Value::from(n.as_str()));
        }
        if !self.tokens.is_empty() {
            m.insert("tokens".into(), Value::Array(self.tokens.iter().map(|t| Value::from(t.as_str())).collect()));
        }
        m
    }

    pub(super) fn from_object(obj: &Map<String, Value>, agent: AgentId) -> Result<Self, EntryError> {
        only_members(obj, EntryKind::Revocation, &MEMBERS)?;
        let tokens: Vec<String> = match obj.get("tokens") {
            None => Vec::new(),
            Some(Value::Array(list)) if !list.is_empty() && list.len() <= crate::token::MAX_LIVE_TOKENS => list
                .iter()
                .map(|t| t.as_str().filter(|t| crate::token::is_jti(t)).map(str::to_string))
                .collect::<Option<_>>()
                .ok_or(ShapeError::RevokedTokens)?,
            Some(_) => return Err(ShapeError::RevokedTokens.into()),
        };
        if tokens.windows(2).any(|w| w[0] >= w[1]) {
            return Err(ShapeError::RevokedTokens.into());
        }
        let reason = match obj.get("reason").and_then(Value::as_str) {
            Some("score") => RevocationReason::Score,
            Some("quarantine") => RevocationReason::Quarantine,
            _ => return Err(ShapeError::NotOneOf { member: "reason", allowed: Members(RevocationReason::NAMES) }.into()),
        };
        let Some(Value::Array(list)) = obj.get("causes") else { return Err(ShapeError::Causes.into()) };
        if list.len() > MAX_CAUSES {
            return Err(ShapeError::Causes.into());
        }
        let causes: Vec<u64> = list.iter().map(Value::as_u64).collect::<Option<_>>().ok_or(ShapeError::Causes)?;
        if causes.windows(2).any(|w| w[0] >= w[1]) {
            return Err(ShapeError::Causes.into());
        }
        let decision = Decision::read(obj)?;
        if reason == RevocationReason::Score && decision.is_none() {
            return Err(ShapeError::Missing("as_of_index").into());
        }
        Ok(Self {
            agent,
            reason,
            score: score(obj, "score")?,
            threshold: score(obj, "threshold")?,
            causes,
            policy_index: optional_index(obj, "policy_index")?,
            decision,
            note: note(obj)?,
            tokens,
        })
    }
}

impl Reinstatement {
    /// The entry's object (as stored, before the log's members).
    pub fn to_object(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("kind".into(), Value::from(EntryKind::Reinstatement.as_str()));
        m.insert("agent".into(), Value::from(self.agent.as_str()));
        m.insert("attestation_index".into(), Value::from(self.attestation_index));
        if let Some(n) = &self.note {
            m.insert("note".into(), Value::from(n.as_str()));
        }
        m
    }

    pub(super) fn from_object(obj: &Map<String, Value>, agent: AgentId) -> Result<Self, EntryError> {
        only_members(obj, EntryKind::Reinstatement, &REINSTATEMENT_MEMBERS)?;
        Ok(Self { agent, attestation_index: index(obj, "attestation_index")?, note: note(obj)? })
    }
}
