//! The policy's JSON form: the strict reader and the member-by-member
//! writer whose canonical bytes are hashed (docs/TRUST.md, "Policy").
#![deny(clippy::float_arithmetic)]

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::{Map, Value};

use super::*;

impl Policy {
    /// Reads a policy strictly: every member required, none unknown,
    /// integers only, every range and rule of [`Policy::check`].
    pub fn from_json(value: &Value) -> Result<Policy, PolicyError> {
        let mut top = Reader::new(value, Member::ROOT)?;
        let version = top.int(VERSION)?;
        if version != POLICY_VERSION {
            return Err(PolicyError::UnsupportedVersion(version));
        }
        let evidence_half_life_s = top.int(EVIDENCE_HALF_LIFE)?;
        let attestation_half_life_s = top.int(ATTESTATION_HALF_LIFE)?;
        let attestation_grace_s = top.int(ATTESTATION_GRACE)?;
        let peer_report_interval_s = top.int(PEER_REPORT_INTERVAL)?;
        let initial_score = top.narrow(INITIAL_SCORE)?;
        let revocation_threshold = top.narrow(REVOCATION_THRESHOLD)?;

        let mut lv = top.object(LEVELS)?;
        let levels = LevelBands { low_min: lv.narrow(LOW_MIN)?, medium_min: lv.narrow(MEDIUM_MIN)?, hysteresis: lv.narrow(HYSTERESIS)? };
        lv.finish()?;

        let mut wv = top.object(WEIGHTS)?;
        let mut a = wv.object_at(ATTESTATION_W, "attestation")?;
        let attestation = AttestationWeights {
            software_ok: a.narrow(weight(ATTESTATION_W, "software_ok"))?,
            tpm_ok: a.narrow(weight(ATTESTATION_W, "tpm_ok"))?,
            failed: a.narrow(weight(ATTESTATION_W, "failed"))?,
        };
        a.finish()?;
        let mut d = wv.object_at(DRIFT_W, "drift")?;
        let drift_w =
            DriftWeights { moderate: d.narrow(weight(DRIFT_W, "moderate"))?, significant: d.narrow(weight(DRIFT_W, "significant"))? };
        d.finish()?;
        let mut sv = wv.object_at(SIGNALS_W, "signals")?;
        let mut severities = |kind: SignalKind| -> Result<SeverityWeights, PolicyError> {
            let object = signal_object(kind);
            let mut k = sv.object_at(object, kind.as_str())?;
            let w = SeverityWeights {
                low: k.narrow(weight(object, "low"))?,
                medium: k.narrow(weight(object, "medium"))?,
                high: k.narrow(weight(object, "high"))?,
                critical: k.narrow(weight(object, "critical"))?,
            };
            k.finish()?;
            Ok(w)
        };
        let signals = SignalWeights {
            threat_intel: severities(SignalKind::ThreatIntel)?,
            vulnerability: severities(SignalKind::Vulnerability)?,
            siem: severities(SignalKind::Siem)?,
            ueba: severities(SignalKind::Ueba)?,
        };
        sv.finish()?;
        let mut p = wv.object_at(PEER_W, "peer_report")?;
        let peer_report =
            PeerReportWeights { positive: p.narrow(weight(PEER_W, "positive"))?, negative: p.narrow(weight(PEER_W, "negative"))? };
        p.finish()?;
        wv.finish()?;

        let mut dv = top.object(DRIFT)?;
        let drift = DriftParams {
            buckets: dv.narrow(BUCKETS)?,
            baseline_events: dv.narrow(BASELINE_EVENTS)?,
            window_events: dv.narrow(WINDOW_EVENTS)?,
            moderate_milli: dv.narrow(MODERATE_MILLI)?,
            significant_milli: dv.narrow(SIGNIFICANT_MILLI)?,
        };
        dv.finish()?;
        let tokens = match top.optional("tokens") {
            Some(v) => TokenPolicy::from_json(v)?,
            None => TokenPolicy::default(),
        };
        top.finish()?;

        let policy = Policy {
            evidence_half_life_s,
            attestation_half_life_s,
            attestation_grace_s,
            peer_report_interval_s,
            initial_score,
            revocation_threshold,
            levels,
            weights: Weights { attestation, drift: drift_w, signals, peer_report },
            drift,
            tokens,
        };
        policy.check()?;
        Ok(policy)
    }

