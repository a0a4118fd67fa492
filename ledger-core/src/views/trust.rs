//! The trust view: every agent's trust state (score evidence, freshness,
//! revoked state, logged risk level, drift detector) and the policy in
//! force, folded over the log by [`verifier::fold::trust_log`], the fold
//! `ledger-verify` recomputes (docs/TRUST.md).
//!
//! State is O(1) per agent and each entry updates it in O(1) (a signal
//! about a code hash updates each agent running that code). Scores are
//! read at any instant: decay from the last event to the reading time is
//! applied lazily ([`TrustView::get`] + [`AgentTrust::score`]).
//!
//! Records: namespace [`Namespace::Views`], key [`record_key`]`("trust",
//! agent id)` → [`TrustRecord::score_bytes`], key `record_key("trust",
//! agent id ‖ 0x00 ‖ "drift")` → its [`DriftState`] (rewritten with every
//! action, the score part only when it changes), and `record_key("trust",
//! "policy")` → the index of the policy entry in force (u64 BE,
//! `u64::MAX` for the built-in default) ‖ the policy's canonical JSON;
//! written in the commit of the entries they fold. Beside them, each
//! agent's score history: its last [`HISTORY_RING`] points, one per entry
//! that moved the agent's score part or changed its key or lifecycle
//! (rotation, retirement), in a ring: key [`record_key`]`("trust-history",
//! agent id ‖ 0x00 ‖ slot)` (u16 BE) → [`ScorePoint`]'s bytes, the slot
//! being the count of the agent's points so far modulo the ring's size,
//! and that count at `record_key("trust", agent id ‖ 0x00 ‖ "history")`
//! (u64 BE). What an operator's chart reads ([`history`]); an agent
//! attesting every second for years still holds [`HISTORY_RING`] points.
//! A log kept before these records existed has points from its upgrade on
//! (a rebuilt view has them all). What changed in a
//! published group (agents, the policy) is handed to the revocation
//! trigger ([`crate::trigger`]) through [`TrustView::take_changes`].

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use verifier::agent_id::AgentId;
use verifier::entry::{Entry, EntryKind, Leaf, Level, RevocationReason};
use verifier::fold::policy::Policy;
use verifier::fold::trust_log::{self, PolicyInForce, TrustRecord, TrustStore};

use super::{record_key, Entries, View};
use crate::entry::NewEntry;
use crate::store::{LogStore, Namespace, Record, StorageError};
use crate::Error;

pub use verifier::fold::trust::AgentTrust;

/// The view's name.
pub const NAME: &str = "trust";
/// The prefix of the score history's records (not under [`NAME`]'s, which
/// [`TrustView`] loads whole).
const HISTORY: &str = "trust-history";
const POLICY_KEY: &[u8] = b"policy";

#[derive(Debug, Default)]
struct State {
    agents: HashMap<AgentId, TrustRecord>,
    codes: HashMap<[u8; 32], BTreeSet<AgentId>>,
    policy: PolicyInForce,
    /// Score history points written per agent (see [`HISTORY_RING`]).
    history: HashMap<AgentId, u64>,
    /// Entries applied (the log's size this state reflects).
    applied: u64,
}

#[derive(Debug, Default)]
struct Pending {
    agents: HashMap<AgentId, TrustRecord>,
    history: HashMap<AgentId, u64>,
    policy: Option<PolicyInForce>,
    /// Agents whose score state or owed findings changed (for the
    /// trigger).
    moved: BTreeSet<AgentId>,
    revocations: [u64; RevocationReason::ALL.len()],
    applied: Option<u64>,
}

/// What changed in the groups published since the last call.
#[derive(Debug, Default)]
pub struct Changes {
    /// Agents whose score state or owed drift findings changed.
    pub agents: BTreeSet<AgentId>,
    /// Whether the policy changed.
    pub policy_changed: bool,
}

