//! The one rule an action token (or an escalation towards one) is granted
//! by, from an agent's trust state under the policy in force at an instant
//! (docs/POLICY.md, "How a request is decided"). The log's issuer decides
//! with it before it appends a `token` or `escalation` entry; `ledger-verify
//! trust` decides again, from the state the entry says it was decided on,
//! and compares.
#![deny(clippy::float_arithmetic)]

use super::policy::{Policy, RiskClass};
use super::trust::AgentTrust;

/// Why a grant is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantRefusal {
    /// The agent is revoked (by its score or by an admin).
    Revoked,
    /// Its score is below the revocation threshold (its revocation is
    /// being logged).
    BelowThreshold {
        /// The score.
        score: u8,
        /// The threshold.
        threshold: u8,
    },
    /// Its score is below the class's minimum.
    ScoreTooLow {
        /// The score.
        score: u8,
        /// The class's minimum.
        required: u8,
    },
    /// The class needs a successful attestation younger than the agent's
    /// latest.
    FreshAttestationRequired {
        /// The class's `fresh_attestation_s`.
        max_age_s: u32,
        /// When the latest successful attestation was integrated, ms.
        last_ok_at: Option<u64>,
    },
}

/// A grant's basis: the score it was decided at, and the class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Granted<'p> {
    /// The agent's score at the instant.
    pub score: u8,
    /// The class's name (`default` when no rule matches).
    pub class_name: &'p str,
    /// The class.
    pub class: RiskClass,
}

/// Decides a grant of `action` on `resource` to an agent in state `trust`
/// at `at_ms` under `policy`: not revoked, at or above the revocation
/// threshold, at or above the class's minimum, and attested within the
/// class's `fresh_attestation_s` when it has one.
pub fn decide<'p>(trust: &AgentTrust, policy: &'p Policy, at_ms: u64, action: &str, resource: &str) -> Result<Granted<'p>, GrantRefusal> {
    if trust.revoked().is_some() {
        return Err(GrantRefusal::Revoked);
    }
    let score = trust.score(policy, at_ms);
    if score < policy.revocation_threshold {
        return Err(GrantRefusal::BelowThreshold { score, threshold: policy.revocation_threshold });
    }
    let (class_name, class) = policy.tokens.classify(action, resource);
    if score < class.min_score {
        return Err(GrantRefusal::ScoreTooLow { score, required: class.min_score });
    }
    if class.fresh_attestation_s > 0 {
        let last_ok_at = trust.last_ok_attestation().map(|(_, t)| t);
        if last_ok_at.is_none_or(|t| at_ms.saturating_sub(t) > u64::from(class.fresh_attestation_s) * 1000) {
            return Err(GrantRefusal::FreshAttestationRequired { max_age_s: class.fresh_attestation_s, last_ok_at });
        }
    }
    Ok(Granted { score, class_name, class: *class })
}
