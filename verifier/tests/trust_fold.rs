//! Properties of the trust and drift folds over random policies, event
//! sequences and read times (docs/TRUST.md): scores stay in range and never
//! rise between events, crossings are exact, evidence moves the score its
//! own way, and a state written and read back in the middle of a sequence
//! (a restart of the log's view) folds on exactly as if it never stopped.
//! Also the policy's strict reader.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use serde_json::{json, Value};
use verifier::fold::drift::{psi_milli, DriftState};
use verifier::fold::policy::{Member, Policy, PolicyError};
use verifier::fold::trust::{AgentTrust, Evidence, Level, Severity, SignalKind, StateError};

#[derive(Clone, Debug)]
enum Op {
    Apply { dt: u64, back: u64, evidence: Evidence },
    Revoke { dt: u64 },
    Reinstate { dt: u64 },
    SetLevel(Level),
}

fn evidence() -> impl Strategy<Value = Evidence> {
    let kind = prop::sample::select(SignalKind::ALL.to_vec());
    let severity = prop::sample::select(Severity::ALL.to_vec());
    prop_oneof![
        (any::<bool>(), any::<bool>()).prop_map(|(ok, tpm)| Evidence::Attestation { ok, tpm }),
        any::<bool>().prop_map(|significant| Evidence::Drift { significant }),
        (kind, severity).prop_map(|(kind, severity)| Evidence::Signal { kind, severity }),
        (any::<bool>(), 0u8..=120).prop_map(|(positive, reporter_score)| Evidence::PeerReport { positive, reporter_score }),
    ]
}

/// Gaps from none to many half-lives of any policy below.
fn gap() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), 0u64..5_000, 0u64..50_000_000, 0u64..20_000_000_000]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (gap(), prop_oneof![3 => Just(0u64), 1 => 0u64..100_000], evidence()).prop_map(|(dt, back, evidence)| Op::Apply { dt, back, evidence }),
        1 => gap().prop_map(|dt| Op::Revoke { dt }),
        1 => gap().prop_map(|dt| Op::Reinstate { dt }),
        1 => prop::sample::select(Level::ALL.to_vec()).prop_map(Op::SetLevel),
    ]
}

fn policy() -> impl Strategy<Value = Policy> {
    let half_life = prop::sample::select(vec![1u64, 60, 1024, 86_400, 2_592_000]);
    let weight = prop_oneof![Just(0u32), 1u32..10_000];
    (
        (half_life.clone(), half_life, prop::sample::select(vec![0u64, 60, 86_400])),
        (1u8..=99, 0u8..=99),
        (1u8..=98, 1u8..=99, 0u8..=20),
        prop::collection::vec(weight, 9),
    )
        .prop_map(|((he, ha, grace), (initial, revocation), (medium, gap, hysteresis), w)| {
            let mut p = Policy::default();
            (p.evidence_half_life_s, p.attestation_half_life_s, p.attestation_grace_s) = (he, ha, grace);
            p.initial_score = initial;
            p.revocation_threshold = revocation.min(initial - 1);
            p.levels.medium_min = medium;
            p.levels.low_min = medium.saturating_add(gap).min(100).max(medium + 1);
            p.levels.hysteresis = hysteresis.min(100 - p.levels.low_min);
            let a = &mut p.weights.attestation;
            (a.software_ok, a.tpm_ok, a.failed) = (w[0], w[1], w[2]);
            (p.weights.drift.moderate, p.weights.drift.significant) = (w[3], w[4]);
            p.weights.signals.siem.high = w[5];
            p.weights.signals.ueba.low = w[6];
            (p.weights.peer_report.positive, p.weights.peer_report.negative) = (w[7], w[8]);
            p
        })
        .prop_filter("a valid policy", |p| p.check().is_ok())
}

const START: u64 = 1_700_000_000_000;

/// Applies one op at the running time `now` (advanced by the op's gap).
fn step(t: &mut AgentTrust, p: &Policy, index: u64, now: &mut u64, op: &Op) {
    match op {
        Op::Apply { dt, back, evidence } => {
            *now += dt;
            t.apply(p, index, now.saturating_sub(*back), evidence);
        }
        Op::Revoke { dt } => {
            *now += dt;
            t.revoke(index, *now);
        }
        Op::Reinstate { dt } => {
            *now += dt;
            t.reinstate(p, index, *now);
        }
        Op::SetLevel(level) => t.set_level(*level),
    }
}

