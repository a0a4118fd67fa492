//! The entry model: every kind of entry the log holds, parsed once into a
//! typed [`Entry`] with the validation rules of its kind (docs/FORMAT.md,
//! "Entries" and "Agents").
//!
//! An entry is a JSON object with a `"kind"` ([`EntryKind`], the one place
//! kind names are spelled) and an `"agent"` ([`AgentId`]). It is read in
//! one of two [`Form`]s: as an agent submits it, or as the log stores it
//! in a leaf (with what only the log writes: committed hidden fields, admin
//! kinds, an attestation's verdict). A stored leaf is the RFC 8785
//! canonical JSON of the entry plus `"integrated_time"` and `"v"`
//! ([`Leaf::decode`]; version 1 leaves placed `"v"` last and are read as
//! they were written).
//!
//! * [`signing`]: what an agent signs (entries and HTTP requests), the
//!   signed-request headers, and the one signature rule.
//! * [`action`], [`passport`], [`rotation`], [`retirement`],
//!   [`attestation`]: one file per kind, each with its members and limits.
//!   A new kind is a new file, a variant of [`EntryKind`] and an arm of
//!   [`Entry`].
//! * [`error`]: typed errors with stable messages.
//!
//! What an entry does to an agent's state (registration, key rotation,
//! sequence numbers, retirement) is decided by [`crate::fold::registry`].

pub mod action;
pub mod attestation;
pub mod error;
pub mod grant;
mod kind;
pub mod members;
pub mod passport;
pub mod policy;
pub mod retirement;
pub mod revocation;
pub mod risk;
pub mod rotation;
pub mod signal;
pub mod signing;
pub mod source;

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;

use serde_json::{Map, Value};

pub use self::action::Action;
pub use self::attestation::Attestation;
pub use self::error::{AgentError, AttestationPart, EntryError, HiddenError, JsonError, OpeningError, ShapeError};
pub use self::grant::{Basis, Escalation, EscalationDecision, Outcome, Scope, TokenIssued};
pub use self::kind::{Author, EntryKind, UnknownKind};
pub use self::passport::Passport;
pub use self::policy::PolicyEntry;
pub use self::retirement::Retirement;
pub use self::revocation::{Decision, Reinstatement, Revocation, RevocationReason};
pub use self::risk::RiskChange;
pub use self::rotation::Rotation;
pub use self::signal::{Assessment, Level, Severity, Signal, SignalType, Signer, Subject};
pub use self::signing::{AgentSignature, SignedEntry};
pub use self::source::Source;
pub use crate::agent_id::AgentId;
use crate::canonical::{parse_strict, to_canonical, LEAF_VERSION};

/// The member the log stamps with its integrated time.
pub const TIME_MEMBER: &str = "integrated_time";
/// The member holding the leaf format version.
pub const VERSION_MEMBER: &str = "v";

/// Which rules an entry object is read with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// As an agent submits it to `POST /v1/entries`: actions (without
    /// hidden fields: those arrive committed, beside their openings) and
    /// rotations; other kinds are [`EntryError::UnknownKind`] (an agent
    /// submits an attestation to `POST /v1/attestations`, read by
    /// [`Attestation::from_submitted`], and a signal to `POST /v1/signals`,
    /// read by [`Signal::from_submitted`]).
    Submitted,
    /// As the log stores it (without `"integrated_time"` and `"v"`): every
    /// kind, hidden fields committed, attestations with their verdict. The
    /// agent signatures are not decoded: the log checked them when it
    /// admitted the entry, and an audit checks them again
    /// ([`Form::Audit`]).
    Leaf,
    /// As [`Form::Leaf`], for replaying what a log stored through the
    /// registry fold: the signatures are decoded, hidden fields are not
    /// (the signatures cover them as stored), and the agent id is taken as
    /// it is ([`AgentId::from_stored_unchecked`]), so an auditor checks the
    /// signatures and reports the id, escaped, instead of stopping at it.
    Audit,
}

impl Form {
    /// Whether agent signatures are decoded in this form.
    pub const fn reads_signatures(self) -> bool {
        !matches!(self, Self::Leaf)
    }
}

/// A passport entry: the registration of an agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// The agent, checked.
    pub agent: AgentId,
    /// Its passport.
    pub passport: Arc<Passport>,
}

/// An entry of any kind.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Entry {
    /// Something an agent did.
    Action(Action),
    /// An agent's passport.
    Passport(Registration),
    /// A key rotation.
    Rotation(Rotation),
    /// A retirement.
    Retirement(Retirement),
    /// A self-attestation.
    Attestation(Attestation),
    /// The trust policy in force from here on.
    Policy(PolicyEntry),
    /// A signal source registered.
    Source(Source),
    /// A risk signal.
    Signal(Signal),
    /// An agent revoked.
    Revocation(Revocation),
    /// A revoked agent reinstated.
    Reinstatement(Reinstatement),
    /// An agent's risk level changed.
    Risk(RiskChange),
    /// An action token issued.
    Token(TokenIssued),
    /// A token request waiting for a human.
    Escalation(Escalation),
    /// An escalation decided.
    Decision(EscalationDecision),
}

