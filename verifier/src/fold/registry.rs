//! The agent registry as a fold over the log: each agent's passport, the
//! key in force (and the index that set it), its last sequence number and
//! whether it is retired (docs/FORMAT.md, "Agents").
//!
//! One rule decides every entry, in the sequencer's admission and in
//! `ledger-verify agent` alike ([`decide`]):
//!
//! * a passport registers an agent that has none ([`RegistryError::Exists`]);
//! * a retirement retires an active agent;
//! * an agent-signed entry needs an active agent ([`active`], the one place
//!   "unknown or retired" is decided), a `seq` strictly above the last
//!   accepted ([`RegistryError::Replayed`]) and a signature that verifies
//!   with the key in force under
//!   [`verify_signature`](crate::entry::signing::verify_signature)
//!   (`verify_strict`); a rotation is also signed by its new key, over the
//!   same message, and hands over to it;
//! * a passport or a rotation with a weak key is refused
//!   ([`RegistryError::WeakKey`]).
//!
//! The log rebuilds its registry view from its own leaves through the
//! same rules ([`replay`]): entries it admitted are applied without
//! checking their signatures again, and with the keys they registered or
//! rotated to taken even if weak by today's rules, those having been
//! checked (under the rules of their time) when they were admitted. That
//! exemption is private to [`replay`]: [`decide`] and [`Registry`] always
//! refuse weak keys.
//!
//! Signatures are checked one by one with `verify_strict`, never with
//! ed25519-dalek's `verify_batch`: the batch equation is cofactored and
//! admits signatures `verify_strict` refuses (small-order components,
//! non-canonical `R`), so a batch could accept what the offline check
//! rejects. Where several signatures are checked at once the log runs the
//! strict checks in parallel ([`plan_preverify`] says which key each needs).

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;

use ed25519_dalek::VerifyingKey;
use serde_json::Value;

use crate::agent_id::AgentId;
use crate::canonical::LEAF_VERSION;
use crate::entry::attestation::{attestation_failures, verdict};
use crate::entry::signing::{is_weak_key, parse_stored_public_key};
use crate::entry::{Entry, EntryError, EntryKind, Form, Leaf, Passport, SignedEntry, Signer};

/// An agent as the registry knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentState {
    /// The registered passport (as first written).
    pub passport: Arc<Passport>,
    /// Index of the passport entry.
    pub passport_index: u64,
    /// The key in force.
    pub key: VerifyingKey,
    /// Index of the entry that set it (the passport or the last rotation).
    pub key_index: u64,
    /// Index of the retirement entry, if retired.
    pub retired: Option<u64>,
    /// Index of the revocation entry in force, if revoked (cleared by a
    /// reinstatement): only attestations are taken from a revoked agent.
    pub revoked: Option<u64>,
    /// Last accepted sequence number (0: none yet).
    pub last_seq: u64,
}

/// Why the registry refuses an entry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// No passport is registered for the agent.
    #[error("no passport is registered for {0}")]
    UnknownAgent(AgentId),
    /// The agent was retired before this entry.
    #[error("{0} is retired")]
    Retired(AgentId),
    /// The agent is revoked: only attestations are taken from it until an
    /// admin reinstates it.
    #[error("{0} is revoked: only attestations are accepted until it is reinstated")]
    Revoked(AgentId),
    /// A revocation of an agent already revoked.
    #[error("{0} is already revoked")]
    AlreadyRevoked(AgentId),
    /// A reinstatement of an agent that is not revoked.
    #[error("{0} is not revoked")]
    NotRevoked(AgentId),
    /// A reinstatement that rests on no successful attestation after the
    /// revocation in force.
    #[error("{agent} has not attested successfully since its revocation at index {revoked_at}: attest first")]
    AttestationRequired {
        /// The agent.
        agent: AgentId,
        /// Index of the revocation in force.
        revoked_at: u64,
    },
    /// A second passport for one agent.
    #[error("a passport for {0} is already registered")]
    Exists(AgentId),
    /// The sequence number does not increase.
    #[error("sequence number {seq} of {agent} is not above the last accepted, {last}")]
    Replayed {
        /// The agent.
        agent: AgentId,
        /// Submitted.
        seq: u64,
        /// Last accepted.
        last: u64,
    },
    /// A signature does not verify with the key in force (or a rotation's
    /// with its new key).
    #[error("agent signature does not verify with the key in force for {agent}")]
    BadSignature {
        /// The agent.
        agent: AgentId,
    },
    /// A passport or a rotation with a weak key (small order or not
    /// torsion-free).
    #[error("public key is a weak Ed25519 key (small order or not torsion-free)")]
    WeakKey {
        /// The agent.
        agent: AgentId,
    },
    /// The entry itself is malformed.
    #[error("{0}")]
    Entry(#[from] EntryError),
    /// An agent-written entry without `seq` and `signature`.
    #[error("a {0} entry must carry the agent's \"seq\" and \"signature\"")]
    Unsigned(EntryKind),
    /// The recorded attestation verdict differs from the recomputed one.
    #[error("attestation verdict in the entry ({recorded}) differs from the evidence ({recomputed})")]
    VerdictMismatch {
        /// In the entry.
        recorded: Value,
        /// Recomputed.
        recomputed: Value,
    },
    /// A leaf of a format version whose agent signatures this version does
    /// not check.
    #[error("leaf format version {0} is not checked here; agent entries are checked from version 2 on")]
    LeafVersion(u64),
}

