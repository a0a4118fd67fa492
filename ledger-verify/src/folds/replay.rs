//! The trust fold's entries checked against the state they were decided
//! on: every `revocation` for a score, `risk` change, `token` and
//! `escalation` the log wrote from its trust view is decided again with
//! the same rules (`verifier::fold::grant::decide`, the band rule, the
//! threshold) from the agent's state it cites; no crossing of the
//! threshold is left unlogged for more than [`MISSING_AFTER_MS`] while the
//! log was writing; drift findings are announced. [`super::Folds`] runs
//! it on every leaf.

use std::collections::{HashMap, VecDeque};

use verifier::agent_id::AgentId;
use verifier::entry::{Basis, Decision, Entry, RevocationReason, Scope};
use verifier::fold::grant::{self, Granted};
use verifier::fold::registry::Registry;
use verifier::fold::trust::AgentTrust;
use verifier::fold::trust_log::{PolicyInForce, TrustMap};

/// How long after its crossing instant a revocation may be logged before an
/// auditor calls it missing (the log aims at one second).
pub const MISSING_AFTER_MS: u64 = 5_000;

/// States the trust fold passed through, for checking the entries the
/// log wrote from its view against the state they were decided on.
#[derive(Default)]
pub(crate) struct Replay {
    /// Each agent's last [`HISTORY`] score states (drift detectors left
    /// out), each kept only when it differs from the one before.
    history: HashMap<AgentId, VecDeque<State>>,
    /// Every policy entry: its index, time and policy.
    policies: Vec<(u64, u64, PolicyInForce)>,
}

/// An agent's score state from entry `index` (integrated at `time`) on.
struct State {
    index: u64,
    time: u64,
    trust: AgentTrust,
}

/// What the checks read besides the history: the folds so far and the
/// integrated time of every entry so far.
pub(crate) struct Context<'a> {
    pub(crate) trust: &'a TrustMap,
    pub(crate) registry: &'a Registry,
    pub(crate) times: &'a [u64],
    /// Index and time of every entry before this one that came from
    /// outside the log (agents, sources, the admin): proof that the log was
    /// up and writing then. The log's own entries (its trigger's, its
    /// policy at start) are not: after a restart the trigger logs what is
    /// owed before anything else.
    pub(crate) external: &'a [(u64, u64)],
}

/// Score states kept per agent: the log decides right before it appends,
/// so a decision refers to one of the agent's last states.
const HISTORY: usize = 64;

impl Replay {
    pub(crate) fn remember(&mut self, trust: &TrustMap, index: u64, time: u64, touched: &[AgentId]) {
        if trust.policy.index == Some(index) {
            self.policies.push((index, time, trust.policy.clone()));
        }
        for agent in touched {
            if let Some(record) = trust.agents.get(agent) {
                let states = self.history.entry(agent.clone()).or_default();
                if states.back().is_some_and(|s| s.trust == record.trust) {
                    continue;
                }
                if states.len() == HISTORY {
                    states.pop_front();
                }
                states.push_back(State { index, time, trust: record.trust.clone() });
            }
        }
    }

    /// The policy in force after entry `index`, and when it took effect.
    fn policy_at(&self, index: u64) -> (PolicyInForce, u64) {
        self.policies.iter().rev().find(|(i, _, _)| *i <= index).map_or_else(|| (PolicyInForce::default(), 0), |(_, t, p)| (p.clone(), *t))
    }

    /// `agent`'s score state after entry `index`.
    fn state_at(&self, agent: &AgentId, index: u64) -> Result<&State, String> {
        let states = self.history.get(agent).ok_or_else(|| format!("{agent} has no trust record"))?;
        match states.iter().rev().find(|s| s.index <= index) {
            Some(state) => Ok(state),
            None => Err(format!("the decision on {agent} refers to entry {index}, older than the states kept ({HISTORY})")),
        }
    }

