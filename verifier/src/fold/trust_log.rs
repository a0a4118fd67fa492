//! The trust view's fold over log entries (docs/TRUST.md, "From entries to
//! evidence"): which entry is which evidence about which agent, under the
//! policy in force at its index. The log keeps its trust view with it and
//! an auditor recomputes the view with it, so both read every entry alike.
//!
//! * `policy`: the policy in force from this index on.
//! * `passport`: a new agent at the policy's initial score; its code hash
//!   is remembered for signals about code.
//! * `attestation`: [`Evidence::Attestation`] from its recorded verdict
//!   (`ok`, TPM or software evidence).
//! * `action`: observed by the agent's drift detector; a finding is
//!   reported ([`Effects::findings`]) for the log to record as a `drift`
//!   signal, which is the evidence.
//! * `signal`: drift, source signals ([`Evidence::Signal`]) and peer
//!   reports (weighted by the reporter's score at that instant), about one
//!   agent or every agent whose passport has a code hash.
//! * `revocation`, `reinstatement`, `risk`: the agent's revoked state and
//!   logged risk level.
//!
//! State lives behind [`TrustStore`], so the log can keep a pending
//! overlay over its published records and an auditor a plain map.
#![deny(clippy::float_arithmetic)]

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::drift::{self, DriftFinding, DriftState};
use super::policy::{Policy, SignalKind};
use super::trust::{AgentTrust, Evidence, StateError};
use crate::agent_id::AgentId;
use crate::entry::{
    Assessment, Decision, Entry, EntryError, Leaf, Revocation, RevocationReason, Severity, Signal, SignalType, Signer, Subject,
};
use crate::fold::policy::PolicyError;
use crate::wire::{TrustComponents, TrustScore};

/// One agent's trust state: its score state, its drift detector and its
/// passport's code hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustRecord {
    /// The score state.
    pub trust: AgentTrust,
    /// The drift detector.
    pub drift: DriftState,
    /// The passport's code hash.
    pub code_hash: [u8; 32],
    /// Drift findings the log owes a `drift` signal for, oldest first (at
    /// most [`MAX_OWED_DRIFT`]): added when a window closes with a
    /// finding, taken off by the signal that records the oldest.
    pub owed_drift: Vec<DriftFinding>,
    /// The last reporters whose peer reports about this agent counted
    /// (at most [`MAX_PEERS`]): see [`PeerSlot`].
    pub peers: Vec<PeerSlot>,
}

/// A reporter whose peer report about an agent counted, and when: its
/// next report about that agent counts only a policy
/// `peer_report_interval_s` later (docs/TRUST.md, "Peer reports").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerSlot {
    /// The first 16 bytes of SHA-256 of the reporter's id.
    pub reporter: [u8; 16],
    /// When its report counted, ms.
    pub counted_ms: u64,
}

/// Most reporters an agent's record remembers.
pub const MAX_PEERS: usize = 16;

/// Bytes of a peer slot in [`TrustRecord::score_bytes`].
const PEER_LEN: usize = 16 + 8;

/// Most drift findings an agent's record keeps owed a signal; one more
/// drops the oldest announcement (its evidence was applied when its window
/// closed, so an agent flooding windows escapes nothing).
pub const MAX_OWED_DRIFT: usize = 16;

/// Bytes of an owed finding in [`TrustRecord::score_bytes`].
const OWED_LEN: usize = 3 * 8 + 1;

impl TrustRecord {
    /// Storage form, in two parts: the score part, `u16 BE length ‖
    /// AgentTrust ‖ code hash ‖ count ‖ owed findings` (each `psi_milli ‖
    /// first_index ‖ last_index` as u64 BE `‖ significant`) `‖ count ‖
    /// peer slots` (each `reporter ‖ counted_ms` u64 BE; the count and
    /// slots are absent when there are none); and the drift detector,
    /// [`DriftState::to_bytes`]. An action changes only the second (unless
    /// it closes a window with a finding), so the log rewrites only it.
    pub fn to_parts(&self) -> (Vec<u8>, Vec<u8>) {
        (self.score_bytes(), self.drift.to_bytes())
    }

