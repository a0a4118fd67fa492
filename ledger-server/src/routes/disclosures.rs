//! Disclosures of hidden fields (the admin, or the agent that wrote the
//! entry) and crypto-shredding of openings (admin).

use axum::extract::State;
use axum::Json;
use ledger_core::{DisclosureRequest, ShredTarget};
use serde::Deserialize;
use utoipa::IntoParams;
use verifier::entry::Leaf;
use verifier::wire::{ErrorCode, ErrorResponse};
use verifier::AgentId;

use super::AppState;
use crate::auth::{AdminAuth, AdminOrAgent, Caller};
use crate::error::ApiError;
use crate::extract::{agent_id, strict_json, EntryIndex, Query};

/// Body of a disclosure request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DisclosureBody {
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
        (status = 403, description = "The signing agent did not write the entry, or is unknown or retired; admin routes disabled", body = ErrorResponse),
        (status = 404, description = "No such entry, or it has no hidden fields", body = ErrorResponse),
        (status = 409, description = "The signed request was seen before (`request_replayed`)", body = ErrorResponse),
        (status = 410, description = "The entry's openings were shredded", body = ErrorResponse),
        (status = 422, description = "A requested predicate is false", body = ErrorResponse),
        (status = 429, description = "Too many signed requests of this agent (`too_many_requests`)", body = ErrorResponse),
        (status = 503, description = "Prover queue full; see Retry-After", body = ErrorResponse),
    ),
    security(("admin" = [])))]
pub(super) async fn disclose(
    State(state): State<AppState>,
    EntryIndex(index): EntryIndex,
    AdminOrAgent { caller, body }: AdminOrAgent,
) -> Result<Json<serde_json::Value>, ApiError> {
    if let Caller::Agent(agent) = caller {
        // A revoked agent's key discloses nothing more (a stolen key would
        // otherwise keep revealing its past hidden values).
        if state.log.agent(&agent).is_some_and(|a| a.revoked.is_some()) {
            return Err(ApiError::from(ledger_core::Error::AgentRevoked(agent)));
        }
        let leaf = state.read(move |log| log.entry(index)).await?;
        // The writer as the typed entry names it; a version 1 leaf that
        // today's rules refuse still names one, as it was stored.
        let owner = Leaf::decode(&leaf).ok().and_then(|(leaf, _)| match &leaf.entry {
            Some(entry) => entry.agent().cloned(),
            None => Some(AgentId::from_stored_unchecked(leaf.text("agent"))),
        });
        if owner.as_ref() != Some(&agent) {
            return Err(ApiError::new(ErrorCode::NotOwner, format!("entry {index} was not written by {agent}")));
        }
    }
    strict_json(&body)?;
    let req: DisclosureBody = serde_json::from_slice(&body).map_err(|e| ApiError::new(ErrorCode::InvalidDisclosure, e.to_string()))?;
    let mut request = DisclosureRequest { reveal: req.reveal, prove: Vec::with_capacity(req.prove.len()) };
    for claim in &req.prove {
        request
            .prove
            .push(verifier::disclosure::claim_from_json(claim).map_err(|e| ApiError::new(ErrorCode::InvalidPredicate, e.to_string()))?);
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
        (status = 400, description = "Index is not a number", body = ErrorResponse),
        (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
        (status = 403, description = "Admin routes disabled (`admin_disabled`)", body = ErrorResponse),
        (status = 404, description = "No such entry, or it has no openings", body = ErrorResponse),
    ),
    security(("admin" = [])))]
pub(super) async fn shred_entry(
    State(state): State<AppState>,
    _: AdminAuth,
    EntryIndex(index): EntryIndex,
) -> Result<Json<serde_json::Value>, ApiError> {
    let done = state.read(move |log| log.shred(&ShredTarget::Entry(index))).await?;
    Ok(Json(serde_json::json!({ "shredded": done })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct AgentQuery {
    /// The agent's SPIFFE id.
    agent: String,
}

/// Crypto-shred the openings of every entry of one agent (admin).
#[utoipa::path(delete, path = "/v1/openings", tag = "disclosure", params(AgentQuery),
    responses(
        (status = 200, description = "`{\"shredded\": [indices erased now]}`", body = Object),
        (status = 400, description = "Invalid agent id", body = ErrorResponse),
        (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
        (status = 403, description = "Admin routes disabled (`admin_disabled`)", body = ErrorResponse),
    ),
    security(("admin" = [])))]
pub(super) async fn shred_agent(
    State(state): State<AppState>,
    _: AdminAuth,
    Query(q): Query<AgentQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let agent = agent_id(&q.agent)?;
    let done = state.read(move |log| log.shred(&ShredTarget::Agent(agent))).await?;
    Ok(Json(serde_json::json!({ "shredded": done })))
}
