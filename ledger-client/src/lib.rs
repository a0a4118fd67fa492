//! Agent Ledger SDK for agents.
//!
//! * [`load_or_create_key`]: the agent's Ed25519 key, kept 0600.
//! * [`Client`]: signs every entry with the agent's key and the next
//!   sequence number (resumed from the log at start), submits it, and
//!   retries with exponential backoff on 503 (honouring `Retry-After`).
//! * Self-attestation: [`Client::attest`] fetches a nonce, measures, asks the
//!   [`Attester`] for evidence ([`SoftwareAttester`], or `TpmAttester` with
//!   the `tpm` feature) and submits; [`Client::attest_every`] runs it on a
//!   timer, and [`Client::act_high_risk`] attests right before acting.
//! * [`RequestSignature`]: the headers of an agent-signed request, for
//!   callers that send their own HTTP requests (tests, load generators).
//! * Signals: [`SignalSource`] signs and files a registered source's
//!   signals (SIEM, UEBA, vulnerability and threat-intelligence feeds);
//!   [`Client::report_peer`] files an agent's signed report on a peer.
//! * [`EventStream`] ([`Client::events`]): the log's revocation bus as a
//!   blocking iterator of typed [`Event`]s that resumes by itself after a
//!   lost connection, never missing or repeating one.
//!
//! ```no_run
//! use ledger_client::{Client, Measurements, SoftwareAttester};
//! let key = ledger_client::load_or_create_key(std::path::Path::new("agent.key"))?;
//! let client = Client::connect("http://127.0.0.1:8080", "spiffe://example.org/agent/billing", key)?
//!     .with_attester(Box::new(SoftwareAttester), Measurements::new([0xc0; 32], None, "sha256:…"));
//! client.attest()?;
//! client.act("pay", "invoices/7", Some(serde_json::json!({"amount": 1250})))?;
//! # Ok::<(), ledger_client::ClientError>(())
//! ```
#![forbid(unsafe_code)]

mod attester;
mod events;
mod keys;
mod request_signature;
mod signals;
mod tokens;
#[cfg(feature = "tpm")]
mod tpm;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use rand_core::SeedableRng as _;
use serde_json::{json, Value};
use verifier::agent_id::AgentIdError;
use verifier::entry::signing::{hex, rotation, sign_entry};
use verifier::entry::EntryKind;
use verifier::AgentId;

pub use attester::{Attester, BehaviourTracker, Runtime, SoftwareAttester};
pub use events::{Event, EventFilter, EventStream, EventType, Reconnect};
pub use keys::{load_key, load_or_create_key, public_key_b64, save_key};
pub use request_signature::RequestSignature;
pub use signals::SignalSource;
pub use tokens::{now_ms, verify_peer, EscalationStatus, IssuedToken, TokenGrant, TokenKey, TokenVerifier};
#[cfg(feature = "tpm")]
pub use tpm::TpmAttester;
pub use verifier::statement::{PeerCheck, PeerError, Statement};
pub use verifier::token::{Operation, TokenError};
pub use verifier::wire::ErrorCode;
pub use verifier::wire::{TrustComponents, TrustScore};

/// What the client failed at.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The key file.
    #[error("agent key: {0}")]
    Key(String),
    /// The agent id the client was given is no SPIFFE agent id.
    #[error("invalid agent id {id:?}: {reason}")]
    AgentId {
        /// The id as given.
        id: String,
        /// Why it is not one.
        reason: AgentIdError,
    },
    /// The server answered with an error.
    #[error("{status} {code}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Stable error code, as the server sent it (also a code newer
        /// than this SDK); [`ClientError::error_code`] parses it.
        code: String,
        /// Message.
        message: String,
    },
    /// No answer (connection, timeout) or an unreadable one.
    #[error("transport: {0}")]
    Transport(String),
    /// The TPM failed (the message names the TCTI).
    #[error("TPM: {0}")]
    Tpm(String),
    /// Still 503 after every retry.
    #[error("server still busy after {0} attempts")]
    Busy(u32),
    /// Nothing accepted the connection, on every attempt (the server is
    /// down or not listening); nothing was sent.
    #[error("the ledger at {base} is unreachable after {attempts} attempts: {reason}")]
    Unavailable {
        /// The server's base URL.
        base: String,
        /// Attempts in all.
        attempts: u32,
        /// The last connection error.
        reason: String,
    },
}

