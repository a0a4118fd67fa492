//! `POST /v1/hidden/commit`: hidden values committed by the log for an
//! agent that does not carry the zk code itself.
//!
//! The agent sends its hidden values (a signed request) and the sequence
//! number of the entry that will carry them; the log commits, proves the
//! declared predicates bound to that entry, answers with the commitments,
//! the proof and the openings, and keeps nothing. The agent then signs the
//! committed entry and appends it with the openings (`POST /v1/entries`), so
//! its signature never covers a value in the clear. Authentication comes
//! before any proving.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Json;
use ledger_core::canonical;
use serde_json::{Map, Value};
use verifier::wire::ErrorResponse;

use crate::error::ApiError;
use crate::extract::JsonBytes;
use crate::routes::AppState;

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
pub(crate) async fn commit(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    JsonBytes(body): JsonBytes,
) -> Result<Json<Value>, ApiError> {
    let agent = crate::auth::verify_agent_request(&state.log, &headers, "POST", uri.path(), &body)?.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "signature_required",
            "a commit request is signed by its agent (x-agent-id, x-agent-timestamp, x-agent-signature)",
        )
    })?;
    let value =
        canonical::parse_strict(&body).map_err(|e| ApiError::bad_request("invalid_json", format!("request is not valid JSON: {e}")))?;
    let obj = value.as_object().ok_or_else(|| ApiError::bad_request("invalid_hidden", "the request must be a JSON object"))?;
    if let Some(extra) = obj.keys().find(|k| !["seq", "hidden", "salt"].contains(&k.as_str())) {
        return Err(ApiError::bad_request("invalid_hidden", format!("unexpected field {extra:?}; a commit request has seq, hidden, salt")));
    }
    // The request signature covers the hash of this body, and signatures
    // and bodies can end up in proxy or tracing logs: a random salt makes
    // the hash unguessable, so the values cannot be brute-forced from it.
    let salt = obj.get("salt").and_then(Value::as_str).unwrap_or_default();
    if !(MIN_SALT_CHARS..=128).contains(&salt.len()) {
        return Err(ApiError::bad_request(
            "invalid_hidden",
            format!("\"salt\" must be a random string of {MIN_SALT_CHARS} to 128 characters (e.g. base64url of 16 random bytes)"),
        ));
    }
    let seq = verifier::agent::parse_seq(obj).map_err(|e| ApiError::bad_request("invalid_hidden", e.to_string()))?;
    let hidden = obj.get("hidden").ok_or_else(|| ApiError::bad_request("invalid_hidden", "missing field \"hidden\""))?;
    let hidden = ledger_core::hidden::parse_hidden(hidden)?;
    let committed = state.log.commit_hidden(&agent, seq, hidden).await?;
    let mut out = Map::new();
    out.insert("hidden".into(), committed.hidden);
    if let Some(p) = committed.predicates {
        out.insert("predicates".into(), p);
    }
    out.insert("openings".into(), committed.openings);
    Ok(Json(Value::Object(out)))
}
