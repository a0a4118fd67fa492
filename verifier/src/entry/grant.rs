//! The entries of just-in-time authorization (docs/FORMAT.md, "Action
//! tokens", "Escalations"), all written by the log:
//!
//! * `token`: an action token was issued (its id, scope, constraints,
//!   validity, the score it was issued at and the state that was decided
//!   on); the token itself, a bearer credential, is never logged.
//! * `escalation`: a token request of a class that needs a human waits for
//!   one.
//! * `decision`: an escalation approved or denied by an admin, or expired.
//!
//! A token's constraints pin a SQL statement by its SHA-256: the statement
//! text is never logged, but a guessable statement can be confirmed from
//! its hash, so statements carry no secrets in their text (bind parameters
//! and pin them as a target or amount instead).

use alloc::string::{String, ToString};

use serde_json::{Map, Value};

use super::error::{EntryError, Members, ShapeError};
use super::members::{only_members, required_string};
use super::retirement::MAX_REASON_CHARS;
use super::revocation::{index, optional_index, score, Decision};
use super::EntryKind;
use crate::agent_id::AgentId;
use crate::token::{is_jti, Claims, Constraints, MAX_NAME_CHARS};

/// Members of a token entry.
pub const TOKEN_MEMBERS: [&str; 16] = [
    "kind",
    "agent",
    "jti",
    "action",
    "resource",
    "constraints",
    "class",
    "single_use",
    "nbf",
    "exp",
    "score",
    "required",
    "policy_index",
    "as_of_index",
    "decided_at",
    "escalation",
];
/// Members of an escalation entry.
pub const ESCALATION_MEMBERS: [&str; 13] = [
    "kind",
    "agent",
    "action",
    "resource",
    "constraints",
    "class",
    "lifetime_s",
    "score",
    "required",
    "policy_index",
    "as_of_index",
    "decided_at",
    "expires_at",
];
/// Members of a decision entry.
pub const DECISION_MEMBERS: [&str; 5] = ["kind", "agent", "escalation", "outcome", "note"];

/// What is asked for: an action on a resource with pinned parameters, in
/// a risk class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    /// The action.
    pub action: String,
    /// The resource (the token's audience).
    pub resource: String,
    /// The pinned parameters.
    pub constraints: Constraints,
    /// The risk class the policy in force puts it in.
    pub class: String,
}

impl Scope {
    fn insert(&self, m: &mut Map<String, Value>) {
        m.insert("action".into(), Value::from(self.action.as_str()));
        m.insert("resource".into(), Value::from(self.resource.as_str()));
        m.insert("constraints".into(), Value::Object(self.constraints.to_object()));
        m.insert("class".into(), Value::from(self.class.as_str()));
    }

    fn read(obj: &Map<String, Value>) -> Result<Self, ShapeError> {
        Ok(Self {
            action: required_string(obj, "action", MAX_NAME_CHARS)?.to_string(),
            resource: required_string(obj, "resource", MAX_NAME_CHARS)?.to_string(),
            constraints: Constraints::from_value(obj.get("constraints").ok_or(ShapeError::Missing("constraints"))?, false)
                .map_err(|_| ShapeError::NotAnObjectMember("constraints"))?,
            class: required_string(obj, "class", MAX_NAME_CHARS)?.to_string(),
        })
    }
}

/// What the log decided a token or an escalation on: the agent's score and
/// the class minimum, under the policy at `policy_index`, from the trust
/// view as of `decision`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Basis {
    /// The agent's score then.
    pub score: u8,
    /// The class minimum.
    pub required: u8,
    /// The policy entry in force (`None`: the built-in default).
    pub policy_index: Option<u64>,
    /// The trust view state and instant decided on.
    pub decision: Decision,
}

impl Basis {
    fn insert(&self, m: &mut Map<String, Value>) {
        m.insert("score".into(), Value::from(self.score));
        m.insert("required".into(), Value::from(self.required));
        if let Some(p) = self.policy_index {
            m.insert("policy_index".into(), Value::from(p));
        }
        self.decision.insert(m);
    }

    fn read(obj: &Map<String, Value>) -> Result<Self, ShapeError> {
        Ok(Self {
            score: score(obj, "score")?,
            required: score(obj, "required")?,
            policy_index: optional_index(obj, "policy_index")?,
            decision: Decision::read(obj)?.ok_or(ShapeError::Missing("as_of_index"))?,
        })
    }
}

/// An action token issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenIssued {
    /// The agent (the token's `sub`).
    pub agent: AgentId,
    /// The token id.
    pub jti: String,
    /// What it allows.
    pub scope: Scope,
    /// Whether a resource takes it once only.
    pub single_use: bool,
    /// Valid from, ms.
    pub not_before: u64,
    /// Valid until, ms.
    pub expires: u64,
    /// What it was issued on.
    pub basis: Basis,
    /// The escalation it answers (classes that need a human).
    pub escalation: Option<u64>,
}

impl TokenIssued {
    /// The entry's object (as stored, before the log's members).
    pub fn to_object(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("kind".into(), Value::from(EntryKind::Token.as_str()));
        m.insert("agent".into(), Value::from(self.agent.as_str()));
        m.insert("jti".into(), Value::from(self.jti.as_str()));
        self.scope.insert(&mut m);
        m.insert("single_use".into(), Value::from(self.single_use));
        m.insert("nbf".into(), Value::from(self.not_before));
        m.insert("exp".into(), Value::from(self.expires));
        self.basis.insert(&mut m);
        if let Some(e) = self.escalation {
            m.insert("escalation".into(), Value::from(e));
        }
        m
    }