impl ClientError {
    /// The server's error code, when the server answered with an error
    /// whose code this SDK knows; `None` for other errors and for codes
    /// newer than this SDK (the raw text stays in [`ClientError::Api`]).
    ///
    /// ```
    /// use ledger_client::{ClientError, ErrorCode};
    /// let known = ClientError::Api { status: 409, code: "sequence_replayed".into(), message: String::new() };
    /// assert_eq!(known.error_code(), Some(ErrorCode::SequenceReplayed));
    /// let newer = ClientError::Api { status: 409, code: "from_the_future".into(), message: String::new() };
    /// assert_eq!(newer.error_code(), None);
    /// assert!(matches!(&newer, ClientError::Api { code, .. } if code == "from_the_future"));
    /// ```
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            Self::Api { code, .. } => code.parse().ok(),
            _ => None,
        }
    }

    /// An error of the server's API found before sending (the same code the
    /// server would answer with).
    fn api(status: u16, code: ErrorCode, message: String) -> Self {
        Self::Api { status, code: code.as_str().to_owned(), message }
    }

    /// Whether the log recorded the entry although it answered with an
    /// error: a failed attestation is recorded, as evidence.
    fn recorded(result: &Result<Receipt, Self>) -> bool {
        match result {
            Ok(_) => true,
            Err(e) => e.error_code() == Some(ErrorCode::AttestationFailed),
        }
    }
}

/// Where an entry landed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// Index in the log.
    pub index: u64,
    /// The full response.
    pub response: Value,
}

/// Retry policy for 503 answers.
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    /// Attempts in all.
    pub attempts: u32,
    /// First backoff.
    pub initial: Duration,
    /// Longest backoff.
    pub max: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self { attempts: 8, initial: Duration::from_millis(50), max: Duration::from_secs(2) }
    }
}

/// What an agent attests about itself.
#[derive(Debug)]
pub struct Measurements {
    /// SHA-256 of its code.
    pub code_hash: [u8; 32],
    /// SHA-256 of its model weights.
    pub model_hash: Option<[u8; 32]>,
    /// Its runtime.
    pub runtime: Runtime,
    /// Its recent API calls.
    pub behaviour: BehaviourTracker,
}

impl Measurements {
    /// Measurements with the current runtime and an empty behaviour window.
    pub fn new(code_hash: [u8; 32], model_hash: Option<[u8; 32]>, image_digest: &str) -> Self {
        Self { code_hash, model_hash, runtime: Runtime::current(image_digest), behaviour: BehaviourTracker::new(256) }
    }
}

/// An agent's connection to the ledger.
pub struct Client {
    base: String,
    /// The log's origin (the first line of its checkpoints): agent
    /// signatures are bound to it, so they cannot be replayed to another log.
    origin: String,
    agent: AgentId,
    /// The agent's key; replaced by [`Client::rotate`] under the `seq`
    /// lock, so every entry is signed with the key in force at its `seq`.
    key: RwLock<SigningKey>,
    http: ureq::Agent,
    retry: Retry,
    /// Next sequence number; held while an entry is signed and sent, so the
    /// log sees this agent's entries in sequence order.
    seq: Mutex<u64>,
    attester: Option<(Box<dyn Attester>, Measurements)>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.base).field("agent", &self.agent).finish_non_exhaustive()
    }
}

fn transport(e: impl std::fmt::Display) -> ClientError {
    ClientError::Transport(e.to_string())
}

pub use verifier::agent_id::encode_id;

impl Client {
    /// Connects as `agent` and resumes its sequence numbers from the log
    /// (the agent must be registered). The id is checked here, once
    /// ([`ClientError::AgentId`]), before anything is sent.
    pub fn connect(base: &str, agent: &str, key: SigningKey) -> Result<Self, ClientError> {
        Self::connect_with(base, agent, key, Retry::default())
    }

    /// [`Client::connect`] with a retry policy, used from the first
    /// request on (a server that is not up yet is retried like a 503).
    pub fn connect_with(base: &str, agent: &str, key: SigningKey, retry: Retry) -> Result<Self, ClientError> {
        let agent = AgentId::parse(agent).map_err(|reason| ClientError::AgentId { id: agent.to_owned(), reason })?;
        let http = http_agent();
        let mut client = Self {
            base: base.trim_end_matches('/').to_owned(),
            origin: String::new(),
            agent,
            key: RwLock::new(key),
            http,
            retry,
            seq: Mutex::new(1),
            attester: None,
        };
        client.origin = client.fetch_origin()?;
        client.seq = Mutex::new(client.next_seq_from_log()?);
        Ok(client)
    }

