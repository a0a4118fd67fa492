//! The OpenID Shared Signals Framework 1.0 transmitter's endpoints: its
//! metadata and keys (public), stream management (SSF §8.1, bearer tokens
//! with `ssf.read` / `ssf.manage`) and the RFC 8936 poll endpoint. The
//! transmitter itself is [`crate::ssf`]; these handlers read requests and
//! write answers. A server without a transmitter answers 404 `not_found`.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{Map, Value};
use verifier::wire::{ErrorCode, ErrorResponse};

use super::AppState;
use crate::error::ApiError;
use crate::extract::{strict_json, JsonBytes, Query};
use crate::ssf::{Caller, Scope, Transmitter};

/// Largest stream management request body.
pub(super) const MANAGEMENT_BODY_BYTES: usize = 16 * 1024;
/// Largest poll request body (10,000 acknowledgements).
pub(super) const POLL_BODY_BYTES: usize = 1024 * 1024;

fn transmitter(state: &AppState) -> Result<Arc<Transmitter>, ApiError> {
    state.ssf.clone().ok_or_else(|| ApiError::new(ErrorCode::NotFound, "this server runs no SSF transmitter"))
}

/// An authenticated SSF caller, checked from the headers before the body
/// is read.
pub(super) struct SsfAuth {
    ssf: Arc<Transmitter>,
    caller: Caller,
}

impl FromRequestParts<AppState> for SsfAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ssf = transmitter(state)?;
        let caller = ssf.caller(&parts.headers)?;
        Ok(Self { ssf, caller })
    }
}

impl SsfAuth {
    fn allow(self, scopes: &[Scope]) -> Result<(Arc<Transmitter>, Caller), ApiError> {
        self.caller.require(scopes)?;
        Ok((self.ssf, self.caller))
    }
}

/// Reads: `ssf.read` or `ssf.manage`.
const READ: &[Scope] = &[Scope::Read, Scope::Manage];
/// Changes: `ssf.manage`.
const MANAGE: &[Scope] = &[Scope::Manage];
/// Polls: `ssf.manage` or `ssf.manage.poll`.
const POLL: &[Scope] = &[Scope::Manage, Scope::ManagePoll];

/// A management answer: JSON, never cached (SSF's examples).
fn answer(status: StatusCode, body: Value) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

fn empty(status: StatusCode) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store")]).into_response()
}

fn object(body: &[u8], code: ErrorCode) -> Result<Map<String, Value>, ApiError> {
    match strict_json(body)? {
        Value::Object(obj) => Ok(obj),
        _ => Err(ApiError::new(code, "the request body must be a JSON object")),
    }
}

/// `?stream_id=`.
#[derive(Debug, Deserialize)]
pub(super) struct StreamQuery {
    stream_id: Option<String>,
}

fn required(query: &StreamQuery) -> Result<&str, ApiError> {
    query.stream_id.as_deref().ok_or_else(|| ApiError::new(ErrorCode::InvalidStream, "the request must name the stream (?stream_id=)"))
}

/// The Transmitter Configuration Metadata (SSF §7).
#[utoipa::path(get, path = "/.well-known/ssf-configuration", tag = "ssf",
    responses((status = 200, description = "`{\"spec_version\":\"1_0\",\"issuer\",\"jwks_uri\",\"delivery_methods_supported\",\"configuration_endpoint\",\"status_endpoint\",\"add_subject_endpoint\",\"remove_subject_endpoint\",\"verification_endpoint\",\"authorization_schemes\",\"default_subjects\"}`", body = Object)))]
pub(super) async fn configuration(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(transmitter(&state)?.metadata()))
}

/// The JWK Set of the SET signing key.
#[utoipa::path(get, path = "/ssf/jwks.json", tag = "ssf", responses((status = 200, description = "`{\"keys\":[JWK]}` (RFC 7517)", body = Object)))]
pub(super) async fn jwks(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(transmitter(&state)?.jwks()))
}

