//! An OpenID Shared Signals Framework 1.0 transmitter (Final, 2025-08-29):
//! the log's revocations, reinstatements and risk-level changes as CAEP
//! 1.0 and RISC 1.0 Security Event Tokens (RFC 8417), pushed to receivers
//! (RFC 8935) or polled by them (RFC 8936). docs/SSF.md is the user's
//! guide.
//!
//! - [`set`]: which SETs an entry makes, their claims and `jti`s;
//! - [`keys`]: the signing key (RS256, ES256 or EdDSA) and the JWK Set;
//! - [`stream`]: a stream's configuration, stored and shown, and the
//!   reading of management requests;
//! - [`auth`]: bearer tokens, receivers and scopes;
//! - `manage`: the stream management operations;
//! - `push`, `poll`: the two delivery methods.
//!
//! The log is the event store: a stream keeps only a durable **cursor**
//! (an entry index, in the log's SSF records: [`ledger_core::ssf`]) and
//! every SET is made again from its entry when it is sent. The cursor
//! moves past an entry only once each of its SETs was answered `2xx` (push;
//! a receiver's `400` gives that SET up)
//! or acknowledged (poll), so SETs go out in index order and a receiver
//! that was down, across transmitter restarts too, gets every event once
//! it is back. A SET may be sent twice (a restart between a delivery and
//! the cursor's write); it then has the same `jti`. Verification and
//! stream-updated SETs are not log entries: they wait in memory, ahead of
//! the stream's log events, and a restart forgets them.

