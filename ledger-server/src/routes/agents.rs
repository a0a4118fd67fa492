//! Agents: passports (admin), retirement (admin) and the current passport
//! with its proof. Key rotations are entries, appended through
//! `POST /v1/entries`. Agent ids are SPIFFE ids, percent-encoded in paths
//! (`spiffe%3A%2F%2F…`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Value};
use verifier::entry::members::required_string;
use verifier::entry::retirement::MAX_REASON_CHARS;
use verifier::entry::{EntryError, EntryKind, Passport, ShapeError};
use verifier::wire::{AppendedEntry, ErrorCode, ErrorResponse};
use verifier::AgentId;

use super::entries::appended;
use super::AppState;
use crate::auth::AdminAuth;
use crate::error::ApiError;
use crate::extract::{agent_id, strict_json, JsonBytes};

/// Register an agent's passport (admin).
#[utoipa::path(post, path = "/v1/agents", tag = "agents",
    request_body(content = Object, content_type = "application/json",
        description = "`{\"agent\",\"public_key\" (base64 Ed25519),\"code_hash\" (hex SHA-256),\"model_hash\"?,\"owner\",\"purpose\",\"tpm_ak\"? (base64 P-256 SPKI DER)}`"),
    responses(
        (status = 201, description = "Passport entry appended", body = AppendedEntry),
        (status = 400, description = "Malformed passport, or agent outside the trust domain", body = ErrorResponse),
        (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
        (status = 403, description = "Admin routes disabled (`admin_disabled`)", body = ErrorResponse),
        (status = 409, description = "Agent already registered", body = ErrorResponse),
    ),
    security(("admin" = [])))]
pub(super) async fn register(
    State(state): State<AppState>,
    _: AdminAuth,
    JsonBytes(body): JsonBytes,
) -> Result<(StatusCode, Json<AppendedEntry>), ApiError> {
    let value = strict_json(&body)?;
    let invalid = |message: &str| ApiError::new(ErrorCode::InvalidPassport, message);
    let kind = EntryKind::Passport;
    let obj = value.as_object().ok_or_else(|| invalid("a passport must be a JSON object"))?;
    if obj.get("kind").is_some_and(|k| k != kind.as_str()) {
        return Err(invalid(&format!("\"kind\" of a passport is \"{kind}\"")));
    }
    let passport = Passport::from_object(obj).map_err(|e| match e {
        EntryError::Agent(e) => invalid(&e.to_string()),
        other => ApiError::from(other),
    })?;
    let done = state.log.register(passport).await?;
    Ok((StatusCode::CREATED, Json(appended(&done))))
}

/// The current passport of an agent, with the tlog-proof of the entry its
/// key comes from (the passport, or the latest rotation).
#[utoipa::path(get, path = "/v1/agents/{id}", tag = "agents",
    params(("id" = String, Path, description = "SPIFFE id, percent-encoded")),
    responses(
        (status = 200, description = "`{\"agent\",\"passport\",\"passport_index\",\"key_index\",\"retired_at\",\"last_seq\",\"proof\"}`", body = Object),
        (status = 404, description = "No such agent", body = ErrorResponse),
    ))]
pub(super) async fn get(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    // An id that is no agent id names no registered agent either.
    let agent = AgentId::parse(&id).ok().and_then(|id| state.log.agent(&id)).ok_or_else(|| ApiError::no_such_agent(&id))?;
    let index = agent.key_index;
    let proof = state.read(move |log| log.proof_bundle(index)).await?;
    let mut passport = agent.passport.to_object();
    passport.insert("public_key".into(), Value::from(B64.encode(agent.key.as_bytes())));
    Ok(Json(json!({
        "agent": id,
        "passport": passport,
        "passport_index": agent.passport_index,
        "key_index": agent.key_index,
        "retired_at": agent.retired,
        "last_seq": agent.last_seq,
        "proof": proof,
    })))
}

/// Retire an agent (admin): its later entries are refused.
#[utoipa::path(post, path = "/v1/agents/{id}/retire", tag = "agents",
    params(("id" = String, Path, description = "SPIFFE id, percent-encoded")),
    request_body(content = Object, content_type = "application/json", description = "`{\"reason\": \"…\"}`"),
    responses(
        (status = 201, description = "Retirement entry appended", body = AppendedEntry),
        (status = 400, description = "No valid reason (`invalid_retirement`)", body = ErrorResponse),
        (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
        (status = 403, description = "Unknown or already retired agent; admin routes disabled", body = ErrorResponse),
    ),
    security(("admin" = [])))]
pub(super) async fn retire(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<String>,
    JsonBytes(body): JsonBytes,
) -> Result<(StatusCode, Json<AppendedEntry>), ApiError> {
    let value = strict_json(&body)?;
    // The retirement entry's own rule for its reason, checked before the
    // agent id as it always was.
    let reason = value
        .as_object()
        .and_then(|obj| required_string(obj, "reason", MAX_REASON_CHARS).ok())
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidRetirement, ShapeError::Reason.to_string()))?;
    let agent = agent_id(&id)?;
    let done = state.log.retire(&agent, reason).await?;
    Ok((StatusCode::CREATED, Json(appended(&done))))
}