    /// The score part of [`TrustRecord::to_parts`].
    pub fn score_bytes(&self) -> Vec<u8> {
        let t = self.trust.to_bytes();
        let mut out = Vec::with_capacity(2 + t.len() + 32 + 1 + self.owed_drift.len() * OWED_LEN + 1 + self.peers.len() * PEER_LEN);
        out.extend_from_slice(&(t.len() as u16).to_be_bytes());
        out.extend_from_slice(&t);
        out.extend_from_slice(&self.code_hash);
        out.push(self.owed_drift.len() as u8);
        for f in &self.owed_drift {
            for n in [f.psi_milli, f.first_index, f.last_index] {
                out.extend_from_slice(&n.to_be_bytes());
            }
            out.push(u8::from(f.significant));
        }
        if !self.peers.is_empty() {
            out.push(self.peers.len() as u8);
            for p in &self.peers {
                out.extend_from_slice(&p.reporter);
                out.extend_from_slice(&p.counted_ms.to_be_bytes());
            }
        }
        out
    }

    /// Reads [`TrustRecord::to_parts`].
    pub fn from_parts(score: &[u8], drift: &[u8]) -> Result<Self, StateError> {
        let bad = StateError::Invalid("trust record");
        let len = usize::from(u16::from_be_bytes(score.get(..2).and_then(|b| b.try_into().ok()).ok_or(bad)?));
        let trust = AgentTrust::from_bytes(score.get(2..2 + len).ok_or(bad)?)?;
        let rest = &score[2 + len..];
        let drift = DriftState::from_bytes(drift)?;
        let (code_hash, owed) = rest.split_at_checked(32).ok_or(bad)?;
        let code_hash = code_hash.try_into().map_err(|_| bad)?;
        let (count, owed) = owed.split_first().ok_or(bad)?;
        let count = usize::from(*count);
        if count > MAX_OWED_DRIFT {
            return Err(bad);
        }
        let (owed, peers) = owed.split_at_checked(count * OWED_LEN).ok_or(bad)?;
        let mut owed_drift = Vec::with_capacity(count);
        for f in owed.chunks_exact(OWED_LEN) {
            let n = |i: usize| u64::from_be_bytes(f[8 * i..8 * i + 8].try_into().unwrap_or_default());
            let significant = match f[24] {
                0 => false,
                1 => true,
                _ => return Err(bad),
            };
            owed_drift.push(DriftFinding { psi_milli: n(0), first_index: n(1), last_index: n(2), significant });
        }
        let peers = match peers.split_first() {
            None => Vec::new(),
            Some((&count, slots)) if (1..=MAX_PEERS).contains(&usize::from(count)) && slots.len() == usize::from(count) * PEER_LEN => slots
                .chunks_exact(PEER_LEN)
                .map(|s| PeerSlot {
                    reporter: s[..16].try_into().unwrap_or_default(),
                    counted_ms: u64::from_be_bytes(s[16..].try_into().unwrap_or_default()),
                })
                .collect(),
            Some(_) => return Err(bad),
        };
        Ok(Self { trust, drift, code_hash, owed_drift, peers })
    }
}

impl TrustRecord {
    /// Whether a peer report by `reporter` (its [`reporter_hash`]) at
    /// `time_ms` counts, remembering it when it does: once per reporter per
    /// policy `peer_report_interval_s` (docs/TRUST.md, "Peer reports").
    pub fn count_peer(&mut self, policy: &Policy, reporter: [u8; 16], time_ms: u64) -> bool {
        let interval = policy.peer_report_interval_ms();
        let recent = |p: &PeerSlot| time_ms.saturating_sub(p.counted_ms) < interval;
        let slot = PeerSlot { reporter, counted_ms: time_ms };
        let i = match self.peers.iter().position(|p| p.reporter == reporter) {
            Some(i) if recent(&self.peers[i]) => return false,
            Some(i) => i,
            None if self.peers.len() < MAX_PEERS => {
                self.peers.push(slot);
                return true;
            }
            // A slot is taken over only once its interval has passed: with
            // every slot recent, the report counts for nothing, so at most
            // MAX_PEERS reports count per interval, however many reporters.
            None => match (0..self.peers.len())
                .filter(|&i| !recent(&self.peers[i]))
                .min_by_key(|&i| (self.peers[i].counted_ms, self.peers[i].reporter))
            {
                Some(i) => i,
                None => return false,
            },
        };
        self.peers[i] = slot;
        true
    }
}

