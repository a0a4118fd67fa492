//! The agent registry fold: one rule for registration, retirement,
//! sequence numbers and signatures, with rotation handing over to the new
//! key; and the plan the log pre-verifies a submission with.
#![allow(clippy::unwrap_used)]

use ed25519_dalek::SigningKey;
use serde_json::{json, Map, Value};
use verifier::entry::signing::{rotation, sign_entry};
use verifier::entry::Passport;
use verifier::entry::{AgentId, Entry, EntryKind, Form};
use verifier::fold::registry::{active, plan_preverify, Applied, OfflineSigned, Registry, RegistryError};

const ORIGIN: &str = "fold.example/log";
const AGENT: &str = "spiffe://example.org/agent/billing";

fn id() -> AgentId {
    AGENT.parse().unwrap()
}

fn passport(key: &SigningKey) -> Entry {
    let p = Passport {
        agent: AGENT.parse().unwrap(),
        public_key: key.verifying_key(),
        code_hash: [7; 32],
        model_hash: None,
        owner: "payments".into(),
        purpose: "pays invoices".into(),
        tpm_ak: None,
    };
    Entry::from_object(&p.to_object(), Form::Leaf).unwrap()
}

fn action(seq: u64, key: &SigningKey) -> Entry {
    let mut m: Map<String, Value> =
        json!({"kind": "action", "agent": AGENT, "action": "pay", "resource": "invoices", "seq": seq}).as_object().unwrap().clone();
    sign_entry(&mut m, ORIGIN, key);
    Entry::from_object(&m, Form::Submitted).unwrap()
}

fn retirement() -> Entry {
    Entry::from_object(json!({"kind": "retirement", "agent": AGENT, "reason": "done"}).as_object().unwrap(), Form::Leaf).unwrap()
}

#[test]
fn a_chain_folds_through_rotation_and_retirement() {
    let (old, new) = (SigningKey::from_bytes(&[1; 32]), SigningKey::from_bytes(&[2; 32]));
    let mut registry = Registry::new(ORIGIN);
    assert_eq!(registry.apply(3, &action(1, &old)).unwrap_err(), RegistryError::UnknownAgent(id()));
    assert_eq!(registry.apply(0, &passport(&old)).unwrap(), Applied::Registered);
    assert_eq!(registry.apply(1, &passport(&old)).unwrap_err(), RegistryError::Exists(id()));
    assert_eq!(registry.apply(1, &action(1, &old)).unwrap(), Applied::Signed { kind: EntryKind::Action, seq: 1 });
    assert_eq!(registry.apply(2, &action(1, &old)).unwrap_err(), RegistryError::Replayed { agent: id(), seq: 1, last: 1 });
    assert_eq!(registry.apply(2, &action(2, &new)).unwrap_err(), RegistryError::BadSignature { agent: id() });

    let rotated = Entry::from_object(&rotation(ORIGIN, AGENT, 2, &old, &new), Form::Submitted).unwrap();
    assert_eq!(registry.apply(2, &rotated).unwrap(), Applied::Rotated { seq: 2 });
    let state = registry.get(&id()).unwrap();
    assert_eq!((state.key, state.key_index, state.last_seq, state.passport_index), (new.verifying_key(), 2, 2, 0));
    // The old key is out of force.
    assert_eq!(registry.apply(3, &action(3, &old)).unwrap_err(), RegistryError::BadSignature { agent: id() });
    assert_eq!(registry.apply(3, &action(3, &new)).unwrap(), Applied::Signed { kind: EntryKind::Action, seq: 3 });

    assert_eq!(registry.apply(4, &retirement()).unwrap(), Applied::Retired);
    assert_eq!(registry.get(&id()).unwrap().retired, Some(4));
    assert_eq!(registry.apply(5, &action(4, &new)).unwrap_err(), RegistryError::Retired(id()));
    assert_eq!(registry.apply(5, &retirement()).unwrap_err(), RegistryError::Retired(id()));
    assert_eq!(active(&id(), registry.get(&id())).unwrap_err(), RegistryError::Retired(id()));
}

#[test]
fn a_rotation_needs_both_signatures() {
    let (old, new, other) = (SigningKey::from_bytes(&[1; 32]), SigningKey::from_bytes(&[2; 32]), SigningKey::from_bytes(&[9; 32]));
    let mut registry = Registry::new(ORIGIN);
    registry.apply(0, &passport(&old)).unwrap();
    let mut forged = rotation(ORIGIN, AGENT, 1, &old, &new);
    forged["new_signature"] = rotation(ORIGIN, AGENT, 1, &old, &other)["new_signature"].clone();
    let forged = Entry::from_object(&forged, Form::Submitted).unwrap();
    assert_eq!(registry.apply(1, &forged).unwrap_err(), RegistryError::BadSignature { agent: id() });
    assert_eq!(registry.get(&id()).unwrap().key, old.verifying_key(), "a refused rotation changes nothing");
}

#[test]
fn preverification_plans_the_key_of_each_signature() {
    let (old, new) = (SigningKey::from_bytes(&[1; 32]), SigningKey::from_bytes(&[2; 32]));
    let mut registry = Registry::new(ORIGIN);
    registry.apply(0, &passport(&old)).unwrap();
    let rotated = Entry::from_object(&rotation(ORIGIN, AGENT, 1, &old, &new), Form::Submitted).unwrap();
    let after = action(2, &new);
    let replayed = action(2, &new);
    let entries = [&rotated, &after, &replayed];
    let signed: Vec<OfflineSigned<'_>> = entries.iter().map(|e| OfflineSigned::of(ORIGIN, e).unwrap()).collect();
    let agent = id();
    let run: Vec<(&AgentId, &OfflineSigned<'_>)> = signed.iter().map(|s| (&agent, s)).collect();
    let (keys, refusal) = plan_preverify(|a| registry.get(a).cloned(), &run);
    assert_eq!(keys, vec![old.verifying_key(), new.verifying_key()]);
    assert_eq!(refusal, Some(RegistryError::Replayed { agent: id(), seq: 2, last: 2 }));
    let (_, unknown) = plan_preverify(|_| None, &run[..1]);
    assert_eq!(unknown, Some(RegistryError::UnknownAgent(id())));
}