    /// The policy as a JSON value, built member by member (the shape
    /// [`Policy::from_json`] reads).
    pub fn to_json(&self) -> Value {
        let n = |v: u64| Value::from(v);
        let obj = |members: &[(&str, Value)]| Value::Object(members.iter().map(|(k, v)| (k.to_string(), v.clone())).collect::<Map<_, _>>());
        let w = &self.weights;
        let sev = |s: &SeverityWeights| obj(&Severity::ALL.map(|x| (x.as_str(), n(s.of(x).into()))));
        let signals: Map<String, Value> = SignalKind::ALL.iter().map(|k| (k.as_str().to_string(), sev(w.signals.of(*k)))).collect();
        let mut policy = obj(&[
            ("version", n(POLICY_VERSION)),
            ("evidence_half_life_s", n(self.evidence_half_life_s)),
            ("attestation_half_life_s", n(self.attestation_half_life_s)),
            ("attestation_grace_s", n(self.attestation_grace_s)),
            ("peer_report_interval_s", n(self.peer_report_interval_s)),
            ("initial_score", n(self.initial_score.into())),
            ("revocation_threshold", n(self.revocation_threshold.into())),
            (
                "levels",
                obj(&[
                    ("low_min", n(self.levels.low_min.into())),
                    ("medium_min", n(self.levels.medium_min.into())),
                    ("hysteresis", n(self.levels.hysteresis.into())),
                ]),
            ),
            (
                "weights_milli",
                obj(&[
                    (
                        "attestation",
                        obj(&[
                            ("software_ok", n(w.attestation.software_ok.into())),
                            ("tpm_ok", n(w.attestation.tpm_ok.into())),
                            ("failed", n(w.attestation.failed.into())),
                        ]),
                    ),
                    ("drift", obj(&[("moderate", n(w.drift.moderate.into())), ("significant", n(w.drift.significant.into()))])),
                    ("signals", Value::Object(signals)),
                    ("peer_report", obj(&[("positive", n(w.peer_report.positive.into())), ("negative", n(w.peer_report.negative.into()))])),
                ]),
            ),
            (
                "drift",
                obj(&[
                    ("buckets", n(self.drift.buckets.into())),
                    ("baseline_events", n(self.drift.baseline_events.into())),
                    ("window_events", n(self.drift.window_events.into())),
                    ("moderate_milli", n(self.drift.moderate_milli.into())),
                    ("significant_milli", n(self.drift.significant_milli.into())),
                ]),
            ),
        ]);
        if self.tokens != TokenPolicy::default() {
            if let Value::Object(m) = &mut policy {
                m.insert("tokens".into(), self.tokens.to_json());
            }
        }
        policy
    }
}

/// Reads the members of one object, remembering their names so that an
/// unknown one is refused at [`Reader::finish`].
struct Reader<'a> {
    at: Member,
    map: &'a Map<String, Value>,
    read: Vec<&'static str>,
}

impl<'a> Reader<'a> {
    fn new(value: &'a Value, at: Member) -> Result<Self, PolicyError> {
        match value {
            Value::Object(map) => Ok(Self { at, map, read: Vec::new() }),
            _ => Err(PolicyError::NotAnObject(at)),
        }
    }

    fn get(&mut self, member: Member) -> Result<&'a Value, PolicyError> {
        let v = self.map.get(member.name).ok_or(PolicyError::Missing(member))?;
        self.read.push(member.name);
        Ok(v)
    }

    /// An optional member of this object, marked read.
    fn optional(&mut self, name: &'static str) -> Option<&'a Value> {
        let v = self.map.get(name)?;
        self.read.push(name);
        Some(v)
    }

    /// A nested object named `name` whose own dotted path is `path`.
    fn object_at(&mut self, path: &'static str, name: &'static str) -> Result<Reader<'a>, PolicyError> {
        let member = Member { object: self.object_path(), name };
        Reader::new(self.get(member)?, Member { object: path, name: "" })
    }

    /// A nested object of the top level.
    fn object(&mut self, name: &'static str) -> Result<Reader<'a>, PolicyError> {
        self.object_at(name, name)
    }

    fn object_path(&self) -> &'static str {
        self.at.object
    }

    /// An integer member within its fixed range.
    fn int(&mut self, f: Field) -> Result<u64, PolicyError> {
        let v = match self.get(f.member)? {
            Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(v), _) => v,
                (None, Some(v)) => {
                    return Err(PolicyError::OutOfRange { member: f.member, value: v.unsigned_abs(), min: f.min, max: f.max })
                }
                (None, None) => return Err(PolicyError::NotAnInteger(f.member)),
            },
            _ => return Err(PolicyError::NotAnInteger(f.member)),
        };
        within(f, v)?;
        Ok(v)
    }

    /// An integer member within its fixed range, in a narrower type.
    fn narrow<T: TryFrom<u64>>(&mut self, f: Field) -> Result<T, PolicyError> {
        let v = self.int(f)?;
        T::try_from(v).map_err(|_| PolicyError::OutOfRange { member: f.member, value: v, min: f.min, max: f.max })
    }

    /// Refuses a member that was not read: every member is required, so
    /// one left over is unknown.
    fn finish(self) -> Result<(), PolicyError> {
        match self.map.keys().find(|k| !self.read.contains(&k.as_str())) {
            Some(name) => Err(PolicyError::UnknownMember { within: self.at, name: name.clone() }),
            None => Ok(()),
        }
    }
}
