//! A transparency log witness (c2sp.org/tlog-witness).
//!
//! A [`Witness`] is configured with the verifier keys of the logs it
//! watches (a log is its origin, the key's name) and remembers, per log,
//! the latest checkpoint it cosigned. `POST /add-checkpoint` submits a
//! newer checkpoint with a consistency proof from that one; the witness
//! checks the log's signature and the proof and answers with its
//! cosignature (c2sp.org/tlog-cosignature, Ed25519 `cosignature/v1`).
//! Because it never cosigns two checkpoints of one size with different
//! roots, nor a tree that does not extend the one it cosigned, a quorum of
//! witnesses makes a split view of the log detectable.
//!
//! Status codes of `add-checkpoint`, as the specification assigns them:
//!
//! | case | status |
//! |---|---|
//! | body not `old N`, proof lines, empty line, checkpoint note; > 63 proof lines | 400 |
//! | origin not configured | 404 |
//! | no signature from a configured key verifies, or one from a configured key fails | 403 |
//! | old size larger than the checkpoint's size | 400 |
//! | old size is not the size last cosigned for the origin (0 if none) | 409, `text/x.tlog.size`, `<size>\n` |
//! | size 0 with another root than the empty tree's | 422 |
//! | old size 0 and a non-empty proof | 422 |
//! | same size as last cosigned, another root | 422 |
//! | consistency proof does not verify | 422 |
//! | body larger than [`MAX_BODY_BYTES`] | 413 |
//! | success: the checkpoint is durably recorded first | 200, cosignature line |
//!
//! `GET /<hex SHA-256 of origin>/checkpoint` serves the latest cosigned
//! checkpoint of a log (404 if none), as the specification recommends.
//! Checking and recording a checkpoint happen under one lock per log, so
//! two concurrent submissions cannot roll the recorded tree back.
#![forbid(unsafe_code)]

pub mod request;
pub mod store;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use verifier::checkpoint::CheckpointError;
use verifier::cosignature::{CosignatureError, WitnessKey, WitnessSigner};
use verifier::hash::{hashes_equal, Hash, EMPTY_ROOT};
use verifier::note::{NoteError, SignedNote, SIG_PREFIX};
use verifier::proof::ConsistencyError;
use verifier::{Checkpoint, NoteVerifier, VerifierKey};

pub use request::{AddCheckpoint, RequestSyntax, MAX_PROOF_LINES};
pub use store::{load_or_create_key, origin_hash, CheckpointStore};

/// Largest `add-checkpoint` body read: 63 proof lines and a checkpoint
/// with 16 signatures fit many times over.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Content type of the 409 answer's body, the size last cosigned.
pub const TLOG_SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

