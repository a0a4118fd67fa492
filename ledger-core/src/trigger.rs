//! The revocation trigger: what the trust view implies, written to the log
//! as entries (docs/TRUST.md, "Revocation").
//!
//! * An agent whose score is below the policy's threshold and that is not
//!   revoked gets a `revocation` entry (reason `score`, its score, the
//!   threshold, the entries that moved it, the policy's index).
//! * An agent whose risk level by the band rules differs from its logged
//!   level gets a `risk` entry.
//! * A drift finding of the view's detector becomes a `drift` signal from
//!   the log, oldest first. The view keeps the findings it owes a signal
//!   for in the agent's record, so a finding made just before a crash is
//!   recorded after the restart.
//!
//! The trigger reacts to each published group (the view hands over the
//! agents it changed, [`TrustView::take_changes`]) and to decay alone: for
//! every agent it keeps the exact instant its decayed score next crosses
//! the threshold or a band edge ([`AgentTrust::crossing`],
//! [`AgentTrust::level_crossing`]) in a timer queue re-armed on each
//! update, so a crossing is logged as soon as it happens without scanning
//! every agent on a tick. It sleeps at most [`MAX_SLEEP`] at a time, so a
//! step of the wall clock delays a crossing by no more than that.
//!
//! Entries are appended one by one and awaited: an entry the view has not
//! yet applied is never written twice. At start ([`Trigger::catch_up`])
//! every agent is looked at until nothing is left to write, before the
//! server takes requests: crossings that happened while the log was down
//! are logged first.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use verifier::agent_id::AgentId;
use verifier::entry::{Decision, Revocation, RevocationReason, RiskChange};
use verifier::fold::trust::AgentTrust;
use verifier::fold::trust_log::{self, PolicyInForce, TrustRecord};

use crate::entry::NewEntry;
use crate::{Error, Log};

/// Longest sleep between two looks at the timer queue.
pub const MAX_SLEEP: Duration = Duration::from_secs(1);
/// Wait before retrying an append the log pushed back.
const RETRY: Duration = Duration::from_millis(100);

/// Instants (ms) at which an agent needs another look, by decay alone.
#[derive(Debug, Default)]
struct Timers {
    queue: BTreeSet<(u64, AgentId)>,
    armed: HashMap<AgentId, u64>,
}

impl Timers {
    fn arm(&mut self, agent: &AgentId, at: Option<u64>) {
        if let Some(old) = self.armed.remove(agent) {
            self.queue.remove(&(old, agent.clone()));
        }
        if let Some(at) = at {
            self.queue.insert((at, agent.clone()));
            self.armed.insert(agent.clone(), at);
        }
    }

    fn next(&self) -> Option<u64> {
        self.queue.first().map(|(at, _)| *at)
    }

    fn due(&mut self, now: u64) -> Vec<AgentId> {
        let mut due = Vec::new();
        while let Some((at, _)) = self.queue.first() {
            if *at > now {
                break;
            }
            if let Some((_, agent)) = self.queue.pop_first() {
                self.armed.remove(&agent);
                due.push(agent);
            }
        }
        due
    }
}

/// An entry the trigger writes.
#[derive(Debug)]
enum Write {
    /// A revocation, appended by [`Log::revoke`] (which lists the agent's
    /// live tokens in it).
    Revocation(Revocation),
    /// Any other entry of the log's.
    Entry(Map<String, Value>),
}

/// What the trust view implies for one agent, decided on `record` as of
/// `decision`.
fn implied(record: &TrustRecord, policy: &PolicyInForce, agent: &AgentId, decision: Decision) -> Option<Write> {
    let (p, trust, now) = (&policy.policy, &record.trust, decision.decided_at);
    let score = trust.score(p, now);
    if trust.revoked().is_none() && score < p.revocation_threshold {
        return Some(Write::Revocation(trust_log::revocation(agent, record, policy, RevocationReason::Score, decision, None)));
    }
    let target = trust.target_level(p, now);
    (target != trust.level()).then(|| {
        let change =
            RiskChange { agent: agent.clone(), previous: trust.level(), current: target, score, policy_index: policy.index, decision };
        Write::Entry(change.to_object())
    })
}

/// The next instant decay alone makes `trust` imply an entry.
fn next_crossing(trust: &AgentTrust, policy: &PolicyInForce, now: u64) -> Option<u64> {
    let p = &policy.policy;
    let revocation = trust.revoked().is_none().then(|| trust.crossing(p, now, p.revocation_threshold)).flatten();
    [revocation, trust.level_crossing(p, now)].into_iter().flatten().min()
}

