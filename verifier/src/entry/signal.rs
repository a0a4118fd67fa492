//! The `signal` entry: a risk signal about an agent (or about every agent
//! running some code), from one of three signers:
//!
//! * a registered source ([`super::source`]): `threat_intel`,
//!   `vulnerability`, `siem`, `ueba`; signed with the source's key and a
//!   fresh `seq`, as agents sign their entries;
//! * an agent reporting on a peer: `peer_report` with an `assessment`,
//!   signed by the reporting agent (its `seq` and key in force);
//! * the log itself ([`LOG_SOURCE`]): `drift`, from the deterministic drift
//!   detector (docs/TRUST.md), unsigned; an auditor recomputes it.
//!
//! A threat-intelligence or vulnerability signal may name a code hash
//! (`{"code_hash": hex}`): it is about every agent whose passport has it.

use alloc::string::{String, ToString};

use serde_json::{Map, Value};

use super::error::{EntryError, Members, ShapeError};
use super::members::{only_members, required_string};
use super::signing::{hex, parse_hash, AgentSignature};
use super::source::check_source_name;
use super::{EntryKind, Form};
use crate::agent_id::{AgentId, MAX_SPIFFE_ID_BYTES};

/// The `"source"` of the log's own signals.
pub const LOG_SOURCE: &str = "ledger";

/// Members of a signal.
pub const MEMBERS: [&str; 9] = ["kind", "source", "subject", "type", "severity", "assessment", "evidence", "seq", "signature"];

macro_rules! vocabulary {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            /// Every value, in order.
            pub const ALL: [Self; { [$($text),+].len() }] = [$(Self::$variant),+];
            /// Every wire name, in order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The wire name.
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            /// Parses a wire name.
            pub fn parse(text: &str) -> Option<Self> {
                Self::ALL.into_iter().find(|v| v.as_str() == text)
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocabulary! {
    /// What a signal reports.
    SignalType {
        /// The agent's behaviour drifted from its baseline (the log's).
        Drift = "drift",
        /// Threat intelligence about the agent or its code.
        ThreatIntel = "threat_intel",
        /// A vulnerability in the agent or its code.
        Vulnerability = "vulnerability",
        /// A SIEM alert.
        Siem = "siem",
        /// A UEBA (behaviour analytics) finding.
        Ueba = "ueba",
        /// Another agent's report.
        PeerReport = "peer_report",
    }
}

vocabulary! {
    /// How severe a signal is.
    Severity {
        /// Low.
        Low = "low",
        /// Medium.
        Medium = "medium",
        /// High.
        High = "high",
        /// Critical.
        Critical = "critical",
    }
}

vocabulary! {
    /// An agent's risk level, from its trust score's band (docs/TRUST.md).
    Level {
        /// Score in the top band.
        Low = "low",
        /// Score in the middle band.
        Medium = "medium",
        /// Score in the bottom band.
        High = "high",
    }
}

vocabulary! {
    /// A peer report's verdict.
    Assessment {
        /// The peer behaved as expected.
        Positive = "positive",
        /// The peer misbehaved.
        Negative = "negative",
    }
}

impl SignalType {
    /// Whether registered sources file signals of this type (not the log's
    /// `drift`, nor an agent's `peer_report`).
    pub const fn from_sources(self) -> bool {
        !matches!(self, Self::Drift | Self::PeerReport)
    }

    /// Whether a signal of this type may name a code hash as its subject.
    pub const fn may_name_code(self) -> bool {
        matches!(self, Self::ThreatIntel | Self::Vulnerability)
    }
}

/// Whom a signal is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// One agent.
    Agent(AgentId),
    /// Every agent whose passport has this code hash.
    CodeHash([u8; 32]),
}

impl Subject {
    fn to_value(&self) -> Value {
        match self {
            Self::Agent(a) => Value::from(a.as_str()),
            Self::CodeHash(h) => {
                let mut m = Map::new();
                m.insert("code_hash".into(), Value::from(hex(h)));
                Value::Object(m)
            }
        }
    }

    fn from_value(value: Option<&Value>, form: Form) -> Result<Self, EntryError> {
        match value {
            Some(Value::String(id)) if form == Form::Audit => Ok(Self::Agent(AgentId::from_stored_unchecked(id))),
            Some(Value::String(id)) => {
                if id.len() > MAX_SPIFFE_ID_BYTES {
                    return Err(ShapeError::Subject.into());
                }
                AgentId::parse(id).map(Self::Agent).map_err(|reason| EntryError::AgentId { id: id.clone(), reason })
            }
            Some(Value::Object(m)) if m.len() == 1 => {
                let hash = m.get("code_hash").and_then(Value::as_str).ok_or(ShapeError::Subject)?;
                Ok(Self::CodeHash(parse_hash(hash, "\"code_hash\"")?))
            }
            Some(_) => Err(ShapeError::Subject.into()),
            None => Err(ShapeError::Missing("subject").into()),
        }
    }
}

/// Who filed a signal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signer {
    /// The log ([`LOG_SOURCE`]), unsigned.
    Log,
    /// A registered source, by name.
    Source(String),
    /// An agent, reporting on a peer.
    Agent(AgentId),
}