/// Why the witness cosigns nothing: the checkpoint's fault (each maps to
/// its status in [`WitnessError::status`]) or the witness's own.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WitnessError {
    /// The body is not `old N`, proof lines, an empty line, a note.
    #[error("malformed request: {0}")]
    Request(#[from] RequestSyntax),
    /// The note or the checkpoint text in it is malformed.
    #[error("malformed checkpoint: {0}")]
    Checkpoint(CheckpointError),
    /// The witness does not watch this log.
    #[error("unknown log origin {origin:?}")]
    UnknownOrigin { origin: String },
    /// No configured key of the log signed the checkpoint, or one that
    /// claims to have did not.
    #[error("checkpoint is not signed by the log: {0}")]
    LogSignature(NoteError),
    /// The old size is larger than the checkpoint's.
    #[error("old size {old} is larger than the checkpoint's size {size}")]
    OldBeyondCheckpoint { old: u64, size: u64 },
    /// The old size is not the size the witness last cosigned.
    #[error("old size {old} is not the size last cosigned, {cosigned}")]
    Conflict { old: u64, cosigned: u64 },
    /// A checkpoint of size 0 with another root than the empty tree's.
    #[error("a checkpoint of size 0 must have the empty tree's root")]
    EmptyTreeRoot,
    /// A consistency proof from size 0, which must be empty.
    #[error("the consistency proof from size 0 must be empty")]
    ProofFromEmpty,
    /// The checkpoint does not extend the one last cosigned (a split view
    /// when the sizes are equal).
    #[error("checkpoint is not consistent with the one last cosigned: {0}")]
    Inconsistent(ConsistencyError),
    /// Reading or writing the witness's files failed.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// The stored checkpoint of a log does not parse.
    #[error("stored checkpoint {path} is corrupt: {error}")]
    StoredCheckpoint { path: PathBuf, error: CheckpointError },
    /// The witness key file does not parse.
    #[error("witness key {path}: {error}")]
    Key { path: PathBuf, error: CosignatureError },
    /// A new witness key needs a name.
    #[error("no witness key at {path}: a new one needs a name")]
    KeyNameMissing { path: PathBuf },
    /// The key file holds a key of another name than requested.
    #[error("witness key {path} is named {stored:?}, not {requested:?}")]
    KeyName { path: PathBuf, stored: String, requested: String },
    /// Cosigning failed (the clock is before 1970, or past 2^63 s).
    #[error("cosigning failed: {0}")]
    Cosign(CosignatureError),
    /// The background write was lost (the runtime is shutting down).
    #[error("the state write did not complete")]
    WriteAborted,
}

impl WitnessError {
    /// The HTTP status c2sp.org/tlog-witness assigns to this refusal.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Request(_) | Self::Checkpoint(_) | Self::OldBeyondCheckpoint { .. } => StatusCode::BAD_REQUEST,
            Self::UnknownOrigin { .. } => StatusCode::NOT_FOUND,
            Self::LogSignature(_) => StatusCode::FORBIDDEN,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::EmptyTreeRoot | Self::ProofFromEmpty | Self::Inconsistent(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Io { .. }
            | Self::StoredCheckpoint { .. }
            | Self::Key { .. }
            | Self::KeyNameMissing { .. }
            | Self::KeyName { .. }
            | Self::Cosign(_)
            | Self::WriteAborted => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable, machine-readable code for the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Request(_) => "malformed_request",
            Self::Checkpoint(_) => "malformed_checkpoint",
            Self::UnknownOrigin { .. } => "unknown_origin",
            Self::LogSignature(_) => "bad_log_signature",
            Self::OldBeyondCheckpoint { .. } => "old_size_beyond_checkpoint",
            Self::Conflict { .. } => "old_size_conflict",
            Self::EmptyTreeRoot => "empty_tree_root",
            Self::ProofFromEmpty => "proof_from_empty_tree",
            Self::Inconsistent(_) => "inconsistent",
            _ => "internal",
        }
    }
}

impl IntoResponse for WitnessError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Self::Conflict { cosigned, .. } = self {
            return (status, [(header::CONTENT_TYPE, TLOG_SIZE_CONTENT_TYPE)], format!("{cosigned}\n")).into_response();
        }
        let message = if status.is_server_error() {
            tracing::error!(error = %self, "add-checkpoint failed");
            "internal error".to_string()
        } else {
            self.to_string()
        };
        let body = serde_json::json!({ "error": { "code": self.code(), "message": message } });
        (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
    }
}

/// The latest checkpoint a witness cosigned for one log.
#[derive(Clone, Debug)]
struct Cosigned {
    size: u64,
    root: Hash,
    /// Checkpoint text, the log's verified signature lines, the cosignature.
    note: Arc<str>,
}

#[derive(Debug)]
struct WatchedLog {
    keys: Vec<NoteVerifier>,
    /// Held from checking a submission to recording it (the spec's race).
    latest: tokio::sync::Mutex<Option<Cosigned>>,
}

/// A witness: its key, the logs it watches and what it cosigned for each.
#[derive(Debug)]
pub struct Witness {
    signer: WitnessSigner,
    logs: BTreeMap<String, WatchedLog>,
    by_hash: BTreeMap<String, String>,
    store: CheckpointStore,
}

