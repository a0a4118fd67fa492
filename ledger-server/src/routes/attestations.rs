//! Attestations: single-use nonces drawn by an agent (a signed request),
//! and the attestations that spend them (docs/FORMAT.md, "Attestations").

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Value};
use verifier::wire::{ErrorCode, ErrorResponse};

use super::entries::appended;
use super::AppState;
use crate::auth::{SignedAgent, SignedRoute};
use crate::error::ApiError;
use crate::extract::{strict_json, JsonBytes};
use crate::metrics::VerdictLabels;

/// `POST /v1/agents/{id}/nonce`: an empty body (only its hash is signed)
/// of any content type, so anything over 1 KiB is refused before it is
/// read; unsigned requests get 401 `unauthorized`.
#[derive(Debug)]
pub(super) struct NonceDraw;

impl SignedRoute for NonceDraw {
    const MAX_BODY: usize = 1024;
    const JSON: bool = false;
    const UNSIGNED: ErrorCode = ErrorCode::Unauthorized;
    const REQUEST: &'static str = "a nonce request";
}

/// A fresh single-use attestation nonce for an agent. The request is signed
/// by that agent (`x-agent-id`, `x-agent-timestamp`, `x-agent-signature`),
/// so nobody else can draw its nonces; an agent holds at most
/// [`ledger_core::nonces::NONCES_PER_AGENT`] at once, and drawing more
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
pub(super) async fn nonce(
    State(state): State<AppState>,
    Path(id): Path<String>,
    SignedAgent { agent, .. }: SignedAgent<NonceDraw>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    // The signed agent's id was parsed from its header; a path naming any
    // other agent, valid or not, is refused.
    if agent != id.as_str() {
        return Err(ApiError::new(ErrorCode::NotOwner, format!("{agent} may not draw nonces for {id}")));
    }
    let nonce = state.log.issue_nonce(&agent)?;
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
pub(super) async fn attest(State(state): State<AppState>, JsonBytes(body): JsonBytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    let value = strict_json(&body)?;
    let (done, verdict) = state.log.attest(&value).await.map_err(|e| {
        let e = ApiError::from(e);
        if e.code() == ErrorCode::AttestationFailed {
            state.metrics.attestations.get_or_create(&VerdictLabels { verdict: "failed" }).inc();
        }
        state.metrics.note_refusal(e.code());
        e
    })?;
    state.metrics.attestations.get_or_create(&VerdictLabels { verdict: "ok" }).inc();
    let mut out = serde_json::to_value(appended(&done)).unwrap_or(Value::Null);
    out["verdict"] = verdict;
    Ok((StatusCode::CREATED, Json(out)))
}
