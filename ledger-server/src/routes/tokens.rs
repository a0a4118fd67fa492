//! Just-in-time action tokens, escalations and trust statements
//! (docs/FORMAT.md, "Action tokens", "Escalations", "Trust statements";
//! docs/POLICY.md): the HTTP face of [`ledger_core::issuer::Issuer`].

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ledger_core::issuer::{Grant, Issuer, TokenRequest};
use ledger_core::views::grants::EscalationRecord;
use verifier::entry::Outcome;
use verifier::token::{Claims, Operation};
use verifier::wire::{
    ErrorCode, ErrorResponse, EscalationDecided, EscalationListing, EscalationStatus, HistoryEntry, IssuedToken, TokenCheckRequest,
    TokenKey, TokenValid, TrustStatement,
};

use super::AppState;
use crate::auth::{AdminAuth, AdminOrAgent, Caller, SignedAgent, SignedRoute};
use crate::error::ApiError;
use crate::extract::{agent_id, strict_json, EntryIndex, JsonBytes};

/// Largest token request body.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024;

/// Largest token check body (a token is at most 16 KiB).
pub const MAX_CHECK_BYTES: usize = 24 * 1024;

/// Most pending escalations one listing returns.
const MAX_LISTED: usize = 1000;

/// `POST /v1/tokens`: signed by the agent asking.
#[derive(Debug)]
pub(super) struct TokenRoute;

impl SignedRoute for TokenRoute {
    const MAX_BODY: usize = MAX_REQUEST_BYTES;
    const JSON: bool = true;
    const UNSIGNED: ErrorCode = ErrorCode::SignatureRequired;
    const REQUEST: &'static str = "a token request";
}

fn issuer(state: &AppState) -> Result<&Arc<Issuer>, ApiError> {
    state.issuer.as_ref().ok_or_else(|| ApiError::new(ErrorCode::TokensDisabled, "this server issues no action tokens"))
}

fn issued(token: String, claims: &Claims) -> IssuedToken {
    IssuedToken {
        token,
        jti: claims.jti.clone(),
        log_index: claims.log_index,
        not_before: claims.not_before,
        expires: claims.expires,
        class: claims.class.clone(),
        single_use: claims.single_use,
        score: claims.score,
    }
}

/// Ask for an action token (signed by the agent): `{action, resource,
/// constraints?: {sql | sql_sha256, amount_max, target}, lifetime_s?}`.
/// Issued only if, now, the agent's score meets its risk class's minimum,
/// it is not revoked, and it attested recently enough if the class says
/// so; the `token` entry is appended before the token is returned. A
/// class that needs a human answers 202 with an escalation instead.
#[utoipa::path(post, path = "/v1/tokens", tag = "tokens",
    request_body(content = Object, content_type = "application/json", description = "`{action, resource, constraints?, lifetime_s?}`"),
    responses(
        (status = 201, description = "Token issued and logged", body = IssuedToken),
        (status = 202, description = "Escalated to a human: poll `GET /v1/escalations/{id}` or watch the event stream", body = EscalationStatus),
        (status = 400, description = "Malformed request (`invalid_token_request`)", body = ErrorResponse),
        (status = 401, description = "Unsigned or badly signed request", body = ErrorResponse),
        (status = 403, description = "`score_too_low` (with details), `attestation_required`, `agent_revoked`, `agent_retired`, `unknown_agent`", body = ErrorResponse),
        (status = 429, description = "The agent holds too many live tokens or pending escalations (`too_many_tokens`)", body = ErrorResponse),
    ))]
pub(super) async fn request(State(state): State<AppState>, signed: SignedAgent<TokenRoute>) -> Result<Response, ApiError> {
    let issuer = issuer(&state)?;
    let request = TokenRequest::from_json(&strict_json(&signed.body)?)?;
    match issuer.request(&signed.agent, &request).await? {
        Grant::Token { token, claims } => Ok((StatusCode::CREATED, Json(issued(token, &claims))).into_response()),
        Grant::Escalated { escalation, .. } => {
            let record = state.log.grants().escalation(escalation).ok_or_else(|| ApiError::internal("escalation not in the view"))?;
            Ok((StatusCode::ACCEPTED, Json(status_of(&record, None))).into_response())
        }
    }
}

/// The public view of an escalation.
fn status_of(record: &EscalationRecord, token: Option<IssuedToken>) -> EscalationStatus {
    let e = &record.entry;
    let (status, decision_index, note) = match &record.decision {
        None => ("pending", None, None),
        Some((outcome, index, _, note)) => (outcome.as_str(), Some(*index), note.clone()),
    };
    EscalationStatus {
        escalation: record.index,
        status: status.to_owned(),
        agent: e.agent.as_str().to_owned(),
        action: e.scope.action.clone(),
        resource: e.scope.resource.clone(),
        constraints: serde_json::Value::Object(e.scope.constraints.to_object()),
        class: e.scope.class.clone(),
        score_at_request: e.basis.score,
        expires_at: e.expires_at,
        decision_index,
        note,
        token_index: record.token.as_ref().map(|(_, i)| *i),
        token,
        score_now: None,
        history: Vec::new(),
    }
}