/// The trust view.
#[derive(Debug, Default)]
pub struct TrustView {
    published: RwLock<State>,
    pending: Mutex<Pending>,
    changes: Mutex<Changes>,
    notify: tokio::sync::Notify,
    /// Revocations published since the view was opened: by score, by
    /// quarantine.
    revocations: [std::sync::atomic::AtomicU64; RevocationReason::ALL.len()],
    /// The last score table ([`TrustView::scores`]).
    table: Mutex<Option<Arc<ScoreTable>>>,
}

/// Every agent's score at one instant, lowest first: what listings and
/// metrics read ([`TrustView::scores`]).
#[derive(Debug)]
pub struct ScoreTable {
    /// Entries the scored state reflects (the log's size then).
    pub applied: u64,
    /// The instant the scores are read at, ms.
    pub time_ms: u64,
    /// The policy in force.
    pub policy_index: Option<u64>,
    /// Every agent, by (score, id).
    pub rows: Vec<ScoreRow>,
}

/// One agent in a [`ScoreTable`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ScoreRow {
    /// Its score at the table's instant.
    pub score: u8,
    /// The agent.
    pub agent: AgentId,
    /// Its logged risk level.
    pub level: Level,
    /// Whether it is revoked.
    pub revoked: bool,
}

/// How long a score table is reused while the log does not change, and
/// how long at least while it does: listings and metrics cost one pass
/// over the agents at most every [`TABLE_FRESH_MS`], however often they
/// are asked for.
pub const TABLE_REUSE_MS: u64 = 1_000;
/// See [`TABLE_REUSE_MS`].
pub const TABLE_FRESH_MS: u64 = 100;

/// The pending overlay over the published state, as the fold sees it.
struct Overlay<'a> {
    base: &'a State,
    pending: &'a mut Pending,
}

impl TrustStore for Overlay<'_> {
    fn get(&self, agent: &AgentId) -> Option<TrustRecord> {
        self.pending.agents.get(agent).or_else(|| self.base.agents.get(agent)).cloned()
    }

    fn put(&mut self, agent: &AgentId, record: TrustRecord) {
        self.pending.agents.insert(agent.clone(), record);
    }

    fn with_code(&self, code_hash: &[u8; 32]) -> Vec<AgentId> {
        let mut all: BTreeSet<AgentId> = self.base.codes.get(code_hash).cloned().unwrap_or_default();
        all.extend(self.pending.agents.iter().filter(|(_, r)| r.code_hash == *code_hash).map(|(a, _)| a.clone()));
        all.into_iter().collect()
    }
}

/// The key of an agent's drift detector: `trust ‖ 0x00 ‖ agent id ‖ 0x00 ‖
/// "drift"` (an agent id holds no `0x00`), beside its score part at
/// `trust ‖ 0x00 ‖ agent id`.
fn drift_key(agent: &[u8]) -> Vec<u8> {
    record_key(NAME, &[agent, DRIFT_SUFFIX].concat())
}

/// See [`drift_key`].
const DRIFT_SUFFIX: &[u8] = b"\0drift";
/// The suffix of an agent's history count, beside its drift detector.
const HISTORY_SUFFIX: &[u8] = b"\0history";

fn corrupt(what: String) -> Error {
    Error::Storage(StorageError::Corrupt(what))
}

fn policy_record(policy: &PolicyInForce) -> Record {
    let value = [&policy.index.unwrap_or(u64::MAX).to_be_bytes()[..], &policy.policy.to_canonical()].concat();
    Record::put(Namespace::Views, record_key(NAME, POLICY_KEY), value)
}

impl TrustView {
    /// An agent's published trust record.
    pub fn get(&self, agent: &AgentId) -> Option<TrustRecord> {
        self.read().agents.get(agent).cloned()
    }

    /// An agent's published record, the policy in force and the number of
    /// entries the state reflects, read together (what a report is "as
    /// of").
    pub fn snapshot(&self, agent: &AgentId) -> Option<(TrustRecord, PolicyInForce, u64)> {
        let state = self.read();
        state.agents.get(agent).map(|r| (r.clone(), state.policy.clone(), state.applied))
    }

