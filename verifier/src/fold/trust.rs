//! Each agent's trust score as a fold over its evidence (docs/TRUST.md,
//! "Trust state and events", "Reading a score"): Jøsang's Beta reputation
//! with half-life forgetting, `E = (r + 1)/(r + s + 2)`, times a freshness
//! factor that decays after the last successful attestation's grace
//! period, in Q32.32 integers.
//!
//! Time alone never raises the expectation: between events the read value
//! is `min(e, B(T))` (the held expectation and the Beta expectation of the
//! decayed evidence), and the credit refused to time is carried across an
//! event as a gap. So a score never rises between events, and the first
//! millisecond at which decay takes it below a threshold is found exactly
//! by binary search ([`AgentTrust::crossing`]). State and updates are O(1)
//! per agent; [`AgentTrust::to_bytes`] is its versioned storage form.
#![deny(clippy::float_arithmetic)]

use alloc::vec::Vec;

use super::fixed::{self, CAP, MAX_HALVINGS};
use super::policy::Policy;
pub use super::policy::{Severity, SignalKind};

/// How many score-moving entry indices an agent remembers.
pub const RECENT: usize = 8;

/// Version of [`AgentTrust::to_bytes`].
pub const TRUST_STATE_VERSION: u8 = 1;

/// Length of [`AgentTrust::to_bytes`].
pub const TRUST_STATE_LEN: usize = 4 + 8 * (11 + RECENT);

/// One piece of evidence about an agent, as the integrator reads it from
/// a log entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Evidence {
    /// An attestation, successful or not, by TPM quote or in software.
    Attestation {
        /// Whether it verified.
        ok: bool,
        /// Whether its evidence was a TPM quote.
        tpm: bool,
    },
    /// A drift finding ([`super::drift::DriftFinding`]).
    Drift {
        /// Whether the PSI reached the significant threshold.
        significant: bool,
    },
    /// An external signal.
    Signal {
        /// Its type.
        kind: SignalKind,
        /// Its severity.
        severity: Severity,
    },
    /// Another agent's report, weighted by the reporter's score at that
    /// instant.
    PeerReport {
        /// For (true) or against (false).
        positive: bool,
        /// The reporter's score (0..=100; above 100 counts as 100).
        reporter_score: u8,
    },
}

impl Evidence {
    /// Its positive and negative weights `(w⁺, w⁻)` in milli-evidence
    /// under `policy` (one of them 0).
    pub fn weights_milli(&self, policy: &Policy) -> (u64, u64) {
        let w = &policy.weights;
        match *self {
            Self::Attestation { ok: true, tpm: false } => (w.attestation.software_ok.into(), 0),
            Self::Attestation { ok: true, tpm: true } => (w.attestation.tpm_ok.into(), 0),
            Self::Attestation { ok: false, .. } => (0, w.attestation.failed.into()),
            Self::Drift { significant: false } => (0, w.drift.moderate.into()),
            Self::Drift { significant: true } => (0, w.drift.significant.into()),
            Self::Signal { kind, severity } => (0, w.signals.of(kind).of(severity).into()),
            Self::PeerReport { positive, reporter_score } => {
                let base = if positive { w.peer_report.positive } else { w.peer_report.negative };
                let scaled = u64::from(base) * u64::from(reporter_score.min(100)) / 100;
                if positive {
                    (scaled, 0)
                } else {
                    (0, scaled)
                }
            }
        }
    }
}

pub use crate::entry::Level;

/// The band rules of risk levels ([`Level`] is ordered by risk:
/// `Low < Medium < High`).
impl Level {
    /// The band a score is in, without hysteresis.
    pub fn band(policy: &Policy, score: u8) -> Level {
        if score >= policy.levels.low_min {
            Self::Low
        } else if score >= policy.levels.medium_min {
            Self::Medium
        } else {
            Self::High
        }
    }

    /// The least score of its band (0 for `High`).
    pub fn lower_edge(self, policy: &Policy) -> u8 {
        match self {
            Self::Low => policy.levels.low_min,
            Self::Medium => policy.levels.medium_min,
            Self::High => 0,
        }
    }

