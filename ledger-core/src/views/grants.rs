//! Grants, a view: what action tokens and escalations the log has issued
//! and decided (docs/FORMAT.md, "Action tokens", "Escalations"), as a
//! deterministic fold of `token`, `escalation`, `decision`, `revocation`
//! and `retirement` entries:
//!
//! * every agent's live tokens (id and expiry): a revocation lists them
//!   and revokes them all, so an agent holds at most
//!   [`MAX_LIVE_TOKENS`];
//! * the revoked (or retired) agents with the time of their revocation,
//!   kept while a token issued before it may live (counting the largest
//!   leeway a verifier may allow, [`MAX_LEEWAY_MS`]), for
//!   `POST /v1/tokens/verify`: a revocation revokes every token its agent
//!   was issued before it ([`verifier::token::Revocations`]), the ids it
//!   lists among them;
//! * every escalation with its decision and the token that answered it,
//!   kept for [`RETAIN_DECIDED_MS`] after it was decided, so that an agent
//!   polling it learns the outcome.
//!
//! Expiry is read from the integrated time of the entries folded, never
//! the wall clock, so the view rebuilt from the log equals the one kept up
//! to date.
//!
//! Also here: the issuance locks ([`Grants::lock`]). Issuing a token and
//! building a revocation for the same agent are serialized by them, so a
//! revocation lists every token issued before it.
//!
//! Records: namespace [`Namespace::Views`], keys [`record_key`]`("grants",
//! …)`: `l ‖ agent` (the agent's live tokens), `a ‖ agent` (a revoked or
//! retired agent's revocation time, 8 bytes big-endian), `e ‖ index` (an
//! escalation), canonical JSON otherwise.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use serde_json::{Map, Value};
use verifier::agent_id::AgentId;
use verifier::entry::{Entry, EntryKind, Escalation, Leaf, Outcome, Retirement, Revocation, TokenIssued};
use verifier::token::{Revocations, MAX_LEEWAY_MS, MAX_LIVE_TOKENS};

use super::{record_key, Entries, View};
use crate::store::{LogStore, Namespace, Record, StorageError};
use crate::Error;

/// The view's name.
pub const NAME: &str = "grants";

/// How long a decided escalation is kept after its decision, ms.
pub const RETAIN_DECIDED_MS: u64 = 24 * 3600 * 1000;

/// Issuance lock stripes.
const LOCKS: usize = 64;

/// The kinds this view folds.
const KINDS: [EntryKind; 5] = [EntryKind::Token, EntryKind::Escalation, EntryKind::Decision, EntryKind::Revocation, EntryKind::Retirement];

/// An escalation and what became of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EscalationRecord {
    /// Its entry's index (its id).
    pub index: u64,
    /// The entry.
    pub entry: Escalation,
    /// When it was logged, ms.
    pub logged_at: u64,
    /// Its decision: outcome, the decision entry's index and time, the note.
    pub decision: Option<(Outcome, u64, u64, Option<String>)>,
    /// The token issued on approval, and its entry's index.
    pub token: Option<(TokenIssued, u64)>,
}

impl EscalationRecord {
    /// Whether it waits for a decision.
    pub fn pending(&self) -> bool {
        self.decision.is_none()
    }
}

/// The view's state.
/// Revoked and retired agents, with the instant of their revocation or
/// retirement, kept for as long as a token issued before it may live: every
/// token an agent was issued before then is dead
/// ([`verifier::token::Revocations`]). Every id a revocation lists is one of
/// them (issuance and revocation share the agent's lock), so no id is kept.
#[derive(Clone, Debug, Default)]
struct Revoked {
    agents: BTreeMap<AgentId, u64>,
}

/// The view's state. Staging a group clones it: the parts are behind
/// `Arc`s, so a clone copies one pointer per agent with live tokens and
/// the parts a group changes are copied on write.
#[derive(Clone, Debug, Default)]
struct State {
    live: HashMap<AgentId, Arc<BTreeMap<String, u64>>>,
    revoked: Arc<Revoked>,
    escalations: Arc<BTreeMap<u64, EscalationRecord>>,
}

/// Which records a fold changed.
#[derive(Debug, Default)]
struct Dirty {
    agents: BTreeSet<AgentId>,
    revoked_agents: BTreeSet<AgentId>,
    escalations: BTreeSet<u64>,
}