pub mod auth;
pub mod keys;
mod manage;
mod poll;
mod push;
pub mod set;
pub mod stream;

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::http::HeaderMap;
use ledger_core::Log;
use serde_json::{json, Map, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use verifier::wire::ErrorCode;

pub use self::auth::{Caller, ReceiverToken, Scope};
pub use self::keys::{SetSigner, SigningAlg};
use self::set::EventType;
pub use self::stream::DefaultSubjects;
use self::stream::Stream;
use crate::error::ApiError;

/// Most streams one receiver may have.
pub const MAX_STREAMS_PER_RECEIVER: usize = 16;
/// Most streams in all.
pub const MAX_STREAMS: usize = 1024;
/// Most subjects a stream adds or removes.
pub const MAX_SUBJECTS: usize = 10_000;
/// Most verification and stream-updated SETs waiting on one stream;
/// beyond, a verification request is 429.
pub const MAX_MANAGEMENT_SETS: usize = 16;
/// Longest verification `state` and status `reason`.
const MAX_TEXT_CHARS: usize = 1024;

/// The transmitter's configuration.
#[derive(Clone, Debug)]
pub struct SsfConfig {
    /// The issuer (`iss`): an `http(s)` URL without path, query or
    /// fragment; the endpoints are under it.
    pub issuer: String,
    /// The SET signing algorithm.
    pub alg: SigningAlg,
    /// Which agents new streams include.
    pub default_subjects: DefaultSubjects,
    /// Who may call (the admin's token among them).
    pub tokens: Vec<ReceiverToken>,
    /// How long connecting to a receiver, and each read and write of a
    /// push, may take.
    pub push_timeout: Duration,
    /// The longest wait between two tries of a push.
    pub push_max_backoff: Duration,
    /// How long a poll without `returnImmediately` waits for SETs.
    pub poll_wait: Duration,
}

impl SsfConfig {
    /// Checks an issuer and returns it without a trailing `/`.
    pub fn issuer(issuer: &str) -> Result<String, String> {
        let trimmed = issuer.trim_end_matches('/');
        let bad = || format!("the SSF issuer {issuer:?} must be an http(s) URL without path, query or fragment");
        let uri: axum::http::Uri = trimmed.parse().map_err(|_| bad())?;
        let plain = matches!(uri.scheme_str(), Some("http" | "https"))
            && uri.host().is_some_and(|h| !h.is_empty())
            && uri.path_and_query().is_none_or(|p| p.as_str().is_empty() || p.as_str() == "/")
            && !trimmed.contains('#');
        plain.then(|| trimmed.to_owned()).ok_or_else(bad)
    }
}

/// A verification or stream-updated SET waiting for delivery.
#[derive(Clone, Debug)]
struct ManagementSet {
    jti: String,
    event_type: EventType,
    event: Value,
}

/// One stream in memory: its document, delivery state and wake-ups.
#[derive(Debug)]
struct StreamState {
    id: String,
    doc: Mutex<Stream>,
    /// Held across a read-modify-write-store of the document.
    manage: tokio::sync::Mutex<()>,
    /// Bumped on every change a delivery task must see.
    version: watch::Sender<u64>,
    management: Mutex<VecDeque<ManagementSet>>,
    /// The durable cursor; held across its store write.
    cursor: tokio::sync::Mutex<u64>,
    poll: tokio::sync::Mutex<poll::PollState>,
    deleted: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks in a way that leaves
    // partial state behind: each guards one assignment.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl StreamState {
    fn new(doc: Stream, cursor: u64) -> Self {
        Self {
            id: doc.stream_id.clone(),
            doc: Mutex::new(doc),
            manage: tokio::sync::Mutex::new(()),
            version: watch::Sender::new(0),
            management: Mutex::new(VecDeque::new()),
            cursor: tokio::sync::Mutex::new(cursor),
            poll: tokio::sync::Mutex::new(poll::PollState::default()),
            deleted: AtomicBool::new(false),
        }
    }

    fn snapshot(&self) -> Stream {
        lock(&self.doc).clone()
    }

    fn bump(&self) {
        self.version.send_modify(|v| *v = v.wrapping_add(1));
    }

    fn enqueue(&self, set: ManagementSet) -> bool {
        let mut queue = lock(&self.management);
        if queue.len() >= MAX_MANAGEMENT_SETS {
            return false;
        }
        queue.push_back(set);
        drop(queue);
        self.bump();
        true
    }
}

/// What the transmitter shares with its delivery tasks.
#[derive(Debug)]
struct Inner {
    config: SsfConfig,
    signer: SetSigner,
    log: Arc<Log>,
    streams: Mutex<BTreeMap<String, Arc<StreamState>>>,
    /// Held while a stream is created (the per-receiver count).
    creating: tokio::sync::Mutex<()>,
    stop: watch::Sender<bool>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    http: ureq::Agent,
}

impl Inner {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.issuer)
    }

    fn poll_url(&self, stream_id: &str) -> String {
        self.url(&format!("/ssf/poll/{stream_id}"))
    }

    /// Runs a store read or write on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Log) -> Result<T, ledger_core::Error> + Send + 'static,
    ) -> Result<T, ApiError> {
        let log = Arc::clone(&self.log);
        match tokio::task::spawn_blocking(move || f(&log)).await {
            Ok(result) => result.map_err(ApiError::from),
            Err(e) => Err(ApiError::internal(format_args!("SSF store task failed: {e}"))),
        }
    }

    async fn store_doc(&self, doc: &Stream) -> Result<(), ApiError> {
        let bytes = serde_json::to_vec(doc).map_err(ApiError::internal)?;
        let id = doc.stream_id.clone();
        self.blocking(move |log| log.put_ssf_stream(&id, &bytes, None)).await
    }

    /// Changes a stream's document under its lock and stores it.
    async fn modify<T>(&self, stream: &StreamState, change: impl FnOnce(&mut Stream) -> Result<T, ApiError>) -> Result<T, ApiError> {
        let _held = stream.manage.lock().await;
        if stream.deleted.load(Ordering::SeqCst) {
            return Err(unknown_stream(&stream.id));
        }
        let mut doc = stream.snapshot();
        let out = change(&mut doc)?;
        self.store_doc(&doc).await?;
        *lock(&stream.doc) = doc;
        stream.bump();
        Ok(out)
    }

    /// Moves a stream's durable cursor forwards to `to` (never back).
    async fn advance(&self, stream: &StreamState, to: u64) -> Result<(), ApiError> {
        let mut cursor = stream.cursor.lock().await;
        if to <= *cursor {
            return Ok(());
        }
        let id = stream.id.clone();
        match self.blocking(move |log| log.advance_ssf_cursor(&id, to)).await {
            Ok(()) => {}
            Err(e) if e.code() == ErrorCode::UnknownStream => {}
            Err(e) => return Err(e),
        }
        *cursor = to;
        Ok(())
    }

    /// Records a delivery error; a dropped SET's error is stored, a
    /// transient one kept in memory.
    async fn record_error(&self, stream: &StreamState, error: stream::DeliveryError) {
        if error.dropped {
            tracing::warn!(stream = %stream.id, jti = %error.jti, err = %error.err, "a receiver refused a SET; it is not sent again");
            if let Err(e) = self
                .modify(stream, |doc| {
                    doc.last_error = Some(error);
                    Ok(())
                })
                .await
            {
                tracing::warn!(stream = %stream.id, error = %e.message(), "storing a delivery error failed");
            }
        } else {
            tracing::debug!(stream = %stream.id, jti = %error.jti, err = %error.err, "a push failed; retrying");
            lock(&stream.doc).last_error = Some(error);
        }
    }
}

