//! The log itself, as C2SP formats: the signed checkpoint
//! (c2sp.org/tlog-checkpoint), the verifier key (c2sp.org/signed-note) and
//! tiles (c2sp.org/tlog-tiles), with the witnesses' cosignatures
//! (c2sp.org/tlog-cosignature) on the checkpoint once they have them.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use verifier::tiles::TilePath;
use verifier::wire::{ErrorCode, ErrorResponse, WitnessListing, WitnessRow};

use super::AppState;
use crate::auth::AdminAuth;
use crate::error::ApiError;

/// Full tiles never change.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// A `text/plain` answer that may change (checkpoints, proof files).
pub(super) fn text(body: impl Into<String>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], body.into()).into_response()
}

/// The latest C2SP signed checkpoint.
#[utoipa::path(get, path = "/v1/checkpoint", tag = "log",
    responses((status = 200, description = "c2sp.org/tlog-checkpoint signed note", content_type = "text/plain", body = String)))]
pub(super) async fn checkpoint(State(state): State<AppState>) -> Response {
    text(state.checkpoint_note())
}

/// Each configured witness: what it cosigned last and its last failure
/// (admin: the failures name internal addresses).
#[utoipa::path(get, path = "/v1/witnesses", tag = "log",
    responses(
        (status = 200, description = "The quorum and each witness's progress", body = WitnessListing),
        (status = 401, description = "No or wrong admin token", body = ErrorResponse),
    ),
    security(("admin" = [])))]
pub(super) async fn witnesses(State(state): State<AppState>, _: AdminAuth) -> Json<WitnessListing> {
    Json(witness_listing(&state))
}

/// The quorum and each witness's progress (`GET /v1/witnesses`, the
/// console's health).
pub(super) fn witness_listing(state: &AppState) -> WitnessListing {
    let Some(w) = &state.witnessing else { return WitnessListing { quorum: 0, witnessed: None, witnesses: Vec::new() } };
    let witnessed = w.latest_quorum().and_then(|note| ledger_core::export::checkpoint_of(&note).ok()).map(|cp| cp.size);
    let witnesses = w
        .status()
        .into_iter()
        .map(|s| WitnessRow {
            name: s.name,
            key: s.key,
            url: s.url,
            cosigned_size: s.cosigned_size,
            failures: s.failures,
            last_error: s.last_error,
        })
        .collect();
    WitnessListing { quorum: w.quorum(), witnessed, witnesses }
}

/// The log's verifier key, `name+hex8(keyid)+base64(0x01||pubkey)`.
#[utoipa::path(get, path = "/v1/log/key", tag = "log",
    responses((status = 200, description = "C2SP verifier key line", content_type = "text/plain", body = String)))]
pub(super) async fn log_key(State(state): State<AppState>) -> Response {
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
pub(super) async fn tile(State(state): State<AppState>, Path(path): Path<String>) -> Result<Response, ApiError> {
    let tile = TilePath::parse(&path).map_err(|e| ApiError::new(ErrorCode::InvalidTilePath, format!("{path:?}: {e}")))?;
    let body = state.read(move |log| log.tile(&tile)).await?;
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