    /// Checks an entry the log wrote from its trust view against the state
    /// it was decided on, and that no crossing went unlogged while the log
    /// was writing entries (`times`: the integrated time of every entry
    /// before this one).
    pub(crate) fn check(&self, ctx: &Context<'_>, index: u64, t: u64, entry: &Entry, counts: &mut [u64; 4]) -> Result<(), String> {
        let Some(agent) = entry.agent() else { return Ok(()) };
        let Some(now) = ctx.trust.agents.get(agent) else { return Ok(()) };
        if ctx.registry.get(agent).is_some_and(|s| s.retired.is_some()) {
            // A retired agent is never revoked (the registry refuses it).
            return Ok(());
        }
        let (policy, since) = self.policy_at(index.saturating_sub(1));
        match entry {
            // A revocation for a score may come late only if the log wrote
            // nothing meanwhile (it was down): the trigger logs a
            // crossing within a second.
            Entry::Revocation(r) if r.reason == RevocationReason::Score => {
                late_revocation(agent, &now.trust, &policy, since, ctx.external)?
            }
            Entry::Revocation(_) => {}
            _ => missing_revocation(agent, &now.trust, &policy, since, t)?,
        }
        let decided = |decision: &Decision| -> Result<(&AgentTrust, PolicyInForce, u8), String> {
            let as_of_time = ctx.times.get(usize::try_from(decision.as_of_index).unwrap_or(usize::MAX)).copied();
            if decision.as_of_index >= index || decision.decided_at > t || as_of_time.is_none_or(|a| decision.decided_at < a) {
                return Err(format!(
                    "its decision (entry {}, at {} ms) is not between that entry and it",
                    decision.as_of_index, decision.decided_at
                ));
            }
            let state = self.state_at(agent, decision.as_of_index)?;
            // The state decided on is the agent's latest but for entries
            // integrated shortly before the decision (those the log may
            // not have applied yet).
            let newer = self.history.get(agent).and_then(|states| {
                states
                    .iter()
                    .find(|s| s.index > state.index && s.index < index && s.time.saturating_add(MISSING_AFTER_MS) <= decision.decided_at)
            });
            if let Some(newer) = newer {
                return Err(format!(
                    "it was decided on the state after entry {}, but entry {} changed the agent more than {MISSING_AFTER_MS} ms before the decision",
                    decision.as_of_index, newer.index
                ));
            }
            let (policy, _) = self.policy_at(decision.as_of_index);
            let score = state.trust.score(&policy.policy, decision.decided_at);
            Ok((&state.trust, policy, score))
        };
        match entry {
            Entry::Revocation(r) if r.reason == RevocationReason::Score => {
                counts[0] += 1;
                let decision = r.decision.as_ref().ok_or("a revocation for a score without its decision")?;
                let (decided_on, policy, score) = decided(decision)?;
                let p = &policy.policy;
                if score != r.score
                    || score >= p.revocation_threshold
                    || r.threshold != p.revocation_threshold
                    || decided_on.revoked().is_some()
                {
                    return Err(format!(
                        "revocation of {agent} for a score of {} (threshold {}), but as decided (entry {}, {} ms) the score is {score}, the threshold {}",
                        r.score, r.threshold, decision.as_of_index, decision.decided_at, p.revocation_threshold
                    ));
                }
            }
            Entry::Risk(r) => {
                counts[1] += 1;
                let (decided_on, policy, score) = decided(&r.decision)?;
                let target = decided_on.level().target(&policy.policy, score);
                if r.previous != decided_on.level() || r.current != target || r.score != score || r.policy_index != policy.index {
                    return Err(format!(
                        "risk change of {agent} from {} to {} at score {}, but as decided the level is {}, the score {score} and the band rule gives {target}",
                        r.previous,
                        r.current,
                        r.score,
                        decided_on.level()
                    ));
                }
            }
            Entry::Token(tok) => {
                let (decided_on, policy, _) = decided(&tok.basis.decision)?;
                let lifetime = tok.expires.saturating_sub(tok.not_before);
                let check = |g: &Granted<'_>| {
                    if tok.not_before != tok.basis.decision.decided_at {
                        Some(format!(
                            "it is valid from {} ms, not from when it was decided ({} ms)",
                            tok.not_before, tok.basis.decision.decided_at
                        ))
                    } else if lifetime > u64::from(g.class.max_lifetime_s) * 1000 || tok.single_use != g.class.single_use {
                        Some(format!(
                            "a lifetime of {lifetime} ms (single use: {}) where the class allows {} s",
                            tok.single_use, g.class.max_lifetime_s
                        ))
                    } else if g.class.human_approval && tok.escalation.is_none() {
                        Some(format!("class {:?} needs a human's approval, and the token answers no escalation", g.class_name))
                    } else {
                        None
                    }
                };
                regranted(&tok.scope, &tok.basis, decided_on, &policy, check)
                    .map_err(|problem| format!("token {} for {agent}: {problem}", tok.jti))?;
                counts[3] += 1;
            }
            Entry::Escalation(e) => {
                let (decided_on, policy, _) = decided(&e.basis.decision)?;
                let check = |g: &Granted<'_>| {
                    if !g.class.human_approval {
                        Some(format!("class {:?} needs no human", g.class_name))
                    } else if e.lifetime_s > g.class.max_lifetime_s {
                        Some(format!("a lifetime of {} s where the class allows {} s", e.lifetime_s, g.class.max_lifetime_s))
                    } else {
                        None
                    }
                };
                regranted(&e.scope, &e.basis, decided_on, &policy, check).map_err(|problem| format!("escalation of {agent}: {problem}"))?;
            }
            Entry::Reinstatement(r) if now.trust.reinstatement_basis() != Ok(r.attestation_index) => {
                return Err(format!(
                    "reinstatement of {agent} on attestation {}, which is not its last successful attestation after its revocation",
                    r.attestation_index
                ));
            }
            _ => {}
        }
        Ok(())
    }

    /// At the last entry's time: no agent left below the threshold
    /// unrevoked, and no drift finding unannounced, for longer than
    /// [`MISSING_AFTER_MS`].
    pub(crate) fn owed_at_end(&self, ctx: &Context<'_>, last: u64) -> Option<String> {
        let (policy, since) = self.policy_at(u64::MAX);
        for (agent, record) in &ctx.trust.agents {
            if ctx.registry.get(agent).is_some_and(|s| s.retired.is_some()) {
                continue;
            }
            if let Err(message) = missing_revocation(agent, &record.trust, &policy, since, last) {
                return Some(message);
            }
            if let Some(f) = record.owed_drift.first() {
                let closed = ctx.times.get(usize::try_from(f.last_index).unwrap_or(usize::MAX)).copied().unwrap_or(0);
                if last > closed.saturating_add(MISSING_AFTER_MS) {
                    return Some(format!(
                        "the drift finding of {agent} over entries {}..={} was never announced",
                        f.first_index, f.last_index
                    ));
                }
            }
        }
        None
    }
}

