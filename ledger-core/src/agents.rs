//! The agent registry: each agent's passport, the key in force, its last
//! sequence number and whether it is retired.
//!
//! Signatures are checked before any expensive work and off the sequencer
//! thread: [`preverify`] checks a submission's agents (known, active,
//! sequence numbers fresh) and verifies every signature against the key in
//! force, in parallel. The sequencer owns the registry's writes. For every
//! group it admits requests in order against the registry plus the group's
//! own earlier changes (an undo log takes back a refused request's changes);
//! a signature already verified with the key still in force is not checked
//! again, and any other (a rotation raced it, or the entry skipped
//! pre-verification) is verified there, one by one. The changed records
//! are written in the group's commit batch (column family `agents`), so the
//! registry is durable exactly when its entries are, and readers see it
//! after the commit.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::VerifyingKey;
use serde_json::{Map, Value};
use verifier::agent::Passport;

use crate::entry::{AdminOp, EntryAuth, NewEntry};
use crate::store::StorageError;
use crate::Error;

/// An agent as the log knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentState {
    /// The registered passport (as first written). Shared: the sequencer
    /// copies records for every signed entry it admits.
    pub passport: Arc<Passport>,
    /// Index of the passport entry.
    pub passport_index: u64,
    /// The key in force.
    pub key: VerifyingKey,
    /// Index of the entry that set it (the passport or the last rotation).
    pub key_index: u64,
    /// Index of the retirement entry, if retired.
    pub retired: Option<u64>,
    /// Last accepted sequence number (0: none yet).
    pub last_seq: u64,
}

impl AgentState {
    /// The stored encoding (JSON).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut m = Map::new();
        m.insert("passport".into(), Value::Object(self.passport.to_object()));
        m.insert("passport_index".into(), Value::from(self.passport_index));
        m.insert("key".into(), Value::from(B64.encode(self.key.as_bytes())));
        m.insert("key_index".into(), Value::from(self.key_index));
        m.insert("retired".into(), self.retired.map_or(Value::Null, Value::from));
        m.insert("last_seq".into(), Value::from(self.last_seq));
        crate::canonical::to_canonical(&Value::Object(m))
    }

    /// Decodes [`AgentState::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StorageError> {
        let corrupt = |what: &str| StorageError::Corrupt(format!("agent record: {what}"));
        let v: Value = serde_json::from_slice(bytes).map_err(|_| corrupt("not JSON"))?;
        let u = |k: &str| v.get(k).and_then(Value::as_u64).ok_or_else(|| corrupt(k));
        Ok(Self {
            passport: Arc::new(
                Passport::from_stored(v.get("passport").and_then(Value::as_object).ok_or_else(|| corrupt("passport"))?)
                    .map_err(|_| corrupt("passport"))?,
            ),
            passport_index: u("passport_index")?,
            key: verifier::agent::parse_stored_public_key(v.get("key").and_then(Value::as_str).unwrap_or_default())
                .map_err(|_| corrupt("key"))?,
            key_index: u("key_index")?,
            retired: v.get("retired").and_then(Value::as_u64),
            last_seq: u("last_seq")?,
        })
    }
}

/// The registry readers see (updated after each commit).
#[derive(Debug, Default)]
pub(crate) struct Registry(RwLock<HashMap<String, AgentState>>);

impl Registry {
    pub fn new(agents: HashMap<String, AgentState>) -> Self {
        Self(RwLock::new(agents))
    }

    pub fn get(&self, agent: &str) -> Option<AgentState> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).get(agent).cloned()
    }

    pub fn apply(&self, changes: impl IntoIterator<Item = (String, AgentState)>) {
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        map.extend(changes);
    }

    pub fn len(&self) -> usize {
        self.0.read().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// The group's view: the shared registry plus changes made so far.
struct Overlay<'r> {
    base: &'r Registry,
    changes: HashMap<String, AgentState>,
}