    /// The claims of the token this entry records, logged at `index` by
    /// the log named `issuer`: a pure function of the entry, so the log
    /// can sign the same token again (Ed25519 is deterministic) for an
    /// agent that fetches an approved escalation's token later.
    pub fn claims(&self, index: u64, issuer: &str) -> Claims {
        Claims {
            issuer: issuer.to_string(),
            jti: self.jti.clone(),
            subject: self.agent.as_str().to_string(),
            audience: self.scope.resource.clone(),
            action: self.scope.action.clone(),
            constraints: self.scope.constraints.clone(),
            issued_at: self.not_before,
            not_before: self.not_before,
            expires: self.expires,
            score: self.basis.score,
            log_index: index,
            class: self.scope.class.clone(),
            single_use: self.single_use,
        }
    }

    pub(super) fn from_object(obj: &Map<String, Value>, agent: AgentId) -> Result<Self, EntryError> {
        only_members(obj, EntryKind::Token, &TOKEN_MEMBERS)?;
        let jti = obj.get("jti").and_then(Value::as_str).filter(|j| is_jti(j)).ok_or(ShapeError::NotAString("jti"))?;
        let (not_before, expires) = (index(obj, "nbf")?, index(obj, "exp")?);
        if not_before > expires {
            return Err(ShapeError::NotAnInteger("exp").into());
        }
        Ok(Self {
            agent,
            jti: jti.to_string(),
            scope: Scope::read(obj)?,
            single_use: obj.get("single_use").and_then(Value::as_bool).ok_or(ShapeError::Missing("single_use"))?,
            not_before,
            expires,
            basis: Basis::read(obj)?,
            escalation: optional_index(obj, "escalation")?,
        })
    }
}

/// A token request waiting for a human.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Escalation {
    /// The agent.
    pub agent: AgentId,
    /// What it asks for.
    pub scope: Scope,
    /// The token lifetime asked for, seconds.
    pub lifetime_s: u32,
    /// What the request was checked on.
    pub basis: Basis,
    /// When it expires unanswered (as a denial), ms.
    pub expires_at: u64,
}

impl Escalation {
    /// The entry's object (as stored, before the log's members).
    pub fn to_object(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("kind".into(), Value::from(EntryKind::Escalation.as_str()));
        m.insert("agent".into(), Value::from(self.agent.as_str()));
        self.scope.insert(&mut m);
        m.insert("lifetime_s".into(), Value::from(self.lifetime_s));
        self.basis.insert(&mut m);
        m.insert("expires_at".into(), Value::from(self.expires_at));
        m
    }

    pub(super) fn from_object(obj: &Map<String, Value>, agent: AgentId) -> Result<Self, EntryError> {
        only_members(obj, EntryKind::Escalation, &ESCALATION_MEMBERS)?;
        let lifetime_s = u32::try_from(index(obj, "lifetime_s")?).map_err(|_| ShapeError::NotAnInteger("lifetime_s"))?;
        Ok(Self { agent, scope: Scope::read(obj)?, lifetime_s, basis: Basis::read(obj)?, expires_at: index(obj, "expires_at")? })
    }
}

/// How an escalation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// An admin approved it: a token follows.
    Approved,
    /// An admin denied it.
    Denied,
    /// Nobody answered in time: a denial.
    Expired,
}

impl Outcome {
    /// Wire names.
    pub const NAMES: &'static [&'static str] = &["approved", "denied", "expired"];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Expired => "expired",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Approved, Self::Denied, Self::Expired].into_iter().find(|o| o.as_str() == name)
    }
}

/// An escalation decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EscalationDecision {
    /// The agent.
    pub agent: AgentId,
    /// The escalation entry's index.
    pub escalation: u64,
    /// The outcome.
    pub outcome: Outcome,
    /// The admin's note.
    pub note: Option<String>,
}

impl EscalationDecision {
    /// The entry's object (as stored, before the log's members).
    pub fn to_object(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("kind".into(), Value::from(EntryKind::Decision.as_str()));
        m.insert("agent".into(), Value::from(self.agent.as_str()));
        m.insert("escalation".into(), Value::from(self.escalation));
        m.insert("outcome".into(), Value::from(self.outcome.as_str()));
        if let Some(n) = &self.note {
            m.insert("note".into(), Value::from(n.as_str()));
        }
        m
    }

    pub(super) fn from_object(obj: &Map<String, Value>, agent: AgentId) -> Result<Self, EntryError> {
        only_members(obj, EntryKind::Decision, &DECISION_MEMBERS)?;
        let outcome = obj
            .get("outcome")
            .and_then(Value::as_str)
            .and_then(Outcome::parse)
            .ok_or(ShapeError::NotOneOf { member: "outcome", allowed: Members(Outcome::NAMES) })?;
        let note = match obj.get("note") {
            None => None,
            Some(_) => Some(required_string(obj, "note", MAX_REASON_CHARS)?.to_string()),
        };
        Ok(Self { agent, escalation: index(obj, "escalation")?, outcome, note })
    }
}
