//! Signal sources as a fold over the log: each registered source's key in
//! force, the signal types it may file, its last sequence number, and the
//! indices of its registration (docs/FORMAT.md, "Signals").
//!
//! A source signs its signals as an agent signs its entries
//! ([`crate::entry::signing`]: the same message, bound to the log's origin,
//! and the same `verify_strict` rule), with a per-source `seq` that must
//! strictly increase. One rule decides every source entry and every
//! source-signed signal, in the log's admission and offline alike
//! ([`decide`]):
//!
//! * a `source` entry registers a name, or replaces the key and types of
//!   one already registered; a replacement keeps the source's last
//!   sequence number, so a signal signed before it (under the old key, or
//!   under the same key kept with other types) can never be replayed after
//!   it; a weak key is refused ([`SourceError::WeakKey`]);
//! * a signal filed by a source needs the source registered
//!   ([`SourceError::UnknownSource`]), its type among the source's types
//!   ([`SourceError::TypeNotAllowed`]), a `seq` strictly above the last
//!   ([`SourceError::Replayed`]) and a signature that verifies with the
//!   source's key ([`SourceError::BadSignature`]).
//!
//! Every signed signal (a source's, or an agent's peer report) about an
//! agent needs that agent registered and not retired ([`check_subject`]);
//! a signal about a code hash names no agent. A peer report is an agent's
//! own signed entry: its reporter's key, sequence number, retirement and
//! revocation are the agent registry's ([`crate::fold::registry`]). The
//! log's own signals (`drift`) are unsigned and recomputed by an auditor
//! from the drift detector, not decided here.
//!
//! The log rebuilds its sources view from its own leaves through the same
//! rules ([`replay`]), without checking signatures it checked when it
//! admitted them. Offline, [`Sources`] applies leaves one by one beside a
//! [`Registry`].

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use ed25519_dalek::VerifyingKey;
use serde_json::Value;

use super::registry::{AgentState, OfflineSigned, Registry, Signed};
use crate::agent_id::AgentId;
use crate::canonical::LEAF_VERSION;
use crate::entry::signing::is_weak_key;
use crate::entry::{Entry, EntryError, EntryKind, Form, Leaf, SignalType, Signer, Source, Subject};

/// A source as the fold knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceState {
    /// The key in force: its signals are signed with it.
    pub key: VerifyingKey,
    /// The signal types it may file, in canonical order.
    pub types: Vec<SignalType>,
    /// Index of its first registration.
    pub registered_index: u64,
    /// Index of the `source` entry in force (the first registration or the
    /// last replacement).
    pub key_index: u64,
    /// Last accepted sequence number (0: none yet); kept across
    /// replacements.
    pub last_seq: u64,
}

impl SourceState {
    /// Whether the source may file signals of `signal_type`.
    pub fn allows(&self, signal_type: SignalType) -> bool {
        self.types.contains(&signal_type)
    }
}

/// Why the sources fold refuses an entry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// No source of this name is registered.
    #[error("no signal source named {0:?} is registered")]
    UnknownSource(String),
    /// The source may not file signals of this type.
    #[error("signal source {name:?} may not file {signal_type} signals")]
    TypeNotAllowed {
        /// The source.
        name: String,
        /// The signal's type.
        signal_type: SignalType,
    },
    /// The sequence number does not increase.
    #[error("sequence number {seq} of signal source {name:?} is not above the last accepted, {last}")]
    Replayed {
        /// The source.
        name: String,
        /// Submitted.
        seq: u64,
        /// Last accepted.
        last: u64,
    },
    /// The signature does not verify with the source's key.
    #[error("signature does not verify with the key of signal source {name:?}")]
    BadSignature {
        /// The source.
        name: String,
    },
    /// A source registered with a weak key (small order or not
    /// torsion-free).
    #[error("public key of signal source {name:?} is a weak Ed25519 key (small order or not torsion-free)")]
    WeakKey {
        /// The source.
        name: String,
    },
    /// A signal about an agent that has no passport.
    #[error("the signal's subject {0} has no registered passport")]
    UnknownSubject(AgentId),
    /// A signal about a retired agent.
    #[error("the signal's subject {0} is retired")]
    RetiredSubject(AgentId),
    /// A source's signal without `seq` and `signature`.
    #[error("a signal of a source must carry the source's \"seq\" and \"signature\"")]
    Unsigned,
    /// The entry itself is malformed.
    #[error("{0}")]
    Entry(#[from] EntryError),
    /// A leaf of a format version whose signatures this version does not
    /// check (sources and signals exist from version 2 on).
    #[error("leaf format version {0} is not checked here; sources and signals are checked from version 2 on")]
    LeafVersion(u64),
}

/// What one entry asks of a source's state.
#[derive(Clone, Copy)]
pub enum SourceChange<'a> {
    /// Register the source, or replace its key and types.
    Register(&'a Source),
    /// A signal the source signed.
    Signal {
        /// The signal's type.
        signal_type: SignalType,
        /// Its signature and sequence number.
        signed: &'a dyn Signed,
    },
}