/// An agent-signed entry as the registry checks it. The log implements it
/// over its pre-verified submissions (remembering which key a signature
/// verified with); [`OfflineSigned`] checks an entry read from a leaf.
pub trait Signed {
    /// The entry's kind (a revoked agent may still attest).
    fn kind(&self) -> EntryKind;
    /// The sequence number.
    fn seq(&self) -> u64;
    /// For a rotation: the key it hands over to.
    fn new_key(&self) -> Option<&VerifyingKey>;
    /// Whether the signature verifies with `key` under [`verify_signature`](crate::entry::signing::verify_signature)
    /// (and a rotation's new-key signature with its new key).
    fn verify(&self, key: &VerifyingKey) -> bool;
}

/// An agent-signed entry the log admitted, replayed from its own store
/// ([`replay`]): its signatures were checked when it was admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Admitted {
    kind: EntryKind,
    seq: u64,
    new_key: Option<VerifyingKey>,
}

impl Signed for Admitted {
    fn kind(&self) -> EntryKind {
        self.kind
    }

    fn seq(&self) -> u64 {
        self.seq
    }

    fn new_key(&self) -> Option<&VerifyingKey> {
        self.new_key.as_ref()
    }

    fn verify(&self, _: &VerifyingKey) -> bool {
        true
    }
}

/// An entry's signatures ([`SignedEntry`]) in the log named `origin`,
/// checked as they are.
#[derive(Clone, Debug)]
pub struct OfflineSigned<'a> {
    origin: &'a str,
    kind: EntryKind,
    signed: SignedEntry,
}

impl<'a> OfflineSigned<'a> {
    /// The signatures of `entry` (`None` for admin entries and unsigned
    /// actions).
    pub fn of(origin: &'a str, entry: &Entry) -> Option<Self> {
        entry.signed().map(|signed| Self { origin, kind: entry.kind(), signed })
    }
}

impl Signed for OfflineSigned<'_> {
    fn kind(&self) -> EntryKind {
        self.kind
    }

    fn seq(&self) -> u64 {
        self.signed.seq
    }

    fn new_key(&self) -> Option<&VerifyingKey> {
        self.signed.new_key.as_ref().map(|(k, _)| k)
    }

    fn verify(&self, key: &VerifyingKey) -> bool {
        self.signed.verify(self.origin, key)
    }
}

/// An entry's signatures with the outcome of one check already known.
struct Preverified<'a> {
    inner: OfflineSigned<'a>,
    checked: Option<(VerifyingKey, bool)>,
}

impl Signed for Preverified<'_> {
    fn kind(&self) -> EntryKind {
        self.inner.kind()
    }

    fn seq(&self) -> u64 {
        self.inner.seq()
    }

    fn new_key(&self) -> Option<&VerifyingKey> {
        self.inner.new_key()
    }

    fn verify(&self, key: &VerifyingKey) -> bool {
        match self.checked {
            Some((checked, ok)) if checked == *key => ok,
            _ => self.inner.verify(key),
        }
    }
}

/// Which keys the registry takes: a new registration or rotation is
/// refused a weak key ([`is_weak_key`]), except when the log replays its
/// own leaves ([`replay`]), admitted under the rules of their time. Only
/// [`replay`] passes [`Keys::Admitted`]; every other caller goes through
/// [`decide`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keys {
    Checked,
    Admitted,
}