/// Check a token for an operation, as a resource server that prefers to
/// ask: the one verification rule (`verifier::token`), against the log's
/// revoked token ids, and single use. 200 when it holds; otherwise 403 (or
/// 409 `token_replayed`) with the precise `token_*` code.
#[utoipa::path(post, path = "/v1/tokens/verify", tag = "tokens",
    request_body(content = TokenCheckRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The token allows the operation (a single-use token is now used up)", body = TokenValid),
        (status = 400, description = "Malformed request (`invalid_token_check`)", body = ErrorResponse),
        (status = 403, description = "Refused: `token_expired`, `token_not_yet_valid`, `token_wrong_audience`, `token_wrong_action`, `token_sql_mismatch`, `token_amount_over_ceiling`, `token_target_mismatch`, `token_revoked`, `token_bad_signature`, `token_malformed`, `token_too_long`, `token_wrong_issuer`", body = ErrorResponse),
        (status = 503, description = "The single-use cache is full (`token_replay_cache_full`)", body = ErrorResponse),
        (status = 409, description = "A single-use token presented again (`token_replayed`)", body = ErrorResponse),
    ))]
pub(super) async fn verify(State(state): State<AppState>, JsonBytes(body): JsonBytes) -> Result<Json<TokenValid>, ApiError> {
    let issuer = issuer(&state)?;
    strict_json(&body)?;
    let req: TokenCheckRequest = serde_json::from_slice(&body).map_err(|e| ApiError::new(ErrorCode::InvalidTokenCheck, e.to_string()))?;
    let op = Operation {
        audience: &req.audience,
        action: &req.action,
        sql: req.sql.as_deref(),
        amount: req.amount,
        target: req.target.as_deref(),
    };
    let claims = issuer.verify(&req.token, &op)?;
    Ok(Json(TokenValid {
        valid: true,
        jti: claims.jti,
        sub: claims.subject,
        expires: claims.expires,
        log_index: claims.log_index,
        single_use: claims.single_use,
    }))
}

/// The key tokens and trust statements are signed with.
#[utoipa::path(get, path = "/v1/tokens/key", tag = "tokens",
    responses((status = 200, description = "Issuer, PASERK k4.public and base64 key", body = TokenKey)))]
pub(super) async fn key(State(state): State<AppState>) -> Result<Json<TokenKey>, ApiError> {
    let key = issuer(&state)?.public_key();
    Ok(Json(TokenKey {
        issuer: state.log.config().origin.clone(),
        paserk: ledger_core::issuer::paserk_public(&key),
        public_key: B64.encode(key.as_bytes()),
    }))
}

/// Pending escalations (admin), oldest first, each with the agent's score
/// now and the entries that last moved it.
#[utoipa::path(get, path = "/v1/escalations", tag = "tokens",
    responses(
        (status = 200, description = "Pending escalations", body = EscalationListing),
        (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
    ),
    security(("admin" = [])))]
pub(super) async fn list(State(state): State<AppState>, _: AdminAuth) -> Result<Json<EscalationListing>, ApiError> {
    issuer(&state)?;
    let pending = state
        .read(|log| {
            let now = log.now_ms();
            let mut out = Vec::new();
            for record in log.grants().pending().into_iter().take(MAX_LISTED) {
                let mut status = status_of(&record, None);
                if let Some((trust, policy, _)) = log.trust().snapshot(&record.entry.agent) {
                    status.score_now = Some(trust.trust.score(&policy.policy, now));
                    for &index in trust.trust.recent() {
                        let leaf = log.entry(index)?;
                        if let Ok((leaf, _)) = verifier::entry::Leaf::decode(&leaf) {
                            let action = (leaf.kind == verifier::entry::EntryKind::Action).then(|| leaf.text("action").to_owned());
                            status.history.push(HistoryEntry {
                                index,
                                kind: leaf.kind.as_str().to_owned(),
                                integrated_time: leaf.integrated_time,
                                action,
                            });
                        }
                    }
                }
                out.push(status);
            }
            Ok(out)
        })
        .await?;
    Ok(Json(EscalationListing { pending }))
}