    /// The level the band rules give a score from the logged level
    /// `self`: down (to more risk) as soon as the score is below `self`'s
    /// band, up only to a level whose lower edge plus hysteresis it
    /// reaches (the best such).
    pub fn target(self, policy: &Policy, score: u8) -> Level {
        let band = Self::band(policy, score);
        if band > self {
            return band;
        }
        let reaches = |l: &Level| u16::from(score) >= u16::from(l.lower_edge(policy)) + u16::from(policy.levels.hysteresis);
        Self::ALL.into_iter().filter(|l| *l < self).find(reaches).unwrap_or(self)
    }

    /// The level's code in stored records (0 low, 1 medium, 2 high).
    pub const fn code(self) -> u8 {
        match self {
            Self::Low => 0,
            Self::Medium => 1,
            Self::High => 2,
        }
    }

    /// The level of a [`Level::code`].
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.code() == code)
    }
}

/// What a score is made of at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Components {
    /// The score.
    pub score: u8,
    /// The expectation read (`min(e, B(T))`), per mille (floor).
    pub expectation_permille: u64,
    /// The freshness factor, per mille (floor).
    pub freshness_permille: u64,
    /// Positive evidence decayed to the instant, milli-evidence (floor;
    /// includes the initial pseudo-evidence).
    pub evidence_for_milli: u64,
    /// Negative evidence decayed to the instant, milli-evidence (floor).
    pub evidence_against_milli: u64,
    /// Index of the last successful attestation.
    pub last_attestation_index: Option<u64>,
    /// Index of the revocation in force.
    pub revoked: Option<u64>,
}

/// Why an agent cannot be reinstated ([`AgentTrust::reinstatement_basis`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReinstateRefusal {
    /// It is not revoked.
    NotRevoked,
    /// It has not attested successfully since its revocation at this
    /// index.
    AttestationRequired {
        /// Index of the revocation in force.
        revoked_at: u64,
    },
}

/// Why a stored trust or drift state is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// Wrong length for its version.
    #[error("stored state is {found} bytes, expected {expected}")]
    Length {
        /// The length its version has.
        expected: usize,
        /// The length read.
        found: usize,
    },
    /// An unknown encoding version.
    #[error("stored state version {0} is not supported")]
    Version(u8),
    /// A field the fold cannot produce.
    #[error("stored state has an invalid {0}")]
    Invalid(&'static str),
}

/// One agent's trust (docs/TRUST.md, "Trust state and events").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentTrust {
    /// Positive evidence at `evidence_ms` (Q32.32, at most `CAP`).
    r: u64,
    /// Negative evidence at `evidence_ms` (Q32.32, at most `CAP`).
    s: u64,
    /// The expectation held at `evidence_ms` (Q32.32, at most `E(r, s)`).
    e: u64,
    /// When the evidence last changed (`t_e`).
    evidence_ms: u64,
    /// Index and time of the passport.
    registered: (u64, u64),
    /// The freshness anchor: latest of registration, successful
    /// attestation, reinstatement.
    fresh_from_ms: u64,
    /// Index and time of the last successful attestation.
    last_ok_attestation: Option<(u64, u64)>,
    /// Index and time of the revocation in force.
    revoked: Option<(u64, u64)>,
    /// The level last logged.
    level: Level,
    /// Indices of the last entries that moved the score, oldest first.
    recent: [u64; RECENT],
    recent_len: u8,
}

impl AgentTrust {
    /// A new agent, registered by the passport at `index`: pseudo-evidence
    /// that scores the policy's `initial_score`, fresh from `time_ms`, at
    /// the level of that score's band.
    pub fn register(policy: &Policy, index: u64, time_ms: u64) -> Self {
        let (r, s) = policy.initial_evidence();
        let mut recent = [0; RECENT];
        recent[0] = index;
        Self {
            r,
            s,
            e: fixed::expectation(r, s),
            evidence_ms: time_ms,
            registered: (index, time_ms),
            fresh_from_ms: time_ms,
            last_ok_attestation: None,
            revoked: None,
            level: Level::band(policy, policy.initial_score),
            recent,
            recent_len: 1,
        }
    }

