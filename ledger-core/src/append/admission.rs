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
//!
//! Signal sources and signed signals go through the same two steps with
//! the sources fold, [`verifier::fold::sources`]: [`preverify_signals`]
//! checks a source's signatures (and every signal's subject) before the
//! queue, and [`admit`] decides `source` entries and source-signed signals
//! in the sequencer against the sources view plus the group's changes
//! ([`crate::views::sources`]).

use std::collections::HashMap;
use std::sync::Arc;

use ed25519_dalek::VerifyingKey;
use verifier::agent_id::AgentId;
use verifier::entry::Subject;
use verifier::fold::registry::{self, Change, Signed};
use verifier::fold::sources::{self, Filed, SourceChange, SourceError};

use crate::entry::{AdminOp, EntryAuth, NewEntry};
use crate::signals::{SignalAuth, SourceAuth};
use crate::views::registry::{AgentState, Registry};
use crate::views::sources::{SourceState, Sources};
use crate::Error;

/// Whether `agent` may write entry `seq` (a hidden-value commit for it):
/// registered and not retired ([`registry::active`]), and `seq` above its
/// last accepted sequence number ([`registry::check_seq`]).
pub(crate) fn may_write(registry: &Registry, agent: &AgentId, seq: u64) -> Result<(), Error> {
    let state = registry.get(agent);
    // Committing is for an action: a revoked agent, whose actions are
    // refused, gets no proving work done either.
    let state = registry::may_sign(agent, state.as_ref(), verifier::entry::EntryKind::Action)?;
    Ok(registry::check_seq(agent, state.last_seq, seq)?)
}

/// What admission changed for the admitted requests of one group: the
/// registry's and the sources' pending states.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    pub(crate) agents: HashMap<AgentId, AgentState>,
    pub(crate) sources: HashMap<String, SourceState>,
}

/// How to take back one change of a refused request.
enum Undo {
    Agent(AgentId, Option<AgentState>),
    Source(String, Option<SourceState>),
}

/// The group's view: the shared registry and sources plus changes made so
/// far.
struct Overlay<'r> {
    registry: &'r Registry,
    sources: &'r Sources,
    changes: Changes,
    undo: Vec<Undo>,
}

impl Overlay<'_> {
    fn agent(&self, agent: &AgentId) -> Option<AgentState> {
        self.changes.agents.get(agent).cloned().or_else(|| self.registry.get(agent))
    }

    fn source(&self, name: &str) -> Option<SourceState> {
        self.changes.sources.get(name).cloned().or_else(|| self.sources.get(name))
    }

    fn set_agent(&mut self, agent: &AgentId, state: AgentState) {
        let previous = self.changes.agents.insert(agent.clone(), state);
        self.undo.push(Undo::Agent(agent.clone(), previous));
    }

    fn set_source(&mut self, name: &str, state: SourceState) {
        let previous = self.changes.sources.insert(name.to_owned(), state);
        self.undo.push(Undo::Source(name.to_owned(), previous));
    }

    /// Decides one entry at `index` against the registry and the sources
    /// plus the group's earlier changes, and records its changes.
    fn admit(&mut self, origin: &str, entry: &NewEntry, index: u64) -> Result<(), Error> {
        let signed;
        let agent_change = match (entry.admin(), entry.auth()) {
            (Some(AdminOp::Register(passport)), _) => Some((&passport.agent, Change::Register(passport))),
            (Some(AdminOp::Retire(agent)), _) => Some((agent, Change::Retire)),
            (Some(AdminOp::Revoke(agent)), _) => Some((agent, Change::Revoke)),
            (Some(AdminOp::Reinstate(agent, attestation_index)), _) => {
                Some((agent, Change::Reinstate { attestation_index: *attestation_index }))
            }
            (Some(AdminOp::Source(source)), _) => {
                let next = sources::decide(&source.name, self.source(&source.name).as_ref(), index, SourceChange::Register(source))?;
                self.set_source(&source.name, next);
                None
            }
            (Some(AdminOp::Grant(agent)), _) => {
                registry::may_sign(agent, self.agent(agent).as_ref(), verifier::entry::EntryKind::Token)?;
                None
            }
            (None, Some(auth)) => {
                signed = auth.in_log(origin);
                Some((&auth.agent, Change::Signed(&signed)))
            }
            (None, None) => None,
        };
        if let Some((agent, change)) = agent_change {
            let next = registry::decide(agent, self.agent(agent).as_ref(), index, change)?;
            self.set_agent(agent, next);
        }
        if let Some(signal) = entry.signal() {
            if let Some(auth) = &signal.source {
                let signed = auth.in_log(origin);
                let change = SourceChange::Signal { signal_type: auth.signal_type, signed: &signed };
                let next = sources::decide(&auth.source, self.source(&auth.source).as_ref(), index, change)?;
                self.set_source(&auth.source, next);
            }
            let subject = match &signal.subject {
                Subject::Agent(agent) => self.agent(agent),
                Subject::CodeHash(_) => None,
            };
            sources::check_subject(&signal.subject, subject.as_ref())?;
        }
        Ok(())
    }

    /// Takes back every change since the undo log held `mark` changes.
    fn roll_back(&mut self, mark: usize) {
        for undo in self.undo.drain(mark..).rev() {
            match undo {
                Undo::Agent(agent, Some(state)) => drop(self.changes.agents.insert(agent, state)),
                Undo::Agent(agent, None) => drop(self.changes.agents.remove(&agent)),
                Undo::Source(name, Some(state)) => drop(self.changes.sources.insert(name, state)),
                Undo::Source(name, None) => drop(self.changes.sources.remove(&name)),
            }
        }
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
    let signed: Vec<_> = auths.iter().map(|auth| auth.in_log(origin)).collect();
    let run: Vec<_> = auths.iter().zip(&signed).map(|(auth, s)| (&auth.agent, s)).collect();
    let (keys, refusal) = registry::plan_preverify(|agent| registry.get(agent), &run);
    if let Some(i) = first_forgery(&signed[..keys.len()], &keys) {
        return Err(Error::BadSignature(run[i].0.clone()));
    }
    refusal.map_or(Ok(()), |e| Err(e.into()))
}