impl Revoked {
    /// Forgets agents none of whose earlier tokens can be live at `now`
    /// (with the largest leeway a verifier may allow).
    fn prune(&mut self, now: u64, dirty: &mut Dirty) {
        let keep = u64::from(verifier::token::MAX_LIFETIME_S) * 1000 + MAX_LEEWAY_MS;
        let gone: Vec<AgentId> = self.agents.iter().filter(|(_, at)| at.saturating_add(keep) < now).map(|(a, _)| a.clone()).collect();
        for agent in gone {
            self.agents.remove(&agent);
            dirty.revoked_agents.insert(agent);
        }
    }

    /// Records `agent` revoked (or retired) at `time`.
    fn add(&mut self, agent: &AgentId, time: u64, dirty: &mut Dirty) {
        self.agents.insert(agent.clone(), time);
        dirty.revoked_agents.insert(agent.clone());
        self.prune(time, dirty);
    }
}

impl State {
    /// Forgets decided escalations past their retention.
    fn prune_escalations(&mut self, now: u64, dirty: &mut Dirty) {
        let stale: Vec<u64> = self
            .escalations
            .values()
            .filter(|e| e.decision.as_ref().is_some_and(|(_, _, at, _)| at.saturating_add(RETAIN_DECIDED_MS) < now))
            .map(|e| e.index)
            .collect();
        if stale.is_empty() {
            return;
        }
        let escalations = Arc::make_mut(&mut self.escalations);
        for index in stale {
            escalations.remove(&index);
            dirty.escalations.insert(index);
        }
    }

    fn apply(&mut self, index: u64, time: u64, entry: &Entry, dirty: &mut Dirty) {
        match entry {
            Entry::Token(t) => {
                let live = Arc::make_mut(self.live.entry(t.agent.clone()).or_default());
                live.retain(|_, exp| *exp >= time);
                live.insert(t.jti.clone(), t.expires);
                dirty.agents.insert(t.agent.clone());
                if let Some(at) = t.escalation.filter(|e| self.escalations.contains_key(e)) {
                    if let Some(e) = Arc::make_mut(&mut self.escalations).get_mut(&at) {
                        e.token = Some((t.clone(), index));
                        dirty.escalations.insert(at);
                    }
                }
            }
            // A revoked or retired agent's tokens die with it: every one
            // it was issued before is refused by the time recorded here.
            Entry::Revocation(Revocation { agent, .. }) | Entry::Retirement(Retirement { agent, .. }) => {
                self.live.remove(agent);
                dirty.agents.insert(agent.clone());
                Arc::make_mut(&mut self.revoked).add(agent, time, dirty);
                self.prune_escalations(time, dirty);
            }
            Entry::Escalation(e) => {
                let record = EscalationRecord { index, entry: e.clone(), logged_at: time, decision: None, token: None };
                Arc::make_mut(&mut self.escalations).insert(index, record);
                dirty.escalations.insert(index);
            }
            Entry::Decision(d) => {
                if self.escalations.get(&d.escalation).is_some_and(EscalationRecord::pending) {
                    if let Some(e) = Arc::make_mut(&mut self.escalations).get_mut(&d.escalation) {
                        e.decision = Some((d.outcome, index, time, d.note.clone()));
                        dirty.escalations.insert(d.escalation);
                    }
                }
                self.prune_escalations(time, dirty);
            }
            _ => {}
        }
    }

    fn records(&self, dirty: &Dirty) -> Vec<Record> {
        let mut out = Vec::new();
        for agent in &dirty.agents {
            let key = record_key(NAME, &[b"l", agent.as_str().as_bytes()].concat());
            match self.live.get(agent).filter(|l| !l.is_empty()) {
                Some(live) => {
                    let m: Map<String, Value> = live.iter().map(|(j, e)| (j.clone(), Value::from(*e))).collect();
                    out.push(Record::put(Namespace::Views, key, verifier::canonical::to_canonical(&Value::Object(m))));
                }
                None => out.push(Record::delete(Namespace::Views, key)),
            }
        }
        for agent in &dirty.revoked_agents {
            let key = record_key(NAME, &[b"a", agent.as_str().as_bytes()].concat());
            match self.revoked.agents.get(agent) {
                Some(at) => out.push(Record::put(Namespace::Views, key, at.to_be_bytes())),
                None => out.push(Record::delete(Namespace::Views, key)),
            }
        }
        for index in &dirty.escalations {
            let key = record_key(NAME, &[b"e".as_slice(), &index.to_be_bytes()].concat());
            match self.escalations.get(index) {
                Some(e) => out.push(Record::put(Namespace::Views, key, escalation_bytes(e))),
                None => out.push(Record::delete(Namespace::Views, key)),
            }
        }
        out
    }
}