/// The first 16 bytes of SHA-256 of a reporter's id: how an agent's record
/// remembers whose peer reports counted.
pub fn reporter_hash(reporter: &AgentId) -> [u8; 16] {
    let digest = Sha256::digest(reporter.as_str().as_bytes());
    let mut out = [0; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// The policy in force and the index of its entry (`None`: the built-in
/// default, before any policy entry).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyInForce {
    /// The policy.
    pub policy: Policy,
    /// Index of its `policy` entry.
    pub index: Option<u64>,
}

/// Where the fold keeps agents' records.
pub trait TrustStore {
    /// An agent's record.
    fn get(&self, agent: &AgentId) -> Option<TrustRecord>;
    /// Stores an agent's record.
    fn put(&mut self, agent: &AgentId, record: TrustRecord);
    /// Every agent whose passport has `code_hash`, in id order.
    fn with_code(&self, code_hash: &[u8; 32]) -> Vec<AgentId>;
}

/// What one entry did: the agents whose records changed, drift findings
/// for the log to record as `drift` signals, and what an auditor reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// Agents whose records changed (each once).
    pub touched: Vec<AgentId>,
    /// Those of them whose score part changed (score state, owed drift
    /// findings, peer slots; each once): what the log rewrites besides the
    /// drift detector, and the trigger looks at again. An action that only
    /// feeds the drift detector changes none of it.
    pub moved: Vec<AgentId>,
    /// Drift findings (agent, finding).
    pub findings: Vec<(AgentId, DriftFinding)>,
    /// What the log wrote that the fold does not justify.
    pub violations: Vec<Violation>,
}

/// A log entry the trust fold does not justify (an auditor reports it; the
/// log never writes one).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Violation {
    /// A `drift` signal that records no finding the detector made.
    UnjustifiedDrift {
        /// The agent.
        agent: AgentId,
    },
}