/// Create a stream (SSF §8.1.1.1).
#[utoipa::path(post, path = "/ssf/stream", tag = "ssf",
    request_body(content = Object, content_type = "application/json", description = "`{\"delivery\"?,\"events_requested\"?,\"description\"?}`"),
    responses(
        (status = 201, description = "The stream's configuration", body = Object),
        (status = 400, description = "`invalid_stream`, `invalid_json`", body = ErrorResponse),
        (status = 401, description = "Missing or unknown token (`unauthorized`)", body = ErrorResponse),
        (status = 403, description = "`insufficient_scope` (needs `ssf.manage`)", body = ErrorResponse),
        (status = 409, description = "`too_many_streams`", body = ErrorResponse),
    ),
    security(("ssf" = ["ssf.manage"])))]
pub(super) async fn create(auth: SsfAuth, JsonBytes(body): JsonBytes) -> Result<Response, ApiError> {
    let (ssf, caller) = auth.allow(MANAGE)?;
    let config = ssf.create(&caller, &object(&body, ErrorCode::InvalidStream)?).await?;
    Ok(answer(StatusCode::CREATED, config))
}

/// Read one stream's configuration, or (without `stream_id`) all of the
/// caller's (SSF §8.1.1.2).
#[utoipa::path(get, path = "/ssf/stream", tag = "ssf",
    params(("stream_id" = Option<String>, Query, description = "Without it: every stream of the caller, as an array")),
    responses(
        (status = 200, description = "A configuration, or an array of them", body = Object),
        (status = 401, description = "`unauthorized`", body = ErrorResponse),
        (status = 403, description = "`insufficient_scope` (needs `ssf.read` or `ssf.manage`)", body = ErrorResponse),
        (status = 404, description = "`unknown_stream`", body = ErrorResponse),
    ),
    security(("ssf" = ["ssf.read"])))]
pub(super) async fn read(auth: SsfAuth, Query(query): Query<StreamQuery>) -> Result<Response, ApiError> {
    let (ssf, caller) = auth.allow(READ)?;
    Ok(answer(StatusCode::OK, ssf.read(&caller, query.stream_id.as_deref())?))
}

/// Update a stream's configuration: members absent stay (SSF §8.1.1.3).
#[utoipa::path(patch, path = "/ssf/stream", tag = "ssf",
    request_body(content = Object, content_type = "application/json", description = "`{\"stream_id\", …members to change}`"),
    responses(
        (status = 200, description = "The updated configuration", body = Object),
        (status = 400, description = "`invalid_stream` (also a Transmitter-supplied member that does not match)", body = ErrorResponse),
        (status = 401, description = "`unauthorized`", body = ErrorResponse),
        (status = 403, description = "`insufficient_scope`", body = ErrorResponse),
        (status = 404, description = "`unknown_stream`", body = ErrorResponse),
    ),
    security(("ssf" = ["ssf.manage"])))]
pub(super) async fn update(auth: SsfAuth, JsonBytes(body): JsonBytes) -> Result<Response, ApiError> {
    let (ssf, caller) = auth.allow(MANAGE)?;
    Ok(answer(StatusCode::OK, ssf.update(&caller, &object(&body, ErrorCode::InvalidStream)?, false).await?))
}

/// Replace a stream's configuration: receiver-supplied members absent are
/// removed (SSF §8.1.1.4).
#[utoipa::path(put, path = "/ssf/stream", tag = "ssf",
    request_body(content = Object, content_type = "application/json", description = "`{\"stream_id\",\"delivery\",\"events_requested\"?,\"description\"?}`"),
    responses(
        (status = 200, description = "The new configuration", body = Object),
        (status = 400, description = "`invalid_stream`", body = ErrorResponse),
        (status = 401, description = "`unauthorized`", body = ErrorResponse),
        (status = 403, description = "`insufficient_scope`", body = ErrorResponse),
        (status = 404, description = "`unknown_stream`", body = ErrorResponse),
    ),
    security(("ssf" = ["ssf.manage"])))]
