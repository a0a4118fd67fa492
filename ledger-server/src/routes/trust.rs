//! Trust: scores read from the trust view at the instant asked (decay
//! applied lazily), agents under a score, quarantine and reinstatement
//! (admin), and the trust policy in force (docs/TRUST.md).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use verifier::entry::members::required_string;
use verifier::entry::retirement::MAX_REASON_CHARS;
use verifier::entry::{Decision, RevocationReason};
use verifier::fold::trust_log::{self, PolicyInForce, TrustRecord};
use verifier::wire::{AppendedEntry, ErrorCode, ErrorResponse, ListedAgent, PolicyChange, PolicyInForceResponse, TrustListing, TrustScore};
use verifier::AgentId;

use std::sync::Arc;

use ledger_core::views::trust::ScoreTable;

use super::entries::appended;
use super::AppState;
use crate::auth::AdminAuth;
use crate::error::ApiError;
use crate::extract::{agent_id, strict_json, JsonBytes};

/// Largest policy body.
pub const MAX_POLICY_BYTES: usize = 16 * 1024;

/// Most agents one `GET /v1/trust` lists.
pub const MAX_LIST: usize = 1000;

/// An agent's trust score now.
#[utoipa::path(get, path = "/v1/agents/{id}/trust", tag = "trust",
    params(("id" = String, Path, description = "SPIFFE id, percent-encoded")),
    responses(
        (status = 200, description = "The score, its level and components as of an index and instant", body = TrustScore),
        (status = 404, description = "No such agent (`unknown_agent`)", body = ErrorResponse),
    ))]
pub(super) async fn get(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<TrustScore>, ApiError> {
    let agent = AgentId::parse(&id).map_err(|_| ApiError::no_such_agent(&id))?;
    let (record, policy, applied) = state.log.trust().snapshot(&agent).ok_or_else(|| ApiError::no_such_agent(&id))?;
    Ok(Json(trust_log::report(&agent, &record, &policy, applied.saturating_sub(1), state.log.now_ms())))
}

/// Query of `GET /v1/trust`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    below: Option<u8>,
    limit: Option<usize>,
}

/// Agents whose score is below `below` (default 101: all), lowest first,
/// with how many there are (`total`; at most `limit` listed). Scores are
/// read at `as_of_time` from the state after entry `as_of_index`; a
/// listing may be up to a second old
/// ([`ledger_core::views::trust::TrustView::scores`]).
#[utoipa::path(get, path = "/v1/trust", tag = "trust",
    params(("below" = Option<u8>, Query, description = "List agents scoring below this (0–101)"),
           ("limit" = Option<usize>, Query, description = "At most this many (default and maximum 1000)")),
    responses(
        (status = 200, description = "Agents by (score, id), and how many score below the bound", body = TrustListing),
        (status = 400, description = "Bad query (`invalid_query`)", body = ErrorResponse),
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<TrustListing>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e.body_text()))?;
    let below = q.below.unwrap_or(101);
    if below > 101 {
        return Err(ApiError::new(ErrorCode::InvalidQuery, "below is a score from 0 to 101"));
    }
    let limit = q.limit.unwrap_or(MAX_LIST).min(MAX_LIST);
    let table = score_table(&state).await?;
    let matching = table.rows.partition_point(|r| r.score < below);
    let agents = table.rows[..matching]
        .iter()
        .take(limit)
        .map(|r| ListedAgent { agent: r.agent.as_str().into(), score: r.score, level: r.level.as_str().into(), quarantined: r.revoked })
        .collect();
    Ok(Json(TrustListing {
        as_of_index: table.applied.saturating_sub(1),
        as_of_time: table.time_ms,
        policy_index: table.policy_index,
        total: matching as u64,
        agents,
    }))
}

/// The trust view's score table now
/// ([`ledger_core::views::trust::TrustView::scores`]), read off the
/// async workers.
pub(crate) async fn score_table(state: &AppState) -> Result<Arc<ScoreTable>, ApiError> {
    let log = state.log.clone();
    tokio::task::spawn_blocking(move || log.trust().scores(log.now_ms())).await.map_err(ApiError::internal)
}

/// An optional admin note from a JSON body (`{}` or `{"note": "…"}`).
pub(super) fn note(body: &[u8]) -> Result<Option<String>, ApiError> {
    if body.is_empty() {
        return Ok(None);
    }
    let value = strict_json(body)?;
    let obj = value.as_object().ok_or_else(|| ApiError::new(ErrorCode::InvalidJson, "the body is a JSON object"))?;
    if let Some(extra) = obj.keys().find(|k| k.as_str() != "note") {
        return Err(ApiError::new(ErrorCode::InvalidJson, format!("unexpected member {extra:?}; the body is {{\"note\"?}}")));
    }
    obj.get("note")
        .map(|_| {
            required_string(obj, "note", MAX_REASON_CHARS)
                .map(str::to_owned)
                .map_err(|e| ApiError::new(ErrorCode::InvalidJson, e.to_string()))
        })
        .transpose()
}

/// An agent's trust record, the policy in force and the entries applied,
/// read together ([`ledger_core::views::trust::TrustView::snapshot`]).
type Snapshot = (TrustRecord, PolicyInForce, u64);

