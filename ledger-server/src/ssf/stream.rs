//! An event stream's configuration (OpenID SSF 1.0 §8.1.1): what is
//! stored, what a receiver sends and what it is shown.
//!
//! The stored document ([`Stream`], JSON in the log's SSF records,
//! [`ledger_core::ssf`]) holds the receiver-supplied members
//! (`delivery`, `events_requested`, `description`), the stream's status,
//! its subjects and the last delivery error; the transmitter-supplied
//! members (`iss`, `events_supported`, `events_delivered`, the poll
//! `endpoint_url`) are computed when the configuration is shown, so they
//! follow the server's configuration. Requests are read strictly: a
//! member of the wrong type, a delivery method this transmitter does not
//! support, an `endpoint_url` that is not an absolute `http(s)` URL, or a
//! transmitter-supplied member that does not match (PATCH, PUT: SSF
//! §8.1.1.3, §8.1.1.4) is 400 `invalid_stream`; unknown members are
//! ignored, and so are event types this transmitter does not know (SSF
//! §8.1.1: "a Transmitter MUST ignore any array values that it does not
//! understand").

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use verifier::wire::ErrorCode;

use super::set::EventType;
use crate::error::ApiError;

/// The push delivery method (RFC 8935).
pub const PUSH: &str = "urn:ietf:rfc:8935";
/// The poll delivery method (RFC 8936).
pub const POLL: &str = "urn:ietf:rfc:8936";

/// Longest `endpoint_url`.
const MAX_URL_CHARS: usize = 2048;
/// Longest `authorization_header`.
const MAX_AUTHORIZATION_CHARS: usize = 4096;
/// Longest `description`; longer ones are truncated (SSF §8.1.1 allows it).
const MAX_DESCRIPTION_CHARS: usize = 1024;
/// Most URIs in `events_requested`.
const MAX_EVENTS_REQUESTED: usize = 64;
/// Longest event type URI kept.
const MAX_EVENT_URI_CHARS: usize = 512;

/// How SETs reach the receiver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method")]
pub enum Delivery {
    /// RFC 8935: the transmitter POSTs each SET to the receiver.
    #[serde(rename = "urn:ietf:rfc:8935")]
    Push {
        /// Where.
        endpoint_url: String,
        /// Sent as `Authorization` with every push.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        authorization_header: Option<String>,
    },
    /// RFC 8936: the receiver polls the transmitter's endpoint.
    #[serde(rename = "urn:ietf:rfc:8936")]
    Poll,
}

/// A stream's status (SSF §8.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// SETs are transmitted.
    Enabled,
    /// SETs are held (the cursor stays) and transmitted once enabled.
    Paused,
    /// SETs are dropped: nothing is held while disabled.
    Disabled,
}

impl Status {
    /// Its name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Enabled => "enabled",
            Self::Paused => "paused",
            Self::Disabled => "disabled",
        }
    }

    /// Parses a status name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Enabled, Self::Paused, Self::Disabled].into_iter().find(|s| s.name() == name)
    }
}

/// Which subjects a new stream has (`default_subjects`, SSF §7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "UPPERCASE")]
pub enum DefaultSubjects {
    /// Every agent until the receiver removes it.
    #[value(name = "ALL")]
    All,
    /// No agent until the receiver adds it.
    #[value(name = "NONE")]
    None,
}

impl DefaultSubjects {
    /// Its name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::All => "ALL",
            Self::None => "NONE",
        }
    }
}

/// The last error a delivery met: a push the receiver refused or could
/// not take, or a SET a poller reported in `setErrs`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryError {
    /// The SET.
    pub jti: String,
    /// The receiver's `err` (RFC 8935 §2.3), or what failed (`http_503`,
    /// `connection_failed`, …).
    pub err: String,
    /// The receiver's `description`, or details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// When (seconds since the Unix epoch).
    pub at: u64,
    /// Whether the SET was given up (a receiver's 400, a poller's
    /// `setErrs`) rather than retried.
    pub dropped: bool,
}