/// A risk signal.
#[derive(Clone, Debug)]
pub struct Signal {
    /// Who filed it.
    pub signer: Signer,
    /// Whom it is about.
    pub subject: Subject,
    /// What it reports.
    pub signal_type: SignalType,
    /// How severe.
    pub severity: Severity,
    /// A peer report's verdict (only and always on `peer_report`).
    pub assessment: Option<Assessment>,
    /// Free-form evidence (for `drift`: `psi_milli`, `first_index`,
    /// `last_index`).
    pub evidence: Option<Map<String, Value>>,
    /// The signer's signature (sources and agents; not decoded in
    /// [`Form::Leaf`]).
    pub signature: Option<AgentSignature>,
}

fn vocabulary<T>(
    obj: &Map<String, Value>,
    member: &'static str,
    names: &'static [&'static str],
    parse: fn(&str) -> Option<T>,
) -> Result<T, ShapeError> {
    match obj.get(member) {
        Some(Value::String(s)) => parse(s).ok_or(ShapeError::NotOneOf { member, allowed: Members(names) }),
        Some(_) => Err(ShapeError::NotAString(member)),
        None => Err(ShapeError::Missing(member)),
    }
}

impl Signal {
    /// The signal's object (as stored, before the log's members), without
    /// `seq` and `signature`.
    pub fn to_object(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("kind".into(), Value::from(EntryKind::Signal.as_str()));
        let source = match &self.signer {
            Signer::Log => LOG_SOURCE.to_string(),
            Signer::Source(name) => name.clone(),
            Signer::Agent(id) => id.as_str().to_string(),
        };
        m.insert("source".into(), Value::from(source));
        m.insert("subject".into(), self.subject.to_value());
        m.insert("type".into(), Value::from(self.signal_type.as_str()));
        m.insert("severity".into(), Value::from(self.severity.as_str()));
        if let Some(a) = self.assessment {
            m.insert("assessment".into(), Value::from(a.as_str()));
        }
        if let Some(e) = &self.evidence {
            m.insert("evidence".into(), Value::Object(e.clone()));
        }
        m
    }

    /// The subject agent, when the signal names one.
    pub fn subject_agent(&self) -> Option<&AgentId> {
        match &self.subject {
            Subject::Agent(a) => Some(a),
            Subject::CodeHash(_) => None,
        }
    }

    /// Reads a signal as a source or an agent submits it to
    /// `POST /v1/signals` (signed; never the log's `drift`).
    pub fn from_submitted(obj: &Map<String, Value>) -> Result<Self, EntryError> {
        match obj.get("kind") {
            Some(Value::String(k)) if k == EntryKind::Signal.as_str() => Self::from_object(obj, Form::Submitted),
            _ => Err(ShapeError::NotOneOf { member: "kind", allowed: Members(&["signal"]) }.into()),
        }
    }

    pub(super) fn from_object(obj: &Map<String, Value>, form: Form) -> Result<Self, EntryError> {
        only_members(obj, EntryKind::Signal, &MEMBERS)?;
        let source = required_string(obj, "source", MAX_SPIFFE_ID_BYTES)?;
        let signal_type = vocabulary(obj, "type", SignalType::NAMES, SignalType::parse)?;
        let severity = vocabulary(obj, "severity", Severity::NAMES, Severity::parse)?;
        let subject = Subject::from_value(obj.get("subject"), form)?;
        let assessment = match obj.get("assessment") {
            None => None,
            Some(_) => Some(vocabulary(obj, "assessment", Assessment::NAMES, Assessment::parse)?),
        };
        let evidence = match obj.get("evidence") {
            None => None,
            Some(Value::Object(e)) => Some(e.clone()),
            Some(_) => return Err(ShapeError::NotAnObjectMember("evidence").into()),
        };
        let signer = if source == LOG_SOURCE {
            Signer::Log
        } else if source.starts_with("spiffe://") {
            Signer::Agent(if form == Form::Audit {
                AgentId::from_stored_unchecked(source)
            } else {
                AgentId::parse(source).map_err(|reason| EntryError::AgentId { id: source.to_string(), reason })?
            })
        } else {
            check_source_name(source)?;
            Signer::Source(source.to_string())
        };
        // Who may file what, about whom.
        let fits = match (&signer, signal_type) {
            (Signer::Log, SignalType::Drift) => form != Form::Submitted,
            (Signer::Agent(reporter), SignalType::PeerReport) => subject_is_other_agent(&subject, reporter),
            (Signer::Source(_), t) => t.from_sources(),
            _ => false,
        };
        if !fits {
            return Err(ShapeError::SignalSigner.into());
        }
        if matches!(subject, Subject::CodeHash(_)) && !signal_type.may_name_code() {
            return Err(ShapeError::Subject.into());
        }
        if assessment.is_some() != (signal_type == SignalType::PeerReport) {
            return Err(ShapeError::Assessment.into());
        }
        let signed = obj.contains_key("seq") || obj.contains_key("signature");
        if signed == (signer == Signer::Log) {
            // The log's signals are unsigned; everyone else's are signed.
            return Err(ShapeError::SignalSigner.into());
        }
        let signature = if form.reads_signatures() && signed { Some(AgentSignature::from_object(obj)?) } else { None };
        Ok(Self { signer, subject, signal_type, severity, assessment, evidence, signature })
    }
}

fn subject_is_other_agent(subject: &Subject, reporter: &AgentId) -> bool {
    matches!(subject, Subject::Agent(a) if a != reporter)
}
