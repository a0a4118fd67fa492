//! Unit tests of the trust fold.
#![allow(clippy::unwrap_used)]
use super::*;
use crate::fold::fixed::ONE;

/// 50 to start (no pseudo-evidence), evidence half-life 1024 s, fresh
/// for 10^6 s, then halving every 1024 s.
fn policy() -> Policy {
    let p = Policy {
        initial_score: 50,
        evidence_half_life_s: 1024,
        attestation_half_life_s: 1024,
        attestation_grace_s: 1_000_000,
        ..Policy::default()
    };
    p.check().unwrap();
    p
}

const TPM_OK: Evidence = Evidence::Attestation { ok: true, tpm: true };
const FAILED: Evidence = Evidence::Attestation { ok: false, tpm: false };
const H: u64 = 1_024_000;

#[test]
fn one_half_life_halves_the_evidence() {
    let p = policy();
    let mut a = AgentTrust::register(&p, 0, 0);
    assert_eq!(a.score(&p, 0), 50);
    a.apply(&p, 1, 0, &TPM_OK); // r = 2: E = 3/4
    assert_eq!(a.evidence(), (2 * ONE, 0, 3 * ONE / 4, 0));
    assert_eq!(a.score(&p, 0), 75);
    // One half-life later r = 1 and E = 2/3 when read ...
    assert_eq!(a.components(&p, H).evidence_for_milli, 1000);
    assert_eq!(a.score(&p, H), 66);
    // ... and when folded into the next event.
    a.apply(&p, 2, H, &Evidence::Signal { kind: SignalKind::Siem, severity: Severity::Medium });
    assert_eq!(a.evidence(), (ONE, ONE, ONE / 2, H));
    assert_eq!(a.score(&p, H), 50);
    assert_eq!(a.recent(), &[0, 1, 2]);
}

#[test]
fn waiting_never_raises_a_low_expectation() {
    let p = policy();
    let mut a = AgentTrust::register(&p, 0, 0);
    a.apply(&p, 1, 0, &FAILED); // s = 4: E = 1/6
    assert_eq!(a.score(&p, 0), 16);
    // Plain Beta forgetting would drift back to 1/2; the read stays.
    assert_eq!(a.score(&p, 10 * H), 16);
    // A failed attestation after the wait lowers the score, although the
    // decayed evidence alone (s ≈ 0.004) says about 1/2.
    a.apply(&p, 2, 10 * H, &FAILED);
    assert!(a.score(&p, 10 * H) < 16);
}

#[test]
fn revocation_scores_zero_until_reinstated() {
    let p = Policy::default();
    let mut a = AgentTrust::register(&p, 3, 1000);
    assert_eq!((a.score(&p, 1000), a.level()), (60, Level::Medium));
    a.revoke(9, 2000);
    assert_eq!(a.score(&p, 2000), 0);
    assert_eq!(a.crossing(&p, 2500, 1), Some(2500));
    assert_eq!(a.target_level(&p, 2000), Level::High);
    a.reinstate(&p, 12, 5000);
    assert_eq!(a.score(&p, 5000), 60);
    assert_eq!(a.recent(), &[3, 9, 12]);
    assert_eq!(a.components(&p, 5000).revoked, None);
}

#[test]
fn levels_fall_at_once_and_rise_with_hysteresis() {
    let p = Policy::default();
    let t = |from: Level, score| from.target(&p, score);
    assert_eq!((t(Level::Low, 70), t(Level::Low, 69), t(Level::Low, 39)), (Level::Low, Level::Medium, Level::High));
    assert_eq!(
        (t(Level::High, 44), t(Level::High, 45), t(Level::High, 74), t(Level::High, 75)),
        (Level::High, Level::Medium, Level::Medium, Level::Low)
    );
    assert_eq!((t(Level::Medium, 74), t(Level::Medium, 75), t(Level::Medium, 40)), (Level::Medium, Level::Low, Level::Medium));
}

#[test]
fn crossings_are_exact_on_half_lives() {
    let p = policy();
    let a = AgentTrust::register(&p, 0, 0);
    // F halves one half-life after the grace: 50·½ = 25 is still 25;
    // the next table step (H/256 = 4000 ms later) is below.
    let grace = 1_000_000_000;
    assert_eq!(a.score(&p, grace + H), 25);
    assert_eq!(a.crossing(&p, 0, 25), Some(grace + H + 4000));
    assert_eq!(a.crossing(&p, 0, 0), None);
    assert_eq!(a.crossing(&p, 0, 51), Some(0));
    // Medium falls below 40 when 50·F < 40: 2^(−i/256) < 0.8 first at i = 83.
    assert_eq!(a.level(), Level::Medium);
    assert_eq!(a.level_crossing(&p, 0), Some(grace + 83 * 4000));
}

#[test]
fn bytes_round_trip_and_refuse_what_the_fold_cannot_make() {
    let p = Policy::default();
    let mut a = AgentTrust::register(&p, 1, 10);
    a.apply(&p, 2, 20, &TPM_OK);
    a.revoke(3, 30);
    let bytes = a.to_bytes();
    assert_eq!(bytes.len(), TRUST_STATE_LEN);
    assert_eq!(AgentTrust::from_bytes(&bytes).unwrap(), a);
    for (at, value, err) in [
        (0, 2, StateError::Version(2)),
        (1, 4, StateError::Invalid("flags")),
        (2, 3, StateError::Invalid("level")),
        (3, 9, StateError::Invalid("recent indices")),
    ] {
        let mut b = bytes.clone();
        b[at] = value;
        assert_eq!(AgentTrust::from_bytes(&b), Err(err));
    }
    let mut b = bytes.clone();
    b[1] = 0b10; // no attestation, yet its fields are set
    assert_eq!(AgentTrust::from_bytes(&b), Err(StateError::Invalid("last attestation")));
    let mut b = bytes.clone();
    b[4 + 16..4 + 24].copy_from_slice(&ONE.to_be_bytes()); // e = 1.0 > E(r, s)
    assert_eq!(AgentTrust::from_bytes(&b), Err(StateError::Invalid("expectation")));
    assert_eq!(AgentTrust::from_bytes(&bytes[..100]), Err(StateError::Length { expected: TRUST_STATE_LEN, found: 100 }));
}
