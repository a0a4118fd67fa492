//! The trust policy: half-lives, weights, levels and drift parameters the
//! trust and drift folds run under (docs/TRUST.md, "Policy").
//!
//! The policy is read strictly ([`Policy::from_json`]: every member
//! required, none unknown, integers in range, typed [`PolicyError`]) and
//! written member by member as RFC 8785 canonical JSON
//! ([`Policy::to_canonical`]); serde never decides its bytes, so
//! [`Policy::hash`] names one policy everywhere. Weights are integers in
//! thousandths of a unit of evidence, thresholds in thousandths of PSI:
//! nothing decimal is ever parsed.
#![deny(clippy::float_arithmetic)]

use alloc::string::String;
use alloc::vec::Vec;

use sha2::{Digest, Sha256};

use super::fixed::{self, CAP, ONE};

pub mod classes;
mod json;

pub use self::classes::{RiskClass, TokenPolicy};

/// The policy format version this code reads and writes.
pub const POLICY_VERSION: u64 = 1;

/// The largest weight, in milli-evidence (1000 units).
pub const MAX_WEIGHT_MILLI: u32 = 1_000_000;

/// The most drift buckets.
pub const MAX_BUCKETS: u16 = 1024;

/// The longest drift baseline or window, in events.
pub const MAX_DRIFT_EVENTS: u32 = 1 << 20;

/// The policy of the trust and drift folds. Read one with
/// [`Policy::from_json`] or start from [`Policy::default`]; a policy built
/// or changed by hand should pass [`Policy::check`] (the folds never panic
/// on one that does not, but their results mean little).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Half-life of evidence, seconds.
    pub evidence_half_life_s: u64,
    /// Half-life of freshness after the grace period, seconds.
    pub attestation_half_life_s: u64,
    /// How long an attestation keeps an agent fully fresh, seconds.
    pub attestation_grace_s: u64,
    /// How often one reporter's peer reports about one agent count: once
    /// per this many seconds (docs/TRUST.md, "Peer reports").
    pub peer_report_interval_s: u64,
    /// The score of a new (or reinstated) agent.
    pub initial_score: u8,
    /// The score below which the integrator revokes an agent.
    pub revocation_threshold: u8,
    /// Risk level bands.
    pub levels: LevelBands,
    /// Evidence weights, milli-evidence.
    pub weights: Weights,
    /// The drift detector's parameters.
    pub drift: DriftParams,
    /// Risk classes of actions for action tokens (docs/POLICY.md): the
    /// optional `tokens` member, written only when it is not the built-in
    /// default, so a policy without it keeps its hash.
    pub tokens: TokenPolicy,
}

/// Risk level bands: `Low` at `score ≥ low_min`, `Medium` at
/// `medium_min ≤ score < low_min`, `High` below; a level is only risen to
/// at `lower edge + hysteresis`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LevelBands {
    /// Lower edge of the `Low` risk band.
    pub low_min: u8,
    /// Lower edge of the `Medium` risk band.
    pub medium_min: u8,
    /// Margin above a band's lower edge needed to rise into it.
    pub hysteresis: u8,
}

/// Evidence weights in milli-evidence (1000 = one unit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Weights {
    /// Attestation outcomes.
    pub attestation: AttestationWeights,
    /// Drift findings (negative).
    pub drift: DriftWeights,
    /// External signals by type and severity (negative).
    pub signals: SignalWeights,
    /// Peer reports, scaled by the reporter's score.
    pub peer_report: PeerReportWeights,
}

/// Attestation weights, milli-evidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttestationWeights {
    /// A successful software attestation (positive).
    pub software_ok: u32,
    /// A successful TPM attestation (positive).
    pub tpm_ok: u32,
    /// A failed attestation (negative).
    pub failed: u32,
}

/// Drift finding weights, milli-evidence (negative).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DriftWeights {
    /// A moderate drift finding.
    pub moderate: u32,
    /// A significant drift finding.
    pub significant: u32,
}

