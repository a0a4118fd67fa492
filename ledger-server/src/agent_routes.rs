//! Agent routes: passports (admin), the current passport with its proof,
//! retirement (admin), attestation nonces and attestations. Agent ids are
//! SPIFFE ids, percent-encoded in paths (`spiffe%3A%2F%2F…`).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ledger_core::canonical;
use serde_json::{json, Value};
use verifier::agent::Passport;
use verifier::wire::{AppendedEntry, ErrorResponse};

use crate::auth::{require_admin, SignedBody};
use crate::error::ApiError;
use crate::extract::JsonBytes;
use crate::metrics::VerdictLabels;
use crate::routes::{appended, read, AppState};

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    canonical::parse_strict(body).map_err(|e| ApiError::bad_request("invalid_json", format!("request is not valid JSON: {e}")))
}

/// Register an agent's passport (admin).
#[utoipa::path(post, path = "/v1/agents", tag = "agents",
    request_body(content = Object, content_type = "application/json",
        description = "`{\"agent\",\"public_key\" (base64 Ed25519),\"code_hash\" (hex SHA-256),\"model_hash\"?,\"owner\",\"purpose\",\"tpm_ak\"? (base64 P-256 SPKI DER)}`"),
    responses(
        (status = 201, description = "Passport entry appended", body = AppendedEntry),
        (status = 400, description = "Malformed passport, or agent outside the trust domain", body = ErrorResponse),
        (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
        (status = 409, description = "Agent already registered", body = ErrorResponse),
    ),
    security(("admin" = [])))]
pub(crate) async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBytes(body): JsonBytes,
) -> Result<(StatusCode, Json<AppendedEntry>), ApiError> {
    require_admin(state.admin.as_ref(), &headers)?;
    let value = parse_body(&body)?;
    let obj = value.as_object().ok_or_else(|| ApiError::bad_request("invalid_passport", "a passport must be a JSON object"))?;
    if obj.get("kind").is_some_and(|k| k != "passport") {
        return Err(ApiError::bad_request("invalid_passport", "\"kind\" of a passport is \"passport\""));
    }
    let passport = Passport::from_object(obj).map_err(|e| ApiError::bad_request("invalid_passport", e.to_string()))?;
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
pub(crate) async fn get_agent(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let agent = state
        .log
        .agent(&id)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown_agent", format!("no passport is registered for {id}")))?;
    let index = agent.key_index;
    let proof = read(&state, move |log| log.proof_bundle(index)).await?;
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
        (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
        (status = 403, description = "Unknown or already retired agent", body = ErrorResponse),
    ),
    security(("admin" = [])))]
pub(crate) async fn retire(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBytes(body): JsonBytes,
) -> Result<(StatusCode, Json<AppendedEntry>), ApiError> {
    require_admin(state.admin.as_ref(), &headers)?;
    let value = parse_body(&body)?;
    let reason = value.get("reason").and_then(Value::as_str).filter(|r| !r.is_empty() && r.chars().count() <= 1024);
    let reason =
        reason.ok_or_else(|| ApiError::bad_request("invalid_retirement", "\"reason\" must be a string of 1 to 1024 characters"))?;
    let done = state.log.retire(&id, reason).await?;
    Ok((StatusCode::CREATED, Json(appended(&done))))
}

/// Most bytes of a nonce request's body: it is empty (only its hash is
/// signed), so anything more is refused before it is read.
pub const NONCE_BODY_LIMIT: usize = 1024;

/// A fresh single-use attestation nonce for an agent. The request is signed
/// by that agent (`x-agent-id`, `x-agent-timestamp`, `x-agent-signature`),
/// so nobody else can draw its nonces; an agent holds at most
/// [`ledger_core::attest::NONCES_PER_AGENT`] at once, and drawing more
/// drops only its own.
#[utoipa::path(post, path = "/v1/agents/{id}/nonce", tag = "agents",
    params(("id" = String, Path, description = "SPIFFE id, percent-encoded")),
    request_body(content = String, description = "Empty (its hash is part of the signed request)"),
    responses(
        (status = 201, description = "`{\"nonce\": base64 of 32 bytes, \"expires_in_secs\"}`", body = Object),
        (status = 401, description = "Missing, bad or stale agent signature", body = ErrorResponse),
        (status = 403, description = "Unknown or retired agent, or signed by another agent", body = ErrorResponse),
        (status = 409, description = "The same signed request was already accepted (`request_replayed`)", body = ErrorResponse),
        (status = 413, description = "Body larger than 1 KiB", body = ErrorResponse),
        (status = 429, description = "The agent's budget of signed requests is spent; see Retry-After", body = ErrorResponse),
        (status = 503, description = "Nonce store full of live nonces; see Retry-After", body = ErrorResponse),
    ))]
pub(crate) async fn nonce(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Path(id): Path<String>,
    SignedBody(body): SignedBody<NONCE_BODY_LIMIT>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let signer = crate::auth::verify_agent_request(&state.log, &headers, "POST", uri.path(), &body)?.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a nonce request is signed by its agent (x-agent-id, x-agent-timestamp, x-agent-signature)",
        )
    })?;
    if signer != id {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "not_owner", format!("{signer} may not draw nonces for {id}")));
    }
    let nonce = state.log.issue_nonce(&id)?;
    let ttl = state.log.config().nonce_ttl.as_secs();
    Ok((StatusCode::CREATED, Json(json!({ "nonce": B64.encode(nonce), "expires_in_secs": ttl }))))
}

/// Submit a self-attestation. Refused (nothing recorded) for a bad
/// signature, unknown/retired agent, replayed sequence number or a nonce
/// that is unknown, expired, used or another agent's; otherwise recorded
/// with its verdict, and 422 `attestation_failed` if the verdict fails.
#[utoipa::path(post, path = "/v1/attestations", tag = "agents",
    request_body(content = Object, content_type = "application/json", description = "docs/FORMAT.md, \"Attestations\""),
    responses(
        (status = 201, description = "Recorded, verdict ok: `{\"index\",\"leaf_hash\",\"integrated_time\",\"verdict\"}`", body = Object),
        (status = 400, description = "Malformed attestation", body = ErrorResponse),
        (status = 401, description = "Missing or bad agent signature", body = ErrorResponse),
        (status = 403, description = "Unknown or retired agent", body = ErrorResponse),
        (status = 409, description = "Replayed sequence number; nonce unknown, expired, used or another agent's", body = ErrorResponse),
        (status = 422, description = "Recorded with a failing verdict (the message names the index and reasons)", body = ErrorResponse),
    ))]
pub(crate) async fn attest(State(state): State<AppState>, JsonBytes(body): JsonBytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    let value = parse_body(&body)?;
    let (done, verdict) = match state.log.attest(&value).await {
        Ok(ok) => ok,
        Err(e) => {
            let failed = matches!(e, ledger_core::Error::AttestationFailed { .. });
            let e = ApiError::from(e);
            if failed {
                state.metrics.attestations.get_or_create(&VerdictLabels { verdict: "failed" }).inc();
            }
            crate::routes::note_refusal(&state, &e);
            return Err(e);
        }
    };
    state.metrics.attestations.get_or_create(&VerdictLabels { verdict: "ok" }).inc();
    let mut out = serde_json::to_value(appended(&done)).unwrap_or(Value::Null);
    out["verdict"] = verdict;
    Ok((StatusCode::CREATED, Json(out)))
}