/// What an admin route on one agent starts from: the agent, the note in
/// the body, and the agent's trust snapshot (403 `unknown_agent` without
/// one).
fn admin_target(state: &AppState, id: &str, body: &[u8]) -> Result<(AgentId, Option<String>, Snapshot), ApiError> {
    let note = note(body)?;
    let agent = agent_id(id)?;
    let snapshot = state
        .log
        .trust()
        .snapshot(&agent)
        .ok_or_else(|| ApiError::new(ErrorCode::UnknownAgent, format!("no passport is registered for {agent}")))?;
    Ok((agent, note, snapshot))
}

/// Quarantine an agent (admin): a `revocation` entry with reason
/// `quarantine`; its entries other than attestations are refused until it
/// is reinstated.
#[utoipa::path(post, path = "/v1/agents/{id}/quarantine", tag = "trust",
    params(("id" = String, Path, description = "SPIFFE id, percent-encoded")),
    request_body(content = Object, content_type = "application/json", description = "`{\"note\"?: \"…\"}` (or empty)"),
    responses(
        (status = 201, description = "Revocation entry appended", body = AppendedEntry),
        (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
        (status = 403, description = "Unknown or retired agent; admin routes disabled", body = ErrorResponse),
        (status = 409, description = "Already revoked (`already_revoked`)", body = ErrorResponse),
    ),
    security(("admin" = [])))]
pub(super) async fn quarantine(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<String>,
    JsonBytes(body): JsonBytes,
) -> Result<(StatusCode, Json<AppendedEntry>), ApiError> {
    let (agent, note, (record, policy, applied)) = admin_target(&state, &id, &body)?;
    let decision = Decision { as_of_index: applied.saturating_sub(1), decided_at: state.log.now_ms() };
    let revocation = trust_log::revocation(&agent, &record, &policy, RevocationReason::Quarantine, decision, note);
    let done = state.log.revoke(&revocation).await?;
    Ok((StatusCode::CREATED, Json(appended(&done))))
}

/// Reinstate a revoked agent (admin): needs a successful attestation after
/// its revocation; logged as a `reinstatement` entry.
#[utoipa::path(post, path = "/v1/agents/{id}/reinstate", tag = "trust",
    params(("id" = String, Path, description = "SPIFFE id, percent-encoded")),
    request_body(content = Object, content_type = "application/json", description = "`{\"note\"?: \"…\"}` (or empty)"),
    responses(
        (status = 201, description = "Reinstatement entry appended", body = AppendedEntry),
        (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
        (status = 403, description = "No successful attestation since the revocation (`attestation_required`); unknown or retired agent", body = ErrorResponse),
        (status = 409, description = "Not revoked (`not_revoked`)", body = ErrorResponse),
    ),
    security(("admin" = [])))]
pub(super) async fn reinstate(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(id): Path<String>,
    JsonBytes(body): JsonBytes,
) -> Result<(StatusCode, Json<AppendedEntry>), ApiError> {
    let (agent, note, _) = admin_target(&state, &id, &body)?;
    let done = state.log.reinstate(&agent, note).await?;
    Ok((StatusCode::CREATED, Json(appended(&done))))
}

/// The trust policy in force.
#[utoipa::path(get, path = "/v1/policy", tag = "trust",
    responses((status = 200, description = "The policy in force (policy_index null: the built-in default, before any policy entry)", body = PolicyInForceResponse)))]
pub(super) async fn get_policy(State(state): State<AppState>) -> Json<PolicyInForceResponse> {
    let policy = state.log.trust().policy();
    Json(PolicyInForceResponse {
        policy_index: policy.index,
        sha256: verifier::entry::signing::hex(&policy.policy.hash()),
        policy: policy.policy.to_json(),
    })
}

/// Replace the trust policy (admin): TOML (as `--policy` takes) or the
/// policy's JSON; appends a `policy` entry when it differs from the one in
/// force.
#[utoipa::path(put, path = "/v1/policy", tag = "trust",
    request_body(content = String, content_type = "application/toml", description = "The policy (docs/policy.example.toml), or its JSON"),
    responses(
        (status = 200, description = "Unchanged", body = PolicyChange),
        (status = 201, description = "Policy entry appended", body = PolicyChange),
        (status = 400, description = "Not a valid policy (`invalid_policy`)", body = ErrorResponse),
        (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
    ),
    security(("admin" = [])))]
pub(super) async fn put_policy(
    State(state): State<AppState>,
    _: AdminAuth,
    request: axum::extract::Request,
) -> Result<(StatusCode, Json<PolicyChange>), ApiError> {
    let (parts, body) = request.into_parts();
    let body = crate::extract::read_body(&parts, body, MAX_POLICY_BYTES).await?;
    let policy = crate::policy::from_body(&body).map_err(|e| ApiError::new(ErrorCode::InvalidPolicy, e.to_string()))?;
    match state.log.set_policy(&policy).await? {
        Some(done) => Ok((StatusCode::CREATED, Json(PolicyChange { policy_index: Some(done.index), changed: true }))),
        None => Ok((StatusCode::OK, Json(PolicyChange { policy_index: state.log.trust().policy().index, changed: false }))),
    }
}
