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
//!   (`verifier::fold::trust_log::Violation`);
//! * no crossing of the threshold is left unlogged for more than
//!   [`crate::folds::replay::MISSING_AFTER_MS`];
//! * a `token`: issued while the agent, not revoked, scored at least its
//!   class's minimum under the policy in force (recomputed from the state
//!   it was decided on), with the class, lifetime and single use the policy
//!   gives, and after a human's approval where the class needs one
//!   ([`crate::folds::grants`]: each escalation decided once, each approved one
//!   answered once, by a token for what it asked).
//!
//! Then each reported score is compared with the recomputed one at the
//! report's instant; a listing must be the first agents recomputed by
//! (score, id), and its `total` the number of agents. The first entry that breaks a rule, or the first
//! agent whose score differs (with the entries that last moved it), is the
//! failure.

use std::time::Instant;

use serde_json::{json, Value};
use verifier::agent_id::AgentId;
use verifier::entry::{Form, Leaf};
use verifier::fold::trust_log::TrustStore as _;
use verifier::wire::{TrustListing, TrustScore};

use crate::folds::Folds;
use crate::{agent, escape, fail, fetch_checkpoint, fetch_leaves, get_json, leaves_match, load_key, Failure, Outcome};

/// Most agents `GET /v1/trust` lists (its default limit).
const MAX_LISTED: usize = 1000;

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
