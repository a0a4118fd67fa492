//! The entry model: kinds named in one place, one parser per form, typed
//! errors whose messages are the API's, and leaves decoded by version.
#![allow(clippy::unwrap_used)]

use ed25519_dalek::SigningKey;
use serde_json::{json, Map, Value};
use verifier::canonical::to_canonical;
use verifier::entry::signing::{rotation, sign_entry};
use verifier::entry::{AgentError, AgentId, Entry, EntryError, EntryKind, Form, Leaf, ShapeError};

const ORIGIN: &str = "model.example/log";
const AGENT: &str = "spiffe://example.org/agent/billing";

fn object(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

#[test]
fn kind_names_round_trip() {
    for kind in EntryKind::ALL {
        assert_eq!(EntryKind::parse(kind.as_str()), Some(kind));
        assert_eq!(kind.as_str().parse::<EntryKind>(), Ok(kind));
        assert_eq!(serde_json::to_value(kind).unwrap(), Value::from(kind.as_str()));
        assert_eq!(kind.to_string(), kind.as_str());
    }
    assert_eq!(EntryKind::parse("tokens"), None);
    assert!(EntryKind::Action.is_agent_signed() && !EntryKind::Passport.is_agent_signed());
}

#[test]
fn submitted_entries_parse_into_their_kind() {
    let key = SigningKey::from_bytes(&[3; 32]);
    let mut action = object(json!({"kind": "action", "agent": AGENT, "action": "read", "resource": "db/x", "seq": 1}));
    sign_entry(&mut action, ORIGIN, &key);
    let Entry::Action(parsed) = Entry::from_object(&action, Form::Submitted).unwrap() else { panic!("an action") };
    assert_eq!((parsed.agent.as_str(), parsed.action.as_str(), parsed.resource.as_str()), (AGENT, "read", "db/x"));
    assert_eq!(parsed.signature.as_ref().unwrap().seq, 1);

    let rotated = rotation(ORIGIN, AGENT, 2, &key, &SigningKey::from_bytes(&[4; 32]));
    let entry = Entry::from_object(&rotated, Form::Submitted).unwrap();
    assert_eq!((entry.kind(), entry.agent().map(AgentId::as_str)), (EntryKind::Rotation, Some(AGENT)));
    assert!(entry.signature().is_some());

    // The log's own kinds are not submitted to POST /v1/entries.
    let retirement = object(json!({"kind": "retirement", "agent": AGENT, "reason": "done"}));
    assert_eq!(Entry::from_object(&retirement, Form::Submitted).unwrap_err(), EntryError::UnknownKind("retirement".into()));
    assert_eq!(Entry::from_object(&retirement, Form::Leaf).unwrap().kind(), EntryKind::Retirement);
}

#[test]
fn errors_are_typed_and_keep_their_messages() {
    let cases: Vec<(Value, EntryError, &str)> = vec![
        (json!({"agent": AGENT}), ShapeError::Missing("kind").into(), "invalid entry: missing field \"kind\""),
        (json!({"kind": 7}), ShapeError::NotAString("kind").into(), "invalid entry: \"kind\" must be a string"),
        (
            json!({"kind": "action", "agent": AGENT, "action": "", "resource": "r"}),
            ShapeError::Empty("action").into(),
            "invalid entry: \"action\" must not be empty",
        ),
        (
            json!({"kind": "action", "agent": AGENT, "action": "a"}),
            ShapeError::Missing("resource").into(),
            "invalid entry: missing field \"resource\"",
        ),
        (
            json!({"kind": "action", "agent": AGENT, "action": "a", "resource": "r", "data": [1]}),
            ShapeError::DataNotAnObject.into(),
            "invalid entry: \"data\" must be a JSON object",
        ),
        (
            json!({"kind": "action", "agent": AGENT, "action": "a", "resource": "r", "seq": 0, "signature": "x"}),
            AgentError::Seq.into(),
            "invalid entry: \"seq\" must be an integer ≥ 1",
        ),
    ];
    for (input, want, message) in cases {
        let err = Entry::from_object(&object(input.clone()), Form::Submitted).unwrap_err();
        assert_eq!(err, want, "{input}");
        assert_eq!(err.to_string(), message, "{input}");
    }
    let extra =
        Entry::from_object(&object(json!({"kind": "action", "agent": AGENT, "action": "a", "resource": "r", "x": 1})), Form::Submitted);
    assert_eq!(
        extra.unwrap_err().to_string(),
        "invalid entry: unexpected field \"x\"; a action has kind, agent, action, resource, data, seq, signature"
    );
    let id = Entry::from_object(
        &object(json!({"kind": "action", "agent": "spiffe://example.org/x", "action": "a", "resource": "r"})),
        Form::Submitted,
    );
    assert!(matches!(id, Err(EntryError::AgentId { .. })), "{id:?}");
    assert!(matches!(Entry::from_json(b"{\"a\":1,\"a\":2}", Form::Submitted), Err(EntryError::Json(_))));
}

#[test]
fn leaves_decode_by_version() {
    let members = object(json!({"kind": "retirement", "agent": AGENT, "reason": "done", "integrated_time": 5}));
    let mut v2 = members.clone();
    v2.insert("v".into(), 2.into());
    let bytes = to_canonical(&Value::Object(v2));
    let (leaf, _) = Leaf::decode(&bytes).unwrap();
    assert_eq!((leaf.version, leaf.integrated_time, leaf.kind), (2, 5, EntryKind::Retirement));
    assert!(matches!(leaf.entry, Some(Entry::Retirement(_))));
    assert!(!leaf.members.contains_key("v") && !leaf.members.contains_key("integrated_time"));

    // Not canonical: refused.
    let spaced = String::from_utf8(bytes.clone()).unwrap().replacen(':', ": ", 1);
    assert_eq!(Leaf::decode(spaced.as_bytes()).unwrap_err(), EntryError::Shape(ShapeError::NotCanonical));
    // An unknown version: refused.
    let v3 = String::from_utf8(bytes).unwrap().replace("\"v\":2", "\"v\":3");
    assert_eq!(Leaf::decode(v3.as_bytes()).unwrap_err(), EntryError::Shape(ShapeError::UnsupportedVersion));

    // Version 1: read even where today's rules refuse the entry.
    let mut v1 = object(json!({"kind": "retirement", "agent": AGENT, "reason": "", "integrated_time": 5}));
    v1.insert("v".into(), 1.into());
    let (leaf, _) = Leaf::decode(&to_canonical(&Value::Object(v1))).unwrap();
    assert_eq!((leaf.version, leaf.kind), (1, EntryKind::Retirement));
    assert!(leaf.entry.is_none());
}