/// The stored form of an escalation record: canonical JSON of its entry
/// object and what became of it.
fn escalation_bytes(e: &EscalationRecord) -> Vec<u8> {
    let mut m = Map::new();
    m.insert("index".into(), Value::from(e.index));
    m.insert("entry".into(), Value::Object(e.entry.to_object()));
    m.insert("logged_at".into(), Value::from(e.logged_at));
    if let Some((outcome, index, at, note)) = &e.decision {
        let mut d = Map::new();
        d.insert("outcome".into(), Value::from(outcome.as_str()));
        d.insert("index".into(), Value::from(*index));
        d.insert("at".into(), Value::from(*at));
        if let Some(n) = note {
            d.insert("note".into(), Value::from(n.as_str()));
        }
        m.insert("decision".into(), Value::Object(d));
    }
    if let Some((t, index)) = &e.token {
        m.insert("token".into(), Value::Object(t.to_object()));
        m.insert("token_index".into(), Value::from(*index));
    }
    verifier::canonical::to_canonical(&Value::Object(m))
}

fn escalation_from_bytes(bytes: &[u8]) -> Result<EscalationRecord, StorageError> {
    let corrupt = |what: &str| StorageError::Corrupt(format!("escalation record: {what}"));
    let v: Value = serde_json::from_slice(bytes).map_err(|_| corrupt("not JSON"))?;
    let u = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64).ok_or_else(|| corrupt(k));
    let entry = |v: Option<&Value>| -> Result<Entry, StorageError> {
        let obj = v.and_then(Value::as_object).ok_or_else(|| corrupt("entry"))?;
        Entry::from_object(obj, verifier::entry::Form::Leaf).map_err(|e| corrupt(&e.to_string()))
    };
    let Entry::Escalation(escalation) = entry(v.get("entry"))? else { return Err(corrupt("entry kind")) };
    let decision = match v.get("decision") {
        None => None,
        Some(d) => Some((
            d.get("outcome").and_then(Value::as_str).and_then(Outcome::parse).ok_or_else(|| corrupt("outcome"))?,
            u(d, "index")?,
            u(d, "at")?,
            d.get("note").and_then(Value::as_str).map(str::to_owned),
        )),
    };
    let token = match v.get("token") {
        None => None,
        Some(t) => {
            let Entry::Token(token) = entry(Some(t))? else { return Err(corrupt("token kind")) };
            Some((token, u(&v, "token_index")?))
        }
    };
    Ok(EscalationRecord { index: u(&v, "index")?, entry: escalation, logged_at: u(&v, "logged_at")?, decision, token })
}

/// The grants view.
#[derive(Debug)]
pub struct Grants {
    published: RwLock<State>,
    pending: Mutex<Option<(State, Dirty)>>,
    locks: Vec<tokio::sync::Mutex<()>>,
}

impl Default for Grants {
    fn default() -> Self {
        Self { published: RwLock::default(), pending: Mutex::default(), locks: (0..LOCKS).map(|_| tokio::sync::Mutex::new(())).collect() }
    }
}

/// The revoked agents as published when read (a snapshot: no lock is held
/// while a token is checked against it).
#[derive(Debug)]
pub struct RevokedIds(Arc<Revoked>);

impl Revocations for RevokedIds {
    fn is_revoked(&self, claims: &verifier::token::Claims) -> bool {
        self.0.agents.get(claims.subject.as_str()).is_some_and(|at| claims.issued_at <= *at)
    }
}

impl Grants {
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.published.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The ids of `agent`'s tokens live at `now_ms` (ascending). Tokens
    /// expired a moment before, which a verifier's leeway may still take,
    /// are refused by the agent's revocation itself
    /// ([`verifier::token::Revocations`]).
    pub fn live_tokens(&self, agent: &AgentId, now_ms: u64) -> Vec<String> {
        self.read()
            .live
            .get(agent)
            .map(|l| l.iter().filter(|(_, exp)| **exp >= now_ms).map(|(j, _)| j.clone()).collect())
            .unwrap_or_default()
    }

    /// Whether `agent` may be issued another token at `now_ms`.
    pub fn has_room(&self, agent: &AgentId, now_ms: u64) -> bool {
        self.live_tokens(agent, now_ms).len() < MAX_LIVE_TOKENS
    }

    /// The revoked agents, to check tokens against.
    pub fn revoked(&self) -> RevokedIds {
        RevokedIds(Arc::clone(&self.read().revoked))
    }

    /// The escalation logged at `index`.
    pub fn escalation(&self, index: u64) -> Option<EscalationRecord> {
        self.read().escalations.get(&index).cloned()
    }

    /// How many escalations of `agent` wait for a decision.
    pub fn pending_of(&self, agent: &AgentId) -> usize {
        self.read().escalations.values().filter(|e| e.pending() && e.entry.agent == *agent).count()
    }

