//! Entries: appending one or a batch (`POST /v1/entries`,
//! `POST /v1/entries/batch`), reading one or a range, and
//! `POST /v1/hidden/commit`, hidden values committed by the log for an
//! agent that does not carry the zk code itself.
//!
//! The commit flow: the agent sends its hidden values (a signed request)
//! and the sequence number of the entry that will carry them; the log
//! commits, proves the declared predicates bound to that entry, answers
//! with the commitments, the proof and the openings, and keeps nothing.
//! The agent then signs the committed entry and appends it with the
//! openings (`POST /v1/entries`), so its signature never covers a value in
//! the clear. Authentication comes before any proving.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ledger_core::{Appended, Leaf, Submission};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::IntoParams;
use verifier::wire::{AppendedEntry, BatchAppendResponse, EntriesResponse, EntryRequest, EntryResponse, ErrorCode, ErrorResponse};

use super::AppState;
use crate::auth::{SignedAgent, SignedRoute};
use crate::error::ApiError;
use crate::extract::{batch_items, strict_json, EntryIndex, JsonBytes, Query};

/// The receipt of an appended entry.
pub(super) fn appended(a: &Appended) -> AppendedEntry {
    AppendedEntry { index: a.index, leaf_hash: a.leaf_hash, integrated_time: a.integrated_time }
}

/// Append one entry.
#[utoipa::path(post, path = "/v1/entries", tag = "entries",
    request_body(content = EntryRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Durably appended", body = AppendedEntry),
        (status = 400, description = "Malformed or invalid entry", body = ErrorResponse),
        (status = 401, description = "Missing or bad agent signature", body = ErrorResponse),
        (status = 403, description = "Unknown or retired agent", body = ErrorResponse),
        (status = 409, description = "Replayed sequence number (`sequence_replayed`)", body = ErrorResponse),
        (status = 413, description = "Entry too large", body = ErrorResponse),
        (status = 415, description = "Not application/json", body = ErrorResponse),
        (status = 422, description = "A declared predicate is false for its hidden value (`predicate_false`)", body = ErrorResponse),
        (status = 503, description = "Sequencer queue or prover queue full; see Retry-After", body = ErrorResponse),
    ))]
pub(super) async fn append(
    State(state): State<AppState>,
    JsonBytes(body): JsonBytes,
) -> Result<(StatusCode, Json<AppendedEntry>), ApiError> {
    let entry = Submission::from_json(&body, state.limits.max_entry_bytes)?;
    let done = state.log.submit(vec![entry]).await.map_err(|e| {
        let e = ApiError::from(e);
        state.metrics.note_refusal(e.code());
        e
    })?;
    let first = done.first().ok_or_else(|| ApiError::internal("an append of one entry returned no receipt"))?;
    Ok((StatusCode::CREATED, Json(appended(first))))
}

/// Append a JSON array of entries atomically, at contiguous indices.
#[utoipa::path(post, path = "/v1/entries/batch", tag = "entries",
    request_body(content = Vec<EntryRequest>, content_type = "application/json"),
    responses(
        (status = 201, description = "All entries durably appended", body = BatchAppendResponse),
        (status = 400, description = "Malformed or invalid entry (none appended)", body = ErrorResponse),
        (status = 401, description = "Missing or bad agent signature (none appended)", body = ErrorResponse),
        (status = 403, description = "Unknown or retired agent (none appended)", body = ErrorResponse),
        (status = 409, description = "Replayed sequence number (none appended)", body = ErrorResponse),
        (status = 413, description = "Batch too large", body = ErrorResponse),
        (status = 415, description = "Not application/json", body = ErrorResponse),
        (status = 503, description = "Sequencer queue full; see Retry-After", body = ErrorResponse),
    ))]