/// Why the fold cannot read an entry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrustFoldError {
    /// The entry is malformed.
    #[error("{0}")]
    Entry(#[from] EntryError),
    /// A policy entry's policy is not a valid policy.
    #[error("policy entry: {0}")]
    Policy(#[from] PolicyError),
}

/// Applies the entry at `index` (integrated at `time_ms`) to `store` under
/// `policy`, which a `policy` entry replaces.
pub fn apply<S: TrustStore + ?Sized>(
    store: &mut S,
    policy: &mut PolicyInForce,
    index: u64,
    time_ms: u64,
    entry: &Entry,
) -> Result<Effects, TrustFoldError> {
    let mut effects = Effects::default();
    let p = &policy.policy;
    match entry {
        Entry::Policy(e) => {
            policy.policy = Policy::from_json(&Value::Object(e.policy.clone()))?;
            policy.index = Some(index);
        }
        Entry::Passport(r) => {
            let record = TrustRecord {
                trust: AgentTrust::register(p, index, time_ms),
                drift: DriftState::new(p),
                code_hash: r.passport.code_hash,
                owed_drift: Vec::new(),
                peers: Vec::new(),
            };
            store.put(&r.agent, record);
            effects.touched.push(r.agent.clone());
            effects.moved.push(r.agent.clone());
        }
        Entry::Attestation(att) => {
            let (ok, tpm) = (att.held(), att.evidence_type() == Some("tpm"));
            update(store, &att.agent, &mut effects, |r| r.trust.apply(p, index, time_ms, &Evidence::Attestation { ok, tpm }));
        }
        Entry::Action(action) => {
            return Ok(observe_action(store, p, index, time_ms, &action.agent, drift::observation(&action.action, &action.resource)))
        }
        Entry::Signal(signal) => {
            let evidence = evidence_of(store, p, time_ms, signal);
            let subjects = match &signal.subject {
                Subject::Agent(agent) => alloc::vec![agent.clone()],
                Subject::CodeHash(hash) => store.with_code(hash),
            };
            let reporter = match (&signal.signer, signal.signal_type) {
                (Signer::Agent(reporter), SignalType::PeerReport) => Some(reporter_hash(reporter)),
                _ => None,
            };
            for agent in &subjects {
                let mut justified = true;
                update(store, agent, &mut effects, |r| match evidence {
                    // The finding's evidence was applied when its window
                    // closed; the signal announces it.
                    None => {
                        justified = r.owed_drift.first().is_some_and(|f| drift_records(signal, f));
                        if justified {
                            r.owed_drift.remove(0);
                        }
                    }
                    Some(evidence) => {
                        if reporter.is_none_or(|reporter| r.count_peer(p, reporter, time_ms)) {
                            r.trust.apply(p, index, time_ms, &evidence);
                        }
                    }
                });
                if !justified {
                    effects.violations.push(Violation::UnjustifiedDrift { agent: agent.clone() });
                }
            }
        }
        Entry::Revocation(r) => update(store, &r.agent, &mut effects, |rec| rec.trust.revoke(index, time_ms)),
        Entry::Reinstatement(r) => update(store, &r.agent, &mut effects, |rec| rec.trust.reinstate(p, index, time_ms)),
        Entry::Risk(r) => update(store, &r.agent, &mut effects, |rec| rec.trust.set_level(r.current)),
        // Tokens, escalations and decisions are decided on the score; they
        // do not move it.
        Entry::Rotation(_) | Entry::Retirement(_) | Entry::Source(_) | Entry::Token(_) | Entry::Escalation(_) | Entry::Decision(_) => {}
    }
    Ok(effects)
}

/// Applies an `action` entry at `index`: one observation of its agent's
/// drift detector, `observation` being [`drift::observation`] of its
/// action and resource. [`apply`] does this for an action; the log calls
/// it directly with the observation it computed when it admitted the
/// action, without decoding the leaf (actions are most of a log).
pub fn observe_action<S: TrustStore + ?Sized>(
    store: &mut S,
    policy: &Policy,
    index: u64,
    time_ms: u64,
    agent: &AgentId,
    observation: u64,
) -> Effects {
    let mut effects = Effects::default();
    let b = drift::bucket_of(observation, policy.drift.buckets);
    let mut finding = None;
    update(store, agent, &mut effects, |r| {
        finding = r.drift.observe(policy, index, b);
        if let Some(f) = finding {
            // The evidence is the finding's, applied here, so no agent
            // escapes it; the log's `drift` signal only announces it.
            r.trust.apply(policy, index, time_ms, &Evidence::Drift { significant: f.significant });
            if r.owed_drift.len() == MAX_OWED_DRIFT {
                r.owed_drift.remove(0);
            }
            r.owed_drift.push(f);
        }
    });
    if let Some(f) = finding {
        effects.findings.push((agent.clone(), f));
    }
    effects
}

/// The revocation of `agent` for `reason`, from its record read at
/// `decision.decided_at` (the score then, the threshold and policy entry in
/// force, the entries that last moved the score as causes): the one place
/// the log builds one, for the trigger (reason `score`) and for an admin's
/// quarantine alike.
pub fn revocation(
    agent: &AgentId,
    record: &TrustRecord,
    policy: &PolicyInForce,
    reason: RevocationReason,
    decision: Decision,
    note: Option<alloc::string::String>,
) -> Revocation {
    let mut causes: Vec<u64> = record.trust.recent().to_vec();
    causes.sort_unstable();
    causes.dedup();
    Revocation {
        agent: agent.clone(),
        reason,
        score: record.trust.score(&policy.policy, decision.decided_at),
        threshold: policy.policy.revocation_threshold,
        causes,
        policy_index: policy.index,
        decision: Some(decision),
        note,
        tokens: Vec::new(),
    }
}

/// `agent`'s trust score read at `now_ms` from `record` (the state after
/// entry `as_of_index`, under `policy`): what the log reports and what
/// clients and auditors read.
pub fn report(agent: &AgentId, record: &TrustRecord, policy: &PolicyInForce, as_of_index: u64, now_ms: u64) -> TrustScore {
    let c = record.trust.components(&policy.policy, now_ms);
    TrustScore {
        agent: agent.as_str().into(),
        score: c.score,
        level: record.trust.level().as_str().into(),
        as_of_index,
        as_of_time: now_ms,
        policy_index: policy.index,
        components: TrustComponents {
            evidence_for_milli: c.evidence_for_milli,
            evidence_against_milli: c.evidence_against_milli,
            expectation_permille: c.expectation_permille,
            freshness_permille: c.freshness_permille,
            last_attestation_index: c.last_attestation_index,
            quarantined: c.revoked.is_some(),
            revoked_at: c.revoked,
        },
        recent: record.trust.recent().to_vec(),
    }
}

/// The members of a `drift` signal's evidence: the finding's PSI and
/// window.
const DRIFT_EVIDENCE: [&str; 3] = ["psi_milli", "first_index", "last_index"];

/// The log's `drift` signal announcing `finding` about `agent` (severity
/// `high` when significant, else `medium`).
pub fn drift_signal(agent: &AgentId, finding: &DriftFinding) -> Signal {
    let values = [finding.psi_milli, finding.first_index, finding.last_index];
    let evidence = DRIFT_EVIDENCE.iter().zip(values).map(|(name, v)| ((*name).into(), Value::from(v))).collect();
    Signal {
        signer: Signer::Log,
        subject: Subject::Agent(agent.clone()),
        signal_type: SignalType::Drift,
        severity: if finding.significant { Severity::High } else { Severity::Medium },
        assessment: None,
        evidence: Some(evidence),
        signature: None,
    }
}

/// Whether a `drift` signal records `finding` (its PSI and window, as
/// [`drift_signal`] writes them).
fn drift_records(signal: &Signal, finding: &DriftFinding) -> bool {
    let member = |name: &str| signal.evidence.as_ref().and_then(|e| e.get(name)).and_then(Value::as_u64);
    DRIFT_EVIDENCE.map(member) == [finding.psi_milli, finding.first_index, finding.last_index].map(Some)
}

/// The evidence a signal is (`None` for the log's `drift` signal: its
/// evidence was applied when the detector's window closed).
fn evidence_of<S: TrustStore + ?Sized>(store: &S, policy: &Policy, time_ms: u64, signal: &Signal) -> Option<Evidence> {
    Some(match signal.signal_type {
        SignalType::Drift => return None,
        SignalType::PeerReport => {
            let reporter_score = match &signal.signer {
                Signer::Agent(reporter) => store.get(reporter).map_or(0, |r| r.trust.score(policy, time_ms)),
                _ => 0,
            };
            Evidence::PeerReport { positive: signal.assessment == Some(Assessment::Positive), reporter_score }
        }
        SignalType::ThreatIntel => Evidence::Signal { kind: SignalKind::ThreatIntel, severity: signal.severity },
        SignalType::Vulnerability => Evidence::Signal { kind: SignalKind::Vulnerability, severity: signal.severity },
        SignalType::Siem => Evidence::Signal { kind: SignalKind::Siem, severity: signal.severity },
        SignalType::Ueba => Evidence::Signal { kind: SignalKind::Ueba, severity: signal.severity },
    })
}

/// Applies `change` to `agent`'s record, if it has one (an entry about an
/// agent the view never registered, e.g. one from before the view's first
/// entry, changes nothing).
fn update<S: TrustStore + ?Sized>(store: &mut S, agent: &AgentId, effects: &mut Effects, change: impl FnOnce(&mut TrustRecord)) {
    if let Some(mut record) = store.get(agent) {
        let before = (record.trust.clone(), record.owed_drift.clone(), record.peers.clone());
        change(&mut record);
        if (&record.trust, &record.owed_drift, &record.peers) != (&before.0, &before.1, &before.2) {
            effects.moved.push(agent.clone());
        }
        store.put(agent, record);
        // One entry changes each agent once (the agents of a code hash are
        // distinct), so no search: a signal about code running on N agents
        // stays O(N).
        effects.touched.push(agent.clone());
    }
}

/// The trust view of a whole log in memory (auditors, tests): every
/// agent's record, and the index of agents by code hash.
#[derive(Clone, Debug, Default)]
pub struct TrustMap {
    /// Records by agent.
    pub agents: BTreeMap<AgentId, TrustRecord>,
    codes: BTreeMap<[u8; 32], BTreeSet<AgentId>>,
    /// The policy in force.
    pub policy: PolicyInForce,
}

impl TrustStore for TrustMap {
    fn get(&self, agent: &AgentId) -> Option<TrustRecord> {
        self.agents.get(agent).cloned()
    }

    fn put(&mut self, agent: &AgentId, record: TrustRecord) {
        self.codes.entry(record.code_hash).or_default().insert(agent.clone());
        self.agents.insert(agent.clone(), record);
    }

    fn with_code(&self, code_hash: &[u8; 32]) -> Vec<AgentId> {
        self.codes.get(code_hash).map(|s| s.iter().cloned().collect()).unwrap_or_default()
    }
}

impl TrustMap {
    /// Applies a stored leaf at `index` ([`Leaf::decode`]'s `entry`; a
    /// version 1 leaf today's rules refuse changes nothing).
    pub fn apply_leaf(&mut self, index: u64, leaf: &Leaf) -> Result<Effects, TrustFoldError> {
        let Some(entry) = &leaf.entry else { return Ok(Effects::default()) };
        let mut policy = core::mem::take(&mut self.policy);
        let result = apply(self, &mut policy, index, leaf.integrated_time, entry);
        self.policy = policy;
        result
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn records_round_trip_with_owed_findings_and_refuse_garbage() {
        let policy = Policy::default();
        let mut record = TrustRecord {
            trust: AgentTrust::register(&policy, 3, 1_000),
            drift: DriftState::new(&policy),
            code_hash: [7; 32],
            owed_drift: Vec::new(),
            peers: Vec::new(),
        };
        let read = |score: &[u8], drift: &[u8]| TrustRecord::from_parts(score, drift);
        let (score, drift) = record.to_parts();
        assert_eq!(read(&score, &drift).unwrap(), record);
        assert!(read(&score, &drift[..drift.len() - 1]).is_err());
        for i in 0..3 {
            record.owed_drift.push(DriftFinding { psi_milli: 100 + i, significant: i == 2, first_index: 10 * i, last_index: 10 * i + 9 });
        }
        let score = record.score_bytes();
        assert_eq!(read(&score, &drift).unwrap(), record);
        assert!(read(&score[..score.len() - 1], &drift).is_err());
        let mut bad = score.clone();
        *bad.last_mut().unwrap() = 2;
        assert!(read(&bad, &drift).is_err());
        assert!(read(&[score.as_slice(), &[0]].concat(), &drift).is_err());
        record.peers.push(PeerSlot { reporter: [9; 16], counted_ms: 77 });
        let score = record.score_bytes();
        assert_eq!(read(&score, &drift).unwrap(), record);
        assert!(read(&score[..score.len() - 1], &drift).is_err());
        assert!(read(&[score.as_slice(), &[0]].concat(), &drift).is_err());
    }

    #[test]
    fn a_reporter_counts_once_per_interval_and_the_earliest_slot_goes_first() {
        let policy = Policy { peer_report_interval_s: 10, ..Policy::default() };
        let mut record = TrustRecord {
            trust: AgentTrust::register(&policy, 0, 0),
            drift: DriftState::new(&policy),
            code_hash: [0; 32],
            owed_drift: Vec::new(),
            peers: Vec::new(),
        };
        let a = reporter_hash(&AgentId::parse("spiffe://example.org/agent/a").unwrap());
        assert!(record.count_peer(&policy, a, 1_000));
        assert!(!record.count_peer(&policy, a, 10_999), "within the interval");
        assert!(record.count_peer(&policy, a, 11_000), "one interval later");
        assert_eq!(record.peers, [PeerSlot { reporter: a, counted_ms: 11_000 }]);
        // Fifteen others fill the slots; with all sixteen recent, a
        // seventeenth reporter counts for nothing, however many take turns.
        for i in 0..(MAX_PEERS - 1) as u64 {
            assert!(record.count_peer(&policy, [i as u8 + 1; 16], 12_000 + i));
        }
        assert_eq!(record.peers.len(), MAX_PEERS);
        for i in 0..64u8 {
            assert!(!record.count_peer(&policy, [100 + i; 16], 13_000), "all slots are recent");
        }
        assert!(!record.count_peer(&policy, [2; 16], 13_000), "still remembered");
        // Once a's interval has passed, its slot (the earliest) goes to
        // the next new reporter, and a's next report finds no free slot.
        assert!(record.count_peer(&policy, [200; 16], 21_000));
        assert!(!record.peers.iter().any(|p| p.reporter == a));
        assert!(!record.count_peer(&policy, a, 21_500));
        assert!(record.count_peer(&policy, [1; 16], 22_000), "its own slot, interval passed");
    }
}
