//! The entry kinds of the trust view: policies, sources, signals,
//! revocations, reinstatements and risk levels, read as the log stores
//! them and refused when malformed.
#![allow(clippy::unwrap_used)]

use ed25519_dalek::SigningKey;
use serde_json::{json, Map, Value};
use verifier::entry::signing::sign_entry;
use verifier::entry::{
    Assessment, Entry, EntryError, EntryKind, Form, Level, PolicyEntry, RevocationReason, ShapeError, Signal, SignalType, Signer, Subject,
};

const AGENT: &str = "spiffe://example.org/agent/a";
const PEER: &str = "spiffe://example.org/agent/b";

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn read(v: Value) -> Result<Entry, EntryError> {
    Entry::from_object(&obj(v), Form::Leaf)
}

fn shape(v: Value) -> ShapeError {
    match read(v) {
        Err(EntryError::Shape(e)) => e,
        other => panic!("expected a shape error, got {other:?}"),
    }
}

#[test]
fn a_policy_entry_carries_the_hash_of_its_canonical_policy() {
    let entry = PolicyEntry::new(obj(json!({"version": 1, "initial_score": 60})));
    let back = read(Value::Object(entry.to_object())).unwrap();
    assert!(matches!(back, Entry::Policy(ref p) if *p == entry));
    assert_eq!(back.agent(), None);
    let mut forged = entry.to_object();
    forged.insert("policy".into(), json!({"version": 1, "initial_score": 99}));
    assert_eq!(shape(Value::Object(forged)), ShapeError::PolicyHash);
}

#[test]
fn sources_are_named_keyed_and_limited_to_the_types_they_may_file() {
    let key = base64_key(&SigningKey::from_bytes(&[7; 32]));
    let ok = json!({"kind": "source", "source": "siem-1", "key": key, "types": ["ueba", "siem"]});
    let Entry::Source(source) = read(ok.clone()).unwrap() else { panic!() };
    assert_eq!(source.types, [SignalType::Siem, SignalType::Ueba]);
    assert_eq!(Value::Object(source.to_object())["types"], json!(["siem", "ueba"]));
    for (member, bad) in [
        ("source", json!("ledger")),
        ("source", json!("Upper")),
        ("source", json!("")),
        ("types", json!([])),
        ("types", json!(["drift"])),
        ("types", json!(["peer_report"])),
        ("types", json!(["siem", "siem"])),
        ("types", json!("siem")),
    ] {
        let mut v = ok.clone();
        v[member] = bad.clone();
        assert!(read(v).is_err(), "{member} = {bad}");
    }
}

fn base64_key(key: &SigningKey) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(key.verifying_key().as_bytes())
}