/// Checks the signed signals of one submission as [`preverify`] checks
/// agent entries, after it: the sources fold plans the source-signed ones
/// ([`sources::plan_preverify`]: the source registered, and its key even
/// for a signal it then refuses for its type or sequence number), every
/// planned signature is verified (a forgery reported first), then the
/// plan's refusal, then each signal's subject (registered and not
/// retired) against the published registry. The sequencer decides them
/// all again.
pub(crate) fn preverify_signals(registry: &Registry, sources: &Sources, origin: &str, signals: &[Arc<SignalAuth>]) -> Result<(), Error> {
    let by_sources: Vec<&SourceAuth> = signals.iter().filter_map(|s| s.source.as_ref()).collect();
    let signed: Vec<_> = by_sources.iter().map(|auth| auth.in_log(origin)).collect();
    let filed: Vec<_> =
        by_sources.iter().zip(&signed).map(|(auth, s)| Filed { source: &auth.source, signal_type: auth.signal_type, signed: s }).collect();
    let (keys, refusal) = sources::plan_preverify(|name| sources.get(name), &filed);
    if let Some(i) = first_forgery(&signed[..keys.len()], &keys) {
        return Err(SourceError::BadSignature { name: by_sources[i].source.clone() }.into());
    }
    if let Some(e) = refusal {
        return Err(e.into());
    }
    for signal in signals {
        let state = match &signal.subject {
            Subject::Agent(agent) => registry.get(agent),
            Subject::CodeHash(_) => None,
        };
        sources::check_subject(&signal.subject, state.as_ref())?;
    }
    Ok(())
}

/// The position of the first signature that does not verify with its
/// planned key, checked in parallel on rayon's pool when there are several.
fn first_forgery<S: Signed + Sync>(signed: &[S], keys: &[VerifyingKey]) -> Option<usize> {
    use rayon::prelude::*;
    if keys.len() > 1 {
        signed.par_iter().zip(keys).position_first(|(s, key)| !s.verify(key))
    } else {
        signed.iter().zip(keys).position(|(s, key)| !s.verify(key))
    }
}

/// Admits the requests of one group: returns, per request, `Ok(())` or why
/// it is refused, and the registry and sources records the admitted ones
/// change. `first_index` is the index the group's first admitted entry
/// gets. Each entry is decided by [`registry::decide`] and
/// [`sources::decide`] against the registry and the sources plus the
/// group's earlier changes (so two signals of one source with one `seq`
/// in one group cannot both pass); a signature pre-verification already
/// checked with the key still in force is not checked again.
pub(crate) fn admit(
    registry: &Registry,
    sources: &Sources,
    origin: &str,
    requests: &[&[NewEntry]],
    first_index: u64,
) -> (Vec<Result<(), Error>>, Changes) {
    let any_checked = requests.iter().flat_map(|r| r.iter()).any(|e| e.auth().is_some() || e.admin().is_some() || e.signal().is_some());
    if !any_checked {
        return (requests.iter().map(|_| Ok(())).collect(), Changes::default());
    }
    let mut overlay = Overlay { registry, sources, changes: Changes::default(), undo: Vec::new() };
    let mut index = first_index;
    let mut verdicts = Vec::with_capacity(requests.len());
    for entries in requests {
        let mark = overlay.undo.len();
        let result = entries.iter().enumerate().try_for_each(|(i, entry)| overlay.admit(origin, entry, index + i as u64));
        if result.is_err() {
            overlay.roll_back(mark);
        } else {
            index += entries.len() as u64;
        }
        verdicts.push(result);
    }
    (verdicts, overlay.changes)
}