    /// The indices of pending escalations whose `expires_at` is at or
    /// before `now_ms`.
    pub fn expired(&self, now_ms: u64) -> Vec<u64> {
        self.read().escalations.values().filter(|e| e.pending() && e.entry.expires_at <= now_ms).map(|e| e.index).collect()
    }

    /// Escalations waiting for a decision, oldest first.
    pub fn pending(&self) -> Vec<EscalationRecord> {
        self.read().escalations.values().filter(|e| e.pending()).cloned().collect()
    }

    /// The issuance lock of `agent`: held while a token is issued to it or
    /// a revocation is built for it.
    pub async fn lock(&self, agent: &AgentId) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{Hash as _, Hasher as _};
        // SipHash with fixed keys: an agent always maps to the same stripe.
        let mut h = std::hash::DefaultHasher::new();
        agent.as_str().hash(&mut h);
        self.locks[(h.finish() as usize) % LOCKS].lock().await
    }

    fn staged(&self) -> std::sync::MutexGuard<'_, Option<(State, Dirty)>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Records read per page when loading.
const LOAD_PAGE: usize = 1024;

impl View for Grants {
    fn name(&self) -> &'static str {
        NAME
    }

    fn load(&self, store: &dyn LogStore) -> Result<bool, Error> {
        let prefix = record_key(NAME, &[]);
        let mut state = State::default();
        let mut from = prefix.clone();
        let mut found = false;
        loop {
            let page = store.scan_prefix(Namespace::Views, &prefix, &from, LOAD_PAGE)?;
            for (key, value) in &page {
                found = true;
                let corrupt = |what: &str| StorageError::Corrupt(format!("grants record: {what}"));
                let (tag, rest) = key[prefix.len()..].split_first().ok_or_else(|| corrupt("empty key"))?;
                match tag {
                    b'l' => {
                        let agent = AgentId::from_stored_unchecked(std::str::from_utf8(rest).map_err(|_| corrupt("agent"))?);
                        let v: Map<String, Value> = serde_json::from_slice(value).map_err(|_| corrupt("live tokens"))?;
                        let live = v
                            .into_iter()
                            .map(|(j, e)| e.as_u64().map(|e| (j, e)))
                            .collect::<Option<_>>()
                            .ok_or_else(|| corrupt("expiry"))?;
                        state.live.insert(agent, Arc::new(live));
                    }
                    b'a' => {
                        let agent = AgentId::from_stored_unchecked(std::str::from_utf8(rest).map_err(|_| corrupt("agent"))?);
                        let at = u64::from_be_bytes(value.as_slice().try_into().map_err(|_| corrupt("revocation time"))?);
                        Arc::make_mut(&mut state.revoked).agents.insert(agent, at);
                    }
                    b'e' => {
                        let e = escalation_from_bytes(value)?;
                        Arc::make_mut(&mut state.escalations).insert(e.index, e);
                    }
                    _ => return Err(corrupt("unknown record").into()),
                }
            }
            match page.last() {
                Some((last, _)) if page.len() == LOAD_PAGE => from = [last.as_slice(), &[0]].concat(),
                _ => break,
            }
        }
        *self.published.write().unwrap_or_else(|e| e.into_inner()) = state;
        Ok(found)
    }

    fn fold(&self, entries: &Entries<'_>, records: &mut Vec<Record>) -> Result<(), Error> {
        let kinds: Option<Vec<EntryKind>> = entries.admitted.map(|groups| groups.iter().flat_map(|g| g.iter().map(|e| e.kind())).collect());
        let mut pending = self.staged();
        for (i, leaf) in entries.leaves.iter().enumerate() {
            if kinds.as_ref().is_some_and(|k| k.get(i).is_some_and(|k| !KINDS.contains(k))) {
                continue;
            }
            let index = entries.first_index + i as u64;
            let (decoded, _) = Leaf::decode(leaf).map_err(|e| Error::Storage(StorageError::Corrupt(format!("entry {index}: {e}"))))?;
            let Some(entry) = decoded.entry.as_ref().filter(|_| KINDS.contains(&decoded.kind)) else { continue };
            let (state, dirty) = pending.get_or_insert_with(|| (self.read().clone(), Dirty::default()));
            state.apply(index, decoded.integrated_time, entry, dirty);
        }
        if let Some((state, dirty)) = pending.as_ref() {
            records.extend(state.records(dirty));
        }
        Ok(())
    }

    fn publish(&self) {
        if let Some((state, _)) = self.staged().take() {
            *self.published.write().unwrap_or_else(|e| e.into_inner()) = state;
        }
    }

    fn discard(&self) {
        self.staged().take();
    }
}