#[test]
fn signals_say_who_filed_them_and_whom_they_are_about() {
    let Entry::Signal(s) = read(json!({"kind": "signal", "source": "intel", "subject": {"code_hash": "ab".repeat(32)},
        "type": "threat_intel", "severity": "critical", "seq": 1, "signature": "x"}))
    .unwrap() else {
        panic!()
    };
    assert_eq!((s.signer.clone(), s.subject.clone()), (Signer::Source("intel".into()), Subject::CodeHash([0xab; 32])));
    let Entry::Signal(drift) = read(json!({"kind": "signal", "source": "ledger", "subject": AGENT, "type": "drift",
        "severity": "medium", "evidence": {"psi_milli": 120, "first_index": 3, "last_index": 9}}))
    .unwrap() else {
        panic!()
    };
    assert_eq!(drift.signer, Signer::Log);
    let peer = json!({"kind": "signal", "source": PEER, "subject": AGENT, "type": "peer_report", "severity": "low",
        "assessment": "negative", "seq": 4, "signature": "x"});
    let Entry::Signal(report) = read(peer.clone()).unwrap() else { panic!() };
    assert_eq!(report.assessment, Some(Assessment::Negative));
    for (member, bad) in [
        ("source", json!(AGENT)), // a report about oneself
        ("type", json!("siem")),  // an agent filing a source's type
        ("assessment", json!("meh")),
        ("subject", json!({"code_hash": "ab".repeat(32)})), // a peer report about code
        ("subject", json!(42)),
    ] {
        let mut v = peer.clone();
        v[member] = bad.clone();
        assert!(read(v).is_err(), "{member} = {bad}");
    }
    // The log's signals are unsigned and only drift; nobody submits one.
    let mut signed_drift = json!({"kind": "signal", "source": "ledger", "subject": AGENT, "type": "drift", "severity": "low"});
    assert!(Signal::from_submitted(&obj(signed_drift.clone())).is_err());
    signed_drift["seq"] = json!(1);
    assert_eq!(shape(signed_drift), ShapeError::SignalSigner);
    // A source's signal without a signature.
    assert_eq!(
        shape(json!({"kind": "signal", "source": "siem", "subject": AGENT, "type": "siem", "severity": "low"})),
        ShapeError::SignalSigner
    );
    // Signals are not submitted with entries.
    let mut submitted = obj(json!({"kind": "signal", "source": PEER, "subject": AGENT, "type": "peer_report",
        "severity": "low", "assessment": "positive", "seq": 1}));
    sign_entry(&mut submitted, "log", &SigningKey::from_bytes(&[1; 32]));
    assert!(matches!(Entry::from_object(&submitted, Form::Submitted), Err(EntryError::UnknownKind(_))));
    let Entry::Signal(s) = Entry::Signal(Signal::from_submitted(&submitted).unwrap()) else { panic!() };
    assert_eq!(s.signature.unwrap().seq, 1);
}

#[test]
fn revocations_reinstatements_and_risk_levels_round_trip() {
    let Entry::Revocation(r) = read(json!({"kind": "revocation", "agent": AGENT, "reason": "score", "score": 12,
        "threshold": 30, "causes": [4, 9], "policy_index": 0, "as_of_index": 9, "decided_at": 5}))
    .unwrap() else {
        panic!()
    };
    assert_eq!((r.reason, r.score, r.causes.as_slice()), (RevocationReason::Score, 12, &[4u64, 9][..]));
    // A revocation for a score says what it was decided on.
    assert_eq!(
        shape(json!({"kind": "revocation", "agent": AGENT, "reason": "score", "score": 12, "threshold": 30,
            "causes": [], "policy_index": 0})),
        ShapeError::Missing("as_of_index")
    );
    assert!(matches!(read(Value::Object(r.to_object())).unwrap(), Entry::Revocation(ref back) if *back == r));
    assert_eq!(
        shape(json!({"kind": "revocation", "agent": AGENT, "reason": "score", "score": 12, "threshold": 30,
            "causes": [9, 4], "policy_index": 0, "as_of_index": 9, "decided_at": 5})),
        ShapeError::Causes
    );
    assert_eq!(
        shape(json!({"kind": "revocation", "agent": AGENT, "reason": "score", "score": 101, "threshold": 30,
            "causes": [], "policy_index": 0, "as_of_index": 9, "decided_at": 5})),
        ShapeError::Score("score")
    );
    let Entry::Reinstatement(back) =
        read(json!({"kind": "reinstatement", "agent": AGENT, "attestation_index": 7, "note": "checked"})).unwrap()
    else {
        panic!()
    };
    assert_eq!(back.attestation_index, 7);
    let Entry::Risk(risk) = read(json!({"kind": "risk", "agent": AGENT, "previous": "low", "current": "medium",
        "score": 55, "policy_index": 0, "as_of_index": 3, "decided_at": 5}))
    .unwrap() else {
        panic!()
    };
    assert_eq!((risk.previous, risk.current), (Level::Low, Level::Medium));
    assert!(read(json!({"kind": "risk", "agent": AGENT, "previous": "low", "current": "low", "score": 80, "policy_index": 0, "as_of_index": 3, "decided_at": 5})).is_err());
    for kind in [EntryKind::Policy, EntryKind::Revocation, EntryKind::Risk] {
        assert!(!kind.is_agent_signed());
    }
}