/// What one entry asks of an agent's state.
#[derive(Clone, Copy)]
pub enum Change<'a> {
    /// Register the agent with this passport.
    Register(&'a Arc<Passport>),
    /// Retire the agent.
    Retire,
    /// Revoke the agent (a `revocation` entry).
    Revoke,
    /// Reinstate the revoked agent (a `reinstatement` entry) on the
    /// attestation at `attestation_index`, which must come after its
    /// revocation.
    Reinstate {
        /// The index of the attestation it rests on.
        attestation_index: u64,
    },
    /// An agent-signed entry.
    Signed(&'a dyn Signed),
}

impl core::fmt::Debug for Change<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Register(p) => f.debug_tuple("Register").field(p).finish(),
            Self::Retire => f.write_str("Retire"),
            Self::Revoke => f.write_str("Revoke"),
            Self::Reinstate { attestation_index } => f.debug_struct("Reinstate").field("attestation_index", attestation_index).finish(),
            Self::Signed(s) => f.debug_struct("Signed").field("seq", &s.seq()).finish_non_exhaustive(),
        }
    }
}

/// The state of an agent that may write: registered and not retired.
pub fn active<'s>(agent: &AgentId, state: Option<&'s AgentState>) -> Result<&'s AgentState, RegistryError> {
    match state {
        None => Err(RegistryError::UnknownAgent(agent.clone())),
        Some(s) if s.retired.is_some() => Err(RegistryError::Retired(agent.clone())),
        Some(s) => Ok(s),
    }
}

/// The state of an agent that may sign an entry of `kind`: [`active`],
/// and not revoked unless `kind` is an attestation (a revoked agent
/// attests to be reinstated).
pub fn may_sign<'s>(agent: &AgentId, state: Option<&'s AgentState>, kind: EntryKind) -> Result<&'s AgentState, RegistryError> {
    let state = active(agent, state)?;
    if state.revoked.is_some() && kind != EntryKind::Attestation {
        return Err(RegistryError::Revoked(agent.clone()));
    }
    Ok(state)
}

/// Decides one entry at `index` against `agent`'s state and returns the
/// state after it. A passport or a rotation with a weak key
/// ([`is_weak_key`]) is refused ([`RegistryError::WeakKey`]), as
/// [`Passport::from_object`] and a submitted rotation refuse it.
pub fn decide(agent: &AgentId, state: Option<&AgentState>, index: u64, change: Change<'_>) -> Result<AgentState, RegistryError> {
    decide_keys(agent, state, index, change, Keys::Checked)
}

/// [`decide`], with the log's replay exemption for weak keys when `keys`
/// is [`Keys::Admitted`].
fn decide_keys(
    agent: &AgentId,
    state: Option<&AgentState>,
    index: u64,
    change: Change<'_>,
    keys: Keys,
) -> Result<AgentState, RegistryError> {
    let weak = |key: &VerifyingKey| keys == Keys::Checked && is_weak_key(key);
    match change {
        Change::Register(passport) => match state {
            Some(_) => Err(RegistryError::Exists(agent.clone())),
            None if weak(&passport.public_key) => Err(RegistryError::WeakKey { agent: agent.clone() }),
            None => Ok(AgentState {
                passport: Arc::clone(passport),
                passport_index: index,
                key: passport.public_key,
                key_index: index,
                retired: None,
                revoked: None,
                last_seq: 0,
            }),
        },
        Change::Retire => {
            let mut next = active(agent, state)?.clone();
            next.retired = Some(index);
            Ok(next)
        }
        Change::Revoke => {
            let mut next = active(agent, state)?.clone();
            if next.revoked.is_some() {
                return Err(RegistryError::AlreadyRevoked(agent.clone()));
            }
            next.revoked = Some(index);
            Ok(next)
        }
        Change::Reinstate { attestation_index } => {
            let mut next = active(agent, state)?.clone();
            match next.revoked.take() {
                None => return Err(RegistryError::NotRevoked(agent.clone())),
                Some(revoked_at) if attestation_index <= revoked_at => {
                    return Err(RegistryError::AttestationRequired { agent: agent.clone(), revoked_at })
                }
                Some(_) => {}
            }
            Ok(next)
        }
        Change::Signed(signed) => {
            let current = may_sign(agent, state, signed.kind())?;
            check_seq(agent, current.last_seq, signed.seq())?;
            if !signed.verify(&current.key) {
                return Err(RegistryError::BadSignature { agent: agent.clone() });
            }
            let mut next = current.clone();
            if let Some(new_key) = signed.new_key() {
                if weak(new_key) {
                    return Err(RegistryError::WeakKey { agent: agent.clone() });
                }
                next.key = *new_key;
                next.key_index = index;
            }
            next.last_seq = signed.seq();
            Ok(next)
        }
    }
}

/// Refuses a sequence number `seq` of `agent` that is not strictly above
/// `last`, the last accepted ([`RegistryError::Replayed`]).
pub fn check_seq(agent: &AgentId, last: u64, seq: u64) -> Result<(), RegistryError> {
    if seq <= last {
        return Err(RegistryError::Replayed { agent: agent.clone(), seq, last });
    }
    Ok(())
}