impl Overlay<'_> {
    fn get(&self, agent: &str) -> Option<AgentState> {
        self.changes.get(agent).cloned().or_else(|| self.base.get(agent))
    }
}

/// Checks the agent entries of one submission, in order, before anything
/// expensive is done for it: each agent is registered and not retired, its
/// sequence numbers increase (across the submission too), and every
/// signature verifies with the key in force at that point (a rotation in
/// the submission hands over to its new key). Signatures are verified in
/// parallel on rayon's pool. Returns the first refusal in submission order.
pub(crate) fn preverify(registry: &Registry, origin: &str, auths: &[Arc<EntryAuth>]) -> Result<(), Error> {
    use rayon::prelude::*;
    let mut local: HashMap<&str, (VerifyingKey, u64)> = HashMap::new();
    let mut jobs: Vec<(&EntryAuth, VerifyingKey)> = Vec::with_capacity(auths.len());
    let mut refusal = None;
    for auth in auths {
        let (key, last_seq) = match local.get(auth.agent.as_str()) {
            Some(known) => *known,
            None => match registry.get(&auth.agent) {
                None => {
                    refusal = Some(Error::UnknownAgent(auth.agent.clone()));
                    break;
                }
                Some(state) if state.retired.is_some() => {
                    refusal = Some(Error::AgentRetired(auth.agent.clone()));
                    break;
                }
                Some(state) => (state.key, state.last_seq),
            },
        };
        if auth.seq <= last_seq {
            refusal = Some(Error::SequenceReplayed { agent: auth.agent.clone(), seq: auth.seq, last: last_seq });
            break;
        }
        jobs.push((auth, key));
        let next_key = auth.new_key.as_ref().map_or(key, |(new_key, _)| *new_key);
        local.insert(auth.agent.as_str(), (next_key, auth.seq));
    }
    // Signatures of entries before the first refusal are checked first, so
    // a forgery is reported as such wherever it sits.
    let first_bad = if jobs.len() > 1 {
        jobs.par_iter().position_first(|(auth, key)| !auth.verify(origin, key))
    } else {
        jobs.iter().position(|(auth, key)| !auth.verify(origin, key))
    };
    if let Some(i) = first_bad {
        return Err(Error::BadSignature(jobs[i].0.agent.clone()));
    }
    refusal.map_or(Ok(()), Err)
}