/// Signal weights per type, milli-evidence (negative).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalWeights {
    /// `threat_intel`.
    pub threat_intel: SeverityWeights,
    /// `vulnerability`.
    pub vulnerability: SeverityWeights,
    /// `siem`.
    pub siem: SeverityWeights,
    /// `ueba`.
    pub ueba: SeverityWeights,
}

/// One signal type's weights per severity, milli-evidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeverityWeights {
    /// `low`.
    pub low: u32,
    /// `medium`.
    pub medium: u32,
    /// `high`.
    pub high: u32,
    /// `critical`.
    pub critical: u32,
}

/// Peer report weights, milli-evidence, before scaling by the reporter's
/// score.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerReportWeights {
    /// A positive report.
    pub positive: u32,
    /// A negative report.
    pub negative: u32,
}

/// The drift detector's parameters (docs/TRUST.md, "Drift").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DriftParams {
    /// Histogram buckets `B`.
    pub buckets: u16,
    /// Observations in the baseline `N`.
    pub baseline_events: u32,
    /// Observations per window `W`.
    pub window_events: u32,
    /// PSI (milli) at which a window is a finding.
    pub moderate_milli: u32,
    /// PSI (milli) at which a finding is significant.
    pub significant_milli: u32,
}

/// The type of an external signal: the [`SignalType`]s registered sources
/// file, each with its own weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SignalKind {
    /// Threat intelligence.
    ThreatIntel,
    /// A vulnerability finding.
    Vulnerability,
    /// A SIEM alert.
    Siem,
    /// A user and entity behaviour analytics alert.
    Ueba,
}

impl SignalKind {
    /// Every kind, in policy order.
    pub const ALL: [SignalKind; 4] = [Self::ThreatIntel, Self::Vulnerability, Self::Siem, Self::Ueba];

    /// The signal type it is.
    pub const fn signal_type(self) -> SignalType {
        match self {
            Self::ThreatIntel => SignalType::ThreatIntel,
            Self::Vulnerability => SignalType::Vulnerability,
            Self::Siem => SignalType::Siem,
            Self::Ueba => SignalType::Ueba,
        }
    }

    /// The kind of a signal type (`None` for `drift` and `peer_report`,
    /// weighed apart).
    pub fn of(signal_type: SignalType) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.signal_type() == signal_type)
    }

    /// Its name in policies and entries.
    pub const fn as_str(self) -> &'static str {
        self.signal_type().as_str()
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        SignalType::parse(name).and_then(Self::of)
    }
}

pub use crate::entry::Severity;
use crate::entry::SignalType;

impl SignalWeights {
    /// The weights of one signal type.
    pub fn of(&self, kind: SignalKind) -> &SeverityWeights {
        match kind {
            SignalKind::ThreatIntel => &self.threat_intel,
            SignalKind::Vulnerability => &self.vulnerability,
            SignalKind::Siem => &self.siem,
            SignalKind::Ueba => &self.ueba,
        }
    }
}

impl SeverityWeights {
    /// The weight of one severity.
    pub fn of(&self, severity: Severity) -> u32 {
        match severity {
            Severity::Low => self.low,
            Severity::Medium => self.medium,
            Severity::High => self.high,
            Severity::Critical => self.critical,
        }
    }
}

/// A policy member: the object it is in (dotted, empty at the top) and its
/// name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    /// The enclosing object, e.g. `"weights_milli.signals.siem"`; empty for
    /// the top level.
    pub object: &'static str,
    /// The member's name; empty for the object itself.
    pub name: &'static str,
}

impl Member {
    /// The policy object itself.
    pub const ROOT: Member = Member { object: "", name: "" };
}

impl core::fmt::Display for Member {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match (self.object, self.name) {
            ("", "") => f.write_str("the policy"),
            ("", name) => write!(f, "\"{name}\""),
            (object, "") => write!(f, "\"{object}\""),
            (object, name) => write!(f, "\"{object}.{name}\""),
        }
    }
}