    /// The sequence number after the last one the log recorded for this
    /// agent.
    fn next_seq_from_log(&self) -> Result<u64, ClientError> {
        let state = self.get(&format!("/v1/agents/{}", encode_id(self.agent.as_str())))?;
        state["last_seq"]
            .as_u64()
            .unwrap_or(0)
            .checked_add(1)
            .ok_or_else(|| transport("the log's last sequence number is the largest there is"))
    }

    /// After an answer to an entry: the sequence number advances if the
    /// log recorded it, and is read again from the log if the log says it
    /// was already used (an earlier answer was lost, e.g. a timeout after
    /// the commit), so the next entry does not fail the same way.
    fn settle(&self, seq: &mut u64, count: u64, result: &Result<Receipt, ClientError>) {
        if ClientError::recorded(result) {
            *seq += count;
        } else if matches!(result, Err(e) if e.error_code() == Some(ErrorCode::SequenceReplayed)) {
            if let Ok(next) = self.next_seq_from_log() {
                *seq = next;
            }
        }
    }

    /// Registers a passport with the admin token (an operator's call).
    pub fn register(base: &str, admin_token: &str, passport: &Value) -> Result<Receipt, ClientError> {
        admin_post(base, admin_token, "/v1/agents", passport)
    }

    /// Uses `attester` and `measurements` for [`Client::attest`].
    pub fn with_attester(mut self, attester: Box<dyn Attester>, measurements: Measurements) -> Self {
        self.attester = Some((attester, measurements));
        self
    }

    /// Sets the retry policy.
    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// The agent's id.
    pub fn agent(&self) -> &AgentId {
        &self.agent
    }

    /// The origin of the log this client writes to.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The log's origin: the first line of its latest checkpoint.
    fn fetch_origin(&self) -> Result<String, ClientError> {
        fetch_origin(&self.http, &self.base, self.retry)
    }

    /// Records an action: signs it with the next sequence number and
    /// appends it, retrying on 503.
    pub fn act(&self, action: &str, resource: &str, data: Option<Value>) -> Result<Receipt, ClientError> {
        let mut entry = json!({"kind": EntryKind::Action.as_str(), "action": action, "resource": resource});
        if let Some(d) = data {
            entry["data"] = d;
        }
        if let Some((_, m)) = &self.attester {
            m.behaviour.record(action);
        }
        self.submit("/v1/entries", entry)
    }

    /// Appends any action object: `agent`, `seq` and `signature` are
    /// filled in here. Hidden fields (`"hidden": {"amount": {"u64": …,
    /// "prove": […]}, …}`) are committed and proven here, with the log's own
    /// code ([`commit_hidden`]), so the signature covers only the
    /// commitments in the leaf (never a value in the clear) and auditors can
    /// check it offline; the openings travel beside the entry for the log's
    /// secret store.
    pub fn append(&self, entry: Value) -> Result<Receipt, ClientError> {
        let mut rng =
            rand_chacha::ChaCha20Rng::from_rng(rand_core::OsRng).map_err(|e| ClientError::Key(format!("OS random source: {e}")))?;
        self.append_with_rng(entry, &mut rng)
    }

    /// [`Client::append`] with the randomness of the commitments and
    /// proofs drawn from `rng` (`Send`, since a prover may hand the proof to
    /// another thread: a seeded `ChaCha20Rng` or `OsRng`, not `thread_rng`).
    pub fn append_with_rng<R: rand_core::RngCore + rand_core::CryptoRng + Send>(
        &self,
        entry: Value,
        rng: &mut R,
    ) -> Result<Receipt, ClientError> {
        if let (Some((_, m)), Some(action)) = (&self.attester, entry.get("action").and_then(Value::as_str)) {
            m.behaviour.record(action);
        }
        let mut seq = self.seq.lock().unwrap_or_else(|e| e.into_inner());
        // The proof is bound to this agent and sequence number, so they are
        // fixed (under the lock) before committing.
        let body = seal_entry(entry, &self.origin, &self.agent, *seq, &self.key(), rng)?;
        let result = self.send("/v1/entries", &body);
        self.settle(&mut seq, 1, &result);
        result
    }

