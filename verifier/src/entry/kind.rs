//! Entry kinds and their names on the wire: the one place a kind is
//! spelled as a string.

use core::fmt;
use core::str::FromStr;

/// What an entry records. Adding a kind: a variant here (with its name in
/// [`EntryKind::as_str`] and its [`Author`]), a file in `entry/` with its
/// struct, and an arm in [`super::Entry`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum EntryKind {
    /// Something an agent did (agent-signed).
    Action,
    /// An agent's passport (admin).
    Passport,
    /// A key rotation, signed by the old and the new key (agent-signed).
    Rotation,
    /// An agent taken out of service (admin).
    Retirement,
    /// A self-attestation and the log's verdict on it (agent-signed).
    Attestation,
    /// The trust policy in force from this entry on (the log).
    Policy,
    /// A signal source registered with its key (admin).
    Source,
    /// A risk signal about an agent or a code hash (a registered source,
    /// an agent's peer report, or the log's drift detector).
    Signal,
    /// An agent revoked: its score fell below the threshold, or an admin
    /// quarantined it (the log or an admin).
    Revocation,
    /// A revoked agent reinstated after a fresh attestation (admin).
    Reinstatement,
    /// An agent's risk level changed (the log).
    Risk,
    /// An action token issued (the log; the token itself is not logged).
    Token,
    /// A token request waiting for a human (the log).
    Escalation,
    /// An escalation approved or denied (an admin) or expired (the log).
    Decision,
}

/// Who writes an entry of a kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Author {
    /// The agent, which signs it with its key in force and a fresh `seq`.
    Agent,
    /// An administrator of the log (unsigned; the log authenticates the admin).
    Admin,
    /// The log itself, from what it folds (unsigned; the auditor recomputes it).
    Log,
    /// A signer other than the subject: a registered signal source, or an
    /// agent reporting on a peer (signed), or the log (drift, unsigned).
    Source,
}

impl EntryKind {
    /// Every kind, in declaration order.
    pub const ALL: [Self; 14] = [
        Self::Action,
        Self::Passport,
        Self::Rotation,
        Self::Retirement,
        Self::Attestation,
        Self::Policy,
        Self::Source,
        Self::Signal,
        Self::Revocation,
        Self::Reinstatement,
        Self::Risk,
        Self::Token,
        Self::Escalation,
        Self::Decision,
    ];

    /// The kind's name on the wire (the `"kind"` member).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Action => "action",
            Self::Passport => "passport",
            Self::Rotation => "rotation",
            Self::Retirement => "retirement",
            Self::Attestation => "attestation",
            Self::Policy => "policy",
            Self::Source => "source",
            Self::Signal => "signal",
            Self::Revocation => "revocation",
            Self::Reinstatement => "reinstatement",
            Self::Risk => "risk",
            Self::Token => "token",
            Self::Escalation => "escalation",
            Self::Decision => "decision",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Who writes entries of this kind.
    pub const fn author(self) -> Author {
        match self {
            Self::Action | Self::Rotation | Self::Attestation => Author::Agent,
            Self::Passport | Self::Retirement | Self::Source | Self::Reinstatement => Author::Admin,
            // A revocation is the log's when a score falls, an admin's on
            // quarantine; its `reason` says which.
            // A decision is an admin's, or the log's when it expires.
            Self::Policy | Self::Revocation | Self::Risk | Self::Token | Self::Escalation | Self::Decision => Author::Log,
            Self::Signal => Author::Source,
        }
    }

    /// Whether the agent signs entries of this kind.
    pub const fn is_agent_signed(self) -> bool {
        matches!(self.author(), Author::Agent)
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is no kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown entry kind")]
pub struct UnknownKind;

impl FromStr for EntryKind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, UnknownKind> {
        Self::parse(s).ok_or(UnknownKind)
    }
}

impl serde::Serialize for EntryKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
