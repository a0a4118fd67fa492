//! Security Event Tokens (RFC 8417) made from log entries, as SSF 1.0 §4
//! profiles them, with the CAEP 1.0 and RISC 1.0 event types.
//!
//! One event per SET (SSF §4.2.1). The mapping (docs/SSF.md):
//!
//! | entry | SETs (ordinal: event type) |
//! |---|---|
//! | `risk` | 0: CAEP `risk-level-change` (`principal` `"NHI"`, `current_level`, `previous_level`, `risk_reason`) |
//! | `revocation` | 0: CAEP `session-revoked`, 1: RISC `account-disabled` (both with `reason_admin`), then 2…: one CAEP `session-revoked` per revoked action token, its `sub_id` in the `jwt_id` subject format of OpenID SSF 1.0 (`iss`: the log's origin, `jti`: the token's id) |
//! | `reinstatement` | 0: RISC `account-enabled` |
//!
//! Each carries `event_timestamp` (the entry's integrated time, in
//! seconds) and `initiating_entity`. Claims: `iss`, `jti`, `iat`, `aud`,
//! `txn` (the entry's log index, so the SETs of one entry share it: SSF
//! §4.1.11), `sub_id` (RFC 9493 `uri` format with the agent's SPIFFE id),
//! `events`; never `sub` or `exp` (SSF §4.1.2, §4.1.7). The `jti` of a
//! SET made from an entry is `<stream id>.<index>-<ordinal>`, the same each
//! time it is made, so a receiver that gets a SET twice (after a
//! transmitter restart) recognises it; verification and stream-updated
//! SETs get `<stream id>.v-<random>`.

use serde_json::{json, Map, Value};
use verifier::entry::{Entry, Leaf, RevocationReason};

/// An event type the transmitter sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventType {
    /// CAEP: an agent's risk level changed.
    RiskLevelChange,
    /// CAEP: an agent's sessions are revoked.
    SessionRevoked,
    /// RISC: an agent's account is disabled.
    AccountDisabled,
    /// RISC: an agent's account is enabled again.
    AccountEnabled,
    /// SSF: a verification event a receiver asked for.
    Verification,
    /// SSF: the transmitter changed a stream's status.
    StreamUpdated,
}

impl EventType {
    /// Every type, in the order `events_supported` lists them.
    pub const ALL: [Self; 6] =
        [Self::RiskLevelChange, Self::SessionRevoked, Self::AccountDisabled, Self::AccountEnabled, Self::Verification, Self::StreamUpdated];

    /// The event type URI.
    pub const fn uri(self) -> &'static str {
        match self {
            Self::RiskLevelChange => "https://schemas.openid.net/secevent/caep/event-type/risk-level-change",
            Self::SessionRevoked => "https://schemas.openid.net/secevent/caep/event-type/session-revoked",
            Self::AccountDisabled => "https://schemas.openid.net/secevent/risc/event-type/account-disabled",
            Self::AccountEnabled => "https://schemas.openid.net/secevent/risc/event-type/account-enabled",
            Self::Verification => "https://schemas.openid.net/secevent/ssf/event-type/verification",
            Self::StreamUpdated => "https://schemas.openid.net/secevent/ssf/event-type/stream-updated",
        }
    }

    /// The type of `uri`, if this transmitter knows it.
    pub fn parse(uri: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.uri() == uri)
    }

    /// Whether SETs of this type are sent whatever the stream's
    /// `events_delivered` (SSF §8.1.4, §8.1.5 allow it): the transmitter's
    /// own management events.
    pub const fn always_delivered(self) -> bool {
        matches!(self, Self::Verification | Self::StreamUpdated)
    }
}

/// One event of a log entry, before it becomes a SET for a stream.
#[derive(Clone, Debug, PartialEq)]
pub struct EntryEvent {
    /// The entry's index (`txn`).
    pub index: u64,
    /// Which of the entry's SETs this is.
    pub ordinal: u8,
    /// Its type.
    pub event_type: EventType,
    /// The agent it is about (`sub_id`, unless `subject` says otherwise;
    /// streams filter on it).
    pub agent: String,
    /// The event object.
    pub event: Value,
    /// A `sub_id` other than the agent's `uri` (an action token's
    /// `jwt_id`).
    pub subject: Option<Value>,
}

impl EntryEvent {
    /// Its `jti` on stream `stream_id`.
    pub fn jti(&self, stream_id: &str) -> String {
        format!("{stream_id}.{}-{}", self.index, self.ordinal)
    }
}

/// Where a `jti` points on a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JtiRef {
    /// SET `ordinal` of entry `index`.
    Entry { index: u64, ordinal: u8 },
    /// A verification or stream-updated SET.
    Management(String),
}