pub(super) async fn replace(auth: SsfAuth, JsonBytes(body): JsonBytes) -> Result<Response, ApiError> {
    let (ssf, caller) = auth.allow(MANAGE)?;
    Ok(answer(StatusCode::OK, ssf.update(&caller, &object(&body, ErrorCode::InvalidStream)?, true).await?))
}

/// Delete a stream (SSF §8.1.1.5).
#[utoipa::path(delete, path = "/ssf/stream", tag = "ssf",
    params(("stream_id" = String, Query, description = "The stream")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "`invalid_stream` (no `stream_id`)", body = ErrorResponse),
        (status = 401, description = "`unauthorized`", body = ErrorResponse),
        (status = 403, description = "`insufficient_scope`", body = ErrorResponse),
        (status = 404, description = "`unknown_stream`", body = ErrorResponse),
    ),
    security(("ssf" = ["ssf.manage"])))]
pub(super) async fn delete(auth: SsfAuth, Query(query): Query<StreamQuery>) -> Result<Response, ApiError> {
    let (ssf, caller) = auth.allow(MANAGE)?;
    ssf.delete(&caller, required(&query)?).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// Read a stream's status (SSF §8.1.2.1).
#[utoipa::path(get, path = "/ssf/status", tag = "ssf",
    params(("stream_id" = String, Query, description = "The stream")),
    responses(
        (status = 200, description = "`{\"stream_id\",\"status\",\"reason\"?,\"last_error\"?}`", body = Object),
        (status = 400, description = "`invalid_stream` (no `stream_id`)", body = ErrorResponse),
        (status = 401, description = "`unauthorized`", body = ErrorResponse),
        (status = 403, description = "`insufficient_scope`", body = ErrorResponse),
        (status = 404, description = "`unknown_stream`", body = ErrorResponse),
    ),
    security(("ssf" = ["ssf.read"])))]
pub(super) async fn status(auth: SsfAuth, Query(query): Query<StreamQuery>) -> Result<Response, ApiError> {
    let (ssf, caller) = auth.allow(READ)?;
    Ok(answer(StatusCode::OK, ssf.status(&caller, required(&query)?)?))
}

/// Update a stream's status (SSF §8.1.2.2).
#[utoipa::path(post, path = "/ssf/status", tag = "ssf",
    request_body(content = Object, content_type = "application/json", description = "`{\"stream_id\",\"status\":\"enabled\"|\"paused\"|\"disabled\",\"reason\"?}`"),
    responses(
        (status = 200, description = "The status", body = Object),
        (status = 400, description = "`invalid_stream_status`, `invalid_stream`", body = ErrorResponse),
        (status = 401, description = "`unauthorized`", body = ErrorResponse),
        (status = 403, description = "`insufficient_scope`", body = ErrorResponse),
        (status = 404, description = "`unknown_stream`", body = ErrorResponse),
    ),
    security(("ssf" = ["ssf.manage"])))]
pub(super) async fn update_status(auth: SsfAuth, JsonBytes(body): JsonBytes) -> Result<Response, ApiError> {
    let (ssf, caller) = auth.allow(MANAGE)?;
    Ok(answer(StatusCode::OK, ssf.set_status(&caller, &object(&body, ErrorCode::InvalidStream)?).await?))
}

/// Add a subject (an agent) to a stream (SSF §8.1.3.2).
#[utoipa::path(post, path = "/ssf/subjects/add", tag = "ssf",
    request_body(content = Object, content_type = "application/json", description = "`{\"stream_id\",\"subject\":{\"format\":\"uri\",\"uri\":\"spiffe://…\"},\"verified\"?}`"),
    responses(
        (status = 200, description = "Added"),
        (status = 400, description = "`invalid_subject`, `invalid_stream`", body = ErrorResponse),
        (status = 401, description = "`unauthorized`", body = ErrorResponse),
        (status = 403, description = "`insufficient_scope`", body = ErrorResponse),
        (status = 404, description = "`unknown_stream`", body = ErrorResponse),
        (status = 409, description = "`too_many_subjects`", body = ErrorResponse),
    ),
    security(("ssf" = ["ssf.manage"])))]
