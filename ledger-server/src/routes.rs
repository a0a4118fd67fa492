//! Routes and handlers of the HTTP API.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::HeaderMap;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use ledger_core::{canonical, Appended, DisclosureRequest, Leaf, Log, ShredTarget, Submission};
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi};
use verifier::tiles::TilePath;
use verifier::wire::{
    ActionEntryRequest, AppendedEntry, BatchAppendResponse, ConsistencyProofResponse, EntriesResponse, EntryResponse, ErrorResponse,
    InclusionProofResponse,
};

use crate::agent_routes;
use crate::auth::{require_admin, AdminToken};
use crate::error::ApiError;
use crate::extract::{batch_items, parse_index, BodyLimit, BodyTimeout, JsonBytes, Query};
use crate::metrics::{Metrics, RequestLabels};

/// Request limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest canonical entry body.
    pub max_entry_bytes: usize,
    /// Largest request body of a single append.
    pub max_entry_request_bytes: usize,
    /// Most entries in a batch append.
    pub max_batch_entries: usize,
    /// Largest request body of a batch append.
    pub max_batch_request_bytes: usize,
    /// How long a client may take to send a request body.
    pub body_timeout: Duration,
}

/// Shared state of every handler.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The log.
    pub log: Arc<Log>,
    /// Metrics (also the log's commit observer).
    pub metrics: Arc<Metrics>,
    /// Request limits.
    pub limits: Limits,
    /// The admin bearer token; `None` disables admin routes.
    pub admin: Option<AdminToken>,
}

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The API router.
pub fn app(state: AppState) -> Router {
    let limits = state.limits;
    Router::new()
        .route("/v1/entries", post(append_entry).layer(Extension(BodyLimit(limits.max_entry_request_bytes))).get(list_entries))
        .route("/v1/entries/batch", post(append_batch).layer(Extension(BodyLimit(limits.max_batch_request_bytes))))
        .route("/v1/entries/{index}", get(get_entry))
        .route("/v1/entries/{index}/disclosures", post(disclose).layer(Extension(BodyLimit(64 * 1024))))
        .route("/v1/entries/{index}/openings", delete(shred_entry))
        .route("/v1/openings", delete(shred_agent))
        .route("/v1/hidden/commit", post(crate::hidden_routes::commit).layer(Extension(BodyLimit(64 * 1024))))
        .route("/v1/agents", post(agent_routes::register).layer(Extension(BodyLimit(16 * 1024))))
        .route("/v1/agents/{id}", get(agent_routes::get_agent))
        .route("/v1/agents/{id}/retire", post(agent_routes::retire).layer(Extension(BodyLimit(4 * 1024))))
        .route("/v1/agents/{id}/nonce", post(agent_routes::nonce))
        .route("/v1/attestations", post(agent_routes::attest).layer(Extension(BodyLimit(32 * 1024))))
        .route("/v1/proof/inclusion", get(inclusion_proof))
        .route("/v1/proof/consistency", get(consistency_proof))
        .route("/v1/proof/bundle", get(proof_bundle))
        .route("/v1/checkpoint", get(checkpoint))
        .route("/tlog/checkpoint", get(checkpoint))
        .route("/v1/log/key", get(log_key))
        .route("/tlog/tile/{*path}", get(tile))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi_json))
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed on this route")
        })
        .layer(Extension(BodyTimeout(limits.body_timeout)))
        .layer(middleware::from_fn_with_state(state.clone(), count_requests))
        .with_state(state)
}

async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    if status == 503 {
        state.metrics.pushbacks.inc();
    }
    state.metrics.requests.get_or_create(&RequestLabels { route, status }).inc();
    resp
}