impl Entry {
    /// Parses strict JSON bytes of one entry ([`parse_strict`]) in `form`.
    pub fn from_json(bytes: &[u8], form: Form) -> Result<Self, EntryError> {
        let value = parse_strict(bytes)?;
        let obj = value.as_object().ok_or(ShapeError::NotAnObject)?;
        Self::from_object(obj, form)
    }

    /// Reads and validates an entry object in `form`: its kind, its agent,
    /// then the members of its kind.
    pub fn from_object(obj: &Map<String, Value>, form: Form) -> Result<Self, EntryError> {
        let kind = kind_of(obj)?;
        if form == Form::Submitted && !matches!(kind, EntryKind::Action | EntryKind::Rotation) {
            return Err(EntryError::UnknownKind(kind.as_str().to_string()));
        }
        match kind {
            EntryKind::Policy => return Ok(Self::Policy(PolicyEntry::from_object(obj)?)),
            EntryKind::Source => return Ok(Self::Source(Source::from_object(obj, form)?)),
            EntryKind::Signal => return Ok(Self::Signal(Signal::from_object(obj, form)?)),
            _ => {}
        }
        let agent = members::agent(obj, form)?;
        Ok(match kind {
            EntryKind::Policy | EntryKind::Source | EntryKind::Signal => unreachable!("read above"),
            EntryKind::Revocation => Self::Revocation(Revocation::from_object(obj, agent)?),
            EntryKind::Reinstatement => Self::Reinstatement(Reinstatement::from_object(obj, agent)?),
            EntryKind::Risk => Self::Risk(RiskChange::from_object(obj, agent)?),
            EntryKind::Token => Self::Token(TokenIssued::from_object(obj, agent)?),
            EntryKind::Escalation => Self::Escalation(Escalation::from_object(obj, agent)?),
            EntryKind::Decision => Self::Decision(EscalationDecision::from_object(obj, agent)?),
            EntryKind::Action => Self::Action(Action::from_object(obj, agent, form)?),
            EntryKind::Rotation => Self::Rotation(Rotation::from_object(obj, agent, form)?),
            EntryKind::Passport => Self::Passport(Registration { agent, passport: Arc::new(Passport::from_stored(obj)?) }),
            EntryKind::Retirement => Self::Retirement(Retirement::from_object(obj, agent)?),
            EntryKind::Attestation => {
                attestation::check_shape(obj, true)?;
                let signature = form.reads_signatures().then(|| AgentSignature::from_object(obj)).transpose()?;
                Self::Attestation(Attestation { agent, signature, members: obj.clone() })
            }
        })
    }

    /// The entry's kind.
    pub fn kind(&self) -> EntryKind {
        match self {
            Self::Action(_) => EntryKind::Action,
            Self::Passport(_) => EntryKind::Passport,
            Self::Rotation(_) => EntryKind::Rotation,
            Self::Retirement(_) => EntryKind::Retirement,
            Self::Attestation(_) => EntryKind::Attestation,
            Self::Policy(_) => EntryKind::Policy,
            Self::Source(_) => EntryKind::Source,
            Self::Signal(_) => EntryKind::Signal,
            Self::Revocation(_) => EntryKind::Revocation,
            Self::Reinstatement(_) => EntryKind::Reinstatement,
            Self::Risk(_) => EntryKind::Risk,
            Self::Token(_) => EntryKind::Token,
            Self::Escalation(_) => EntryKind::Escalation,
            Self::Decision(_) => EntryKind::Decision,
        }
    }

    /// The agent the entry is by or about: `None` for policies, sources
    /// and signals about a code hash.
    pub fn agent(&self) -> Option<&AgentId> {
        Some(match self {
            Self::Action(e) => &e.agent,
            Self::Passport(e) => &e.agent,
            Self::Rotation(e) => &e.agent,
            Self::Retirement(e) => &e.agent,
            Self::Attestation(e) => &e.agent,
            Self::Revocation(e) => &e.agent,
            Self::Reinstatement(e) => &e.agent,
            Self::Risk(e) => &e.agent,
            Self::Token(e) => &e.agent,
            Self::Escalation(e) => &e.agent,
            Self::Decision(e) => &e.agent,
            Self::Signal(e) => return e.subject_agent(),
            Self::Policy(_) | Self::Source(_) => return None,
        })
    }

    /// The agent that signed the entry with its key in force: the agent of
    /// its own entries, the reporter of a peer report; `None` for entries
    /// no agent signs (admin, log and source entries) and entries read
    /// without their signatures.
    pub fn signer(&self) -> Option<&AgentId> {
        self.signature()?;
        match self {
            Self::Action(e) => Some(&e.agent),
            Self::Rotation(e) => Some(&e.agent),
            Self::Attestation(e) => Some(&e.agent),
            Self::Signal(Signal { signer: Signer::Agent(reporter), .. }) => Some(reporter),
            _ => None,
        }
    }