fn fold(p: &Policy, ops: &[Op]) -> (AgentTrust, u64) {
    let mut now = START;
    let mut t = AgentTrust::register(p, 0, now);
    for (i, op) in ops.iter().enumerate() {
        step(&mut t, p, i as u64 + 1, &mut now, op);
    }
    (t, now)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn scores_never_rise_between_events_and_crossings_are_exact(
        p in policy(),
        ops in prop::collection::vec(op(), 0..40),
        reads in prop::collection::vec((gap(), gap(), 0u8..=101), 1..6),
    ) {
        let mut now = START;
        let mut t = AgentTrust::register(&p, 0, now);
        prop_assert_eq!(t.score(&p, now), p.initial_score);
        for (i, op) in ops.iter().enumerate() {
            step(&mut t, &p, i as u64 + 1, &mut now, op);
            for &(a, b, threshold) in &reads {
                // Reads before the last event included: a state's score never rises with time.
                let (t1, t2) = (now.saturating_sub(a / 4), now.saturating_sub(a / 4).saturating_add(b));
                let (s1, s2) = (t.score(&p, t1), t.score(&p, t2));
                prop_assert!(s1 <= 100 && s2 <= s1, "score({t1}) = {s1}, score({t2}) = {s2}");
                match t.crossing(&p, t1, threshold) {
                    Some(c) => {
                        prop_assert!(c >= t1 && t.score(&p, c) < threshold);
                        prop_assert!(c == t1 || t.score(&p, c - 1) >= threshold, "crossing {c} is late");
                    }
                    None => prop_assert!(threshold == 0 || t.score(&p, u64::MAX) >= threshold),
                }
                let level = t.level();
                match t.level_crossing(&p, t1) {
                    Some(c) => {
                        prop_assert!(t.target_level(&p, c) > level);
                        prop_assert!(c == t1 || t.target_level(&p, c - 1) <= level);
                    }
                    None => prop_assert!(level == Level::High || t.target_level(&p, u64::MAX) <= level),
                }
            }
        }
    }

    #[test]
    fn evidence_moves_the_score_its_own_way(p in policy(), ops in prop::collection::vec(op(), 1..40)) {
        let mut now = START;
        let mut t = AgentTrust::register(&p, 0, now);
        for (i, op) in ops.iter().enumerate() {
            let Op::Apply { dt, back, evidence } = op else {
                step(&mut t, &p, i as u64 + 1, &mut now, op);
                continue;
            };
            now += dt;
            let at = now.saturating_sub(*back).max(t.evidence().3);
            let before = t.score(&p, at);
            t.apply(&p, i as u64 + 1, now.saturating_sub(*back), evidence);
            let after = t.score(&p, at);
            match evidence.weights_milli(&p) {
                (0, 0) => {}
                (_, 0) => prop_assert!(after >= before, "{evidence:?} lowered {before} to {after}"),
                _ => prop_assert!(after <= before, "{evidence:?} raised {before} to {after}"),
            }
        }
    }

    #[test]
    fn a_restart_anywhere_folds_on_as_if_nothing_happened(p in policy(), ops in prop::collection::vec(op(), 0..40), split in any::<prop::sample::Index>()) {
        let (whole, _) = fold(&p, &ops);
        let k = split.index(ops.len() + 1);
        let mut now = START;
        let mut t = AgentTrust::register(&p, 0, now);
        for (i, op) in ops.iter().enumerate() {
            if i == k {
                let bytes = t.to_bytes();
                t = AgentTrust::from_bytes(&bytes).unwrap();
                prop_assert_eq!(t.to_bytes(), bytes);
            }
            step(&mut t, &p, i as u64 + 1, &mut now, op);
        }
        prop_assert_eq!(&t, &whole);
        prop_assert_eq!(AgentTrust::from_bytes(&whole.to_bytes()).unwrap(), whole);
    }

    #[test]
    fn stored_trust_is_read_canonically_or_refused(p in policy(), ops in prop::collection::vec(op(), 0..20), at in any::<prop::sample::Index>(), xor in 1u8..=255, junk in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut bytes = fold(&p, &ops).0.to_bytes();
        let i = at.index(bytes.len());
        bytes[i] ^= xor;
        for b in [bytes, junk] {
            if let Ok(t) = AgentTrust::from_bytes(&b) {
                prop_assert_eq!(t.to_bytes(), b);
            }
        }
    }

    #[test]
    fn drift_restarts_change_nothing(
        buckets in 1u16..16, baseline in 1u32..40, window in 1u32..30,
        seq in prop::collection::vec(0u16..20, 0..300), split in any::<prop::sample::Index>(),
    ) {
        let mut p = Policy::default();
        p.drift.buckets = buckets;
        p.drift.baseline_events = baseline;
        p.drift.window_events = window;
        let mut whole = DriftState::new(&p);
        let expected: Vec<_> = seq.iter().enumerate().filter_map(|(i, b)| whole.observe(&p, i as u64, *b)).collect();
        let k = split.index(seq.len() + 1);
        let mut d = DriftState::new(&p);
        let mut found = Vec::new();
        for (i, b) in seq.iter().enumerate() {
            if i == k {
                d = DriftState::from_bytes(&d.to_bytes()).unwrap();
            }
            found.extend(d.observe(&p, i as u64, *b));
        }
        prop_assert_eq!(&found, &expected);
        prop_assert_eq!(&d, &whole);
        for f in &found {
            prop_assert!(f.psi_milli >= u64::from(p.drift.moderate_milli));
            prop_assert_eq!(f.last_index - f.first_index + 1, u64::from(window));
        }
    }

    #[test]
    fn stored_drift_is_read_canonically_or_refused(junk in prop::collection::vec(any::<u8>(), 0..120), at in any::<prop::sample::Index>(), xor in 1u8..=255) {
        let mut p = Policy::default();
        p.drift.buckets = 4;
        let mut d = DriftState::new(&p);
        for i in 0..1100u64 {
            d.observe(&p, i, (i % 3) as u16);
        }
        let mut bytes = d.to_bytes();
        let i = at.index(bytes.len());
        bytes[i] ^= xor;
        for b in [bytes, junk] {
            if let Ok(d) = DriftState::from_bytes(&b) {
                prop_assert_eq!(d.to_bytes(), b);
            }
        }
    }

    #[test]
    fn folds_never_panic_on_an_unchecked_policy(
        halves in (any::<u64>(), any::<u64>(), any::<u64>()), scores in any::<(u8, u8, u8, u8, u8)>(),
        w in any::<(u32, u32, u32)>(), drift in any::<(u16, u32, u32)>(),
        ops in prop::collection::vec(op(), 0..20), reads in prop::collection::vec(any::<u64>(), 0..4),
    ) {
        let mut p = Policy::default();
        (p.evidence_half_life_s, p.attestation_half_life_s, p.attestation_grace_s) = halves;
        (p.initial_score, p.revocation_threshold, p.levels.low_min, p.levels.medium_min, p.levels.hysteresis) = scores;
        (p.weights.attestation.tpm_ok, p.weights.attestation.failed, p.weights.peer_report.positive) = w;
        (p.drift.buckets, p.drift.baseline_events, p.drift.window_events) = (drift.0, drift.1 % 64, drift.2 % 64);
        let (t, _) = fold(&p, &ops);
        for r in reads {
            let _ = (t.components(&p, r), t.target_level(&p, r), t.crossing(&p, r, (r % 101) as u8), t.level_crossing(&p, r));
        }
        let mut d = DriftState::new(&p);
        for i in 0..200u64 {
            d.observe(&p, i, (i * 7919 % 65_521) as u16);
        }
    }

    #[test]
    fn psi_is_zero_for_a_window_with_the_baselines_shares(counts in prop::collection::vec(0u32..50, 1..64), scale in 1u32..8) {
        let baseline: Vec<u32> = counts.iter().map(|c| c * scale).collect();
        prop_assert_eq!(psi_milli(&baseline, &counts), 0);
    }
}