/// Counts a refusal of an agent entry (signature, sequence, agent, nonce).
pub(crate) fn note_refusal(state: &AppState, e: &ApiError) {
    const AGENT_CODES: [&str; 12] = [
        "signature_required",
        "bad_signature",
        "request_replayed",
        "too_many_requests",
        "commit_hidden_first",
        "unknown_agent",
        "agent_retired",
        "sequence_replayed",
        "nonce_unknown",
        "nonce_expired",
        "nonce_used",
        "nonce_wrong_agent",
    ];
    if let Some(code) = AGENT_CODES.iter().find(|c| **c == e.code()) {
        state.metrics.agent_refusals.get_or_create(&crate::metrics::CodeLabels { code }).inc();
    }
}

/// Runs a storage read on the blocking pool, so RocksDB I/O never stalls
/// the async workers that serve appends.
pub(crate) async fn read<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&Log) -> Result<T, ledger_core::Error> + Send + 'static,
) -> Result<T, ApiError> {
    let log = Arc::clone(&state.log);
    match tokio::task::spawn_blocking(move || f(&log)).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(e) => {
            tracing::error!(error = %e, "read task failed");
            Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal server error"))
        }
    }
}

pub(crate) fn appended(a: &Appended) -> AppendedEntry {
    AppendedEntry { index: a.index, leaf_hash: a.leaf_hash, integrated_time: a.integrated_time }
}

/// Append one entry.
#[utoipa::path(post, path = "/v1/entries", tag = "entries",
    request_body(content = ActionEntryRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Durably appended", body = AppendedEntry),
        (status = 400, description = "Malformed or invalid entry", body = ErrorResponse),
        (status = 413, description = "Entry too large", body = ErrorResponse),
        (status = 415, description = "Not application/json", body = ErrorResponse),
        (status = 422, description = "A declared predicate is false for its hidden value (`predicate_false`)", body = ErrorResponse),
        (status = 503, description = "Sequencer queue or prover queue full; see Retry-After", body = ErrorResponse),
    ))]
async fn append_entry(State(state): State<AppState>, JsonBytes(body): JsonBytes) -> Result<(StatusCode, Json<AppendedEntry>), ApiError> {
    let entry = Submission::from_json(&body, state.limits.max_entry_bytes)?;
    let done = state.log.submit(vec![entry]).await.map_err(|e| {
        let e = ApiError::from(e);
        note_refusal(&state, &e);
        e
    })?;
    let first = done.first().ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal server error"))?;
    Ok((StatusCode::CREATED, Json(appended(first))))
}

/// Append a JSON array of entries atomically, at contiguous indices.
#[utoipa::path(post, path = "/v1/entries/batch", tag = "entries",
    request_body(content = Vec<ActionEntryRequest>, content_type = "application/json"),
    responses(
        (status = 201, description = "All entries durably appended", body = BatchAppendResponse),
        (status = 400, description = "Malformed or invalid entry (none appended)", body = ErrorResponse),
        (status = 413, description = "Batch too large", body = ErrorResponse),
        (status = 415, description = "Not application/json", body = ErrorResponse),
        (status = 503, description = "Sequencer queue full; see Retry-After", body = ErrorResponse),
    ))]
async fn append_batch(
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
        note_refusal(&state, &e);
        e
    })?;
    Ok((StatusCode::CREATED, Json(BatchAppendResponse { entries: done.iter().map(appended).collect() })))
}

