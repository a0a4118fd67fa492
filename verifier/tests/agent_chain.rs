//! The offline replay of an agent's entries (the registry fold, what
//! `ledger-verify agent` runs): every signature covers the leaf as stored,
//! so any signature that fails is a forgery, hidden fields or not. The
//! review's finding: a forged entry carrying `hidden` used to be accepted
//! ("signed over hidden values") and advanced the sequence number.
#![allow(clippy::unwrap_used)]

use ed25519_dalek::SigningKey;
use serde_json::{json, Map, Value};
use verifier::entry::signing::sign_entry;
use verifier::entry::Passport;
use verifier::entry::{Entry, EntryKind, Form, Leaf};
use verifier::fold::registry::{Applied, Registry, RegistryError as AgentError};

const ORIGIN: &str = "chain.example/log";
const AGENT: &str = "spiffe://example.org/agent/billing";

fn passport_leaf(key: &SigningKey) -> Map<String, Value> {
    let p = Passport {
        agent: AGENT.parse().unwrap(),
        public_key: key.verifying_key(),
        code_hash: [7; 32],
        model_hash: None,
        owner: "payments".into(),
        purpose: "pays invoices".into(),
        tpm_ak: None,
    };
    let mut leaf = p.to_object();
    leaf.insert("integrated_time".into(), 1.into());
    leaf.insert("v".into(), 2.into());
    leaf
}

/// An action with committed hidden fields as stored: signed over that form.
fn hidden_leaf(seq: u64, key: &SigningKey, commitment: &str) -> Map<String, Value> {
    let mut leaf = json!({"kind": "action", "agent": AGENT, "action": "pay", "resource": "invoices/7", "seq": seq,
        "hidden": {"amount": {"u64": commitment}},
        "predicates": {"claims": [{"field": "amount", "le": 10000}], "proof": "AQgA"}})
    .as_object()
    .unwrap()
    .clone();
    sign_entry(&mut leaf, ORIGIN, key);
    leaf.insert("integrated_time".into(), 2.into());
    leaf.insert("v".into(), 2.into());
    leaf
}

/// A chain: the registry of the log, with the passport applied at index 0.
struct AgentChain(Registry);

impl AgentChain {
    fn new(origin: &str, passport_leaf: &Map<String, Value>) -> Result<Self, AgentError> {
        let mut registry = Registry::new(origin);
        registry.apply_leaf(0, &leaf(passport_leaf))?;
        Ok(Self(registry))
    }

    fn apply(&mut self, leaf_object: &Map<String, Value>) -> Result<Applied, AgentError> {
        self.0.apply_leaf(1, &leaf(leaf_object))
    }
}

fn leaf(obj: &Map<String, Value>) -> Leaf {
    let mut members = obj.clone();
    let version = members.remove("v").and_then(|v| v.as_u64()).unwrap();
    let integrated_time = members.remove("integrated_time").and_then(|v| v.as_u64()).unwrap();
    let entry = Entry::from_object(&members, Form::Leaf).ok();
    let kind = EntryKind::parse(members["kind"].as_str().unwrap()).unwrap();
    Leaf { version, integrated_time, kind, members, entry }
}

#[test]
fn a_forged_entry_with_hidden_fields_fails_and_does_not_advance_the_sequence() {
    let key = SigningKey::from_bytes(&[1; 32]);
    let forger = SigningKey::from_bytes(&[2; 32]);
    let mut chain = AgentChain::new(ORIGIN, &passport_leaf(&key)).unwrap();
    let commitment = "A".repeat(43);

    // Signed by someone else.
    let forged = hidden_leaf(1, &forger, &commitment);
    assert!(matches!(chain.apply(&forged), Err(AgentError::BadSignature { .. })));
    // Signed by the agent, then a commitment swapped.
    let mut swapped = hidden_leaf(1, &key, &commitment);
    swapped["hidden"]["amount"]["u64"] = "B".repeat(43).into();
    assert!(matches!(chain.apply(&swapped), Err(AgentError::BadSignature { .. })));
    // Signed over plaintext values (the old log-commits path), stored with
    // commitments: refused too.
    let mut plain = hidden_leaf(1, &key, &commitment);
    plain["hidden"] = json!({"amount": {"u64": 1250, "prove": [{"le": 10000}]}});
    plain.remove("predicates");
    sign_entry(&mut plain, ORIGIN, &key);
    let mut stored = hidden_leaf(1, &key, &commitment);
    stored["signature"] = plain["signature"].clone();
    assert!(matches!(chain.apply(&stored), Err(AgentError::BadSignature { .. })));
    // Signed for another log.
    let mut elsewhere = hidden_leaf(1, &key, &commitment);
    sign_entry(&mut elsewhere, "staging.example/log", &key);
    assert!(matches!(chain.apply(&elsewhere), Err(AgentError::BadSignature { .. })));

    // None of them advanced the sequence: the genuine entry 1 still applies.
    assert_eq!(chain.apply(&hidden_leaf(1, &key, &commitment)).unwrap(), Applied::Signed { kind: EntryKind::Action, seq: 1 });
    assert!(matches!(chain.apply(&hidden_leaf(1, &key, &commitment)), Err(AgentError::Replayed { .. })));
}

#[test]
fn version_1_agent_entries_are_reported_not_checked() {
    let key = SigningKey::from_bytes(&[1; 32]);
    let mut chain = AgentChain::new(ORIGIN, &passport_leaf(&key)).unwrap();
    let mut old = hidden_leaf(1, &key, &"A".repeat(43));
    old.insert("v".into(), 1.into());
    assert_eq!(chain.apply(&old).unwrap_err(), AgentError::LeafVersion(1));
}
