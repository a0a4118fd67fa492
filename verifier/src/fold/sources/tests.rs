//! Unit tests of the sources fold.
#![allow(clippy::unwrap_used)]
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use serde_json::{json, Map};

use super::*;
use crate::entry::signing::sign_entry;

const ORIGIN: &str = "log.example";
const AGENT: &str = "spiffe://example.org/agent/a";
const PEER: &str = "spiffe://example.org/agent/b";

fn leaf(mut members: Map<String, Value>) -> Leaf {
    members.insert("integrated_time".into(), Value::from(5u64));
    members.insert("v".into(), Value::from(LEAF_VERSION));
    let bytes = crate::canonical::to_canonical(&Value::Object(members));
    Leaf::decode_in(&bytes, Form::Audit).unwrap().0
}

fn object(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn source(name: &str, key: &SigningKey, types: &[&str]) -> Leaf {
    leaf(object(json!({"kind": "source", "source": name, "key": B64.encode(key.verifying_key().as_bytes()), "types": types})))
}

fn signal(source: &str, subject: Value, signal_type: &str, seq: u64, key: &SigningKey) -> Leaf {
    let mut m = object(json!({"kind": "signal", "source": source, "subject": subject, "type": signal_type,
        "severity": "high", "seq": seq}));
    if signal_type == "peer_report" {
        m.insert("assessment".into(), Value::from("negative"));
    }
    sign_entry(&mut m, ORIGIN, key);
    leaf(m)
}

fn passport(agent: &str, key: &SigningKey) -> Leaf {
    leaf(object(json!({"kind": "passport", "agent": agent, "public_key": B64.encode(key.verifying_key().as_bytes()),
        "code_hash": "ab".repeat(32), "owner": "o", "purpose": "p"})))
}

/// An auditor's fold: the registry and the sources side by side.
struct Audit {
    agents: Registry,
    sources: Sources,
    next: u64,
}

impl Audit {
    fn new() -> Self {
        Self { agents: Registry::new(ORIGIN), sources: Sources::new(ORIGIN), next: 0 }
    }

    fn apply(&mut self, leaf: &Leaf) -> Result<Applied, SourceError> {
        let index = self.next;
        let before = self.agents.clone();
        if let Err(e) = self.agents.apply_leaf(index, leaf) {
            panic!("the registry refuses entry {index}: {e}");
        }
        let applied = self.sources.apply_leaf(index, leaf, &self.agents);
        if applied.is_err() {
            self.agents = before;
        } else {
            self.next += 1;
        }
        applied
    }
}

#[test]
fn a_source_files_the_types_it_was_registered_for_with_increasing_seqs() {
    let key = SigningKey::from_bytes(&[7; 32]);
    let mut audit = Audit::new();
    audit.apply(&passport(AGENT, &SigningKey::from_bytes(&[1; 32]))).unwrap();
    assert_eq!(audit.apply(&source("siem-1", &key, &["siem", "threat_intel"])), Ok(Applied::Registered));
    assert_eq!(audit.apply(&signal("siem-1", json!(AGENT), "siem", 1, &key)), Ok(Applied::Filed { seq: 1 }));
    assert_eq!(
        audit.apply(&signal("siem-1", json!({"code_hash": "cd".repeat(32)}), "threat_intel", 5, &key)),
        Ok(Applied::Filed { seq: 5 })
    );
    let refusals = [
        (signal("siem-1", json!(AGENT), "siem", 5, &key), SourceError::Replayed { name: "siem-1".into(), seq: 5, last: 5 }),
        (
            signal("siem-1", json!(AGENT), "ueba", 6, &key),
            SourceError::TypeNotAllowed { name: "siem-1".into(), signal_type: SignalType::Ueba },
        ),
        (signal("siem-1", json!(AGENT), "siem", 6, &SigningKey::from_bytes(&[8; 32])), SourceError::BadSignature { name: "siem-1".into() }),
        (signal("feed", json!(AGENT), "siem", 1, &key), SourceError::UnknownSource("feed".into())),
        (signal("siem-1", json!(PEER), "siem", 6, &key), SourceError::UnknownSubject(PEER.parse().unwrap())),
    ];
    for (leaf, refusal) in refusals {
        assert_eq!(audit.apply(&leaf), Err(refusal));
    }
    assert_eq!(audit.sources.get("siem-1").unwrap().last_seq, 5, "refusals change nothing");
    // A forged signature in a leaf is refused offline whatever the seq.
    let mut forged = signal("siem-1", json!(AGENT), "siem", 9, &key);
    forged.members.insert("severity".into(), Value::from("low"));
    assert_eq!(audit.apply(&forged), Err(SourceError::BadSignature { name: "siem-1".into() }));
}

/// Re-registering a name replaces its key and types from that index
/// on and keeps its last sequence number: a signal signed before the
/// replacement is never taken after it, under the old key nor under
/// the same key re-registered.
#[test]
fn a_replacement_keeps_the_sequence_numbers() {
    let (old, new) = (SigningKey::from_bytes(&[7; 32]), SigningKey::from_bytes(&[9; 32]));
    let mut audit = Audit::new();
    audit.apply(&passport(AGENT, &SigningKey::from_bytes(&[1; 32]))).unwrap();
    audit.apply(&source("intel", &old, &["threat_intel"])).unwrap();
    let first = signal("intel", json!(AGENT), "threat_intel", 3, &old);
    audit.apply(&first).unwrap();
    assert_eq!(audit.apply(&source("intel", &old, &["threat_intel", "vulnerability"])), Ok(Applied::Replaced));
    let state = audit.sources.get("intel").unwrap();
    assert_eq!((state.registered_index, state.key_index, state.last_seq), (1, 3, 3));
    assert_eq!(audit.apply(&first), Err(SourceError::Replayed { name: "intel".into(), seq: 3, last: 3 }));
    audit.apply(&source("intel", &new, &["vulnerability"])).unwrap();
    assert_eq!(
        audit.apply(&signal("intel", json!(AGENT), "vulnerability", 4, &old)),
        Err(SourceError::BadSignature { name: "intel".into() })
    );
    assert_eq!(audit.apply(&signal("intel", json!(AGENT), "vulnerability", 4, &new)), Ok(Applied::Filed { seq: 4 }));
}

#[test]
fn subjects_must_be_registered_and_active_and_peer_reports_are_the_registrys() {
    let (a, b) = (SigningKey::from_bytes(&[1; 32]), SigningKey::from_bytes(&[2; 32]));
    let mut audit = Audit::new();
    audit.apply(&passport(AGENT, &a)).unwrap();
    audit.apply(&passport(PEER, &b)).unwrap();
    assert_eq!(audit.apply(&signal(PEER, json!(AGENT), "peer_report", 1, &b)), Ok(Applied::Reported));
    assert_eq!(audit.agents.get(&PEER.parse().unwrap()).unwrap().last_seq, 1, "the reporter's seq is the registry's");
    audit.apply(&leaf(object(json!({"kind": "retirement", "agent": AGENT, "reason": "done"})))).unwrap();
    assert_eq!(audit.apply(&signal(PEER, json!(AGENT), "peer_report", 2, &b)), Err(SourceError::RetiredSubject(AGENT.parse().unwrap())));
    // The log's own signals are not the sources fold's.
    let drift = leaf(object(json!({"kind": "signal", "source": "ledger", "subject": PEER, "type": "drift", "severity": "low"})));
    assert_eq!(audit.apply(&drift), Ok(Applied::Unchanged));
}

#[test]
fn weak_keys_and_unsigned_signals_are_refused() {
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let weak = json!({"kind": "source", "source": "weak", "key": B64.encode(identity), "types": ["siem"]});
    let mut audit = Audit::new();
    assert_eq!(audit.apply(&leaf(object(weak))), Err(SourceError::WeakKey { name: "weak".into() }));
    assert!(audit.sources.get("weak").is_none());
    // A signal read without its signature is not taken as signed.
    let key = SigningKey::from_bytes(&[7; 32]);
    audit.apply(&source("intel", &key, &["threat_intel"])).unwrap();
    let signed = signal("intel", json!({"code_hash": "cd".repeat(32)}), "threat_intel", 1, &key);
    let unread = Entry::from_object(&signed.members, Form::Leaf).unwrap();
    assert_eq!(audit.sources.apply(1, &unread, &audit.agents), Err(SourceError::Unsigned));
    assert_eq!(audit.apply(&signed), Ok(Applied::Filed { seq: 1 }));
}

/// The log's replay of its own leaves goes through the same rules
/// without checking signatures again, and reaches the auditor's state.
#[test]
fn the_logs_replay_reaches_the_auditors_state() {
    let key = SigningKey::from_bytes(&[7; 32]);
    let leaves = [
        passport(AGENT, &SigningKey::from_bytes(&[1; 32])),
        source("ueba", &key, &["ueba"]),
        signal("ueba", json!(AGENT), "ueba", 2, &key),
        source("ueba", &key, &["ueba", "siem"]),
        signal("ueba", json!(AGENT), "siem", 4, &key),
    ];
    let mut audit = Audit::new();
    let mut replayed: BTreeMap<String, SourceState> = BTreeMap::new();
    for (i, l) in leaves.iter().enumerate() {
        audit.apply(l).unwrap();
        let decoded = Leaf::decode(&crate::canonical::to_canonical(&leaf_value(l))).unwrap().0;
        if let Some((name, state)) = replay(&decoded, i as u64, |n| replayed.get(n).cloned()).unwrap() {
            replayed.insert(name, state);
        }
    }
    assert_eq!(replayed.get("ueba"), audit.sources.get("ueba"));
    assert_eq!(audit.sources.iter().count(), 1);
    // Out of order, the same leaf is a refusal.
    let again = Leaf::decode(&crate::canonical::to_canonical(&leaf_value(&leaves[4]))).unwrap().0;
    assert!(matches!(replay(&again, 5, |n| replayed.get(n).cloned()), Err(SourceError::Replayed { seq: 4, last: 4, .. })));
}

fn leaf_value(l: &Leaf) -> Value {
    let mut m = l.members.clone();
    m.insert("integrated_time".into(), Value::from(l.integrated_time));
    m.insert("v".into(), Value::from(l.version));
    Value::Object(m)
}

/// A forgery is reported before the refusal of the same signal: an
/// unauthenticated caller learns nothing of a source's types or
/// sequence numbers.
#[test]
fn the_plan_gives_a_key_before_it_refuses() {
    struct Claim(u64);
    impl Signed for Claim {
        fn kind(&self) -> EntryKind {
            EntryKind::Signal
        }
        fn seq(&self) -> u64 {
            self.0
        }
        fn new_key(&self) -> Option<&VerifyingKey> {
            None
        }
        fn verify(&self, _: &VerifyingKey) -> bool {
            false
        }
    }
    let key = SigningKey::from_bytes(&[7; 32]).verifying_key();
    let state = SourceState { key, types: alloc::vec![SignalType::Siem], registered_index: 0, key_index: 0, last_seq: 3 };
    let lookup = |name: &str| (name == "siem").then(|| state.clone());
    let (one, two) = (Claim(4), Claim(4));
    let run = [
        Filed { source: "siem", signal_type: SignalType::Siem, signed: &one },
        Filed { source: "siem", signal_type: SignalType::Siem, signed: &two },
    ];
    let (keys, refusal) = plan_preverify(lookup, &run);
    assert_eq!((keys.len(), refusal), (2, Some(SourceError::Replayed { name: "siem".into(), seq: 4, last: 4 })));
    let wrong = [Filed { source: "siem", signal_type: SignalType::Ueba, signed: &one }];
    assert_eq!(plan_preverify(lookup, &wrong).0.len(), 1);
    let unknown = [Filed { source: "feed", signal_type: SignalType::Siem, signed: &one }];
    assert_eq!(plan_preverify(lookup, &unknown), (Vec::new(), Some(SourceError::UnknownSource("feed".into()))));
}