pub(super) async fn add_subject(auth: SsfAuth, JsonBytes(body): JsonBytes) -> Result<Response, ApiError> {
    let (ssf, caller) = auth.allow(MANAGE)?;
    ssf.subject(&caller, &object(&body, ErrorCode::InvalidStream)?, true).await?;
    Ok(empty(StatusCode::OK))
}

/// Remove a subject from a stream (SSF §8.1.3.3).
#[utoipa::path(post, path = "/ssf/subjects/remove", tag = "ssf",
    request_body(content = Object, content_type = "application/json", description = "`{\"stream_id\",\"subject\":{\"format\":\"uri\",\"uri\":\"spiffe://…\"}}`"),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "`invalid_subject`, `invalid_stream`", body = ErrorResponse),
        (status = 401, description = "`unauthorized`", body = ErrorResponse),
        (status = 403, description = "`insufficient_scope`", body = ErrorResponse),
        (status = 404, description = "`unknown_stream`", body = ErrorResponse),
        (status = 409, description = "`too_many_subjects`", body = ErrorResponse),
    ),
    security(("ssf" = ["ssf.manage"])))]
pub(super) async fn remove_subject(auth: SsfAuth, JsonBytes(body): JsonBytes) -> Result<Response, ApiError> {
    let (ssf, caller) = auth.allow(MANAGE)?;
    ssf.subject(&caller, &object(&body, ErrorCode::InvalidStream)?, false).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// Ask for a verification SET on a stream (SSF §8.1.4.2).
#[utoipa::path(post, path = "/ssf/verify", tag = "ssf",
    request_body(content = Object, content_type = "application/json", description = "`{\"stream_id\",\"state\"?}`"),
    responses(
        (status = 204, description = "Queued: it is sent ahead of the stream's next events"),
        (status = 400, description = "`invalid_stream`", body = ErrorResponse),
        (status = 401, description = "`unauthorized`", body = ErrorResponse),
        (status = 403, description = "`insufficient_scope`", body = ErrorResponse),
        (status = 404, description = "`unknown_stream`", body = ErrorResponse),
        (status = 429, description = "`too_many_requests` (16 verification SETs wait already)", body = ErrorResponse),
    ),
    security(("ssf" = ["ssf.manage"])))]
pub(super) async fn verify(auth: SsfAuth, JsonBytes(body): JsonBytes) -> Result<Response, ApiError> {
    let (ssf, caller) = auth.allow(MANAGE)?;
    ssf.verify(&caller, &object(&body, ErrorCode::InvalidStream)?).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// Poll a stream for SETs (RFC 8936).
#[utoipa::path(post, path = "/ssf/poll/{stream_id}", tag = "ssf",
    params(("stream_id" = String, Path, description = "The stream")),
    request_body(content = Object, content_type = "application/json", description = "`{\"maxEvents\"?,\"returnImmediately\"?,\"ack\"?:[jti],\"setErrs\"?:{jti:{\"err\",\"description\"?}}}`"),
    responses(
        (status = 200, description = "`{\"sets\":{jti:SET},\"moreAvailable\"}`", body = Object),
        (status = 400, description = "`invalid_poll` (also a push stream)", body = ErrorResponse),
        (status = 401, description = "`unauthorized`", body = ErrorResponse),
        (status = 403, description = "`insufficient_scope` (needs `ssf.manage` or `ssf.manage.poll`)", body = ErrorResponse),
        (status = 404, description = "`unknown_stream`", body = ErrorResponse),
    ),
    security(("ssf" = ["ssf.manage.poll"])))]
pub(super) async fn poll(auth: SsfAuth, Path(stream_id): Path<String>, JsonBytes(body): JsonBytes) -> Result<Response, ApiError> {
    let (ssf, caller) = auth.allow(POLL)?;
    let sets = ssf.poll(&caller, &stream_id, &object(&body, ErrorCode::InvalidPoll)?).await?;
    Ok(answer(StatusCode::OK, sets))
}
