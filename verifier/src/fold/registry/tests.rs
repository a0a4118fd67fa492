//! Unit tests of the registry fold.
#![allow(clippy::unwrap_used)]
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Map};

use super::*;
use crate::entry::legacy_v1_form;

const AGENT: &str = "spiffe://example.org/agent/a";

fn leaf(mut members: Map<String, Value>, version: u64) -> Leaf {
    members.insert("integrated_time".into(), Value::from(5u64));
    let bytes = if version == 1 {
        legacy_v1_form(&members)
    } else {
        members.insert("v".into(), Value::from(version));
        crate::canonical::to_canonical(&Value::Object(members))
    };
    Leaf::decode(&bytes).unwrap().0
}

/// The log rebuilds its registry from leaves it admitted under the
/// rules of their time: a version 1 rotation to a key weak by today's
/// rules, its signatures not checked again. An auditor replaying the
/// same leaf is told it is not checked here.
#[test]
fn replay_takes_admitted_leaves_as_they_were_admitted() {
    let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]).verifying_key();
    let passport = json!({"kind": "passport", "agent": AGENT, "public_key": B64.encode(key.as_bytes()),
        "code_hash": "ab".repeat(32), "owner": "o", "purpose": "p"});
    let passport = leaf(passport.as_object().unwrap().clone(), 2);
    let (agent, registered) = replay(&passport, 0, |_| None).unwrap().unwrap();
    assert_eq!((agent.as_str(), registered.key, registered.last_seq), (AGENT, key, 0));

    let mut identity = [0u8; 32];
    identity[0] = 1;
    let weak = VerifyingKey::from_bytes(&identity).unwrap();
    assert!(is_weak_key(&weak));
    let signature = B64.encode([0u8; 64]);
    let rotation = json!({"kind": "rotation", "agent": AGENT, "new_public_key": B64.encode(identity), "seq": 4,
        "signature": signature, "new_signature": signature});
    let rotation = leaf(rotation.as_object().unwrap().clone(), 1);
    let (_, rotated) = replay(&rotation, 1, |_| Some(registered.clone())).unwrap().unwrap();
    assert_eq!((rotated.key, rotated.key_index, rotated.last_seq), (weak, 1, 4));
    // Replayed out of order, the same leaf is a refusal, not a silent change.
    assert!(matches!(replay(&rotation, 2, |_| Some(rotated.clone())), Err(RegistryError::Replayed { seq: 4, last: 4, .. })));

    let mut auditor = Registry::new("log.example");
    auditor.apply_leaf(0, &passport).unwrap();
    assert_eq!(auditor.apply_leaf(1, &rotation), Err(RegistryError::LeafVersion(1)));
    // An unsigned action (agent authentication off) changes no agent.
    let unsigned = json!({"kind": "action", "agent": AGENT, "action": "a", "resource": "r/1"});
    assert_eq!(replay(&leaf(unsigned.as_object().unwrap().clone(), 2), 3, |_| None), Ok(None));
}

/// The identity point: a small-order key anyone can forge under.
fn weak_key() -> VerifyingKey {
    let mut identity = [0u8; 32];
    identity[0] = 1;
    VerifyingKey::from_bytes(&identity).unwrap()
}

fn passport_object(key: &VerifyingKey) -> Map<String, Value> {
    json!({"kind": "passport", "agent": AGENT, "public_key": B64.encode(key.as_bytes()),
        "code_hash": "ab".repeat(32), "owner": "o", "purpose": "p"})
    .as_object()
    .unwrap()
    .clone()
}

/// A weak passport key is refused by the fold as `Passport::from_object`
/// refuses it, in `decide`, `Registry::apply` and `apply_leaf`, of
/// either leaf version; only the log's replay of its own leaves takes it.
#[test]
fn weak_passport_keys_are_refused_except_in_the_logs_replay() {
    let agent: AgentId = AGENT.parse().unwrap();
    let weak = weak_key();
    let passport = Arc::new(Passport::from_stored(&passport_object(&weak)).unwrap());
    let refused = RegistryError::WeakKey { agent: agent.clone() };
    assert_eq!(decide(&agent, None, 0, Change::Register(&passport)), Err(refused.clone()));
    let entry = Entry::from_object(&passport_object(&weak), Form::Audit).unwrap();
    let mut auditor = Registry::new("log.example");
    assert_eq!(auditor.apply(0, &entry), Err(refused.clone()));
    for version in [1, 2] {
        let stored = leaf(passport_object(&weak), version);
        assert_eq!(auditor.apply_leaf(0, &stored), Err(refused.clone()), "version {version}");
        let (_, replayed) = replay(&stored, 0, |_| None).unwrap().unwrap();
        assert_eq!(replayed.key, weak);
    }
    assert!(auditor.get(&agent).is_none());
}