/// A stream as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stream {
    /// Its id.
    pub stream_id: String,
    /// The receiver that created it ([`super::auth`]).
    pub owner: String,
    /// Its `aud`.
    pub aud: String,
    /// How SETs are delivered.
    pub delivery: Delivery,
    /// What the receiver asked for; `None`: never said (every type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_requested: Option<Vec<String>>,
    /// The receiver's description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its status.
    pub status: Status,
    /// Why, as the last status change said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The subjects it started with.
    pub default_subjects: DefaultSubjects,
    /// Agents added (SPIFFE ids).
    #[serde(default)]
    pub subjects_added: BTreeSet<String>,
    /// Agents removed.
    #[serde(default)]
    pub subjects_removed: BTreeSet<String>,
    /// The last delivery error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<DeliveryError>,
}

impl Stream {
    /// The event types delivered: those supported that the receiver
    /// requested (all when it never said), in `events_supported` order.
    pub fn events_delivered(&self) -> Vec<EventType> {
        match &self.events_requested {
            None => EventType::ALL.to_vec(),
            Some(requested) => EventType::ALL.into_iter().filter(|t| requested.iter().any(|r| r == t.uri())).collect(),
        }
    }

    /// Whether SETs of `event_type` about `agent` go on this stream.
    pub fn delivers(&self, event_type: EventType, agent: &str) -> bool {
        if event_type.always_delivered() {
            return true;
        }
        self.events_delivered().contains(&event_type) && self.includes(agent)
    }

    /// Whether `agent` is a subject of the stream (SSF §8.1.3).
    pub fn includes(&self, agent: &str) -> bool {
        if self.subjects_removed.contains(agent) {
            return false;
        }
        self.default_subjects == DefaultSubjects::All || self.subjects_added.contains(agent)
    }

    /// The configuration as SSF shows it.
    pub fn to_config(&self, iss: &str, poll_url: &str) -> Value {
        let delivery = match &self.delivery {
            // The receiver's push credential is write-only: a configuration
            // answer (to an `ssf.read` token too) never carries it.
            Delivery::Push { endpoint_url, .. } => json!({ "method": PUSH, "endpoint_url": endpoint_url }),
            Delivery::Poll => json!({ "method": POLL, "endpoint_url": poll_url }),
        };
        let mut config = json!({
            "stream_id": self.stream_id,
            "iss": iss,
            "aud": self.aud,
            "delivery": delivery,
            "events_supported": EventType::ALL.map(EventType::uri),
            "events_delivered": self.events_delivered().into_iter().map(EventType::uri).collect::<Vec<_>>(),
        });
        if let Some(requested) = &self.events_requested {
            config["events_requested"] = json!(requested);
        }
        if let Some(description) = &self.description {
            config["description"] = Value::from(description.as_str());
        }
        config
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidStream, message)
}

/// The receiver-supplied members of a create, update or replace request;
/// `None` where the request does not have the member.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReceiverSupplied {
    /// `delivery`.
    pub delivery: Option<Delivery>,
    /// `events_requested`.
    pub events_requested: Option<Vec<String>>,
    /// `description`.
    pub description: Option<String>,
}

impl ReceiverSupplied {
    /// Reads them from a request object.
    pub fn read(obj: &Map<String, Value>) -> Result<Self, ApiError> {
        let delivery = obj.get("delivery").map(read_delivery).transpose()?;
        let events_requested = match obj.get("events_requested") {
            None => None,
            Some(Value::Array(items)) => {
                if items.is_empty() || items.len() > MAX_EVENTS_REQUESTED {
                    return Err(invalid(format!("\"events_requested\" must list 1 to {MAX_EVENTS_REQUESTED} event type URIs")));
                }
                let uris = items
                    .iter()
                    .map(|i| i.as_str().filter(|s| !s.is_empty() && s.chars().count() <= MAX_EVENT_URI_CHARS).map(str::to_owned))
                    .collect::<Option<Vec<String>>>()
                    .ok_or_else(|| invalid("\"events_requested\" must be an array of event type URIs"))?;
                Some(uris)
            }
            Some(_) => return Err(invalid("\"events_requested\" must be an array of event type URIs")),
        };
        let description = match obj.get("description") {
            None => None,
            Some(Value::String(d)) => Some(d.chars().take(MAX_DESCRIPTION_CHARS).collect()),
            Some(_) => return Err(invalid("\"description\" must be a string")),
        };
        Ok(Self { delivery, events_requested, description })
    }
}