    /// Appends `entries` (action objects, as [`Client::append`] takes
    /// them) in one request, all or none (`POST /v1/entries/batch`): each
    /// sealed with the next sequence number in turn, so they land at
    /// contiguous indices in this order. One round trip and one durable
    /// commit for all of them.
    pub fn append_batch(&self, entries: Vec<Value>) -> Result<Vec<Receipt>, ClientError> {
        if entries.is_empty() {
            return Err(ClientError::api(400, ErrorCode::EmptyBatch, "a batch needs at least one entry".into()));
        }
        let mut rng =
            rand_chacha::ChaCha20Rng::from_rng(rand_core::OsRng).map_err(|e| ClientError::Key(format!("OS random source: {e}")))?;
        if let Some((_, m)) = &self.attester {
            entries.iter().filter_map(|e| e.get("action").and_then(Value::as_str)).for_each(|a| m.behaviour.record(a));
        }
        let mut seq = self.seq.lock().unwrap_or_else(|e| e.into_inner());
        let key = self.key();
        let sealed = entries
            .into_iter()
            .zip(*seq..)
            .map(|(entry, n)| seal_entry(entry, &self.origin, &self.agent, n, &key, &mut rng))
            .collect::<Result<Vec<_>, _>>()?;
        let count = sealed.len() as u64;
        let result = self.send("/v1/entries/batch", &Value::Array(sealed));
        self.settle(&mut seq, count, &result);
        let listed = result?.response["entries"].as_array().cloned().unwrap_or_default();
        let receipts = listed
            .into_iter()
            .map(|e| e["index"].as_u64().map(|index| Receipt { index, response: e.clone() }))
            .collect::<Option<Vec<_>>>()
            .filter(|r| r.len() as u64 == count)
            .ok_or_else(|| transport("the batch answer does not list the index of every entry"))?;
        Ok(receipts)
    }

    /// Signs a committed entry (its `agent` and `seq` set under the `seq`
    /// lock), adds its openings beside the signature and appends it; the
    /// sequence number advances once the log recorded it.
    fn sign_and_append(&self, seq: &mut u64, mut entry: Value, openings: Option<Value>) -> Result<Receipt, ClientError> {
        if let Some(obj) = entry.as_object_mut() {
            sign_entry(obj, &self.origin, &self.key());
            if let Some(o) = openings {
                obj.insert("openings".into(), o);
            }
        }
        let result = self.send("/v1/entries", &entry);
        self.settle(seq, 1, &result);
        result
    }