impl Witness {
    /// A witness cosigning with `signer` for the logs of `log_keys` (a
    /// log may have several keys), keeping its state in `store` and
    /// resuming from what is stored there.
    pub fn open(signer: WitnessSigner, log_keys: Vec<VerifierKey>, store: CheckpointStore) -> Result<Self, WitnessError> {
        let mut keys: BTreeMap<String, Vec<NoteVerifier>> = BTreeMap::new();
        for key in log_keys {
            keys.entry(key.name().to_owned()).or_default().push(NoteVerifier::new(key));
        }
        let mut logs = BTreeMap::new();
        let mut by_hash = BTreeMap::new();
        for (origin, keys) in keys {
            let latest = match store.load(&origin)? {
                Some(note) => Some(parse_stored(&origin, note).map_err(|error| WitnessError::StoredCheckpoint {
                    path: PathBuf::from(format!("{}.checkpoint", origin_hash(&origin))),
                    error,
                })?),
                None => None,
            };
            by_hash.insert(origin_hash(&origin), origin.clone());
            logs.insert(origin, WatchedLog { keys, latest: tokio::sync::Mutex::new(latest) });
        }
        Ok(Self { signer, logs, by_hash, store })
    }

    /// The key clients verify this witness's cosignatures with.
    pub fn witness_key(&self) -> WitnessKey {
        self.signer.witness_key()
    }

    /// The size last cosigned for `origin` (0 if never), `None` for a log
    /// the witness does not watch.
    pub async fn cosigned_size(&self, origin: &str) -> Option<u64> {
        let log = self.logs.get(origin)?;
        Some(log.latest.lock().await.as_ref().map_or(0, |c| c.size))
    }

    /// The latest cosigned checkpoint of `origin`, with the log's
    /// signatures and the witness's cosignature.
    pub async fn latest(&self, origin: &str) -> Option<Arc<str>> {
        self.logs.get(origin)?.latest.lock().await.as_ref().map(|c| Arc::clone(&c.note))
    }

    /// Handles an `add-checkpoint` body: checks it, durably records the
    /// checkpoint and returns the cosignature line(s).
    pub async fn add_checkpoint(&self, body: &[u8]) -> Result<String, WitnessError> {
        let request = AddCheckpoint::parse(body)?;
        let note = SignedNote::parse(request.note).map_err(|e| WitnessError::Checkpoint(CheckpointError::Note(e)))?;
        let checkpoint = Checkpoint::from_text(&note.text).map_err(WitnessError::Checkpoint)?;
        let log = self.logs.get(&checkpoint.origin).ok_or_else(|| WitnessError::UnknownOrigin { origin: checkpoint.origin.clone() })?;
        let signed_by = verify_log_signature(&log.keys, &note)?;
        let (old, size) = (request.old_size, checkpoint.size);
        if old > size {
            return Err(WitnessError::OldBeyondCheckpoint { old, size });
        }

        let mut latest = log.latest.lock().await;
        let (cosigned, cosigned_root) = latest.as_ref().map_or((0, EMPTY_ROOT), |c| (c.size, c.root));
        if old != cosigned {
            return Err(WitnessError::Conflict { old, cosigned });
        }
        if size == 0 && !hashes_equal(&checkpoint.root, &EMPTY_ROOT) {
            return Err(WitnessError::EmptyTreeRoot);
        }
        if old == 0 && !request.proof.is_empty() {
            return Err(WitnessError::ProofFromEmpty);
        }
        if old > 0 {
            // Equal sizes with different roots come back as
            // `EqualSizeDifferentRoots`: the split view, refused with 422.
            verifier::proof::verify_consistency(old, size, &request.proof, &cosigned_root, &checkpoint.root)
                .map_err(WitnessError::Inconsistent)?;
        }

        let line = self.signer.cosign(&note.text, now_secs()).map_err(WitnessError::Cosign)?;
        if old == size && latest.is_some() {
            // The checkpoint cosigned last, submitted again (consistency
            // made sure the roots are equal): a fresh cosignature, and
            // nothing to write, so replaying a public checkpoint costs the
            // witness no disk writes under the log's lock.
            return Ok(line);
        }
        let mut stored = format!("{}\n", note.text);
        for sig in note.signatures.iter().filter(|s| signed_by.iter().any(|k| k.name() == s.name && k.id() == s.id)) {
            let mut blob = sig.id.to_be_bytes().to_vec();
            blob.extend_from_slice(&sig.signature);
            stored.push_str(&format!("{SIG_PREFIX}{} {}\n", sig.name, B64.encode(blob)));
        }
        stored.push_str(&line);
        let store = self.store.clone();
        let origin = checkpoint.origin.clone();
        let to_write = stored.clone();
        tokio::task::spawn_blocking(move || store.save(&origin, &to_write)).await.map_err(|_| WitnessError::WriteAborted)??;
        *latest = Some(Cosigned { size, root: checkpoint.root, note: stored.into() });
        tracing::info!(origin = %checkpoint.origin, old, size, "cosigned");
        Ok(line)
    }
}

