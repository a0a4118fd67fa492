//! `ledger-verify trust`: recomputes every trust score from the log and
//! compares with what the server reports (docs/TRUST.md).
//!
//! The server's report is fetched first (one agent, or every agent it
//! lists), with the index and instant it is "as of"; then the latest
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
//! report's instant. The first entry that breaks a rule, or the first
//! agent whose score differs (with the entries that last moved it), is the
//! failure.

use std::time::Instant;

use serde_json::{json, Value};
use verifier::agent_id::AgentId;
use verifier::entry::{Entry, Form, Leaf, RevocationReason};
use verifier::fold::registry::Registry;
use verifier::fold::sources::Sources;
use verifier::fold::trust_log::{TrustMap, TrustStore as _, Violation};

use crate::{agent, escape, fail, fetch_checkpoint, fetch_leaves, get_json, leaves_match, load_key, Failure, Outcome};

/// How long after its crossing instant a revocation may be logged before an
/// auditor calls it missing (the log aims at one second).
pub const MISSING_AFTER_MS: u64 = 5_000;

/// One agent's score as the server reports it.
struct Reported {
    agent: AgentId,
    score: u64,
    level: String,
}

fn percent_encode(id: &str) -> String {
    id.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

pub(crate) fn check_trust(url: &str, key: &str, only: Option<&str>) -> anyhow::Result<Outcome> {
    let verifier = load_key(key)?;
    let base = url.trim_end_matches('/');
    let http = agent();
    let report: Value = match only {
        Some(id) => get_json(&http, &format!("{base}/v1/agents/{}/trust", percent_encode(id)))?,
        None => get_json(&http, &format!("{base}/v1/trust"))?,
    };
    let as_of_index = report["as_of_index"].as_u64().ok_or_else(|| anyhow::anyhow!("the server's report has no as_of_index"))?;
    let as_of_time = report["as_of_time"].as_u64().ok_or_else(|| anyhow::anyhow!("the server's report has no as_of_time"))?;
    let rows: Vec<&Value> = match only {
        Some(_) => vec![&report],
        None => report["agents"].as_array().map(|a| a.iter().collect()).unwrap_or_default(),
    };
    let reported: Vec<Reported> = rows
        .iter()
        .map(|r| {
            Ok(Reported {
                agent: AgentId::from_stored_unchecked(r["agent"].as_str().ok_or_else(|| anyhow::anyhow!("a reported agent has no id"))?),
                score: r["score"].as_u64().ok_or_else(|| anyhow::anyhow!("a reported agent has no score"))?,
                level: r["level"].as_str().unwrap_or_default().to_owned(),
            })
        })
        .collect::<anyhow::Result<_>>()?;
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
    let mut counts = [0u64; 3]; // revocations, risk changes, drift signals checked
    for (index, bytes) in (0..n).zip(&leaves) {
        let broken = |message: String| fail(format!("entry {index}: {message}"), json!({ "checkpoint": note, "index": index }));
        let leaf = match Leaf::decode_in(bytes, Form::Audit) {
            Ok((leaf, _)) => leaf,
            Err(e) => return broken(format!("not a valid leaf: {e}")),
        };
        if let Err(e) = sources.apply_leaf(index, &leaf, &registry) {
            return broken(e.to_string());
        }
        if let Err(e) = registry.apply_leaf(index, &leaf) {
            return broken(e.to_string());
        }
        let t = leaf.integrated_time;
        let policy = trust.policy.clone();
        let p = &policy.policy;
        if let Some(entry) = &leaf.entry {
            if let Some(agent) = entry.agent() {
                if let Some(record) = trust.get(agent) {
                    let score = record.trust.score(p, t);
                    let (_, _, _, evidence_ms) = record.trust.evidence();
                    let crossing = record.trust.crossing(p, evidence_ms, p.revocation_threshold);
                    let is_revocation = matches!(entry, Entry::Revocation(_));
                    if let (None, Some(c), false) = (record.trust.revoked(), crossing, is_revocation) {
                        if t > c.saturating_add(MISSING_AFTER_MS) {
                            return broken(format!("{agent} crossed the revocation threshold at {c} ms and was not revoked by {t} ms"));
                        }
                    }
                    match entry {
                        Entry::Revocation(r) if r.reason == RevocationReason::Score => {
                            counts[0] += 1;
                            if score >= p.revocation_threshold
                                || u64::from(score) > u64::from(r.score)
                                || r.threshold != p.revocation_threshold
                            {
                                return broken(format!(
                                    "revocation of {agent} for a score of {} (threshold {}), but the score at its time is {score} (threshold {})",
                                    r.score, r.threshold, p.revocation_threshold
                                ));
                            }
                        }
                        Entry::Risk(r) => {
                            counts[1] += 1;
                            let target = record.trust.level().target(p, r.score);
                            if r.previous != record.trust.level() || r.current != target || r.score < score {
                                return broken(format!(
                                    "risk change of {agent} from {} to {} at score {}, but the logged level is {}, the band rule gives {target} and the score at its time is {score}",
                                    r.previous,
                                    r.current,
                                    r.score,
                                    record.trust.level()
                                ));
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        match trust.apply_leaf(index, &leaf) {
            Ok(effects) => {
                if let Some(v) = effects.violations.first() {
                    let message = match v {
                        Violation::UnjustifiedDrift { agent } => format!("a drift signal about {agent} records no finding of its detector"),
                        Violation::MissingDrift { agent, finding } => {
                            format!(
                                "the drift finding of {agent} over entries {}..={} was never recorded",
                                finding.first_index, finding.last_index
                            )
                        }
                        other => format!("{other:?}"),
                    };
                    return broken(message);
                }
                counts[2] += u64::from(leaf.kind == verifier::entry::EntryKind::Signal && leaf.text("source") == "ledger");
            }
            Err(e) => return broken(e.to_string()),
        }
    }
    let elapsed = started.elapsed();
    let policy = trust.policy.clone();
    let mut compared = Vec::with_capacity(reported.len());
    for r in &reported {
        let Some(record) = trust.get(&r.agent) else {
            return fail(
                format!("the server reports {} but the log registers no such agent", escape::text(r.agent.as_str())),
                json!({ "agent": r.agent }),
            );
        };
        let score = u64::from(record.trust.score(&policy.policy, as_of_time));
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