/// Plans the pre-verification of a run of signed entries (one submission,
/// in order) against the registry as `lookup` returns it: the key each
/// signature must verify with (a rotation earlier in the run hands over to
/// its new key), and the first refusal that needs no signature check
/// (unknown or retired agent, replayed sequence number). The caller checks
/// the planned signatures, in parallel if it likes, each with
/// [`Signed::verify`], and reports a forgery among them before the refusal.
pub fn plan_preverify<'e, S: Signed + ?Sized>(
    lookup: impl Fn(&AgentId) -> Option<AgentState>,
    entries: &[(&'e AgentId, &'e S)],
) -> (Vec<VerifyingKey>, Option<RegistryError>) {
    let mut local: BTreeMap<&AgentId, (VerifyingKey, u64)> = BTreeMap::new();
    let mut keys = Vec::with_capacity(entries.len());
    for (agent, signed) in entries {
        let (key, last_seq) = match local.get(agent) {
            Some(known) => *known,
            None => match may_sign(agent, lookup(agent).as_ref(), signed.kind()) {
                Ok(state) => (state.key, state.last_seq),
                Err(e) => return (keys, Some(e)),
            },
        };
        if let Err(e) = check_seq(agent, last_seq, signed.seq()) {
            return (keys, Some(e));
        }
        keys.push(key);
        local.insert(agent, (signed.new_key().copied().unwrap_or(key), signed.seq()));
    }
    (keys, None)
}

/// Replays leaf `index` of the log's own store onto the registry as
/// `lookup` returns it, for a log rebuilding its registry view: returns the
/// agent and its state after the leaf, `None` for a leaf that changes no
/// agent (an unsigned action). The leaf was admitted, so it is read as
/// stored (agent id unchecked, keys read leniently, version 1 leaves as
/// well), its signatures are not checked again and a key weak by today's
/// rules is taken as it was admitted; the state changes are otherwise
/// [`decide`]'s, and a refusal means the store holds what the log never
/// admitted.
pub fn replay(
    leaf: &Leaf,
    index: u64,
    lookup: impl FnOnce(&AgentId) -> Option<AgentState>,
) -> Result<Option<(AgentId, AgentState)>, RegistryError> {
    let members = &leaf.members;
    // The agent whose state the leaf changes: a peer report changes its
    // reporter's (sequence number), no other signal, policy or source an
    // agent's.
    let member = match leaf.kind {
        EntryKind::Signal => "source",
        EntryKind::Policy | EntryKind::Source | EntryKind::Risk => return Ok(None),
        _ => "agent",
    };
    let Some(agent) = members.get(member).and_then(Value::as_str) else { return Ok(None) };
    if leaf.kind == EntryKind::Signal && !agent.starts_with("spiffe://") {
        return Ok(None);
    }
    let agent = AgentId::from_stored_unchecked(agent);
    let (passport, admitted);
    let change = match leaf.kind {
        EntryKind::Passport => {
            passport = Arc::new(Passport::from_stored(members).map_err(EntryError::from)?);
            Change::Register(&passport)
        }
        EntryKind::Retirement => Change::Retire,
        EntryKind::Revocation => Change::Revoke,
        EntryKind::Reinstatement => {
            Change::Reinstate { attestation_index: members.get("attestation_index").and_then(Value::as_u64).unwrap_or(0) }
        }
        kind => {
            // Without `seq`: an unsigned action, admitted with agent
            // authentication off; it changes no agent.
            let Some(seq) = members.get("seq").and_then(Value::as_u64) else { return Ok(None) };
            let new_key = match (kind, members.get("new_public_key").and_then(Value::as_str)) {
                (EntryKind::Rotation, Some(key)) => Some(parse_stored_public_key(key).map_err(EntryError::from)?),
                _ => None,
            };
            admitted = Admitted { kind, seq, new_key };
            Change::Signed(&admitted)
        }
    };
    let next = decide_keys(&agent, lookup(&agent).as_ref(), index, change, Keys::Admitted)?;
    Ok(Some((agent, next)))
}

/// What an applied entry did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Registered the agent.
    Registered,
    /// Retired the agent.
    Retired,
    /// Revoked the agent.
    Revoked,
    /// Reinstated the agent.
    Reinstated,
    /// Changed no agent (policies, sources, the log's and sources' signals,
    /// risk levels).
    Unchanged,
    /// Rotated the agent's key, signed by the old and the new key.
    Rotated {
        /// Its sequence number.
        seq: u64,
    },
    /// An agent entry whose signature verified with the key in force.
    Signed {
        /// Its kind.
        kind: EntryKind,
        /// Its sequence number.
        seq: u64,
    },
}

