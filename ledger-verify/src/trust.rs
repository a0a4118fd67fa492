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
//!   [`MISSING_AFTER_MS`].
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

use verifier::entry::{Decision, Entry, Form, Leaf, RevocationReason};
use verifier::fold::registry::Registry;
use verifier::fold::sources::Sources;
use verifier::fold::trust_log::{PolicyInForce, TrustMap, TrustRecord, TrustStore as _, Violation};
use verifier::wire::{TrustListing, TrustScore};

use crate::{agent, escape, fail, fetch_checkpoint, fetch_leaves, get_json, leaves_match, load_key, Failure, Outcome};

/// How long after its crossing instant a revocation may be logged before an
/// auditor calls it missing (the log aims at one second).
pub const MISSING_AFTER_MS: u64 = 5_000;

/// Most agents `GET /v1/trust` lists (its default limit).
const MAX_LISTED: usize = 1000;

/// States the trust fold passed through, for checking the entries the
/// log wrote from its view against the state they were decided on.
#[derive(Default)]
struct Replay {
    /// Each agent's last [`HISTORY`] records, with the index after which
    /// each held.
    history: HashMap<AgentId, VecDeque<(u64, TrustRecord)>>,
    /// Every policy entry: its index, time and policy.
    policies: Vec<(u64, u64, PolicyInForce)>,
}

/// States kept per agent: the log decides right before it appends, so a
/// decision refers to one of the agent's last states.
const HISTORY: usize = 64;

impl Replay {
    fn remember(&mut self, trust: &TrustMap, index: u64, time: u64, touched: &[AgentId]) {
        if trust.policy.index == Some(index) {
            self.policies.push((index, time, trust.policy.clone()));
        }
        for agent in touched {
            if let Some(record) = trust.get(agent) {
                let states = self.history.entry(agent.clone()).or_default();
                if states.len() == HISTORY {
                    states.pop_front();
                }
                states.push_back((index, record));
            }
        }
    }

    /// The policy in force after entry `index`, and when it took effect.
    fn policy_at(&self, index: u64) -> (PolicyInForce, u64) {
        self.policies.iter().rev().find(|(i, _, _)| *i <= index).map_or_else(|| (PolicyInForce::default(), 0), |(_, t, p)| (p.clone(), *t))
    }

    /// `agent`'s record after entry `index`.
    fn record_at(&self, agent: &AgentId, index: u64) -> Result<&TrustRecord, String> {
        let states = self.history.get(agent).ok_or_else(|| format!("{agent} has no trust record"))?;
        match states.iter().rev().find(|(i, _)| *i <= index) {
            Some((_, record)) => Ok(record),
            None => Err(format!("the decision on {agent} refers to entry {index}, older than the states kept ({HISTORY})")),
        }
    }