pub(super) async fn append_batch(
    State(state): State<AppState>,
    JsonBytes(body): JsonBytes,
) -> Result<(StatusCode, Json<BatchAppendResponse>), ApiError> {
    // Count and size the elements before parsing any of them (memory per
    // request stays at the body plus one slice per element).
    let items = batch_items(&body, state.limits.max_batch_entries, state.limits.max_entry_request_bytes)?;
    if items.is_empty() {
        return Err(ledger_core::Error::EmptyBatch.into());
    }
    let entries = items
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            // Each element is parsed as strictly as a single append (`parse_strict`, then `from_value`).
            Submission::from_json(raw.get().as_bytes(), state.limits.max_entry_bytes)
                .map_err(|e| ApiError::from(e).prefixed(&format!("entry {i}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    // The raw body is not needed while the entries wait for the sequencer.
    drop(items);
    drop(body);
    let done = state.log.submit(entries).await.map_err(|e| {
        let e = match e {
            ledger_core::Error::Entry(entry_error) => ApiError::from(entry_error).prefixed("batch"),
            other => ApiError::from(other),
        };
        state.metrics.note_refusal(e.code());
        e
    })?;
    Ok((StatusCode::CREATED, Json(BatchAppendResponse { entries: done.iter().map(appended).collect() })))
}

fn entry_response(index: u64, leaf: Vec<u8>) -> Result<EntryResponse, ApiError> {
    let (_, entry) = Leaf::decode(&leaf).map_err(|e| ApiError::internal(format_args!("stored leaf {index} does not decode: {e}")))?;
    Ok(EntryResponse { index, leaf, entry })
}

/// Fetch one entry.
#[utoipa::path(get, path = "/v1/entries/{index}", tag = "entries",
    params(("index" = u64, Path, description = "Entry index")),
    responses(
        (status = 200, body = EntryResponse),
        (status = 400, description = "Index is not a number", body = ErrorResponse),
        (status = 404, description = "Beyond the tree", body = ErrorResponse),
    ))]
pub(super) async fn get(State(state): State<AppState>, EntryIndex(index): EntryIndex) -> Result<Json<EntryResponse>, ApiError> {
    let leaf = state.read(move |log| log.entry(index)).await?;
    Ok(Json(entry_response(index, leaf)?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct RangeQuery {
    /// First index.
    start: u64,
    /// Most entries to return (1..=1000, default 100). Fewer come back
    /// where more would pass 1 MiB of leaf bytes (always at least one):
    /// continue from `start` + the number returned.
    limit: Option<u64>,
}

/// Fetch a range of entries.
#[utoipa::path(get, path = "/v1/entries", tag = "entries", params(RangeQuery),
    responses(
        (status = 200, body = EntriesResponse),
        (status = 400, description = "Invalid query", body = ErrorResponse),
        (status = 404, description = "Start beyond the tree", body = ErrorResponse),
    ))]
pub(super) async fn list(State(state): State<AppState>, Query(q): Query<RangeQuery>) -> Result<Response, ApiError> {
    let start = q.start;
    let chunks = state
        .read(move |log| {
            let (leaves, tree_size) = log.entries(start, q.limit.unwrap_or(100))?;
            encode_entries(start, leaves, tree_size)
        })
        .await?;
    let body = axum::body::Body::from_stream(futures_util::stream::iter(chunks.into_iter().map(Ok::<_, std::convert::Infallible>)));
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response())
}

/// Encodes an [`EntriesResponse`] one entry at a time into chunks of about
/// 64 KiB that become the streamed response body: no `Value` of the whole
/// response and no single buffer of it ever exist, and each leaf is freed
/// once encoded. Encoding finishes before the status line is sent, so a
/// stored leaf that fails to decode still gets a clean 500 rather than a
/// truncated 200; the leaves are bounded by `MAX_RANGE_BYTES` anyway.
fn encode_entries(start: u64, leaves: Vec<Vec<u8>>, tree_size: u64) -> Result<Vec<axum::body::Bytes>, ledger_core::Error> {
    const CHUNK: usize = 64 * 1024;
    let corrupt = |index: u64, e: &dyn std::fmt::Display| {
        ledger_core::Error::Storage(ledger_core::store::StorageError::Corrupt(format!("stored leaf {index} does not decode: {e}")))
    };
    let mut chunks = Vec::new();
    let mut buf = Vec::with_capacity(CHUNK);
    buf.extend_from_slice(br#"{"entries":["#);
    for (leaf, index) in leaves.into_iter().zip(start..) {
        let (_, entry) = Leaf::decode(&leaf).map_err(|e| corrupt(index, &e))?;
        if index != start {
            buf.push(b',');
        }
        serde_json::to_writer(&mut buf, &EntryResponse { index, leaf, entry }).map_err(|e| corrupt(index, &e))?;
        if buf.len() >= CHUNK {
            chunks.push(std::mem::replace(&mut buf, Vec::with_capacity(CHUNK)).into());
        }
    }
    buf.extend_from_slice(format!(r#"],"tree_size":{tree_size}}}"#).as_bytes());
    chunks.push(buf.into());
    Ok(chunks)
}

/// `POST /v1/hidden/commit`: a JSON body signed by the agent; unsigned
/// requests get 401 `signature_required`.
#[derive(Debug)]
pub(super) struct HiddenCommit;

impl SignedRoute for HiddenCommit {
    const MAX_BODY: usize = usize::MAX;
    const JSON: bool = true;
    const UNSIGNED: ErrorCode = ErrorCode::SignatureRequired;
    const REQUEST: &'static str = "a commit request";
}

/// Shortest salt of a commit request: base64url of 16 random bytes.
const MIN_SALT_CHARS: usize = 22;

/// Commit hidden values for one of the signing agent's entries.
#[utoipa::path(post, path = "/v1/hidden/commit", tag = "disclosure",
    request_body(content = Object, content_type = "application/json",
        description = "`{\"seq\": <the entry's sequence number>, \"salt\": <base64url of 16 random bytes>, \"hidden\": {\"amount\": {\"u64\": 1250, \"prove\": [{\"le\": 10000}]}, \"customer\": {\"str\": \"ACME\"}}}`, signed by the agent (`x-agent-id`, `x-agent-timestamp`, `x-agent-signature`)"),
    responses(
        (status = 200, description = "`{\"hidden\": commitments, \"predicates\"?: proof, \"openings\": …}`: put `hidden` and `predicates` in the entry, sign it, send it with `openings`", body = Object),
        (status = 400, description = "Malformed request or hidden values", body = ErrorResponse),
        (status = 401, description = "Missing, bad or stale agent signature", body = ErrorResponse),
        (status = 403, description = "Unknown or retired agent", body = ErrorResponse),
        (status = 409, description = "`seq` is not above the agent's last sequence number (`sequence_replayed`), or the signed request was seen before (`request_replayed`)", body = ErrorResponse),
        (status = 422, description = "A declared predicate is false (`predicate_false`)", body = ErrorResponse),
        (status = 429, description = "Too many signed requests of this agent (`too_many_requests`); see Retry-After", body = ErrorResponse),
        (status = 503, description = "Prover queue or replay cache full; see Retry-After", body = ErrorResponse),
    ))]
pub(super) async fn commit_hidden(
    State(state): State<AppState>,
    SignedAgent { agent, body, .. }: SignedAgent<HiddenCommit>,
) -> Result<Json<Value>, ApiError> {
    let value = strict_json(&body)?;
    let obj = value.as_object().ok_or_else(|| ApiError::new(ErrorCode::InvalidHidden, "the request must be a JSON object"))?;
    if let Some(extra) = obj.keys().find(|k| !["seq", "hidden", "salt"].contains(&k.as_str())) {
        return Err(ApiError::new(ErrorCode::InvalidHidden, format!("unexpected field {extra:?}; a commit request has seq, hidden, salt")));
    }
    // The request signature covers the hash of this body, and signatures
    // and bodies can end up in proxy or tracing logs: a random salt makes
    // the hash unguessable, so the values cannot be brute-forced from it.
    let salt = obj.get("salt").and_then(Value::as_str).unwrap_or_default();
    if !(MIN_SALT_CHARS..=128).contains(&salt.len()) {
        return Err(ApiError::new(
            ErrorCode::InvalidHidden,
            format!("\"salt\" must be a random string of {MIN_SALT_CHARS} to 128 characters (e.g. base64url of 16 random bytes)"),
        ));
    }
    let seq = verifier::entry::signing::parse_seq(obj).map_err(|e| ApiError::new(ErrorCode::InvalidHidden, e.to_string()))?;
    let hidden = obj.get("hidden").ok_or_else(|| ApiError::new(ErrorCode::InvalidHidden, "missing field \"hidden\""))?;
    let hidden = verifier::hidden::parse_hidden(hidden).map_err(ledger_core::entry::EntryError::from)?;
    let committed = state.log.commit_hidden(&agent, seq, hidden).await?;
    let mut out = Map::new();
    out.insert("hidden".into(), committed.hidden);
    if let Some(p) = committed.predicates {
        out.insert("predicates".into(), p);
    }
    out.insert("openings".into(), committed.openings);
    Ok(Json(Value::Object(out)))
}