/// The registry of every agent in a log, folded entry by entry (offline
/// auditors; the log keeps the same [`AgentState`] records in its store).
#[derive(Clone, Debug)]
pub struct Registry {
    origin: String,
    agents: BTreeMap<AgentId, AgentState>,
}

impl Registry {
    /// An empty registry of the log named `origin`.
    pub fn new(origin: &str) -> Self {
        Self { origin: origin.to_string(), agents: BTreeMap::new() }
    }

    /// An agent's state.
    pub fn get(&self, agent: &AgentId) -> Option<&AgentState> {
        self.agents.get(agent)
    }

    /// Applies a stored leaf at `index`, its entry read with its
    /// signatures ([`Form::Audit`]): agent-signed entries are checked from
    /// leaf version 2 on ([`RegistryError::LeafVersion`]); admin entries
    /// (passports, retirements) carry no agent signature and are applied
    /// whatever their version.
    pub fn apply_leaf(&mut self, index: u64, leaf: &Leaf) -> Result<Applied, RegistryError> {
        if leaf.version != LEAF_VERSION && leaf.kind.is_agent_signed() {
            return Err(RegistryError::LeafVersion(leaf.version));
        }
        let entry = Entry::from_object(&leaf.members, Form::Audit)?;
        self.apply(index, &entry)
    }

    /// Applies the entry at `index`. An attestation's recorded verdict is
    /// recomputed from its evidence, the passport and the key in force.
    pub fn apply(&mut self, index: u64, entry: &Entry) -> Result<Applied, RegistryError> {
        self.apply_preverified(index, entry, None)
    }

    /// [`Registry::apply`], with the outcome of the entry's signature check
    /// ([`OfflineSigned::verify`]) already known for one key: it is used
    /// when that key is the key in force, and the signature is checked
    /// again otherwise, so a wrong guess costs time, never a verdict.
    pub fn apply_preverified(
        &mut self,
        index: u64,
        entry: &Entry,
        checked: Option<(VerifyingKey, bool)>,
    ) -> Result<Applied, RegistryError> {
        let agent = match entry {
            Entry::Policy(_) | Entry::Source(_) | Entry::Risk(_) | Entry::Decision(_) => return Ok(Applied::Unchanged),
            // A grant (a token, or an escalation towards one) goes only to
            // an agent that may sign: registered, not retired, not revoked
            // (the log's admission applies the same rule to them).
            Entry::Token(_) | Entry::Escalation(_) => {
                let agent = entry.agent().ok_or(RegistryError::Unsigned(entry.kind()))?;
                may_sign(agent, self.agents.get(agent), entry.kind())?;
                return Ok(Applied::Unchanged);
            }
            Entry::Signal(signal) => match &signal.signer {
                Signer::Agent(reporter) => reporter,
                Signer::Log | Signer::Source(_) => return Ok(Applied::Unchanged),
            },
            _ => entry.agent().ok_or(RegistryError::Unsigned(entry.kind()))?,
        };
        let state = self.agents.get(agent);
        let signed = OfflineSigned::of(&self.origin, entry).map(|inner| Preverified { inner, checked });
        let (change, applied) = match (entry, &signed) {
            (Entry::Passport(r), _) => (Change::Register(&r.passport), Applied::Registered),
            (Entry::Retirement(_), _) => (Change::Retire, Applied::Retired),
            (Entry::Revocation(_), _) => (Change::Revoke, Applied::Revoked),
            (Entry::Reinstatement(r), _) => (Change::Reinstate { attestation_index: r.attestation_index }, Applied::Reinstated),
            (Entry::Rotation(_), Some(s)) => (Change::Signed(s), Applied::Rotated { seq: s.seq() }),
            (_, Some(s)) => (Change::Signed(s), Applied::Signed { kind: entry.kind(), seq: s.seq() }),
            (_, None) => return Err(RegistryError::Unsigned(entry.kind())),
        };
        let next = decide(agent, state, index, change)?;
        if let Entry::Attestation(att) = entry {
            // An attestation changes no key: `next` holds the key in force.
            let recomputed = verdict(&att.members, &attestation_failures(&att.members, &next.passport, &next.key));
            let recorded = att.verdict().cloned().unwrap_or(Value::Null);
            if recorded != recomputed {
                return Err(RegistryError::VerdictMismatch { recorded, recomputed });
            }
        }
        self.agents.insert(agent.clone(), next);
        Ok(applied)
    }
}

#[cfg(test)]
mod tests;
