//! Signals: a registered source's signed signals ([`SignalSource`]) and an
//! agent's signed reports on its peers ([`Client::report_peer`]),
//! submitted to `POST /v1/signals` (docs/FORMAT.md, "Signals").
//!
//! Both sign what agents sign ([`sign_entry`]: the log's origin and the
//! canonical signal without its signature) with a strictly increasing
//! `seq`: the source's own, or the reporting agent's (shared with its
//! other entries). The signal object is built by the entry model
//! ([`Signal::to_object`]), so the SDK and the log spell it alike.
//!
//! ```no_run
//! use ledger_client::SignalSource;
//! use verifier::entry::{Severity, SignalType, Subject};
//! let key = ledger_client::load_or_create_key(std::path::Path::new("siem.key"))?;
//! let source = SignalSource::connect("http://127.0.0.1:8080", "siem-1", key)?;
//! let agent = "spiffe://example.org/agent/billing".parse().expect("an agent id");
//! source.signal(Subject::Agent(agent), SignalType::Siem, Severity::High, None)?;
//! # Ok::<(), ledger_client::ClientError>(())
//! ```

use std::sync::Mutex;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use serde_json::{json, Map, Value};
use verifier::entry::signing::sign_entry;
use verifier::entry::{Assessment, Severity, Signal, SignalType, Signer, Subject};
use verifier::AgentId;

use crate::{admin_post, fetch_origin, http_agent, receipt, send, transport, Client, ClientError, ErrorCode, Receipt, Retry};

/// A registered signal source (a SIEM, a UEBA engine, a vulnerability or
/// threat-intelligence feed): its name, its key, and its next sequence
/// number, held while a signal is signed and sent so the log sees them in
/// order.
pub struct SignalSource {
    base: String,
    origin: String,
    name: String,
    key: SigningKey,
    http: ureq::Agent,
    retry: Retry,
    seq: Mutex<u64>,
}

impl std::fmt::Debug for SignalSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalSource").field("base", &self.base).field("name", &self.name).finish_non_exhaustive()
    }
}

impl SignalSource {
    /// Registers the source `name` with its public key and the signal
    /// types it may file (`POST /v1/sources`, with the admin token: an
    /// operator's call). Registering a name again replaces its key and
    /// types; its sequence numbers carry on.
    pub fn register(
        base: &str,
        admin_token: &str,
        name: &str,
        key: &ed25519_dalek::VerifyingKey,
        types: &[SignalType],
    ) -> Result<Receipt, ClientError> {
        let types: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
        admin_post(base, admin_token, "/v1/sources", &json!({"source": name, "key": B64.encode(key.as_bytes()), "types": types}))
    }

    /// Connects as the registered source `name` and resumes its sequence
    /// numbers from the log (`GET /v1/sources`); 403 `unknown_source`
    /// (found before anything is signed) when no such source is
    /// registered.
    pub fn connect(base: &str, name: &str, key: SigningKey) -> Result<Self, ClientError> {
        let base = base.trim_end_matches('/').to_owned();
        let http = http_agent();
        let origin = fetch_origin(&http, &base, Retry::default())?;
        let resp = http.get(&format!("{base}/v1/sources")).call().map_err(transport)?;
        let listed = receipt(resp)?.response;
        let last_seq = listed["sources"]
            .as_array()
            .and_then(|all| all.iter().find(|s| s["source"] == name))
            .and_then(|s| s["last_seq"].as_u64())
            .ok_or_else(|| ClientError::api(403, ErrorCode::UnknownSource, format!("no signal source named {name:?} is registered")))?;
        Ok(Self {
            base,
            origin,
            name: name.to_owned(),
            key,
            http,
            retry: Retry::default(),
            seq: Mutex::new(last_seq.checked_add(1).ok_or_else(|| transport("the source's sequence numbers are spent"))?),
        })
    }

    /// Sets the retry policy.
    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// The source's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Files a signal about `subject` (an agent, or for `threat_intel` and
    /// `vulnerability` every agent whose passport has a code hash): signs
    /// it with the next sequence number and appends it, retrying on 503.
    /// The sequence number advances once the log recorded it.
    pub fn signal(
        &self,
        subject: Subject,
        signal_type: SignalType,
        severity: Severity,
        evidence: Option<Map<String, Value>>,
    ) -> Result<Receipt, ClientError> {
        let signal = Signal {
            signer: Signer::Source(self.name.clone()),
            subject,
            signal_type,
            severity,
            assessment: None,
            evidence,
            signature: None,
        };
        let mut seq = self.seq.lock().unwrap_or_else(|e| e.into_inner());
        let entry = signed(&signal, *seq, &self.origin, &self.key);
        let result = send(&self.http, &self.base, self.retry, "/v1/signals", &entry);
        if result.is_ok() {
            *seq = seq.saturating_add(1);
        }
        result
    }
}

/// The signal's object with `seq`, signed for the log named `origin`.
fn signed(signal: &Signal, seq: u64, origin: &str, key: &SigningKey) -> Value {
    let mut entry = signal.to_object();
    entry.insert("seq".into(), Value::from(seq));
    sign_entry(&mut entry, origin, key);
    Value::Object(entry)
}

impl Client {
    /// Reports on another agent (`peer_report`): signed with this agent's
    /// key and its next sequence number, like its own entries. The log
    /// refuses a report about the agent itself (400 `invalid_signal`) and
    /// about an agent that is not registered or retired.
    pub fn report_peer(
        &self,
        peer: &AgentId,
        assessment: Assessment,
        severity: Severity,
        evidence: Option<Map<String, Value>>,
    ) -> Result<Receipt, ClientError> {
        let signal = Signal {
            signer: Signer::Agent(self.agent.clone()),
            subject: Subject::Agent(peer.clone()),
            signal_type: SignalType::PeerReport,
            severity,
            assessment: Some(assessment),
            evidence,
            signature: None,
        };
        let mut seq = self.seq.lock().unwrap_or_else(|e| e.into_inner());
        let entry = signed(&signal, *seq, &self.origin, &self.key());
        let result = self.send("/v1/signals", &entry);
        if result.is_ok() {
            *seq = seq.saturating_add(1);
        }
        result
    }
}