/// Appends one entry the log writes, retrying while it pushes back.
/// Returns `false` when the log is shutting down.
async fn append(log: &Log, write: &Write) -> bool {
    loop {
        let done = match write {
            Write::Revocation(revocation) => log.revoke(revocation).await.map(drop),
            Write::Entry(object) => match NewEntry::from_log(object, None, None) {
                Ok(entry) => log.append(vec![entry]).await.map(drop),
                Err(e) => {
                    tracing::error!(error = %e, "the revocation trigger built an invalid entry");
                    return true;
                }
            },
        };
        match done {
            Ok(()) => return true,
            Err(Error::ShuttingDown) => return false,
            Err(Error::Pushback { .. }) => tokio::time::sleep(RETRY).await,
            // Refused by the registry (the agent was retired or revoked
            // meanwhile): the next look decides again.
            Err(e @ (Error::AgentRetired(_) | Error::AlreadyRevoked(_) | Error::UnknownAgent(_))) => {
                tracing::debug!(error = %e, "trust entry no longer applies");
                return true;
            }
            Err(e) => {
                tracing::warn!(error = %e, "the revocation trigger could not append; retrying");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// The trigger: the agents to look at and the timer queue.
#[derive(Debug)]
pub struct Trigger {
    log: Arc<Log>,
    timers: Timers,
    look: BTreeSet<AgentId>,
}

/// What one pass did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pass {
    /// Appended at least one entry.
    Appended,
    /// Nothing to write.
    Idle,
    /// The log is shutting down.
    Stopped,
}

impl Trigger {
    /// Looks at every agent and writes what the view implies, until
    /// nothing is left to write: crossings that happened while the log was
    /// down are logged before the caller takes requests.
    pub async fn catch_up(log: Arc<Log>) -> Self {
        let mut trigger = Self { log, timers: Timers::default(), look: BTreeSet::new() };
        trigger.look_at_all();
        while trigger.pass().await == Pass::Appended {}
        trigger
    }

    /// Runs until the log shuts down.
    pub async fn run(mut self) {
        loop {
            if self.pass().await == Pass::Stopped {
                return;
            }
            let now = self.log.now_ms();
            let sleep = self.timers.next().map_or(MAX_SLEEP, |at| Duration::from_millis(at.saturating_sub(now)).min(MAX_SLEEP));
            tokio::select! {
                () = self.log.trust().changed() => {}
                () = tokio::time::sleep(sleep) => {}
            }
        }
    }

    fn look_at_all(&mut self) {
        let look = &mut self.look;
        self.log.trust().for_each(|agent, _| {
            look.insert(agent.clone());
        });
    }

    /// Looks at the agents that changed or whose timer is due, and writes
    /// what the view implies for them: one entry per agent, appended
    /// concurrently so that they share group commits.
    async fn pass(&mut self) -> Pass {
        let log = Arc::clone(&self.log);
        let changes = log.trust().take_changes();
        if changes.policy_changed {
            self.look_at_all();
        }
        self.look.extend(changes.agents);
        self.look.extend(self.timers.due(log.now_ms()));
        let mut writes = Vec::new();
        for agent in std::mem::take(&mut self.look) {
            let Some((record, policy, applied)) = log.trust().snapshot(&agent) else { continue };
            if log.agent(&agent).is_none_or(|state| state.retired.is_some()) {
                self.timers.arm(&agent, None);
                continue;
            }
            // The entry appended changes the agent's record: the view hands
            // the agent back for another look.
            if let Some(finding) = record.owed_drift.first() {
                writes.push(Write::Entry(trust_log::drift_signal(&agent, finding).to_object()));
                continue;
            }
            let decision = Decision { as_of_index: applied.saturating_sub(1), decided_at: log.now_ms() };
            match implied(&record, &policy, &agent, decision) {
                Some(write) => writes.push(write),
                None => self.timers.arm(&agent, next_crossing(&record.trust, &policy, decision.decided_at)),
            }
        }
        if writes.is_empty() {
            return Pass::Idle;
        }
        let mut appends = tokio::task::JoinSet::new();
        for write in writes {
            let log = Arc::clone(&log);
            appends.spawn(async move { append(&log, &write).await });
        }
        if appends.join_all().await.contains(&false) {
            return Pass::Stopped;
        }
        Pass::Appended
    }
}
