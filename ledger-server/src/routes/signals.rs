//! Signals in: signal sources (admin) and the signed signals they file,
//! and agents' peer reports (docs/FORMAT.md, "Signals").
//!
//! A signal is authenticated by its own signature, with the same message
//! and the same replay rule (a strictly increasing `seq`) as agent entries:
//! a source's key for a source's signal, the reporting agent's key in
//! force for a peer report. The body is read bounded, parsed strictly once
//! ([`Submission::signal_from_json`]), and its signature checked before
//! anything else is done for it; the sequencer decides it again, so one
//! `seq` is taken once.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ledger_core::Submission;
use verifier::entry::{EntryError, EntryKind, Form, Source};
use verifier::wire::{AppendedEntry, ErrorCode, ErrorResponse, SourceRecord, SourceRequest, SourcesResponse};

use super::entries::appended;
use super::AppState;
use crate::auth::AdminAuth;
use crate::error::ApiError;
use crate::extract::{strict_json, JsonBytes};

/// A malformed request of a signal route: its shape and key errors under
/// the route's own code, the rest (JSON, agent ids, sizes) as for entries.
fn invalid(code: ErrorCode) -> impl Fn(EntryError) -> ApiError {
    move |e| match e {
        EntryError::Shape(_) | EntryError::Agent(_) => ApiError::new(code, e.to_string()),
        other => ApiError::from(other),
    }
}

/// Register a signal source, or replace its key and types (admin).
#[utoipa::path(post, path = "/v1/sources", tag = "signals",
    request_body(content = SourceRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "`source` entry appended; a replacement keeps the source's sequence numbers", body = AppendedEntry),
        (status = 400, description = "Malformed name, key (weak keys too) or types (`invalid_source`)", body = ErrorResponse),
        (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
        (status = 403, description = "Admin routes disabled (`admin_disabled`)", body = ErrorResponse),
    ),
    security(("admin" = [])))]
pub(super) async fn register(
    State(state): State<AppState>,
    _: AdminAuth,
    JsonBytes(body): JsonBytes,
) -> Result<(StatusCode, Json<AppendedEntry>), ApiError> {
    let value = strict_json(&body)?;
    let kind = EntryKind::Source;
    let mut obj = value.as_object().cloned().ok_or_else(|| ApiError::new(ErrorCode::InvalidSource, "a source must be a JSON object"))?;
    if obj.get("kind").is_some_and(|k| k != kind.as_str()) {
        return Err(ApiError::new(ErrorCode::InvalidSource, format!("\"kind\" of a source is \"{kind}\"")));
    }
    obj.insert("kind".into(), kind.as_str().into());
    let source = Source::from_object(&obj, Form::Submitted).map_err(invalid(ErrorCode::InvalidSource))?;
    let done = state.log.register_source(source).await?;
    Ok((StatusCode::CREATED, Json(appended(&done))))
}

/// Every registered signal source, with its public key in force.
#[utoipa::path(get, path = "/v1/sources", tag = "signals",
    responses((status = 200, body = SourcesResponse)))]
pub(super) async fn list(State(state): State<AppState>) -> Json<SourcesResponse> {
    let sources = state
        .log
        .sources()
        .into_iter()
        .map(|(source, s)| SourceRecord {
            source,
            key: B64.encode(s.key.as_bytes()),
            types: s.types.iter().map(|t| t.as_str().to_owned()).collect(),
            registered_index: s.registered_index,
            key_index: s.key_index,
            last_seq: s.last_seq,
        })
        .collect();
    Json(SourcesResponse { sources })
}

/// Append one signed signal: a registered source's, or an agent's peer
/// report about another agent.
#[utoipa::path(post, path = "/v1/signals", tag = "signals",
    request_body(content = Object, content_type = "application/json",
        description = "`{\"kind\":\"signal\",\"source\": <source name, or the reporting agent's id>,\"subject\": <agent id> | {\"code_hash\": <64 hex>},\"type\",\"severity\",\"assessment\"? (peer_report only),\"evidence\"? (object),\"seq\",\"signature\"}` (docs/FORMAT.md, \"Signals\")"),
    responses(
        (status = 201, description = "Durably appended", body = AppendedEntry),
        (status = 400, description = "Malformed signal (`invalid_signal`, `invalid_json`, `invalid_agent_id`)", body = ErrorResponse),
        (status = 401, description = "The signature does not verify with the source's key or the reporter's key in force (`bad_signature`)", body = ErrorResponse),
        (status = 403, description = "Unknown source (`unknown_source`), a type the source may not file (`signal_type_not_allowed`), an unknown or retired subject or reporter (`unknown_agent`, `agent_retired`), a revoked reporter (`agent_revoked`)", body = ErrorResponse),
        (status = 409, description = "`seq` not above the source's (or the reporter's) last (`sequence_replayed`)", body = ErrorResponse),
        (status = 413, description = "Signal too large", body = ErrorResponse),
        (status = 415, description = "Not application/json", body = ErrorResponse),
        (status = 503, description = "Sequencer queue full; see Retry-After", body = ErrorResponse),
    ))]
pub(super) async fn submit(
    State(state): State<AppState>,
    JsonBytes(body): JsonBytes,
) -> Result<(StatusCode, Json<AppendedEntry>), ApiError> {
    let signal = Submission::signal_from_json(&body, state.limits.max_entry_bytes).map_err(invalid(ErrorCode::InvalidSignal))?;
    drop(body);
    let done = state.log.submit(vec![signal]).await.map_err(|e| {
        let e = ApiError::from(e);
        state.metrics.note_refusal(e.code());
        e
    })?;
    let first = done.first().ok_or_else(|| ApiError::internal("an append of one signal returned no receipt"))?;
    Ok((StatusCode::CREATED, Json(appended(first))))
}