/// The keys of `keys` whose signature on `note` verifies; an error if none
/// does or if a line claiming one of them fails (c2sp.org/signed-note).
fn verify_log_signature<'a>(keys: &'a [NoteVerifier], note: &SignedNote) -> Result<Vec<&'a VerifierKey>, WitnessError> {
    let mut verified = Vec::new();
    let mut missing = None;
    for verifier in keys {
        match verifier.verify(note) {
            Ok(()) => verified.push(verifier.key()),
            Err(e @ NoteError::UnknownKey { .. }) => missing = Some(e),
            Err(e) => return Err(WitnessError::LogSignature(e)),
        }
    }
    match (verified.is_empty(), missing) {
        (true, Some(e)) => Err(WitnessError::LogSignature(e)),
        _ => Ok(verified),
    }
}

/// Reads back a stored note. Its signatures are not checked again: the
/// witness wrote it, and the log may have rotated its key since.
fn parse_stored(origin: &str, note: String) -> Result<Cosigned, CheckpointError> {
    let parsed = SignedNote::parse(&note)?;
    let checkpoint = Checkpoint::from_text(&parsed.text)?;
    if checkpoint.origin != origin {
        return Err(CheckpointError::WrongOrigin { expected: origin.into(), found: checkpoint.origin });
    }
    Ok(Cosigned { size: checkpoint.size, root: checkpoint.root, note: note.into() })
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The witness's HTTP interface: `POST /add-checkpoint` and
/// `GET /{origin hash}/checkpoint`, bodies bounded by [`MAX_BODY_BYTES`].
pub fn app(witness: Arc<Witness>) -> Router {
    Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .route("/{origin_hash}/checkpoint", get(checkpoint))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(witness)
}

async fn add_checkpoint(State(witness): State<Arc<Witness>>, body: Bytes) -> Response {
    // A task of its own: a client that goes away mid-request does not
    // cancel it between writing the state and updating it in memory (the
    // next request would be checked against stale state).
    let task = tokio::spawn(async move { witness.add_checkpoint(&body).await });
    let result = task.await.unwrap_or(Err(WitnessError::WriteAborted));
    match result {
        Ok(line) => (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], line).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn checkpoint(State(witness): State<Arc<Witness>>, UrlPath(hash): UrlPath<String>) -> Response {
    let note = match witness.by_hash.get(&hash) {
        Some(origin) => witness.latest(origin).await,
        None => None,
    };
    match note {
        Some(note) => (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note.to_string()).into_response(),
        None => {
            let body = serde_json::json!({ "error": { "code": "not_found", "message": "no checkpoint cosigned for this log" } });
            (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
        }
    }
}