    /// Checks an entry the log wrote from its trust view against the state
    /// it was decided on, and that no crossing went unlogged.
    fn check(&self, trust: &TrustMap, index: u64, t: u64, entry: &Entry, counts: &mut [u64; 3]) -> Result<(), String> {
        let Some(agent) = entry.agent() else { return Ok(()) };
        let Some(now) = trust.get(agent) else { return Ok(()) };
        let (policy, since) = self.policy_at(index.saturating_sub(1));
        if !matches!(entry, Entry::Revocation(_)) {
            missing_revocation(agent, &now, &policy, since, t)?;
        }
        let decided = |decision: &Decision| -> Result<(&TrustRecord, PolicyInForce, u8), String> {
            if decision.as_of_index >= index || decision.decided_at > t {
                return Err(format!("its decision (entry {}, at {} ms) is not before it", decision.as_of_index, decision.decided_at));
            }
            let record = self.record_at(agent, decision.as_of_index)?;
            let (policy, _) = self.policy_at(decision.as_of_index);
            let score = record.trust.score(&policy.policy, decision.decided_at);
            Ok((record, policy, score))
        };
        match entry {
            Entry::Revocation(r) if r.reason == RevocationReason::Score => {
                counts[0] += 1;
                let decision = r.decision.as_ref().ok_or("a revocation for a score without its decision")?;
                let (record, policy, score) = decided(decision)?;
                let p = &policy.policy;
                if score != r.score
                    || score >= p.revocation_threshold
                    || r.threshold != p.revocation_threshold
                    || record.trust.revoked().is_some()
                {
                    return Err(format!(
                        "revocation of {agent} for a score of {} (threshold {}), but as decided (entry {}, {} ms) the score is {score}, the threshold {}",
                        r.score, r.threshold, decision.as_of_index, decision.decided_at, p.revocation_threshold
                    ));
                }
            }
            Entry::Risk(r) => {
                counts[1] += 1;
                let (record, policy, score) = decided(&r.decision)?;
                let target = record.trust.level().target(&policy.policy, score);
                if r.previous != record.trust.level() || r.current != target || r.score != score || r.policy_index != policy.index {
                    return Err(format!(
                        "risk change of {agent} from {} to {} at score {}, but as decided the level is {}, the score {score} and the band rule gives {target}",
                        r.previous,
                        r.current,
                        r.score,
                        record.trust.level()
                    ));
                }
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
    fn owed_at_end(&self, trust: &TrustMap, last: u64, times: &[u64]) -> Option<String> {
        let (policy, since) = self.policy_at(u64::MAX);
        for (agent, record) in &trust.agents {
            if let Err(message) = missing_revocation(agent, record, &policy, since, last) {
                return Some(message);
            }
            if let Some(f) = record.owed_drift.first() {
                let closed = times.get(usize::try_from(f.last_index).unwrap_or(usize::MAX)).copied().unwrap_or(0);
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

/// Fails when `record`, not revoked, crossed the threshold more than
/// [`MISSING_AFTER_MS`] before `t`. The crossing is counted from the last
/// evidence or from when the policy took effect, whichever is later (a
/// stricter policy cannot have been crossed before it existed).
fn missing_revocation(agent: &AgentId, record: &TrustRecord, policy: &PolicyInForce, since: u64, t: u64) -> Result<(), String> {
    if record.trust.revoked().is_some() {
        return Ok(());
    }
    let (_, _, _, evidence_ms) = record.trust.evidence();
    let from = evidence_ms.max(since);
    match record.trust.crossing(&policy.policy, from, policy.policy.revocation_threshold) {
        Some(c) if t > c.saturating_add(MISSING_AFTER_MS) => {
            Err(format!("{agent} crossed the revocation threshold at {c} ms and was not revoked by {t} ms"))
        }
        _ => Ok(()),
    }
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
    let n = as_of_index + 1;
    let mut registry = Registry::new(verifier.key().name());
    let mut sources = Sources::new(verifier.key().name());
    let mut trust = TrustMap::default();
    let mut replay = Replay::default();
    let mut times = Vec::with_capacity(usize::try_from(n).unwrap_or(0).min(1 << 24));
    let mut counts = [0u64; 3]; // revocations, risk changes, drift signals checked
    for (index, bytes) in (0..n).zip(&leaves) {
        let broken = |message: String| fail(format!("entry {index}: {message}"), json!({ "checkpoint": note, "index": index }));
        let leaf = match Leaf::decode_in(bytes, Form::Audit) {
            Ok((leaf, _)) => leaf,
            Err(e) => return broken(format!("not a valid leaf: {e}")),
        };
        times.push(leaf.integrated_time);
        if let Err(e) = sources.apply_leaf(index, &leaf, &registry) {
            return broken(e.to_string());
        }
        if let Err(e) = registry.apply_leaf(index, &leaf) {
            return broken(e.to_string());
        }
        let t = leaf.integrated_time;
        if let Some(entry) = &leaf.entry {
            if let Err(message) = replay.check(&trust, index, t, entry, &mut counts) {
                return broken(message);
            }
        }
        match trust.apply_leaf(index, &leaf) {
            Ok(effects) => {
                if let Some(v) = effects.violations.first() {
                    let message = match v {
                        Violation::UnjustifiedDrift { agent } => format!("a drift signal about {agent} records no finding of its detector"),
                        other => format!("{other:?}"),
                    };
                    return broken(message);
                }
                counts[2] += u64::from(leaf.kind == verifier::entry::EntryKind::Signal && leaf.text("source") == "ledger");
                replay.remember(&trust, index, t, &effects.touched);
            }
            Err(e) => return broken(e.to_string()),
        }
    }
    // What the log still owes at its last entry: a crossing not revoked, a
    // drift finding not announced, for longer than the tolerance.
    let last = times.last().copied().unwrap_or(0);
    if as_of_time < last {
        return fail(format!("the report reads scores at {as_of_time} ms, before its own entry {as_of_index} ({last} ms)"), report.clone());
    }
    if let Some(message) = replay.owed_at_end(&trust, last, &times) {
        return fail(message, json!({ "checkpoint": note }));
    }
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
            "revocations_checked": counts[0],
            "risk_changes_checked": counts[1],
            "drift_signals_checked": counts[2],
            "fold_seconds": elapsed.as_secs_f64(),
            "entries_per_second": rate,
        }),
        format!(
            "{n} entries folded ({} agents, {} revocations, {} risk changes, {} drift signals checked; {rate} entries/s); {} reported scores match at index {as_of_index}",
            trust.agents.len(),
            counts[0],
            counts[1],
            counts[2],
            compared.len()
        ),
    ))
}
