//! What `ledger-verify trust` checks of action tokens and escalations
//! besides the scores they were issued at ([`super::replay`] checks those
//! with the trust fold): every escalation is decided at most once, every
//! decision answers an escalation of its agent, and every token that
//! answers an escalation follows its approval, for exactly what was asked,
//! once.

use std::collections::HashMap;

use verifier::entry::{Entry, Outcome, Scope};

/// An escalation as the audit has seen it.
struct Seen {
    agent: String,
    scope: Scope,
    expires_at: u64,
    outcome: Option<Outcome>,
    answered: bool,
}

/// The escalations seen so far.
#[derive(Default)]
pub(crate) struct Escalations {
    seen: HashMap<u64, Seen>,
    /// Decisions checked, tokens checked against their escalation.
    pub(crate) counts: [u64; 2],
}

impl Escalations {
    /// Checks the entry at `index`, integrated at `t`, against what came
    /// before it.
    pub(crate) fn check(&mut self, index: u64, t: u64, entry: &Entry) -> Result<(), String> {
        match entry {
            Entry::Escalation(e) => {
                let scope = e.scope.clone();
                let seen = Seen { agent: e.agent.as_str().to_owned(), scope, expires_at: e.expires_at, outcome: None, answered: false };
                self.seen.insert(index, seen);
            }
            Entry::Decision(d) => {
                let e = self
                    .seen
                    .get_mut(&d.escalation)
                    .ok_or_else(|| format!("a decision on entry {}, which is no escalation", d.escalation))?;
                if e.agent != d.agent.as_str() {
                    return Err(format!("the decision on escalation {} names another agent", d.escalation));
                }
                if let Some(before) = e.outcome {
                    return Err(format!("escalation {} decided twice ({} then {})", d.escalation, before.as_str(), d.outcome.as_str()));
                }
                // The decider checks the clock before the decision is
                // sequenced: a decision may land this long after it.
                if d.outcome == Outcome::Approved && t > e.expires_at.saturating_add(super::replay::MISSING_AFTER_MS) {
                    return Err(format!("escalation {} approved at {t} ms, after it expired at {} ms", d.escalation, e.expires_at));
                }
                e.outcome = Some(d.outcome);
                self.counts[0] += 1;
            }
            Entry::Token(t) => {
                let Some(at) = t.escalation else { return Ok(()) };
                let e = self.seen.get_mut(&at).ok_or_else(|| format!("a token answering entry {at}, which is no escalation"))?;
                if e.outcome != Some(Outcome::Approved) {
                    return Err(format!("a token answers escalation {at}, which was not approved before it"));
                }
                if e.answered {
                    return Err(format!("a second token answers escalation {at}"));
                }
                let same = e.agent == t.agent.as_str()
                    && e.scope.action == t.scope.action
                    && e.scope.resource == t.scope.resource
                    && e.scope.constraints == t.scope.constraints;
                if !same {
                    return Err(format!("the token answering escalation {at} is not for what it asked"));
                }
                e.answered = true;
                self.counts[1] += 1;
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use verifier::entry::{Basis, Decision, Escalation, EscalationDecision, TokenIssued};
    use verifier::token::Constraints;
    use verifier::AgentId;

    use super::*;

    fn scope() -> Scope {
        Scope {
            action: "payments.transfer".into(),
            resource: "bank://x".into(),
            constraints: Constraints::default(),
            class: "critical".into(),
        }
    }

    fn basis() -> Basis {
        Basis { score: 70, required: 60, policy_index: None, decision: Decision { as_of_index: 0, decided_at: 1 } }
    }

    fn agent() -> AgentId {
        AgentId::parse("spiffe://example.org/agent/a").unwrap()
    }

    fn token(escalation: Option<u64>) -> Entry {
        Entry::Token(TokenIssued {
            agent: agent(),
            jti: "0".repeat(32),
            scope: scope(),
            single_use: true,
            not_before: 1,
            expires: 2,
            basis: basis(),
            escalation,
        })
    }

    fn decision(escalation: u64, outcome: Outcome) -> Entry {
        Entry::Decision(EscalationDecision { agent: agent(), escalation, outcome, note: None })
    }

    #[test]
    fn escalations_are_decided_once_and_answered_once_after_approval() {
        let mut e = Escalations::default();
        let esc = Entry::Escalation(Escalation { agent: agent(), scope: scope(), lifetime_s: 10, basis: basis(), expires_at: 9 });
        e.check(1, 1, &esc).unwrap();
        assert!(e.check(2, 1, &token(Some(1))).unwrap_err().contains("not approved"));
        e.check(3, 1, &decision(1, Outcome::Approved)).unwrap();
        assert!(e.check(4, 1, &decision(1, Outcome::Denied)).unwrap_err().contains("decided twice"));
        e.check(5, 1, &token(Some(1))).unwrap();
        assert!(e.check(6, 1, &token(Some(1))).unwrap_err().contains("second token"));
        assert!(e.check(7, 1, &decision(99, Outcome::Denied)).unwrap_err().contains("no escalation"));
        e.check(8, 1, &esc).unwrap();
        e.check(9, 1, &decision(8, Outcome::Expired)).unwrap();
        assert!(e.check(10, 1, &token(Some(8))).is_err());
        assert_eq!(e.counts, [2, 1]);
        // Approved long after it expired.
        e.check(11, 1, &esc).unwrap();
        assert!(e.check(12, 9 + 5_001, &decision(11, Outcome::Approved)).unwrap_err().contains("after it expired"));
    }
}
