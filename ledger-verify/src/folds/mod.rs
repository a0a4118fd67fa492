//! The log's folds replayed over its leaves in order, every rule checked on
//! the way: the registry (agent signatures against the key in force,
//! sequence numbers, retirements and revocations, attestation verdicts
//! recomputed), the signal sources, and the trust fold with every entry the
//! log wrote from it ([`replay`]) and the escalations ([`grants`]). `ledger-verify trust` and `ledger-verify audit`
//! both replay through [`Folds`]; the server keeps its views with the very
//! same folds (`verifier::fold`).

use ed25519_dalek::VerifyingKey;
use verifier::entry::Leaf;
use verifier::fold::registry::{Registry, RegistryError};
use verifier::fold::sources::Sources;
use verifier::fold::trust_log::{TrustMap, Violation};

pub(crate) mod grants;
pub(crate) mod replay;

use grants::Escalations;
use replay::{external, Context, Replay};

/// Which check found a problem: stable names, printed in reports and
/// matched by tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Check {
    /// The archive's framing or header.
    Archive,
    /// The checkpoint's signature.
    Checkpoint,
    /// Witness cosignatures (the quorum asked for).
    Witnesses,
    /// Consistency with the auditor's previous checkpoint.
    Consistency,
    /// The leaves against the checkpoint's root.
    Tree,
    /// A leaf that does not decode as an entry.
    Leaf,
    /// The registry: signatures, sequence numbers, retired and revoked
    /// agents.
    Registry,
    /// An attestation's recorded verdict against its evidence.
    Attestation,
    /// Signal sources and their signatures.
    Sources,
    /// Hidden-field commitments and predicate proofs.
    Hidden,
    /// Trust scores, revocations, risk changes, drift signals and tokens.
    Trust,
    /// Escalations and their decisions.
    Grants,
}

impl Check {
    /// Its name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Archive => "archive",
            Self::Checkpoint => "checkpoint",
            Self::Witnesses => "witnesses",
            Self::Consistency => "consistency",
            Self::Tree => "tree",
            Self::Leaf => "leaf",
            Self::Registry => "registry",
            Self::Attestation => "attestation",
            Self::Sources => "sources",
            Self::Hidden => "hidden",
            Self::Trust => "trust",
            Self::Grants => "grants",
        }
    }
}

/// A rule an entry breaks.
#[derive(Debug)]
pub(crate) struct Finding {
    pub(crate) check: Check,
    pub(crate) message: String,
}

impl Finding {
    pub(crate) fn new(check: Check, message: impl Into<String>) -> Self {
        Self { check, message: message.into() }
    }
}

/// Entries the trust checks covered.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub(crate) struct TrustCounts {
    pub(crate) revocations: u64,
    pub(crate) risk_changes: u64,
    pub(crate) drift_signals: u64,
    pub(crate) tokens: u64,
    pub(crate) decisions: u64,
    pub(crate) escalated_tokens: u64,
}

/// Every fold, as of the last leaf applied.
pub(crate) struct Folds {
    pub(crate) registry: Registry,
    pub(crate) sources: Sources,
    pub(crate) trust: TrustMap,
    replay: Replay,
    /// The integrated time of every leaf applied.
    pub(crate) times: Vec<u64>,
    /// Revocations, risk changes, drift signals, tokens checked.
    counts: [u64; 4],
    escalations: Escalations,
    from_outside: Vec<(u64, u64)>,
}

impl Folds {
    /// Empty folds for the log named `origin`.
    pub(crate) fn new(origin: &str) -> Self {
        Self {
            registry: Registry::new(origin),
            sources: Sources::new(origin),
            trust: TrustMap::default(),
            replay: Replay::default(),
            times: Vec::new(),
            counts: [0; 4],
            escalations: Escalations::default(),
            from_outside: Vec::new(),
        }
    }

    /// Applies the leaf at `index` (the next one) to every fold, checking
    /// every rule; `checked` is the outcome of its agent signature check
    /// with one key, when already known
    /// ([`Registry::apply_preverified`]). After a finding the leaf's
    /// remaining folds are skipped: what follows may then report
    /// consequences of the first finding.
    pub(crate) fn apply(&mut self, index: u64, leaf: &Leaf, checked: Option<(VerifyingKey, bool)>) -> Result<(), Finding> {
        let t = leaf.integrated_time;
        self.times.push(t);
        self.sources.apply_leaf(index, leaf, &self.registry).map_err(|e| Finding::new(Check::Sources, e.to_string()))?;
        match &leaf.entry {
            // Current leaves go through the preverified path; a version 1
            // leaf (and one that today's rules refuse, [`Leaf::entry`]) is
            // left to the registry's rule for its version.
            Some(entry) if leaf.version == verifier::canonical::LEAF_VERSION => {
                self.registry.apply_preverified(index, entry, checked).map(|_| ())
            }
            _ => self.registry.apply_leaf(index, leaf).map(|_| ()),
        }
        .map_err(|e| match e {
            RegistryError::VerdictMismatch { .. } => Finding::new(Check::Attestation, e.to_string()),
            other => Finding::new(Check::Registry, other.to_string()),
        })?;
        if let Some(entry) = &leaf.entry {
            let ctx = Context { trust: &self.trust, registry: &self.registry, times: &self.times, external: &self.from_outside };
            self.replay.check(&ctx, index, t, entry, &mut self.counts).map_err(|m| Finding::new(Check::Trust, m))?;
            self.escalations.check(index, t, entry).map_err(|m| Finding::new(Check::Grants, m))?;
            if external(entry) {
                self.from_outside.push((index, t));
            }
        }
        let effects = self.trust.apply_leaf(index, leaf).map_err(|e| Finding::new(Check::Trust, e.to_string()))?;
        if let Some(v) = effects.violations.first() {
            let message = match v {
                Violation::UnjustifiedDrift { agent } => format!("a drift signal about {agent} records no finding of its detector"),
                other => format!("{other:?}"),
            };
            return Err(Finding::new(Check::Trust, message));
        }
        self.counts[2] += u64::from(leaf.kind == verifier::entry::EntryKind::Signal && leaf.text("source") == "ledger");
        self.replay.remember(&self.trust, index, t, &effects.moved);
        Ok(())
    }

    /// Records entry `index` as one no fold could read (it does not
    /// decode): it keeps its place in the integrated times, taking the
    /// time of the entry before it, so later entries' references by index
    /// stay right.
    pub(crate) fn skip(&mut self, index: u64) {
        debug_assert_eq!(self.times.len() as u64, index);
        let previous = self.times.last().copied().unwrap_or(0);
        self.times.push(previous);
    }

    /// What the log still owes at its last entry: a crossing of the
    /// threshold not revoked, a drift finding not announced, for longer
    /// than the tolerance.
    pub(crate) fn owed_at_end(&self) -> Option<String> {
        let last = self.times.last().copied().unwrap_or(0);
        let ctx = Context { trust: &self.trust, registry: &self.registry, times: &self.times, external: &self.from_outside };
        self.replay.owed_at_end(&ctx, last)
    }

    /// Agents registered so far.
    pub(crate) fn agents(&self) -> usize {
        self.trust.agents.len()
    }

    /// What the trust checks covered.
    pub(crate) fn counts(&self) -> TrustCounts {
        TrustCounts {
            revocations: self.counts[0],
            risk_changes: self.counts[1],
            drift_signals: self.counts[2],
            tokens: self.counts[3],
            decisions: self.escalations.counts[0],
            escalated_tokens: self.escalations.counts[1],
        }
    }
}