fn read_delivery(value: &Value) -> Result<Delivery, ApiError> {
    let obj = value.as_object().ok_or_else(|| invalid("\"delivery\" must be an object"))?;
    // SSF §8.1.1.1: without a method, the receiver polls.
    let method = match obj.get("method") {
        None => POLL,
        Some(Value::String(m)) => m.as_str(),
        Some(_) => return Err(invalid("\"delivery.method\" must be a string")),
    };
    match method {
        PUSH => {
            let url = obj.get("endpoint_url").and_then(Value::as_str).ok_or_else(|| invalid("push delivery needs \"endpoint_url\""))?;
            check_url(url)?;
            let authorization_header = match obj.get("authorization_header") {
                None => None,
                Some(Value::String(h)) if h.len() <= MAX_AUTHORIZATION_CHARS && axum::http::HeaderValue::from_str(h).is_ok() => {
                    Some(h.clone())
                }
                Some(_) => {
                    return Err(invalid(format!(
                        "\"authorization_header\" must be a header value of at most {MAX_AUTHORIZATION_CHARS} characters"
                    )))
                }
            };
            Ok(Delivery::Push { endpoint_url: url.to_owned(), authorization_header })
        }
        // The poll endpoint is the transmitter's: an `endpoint_url` sent
        // with it is not the receiver's to choose, and is ignored.
        POLL => Ok(Delivery::Poll),
        other => Err(invalid(format!("delivery method {other:?} is not supported; use {PUSH} or {POLL}"))),
    }
}

/// An absolute `http` or `https` URL with a host, without a fragment.
fn check_url(url: &str) -> Result<(), ApiError> {
    let bad = || invalid(format!("\"endpoint_url\" must be an absolute http(s) URL of at most {MAX_URL_CHARS} characters"));
    if url.len() > MAX_URL_CHARS || url.contains('#') {
        return Err(bad());
    }
    let uri: axum::http::Uri = url.parse().map_err(|_| bad())?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(host)) if !host.is_empty() => Ok(()),
        _ => Err(bad()),
    }
}

/// Checks the transmitter-supplied members an update or replace request
/// carries against what the stream has (SSF §8.1.1.3: they "MAY be
/// present, but they MUST match the expected value"; `events_delivered`
/// is compared with its value before the update).
pub fn check_transmitter_supplied(obj: &Map<String, Value>, current: &Value) -> Result<(), ApiError> {
    for member in ["iss", "aud", "events_supported", "events_delivered", "min_verification_interval", "inactivity_timeout"] {
        if let Some(sent) = obj.get(member) {
            if current.get(member) != Some(sent) {
                return Err(invalid(format!("\"{member}\" is the transmitter's and does not match the stream's")));
            }
        }
    }
    if let (Some(Value::Object(sent)), Some(Value::Object(ours))) = (obj.get("delivery"), current.get("delivery")) {
        if sent.get("method").and_then(Value::as_str) == Some(POLL) && ours.get("method").and_then(Value::as_str) == Some(POLL) {
            if let Some(url) = sent.get("endpoint_url") {
                if Some(url) != ours.get("endpoint_url") {
                    return Err(invalid("a poll stream's \"endpoint_url\" is the transmitter's and does not match"));
                }
            }
        }
    }
    Ok(())
}