    /// Folds one piece of evidence from the entry at `index`. A time before
    /// the last evidence's is taken as that time (the log's time never goes
    /// back; this keeps a bad clock from un-decaying evidence). Evidence of
    /// weight 0 changes no evidence; a successful attestation refreshes
    /// freshness whatever its weight.
    pub fn apply(&mut self, policy: &Policy, index: u64, time_ms: u64, evidence: &Evidence) {
        let t = time_ms.max(self.evidence_ms);
        let before = self.score(policy, t);
        let (wp, wn) = evidence.weights_milli(policy);
        if wp != 0 || wn != 0 {
            // docs/TRUST.md, "Trust state and events", steps 3 to 5. The gap
            // is what time alone would have credited (B risen above e); the
            // evidence moves the held expectation by its effect on the Beta
            // expectation of the unfloored decayed evidence, less that gap.
            let d = fixed::decay(t - self.evidence_ms, policy.evidence_half_life_ms());
            let (rd, sd) = (u128::from(self.r) * u128::from(d), u128::from(self.s) * u128::from(d));
            let gap = fixed::expectation_q64(rd, sd).saturating_sub(self.e);
            let (qp, qn) = (fixed::from_milli(wp), fixed::from_milli(wn));
            let r = fixed::mul(self.r, d).saturating_add(qp).min(CAP);
            let s = fixed::mul(self.s, d).saturating_add(qn).min(CAP);
            let moved = fixed::expectation_q64(rd + (u128::from(qp) << 32), sd + (u128::from(qn) << 32));
            self.e = fixed::expectation(r, s).min(moved.saturating_sub(gap));
            (self.r, self.s, self.evidence_ms) = (r, s, t);
        }
        if let Evidence::Attestation { ok: true, .. } = evidence {
            self.last_ok_attestation = Some((index, t));
            self.fresh_from_ms = self.fresh_from_ms.max(t);
        }
        if self.score(policy, t) != before {
            self.push_recent(index);
        }
    }

    /// Revokes (or quarantines) the agent by the entry at `index`: it
    /// scores 0 until reinstated. A second revocation keeps the first.
    pub fn revoke(&mut self, index: u64, time_ms: u64) {
        if self.revoked.is_some() {
            return;
        }
        self.revoked = Some((index, time_ms.max(self.evidence_ms)));
        self.push_recent(index);
    }

    /// Reinstates the agent by the entry at `index`: it starts over as a
    /// new passport would (pseudo-evidence for the initial score, fresh
    /// from the reinstatement, no gap), keeping its last attestation,
    /// its recent indices and its logged level.
    pub fn reinstate(&mut self, policy: &Policy, index: u64, time_ms: u64) {
        let t = time_ms.max(self.evidence_ms);
        let (r, s) = policy.initial_evidence();
        (self.r, self.s, self.e, self.evidence_ms) = (r, s, fixed::expectation(r, s), t);
        self.fresh_from_ms = self.fresh_from_ms.max(t);
        self.revoked = None;
        self.push_recent(index);
    }

    /// Records the level the log has logged.
    pub fn set_level(&mut self, level: Level) {
        self.level = level;
    }

    /// The level last logged.
    pub fn level(&self) -> Level {
        self.level
    }

    /// The score at `now_ms` (0..=100; 0 while revoked).
    pub fn score(&self, policy: &Policy, now_ms: u64) -> u8 {
        if self.revoked.is_some() {
            return 0;
        }
        fixed::score(self.expectation_at(policy, now_ms), self.freshness_at(policy, now_ms))
    }

    /// The expectation read at `now_ms`, `min(e, B(now))` (Q32.32).
    pub fn expectation_at(&self, policy: &Policy, now_ms: u64) -> u64 {
        let d = self.decay_at(policy, now_ms);
        let b = fixed::expectation_q64(u128::from(self.r) * u128::from(d), u128::from(self.s) * u128::from(d));
        self.e.min(b)
    }