fn entry_response(index: u64, leaf: Vec<u8>) -> Result<EntryResponse, ApiError> {
    let (_, entry) = Leaf::decode(&leaf).map_err(|e| {
        tracing::error!(index, error = %e, "stored leaf does not decode");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal server error")
    })?;
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
async fn get_entry(State(state): State<AppState>, Path(index): Path<String>) -> Result<Json<EntryResponse>, ApiError> {
    let index = parse_index(&index)?;
    let leaf = read(&state, move |log| log.entry(index)).await?;
    Ok(Json(entry_response(index, leaf)?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct RangeQuery {
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
async fn list_entries(State(state): State<AppState>, Query(q): Query<RangeQuery>) -> Result<Response, ApiError> {
    let start = q.start;
    let chunks = read(&state, move |log| {
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

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct InclusionQuery {
    /// Leaf index.
    index: u64,
    /// Tree size to prove against (default: the current size).
    tree_size: Option<u64>,
}

/// RFC 9162 inclusion proof.
#[utoipa::path(get, path = "/v1/proof/inclusion", tag = "proofs", params(InclusionQuery),
    responses(
        (status = 200, body = InclusionProofResponse),
        (status = 400, description = "Invalid query", body = ErrorResponse),
        (status = 404, description = "Index or size beyond the tree", body = ErrorResponse),
    ))]
async fn inclusion_proof(State(state): State<AppState>, Query(q): Query<InclusionQuery>) -> Result<Json<InclusionProofResponse>, ApiError> {
    let tree_size = q.tree_size.unwrap_or_else(|| state.log.head().size);
    let index = q.index;
    let hashes = read(&state, move |log| log.inclusion_proof(index, tree_size)).await?;
    Ok(Json(InclusionProofResponse { index: q.index, tree_size, hashes }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ConsistencyQuery {
    /// Size of the older tree.
    old_size: u64,
    /// Size of the newer tree (default: the current size).
    new_size: Option<u64>,
}

/// RFC 9162 consistency proof.
#[utoipa::path(get, path = "/v1/proof/consistency", tag = "proofs", params(ConsistencyQuery),
    responses(
        (status = 200, body = ConsistencyProofResponse),
        (status = 400, description = "Invalid query or old_size > new_size", body = ErrorResponse),
        (status = 404, description = "Size beyond the tree", body = ErrorResponse),
    ))]
async fn consistency_proof(
    State(state): State<AppState>,
    Query(q): Query<ConsistencyQuery>,
) -> Result<Json<ConsistencyProofResponse>, ApiError> {
    let new_size = q.new_size.unwrap_or_else(|| state.log.head().size);
    let old_size = q.old_size;
    let hashes = read(&state, move |log| log.consistency_proof(old_size, new_size)).await?;
    Ok(Json(ConsistencyProofResponse { old_size: q.old_size, new_size, hashes }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct BundleQuery {
    /// Entry index.
    index: u64,
}

fn text(body: impl Into<String>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], body.into()).into_response()
}

/// A c2sp.org/tlog-proof@v1 file for one entry against the latest checkpoint.
#[utoipa::path(get, path = "/v1/proof/bundle", tag = "proofs", params(BundleQuery),
    responses(
        (status = 200, description = "tlog-proof file; `extra` holds the leaf bytes", content_type = "text/plain", body = String),
        (status = 400, description = "Invalid query", body = ErrorResponse),
        (status = 404, description = "Index beyond the tree", body = ErrorResponse),
    ))]
async fn proof_bundle(State(state): State<AppState>, Query(q): Query<BundleQuery>) -> Result<Response, ApiError> {
    Ok(text(read(&state, move |log| log.proof_bundle(q.index)).await?))
}

/// The latest C2SP signed checkpoint.
#[utoipa::path(get, path = "/v1/checkpoint", tag = "log",
    responses((status = 200, description = "c2sp.org/tlog-checkpoint signed note", content_type = "text/plain", body = String)))]
async fn checkpoint(State(state): State<AppState>) -> Response {
    text(state.log.head().checkpoint.to_string())
}

/// The log's verifier key, `name+hex8(keyid)+base64(0x01||pubkey)`.
#[utoipa::path(get, path = "/v1/log/key", tag = "log",
    responses((status = 200, description = "C2SP verifier key line", content_type = "text/plain", body = String)))]
async fn log_key(State(state): State<AppState>) -> Response {
    text(format!("{}\n", state.log.verifier_key()))
}

/// A c2sp.org/tlog-tiles hash tile or entry bundle.
#[utoipa::path(get, path = "/tlog/tile/{path}", tag = "log",
    params(("path" = String, Path, description = "`<L>/<N>[.p/<W>]` or `entries/<N>[.p/<W>]`",
        pattern = r"^(entries|[0-7])/(x[0-9]{3}/)*[0-9]{3}(\.p/([1-9]|[1-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-5]))?$")),
    responses(
        (status = 200, description = "Tile bytes", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, description = "Malformed tile path", body = ErrorResponse),
        (status = 404, description = "Tile not (yet) in the tree", body = ErrorResponse),
    ))]