    /// `(score, threshold)` when `agent`, not revoked, scores below the
    /// policy's revocation threshold at `now_ms` (published state).
    pub fn below_threshold(&self, agent: &AgentId, now_ms: u64) -> Option<(u8, u8)> {
        let state = self.read();
        let record = state.agents.get(agent)?;
        if record.trust.revoked().is_some() {
            return None;
        }
        let threshold = state.policy.policy.revocation_threshold;
        let score = record.trust.score(&state.policy.policy, now_ms);
        (score < threshold).then_some((score, threshold))
    }

    /// The policy in force (as of the latest commit).
    pub fn policy(&self) -> PolicyInForce {
        self.read().policy.clone()
    }

    /// Every agent's score at `now_ms` (or a table at most
    /// [`TABLE_REUSE_MS`] older, read from the same state, or at most
    /// [`TABLE_FRESH_MS`] older): one pass over the agents, copied out
    /// under the read lock and scored and sorted outside it, so appends
    /// wait at most for the copy. Blocking: call it off the async workers.
    pub fn scores(&self, now_ms: u64) -> Arc<ScoreTable> {
        let mut last = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(table) = last.as_ref() {
            let age = now_ms.saturating_sub(table.time_ms);
            if age < TABLE_FRESH_MS || (age < TABLE_REUSE_MS && table.applied == self.read().applied) {
                return Arc::clone(table);
            }
        }
        let (copied, policy, applied) = {
            let state = self.read();
            let copied: Vec<(AgentId, AgentTrust)> = state.agents.iter().map(|(a, r)| (a.clone(), r.trust.clone())).collect();
            (copied, state.policy.clone(), state.applied)
        };
        let mut rows: Vec<ScoreRow> = copied
            .into_iter()
            .map(|(agent, trust)| ScoreRow {
                score: trust.score(&policy.policy, now_ms),
                agent,
                level: trust.level(),
                revoked: trust.revoked().is_some(),
            })
            .collect();
        rows.sort_unstable();
        let table = Arc::new(ScoreTable { applied, time_ms: now_ms, policy_index: policy.index, rows });
        *last = Some(Arc::clone(&table));
        table
    }

    /// Every agent's published record (`f` sees each, under the read
    /// lock: the trigger's catch-up at open); returns the number of
    /// entries the state reflects.
    pub fn for_each(&self, mut f: impl FnMut(&AgentId, &TrustRecord)) -> u64 {
        let state = self.read();
        for (agent, record) in &state.agents {
            f(agent, record);
        }
        state.applied
    }

    /// Agents with a trust record.
    pub fn len(&self) -> usize {
        self.read().agents.len()
    }

    /// Whether no agent has a record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Revocations published since the log was opened, by reason
    /// (`score`, `quarantine`).
    pub fn revocations(&self) -> [(RevocationReason, u64); RevocationReason::ALL.len()] {
        RevocationReason::ALL.map(|reason| (reason, self.revocations[reason.ordinal()].load(std::sync::atomic::Ordering::Relaxed)))
    }