/// An escalation's status: the admin's, or its agent's (signed request),
/// who receives the token once it is approved.
#[utoipa::path(get, path = "/v1/escalations/{index}", tag = "tokens",
    params(("index" = u64, Path, description = "The escalation entry's index")),
    responses(
        (status = 200, description = "Status (and, for its agent, the token once approved)", body = EscalationStatus),
        (status = 403, description = "Another agent's escalation (`not_owner`)", body = ErrorResponse),
        (status = 404, description = "No such escalation (`unknown_escalation`)", body = ErrorResponse),
    ))]
pub(super) async fn get(
    State(state): State<AppState>,
    EntryIndex(index): EntryIndex,
    auth: AdminOrAgent,
) -> Result<Json<EscalationStatus>, ApiError> {
    let issuer = issuer(&state)?;
    let record = state.log.grants().escalation(index).ok_or(ledger_core::Error::UnknownEscalation(index))?;
    let token = match auth.caller {
        Caller::Agent(agent) if agent != record.entry.agent => {
            return Err(ApiError::new(ErrorCode::NotOwner, format!("escalation {index} is not {agent}'s")));
        }
        // Signed again only for its agent.
        Caller::Agent(_) => issuer.approved_token(&record).map(|(t, c)| issued(t, &c)),
        Caller::Admin => None,
    };
    Ok(Json(status_of(&record, token)))
}

async fn decide(state: &AppState, index: u64, body: &[u8], outcome: Outcome) -> Result<Json<EscalationDecided>, ApiError> {
    let note = super::trust::note(body)?;
    let done = issuer(state)?.decide(index, outcome, note).await?;
    Ok(Json(EscalationDecided {
        escalation: index,
        outcome: done.outcome.as_str().to_owned(),
        decision_index: done.decision_index,
        token_index: done.token.map(|(_, c)| c.log_index),
    }))
}

/// Approve an escalation (admin): checked like a token request now; logs
/// the `decision` and the `token` together. Exactly one of concurrent
/// decisions wins; the others get 409 `already_decided`.
#[utoipa::path(post, path = "/v1/escalations/{index}/approve", tag = "tokens",
    params(("index" = u64, Path, description = "The escalation entry's index")),
    request_body(content = Object, content_type = "application/json", description = "`{\"note\"?: \"…\"}` (or empty)"),
    responses(
        (status = 200, description = "Approved: decision and token logged", body = EscalationDecided),
        (status = 403, description = "The agent no longer qualifies (`score_too_low`, `agent_revoked`, …): it stays pending", body = ErrorResponse),
        (status = 404, description = "No such escalation", body = ErrorResponse),
        (status = 409, description = "Already decided (`already_decided`)", body = ErrorResponse),
    ),
    security(("admin" = [])))]
pub(super) async fn approve(
    State(state): State<AppState>,
    _: AdminAuth,
    EntryIndex(index): EntryIndex,
    JsonBytes(body): JsonBytes,
) -> Result<Json<EscalationDecided>, ApiError> {
    decide(&state, index, &body, Outcome::Approved).await
}

/// Deny an escalation (admin): logs the `decision`.
#[utoipa::path(post, path = "/v1/escalations/{index}/deny", tag = "tokens",
    params(("index" = u64, Path, description = "The escalation entry's index")),
    request_body(content = Object, content_type = "application/json", description = "`{\"note\"?: \"…\"}` (or empty)"),
    responses(
        (status = 200, description = "Denied: decision logged", body = EscalationDecided),
        (status = 404, description = "No such escalation", body = ErrorResponse),
        (status = 409, description = "Already decided (`already_decided`)", body = ErrorResponse),
    ),
    security(("admin" = [])))]
pub(super) async fn deny(
    State(state): State<AppState>,
    _: AdminAuth,
    EntryIndex(index): EntryIndex,
    JsonBytes(body): JsonBytes,
) -> Result<Json<EscalationDecided>, ApiError> {
    decide(&state, index, &body, Outcome::Denied).await
}

/// A trust statement about an agent, signed by the log, for its peers:
/// score, level, revoked or not, as of an index and instant, with its
/// latest successful attestation proven into a signed checkpoint
/// (`verifier::statement::PeerCheck` checks it offline).
#[utoipa::path(get, path = "/v1/agents/{id}/statement", tag = "tokens",
    params(("id" = String, Path, description = "SPIFFE id, percent-encoded")),
    responses(
        (status = 200, description = "The statement (PASETO v4.public)", body = TrustStatement),
        (status = 404, description = "No such agent", body = ErrorResponse),
    ))]
pub(super) async fn statement(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<TrustStatement>, ApiError> {
    let issuer = Arc::clone(issuer(&state)?);
    let agent = agent_id(&id).map_err(|_| ApiError::no_such_agent(&id))?;
    if state.log.agent(&agent).is_none() {
        return Err(ApiError::no_such_agent(&id));
    }
    let statement = state.read(move |_| issuer.statement(&agent)).await?;
    Ok(Json(TrustStatement { statement }))
}