async fn tile(State(state): State<AppState>, Path(path): Path<String>) -> Result<Response, ApiError> {
    let tile = TilePath::parse(&path).map_err(|e| ApiError::bad_request("invalid_tile_path", format!("{path:?}: {e}")))?;
    let body = read(&state, move |log| log.tile(&tile)).await?;
    let cache = if tile.partial.is_none() { IMMUTABLE } else { "no-cache" };
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream")),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        body,
    )
        .into_response())
}

/// Body of a disclosure request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct DisclosureBody {
    /// Hidden fields to reveal.
    #[serde(default)]
    reveal: Vec<String>,
    /// Predicates to prove about hidden integers, e.g. `{"field": "amount", "le": 10000}`.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    prove: Vec<serde_json::Value>,
}

/// Disclose hidden fields of an entry (the admin, or the agent that wrote
/// it with a signed request: `x-agent-id`, `x-agent-timestamp`,
/// `x-agent-signature`): reveal some, prove predicates about others, with
/// inclusion proof and checkpoint.
#[utoipa::path(post, path = "/v1/entries/{index}/disclosures", tag = "disclosure",
    params(("index" = u64, Path, description = "Entry index")),
    request_body(content = DisclosureBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Disclosure bundle (agent-ledger-disclosure/v2), verifiable offline", body = Object),
        (status = 400, description = "Malformed request, unknown field, predicate on a string", body = ErrorResponse),
        (status = 401, description = "Missing or wrong admin token, bad or stale agent signature", body = ErrorResponse),
        (status = 403, description = "The signing agent did not write the entry, or is unknown or retired", body = ErrorResponse),
        (status = 404, description = "No such entry, or it has no hidden fields", body = ErrorResponse),
        (status = 409, description = "The signed request was seen before (`request_replayed`)", body = ErrorResponse),
        (status = 410, description = "The entry's openings were shredded", body = ErrorResponse),
        (status = 422, description = "A requested predicate is false", body = ErrorResponse),
        (status = 429, description = "Too many signed requests of this agent (`too_many_requests`)", body = ErrorResponse),
        (status = 503, description = "Prover queue full; see Retry-After", body = ErrorResponse),
    ),
    security(("admin" = [])))]
async fn disclose(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Path(index): Path<String>,
    JsonBytes(body): JsonBytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let index = parse_index(&index)?;
    // The admin, or the agent that wrote the entry (a signed request).
    match crate::auth::verify_agent_request(&state.log, &headers, "POST", uri.path(), &body)? {
        Some(agent) => {
            let leaf = read(&state, move |log| log.entry(index)).await?;
            let owner = serde_json::from_slice::<serde_json::Value>(&leaf).ok().and_then(|v| v["agent"].as_str().map(str::to_owned));
            if owner.as_deref() != Some(agent.as_str()) {
                return Err(ApiError::new(StatusCode::FORBIDDEN, "not_owner", format!("entry {index} was not written by {agent}")));
            }
        }
        None => require_admin(state.admin.as_ref(), &headers)?,
    }
    canonical::parse_strict(&body).map_err(|e| ApiError::bad_request("invalid_json", format!("request is not valid JSON: {e}")))?;
    let req: DisclosureBody = serde_json::from_slice(&body).map_err(|e| ApiError::bad_request("invalid_disclosure", e.to_string()))?;
    let mut request = DisclosureRequest { reveal: req.reveal, prove: Vec::with_capacity(req.prove.len()) };
    for claim in &req.prove {
        request
            .prove
            .push(verifier::disclosure::claim_from_json(claim).map_err(|e| ApiError::bad_request("invalid_predicate", e.to_string()))?);
    }
    let bundle = state.log.disclose(index, &request).await?;
    Ok(Json(bundle.to_json()))
}