    /// The freshness factor at `now_ms` (Q32.32).
    pub fn freshness_at(&self, policy: &Policy, now_ms: u64) -> u64 {
        let since = now_ms.saturating_sub(self.fresh_from_ms).saturating_sub(policy.attestation_grace_ms());
        fixed::decay(since, policy.attestation_half_life_ms())
    }

    fn decay_at(&self, policy: &Policy, now_ms: u64) -> u64 {
        fixed::decay(now_ms.saturating_sub(self.evidence_ms), policy.evidence_half_life_ms())
    }

    /// What the score at `now_ms` is made of.
    pub fn components(&self, policy: &Policy, now_ms: u64) -> Components {
        let d = self.decay_at(policy, now_ms);
        Components {
            score: self.score(policy, now_ms),
            expectation_permille: fixed::to_milli(self.expectation_at(policy, now_ms)),
            freshness_permille: fixed::to_milli(self.freshness_at(policy, now_ms)),
            evidence_for_milli: fixed::to_milli(fixed::mul(self.r, d)),
            evidence_against_milli: fixed::to_milli(fixed::mul(self.s, d)),
            last_attestation_index: self.last_ok_attestation.map(|(i, _)| i),
            revoked: self.revoked.map(|(i, _)| i),
        }
    }

    /// The first instant `T ≥ from_ms` at which `score(T) < threshold`,
    /// `None` when there is none (`threshold` 0). Exact: the score never
    /// rises with time for a given state, so this is a binary search over
    /// milliseconds, bounded by the instant freshness reaches 0
    /// (docs/TRUST.md, "Crossings").
    pub fn crossing(&self, policy: &Policy, from_ms: u64, threshold: u8) -> Option<u64> {
        if threshold == 0 {
            return None;
        }
        let below = |t| self.score(policy, t) < threshold;
        if below(from_ms) {
            return Some(from_ms);
        }
        let end = self
            .fresh_from_ms
            .saturating_add(policy.attestation_grace_ms())
            .saturating_add(policy.attestation_half_life_ms().max(1).saturating_mul(MAX_HALVINGS));
        if !below(end) {
            return None;
        }
        // Invariant: not below at lo, below at hi.
        let (mut lo, mut hi) = (from_ms, end);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if below(mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Some(hi)
    }

    /// The level the band rules give at `now_ms` from the logged level.
    pub fn target_level(&self, policy: &Policy, now_ms: u64) -> Level {
        self.level.target(policy, self.score(policy, now_ms))
    }

    /// The first instant `T ≥ from_ms` at which decay alone takes
    /// [`target_level`](Self::target_level) to more risk than the logged
    /// level (the score falling below the logged level's band); `None`
    /// for `High`. Rises happen only at events.
    pub fn level_crossing(&self, policy: &Policy, from_ms: u64) -> Option<u64> {
        self.crossing(policy, from_ms, self.level.lower_edge(policy))
    }

    /// Indices of the last entries that moved the score (at most
    /// [`RECENT`]), oldest first.
    pub fn recent(&self) -> &[u64] {
        &self.recent[..usize::from(self.recent_len)]
    }

    /// Index and time of the passport.
    pub fn registered(&self) -> (u64, u64) {
        self.registered
    }

    /// Index and time of the last successful attestation.
    pub fn last_ok_attestation(&self) -> Option<(u64, u64)> {
        self.last_ok_attestation
    }

    /// Index and time of the revocation in force.
    pub fn revoked(&self) -> Option<(u64, u64)> {
        self.revoked
    }

    /// The attestation a reinstatement of this agent rests on: its last
    /// successful attestation, which must come after the revocation in
    /// force. The one rule for the log's admin route and for auditors (the
    /// registry fold checks the order again when the entry is sequenced).
    pub fn reinstatement_basis(&self) -> Result<u64, ReinstateRefusal> {
        let (revoked_at, _) = self.revoked.ok_or(ReinstateRefusal::NotRevoked)?;
        match self.last_ok_attestation {
            Some((index, _)) if index > revoked_at => Ok(index),
            _ => Err(ReinstateRefusal::AttestationRequired { revoked_at }),
        }
    }

    /// The evidence `(r, s)` (Q32.32), the expectation held (Q32.32) and
    /// the time they refer to.
    pub fn evidence(&self) -> (u64, u64, u64, u64) {
        (self.r, self.s, self.e, self.evidence_ms)
    }

    fn push_recent(&mut self, index: u64) {
        let len = usize::from(self.recent_len);
        if len < RECENT {
            self.recent[len] = index;
            self.recent_len += 1;
        } else {
            self.recent.rotate_left(1);
            self.recent[RECENT - 1] = index;
        }
    }

    /// The storage form (docs/TRUST.md, "Stored encodings"): version 1,
    /// [`TRUST_STATE_LEN`] bytes, big-endian, fixed width.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(TRUST_STATE_LEN);
        let flags = u8::from(self.last_ok_attestation.is_some()) | u8::from(self.revoked.is_some()) << 1;
        out.extend_from_slice(&[TRUST_STATE_VERSION, flags, self.level.code(), self.recent_len]);
        let (ok_index, ok_ms) = self.last_ok_attestation.unwrap_or_default();
        let (revoked_index, revoked_ms) = self.revoked.unwrap_or_default();
        let words = [
            self.r,
            self.s,
            self.e,
            self.evidence_ms,
            self.registered.0,
            self.registered.1,
            self.fresh_from_ms,
            ok_index,
            ok_ms,
            revoked_index,
            revoked_ms,
        ];
        for w in words.iter().chain(self.recent.iter()) {
            out.extend_from_slice(&w.to_be_bytes());
        }
        out
    }