/// Why a policy is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The policy, or one of its groups, is not a JSON object.
    #[error("{0} is not a JSON object")]
    NotAnObject(Member),
    /// A required member is missing.
    #[error("{0} is missing")]
    Missing(Member),
    /// A member this policy version does not have.
    #[error("{within} has an unknown member {name:?}")]
    UnknownMember {
        /// The object holding it.
        within: Member,
        /// Its name.
        name: String,
    },
    /// A member is not a non-negative JSON integer.
    #[error("{0} is not a non-negative integer")]
    NotAnInteger(Member),
    /// A member is outside its range (which may depend on other members:
    /// `levels.low_min` above `levels.medium_min`, `initial_score` above
    /// `revocation_threshold`, ...).
    #[error("{member} is {value}, outside {min}..={max}")]
    OutOfRange {
        /// The member.
        member: Member,
        /// Its value.
        value: u64,
        /// The least allowed.
        min: u64,
        /// The most allowed.
        max: u64,
    },
    /// A policy version this code does not read.
    #[error("policy version {0} is not supported (this reads version {POLICY_VERSION})")]
    UnsupportedVersion(u64),
    /// No pseudo-evidence gives exactly this initial score.
    #[error("initial_score {0} cannot be reached exactly by initial evidence")]
    InitialScoreUnreachable(u8),
    /// The `tokens` member (risk classes) is refused.
    #[error("{0}")]
    Tokens(#[from] classes::ClassError),
}

/// One integer member and its fixed range.
#[derive(Clone, Copy)]
struct Field {
    member: Member,
    min: u64,
    max: u64,
}

const fn field(object: &'static str, name: &'static str, min: u64, max: u64) -> Field {
    Field { member: Member { object, name }, min, max }
}

const SECONDS_MAX: u64 = u32::MAX as u64;
const WEIGHT_MAX: u64 = MAX_WEIGHT_MILLI as u64;
const VERSION: Field = field("", "version", 0, u64::MAX);
const EVIDENCE_HALF_LIFE: Field = field("", "evidence_half_life_s", 1, SECONDS_MAX);
const ATTESTATION_HALF_LIFE: Field = field("", "attestation_half_life_s", 1, SECONDS_MAX);
const ATTESTATION_GRACE: Field = field("", "attestation_grace_s", 0, SECONDS_MAX);
const PEER_REPORT_INTERVAL: Field = field("", "peer_report_interval_s", 1, SECONDS_MAX);
const INITIAL_SCORE: Field = field("", "initial_score", 1, 99);
const REVOCATION_THRESHOLD: Field = field("", "revocation_threshold", 0, 99);
const LEVELS: &str = "levels";
const LOW_MIN: Field = field(LEVELS, "low_min", 2, 100);
const MEDIUM_MIN: Field = field(LEVELS, "medium_min", 1, 99);
const HYSTERESIS: Field = field(LEVELS, "hysteresis", 0, 98);
const WEIGHTS: &str = "weights_milli";
const ATTESTATION_W: &str = "weights_milli.attestation";
const DRIFT_W: &str = "weights_milli.drift";
const SIGNALS_W: &str = "weights_milli.signals";
const PEER_W: &str = "weights_milli.peer_report";
const DRIFT: &str = "drift";
const BUCKETS: Field = field(DRIFT, "buckets", 2, MAX_BUCKETS as u64);
const BASELINE_EVENTS: Field = field(DRIFT, "baseline_events", 1, MAX_DRIFT_EVENTS as u64);
const WINDOW_EVENTS: Field = field(DRIFT, "window_events", 1, MAX_DRIFT_EVENTS as u64);
const MODERATE_MILLI: Field = field(DRIFT, "moderate_milli", 1, WEIGHT_MAX);
const SIGNIFICANT_MILLI: Field = field(DRIFT, "significant_milli", 1, WEIGHT_MAX);

