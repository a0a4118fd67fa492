//! Admission: the agent checks every append passes, decided by the one
//! agent-chain state machine, [`verifier::fold::registry`] (the same fold
//! an offline auditor replays).
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

use verifier::agent_id::AgentId;
use verifier::fold::registry::{self, Change, Signed as _};

use crate::entry::{AdminOp, EntryAuth, NewEntry};
use crate::views::registry::{AgentState, Registry};
use crate::Error;

/// Whether `agent` may write entry `seq` (a hidden-value commit for it):
/// registered and not retired ([`registry::active`]), and `seq` above its
/// last accepted sequence number ([`registry::check_seq`]).
pub(crate) fn may_write(registry: &Registry, agent: &AgentId, seq: u64) -> Result<(), Error> {
    let state = registry.get(agent);
    let state = registry::active(agent, state.as_ref())?;
    Ok(registry::check_seq(agent, state.last_seq, seq)?)
}

/// The group's view: the shared registry plus changes made so far.
struct Overlay<'r> {
    base: &'r Registry,
    changes: HashMap<AgentId, AgentState>,
}

impl Overlay<'_> {
    fn get(&self, agent: &AgentId) -> Option<AgentState> {
        self.changes.get(agent).cloned().or_else(|| self.base.get(agent))
    }
}

/// Checks the agent entries of one submission, in order, before anything
/// expensive is done for it: the fold plans the run
/// ([`registry::plan_preverify`]: each agent registered and not retired,
/// its sequence numbers increasing across the submission too, and the key
/// in force for each signature, a rotation in the submission handing over
/// to its new key), then every planned signature is verified, in parallel
/// on rayon's pool when there are several. A forgery among them is
/// reported before the plan's refusal, wherever it sits.
pub(crate) fn preverify(registry: &Registry, origin: &str, auths: &[Arc<EntryAuth>]) -> Result<(), Error> {
    use rayon::prelude::*;
    let signed: Vec<_> = auths.iter().map(|auth| auth.in_log(origin)).collect();
    let run: Vec<_> = auths.iter().zip(&signed).map(|(auth, s)| (&auth.agent, s)).collect();
    let (keys, refusal) = registry::plan_preverify(|agent| registry.get(agent), &run);
    let jobs = &run[..keys.len()];
    let first_bad = if keys.len() > 1 {
        jobs.par_iter().zip(&keys).position_first(|((_, s), key)| !s.verify(key))
    } else {
        jobs.iter().zip(&keys).position(|((_, s), key)| !s.verify(key))
    };
    if let Some(i) = first_bad {
        return Err(Error::BadSignature(jobs[i].0.clone()));
    }
    refusal.map_or(Ok(()), |e| Err(e.into()))
}

/// Admits the requests of one group: returns, per request, `Ok(())` or why
/// it is refused, and the registry records the admitted ones change.
/// `first_index` is the index the group's first admitted entry gets. Each
/// entry is decided by [`registry::decide`] against the registry plus the
/// group's earlier changes; a signature pre-verification already checked
/// with the key still in force is not checked again.
pub(crate) fn admit(
    registry: &Registry,
    origin: &str,
    requests: &[&[NewEntry]],
    first_index: u64,
) -> (Vec<Result<(), Error>>, HashMap<AgentId, AgentState>) {
    let any_agent_entry = requests.iter().flat_map(|r| r.iter()).any(|e| e.auth().is_some() || e.admin().is_some());
    if !any_agent_entry {
        return (requests.iter().map(|_| Ok(())).collect(), HashMap::new());
    }
    let mut overlay = Overlay { base: registry, changes: HashMap::new() };
    let mut index = first_index;
    let mut verdicts = Vec::with_capacity(requests.len());
    for entries in requests {
        let mut undo: Vec<(AgentId, Option<AgentState>)> = Vec::new();
        let mut result = Ok(());
        for (i, entry) in entries.iter().enumerate() {
            let signed;
            let (agent, change) = match (entry.admin(), entry.auth()) {
                (Some(AdminOp::Register(passport)), _) => (&passport.agent, Change::Register(passport)),
                (Some(AdminOp::Retire(agent)), _) => (agent, Change::Retire),
                (Some(AdminOp::Revoke(agent)), _) => (agent, Change::Revoke),
                (Some(AdminOp::Reinstate(agent)), _) => (agent, Change::Reinstate),
                (None, Some(auth)) => {
                    signed = auth.in_log(origin);
                    (&auth.agent, Change::Signed(&signed))
                }
                (None, None) => continue,
            };
            match registry::decide(agent, overlay.get(agent).as_ref(), index + i as u64, change) {
                Ok(state) => {
                    undo.push((agent.clone(), overlay.changes.insert(agent.clone(), state)));
                }
                Err(e) => {
                    result = Err(e.into());
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