    /// Takes what changed since the last call (for the revocation trigger).
    pub fn take_changes(&self) -> Changes {
        std::mem::take(&mut *self.changes.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Waits until a published group changed something.
    pub async fn changed(&self) {
        self.notify.notified().await;
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.published.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// Records read per page when loading.
const LOAD_PAGE: usize = 1024;

/// One point of an agent's score history: its score and level right after
/// an entry that moved it (or changed its key or lifecycle).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScorePoint {
    /// The entry's index.
    pub index: u64,
    /// Its integrated time, ms.
    pub time_ms: u64,
    /// Its kind.
    pub kind: EntryKind,
    /// The score right after it (0 while revoked).
    pub score: u8,
    /// The logged risk level right after it.
    pub level: Level,
}

/// Points of an agent's score history kept: the latest, in a ring.
pub const HISTORY_RING: u64 = 256;

/// The layout version of a stored [`ScorePoint`].
const POINT_VERSION: u8 = 1;

/// Bytes of a stored [`ScorePoint`]: version (1) ‖ index (u64 BE) ‖ time
/// (u64 BE) ‖ score ‖ level ([`Level::code`]) ‖ kind name.
fn point_value(point: &ScorePoint) -> Vec<u8> {
    let head = [POINT_VERSION];
    [
        &head[..],
        &point.index.to_be_bytes(),
        &point.time_ms.to_be_bytes(),
        &[point.score, point.level.code()],
        point.kind.as_str().as_bytes(),
    ]
    .concat()
}

fn history_prefix(agent: &AgentId) -> Vec<u8> {
    record_key(HISTORY, &[agent.as_str().as_bytes(), &[0]].concat())
}

/// Adds a history point for each of `agents` after the entry at `index`,
/// in the slot of the oldest once the ring is full.
fn history_points(
    store: &mut Overlay<'_>,
    policy: &Policy,
    index: u64,
    time_ms: u64,
    kind: EntryKind,
    agents: &[AgentId],
    records: &mut Vec<Record>,
) {
    for agent in agents {
        let Some(record) = store.get(agent) else { continue };
        let point = ScorePoint { index, time_ms, kind, score: record.trust.score(policy, time_ms), level: record.trust.level() };
        let count = store.pending.history.get(agent).or_else(|| store.base.history.get(agent)).copied().unwrap_or(0);
        let slot = u16::try_from(count % HISTORY_RING).unwrap_or(u16::MAX);
        records.push(Record::put(Namespace::Views, [history_prefix(agent), slot.to_be_bytes().to_vec()].concat(), point_value(&point)));
        let id = agent.as_str().as_bytes();
        records.push(Record::put(Namespace::Views, record_key(NAME, &[id, HISTORY_SUFFIX].concat()), (count + 1).to_be_bytes()));
        store.pending.history.insert(agent.clone(), count + 1);
    }
}

/// The last `limit` (at most [`HISTORY_RING`]) points of `agent`'s score
/// history, oldest first. Reads the store: call it off the async workers.
pub fn history(store: &dyn LogStore, agent: &AgentId, limit: usize) -> Result<Vec<ScorePoint>, Error> {
    let prefix = history_prefix(agent);
    let ring = store.scan_prefix(Namespace::Views, &prefix, &prefix, HISTORY_RING as usize)?;
    let mut points = ring
        .iter()
        // A slot is two bytes (keys of another length are not points).
        .filter(|(key, _)| key.len() == prefix.len() + 2)
        .map(|(_, value)| {
            let bad = || corrupt(format!("score history record of {agent}"));
            let rest = value.strip_prefix(&[POINT_VERSION]).ok_or_else(bad)?;
            let (index, rest) = rest.split_first_chunk::<8>().ok_or_else(bad)?;
            let (time, rest) = rest.split_first_chunk::<8>().ok_or_else(bad)?;
            let [score, level, kind @ ..] = rest else { return Err(bad()) };
            Ok(ScorePoint {
                index: u64::from_be_bytes(*index),
                time_ms: u64::from_be_bytes(*time),
                kind: std::str::from_utf8(kind).ok().and_then(EntryKind::parse).ok_or_else(bad)?,
                score: *score,
                level: Level::from_code(*level).ok_or_else(bad)?,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    points.sort_unstable_by_key(|p| p.index);
    Ok(points.split_off(points.len().saturating_sub(limit)))
}

impl View for TrustView {
    fn name(&self) -> &'static str {
        NAME
    }

    fn load(&self, store: &dyn LogStore) -> Result<bool, Error> {
        let mut state = State::default();
        let prefix = record_key(NAME, &[]);
        let mut from = prefix.clone();
        let mut found = false;
        let (mut scores, mut drifts) = (HashMap::new(), HashMap::new());
        loop {
            let page = store.scan_prefix(Namespace::Views, &prefix, &from, LOAD_PAGE)?;
            for (key, value) in &page {
                found = true;
                let name = &key[prefix.len()..];
                if name == POLICY_KEY {
                    let (index, json) = value.split_at_checked(8).ok_or_else(|| corrupt("trust policy record".into()))?;
                    let index = u64::from_be_bytes(index.try_into().map_err(|_| corrupt("trust policy record".into()))?);
                    let json: serde_json::Value =
                        serde_json::from_slice(json).map_err(|_| corrupt("trust policy record is not JSON".into()))?;
                    let policy = Policy::from_json(&json).map_err(|e| corrupt(format!("trust policy record: {e}")))?;
                    state.policy = PolicyInForce { policy, index: (index != u64::MAX).then_some(index) };
                    continue;
                }
                if let Some(agent) = name.strip_suffix(DRIFT_SUFFIX) {
                    drifts.insert(agent.to_vec(), value.clone());
                } else if let Some(agent) = name.strip_suffix(HISTORY_SUFFIX) {
                    let count = value.as_slice().try_into().map_err(|_| corrupt("trust history count".into()))?;
                    let agent = std::str::from_utf8(agent).map_err(|_| corrupt("trust history key is not UTF-8".into()))?;
                    state.history.insert(AgentId::from_stored_unchecked(agent), u64::from_be_bytes(count));
                } else {
                    scores.insert(name.to_vec(), value.clone());
                }
            }
            match page.last() {
                Some((last, _)) if page.len() == LOAD_PAGE => from = [last.as_slice(), &[0]].concat(),
                _ => break,
            }
        }
        if !scores.is_empty() && drifts.is_empty() {
            // Written before the drift detector had its own record (one
            // combined record per agent): dropped with the applied index,
            // and the view rebuilt from the log.
            tracing::warn!("trust view records of an earlier layout: rebuilding the view from the log");
            let mut drop: Vec<Record> = scores.into_keys().map(|name| Record::delete(Namespace::Views, record_key(NAME, &name))).collect();
            drop.push(Record::delete(Namespace::Views, record_key(NAME, POLICY_KEY)));
            drop.push(Record::delete(Namespace::Views, NAME.as_bytes().to_vec()));
            let size = store.head()?.map_or(0, |h| h.size);
            store.commit(&crate::store::CommitBatch { first_index: size, records: drop, ..Default::default() })?;
            *self.published.write().unwrap_or_else(|e| e.into_inner()) = State::default();
            return Ok(false);
        }
        for (name, score) in scores {
            let agent = std::str::from_utf8(&name).map_err(|_| corrupt("trust record key is not UTF-8".into()))?;
            let agent = AgentId::from_stored_unchecked(agent);
            let drift = drifts.remove(&name).ok_or_else(|| corrupt(format!("trust record of {agent} has no drift detector")))?;
            let record = TrustRecord::from_parts(&score, &drift).map_err(|e| corrupt(format!("trust record of {agent}: {e}")))?;
            state.codes.entry(record.code_hash).or_default().insert(agent.clone());
            state.agents.insert(agent, record);
        }
        if let Some(name) = drifts.keys().next() {
            return Err(corrupt(format!("a drift detector without its trust record ({})", String::from_utf8_lossy(name))));
        }
        state.applied = super::applied(store, NAME)?.unwrap_or(0);
        *self.published.write().unwrap_or_else(|e| e.into_inner()) = state;
        Ok(found)
    }

    fn fold(&self, entries: &Entries<'_>, records: &mut Vec<Record>) -> Result<(), Error> {
        let base = self.read();
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let mut policy = pending.policy.clone().unwrap_or_else(|| base.policy.clone());
        let policy_before = policy.index;
        let (mut touched_here, mut moved_here) = (BTreeSet::new(), BTreeSet::new());
        {
            let mut overlay = Overlay { base: &base, pending: &mut pending };
            let admitted: Option<Vec<&NewEntry>> = entries.admitted.map(|groups| groups.iter().flat_map(|g| g.iter()).collect());
            for (i, bytes) in entries.leaves.iter().enumerate() {
                let index = entries.first_index + i as u64;
                // On the append path an action (most entries) comes with
                // its agent and drift observation, computed when it was
                // admitted; its leaf is not read.
                let observed = admitted.as_ref().and_then(|a| a.get(i)).and_then(|e| e.observed());
                if let (Some((agent, observation)), Some(time)) = (observed, entries.integrated_time) {
                    let effects = trust_log::observe_action(&mut overlay, &policy.policy, index, time, agent, *observation);
                    // A drift window that closed with a finding moved the
                    // score.
                    history_points(&mut overlay, &policy.policy, index, time, EntryKind::Action, &effects.moved, records);
                    touched_here.extend(effects.touched);
                    moved_here.extend(effects.moved);
                    continue;
                }
                let (leaf, _) = Leaf::decode(bytes).map_err(|e| corrupt(format!("entry {index}: {e}")))?;
                let Some(entry) = &leaf.entry else { continue };
                // Counted as they are appended, not when the log is folded
                // at open.
                if let (Entry::Revocation(r), Some(_)) = (entry, entries.admitted) {
                    overlay.pending.revocations[r.reason.ordinal()] += 1;
                }
                let effects = trust_log::apply(&mut overlay, &mut policy, index, leaf.integrated_time, entry)
                    .map_err(|e| corrupt(format!("entry {index}: the trust fold refuses it: {e}")))?;
                let lifecycle = match entry {
                    Entry::Rotation(r) => Some(&r.agent),
                    Entry::Retirement(r) => Some(&r.agent),
                    _ => None,
                };
                let marked: Vec<AgentId> = effects.moved.iter().chain(lifecycle).cloned().collect();
                history_points(&mut overlay, &policy.policy, index, leaf.integrated_time, leaf.kind, &marked, records);
                touched_here.extend(effects.touched);
                moved_here.extend(effects.moved);
                for violation in effects.violations {
                    // The log only writes what the fold justifies; met
                    // here, the store holds what it never wrote.
                    tracing::error!(index, ?violation, "the trust fold does not justify an entry of this log");
                }
            }
        }
        for agent in &touched_here {
            if let Some(record) = pending.agents.get(agent) {
                // The drift detector changes with every action; the score
                // part only when the agent's score state or owed findings
                // do (or the record is new to the store).
                let id = agent.as_str().as_bytes();
                records.push(Record::put(Namespace::Views, drift_key(id), record.drift.to_bytes()));
                if moved_here.contains(agent) || !base.agents.contains_key(agent) {
                    // (`moved`: the score part changed, peer slots and owed
                    // findings included.)
                    records.push(Record::put(Namespace::Views, record_key(NAME, id), record.score_bytes()));
                }
            }
        }
        if policy.index != policy_before {
            records.push(policy_record(&policy));
            pending.policy = Some(policy);
        }
        pending.moved.extend(moved_here);
        pending.applied = Some(entries.first_index + entries.leaves.len() as u64);
        Ok(())
    }

    fn publish(&self) {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        let policy_changed = pending.policy.is_some();
        for (counter, n) in self.revocations.iter().zip(pending.revocations) {
            counter.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        }
        {
            let mut state = self.published.write().unwrap_or_else(|e| e.into_inner());
            for (agent, record) in pending.agents {
                state.codes.entry(record.code_hash).or_default().insert(agent.clone());
                state.agents.insert(agent, record);
            }
            state.history.extend(pending.history);
            if let Some(policy) = pending.policy {
                state.policy = policy;
            }
            if let Some(applied) = pending.applied {
                state.applied = applied;
            }
        }
        if pending.moved.is_empty() && !policy_changed {
            return;
        }
        let mut changes = self.changes.lock().unwrap_or_else(|e| e.into_inner());
        changes.agents.extend(pending.moved);
        changes.policy_changed |= policy_changed;
        drop(changes);
        self.notify.notify_one();
    }

    fn discard(&self) {
        *self.pending.lock().unwrap_or_else(|e| e.into_inner()) = Pending::default();
    }
}
