//! Admission: the agent checks every append passes.
//!
//! Signatures are checked before any expensive work and off the sequencer
//! thread: [`preverify`] checks a submission's agents (known, active,
//! sequence numbers fresh) and verifies every signature against the key in
//! force, in parallel. The sequencer then [`admit`]s each group's requests
//! in order against the registry plus the group's own earlier changes (an
//! undo log takes back a refused request's changes); a signature already
//! verified with the key still in force is not checked again, and any other
//! (a rotation raced it, or the entry skipped pre-verification) is verified
//! there, one by one. What admission computes for the admitted requests is
//! the registry view's next state ([`crate::views::registry`]).

use std::collections::HashMap;
use std::sync::Arc;

use ed25519_dalek::VerifyingKey;

use crate::entry::{AdminOp, EntryAuth, NewEntry};
use crate::views::registry::{AgentState, Registry};
use crate::Error;

/// The registry record of `agent` if it may write entry `seq`: registered,
/// not retired, and `seq` above its last accepted sequence number.
pub(crate) fn active(registry: &Registry, agent: &str, seq: u64) -> Result<AgentState, Error> {
    let state = registry.get(agent).ok_or_else(|| Error::UnknownAgent(agent.to_owned()))?;
    if state.retired.is_some() {
        return Err(Error::AgentRetired(agent.to_owned()));
    }
    if seq <= state.last_seq {
        return Err(Error::SequenceReplayed { agent: agent.to_owned(), seq, last: state.last_seq });
    }
    Ok(state)
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
            Ok(Some((passport.agent.clone(), AgentState::registered(Arc::clone(passport), at))))
        }
        AdminOp::Retire(agent) => {
            let mut state = overlay.get(agent).ok_or_else(|| Error::UnknownAgent(agent.clone()))?;
            if state.retired.is_some() {
                return Err(Error::AgentRetired(agent.clone()));
            }
            state.retire(at);
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
    state.signed(auth.seq, auth.new_key.as_ref().map(|(key, _)| *key), at);
    Ok(Some((auth.agent.clone(), state)))
}