/// Decides a grant again ([`verifier::fold::grant::decide`], the rule the
/// log decided with) from the state an entry says it was decided on, and
/// compares with what the entry records: the score, the class and its
/// minimum, the policy; then `more` (a token's lifetime, an escalation's
/// class).
fn regranted(
    scope: &Scope,
    basis: &Basis,
    decided_on: &AgentTrust,
    policy: &PolicyInForce,
    more: impl FnOnce(&Granted<'_>) -> Option<String>,
) -> Result<(), String> {
    let granted = grant::decide(decided_on, &policy.policy, basis.decision.decided_at, &scope.action, &scope.resource)
        .map_err(|refusal| format!("as decided, it is refused: {refusal:?}"))?;
    let problem = if granted.score != basis.score || basis.required != granted.class.min_score {
        Some(format!(
            "it records score {} against a minimum of {}, but as decided the score is {} and class {:?} needs {}",
            basis.score, basis.required, granted.score, granted.class_name, granted.class.min_score
        ))
    } else if scope.class != granted.class_name || basis.policy_index != policy.index {
        Some(format!("it records class {:?}, the policy in force gives {:?}", scope.class, granted.class_name))
    } else {
        more(&granted)
    };
    problem.map_or(Ok(()), Err)
}

/// Fails when `trust` crossed the threshold ([`crossing`]) more than
/// [`MISSING_AFTER_MS`] before `t`.
fn missing_revocation(agent: &AgentId, trust: &AgentTrust, policy: &PolicyInForce, since: u64, t: u64) -> Result<(), String> {
    match crossing(trust, policy, since) {
        Some(c) if t > c.saturating_add(MISSING_AFTER_MS) => {
            Err(format!("{agent} crossed the revocation threshold at {c} ms and was not revoked by {t} ms"))
        }
        _ => Ok(()),
    }
}

/// Fails when the revocation of `trust` (its state before the revocation)
/// comes more than [`MISSING_AFTER_MS`] after its crossing although the
/// log took entries from outside in the meantime (`external`: index and
/// time of each, before the revocation): a log that was down logs it when
/// it is back, one that was up has no excuse.
fn late_revocation(agent: &AgentId, trust: &AgentTrust, policy: &PolicyInForce, since: u64, external: &[(u64, u64)]) -> Result<(), String> {
    let Some(c) = crossing(trust, policy, since) else { return Ok(()) };
    let deadline = c.saturating_add(MISSING_AFTER_MS);
    match external.get(external.partition_point(|&(_, t)| t <= deadline)) {
        Some(&(index, t)) => Err(format!(
            "{agent} crossed the revocation threshold at {c} ms, but was revoked only after entry {index} ({t} ms) was written"
        )),
        None => Ok(()),
    }
}

/// Whether an entry came from outside the log (an agent, a source, the
/// admin) rather than from the log itself (its trigger's revocations for a
/// score, risk changes and drift signals; policy entries).
pub(crate) fn external(entry: &Entry) -> bool {
    match entry {
        Entry::Revocation(r) => r.reason != RevocationReason::Score,
        Entry::Risk(_) | Entry::Policy(_) => false,
        Entry::Signal(s) => !matches!(s.signer, verifier::entry::Signer::Log),
        _ => true,
    }
}

/// When `trust`, not revoked, falls below the threshold: counted from its
/// last evidence or from when the policy took effect (`since`), whichever
/// is later (a stricter policy cannot have been crossed before it
/// existed).
fn crossing(trust: &AgentTrust, policy: &PolicyInForce, since: u64) -> Option<u64> {
    if trust.revoked().is_some() {
        return None;
    }
    let (_, _, _, evidence_ms) = trust.evidence();
    trust.crossing(&policy.policy, evidence_ms.max(since), policy.policy.revocation_threshold)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use verifier::entry::Revocation;
    use verifier::fold::drift::DriftState;
    use verifier::fold::policy::Policy;
    use verifier::fold::trust::Evidence;
    use verifier::fold::trust_log::TrustRecord;

    /// Freshness halves every second from the last attestation: 60 falls
    /// below 30 one second after it.
    fn fast() -> PolicyInForce {
        PolicyInForce { policy: Policy { attestation_grace_s: 0, attestation_half_life_s: 1, ..Policy::default() }, index: None }
    }

    fn agent() -> AgentId {
        AgentId::parse("spiffe://example.org/agent/a").unwrap()
    }

    #[test]
    fn a_late_revocation_fails_only_when_the_log_wrote_entries_meanwhile() {
        let policy = fast();
        let trust = AgentTrust::register(&policy.policy, 0, 0);
        let c = crossing(&trust, &policy, 0).unwrap();
        // A log that wrote nothing past the deadline was down: excused.
        late_revocation(&agent(), &trust, &policy, 0, &[(0, 0), (1, c + MISSING_AFTER_MS)]).unwrap();
        let err = late_revocation(&agent(), &trust, &policy, 0, &[(0, 0), (1, c), (3, c + MISSING_AFTER_MS + 1)]).unwrap_err();
        assert!(err.contains("after entry 3"), "{err}");
        missing_revocation(&agent(), &trust, &policy, 0, c + MISSING_AFTER_MS).unwrap();
        assert!(missing_revocation(&agent(), &trust, &policy, 0, c + MISSING_AFTER_MS + 1).is_err());
    }

    #[test]
    fn a_revocation_decided_on_a_stale_state_or_before_that_state_fails() {
        let policy = fast();
        let p = &policy.policy;
        // Registered at entry 0 (0 ms), attested at entry 1 (10 s).
        let registered = AgentTrust::register(p, 0, 0);
        let mut attested = registered.clone();
        attested.apply(p, 1, 10_000, &Evidence::Attestation { ok: true, tpm: false });
        let mut replay = Replay { policies: vec![(0, 0, policy.clone())], ..Replay::default() };
        replay.history.insert(
            agent(),
            VecDeque::from([
                State { index: 0, time: 0, trust: registered.clone() },
                State { index: 1, time: 10_000, trust: attested.clone() },
            ]),
        );
        let mut trust = TrustMap::default();
        let record =
            TrustRecord { trust: attested.clone(), drift: DriftState::new(p), code_hash: [0; 32], owed_drift: vec![], peers: vec![] };
        trust.agents.insert(agent(), record);
        let registry = Registry::new("example.org/log");
        // The revocation is entry 2, at 16.1 s.
        let times = [0, 10_000, 16_100];
        let ctx = Context { trust: &trust, registry: &registry, times: &times, external: &[(0, 0), (1, 10_000)] };
        let revocation = |as_of_index: u64, decided_at: u64, state: &AgentTrust| {
            Entry::Revocation(Revocation {
                agent: agent(),
                reason: RevocationReason::Score,
                score: state.score(p, decided_at),
                threshold: p.revocation_threshold,
                causes: vec![],
                policy_index: None,
                decision: Some(Decision { as_of_index, decided_at }),
                note: None,
                tokens: Vec::new(),
            })
        };
        let mut counts = [0; 4];
        // Honest: the latest state, read 100 ms before the entry.
        replay.check(&ctx, 2, 16_100, &revocation(1, 16_000, &attested), &mut counts).unwrap();
        // The state before the attestation, which came 6 s before the
        // decision.
        let err = replay.check(&ctx, 2, 16_100, &revocation(0, 16_000, &registered), &mut counts).unwrap_err();
        assert!(err.contains("entry 1 changed the agent"), "{err}");
        // Decided long before it was logged (pushed back, say), on the
        // latest state: the score then was below the threshold already.
        replay.check(&ctx, 2, 16_100, &revocation(1, 11_500, &attested), &mut counts).unwrap();
        // Decided before the state it cites existed.
        let err = replay.check(&ctx, 2, 16_100, &revocation(1, 9_000, &attested), &mut counts).unwrap_err();
        assert!(err.contains("not between"), "{err}");
    }

    #[test]
    fn a_token_must_meet_its_class_as_decided() {
        use verifier::entry::{Basis, Scope, TokenIssued};
        use verifier::fold::policy::{RiskClass, TokenPolicy};
        let mut policy = PolicyInForce::default();
        let high = RiskClass { min_score: 61, ..RiskClass::default() };
        let human = RiskClass { min_score: 10, human_approval: true, ..RiskClass::default() };
        policy.policy.tokens = TokenPolicy {
            classes: [("high".to_owned(), high), ("human".to_owned(), human)].into_iter().collect(),
            rules: vec![
                verifier::fold::policy::classes::ActionRule { action: "db.update".into(), resource: "*".into(), class: "high".into() },
                verifier::fold::policy::classes::ActionRule { action: "pay".into(), resource: "*".into(), class: "human".into() },
            ],
            ..TokenPolicy::default()
        };
        let p = &policy.policy;
        // Registered at entry 0 with 60; attested at entry 1 (a higher score).
        let registered = AgentTrust::register(p, 0, 0);
        let mut attested = registered.clone();
        attested.apply(p, 1, 1_000, &Evidence::Attestation { ok: true, tpm: false });
        let (low, high_score) = (registered.score(p, 1_000), attested.score(p, 1_100));
        assert!(low < 61 && high_score >= 61, "{low} {high_score}");
        let mut replay = Replay { policies: vec![(0, 0, policy.clone())], ..Replay::default() };
        replay.history.insert(
            agent(),
            VecDeque::from([
                State { index: 0, time: 0, trust: registered.clone() },
                State { index: 1, time: 1_000, trust: attested.clone() },
            ]),
        );
        let mut trust = TrustMap::default();
        let record = TrustRecord { trust: attested, drift: DriftState::new(p), code_hash: [0; 32], owed_drift: vec![], peers: vec![] };
        trust.agents.insert(agent(), record);
        let registry = Registry::new("example.org/log");
        let times = [0, 1_000, 1_200];
        let ctx = Context { trust: &trust, registry: &registry, times: &times, external: &[(0, 0), (1, 1_000)] };
        let token = |action: &str, as_of_index: u64, score: u8, required: u8, class: &str| {
            Entry::Token(TokenIssued {
                agent: agent(),
                jti: "0".repeat(32),
                scope: Scope { action: action.into(), resource: "sqlite://x".into(), constraints: Default::default(), class: class.into() },
                single_use: true,
                not_before: 1_100,
                expires: 11_100,
                basis: Basis { score, required, policy_index: None, decision: Decision { as_of_index, decided_at: 1_100 } },
                escalation: None,
            })
        };
        let mut counts = [0; 4];
        replay.check(&ctx, 2, 1_200, &token("db.update", 1, high_score, 61, "high"), &mut counts).unwrap();
        // A required score other than the class's, a score other than the
        // recomputed one, a class other than the policy's.
        assert!(replay.check(&ctx, 2, 1_200, &token("db.update", 1, high_score, 50, "high"), &mut counts).is_err());
        assert!(replay.check(&ctx, 2, 1_200, &token("db.update", 1, 99, 61, "high"), &mut counts).is_err());
        assert!(replay.check(&ctx, 2, 1_200, &token("db.update", 1, high_score, 50, "default"), &mut counts).is_err());
        // Decided on the state before the attestation: below the minimum.
        let err = replay.check(&ctx, 2, 1_200, &token("db.update", 0, low, 61, "high"), &mut counts).unwrap_err();
        assert!(err.contains(&format!("ScoreTooLow {{ score: {low}, required: 61 }}")), "{err}");
        // A class that needs a human, without an escalation.
        let err = replay.check(&ctx, 2, 1_200, &token("pay", 1, high_score, 10, "human"), &mut counts).unwrap_err();
        assert!(err.contains("human"), "{err}");
        assert_eq!(counts[3], 1);
    }
}