    /// Reads [`to_bytes`](Self::to_bytes), refusing any other length,
    /// version, flag or level, non-zero absent or unused fields and
    /// evidence the fold cannot produce, so one state has one encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StateError> {
        if let Some(&v) = bytes.first() {
            if v != TRUST_STATE_VERSION {
                return Err(StateError::Version(v));
            }
        }
        if bytes.len() != TRUST_STATE_LEN {
            return Err(StateError::Length { expected: TRUST_STATE_LEN, found: bytes.len() });
        }
        let (flags, level, recent_len) = (bytes[1], bytes[2], bytes[3]);
        let mut words = bytes[4..].chunks_exact(8).map(|c| u64::from_be_bytes(c.try_into().unwrap_or_default()));
        let mut next = || words.next().unwrap_or_default();
        let (r, s, e, evidence_ms) = (next(), next(), next(), next());
        let registered = (next(), next());
        let fresh_from_ms = next();
        let ok = (next(), next());
        let revoked = (next(), next());
        let mut recent = [0; RECENT];
        recent.iter_mut().for_each(|w| *w = next());

        if flags > 0b11 {
            return Err(StateError::Invalid("flags"));
        }
        let level = Level::from_code(level).ok_or(StateError::Invalid("level"))?;
        if usize::from(recent_len) > RECENT || recent[usize::from(recent_len)..].iter().any(|&w| w != 0) {
            return Err(StateError::Invalid("recent indices"));
        }
        let optional = |present: bool, pair: (u64, u64), name| match present {
            true => Ok(Some(pair)),
            false if pair == (0, 0) => Ok(None),
            false => Err(StateError::Invalid(name)),
        };
        let last_ok_attestation = optional(flags & 1 != 0, ok, "last attestation")?;
        let revoked = optional(flags & 2 != 0, revoked, "revocation")?;
        if r > CAP || s > CAP {
            return Err(StateError::Invalid("evidence"));
        }
        if e > fixed::expectation(r, s) {
            return Err(StateError::Invalid("expectation"));
        }
        Ok(Self { r, s, e, evidence_ms, registered, fresh_from_ms, last_ok_attestation, revoked, level, recent, recent_len })
    }
}

#[cfg(test)]
mod tests;