    /// [`Client::append`] for agents that leave the zk work to the log: the
    /// plain hidden values go to `POST /v1/hidden/commit` (a signed request;
    /// the log commits, proves and keeps nothing), and the committed entry
    /// is then signed here and appended with the openings it returned. The
    /// signature covers only the commitments, as with [`Client::append`].
    pub fn append_committed_by_log(&self, mut entry: Value) -> Result<Receipt, ClientError> {
        let mut seq = self.seq.lock().unwrap_or_else(|e| e.into_inner());
        let obj = entry.as_object_mut().ok_or_else(|| invalid_hidden("an entry must be a JSON object".into()))?;
        obj.insert("agent".into(), Value::from(self.agent.as_str()));
        obj.insert("seq".into(), Value::from(*seq));
        let openings = match obj.remove("hidden") {
            Some(hidden) => {
                let mut salt = [0u8; 16];
                rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut salt);
                let salt = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(salt);
                let request = json!({"seq": *seq, "salt": salt, "hidden": hidden});
                let sent = verifier::hidden::parse_hidden(&request["hidden"]).map_err(|e| invalid_hidden(e.to_string()))?;
                let committed = self.signed_post("/v1/hidden/commit", request.to_string())?;
                for member in ["hidden", "predicates"] {
                    if let Some(v) = committed.get(member) {
                        obj.insert(member.into(), v.clone());
                    }
                }
                let openings = committed.get("openings").cloned().ok_or_else(|| transport("commit response without \"openings\""))?;
                // The agent signs what the log returned: check it first.
                check_committed(
                    obj,
                    &openings,
                    &sent,
                    &verifier::disclosure::entry_predicates_context(&self.origin, self.agent.as_str(), *seq),
                )?;
                Some(openings)
            }
            None => None,
        };
        self.sign_and_append(&mut seq, entry, openings)
    }

    /// Asks for a disclosure bundle of one of this agent's own entries
    /// (`{"reveal": [...], "prove": [{"field", "le"?, "ge"?}]}`), signing
    /// the request with the agent's key.
    pub fn disclose(&self, index: u64, request: &Value) -> Result<Value, ClientError> {
        self.signed_post(&format!("/v1/entries/{index}/disclosures"), request.to_string())
    }

    /// The trust score of `agent` now (`GET /v1/agents/{id}/trust`): the
    /// server applies decay up to the instant it answers. `ledger-verify
    /// trust` recomputes it from the log.
    pub fn trust(&self, agent: &AgentId) -> Result<TrustScore, ClientError> {
        let value = self.get(&format!("/v1/agents/{}/trust", encode_id(agent.as_str())))?;
        serde_json::from_value(value).map_err(|e| transport(format!("unexpected trust response: {e}")))
    }

    /// POSTs `body` as a request signed with the agent's key, bound to the
    /// log's origin and the agent id.
    fn signed_post(&self, path: &str, body: String) -> Result<Value, ClientError> {
        // Signed afresh for each attempt: a retried request is a new one.
        let resp = retrying(&self.base, self.retry, || {
            let signed = RequestSignature::sign(&self.origin, &self.agent, &self.key(), "POST", path, body.as_bytes());
            let mut request = self.http.post(&format!("{}{path}", self.base)).header("content-type", "application/json");
            for (name, value) in signed.headers() {
                request = request.header(name, &value);
            }
            request.send(body.as_str())
        })?;
        receipt(resp).map(|r| r.response)
    }

    /// Subscribes to the log's events that pass `filter`
    /// (`GET /v1/events/stream`): a blocking iterator that reconnects
    /// after a lost connection with the last index it reached, so it
    /// misses and repeats no event. Subscribing needs no agent key:
    /// [`EventStream::connect`] does the same with only the log's URL.
    ///
    /// ```no_run
    /// # fn run(client: &ledger_client::Client) -> Result<(), ledger_client::ClientError> {
    /// use ledger_client::{EventFilter, EventType};
    /// let revocations = client.events(EventFilter::new().types([EventType::Revocation]).from_first())?;
    /// for event in revocations {
    ///     let event = event?;
    ///     println!("{:?} revoked at index {} ({})", event.agent, event.index, event.entry["reason"]);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn events(&self, filter: EventFilter) -> Result<EventStream, ClientError> {
        EventStream::connect(&self.base, filter)
    }

    /// Attests, then acts: for actions that must not run on a stale
    /// attestation. Fails without acting if the attestation fails.
    pub fn act_high_risk(&self, action: &str, resource: &str, data: Option<Value>) -> Result<Receipt, ClientError> {
        self.attest()?;
        self.act(action, resource, data)
    }

    /// Rotates the agent's key: the log records the rotation signed by the
    /// old and the new key, and the client signs with the new key after
    /// (also on other threads, such as an [`Client::attest_every`] loop).
    pub fn rotate(&self, new_key: SigningKey) -> Result<Receipt, ClientError> {
        let mut seq = self.seq.lock().unwrap_or_else(|e| e.into_inner());
        let entry = rotation(&self.origin, self.agent.as_str(), *seq, &self.key(), &new_key);
        let receipt = self.send("/v1/entries", &Value::Object(entry))?;
        *seq += 1;
        *self.key.write().unwrap_or_else(|e| e.into_inner()) = new_key;
        Ok(receipt)
    }

    /// The key in force (a copy: [`Client::rotate`] may replace it).
    fn key(&self) -> SigningKey {
        self.key.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The agent's public key in force, base64.
    pub fn public_key(&self) -> String {
        public_key_b64(&self.key())
    }

    /// One attestation: fetches a nonce, builds the claims (measurements,
    /// agent, next `seq`), asks the [`Attester`] for evidence bound to them
    /// ([`verifier::tpm::qualifying_data`] of the nonce, the agent's key and
    /// the claims), signs and submits. The log records it with its verdict;
    /// a failing verdict is an error (422 `attestation_failed`).
    pub fn attest(&self) -> Result<Receipt, ClientError> {
        let (attester, m) = self.attester.as_ref().ok_or_else(|| ClientError::Key("no attester configured".into()))?;
        let nonce = self.signed_post(&format!("/v1/agents/{}/nonce", encode_id(self.agent.as_str())), String::new())?;
        let nonce_b64 = nonce["nonce"].as_str().ok_or_else(|| transport("nonce response without \"nonce\""))?.to_owned();
        let nonce_bytes: [u8; 32] = B64
            .decode(&nonce_b64)
            .ok()
            .and_then(|n| n.as_slice().try_into().ok())
            .ok_or_else(|| transport("the nonce is not the base64 of 32 bytes"))?;
        let mut body = serde_json::Map::new();
        body.insert("kind".into(), Value::from(EntryKind::Attestation.as_str()));
        body.insert("nonce".into(), Value::from(nonce_b64));
        body.insert("code_hash".into(), Value::from(hex(&m.code_hash)));
        if let Some(h) = &m.model_hash {
            body.insert("model_hash".into(), Value::from(hex(h)));
        }
        body.insert("runtime".into(), json!({"os": m.runtime.os, "version": m.runtime.version, "image_digest": m.runtime.image_digest}));
        body.insert("behaviour".into(), m.behaviour.fingerprint());
        // The quote binds `agent` and `seq` too, so the sequence number is
        // fixed, and held, before the evidence is made.
        let mut seq = self.seq.lock().unwrap_or_else(|e| e.into_inner());
        body.insert("agent".into(), Value::from(self.agent.as_str()));
        body.insert("seq".into(), Value::from(*seq));
        let key = self.key();
        let qualifying_data = verifier::tpm::qualifying_data(&nonce_bytes, key.verifying_key().as_bytes(), &body);
        body.insert("evidence".into(), attester.evidence(&qualifying_data, &m.code_hash)?);
        sign_entry(&mut body, &self.origin, &key);
        let result = self.send("/v1/attestations", &Value::Object(body));
        // The log consumed this sequence number if it recorded the
        // attestation, which it does with a failing verdict too.
        if ClientError::recorded(&result) {
            *seq += 1;
        }
        result
    }

    /// Attests every `interval` on a background thread until the returned
    /// handle is stopped or dropped. Failures are reported to `on_error`.
    pub fn attest_every(self: &Arc<Self>, interval: Duration, on_error: impl Fn(&ClientError) + Send + 'static) -> AttestLoop {
        let stop = Arc::new(AtomicBool::new(false));
        let (client, flag) = (Arc::clone(self), Arc::clone(&stop));
        let handle = std::thread::spawn(move || {
            let mut next = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                if Instant::now() >= next {
                    if let Err(e) = client.attest() {
                        on_error(&e);
                    }
                    next = Instant::now() + interval;
                }
                std::thread::sleep(interval.min(Duration::from_millis(50)));
            }
        });
        AttestLoop { stop, handle: Some(handle) }
    }

    fn submit(&self, path: &str, mut entry: Value) -> Result<Receipt, ClientError> {
        let mut seq = self.seq.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(obj) = entry.as_object_mut() {
            obj.insert("agent".into(), Value::from(self.agent.as_str()));
            obj.insert("seq".into(), Value::from(*seq));
            sign_entry(obj, &self.origin, &self.key());
        }
        let result = self.send(path, &entry);
        // The log consumed this sequence number if it recorded the entry
        // (a failed attestation is recorded too).
        self.settle(&mut seq, 1, &result);
        result
    }

    fn send(&self, path: &str, body: &Value) -> Result<Receipt, ClientError> {
        send(&self.http, &self.base, self.retry, path, body)
    }

    fn get(&self, path: &str) -> Result<Value, ClientError> {
        let resp = retrying(&self.base, self.retry, || self.http.get(&format!("{}{path}", self.base)).call())?;
        receipt(resp).map(|r| r.response)
    }
}

