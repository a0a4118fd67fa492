//! `ledger-verify trust`: recomputes every trust score from the log and
//! compares with what the server reports (docs/TRUST.md).
//!
//! The server's report is fetched first (one agent, or the listing of
//! every agent by score, at most 1,000, with their number), with the index and instant it is "as of"; then the latest
//! checkpoint and every leaf up to it (tlog-tiles entry bundles), checked
//! against the checkpoint's root. The leaves up to the report's index are
//! replayed through the registry and sources folds (every agent and
//! source signature against the key in force) and the trust fold (`verifier::fold::trust_log`), the very
//! folds the server keeps its views with. Every entry the log wrote from
//! its fold is checked on the way:
//!
//! * a `revocation` for a score: the score at its time is below the
//!   threshold, and at most the score it records;
//! * a `risk` entry: its previous level is the logged one, its current
//!   level the band rule's for the score it records, which is at least the
//!   score at its time;
//! * a `drift` signal: it records a finding the detector owed
//!   ([`Violation`]);
//! * no crossing of the threshold is left unlogged for more than
//!   [`MISSING_AFTER_MS`];
//! * a `token`: issued while the agent, not revoked, scored at least its
//!   class's minimum under the policy in force (recomputed from the state
//!   it was decided on), with the class, lifetime and single use the policy
//!   gives, and after a human's approval where the class needs one
//!   ([`crate::grants`]: each escalation decided once, each approved one
//!   answered once, by a token for what it asked).
//!
//! Then each reported score is compared with the recomputed one at the
//! report's instant; a listing must be the first agents recomputed by
//! (score, id), and its `total` the number of agents. The first entry that breaks a rule, or the first
//! agent whose score differs (with the entries that last moved it), is the
//! failure.

use std::time::Instant;

use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use verifier::agent_id::AgentId;

use verifier::entry::{Basis, Decision, Entry, Form, Leaf, RevocationReason, Scope};
use verifier::fold::grant::{self, Granted};
use verifier::fold::registry::Registry;
use verifier::fold::trust::AgentTrust;
use verifier::fold::trust_log::{PolicyInForce, TrustMap, TrustStore as _};
use verifier::wire::{TrustListing, TrustScore};

use crate::folds::Folds;
use crate::{agent, escape, fail, fetch_checkpoint, fetch_leaves, get_json, leaves_match, load_key, Failure, Outcome};

/// How long after its crossing instant a revocation may be logged before an
/// auditor calls it missing (the log aims at one second).
pub const MISSING_AFTER_MS: u64 = 5_000;

/// Most agents `GET /v1/trust` lists (its default limit).
const MAX_LISTED: usize = 1000;

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

/// One agent's score as the server reports it.
struct Reported {
    agent: AgentId,
    score: u8,
    level: String,
}