/// Crypto-shred one entry's openings (admin). The log and every proof stay
/// valid; its hidden fields can no longer be disclosed (410).
#[utoipa::path(delete, path = "/v1/entries/{index}/openings", tag = "disclosure",
    params(("index" = u64, Path, description = "Entry index")),
    responses(
        (status = 200, description = "`{\"shredded\": [indices erased now]}`", body = Object),
        (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
        (status = 404, description = "No such entry, or it has no openings", body = ErrorResponse),
    ),
    security(("admin" = [])))]
async fn shred_entry(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(index): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_admin(state.admin.as_ref(), &headers)?;
    let index = parse_index(&index)?;
    let done = read(&state, move |log| log.shred(&ShredTarget::Entry(index))).await?;
    Ok(Json(serde_json::json!({ "shredded": done })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AgentQuery {
    /// The agent's SPIFFE id.
    agent: String,
}

/// Crypto-shred the openings of every entry of one agent (admin).
#[utoipa::path(delete, path = "/v1/openings", tag = "disclosure", params(AgentQuery),
    responses(
        (status = 200, description = "`{\"shredded\": [indices erased now]}`", body = Object),
        (status = 400, description = "Invalid agent id", body = ErrorResponse),
        (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
    ),
    security(("admin" = [])))]
async fn shred_agent(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<AgentQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_admin(state.admin.as_ref(), &headers)?;
    ledger_core::spiffe::validate_agent_id(&q.agent)
        .map_err(|e| ApiError::bad_request("invalid_agent_id", format!("invalid agent id {:?}: {e}", q.agent)))?;
    let done = read(&state, move |log| log.shred(&ShredTarget::Agent(q.agent))).await?;
    Ok(Json(serde_json::json!({ "shredded": done })))
}

/// Liveness and the current tree size.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "`{\"status\":\"ok\",\"tree_size\":N}`")))]
async fn healthz(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok", "tree_size": state.log.head().size }))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, description = "OpenMetrics text exposition", content_type = "application/openmetrics-text", body = String)))]
async fn metrics(State(state): State<AppState>) -> Response {
    state.metrics.queued_bytes.set(state.log.queued_bytes() as u64);
    state.metrics.tree_size.set(state.log.head().size);
    state.metrics.prover_queue.set(state.log.prover_queue_depth() as u64);
    state.metrics.agents.set(state.log.agent_count() as u64);
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.encode()).into_response()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Agent Ledger",
        description = "Append-only, verifiable ledger for AI agents (RFC 9162 Merkle log, C2SP checkpoints and tiles)."
    ),
    paths(
        append_entry,
        append_batch,
        get_entry,
        list_entries,
        inclusion_proof,
        consistency_proof,
        proof_bundle,
        checkpoint,
        log_key,
        tile,
        disclose,
        crate::hidden_routes::commit,
        shred_entry,
        agent_routes::register,
        agent_routes::get_agent,
        agent_routes::retire,
        agent_routes::nonce,
        agent_routes::attest,
        shred_agent,
        healthz,
        metrics
    ),
    components(schemas(
        ActionEntryRequest,
        AppendedEntry,
        BatchAppendResponse,
        EntryResponse,
        EntriesResponse,
        InclusionProofResponse,
        ConsistencyProofResponse,
        ErrorResponse,
        DisclosureBody
    )),
    modifiers(&AdminSecurity)
)]
struct ApiDoc;

struct AdminSecurity;

impl utoipa::Modify for AdminSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("admin", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
    }
}

/// The OpenAPI document of this API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi())
}