/// POSTs `body` to `base` + `path` ([`retrying`]).
fn send(http: &ureq::Agent, base: &str, retry: Retry, path: &str, body: &Value) -> Result<Receipt, ClientError> {
    let body = body.to_string();
    receipt(retrying(base, retry, || http.post(&format!("{base}{path}")).header("content-type", "application/json").send(body.as_str()))?)
}

/// Runs `request` up to `retry.attempts` times, with exponential backoff,
/// while the server answers 503 (honouring `Retry-After`) or nothing
/// accepts the connection (nothing was sent, so nothing is recorded
/// twice); any other answer is returned.
fn retrying(
    base: &str,
    retry: Retry,
    mut request: impl FnMut() -> Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<ureq::http::Response<ureq::Body>, ClientError> {
    let mut backoff = retry.initial;
    let mut refused = None;
    for _ in 0..retry.attempts {
        let wait = match request() {
            Ok(resp) if resp.status().as_u16() == 503 => {
                refused = None;
                resp.headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|s| s.parse::<u64>().ok())
                    .map_or(backoff, |s| Duration::from_secs(s).min(retry.max))
            }
            Ok(resp) => return Ok(resp),
            Err(e) if not_connected(&e) => {
                refused = Some(e.to_string());
                backoff
            }
            Err(e) => return Err(transport(e)),
        };
        std::thread::sleep(wait.max(backoff));
        backoff = (backoff * 2).min(retry.max);
    }
    match refused {
        Some(reason) => Err(ClientError::Unavailable { base: base.to_owned(), attempts: retry.attempts, reason }),
        None => Err(ClientError::Busy(retry.attempts)),
    }
}