// ---------------------------------------------------------------- policy

fn default_json() -> Value {
    Policy::default().to_json()
}

/// Every member of the policy: (enclosing object path, name).
fn members(value: &Value, path: &str, out: &mut Vec<(String, String)>) {
    if let Value::Object(map) = value {
        for (k, v) in map {
            out.push((path.to_string(), k.clone()));
            let inner = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
            members(v, &inner, out);
        }
    }
}

fn at<'a>(value: &'a mut Value, path: &str) -> &'a mut serde_json::Map<String, Value> {
    let mut v = value;
    for k in path.split('.').filter(|k| !k.is_empty()) {
        v = v.get_mut(k).unwrap();
    }
    v.as_object_mut().unwrap()
}

fn set(path: &str, name: &str, value: Value) -> Result<Policy, PolicyError> {
    let mut v = default_json();
    at(&mut v, path).insert(name.into(), value);
    Policy::from_json(&v)
}

fn range_error(r: Result<Policy, PolicyError>) -> (String, u64, u64, u64) {
    match r {
        Err(PolicyError::OutOfRange { member, value, min, max }) => (member.to_string(), value, min, max),
        other => panic!("expected OutOfRange, got {other:?}"),
    }
}

#[test]
fn the_default_policy_reads_back_and_checks() {
    let p = Policy::default();
    p.check().unwrap();
    assert_eq!(Policy::from_json(&default_json()).unwrap(), p);
    assert_eq!(p.initial_evidence(), (2_147_483_651, 0), "docs/TRUST.md, Registration");
    let mut other = p.clone();
    other.weights.signals.ueba.critical += 1;
    assert_ne!(other.hash(), p.hash());
}

#[test]
fn every_member_is_required() {
    let mut all = Vec::new();
    members(&default_json(), "", &mut all);
    assert_eq!(all.len(), 10 + 3 + 4 + 3 + 2 + 4 + 16 + 2 + 5);
    for (path, name) in all {
        let mut v = default_json();
        at(&mut v, &path).remove(&name);
        match Policy::from_json(&v) {
            Err(PolicyError::Missing(m)) => assert_eq!((m.object, m.name), (path.as_str(), name.as_str())),
            other => panic!("{path}.{name} removed: {other:?}"),
        }
    }
}