/// Admits the requests of one group: returns, per request, `Ok(())` or why
/// it is refused, and the registry records the admitted ones change.
/// `first_index` is the index the group's first admitted entry gets.
pub(crate) fn admit(
    registry: &Registry,
    origin: &str,
    requests: &[&[NewEntry]],
    first_index: u64,
) -> (Vec<Result<(), Error>>, HashMap<String, AgentState>) {
    let any_agent_entry = requests.iter().flat_map(|r| r.iter()).any(|e| e.auth().is_some() || e.admin().is_some());
    if !any_agent_entry {
        return (requests.iter().map(|_| Ok(())).collect(), HashMap::new());
    }
    let mut overlay = Overlay { base: registry, changes: HashMap::new() };
    let mut index = first_index;
    let mut verdicts = Vec::with_capacity(requests.len());
    for entries in requests {
        let mut undo: Vec<(String, Option<AgentState>)> = Vec::new();
        let mut result = Ok(());
        for (i, entry) in entries.iter().enumerate() {
            let at = index + i as u64;
            let outcome = match (entry.admin(), entry.auth()) {
                (Some(op), _) => admin(&overlay, op, at),
                (None, Some(auth)) => signed(&overlay, origin, auth, at),
                (None, None) => Ok(None),
            };
            match outcome {
                Ok(Some((agent, state))) => {
                    undo.push((agent.clone(), overlay.changes.get(&agent).cloned()));
                    overlay.changes.insert(agent, state);
                }
                Ok(None) => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if result.is_err() {
            for (agent, previous) in undo.into_iter().rev() {
                match previous {
                    Some(state) => overlay.changes.insert(agent, state),
                    None => overlay.changes.remove(&agent),
                };
            }
        } else {
            index += entries.len() as u64;
        }
        verdicts.push(result);
    }
    (verdicts, overlay.changes)
}

fn admin(overlay: &Overlay<'_>, op: &AdminOp, at: u64) -> Result<Option<(String, AgentState)>, Error> {
    match op {
        AdminOp::Register(passport) => {
            if overlay.get(&passport.agent).is_some() {
                return Err(Error::AgentExists(passport.agent.clone()));
            }
            let state = AgentState {
                passport: Arc::clone(passport),
                passport_index: at,
                key: passport.public_key,
                key_index: at,
                retired: None,
                last_seq: 0,
            };
            Ok(Some((passport.agent.clone(), state)))
        }
        AdminOp::Retire(agent) => {
            let mut state = overlay.get(agent).ok_or_else(|| Error::UnknownAgent(agent.clone()))?;
            if state.retired.is_some() {
                return Err(Error::AgentRetired(agent.clone()));
            }
            state.retired = Some(at);
            Ok(Some((agent.clone(), state)))
        }
    }
}

fn signed(overlay: &Overlay<'_>, origin: &str, auth: &EntryAuth, at: u64) -> Result<Option<(String, AgentState)>, Error> {
    let mut state = overlay.get(&auth.agent).ok_or_else(|| Error::UnknownAgent(auth.agent.clone()))?;
    if state.retired.is_some() {
        return Err(Error::AgentRetired(auth.agent.clone()));
    }
    if auth.seq <= state.last_seq {
        return Err(Error::SequenceReplayed { agent: auth.agent.clone(), seq: auth.seq, last: state.last_seq });
    }
    // Free when pre-verification checked it with the key still in force.
    if !auth.verify(origin, &state.key) {
        return Err(Error::BadSignature(auth.agent.clone()));
    }
    if let Some((new_key, _)) = &auth.new_key {
        state.key = *new_key;
        state.key_index = at;
    }
    state.last_seq = auth.seq;
    Ok(Some((auth.agent.clone(), state)))
}

impl crate::Log {
    /// Registers an agent (admin): appends its passport entry. The id must
    /// be a SPIFFE agent id in the configured trust domain.
    pub async fn register(&self, passport: Passport) -> Result<crate::Appended, Error> {
        crate::spiffe::validate_agent_id(&passport.agent)
            .map_err(|reason| Error::Entry(crate::entry::EntryError::AgentId { id: passport.agent.clone(), reason }))?;
        if let Some(td) = &self.shared.config.trust_domain {
            let in_domain = passport.agent.strip_prefix("spiffe://").and_then(|rest| rest.split('/').next()) == Some(td.as_str());
            if !in_domain {
                return Err(Error::WrongTrustDomain { agent: passport.agent.clone(), trust_domain: td.clone() });
            }
        }
        let entry = NewEntry::from_log(&passport.to_object(), None, Some(AdminOp::Register(Arc::new(passport))))?;
        first(self.append(vec![entry]).await?)
    }

    /// Retires an agent (admin): appends a retirement entry; its later
    /// entries are refused.
    pub async fn retire(&self, agent: &str, reason: &str) -> Result<crate::Appended, Error> {
        let mut obj = Map::new();
        obj.insert("kind".into(), Value::from("retirement"));
        obj.insert("agent".into(), Value::from(agent));
        obj.insert("reason".into(), Value::from(reason));
        let entry = NewEntry::from_log(&obj, None, Some(AdminOp::Retire(agent.to_owned())))?;
        first(self.append(vec![entry]).await?)
    }

    /// The registry record of `agent` (as of the latest commit).
    pub fn agent(&self, agent: &str) -> Option<AgentState> {
        self.shared.registry.get(agent)
    }

    /// Registered agents.
    pub fn agent_count(&self) -> usize {
        self.shared.registry.len()
    }
}

fn first(appended: Vec<crate::Appended>) -> Result<crate::Appended, Error> {
    appended.into_iter().next().ok_or(Error::EmptyBatch)
}