pub(crate) fn check_trust(url: &str, key: &str, only: Option<&str>) -> anyhow::Result<Outcome> {
    let verifier = load_key(key)?;
    let base = url.trim_end_matches('/');
    let http = agent();
    let report: Value = match only {
        Some(id) => get_json(&http, &format!("{base}/v1/agents/{}/trust", verifier::agent_id::encode_id(id)))?,
        None => get_json(&http, &format!("{base}/v1/trust"))?,
    };
    let unexpected = |e: serde_json::Error| anyhow::anyhow!("unexpected trust report from the server: {e}");
    let (as_of_index, as_of_time, total, reported): (u64, u64, Option<u64>, Vec<Reported>) = match only {
        Some(id) => {
            let score: TrustScore = serde_json::from_value(report.clone()).map_err(unexpected)?;
            if score.agent != id {
                return fail(format!("asked for {}, the server reported {}", escape::text(id), escape::text(&score.agent)), report.clone());
            }
            let row = Reported { agent: AgentId::from_stored_unchecked(&score.agent), score: score.score, level: score.level };
            (score.as_of_index, score.as_of_time, None, vec![row])
        }
        None => {
            let listing: TrustListing = serde_json::from_value(report.clone()).map_err(unexpected)?;
            let rows = listing
                .agents
                .into_iter()
                .map(|a| Reported { agent: AgentId::from_stored_unchecked(&a.agent), score: a.score, level: a.level })
                .collect();
            (listing.as_of_index, listing.as_of_time, Some(listing.total), rows)
        }
    };
    let (note, cp) = match fetch_checkpoint(&http, base, &verifier)? {
        Ok(found) => found,
        Err(failed) => return Ok(failed),
    };
    if cp.size <= as_of_index {
        return fail(
            format!("the checkpoint (size {}) does not cover the report's index {as_of_index}", cp.size),
            json!({ "checkpoint": note }),
        );
    }
    let leaves = match fetch_leaves(&http, base, &note, &cp)? {
        Ok(leaves) => leaves,
        Err(failed) => return Ok(failed),
    };
    if !leaves_match(&leaves, &cp) {
        return fail("the entries do not hash to the checkpoint's root", json!({ "checkpoint": note }));
    }
    let started = Instant::now();
    // Every entry up to the checkpoint is folded and checked (the server
    // does not choose where the audit stops); the scores are compared as
    // of the report's index.
    let n = cp.size;
    let mut folds = Folds::new(verifier.key().name());
    let mut reported_state = None;
    for (index, bytes) in (0..n).zip(&leaves) {
        let broken = |message: String| fail(format!("entry {index}: {message}"), json!({ "checkpoint": note, "index": index }));
        let leaf = match Leaf::decode_in(bytes, Form::Audit) {
            Ok((leaf, _)) => leaf,
            Err(e) => return broken(format!("not a valid leaf: {e}")),
        };
        if let Err(finding) = folds.apply(index, &leaf, None) {
            return broken(finding.message);
        }
        if index == as_of_index {
            reported_state = Some(folds.trust.clone());
        }
    }
    let Some(as_of) = reported_state else {
        return fail(format!("the checkpoint (size {n}) does not cover the report's index {as_of_index}"), json!({ "checkpoint": note }));
    };
    let times = &folds.times;
    let reported_entry_time = times[usize::try_from(as_of_index).unwrap_or(usize::MAX).min(times.len() - 1)];
    if as_of_time < reported_entry_time {
        return fail(
            format!("the report reads scores at {as_of_time} ms, before its own entry {as_of_index} ({reported_entry_time} ms)"),
            report.clone(),
        );
    }
    if let Some(message) = folds.owed_at_end() {
        return fail(message, json!({ "checkpoint": note }));
    }
    let counts = folds.counts();
    let trust = as_of;
    let elapsed = started.elapsed();
    let policy = trust.policy.clone();
    if let Some(total) = total {
        // A listing is every agent by (score, id), `total` of them: the
        // first it lists must be the first recomputed, and none missing.
        let mut all: Vec<(u8, &AgentId)> = trust.agents.iter().map(|(a, r)| (r.trust.score(&policy.policy, as_of_time), a)).collect();
        all.sort_unstable();
        if total != all.len() as u64 {
            return fail(
                format!("the server counts {total} agents, the log registers {} at index {as_of_index}", all.len()),
                json!({ "total": total, "recomputed": all.len() }),
            );
        }
        let expected = all.len().min(MAX_LISTED);
        if let Some(i) = (0..expected).find(|&i| reported.get(i).is_none_or(|r| r.agent != *all[i].1)) {
            let (score, agent) = all[i];
            return fail(
                format!(
                    "the listing's agent {} should be {} (score {score} at {as_of_time} ms): it omits or misorders agents",
                    i + 1,
                    escape::text(agent.as_str())
                ),
                json!({ "position": i, "expected": agent, "listed": reported.get(i).map(|r| &r.agent) }),
            );
        }
        if reported.len() != expected {
            return fail(format!("the server lists {} agents, {expected} expected", reported.len()), json!({ "listed": reported.len() }));
        }
    }
    let mut compared = Vec::with_capacity(reported.len());
    for r in &reported {
        let Some(record) = trust.get(&r.agent) else {
            return fail(
                format!("the server reports {} but the log registers no such agent", escape::text(r.agent.as_str())),
                json!({ "agent": r.agent }),
            );
        };
        let score = record.trust.score(&policy.policy, as_of_time);
        let level = record.trust.level().as_str();
        if score != r.score || level != r.level {
            return Ok(Outcome::Failed(Failure {
                message: format!(
                    "{}: the server reports score {} ({}), the log gives {score} ({level}) at index {as_of_index}, time {as_of_time} ms; the entries that last moved it: {:?}",
                    escape::text(r.agent.as_str()),
                    r.score,
                    escape::text(&r.level),
                    record.trust.recent()
                ),
                evidence: json!({ "agent": r.agent, "reported": {"score": r.score, "level": r.level}, "recomputed": {"score": score, "level": level}, "recent": record.trust.recent() }),
            }));
        }
        compared.push(json!({ "agent": r.agent, "score": score, "level": level }));
    }
    let rate = (n as f64 / elapsed.as_secs_f64().max(1e-9)).round();
    Ok(Outcome::Verified(
        json!({
            "entries": n,
            "as_of_index": as_of_index,
            "as_of_time": as_of_time,
            "agents": trust.agents.len(),
            "compared": compared,
            "revocations_checked": counts.revocations,
            "risk_changes_checked": counts.risk_changes,
            "drift_signals_checked": counts.drift_signals,
            "tokens_checked": counts.tokens,
            "decisions_checked": counts.decisions,
            "escalated_tokens_checked": counts.escalated_tokens,
            "fold_seconds": elapsed.as_secs_f64(),
            "entries_per_second": rate,
        }),
        format!(
            "{n} entries folded ({} agents, {} revocations, {} risk changes, {} drift signals, {} tokens, {} escalation decisions checked; {rate} entries/s); {} reported scores match at index {as_of_index}",
            trust.agents.len(),
            counts.revocations,
            counts.risk_changes,
            counts.drift_signals,
            counts.tokens,
            counts.decisions,
            compared.len()
        ),
    ))
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