impl core::fmt::Debug for SourceChange<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Register(s) => f.debug_tuple("Register").field(s).finish(),
            Self::Signal { signal_type, signed } => {
                f.debug_struct("Signal").field("signal_type", signal_type).field("seq", &signed.seq()).finish_non_exhaustive()
            }
        }
    }
}

/// Decides one entry at `index` against the state of the source `name`
/// and returns the state after it.
pub fn decide(name: &str, state: Option<&SourceState>, index: u64, change: SourceChange<'_>) -> Result<SourceState, SourceError> {
    match change {
        SourceChange::Register(source) => {
            if is_weak_key(&source.key) {
                return Err(SourceError::WeakKey { name: name.to_string() });
            }
            let mut types = source.types.clone();
            types.sort();
            types.dedup();
            Ok(SourceState {
                key: source.key,
                types,
                registered_index: state.map_or(index, |s| s.registered_index),
                key_index: index,
                // Carried over: nothing signed before the replacement is
                // taken after it.
                last_seq: state.map_or(0, |s| s.last_seq),
            })
        }
        SourceChange::Signal { signal_type, signed } => {
            let current = may_file(name, state, signal_type)?;
            check_seq(name, current.last_seq, signed.seq())?;
            if !signed.verify(&current.key) {
                return Err(SourceError::BadSignature { name: name.to_string() });
            }
            let mut next = current.clone();
            next.last_seq = signed.seq();
            Ok(next)
        }
    }
}

/// The state of a source that may file a signal of `signal_type`:
/// registered, with the type among its types.
pub fn may_file<'s>(name: &str, state: Option<&'s SourceState>, signal_type: SignalType) -> Result<&'s SourceState, SourceError> {
    let state = state.ok_or_else(|| SourceError::UnknownSource(name.to_string()))?;
    if !state.allows(signal_type) {
        return Err(SourceError::TypeNotAllowed { name: name.to_string(), signal_type });
    }
    Ok(state)
}

/// Refuses a sequence number `seq` of source `name` that is not strictly
/// above `last`, the last accepted ([`SourceError::Replayed`]).
pub fn check_seq(name: &str, last: u64, seq: u64) -> Result<(), SourceError> {
    if seq <= last {
        return Err(SourceError::Replayed { name: name.to_string(), seq, last });
    }
    Ok(())
}

/// Checks the subject of a signed signal against the agent registry: an
/// agent subject must be registered and not retired (a revoked agent may
/// still be reported on: that is evidence too); a code hash names no
/// agent. `state` is the registry's record of `subject`'s agent.
pub fn check_subject(subject: &Subject, state: Option<&AgentState>) -> Result<(), SourceError> {
    match (subject, state) {
        (Subject::CodeHash(_), _) => Ok(()),
        (Subject::Agent(agent), None) => Err(SourceError::UnknownSubject(agent.clone())),
        (Subject::Agent(agent), Some(s)) if s.retired.is_some() => Err(SourceError::RetiredSubject(agent.clone())),
        (Subject::Agent(_), Some(_)) => Ok(()),
    }
}

/// One source-signed signal of a submission, as [`plan_preverify`] takes
/// it.
#[derive(Clone, Copy)]
pub struct Filed<'e, S: Signed + ?Sized> {
    /// The source's name.
    pub source: &'e str,
    /// The signal's type.
    pub signal_type: SignalType,
    /// Its signature and sequence number.
    pub signed: &'e S,
}

impl<S: Signed + ?Sized> core::fmt::Debug for Filed<'_, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Filed")
            .field("source", &self.source)
            .field("signal_type", &self.signal_type)
            .field("seq", &self.signed.seq())
            .finish()
    }
}