/// A rotation to a weak key is refused by `decide` whatever the
/// `Signed` implementation says: the replay exemption is not reachable
/// from outside the fold.
#[test]
fn a_signed_entry_cannot_claim_the_replay_exemption() {
    struct Trusting(VerifyingKey);
    impl Signed for Trusting {
        fn kind(&self) -> EntryKind {
            EntryKind::Rotation
        }
        fn seq(&self) -> u64 {
            1
        }
        fn new_key(&self) -> Option<&VerifyingKey> {
            Some(&self.0)
        }
        fn verify(&self, _: &VerifyingKey) -> bool {
            true
        }
    }
    let agent: AgentId = AGENT.parse().unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]).verifying_key();
    let passport = Arc::new(Passport::from_stored(&passport_object(&key)).unwrap());
    let state = decide(&agent, None, 0, Change::Register(&passport)).unwrap();
    let rotation = Trusting(weak_key());
    assert_eq!(decide(&agent, Some(&state), 1, Change::Signed(&rotation)), Err(RegistryError::WeakKey { agent }));
}

/// Passports and retirements carry no agent signature: a version 1 one
/// is applied by an auditor, and the version 2 entries after it checked.
#[test]
fn version_1_admin_leaves_are_applied() {
    let signer = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
    let mut auditor = Registry::new("log.example");
    assert_eq!(auditor.apply_leaf(0, &leaf(passport_object(&signer.verifying_key()), 1)), Ok(Applied::Registered));
    let mut action = json!({"kind": "action", "agent": AGENT, "action": "a", "resource": "r/1", "seq": 1}).as_object().unwrap().clone();
    crate::entry::signing::sign_entry(&mut action, "log.example", &signer);
    assert_eq!(auditor.apply_leaf(1, &leaf(action, 2)), Ok(Applied::Signed { kind: EntryKind::Action, seq: 1 }));
    let retirement = json!({"kind": "retirement", "agent": AGENT, "reason": "done"}).as_object().unwrap().clone();
    assert_eq!(auditor.apply_leaf(2, &leaf(retirement, 1)), Ok(Applied::Retired));
}

/// A signature outcome known in advance counts only for the key it was
/// checked with: a wrong guess (another key) is checked again, a forgery
/// stays a forgery, and a cached "valid" for a key that is not the one in
/// force proves nothing.
#[test]
fn a_preverified_outcome_counts_only_for_its_key() {
    let signer = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
    let other = ed25519_dalek::SigningKey::from_bytes(&[4; 32]).verifying_key();
    let passport = Entry::from_object(&passport_object(&signer.verifying_key()), Form::Audit).unwrap();
    let signed = |seq: u64, key: &ed25519_dalek::SigningKey| {
        let mut m = json!({"kind": "action", "agent": AGENT, "action": "a", "resource": "r", "seq": seq}).as_object().unwrap().clone();
        crate::entry::signing::sign_entry(&mut m, "log.example", key);
        Entry::from_object(&m, Form::Audit).unwrap()
    };
    let mut registry = Registry::new("log.example");
    registry.apply(0, &passport).unwrap();
    // A wrong guess: checked again with the key in force, and it verifies.
    registry.apply_preverified(1, &signed(1, &signer), Some((other, false))).unwrap();
    // A forgery cached as valid under another key is checked again: refused.
    let forged = signed(2, &ed25519_dalek::SigningKey::from_bytes(&[9; 32]));
    assert!(matches!(registry.apply_preverified(2, &forged, Some((other, true))), Err(RegistryError::BadSignature { .. })));
    // The outcome for the key in force is taken as checked.
    assert!(matches!(
        registry.apply_preverified(2, &signed(2, &signer), Some((signer.verifying_key(), false))),
        Err(RegistryError::BadSignature { .. })
    ));
    registry.apply_preverified(2, &signed(2, &signer), Some((signer.verifying_key(), true))).unwrap();
    assert_eq!(registry.get(&AgentId::parse(AGENT).unwrap()).unwrap().last_seq, 2);
}