/// The `stream_id` member of a request object.
pub fn stream_id(obj: &Map<String, Value>) -> Result<&str, ApiError> {
    obj.get("stream_id").and_then(Value::as_str).ok_or_else(|| invalid("the request must name the stream (\"stream_id\")"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn stream() -> Stream {
        Stream {
            stream_id: "s1".into(),
            owner: "rcv-1".into(),
            aud: "rx".into(),
            delivery: Delivery::Poll,
            events_requested: None,
            description: None,
            status: Status::Enabled,
            reason: None,
            default_subjects: DefaultSubjects::All,
            subjects_added: BTreeSet::new(),
            subjects_removed: BTreeSet::new(),
            last_error: None,
        }
    }

    #[test]
    fn requests_are_read_strictly() {
        let ok = ReceiverSupplied::read(&obj(json!({
            "delivery": {"method": PUSH, "endpoint_url": "https://rx.example/events", "authorization_header": "Bearer x"},
            "events_requested": [EventType::SessionRevoked.uri(), "urn:example:unknown"],
            "description": "d".repeat(2000),
            "unknown": 1,
        })))
        .unwrap();
        assert!(matches!(ok.delivery, Some(Delivery::Push { .. })));
        assert_eq!(ok.description.map(|d| d.len()), Some(MAX_DESCRIPTION_CHARS));
        assert_eq!(ReceiverSupplied::read(&obj(json!({"delivery": {}}))).unwrap().delivery, Some(Delivery::Poll));
        for bad in [
            json!({"delivery": {"method": "urn:example:carrier-pigeon"}}),
            json!({"delivery": {"method": PUSH}}),
            json!({"delivery": {"method": PUSH, "endpoint_url": "ftp://rx.example/"}}),
            json!({"delivery": {"method": PUSH, "endpoint_url": "/relative"}}),
            json!({"delivery": {"method": PUSH, "endpoint_url": "https://rx.example/", "authorization_header": "a\nb"}}),
            json!({"delivery": "push"}),
            json!({"events_requested": []}),
            json!({"events_requested": [1]}),
            json!({"events_requested": "x"}),
            json!({"description": 7}),
        ] {
            let e = ReceiverSupplied::read(&obj(bad.clone())).unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidStream, "{bad}");
        }
    }

    #[test]
    fn delivered_events_and_subjects() {
        let mut s = stream();
        assert_eq!(s.events_delivered(), EventType::ALL);
        s.events_requested = Some(vec![EventType::AccountDisabled.uri().into(), "urn:example:x".into()]);
        assert_eq!(s.events_delivered(), [EventType::AccountDisabled]);
        assert!(s.delivers(EventType::AccountDisabled, "spiffe://e/agent/a"));
        assert!(!s.delivers(EventType::SessionRevoked, "spiffe://e/agent/a"));
        assert!(s.delivers(EventType::Verification, "s1"), "verification always goes");
        s.subjects_removed.insert("spiffe://e/agent/a".into());
        assert!(!s.delivers(EventType::AccountDisabled, "spiffe://e/agent/a"));
        s.default_subjects = DefaultSubjects::None;
        s.subjects_removed.clear();
        assert!(!s.includes("spiffe://e/agent/a"));
        s.subjects_added.insert("spiffe://e/agent/a".into());
        assert!(s.includes("spiffe://e/agent/a"));
        let config = s.to_config("https://tr.example", "https://tr.example/ssf/poll/s1");
        assert_eq!(config["events_delivered"], json!([EventType::AccountDisabled.uri()]));
        assert_eq!(config["delivery"], json!({"method": POLL, "endpoint_url": "https://tr.example/ssf/poll/s1"}));
        assert!(check_transmitter_supplied(&obj(json!({"iss": "https://tr.example"})), &config).is_ok());
        assert!(check_transmitter_supplied(&obj(json!({"iss": "https://other.example"})), &config).is_err());
        assert!(check_transmitter_supplied(&obj(json!({"events_delivered": []})), &config).is_err());
    }
}