/// Whether the request failed before a connection was made, so that
/// nothing reached the server.
fn not_connected(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::ConnectionFailed => true,
        ureq::Error::Io(io) => io.kind() == std::io::ErrorKind::ConnectionRefused,
        _ => false,
    }
}

/// The origin of the log at `base`: the first line of its latest
/// checkpoint. Signatures are bound to it.
fn fetch_origin(http: &ureq::Agent, base: &str, retry: Retry) -> Result<String, ClientError> {
    let mut resp = retrying(base, retry, || http.get(&format!("{base}/v1/checkpoint")).call())?;
    let text = resp.body_mut().read_to_string().map_err(transport)?;
    let origin = text.lines().next().unwrap_or_default();
    if origin.is_empty() {
        return Err(transport("the checkpoint has no origin line"));
    }
    Ok(origin.to_owned())
}

/// POSTs `body` to `base` + `path` with the admin bearer token (an
/// operator's call).
fn admin_post(base: &str, admin_token: &str, path: &str, body: &Value) -> Result<Receipt, ClientError> {
    let resp = http_agent()
        .post(&format!("{}{path}", base.trim_end_matches('/')))
        .header("content-type", "application/json")
        .header("authorization", &format!("Bearer {admin_token}"))
        .send(body.to_string())
        .map_err(transport)?;
    receipt(resp)
}

/// An HTTP agent that hands every status back as a response.
fn http_agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(30))).build().into()
}

/// Checks what `POST /v1/hidden/commit` returned before the agent signs it:
/// the openings open the commitments (none with a zero blinding or salt),
/// the opened values are the ones sent, the proof claims exactly the
/// declared predicates and verifies for this entry.
fn check_committed(
    entry: &serde_json::Map<String, Value>,
    openings: &Value,
    sent: &std::collections::BTreeMap<String, verifier::hidden::HiddenValue>,
    context: &[u8],
) -> Result<(), ClientError> {
    use verifier::disclosure::Opening;
    use verifier::hidden::HiddenValue;
    let bad = |why: &str| transport(format!("the log's commitments were refused: {why}"));
    let fields = verifier::disclosure::CommittedFields::from_leaf(entry)
        .map_err(|e| bad(&e.to_string()))?
        .ok_or_else(|| bad("no \"hidden\" member"))?;
    let opened = verifier::hidden::openings_from_json(openings).map_err(|e| bad(&e.to_string()))?;
    verifier::hidden::check_openings(&fields, &opened, context, zk::params()).map_err(|e| bad(&e.to_string()))?;
    let mut claims = Vec::new();
    for (name, value) in sent {
        let same = match (value, opened.get(name)) {
            (HiddenValue::U64 { value, prove }, Some(Opening::U64 { value: got, .. })) => {
                claims.extend(prove.iter().map(|p| (name.clone(), *p)));
                value == got
            }
            (HiddenValue::Str(value), Some(Opening::Str { value: got, .. })) => value == got,
            _ => false,
        };
        if !same {
            return Err(bad(&format!("field {name:?} does not open to the value sent")));
        }
    }
    let proven = fields.predicates.as_ref().map(|p| p.claims.clone()).unwrap_or_default();
    if proven != claims || opened.len() != sent.len() {
        return Err(bad("the proof does not claim exactly the declared predicates"));
    }
    Ok(())
}

fn invalid_hidden(message: String) -> ClientError {
    ClientError::api(400, ErrorCode::InvalidHidden, message)
}

/// Replaces an entry's submitted `hidden` values by their commitments and
/// the proof of their declared predicates (in place), with the log's own
/// code, and returns the openings (JSON) to send beside it. The proof is
/// bound to the log `origin` and the entry's `agent` and `seq`, which must
/// already be set.
pub fn commit_hidden<R: rand_core::RngCore + rand_core::CryptoRng + Send>(
    entry: &mut serde_json::Map<String, Value>,
    origin: &str,
    rng: &mut R,
) -> Result<Value, ClientError> {
    verifier::hidden::commit_entry(entry, origin, rng, zk::params()).map_err(|e| match e {
        verifier::hidden::CommitError::Predicate(z) => ClientError::api(422, ErrorCode::PredicateFalse, z.to_string()),
        other => invalid_hidden(other.to_string()),
    })
}

/// An answer that is not JSON, quoting at most its first 200 characters
/// (the message may reach a model or a log).
fn not_json(status: u16, text: &str) -> ClientError {
    let excerpt: String = text.chars().take(200).collect();
    transport(format!("{status}: not JSON: {excerpt}{}", if excerpt.len() < text.len() { "…" } else { "" }))
}