/// The object path of a signal type's weights.
const fn signal_object(kind: SignalKind) -> &'static str {
    match kind {
        SignalKind::ThreatIntel => "weights_milli.signals.threat_intel",
        SignalKind::Vulnerability => "weights_milli.signals.vulnerability",
        SignalKind::Siem => "weights_milli.signals.siem",
        SignalKind::Ueba => "weights_milli.signals.ueba",
    }
}

fn range(f: Field, value: u64, min: u64, max: u64) -> Result<(), PolicyError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(PolicyError::OutOfRange { member: f.member, value, min, max })
    }
}

fn within(f: Field, value: u64) -> Result<(), PolicyError> {
    range(f, value, f.min, f.max)
}

fn weight(object: &'static str, name: &'static str) -> Field {
    field(object, name, 0, WEIGHT_MAX)
}

impl Default for Policy {
    /// The default policy (docs/TRUST.md, "Policy"; docs/policy.example.toml).
    fn default() -> Self {
        let sev = |low, medium, high, critical| SeverityWeights { low, medium, high, critical };
        Self {
            evidence_half_life_s: 30 * 86_400,
            attestation_half_life_s: 7 * 86_400,
            attestation_grace_s: 86_400,
            peer_report_interval_s: 86_400,
            initial_score: 60,
            revocation_threshold: 30,
            levels: LevelBands { low_min: 70, medium_min: 40, hysteresis: 5 },
            weights: Weights {
                attestation: AttestationWeights { software_ok: 1000, tpm_ok: 2000, failed: 4000 },
                drift: DriftWeights { moderate: 1000, significant: 4000 },
                signals: SignalWeights {
                    threat_intel: sev(1000, 2000, 4000, 8000),
                    vulnerability: sev(500, 1000, 2000, 4000),
                    siem: sev(500, 1000, 3000, 6000),
                    ueba: sev(500, 1000, 3000, 6000),
                },
                peer_report: PeerReportWeights { positive: 500, negative: 1000 },
            },
            drift: DriftParams { buckets: 64, baseline_events: 1000, window_events: 256, moderate_milli: 100, significant_milli: 250 },
            tokens: TokenPolicy::default(),
        }
    }
}

impl Policy {
    /// The evidence half-life in milliseconds.
    pub fn evidence_half_life_ms(&self) -> u64 {
        self.evidence_half_life_s.saturating_mul(1000)
    }

    /// The attestation half-life in milliseconds.
    pub fn attestation_half_life_ms(&self) -> u64 {
        self.attestation_half_life_s.saturating_mul(1000)
    }

    /// The attestation grace period in milliseconds.
    pub fn attestation_grace_ms(&self) -> u64 {
        self.attestation_grace_s.saturating_mul(1000)
    }

    /// The peer report interval in milliseconds.
    pub fn peer_report_interval_ms(&self) -> u64 {
        self.peer_report_interval_s.saturating_mul(1000)
    }

    /// The pseudo-evidence `(r0, s0)` (Q32.32) a new agent starts with: the
    /// least that scores exactly `initial_score` at registration when one
    /// does (docs/TRUST.md, "Registration"); [`Policy::check`] refuses a
    /// policy where none does.
    pub fn initial_evidence(&self) -> (u64, u64) {
        let s = self.initial_score;
        let at = |r, s| fixed::score(fixed::expectation(r, s), ONE);
        if s >= 50 {
            (least(|r| at(r, 0) >= s), 0)
        } else {
            (0, least(|x| at(0, x) <= s))
        }
    }