/// Reads a `jti` made for stream `stream_id`; `None` for anything else.
pub fn parse_jti(stream_id: &str, jti: &str) -> Option<JtiRef> {
    let rest = jti.strip_prefix(stream_id)?.strip_prefix('.')?;
    let (a, b) = rest.split_once('-')?;
    if a == "v" {
        return Some(JtiRef::Management(jti.to_owned()));
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if !digits(a) || !digits(b) {
        return None;
    }
    Some(JtiRef::Entry { index: a.parse().ok()?, ordinal: b.parse().ok()? })
}

/// A `jti` for a verification or stream-updated SET on `stream_id`.
pub fn management_jti(stream_id: &str) -> String {
    let mut nonce = [0u8; 8];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
    format!("{stream_id}.v-{}", verifier::entry::signing::hex(&nonce))
}

fn reason_admin(text: String) -> Value {
    json!({ "en": text })
}

/// The events of the entry at `index` (none for kinds that are not
/// events, or that no event type carries: signals).
/// `origin` is the log's, the issuer of its action tokens.
pub fn events_of(index: u64, leaf: &Leaf, origin: &str) -> Vec<EntryEvent> {
    let timestamp = leaf.integrated_time / 1000;
    let event = |ordinal: u8, event_type: EventType, agent: &str, event: Value| EntryEvent {
        index,
        ordinal,
        event_type,
        agent: agent.to_owned(),
        event,
        subject: None,
    };
    match &leaf.entry {
        Some(Entry::Risk(risk)) => vec![event(
            0,
            EventType::RiskLevelChange,
            risk.agent.as_str(),
            json!({
                // A non-human identity: a robotic principal (SSF §2).
                "principal": "NHI",
                "current_level": risk.current.as_str().to_ascii_uppercase(),
                "previous_level": risk.previous.as_str().to_ascii_uppercase(),
                "risk_reason": format!("trust score {} under {}", risk.score, policy_named(risk.policy_index)),
                "initiating_entity": "policy",
                "event_timestamp": timestamp,
            }),
        )],
        Some(Entry::Revocation(revocation)) => {
            let (reason, initiating) = match revocation.reason {
                RevocationReason::Score => {
                    let causes: Vec<String> = revocation.causes.iter().map(u64::to_string).collect();
                    let causes = if causes.is_empty() { String::new() } else { format!("; entries {}", causes.join(", ")) };
                    (
                        format!(
                            "trust score {} below the threshold {} under {}{causes}",
                            revocation.score,
                            revocation.threshold,
                            policy_named(revocation.policy_index)
                        ),
                        "policy",
                    )
                }
                RevocationReason::Quarantine => {
                    let note = revocation.note.as_deref().map(|n| format!(": {n}")).unwrap_or_default();
                    (format!("quarantined by an administrator{note}"), "admin")
                }
            };
            let body = json!({
                "initiating_entity": initiating,
                "reason_admin": reason_admin(reason),
                "event_timestamp": timestamp,
            });
            let agent = revocation.agent.as_str();
            let mut events =
                vec![event(0, EventType::SessionRevoked, agent, body.clone()), event(1, EventType::AccountDisabled, agent, body.clone())];
            // At most 64 tokens, so the ordinals stay below 66.
            for (i, jti) in revocation.tokens.iter().enumerate() {
                let mut token = event(2 + i as u8, EventType::SessionRevoked, agent, body.clone());
                token.subject = Some(json!({ "format": "jwt_id", "iss": origin, "jti": jti }));
                events.push(token);
            }
            events
        }
        Some(Entry::Reinstatement(reinstatement)) => {
            let mut body = Map::new();
            body.insert("initiating_entity".into(), Value::from("admin"));
            let note = reinstatement.note.as_deref().map(|n| format!(": {n}")).unwrap_or_default();
            body.insert(
                "reason_admin".into(),
                reason_admin(format!(
                    "reinstated by an administrator after the attestation at index {}{note}",
                    reinstatement.attestation_index
                )),
            );
            body.insert("event_timestamp".into(), Value::from(timestamp));
            vec![event(0, EventType::AccountEnabled, reinstatement.agent.as_str(), Value::Object(body))]
        }
        _ => Vec::new(),
    }
}

/// The claims of the SET for `event` on a stream.
pub fn entry_claims(event: &EntryEvent, stream_id: &str, iss: &str, aud: &str, iat: u64) -> Value {
    json!({
        "iss": iss,
        "jti": event.jti(stream_id),
        "iat": iat,
        "aud": aud,
        "txn": event.index.to_string(),
        "sub_id": event.subject.clone().unwrap_or_else(|| json!({ "format": "uri", "uri": event.agent })),
        "events": { event.event_type.uri(): event.event },
    })
}

/// The claims of a verification or stream-updated SET: its subject is the
/// stream (`opaque` format, the stream id: SSF §8.1.4.1, §8.1.5).
pub fn management_claims(jti: &str, event_type: EventType, event: &Value, stream_id: &str, iss: &str, aud: &str, iat: u64) -> Value {
    json!({
        "iss": iss,
        "jti": jti,
        "iat": iat,
        "aud": aud,
        "sub_id": { "format": "opaque", "id": stream_id },
        "events": { event_type.uri(): event },
    })
}

/// The policy an entry was decided under, in words.
fn policy_named(index: Option<u64>) -> String {
    index.map_or_else(|| "the built-in policy".to_owned(), |i| format!("the policy at index {i}"))
}

#[cfg(test)]
mod tests {
    use verifier::entry::{Level, Reinstatement, Revocation, RiskChange};
    use verifier::AgentId;

    use super::*;

    fn leaf(members: Map<String, Value>, time_ms: u64) -> Leaf {
        let mut obj = members;
        obj.insert("integrated_time".into(), Value::from(time_ms));
        obj.insert("v".into(), Value::from(verifier::canonical::LEAF_VERSION));
        let bytes = verifier::canonical::to_canonical(&Value::Object(obj));
        Leaf::decode(&bytes).unwrap().0
    }

    #[test]
    fn every_event_kind_maps_to_its_sets() {
        let agent = AgentId::parse("spiffe://example.org/agent/a").unwrap();
        let decision = verifier::entry::Decision { as_of_index: 8, decided_at: 1_700_000_123_000 };
        let risk =
            RiskChange { agent: agent.clone(), previous: Level::Low, current: Level::High, score: 31, policy_index: Some(2), decision };
        let events = events_of(9, &leaf(risk.to_object(), 1_700_000_123_456), "example.org/log");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_type, EventType::RiskLevelChange);
        assert_eq!(events[0].event["current_level"], "HIGH");
        assert_eq!(events[0].event["previous_level"], "LOW");
        assert_eq!(events[0].event["event_timestamp"], 1_700_000_123);
        assert_eq!(events[0].jti("s1"), "s1.9-0");

        let revocation = Revocation {
            agent: agent.clone(),
            reason: RevocationReason::Quarantine,
            score: 0,
            threshold: 30,
            causes: vec![],
            policy_index: None,
            decision: None,
            note: Some("leaked key".into()),
            tokens: vec!["0".repeat(32), "a".repeat(32)],
        };
        let events = events_of(10, &leaf(revocation.to_object(), 5_000), "example.org/log");
        let types: Vec<EventType> = events.iter().map(|e| e.event_type).collect();
        assert_eq!(types, [EventType::SessionRevoked, EventType::AccountDisabled, EventType::SessionRevoked, EventType::SessionRevoked]);
        // Each revoked token is its own session, named by its jti.
        let token = entry_claims(&events[3], "s1", "https://tr.example", "rx", 77);
        assert_eq!(token["sub_id"], json!({"format": "jwt_id", "iss": "example.org/log", "jti": "a".repeat(32)}));
        assert_eq!(token["jti"], "s1.10-3");
        assert_eq!(events[1].event["reason_admin"]["en"], "quarantined by an administrator: leaked key");
        assert_eq!(events[1].event["initiating_entity"], "admin");

        let back = Reinstatement { agent, attestation_index: 11, note: None };
        let events = events_of(12, &leaf(back.to_object(), 5_000), "example.org/log");
        assert_eq!(events[0].event_type, EventType::AccountEnabled);

        let claims = entry_claims(&events[0], "s1", "https://tr.example", "rx", 77);
        assert_eq!(claims["txn"], "12");
        assert_eq!(claims["sub_id"], json!({"format": "uri", "uri": "spiffe://example.org/agent/a"}));
        assert!(claims.get("sub").is_none() && claims.get("exp").is_none());
    }

    #[test]
    fn jtis_parse_back_to_their_stream_and_position() {
        assert_eq!(parse_jti("s1", "s1.12-1"), Some(JtiRef::Entry { index: 12, ordinal: 1 }));
        let management = management_jti("s1");
        assert_eq!(parse_jti("s1", &management), Some(JtiRef::Management(management.clone())));
        for other in ["s2.12-1", "s1.12", "s1.-1", "s1.12-", "s1.1x-0", "s1x12-0", "s1.12-999"] {
            assert_eq!(parse_jti("s1", other), None, "{other}");
        }
        for uri in EventType::ALL.map(EventType::uri) {
            assert_eq!(EventType::parse(uri).map(EventType::uri), Some(uri));
        }
    }
}