/// An entry exactly as [`Client::append`] sends it, with no network:
/// `agent` and `seq` set, hidden fields committed and proven
/// ([`commit_hidden`], randomness from `rng`), signed for the log named
/// `origin`, and the openings beside the signature (`openings`, which the
/// log seals and keeps out of the leaf). The same key, entry, sequence
/// number and `rng` give the same bytes on every platform and binding.
pub fn seal_entry<R: rand_core::RngCore + rand_core::CryptoRng + Send>(
    mut entry: Value,
    origin: &str,
    agent: &AgentId,
    seq: u64,
    key: &SigningKey,
    rng: &mut R,
) -> Result<Value, ClientError> {
    let obj = entry.as_object_mut().ok_or_else(|| invalid_hidden("an entry must be a JSON object".into()))?;
    obj.insert("agent".into(), Value::from(agent.as_str()));
    obj.insert("seq".into(), Value::from(seq));
    let openings = if obj.contains_key("hidden") { Some(commit_hidden(obj, origin, rng)?) } else { None };
    sign_entry(obj, origin, key);
    if let Some(o) = openings {
        obj.insert("openings".into(), o);
    }
    Ok(entry)
}

/// The JSON body of a 2xx answer, or the server's error.
fn receipt_value(resp: &mut ureq::http::Response<ureq::Body>) -> Result<Value, ClientError> {
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().map_err(transport)?;
    let value: Value = serde_json::from_str(&text).map_err(|_| not_json(status, &text))?;
    if (200..300).contains(&status) {
        return Ok(value);
    }
    Err(ClientError::Api {
        status,
        code: value["error"]["code"].as_str().unwrap_or("unknown").to_owned(),
        message: value["error"]["message"].as_str().unwrap_or_default().to_owned(),
    })
}

fn receipt(mut resp: ureq::http::Response<ureq::Body>) -> Result<Receipt, ClientError> {
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().map_err(transport)?;
    let value: Value = serde_json::from_str(&text).map_err(|_| not_json(status, &text))?;
    if (200..300).contains(&status) {
        return Ok(Receipt { index: value["index"].as_u64().unwrap_or_default(), response: value });
    }
    Err(ClientError::Api {
        status,
        code: value["error"]["code"].as_str().unwrap_or("unknown").to_owned(),
        message: value["error"]["message"].as_str().unwrap_or_default().to_owned(),
    })
}

/// A running [`Client::attest_every`] loop; stops when dropped.
#[derive(Debug)]
pub struct AttestLoop {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl AttestLoop {
    /// Stops the loop and waits for it.
    pub fn stop(mut self) {
        self.halt();
    }

    /// Tells the loop to stop and returns at once: the thread ends by
    /// itself within 50 ms, or after an attestation in progress. For
    /// owners that must not block (a binding dropping it while another
    /// thread may wait for the loop's `on_error`).
    pub fn stop_in_background(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        drop(self.handle.take());
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for AttestLoop {
    fn drop(&mut self) {
        self.halt();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_agent_id_is_refused_before_anything_is_sent() {
        // Nothing listens on port 1: an id checked after connecting would
        // be a transport error.
        let err = Client::connect("http://127.0.0.1:1", "spiffe://example.org/workload/a", SigningKey::from_bytes(&[1; 32])).unwrap_err();
        assert!(
            matches!(&err, ClientError::AgentId { id, reason: AgentIdError::NotAnAgent } if id == "spiffe://example.org/workload/a"),
            "{err}"
        );
        assert_eq!(err.to_string(), "invalid agent id \"spiffe://example.org/workload/a\": agent ids have the path /agent/<name>");
    }

    #[test]
    fn a_refused_connection_is_retried_then_unavailable() {
        // Bind then drop: nothing listens on the port any more.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let base = format!("http://127.0.0.1:{port}");
        let retry = Retry { attempts: 3, initial: Duration::from_millis(1), max: Duration::from_millis(2) };
        let mut calls = 0;
        let err = retrying(&base, retry, || {
            calls += 1;
            http_agent().get(&format!("{base}/v1/checkpoint")).call()
        })
        .unwrap_err();
        assert_eq!(calls, 3);
        assert!(matches!(&err, ClientError::Unavailable { attempts: 3, base: b, .. } if *b == base), "{err}");
        let err = Client::connect_with(&base, "spiffe://example.org/agent/a", SigningKey::from_bytes(&[1; 32]), retry).unwrap_err();
        assert!(matches!(err, ClientError::Unavailable { .. }), "{err}");
    }
}