    /// What the agent signed, as signature checks take it
    /// ([`SignedEntry`]); `None` for admin entries, unsigned actions and
    /// entries read without their signatures ([`Form::Leaf`]).
    pub fn signed(&self) -> Option<SignedEntry> {
        let new_key = match self {
            Self::Rotation(r) => Some((r.new_key, r.new_signature?)),
            _ => None,
        };
        self.signature().map(|signature| SignedEntry::new(signature, new_key))
    }

    /// The agent's signature, for agent-written entries that carry one.
    pub fn signature(&self) -> Option<&AgentSignature> {
        match self {
            Self::Action(e) => e.signature.as_ref(),
            Self::Rotation(e) => e.signature.as_ref(),
            Self::Attestation(e) => e.signature.as_ref(),
            Self::Signal(e) => e.signature.as_ref(),
            Self::Passport(_)
            | Self::Retirement(_)
            | Self::Policy(_)
            | Self::Source(_)
            | Self::Revocation(_)
            | Self::Reinstatement(_)
            | Self::Risk(_)
            | Self::Token(_)
            | Self::Escalation(_)
            | Self::Decision(_) => None,
        }
    }
}

/// The `"kind"` member.
fn kind_of(obj: &Map<String, Value>) -> Result<EntryKind, EntryError> {
    match obj.get("kind") {
        Some(Value::String(s)) => EntryKind::parse(s).ok_or_else(|| EntryError::UnknownKind(s.clone())),
        Some(_) => Err(ShapeError::NotAString("kind").into()),
        None => Err(ShapeError::Missing("kind").into()),
    }
}

/// A stored leaf, decoded.
#[derive(Clone, Debug)]
pub struct Leaf {
    /// The leaf format version (`"v"`).
    pub version: u64,
    /// Integrated time, ms since the Unix epoch.
    pub integrated_time: u64,
    /// The entry's kind.
    pub kind: EntryKind,
    /// The entry's members, without `"integrated_time"` and `"v"`.
    pub members: Map<String, Value>,
    /// The typed entry, read in [`Form::Leaf`] (or the form given to
    /// [`Leaf::decode_in`]); `None` only for a version 1 leaf that today's
    /// rules refuse (it was valid under version 1's, and stays readable).
    pub entry: Option<Entry>,
}

impl Leaf {
    /// Decodes leaf bytes, checking that they are exactly canonical (in
    /// their version's form). Returns the leaf and its JSON value.
    pub fn decode(bytes: &[u8]) -> Result<(Self, Value), EntryError> {
        Self::decode_in(bytes, Form::Leaf)
    }

    /// [`Leaf::decode`] with the entry read in `form`: an auditor reads
    /// leaves in [`Form::Audit`], with their signatures and the agent id as
    /// stored.
    pub fn decode_in(bytes: &[u8], form: Form) -> Result<(Self, Value), EntryError> {
        let value = parse_strict(bytes)?;
        let mut members = value.as_object().cloned().ok_or(ShapeError::LeafNotAnObject)?;
        let version = members.remove(VERSION_MEMBER).and_then(|v| v.as_u64());
        let canonical_form = to_canonical(&value) == bytes;
        let version = match version {
            Some(LEAF_VERSION) if canonical_form => LEAF_VERSION,
            // Version 1 wrote "v" last; for every kind but attestations
            // that is also the canonical position.
            Some(1) if canonical_form || legacy_v1_form(&members) == bytes => 1,
            Some(1 | LEAF_VERSION) => return Err(ShapeError::NotCanonical.into()),
            _ => return Err(ShapeError::UnsupportedVersion.into()),
        };
        let integrated_time = members.remove(TIME_MEMBER).and_then(|t| t.as_u64()).ok_or(ShapeError::MissingTime)?;
        let (kind, entry) = match Entry::from_object(&members, form) {
            Ok(entry) => (entry.kind(), Some(entry)),
            // A version 1 leaf was valid under version 1's rules; later
            // rules (weak keys, hidden-field limits) do not make it
            // unreadable.
            Err(e) if version == 1 => (members.get("kind").and_then(Value::as_str).and_then(EntryKind::parse).ok_or(e)?, None),
            Err(e) => return Err(e),
        };
        Ok((Self { version, integrated_time, kind, members, entry }, value))
    }

    /// A text member (empty when absent), for listings.
    pub fn text(&self, member: &str) -> &str {
        self.members.get(member).and_then(Value::as_str).unwrap_or_default()
    }
}

/// How version 1 wrote a leaf: the members in canonical order, then
/// `"v":1` last.
pub fn legacy_v1_form(members: &Map<String, Value>) -> Vec<u8> {
    let mut out = to_canonical(&Value::Object(members.clone()));
    out.pop();
    if out.len() > 1 {
        out.push(b',');
    }
    out.extend_from_slice(br#""v":1}"#);
    out
}