#[test]
fn no_member_is_unknown() {
    let mut objects = vec![String::new()];
    let mut all = Vec::new();
    members(&default_json(), "", &mut all);
    objects.extend(all.iter().filter(|(p, n)| at(&mut default_json(), p)[n.as_str()].is_object()).map(|(p, n)| {
        if p.is_empty() {
            n.clone()
        } else {
            format!("{p}.{n}")
        }
    }));
    assert_eq!(objects.len(), 12);
    for path in objects {
        match set(&path, "half_life", json!(1)) {
            Err(PolicyError::UnknownMember { within, name }) => {
                assert_eq!((within.object, name.as_str()), (path.as_str(), "half_life"));
            }
            other => panic!("unknown member in {path:?}: {other:?}"),
        }
    }
}

#[test]
fn values_are_non_negative_integers_of_the_right_shape() {
    let m = |object, name| Member { object, name };
    assert_eq!(set("", "initial_score", json!(60.5)), Err(PolicyError::NotAnInteger(m("", "initial_score"))));
    assert_eq!(set("", "initial_score", json!(6e1)), Err(PolicyError::NotAnInteger(m("", "initial_score"))));
    assert_eq!(set("", "initial_score", json!("60")), Err(PolicyError::NotAnInteger(m("", "initial_score"))));
    assert_eq!(set("levels", "hysteresis", json!(null)), Err(PolicyError::NotAnInteger(m("levels", "hysteresis"))));
    assert_eq!(range_error(set("levels", "hysteresis", json!(-1))), ("\"levels.hysteresis\"".into(), 1, 0, 98));
    assert_eq!(set("", "levels", json!([])), Err(PolicyError::NotAnObject(m("levels", ""))));
    assert_eq!(Policy::from_json(&json!(1)), Err(PolicyError::NotAnObject(Member::ROOT)));
    assert_eq!(set("", "version", json!(2)), Err(PolicyError::UnsupportedVersion(2)));
}

#[test]
fn ranges_and_the_rules_between_members() {
    let w = "weights_milli.signals.threat_intel";
    assert_eq!(range_error(set("", "evidence_half_life_s", json!(0))), ("\"evidence_half_life_s\"".into(), 0, 1, u32::MAX.into()));
    assert_eq!(range_error(set(w, "critical", json!(1_000_001))), (format!("\"{w}.critical\""), 1_000_001, 0, 1_000_000));
    assert_eq!(range_error(set("", "initial_score", json!(100))), ("\"initial_score\"".into(), 100, 1, 99));
    assert_eq!(range_error(set("", "initial_score", json!(30))), ("\"initial_score\"".into(), 30, 31, 99), "above revocation");
    assert_eq!(range_error(set("levels", "low_min", json!(40))), ("\"levels.low_min\"".into(), 40, 41, 100));
    assert_eq!(range_error(set("levels", "hysteresis", json!(31))), ("\"levels.hysteresis\"".into(), 31, 0, 30));
    assert_eq!(range_error(set("drift", "buckets", json!(1025))), ("\"drift.buckets\"".into(), 1025, 2, 1024));
    assert_eq!(range_error(set("drift", "significant_milli", json!(99))), ("\"drift.significant_milli\"".into(), 99, 100, 1_000_000));
    assert_eq!(range_error(set("drift", "window_events", json!(0))), ("\"drift.window_events\"".into(), 0, 1, 1 << 20));
    let e = set("levels", "low_min", json!(40)).unwrap_err();
    assert_eq!(e.to_string(), "\"levels.low_min\" is 40, outside 41..=100");
    assert_eq!(set("", "vesion", json!(1)).unwrap_err().to_string(), "the policy has an unknown member \"vesion\"");
}

#[test]
fn every_initial_score_is_reached_exactly() {
    for s in 1..=99u8 {
        let mut p = Policy::default();
        (p.initial_score, p.revocation_threshold) = (s, 0);
        p.check().unwrap();
        let t = AgentTrust::register(&p, 0, 0);
        assert_eq!(t.score(&p, 0), s);
        assert_eq!(t.level(), Level::band(&p, s));
    }
}

#[test]
fn state_errors_are_typed() {
    assert_eq!(AgentTrust::from_bytes(&[]), Err(StateError::Length { expected: 156, found: 0 }));
    assert_eq!(DriftState::from_bytes(&[2, 0, 0]), Err(StateError::Length { expected: 19, found: 3 }));
    assert_eq!(DriftState::from_bytes(&[1, 0, 0]), Err(StateError::Version(1)));
}