/// Plans the pre-verification of the source-signed signals of one
/// submission (in order) against the sources as `lookup` returns them: the
/// key each signature must verify with, and the first refusal. Unlike the
/// agent registry's plan, a signal from a registered source gets its key
/// before its type and sequence number are checked, so the caller reports
/// a forgery before any refusal of the same signal: nothing about a
/// source's state is answered to a caller that cannot sign as it. An
/// unknown source has no key, and is the refusal.
pub fn plan_preverify<S: Signed + ?Sized>(
    lookup: impl Fn(&str) -> Option<SourceState>,
    filed: &[Filed<'_, S>],
) -> (Vec<VerifyingKey>, Option<SourceError>) {
    let mut local: BTreeMap<&str, SourceState> = BTreeMap::new();
    let mut keys = Vec::with_capacity(filed.len());
    for f in filed {
        let state = match local.get(f.source) {
            Some(known) => known.clone(),
            None => match lookup(f.source) {
                Some(state) => state,
                None => return (keys, Some(SourceError::UnknownSource(f.source.to_string()))),
            },
        };
        keys.push(state.key);
        if let Err(e) = may_file(f.source, Some(&state), f.signal_type).and_then(|s| check_seq(f.source, s.last_seq, f.signed.seq())) {
            return (keys, Some(e));
        }
        local.insert(f.source, SourceState { last_seq: f.signed.seq(), ..state });
    }
    (keys, None)
}

/// A source-signed signal the log admitted, replayed from its own store:
/// its signature was checked when it was admitted.
struct Admitted {
    seq: u64,
}

impl Signed for Admitted {
    fn kind(&self) -> EntryKind {
        EntryKind::Signal
    }

    fn seq(&self) -> u64 {
        self.seq
    }

    fn new_key(&self) -> Option<&VerifyingKey> {
        None
    }

    fn verify(&self, _: &VerifyingKey) -> bool {
        true
    }
}

/// Replays leaf `index` of the log's own store onto the sources as
/// `lookup` returns them, for a log rebuilding its sources view: returns
/// the source and its state after the leaf, `None` for a leaf that changes
/// no source. The leaf was admitted, so the signal's signature and subject
/// are not checked again; a refusal means the store holds what the log
/// never admitted.
pub fn replay(
    leaf: &Leaf,
    index: u64,
    lookup: impl FnOnce(&str) -> Option<SourceState>,
) -> Result<Option<(String, SourceState)>, SourceError> {
    let (name, admitted);
    let change = match &leaf.entry {
        Some(Entry::Source(source)) => {
            name = source.name.as_str();
            SourceChange::Register(source)
        }
        Some(Entry::Signal(signal)) => {
            let Signer::Source(source) = &signal.signer else { return Ok(None) };
            let seq = leaf.members.get("seq").and_then(Value::as_u64).ok_or(SourceError::Unsigned)?;
            admitted = Admitted { seq };
            name = source.as_str();
            SourceChange::Signal { signal_type: signal.signal_type, signed: &admitted }
        }
        _ => return Ok(None),
    };
    let next = decide(name, lookup(name).as_ref(), index, change)?;
    Ok(Some((name.to_string(), next)))
}

/// What an applied entry did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Registered a new source.
    Registered,
    /// Replaced the key and types of a registered source.
    Replaced,
    /// A source's signal, its signature verified with the source's key.
    Filed {
        /// Its sequence number.
        seq: u64,
    },
    /// A peer report: its subject checked (its signature is the agent
    /// registry's).
    Reported,
    /// Changed no source (every other entry, the log's own signals
    /// included).
    Unchanged,
}

/// Every signal source of a log, folded entry by entry (offline auditors;
/// the log keeps the same [`SourceState`] records in its store).
#[derive(Clone, Debug)]
pub struct Sources {
    origin: String,
    sources: BTreeMap<String, SourceState>,
}

impl Sources {
    /// No sources, in the log named `origin`.
    pub fn new(origin: &str) -> Self {
        Self { origin: origin.to_string(), sources: BTreeMap::new() }
    }

    /// A source's state.
    pub fn get(&self, name: &str) -> Option<&SourceState> {
        self.sources.get(name)
    }

    /// Every source, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &SourceState)> {
        self.sources.iter().map(|(name, state)| (name.as_str(), state))
    }

    /// Applies a stored leaf at `index`, its entry read with its
    /// signatures ([`Form::Audit`]); `agents` is the agent registry folded
    /// up to the same leaf (for the subjects of signals). Sources and
    /// signals exist from leaf version 2 on ([`SourceError::LeafVersion`]).
    pub fn apply_leaf(&mut self, index: u64, leaf: &Leaf, agents: &Registry) -> Result<Applied, SourceError> {
        if !matches!(leaf.kind, EntryKind::Source | EntryKind::Signal) {
            return Ok(Applied::Unchanged);
        }
        if leaf.version != LEAF_VERSION {
            return Err(SourceError::LeafVersion(leaf.version));
        }
        let entry = Entry::from_object(&leaf.members, Form::Audit)?;
        self.apply(index, &entry, agents)
    }

    /// Applies the entry at `index`; `agents` is the agent registry as of
    /// this entry.
    pub fn apply(&mut self, index: u64, entry: &Entry, agents: &Registry) -> Result<Applied, SourceError> {
        let (name, next, applied) = match entry {
            Entry::Source(source) => {
                let state = self.sources.get(&source.name);
                let applied = if state.is_some() { Applied::Replaced } else { Applied::Registered };
                (&source.name, decide(&source.name, state, index, SourceChange::Register(source))?, applied)
            }
            Entry::Signal(signal) => {
                let name = match &signal.signer {
                    Signer::Source(name) => name,
                    Signer::Agent(_) => {
                        check_subject(&signal.subject, signal.subject_agent().and_then(|a| agents.get(a)))?;
                        return Ok(Applied::Reported);
                    }
                    Signer::Log => return Ok(Applied::Unchanged),
                };
                let signed = OfflineSigned::of(&self.origin, entry).ok_or(SourceError::Unsigned)?;
                let change = SourceChange::Signal { signal_type: signal.signal_type, signed: &signed };
                let next = decide(name, self.sources.get(name), index, change)?;
                check_subject(&signal.subject, signal.subject_agent().and_then(|a| agents.get(a)))?;
                let seq = next.last_seq;
                (name, next, Applied::Filed { seq })
            }
            _ => return Ok(Applied::Unchanged),
        };
        self.sources.insert(name.clone(), next);
        Ok(applied)
    }
}

#[cfg(test)]
mod tests;