    /// Checks every range and the rules between members.
    pub fn check(&self) -> Result<(), PolicyError> {
        within(EVIDENCE_HALF_LIFE, self.evidence_half_life_s)?;
        within(ATTESTATION_HALF_LIFE, self.attestation_half_life_s)?;
        within(ATTESTATION_GRACE, self.attestation_grace_s)?;
        within(PEER_REPORT_INTERVAL, self.peer_report_interval_s)?;
        within(REVOCATION_THRESHOLD, self.revocation_threshold.into())?;
        within(INITIAL_SCORE, self.initial_score.into())?;
        range(INITIAL_SCORE, self.initial_score.into(), u64::from(self.revocation_threshold) + 1, INITIAL_SCORE.max)?;
        let l = &self.levels;
        within(MEDIUM_MIN, l.medium_min.into())?;
        range(LOW_MIN, l.low_min.into(), u64::from(l.medium_min) + 1, LOW_MIN.max)?;
        range(HYSTERESIS, l.hysteresis.into(), 0, 100 - u64::from(l.low_min))?;
        for (f, w) in self.weight_fields() {
            within(f, w.into())?;
        }
        let d = &self.drift;
        within(BUCKETS, d.buckets.into())?;
        within(BASELINE_EVENTS, d.baseline_events.into())?;
        within(WINDOW_EVENTS, d.window_events.into())?;
        within(MODERATE_MILLI, d.moderate_milli.into())?;
        range(SIGNIFICANT_MILLI, d.significant_milli.into(), d.moderate_milli.into(), SIGNIFICANT_MILLI.max)?;
        let (r0, s0) = self.initial_evidence();
        if fixed::score(fixed::expectation(r0, s0), ONE) != self.initial_score {
            return Err(PolicyError::InitialScoreUnreachable(self.initial_score));
        }
        Ok(())
    }

    /// Every weight with its member, in canonical nesting order.
    fn weight_fields(&self) -> [(Field, u32); 23] {
        let w = &self.weights;
        let sig = |kind: SignalKind, sev: Severity| (weight(signal_object(kind), sev.as_str()), w.signals.of(kind).of(sev));
        [
            (weight(ATTESTATION_W, "software_ok"), w.attestation.software_ok),
            (weight(ATTESTATION_W, "tpm_ok"), w.attestation.tpm_ok),
            (weight(ATTESTATION_W, "failed"), w.attestation.failed),
            (weight(DRIFT_W, "moderate"), w.drift.moderate),
            (weight(DRIFT_W, "significant"), w.drift.significant),
            sig(SignalKind::ThreatIntel, Severity::Low),
            sig(SignalKind::ThreatIntel, Severity::Medium),
            sig(SignalKind::ThreatIntel, Severity::High),
            sig(SignalKind::ThreatIntel, Severity::Critical),
            sig(SignalKind::Vulnerability, Severity::Low),
            sig(SignalKind::Vulnerability, Severity::Medium),
            sig(SignalKind::Vulnerability, Severity::High),
            sig(SignalKind::Vulnerability, Severity::Critical),
            sig(SignalKind::Siem, Severity::Low),
            sig(SignalKind::Siem, Severity::Medium),
            sig(SignalKind::Siem, Severity::High),
            sig(SignalKind::Siem, Severity::Critical),
            sig(SignalKind::Ueba, Severity::Low),
            sig(SignalKind::Ueba, Severity::Medium),
            sig(SignalKind::Ueba, Severity::High),
            sig(SignalKind::Ueba, Severity::Critical),
            (weight(PEER_W, "positive"), w.peer_report.positive),
            (weight(PEER_W, "negative"), w.peer_report.negative),
        ]
    }

    /// The policy's RFC 8785 canonical JSON bytes.
    pub fn to_canonical(&self) -> Vec<u8> {
        crate::canonical::to_canonical(&self.to_json())
    }

    /// SHA-256 of [`Policy::to_canonical`]: the policy's name in views and
    /// vectors.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.to_canonical()).into()
    }
}

/// The least `x` in `0..=CAP` with `pred(x)`, for a `pred` false then true
/// (`CAP` when none).
fn least(pred: impl Fn(u64) -> bool) -> u64 {
    if pred(0) {
        return 0;
    }
    let (mut lo, mut hi) = (0, CAP); // pred(lo) false; pred(hi) assumed
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}