fn unknown_stream(id: &str) -> ApiError {
    ApiError::new(ErrorCode::UnknownStream, format!("no stream {id:?} for this receiver"))
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The transmitter: its streams, their delivery tasks and the management
/// API's operations (the routes in `routes/ssf.rs` only read requests and
/// write answers).
#[derive(Debug)]
pub struct Transmitter {
    inner: Arc<Inner>,
}

impl Transmitter {
    /// Loads (or creates) the signing key in `data_dir`, loads the streams
    /// from the log and starts a delivery task per stream. Must run inside
    /// a Tokio runtime.
    pub fn start(log: Arc<Log>, config: SsfConfig, data_dir: &Path) -> Result<Self, ledger_core::Error> {
        let (signer, created) = SetSigner::load_or_create(data_dir, config.alg)?;
        if created {
            tracing::info!(alg = config.alg.name(), kid = signer.kid(), "SSF signing key generated");
        }
        // Each connect, read and write is bounded; ureq's whole-call
        // timeout (`timeout_global`) made every push several times slower
        // (docs/PERFORMANCE.md), and the receiver's answer is read bounded
        // by bytes anyway.
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(config.push_timeout))
            .timeout_per_read(Some(config.push_timeout))
            .timeout_per_write(Some(config.push_timeout))
            .max_redirects(0)
            .max_redirects_will_error(false)
            .build()
            .into();
        let mut streams = BTreeMap::new();
        for stored in log.ssf_streams()? {
            let doc: Stream = serde_json::from_slice(&stored.config)
                .map_err(|e| ledger_core::Error::Config(format!("SSF stream {} does not decode: {e}", stored.id)))?;
            streams.insert(stored.id.clone(), Arc::new(StreamState::new(doc, stored.cursor)));
        }
        let inner = Arc::new(Inner {
            config,
            signer,
            log,
            streams: Mutex::new(streams),
            creating: tokio::sync::Mutex::new(()),
            stop: watch::Sender::new(false),
            workers: Mutex::new(Vec::new()),
            http,
        });
        let transmitter = Self { inner };
        let streams: Vec<Arc<StreamState>> = lock(&transmitter.inner.streams).values().cloned().collect();
        tracing::info!(streams = streams.len(), issuer = %transmitter.inner.config.issuer, "SSF transmitter started");
        for stream in streams {
            transmitter.spawn(stream);
        }
        Ok(transmitter)
    }

    fn spawn(&self, stream: Arc<StreamState>) {
        let task = tokio::spawn(push::run(Arc::clone(&self.inner), stream));
        let mut workers = lock(&self.inner.workers);
        workers.retain(|w| !w.is_finished());
        workers.push(task);
    }

    /// Tells every delivery task and waiting poll to stop, without waiting
    /// (a long poll then answers at once, so the server's drain is not
    /// held up by it).
    pub fn stop(&self) {
        self.inner.stop.send_replace(true);
    }

    /// Stops every delivery task (each stores its cursor) and waits for
    /// them.
    pub async fn shutdown(&self) {
        self.stop();
        let workers: Vec<JoinHandle<()>> = lock(&self.inner.workers).drain(..).collect();
        for worker in workers {
            let _ = worker.await;
        }
    }

    /// The signing key's id.
    pub fn kid(&self) -> &str {
        self.inner.signer.kid()
    }

    /// The Transmitter Configuration Metadata (SSF §7.1).
    pub fn metadata(&self) -> Value {
        let url = |path: &str| self.inner.url(path);
        json!({
            "spec_version": "1_0",
            "issuer": self.inner.config.issuer,
            "jwks_uri": url("/ssf/jwks.json"),
            "delivery_methods_supported": [stream::PUSH, stream::POLL],
            "configuration_endpoint": url("/ssf/stream"),
            "status_endpoint": url("/ssf/status"),
            "add_subject_endpoint": url("/ssf/subjects/add"),
            "remove_subject_endpoint": url("/ssf/subjects/remove"),
            "verification_endpoint": url("/ssf/verify"),
            "authorization_schemes": [{ "spec_urn": "urn:ietf:rfc:6750" }],
            "default_subjects": self.inner.config.default_subjects.name(),
        })
    }

    /// The JWK Set of the signing key.
    pub fn jwks(&self) -> Value {
        self.inner.signer.jwks()
    }

    /// Authenticates a management or poll request.
    pub fn caller(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        auth::authenticate(&self.inner.config.tokens, headers)
    }

    fn stream(&self, caller: &Caller, id: &str) -> Result<Arc<StreamState>, ApiError> {
        let stream = lock(&self.inner.streams).get(id).cloned().ok_or_else(|| unknown_stream(id))?;
        if !caller.owns(&lock(&stream.doc).owner) {
            return Err(unknown_stream(id));
        }
        Ok(stream)
    }

    fn config_of(&self, doc: &Stream) -> Value {
        doc.to_config(&self.inner.config.issuer, &self.inner.poll_url(&doc.stream_id))
    }

    /// Answers an RFC 8936 poll of stream `id`.
    pub async fn poll(&self, caller: &Caller, id: &str, request: &Map<String, Value>) -> Result<Value, ApiError> {
        let stream = self.stream(caller, id)?;
        poll::poll(&self.inner, &stream, request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_are_plain_http_urls() {
        assert_eq!(SsfConfig::issuer("https://tr.example/").unwrap(), "https://tr.example");
        assert_eq!(SsfConfig::issuer("http://127.0.0.1:8080").unwrap(), "http://127.0.0.1:8080");
        for bad in ["tr.example", "https://tr.example/issuer1", "https://tr.example?x=1", "ftp://tr.example", "https://tr.example#f"] {
            assert!(SsfConfig::issuer(bad).is_err(), "{bad}");
        }
    }
}
