//! Proofs: RFC 9162 inclusion and consistency proofs, and
//! c2sp.org/tlog-proof@v1 files (an entry's proof with its checkpoint).

use axum::extract::State;
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use verifier::wire::{ConsistencyProofResponse, ErrorResponse, InclusionProofResponse};

use super::tlog::text;
use super::AppState;
use crate::error::ApiError;
use crate::extract::Query;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct InclusionQuery {
    /// Leaf index.
    index: u64,
    /// Tree size to prove against (default: the current size).
    tree_size: Option<u64>,
}

/// RFC 9162 inclusion proof.
#[utoipa::path(get, path = "/v1/proof/inclusion", tag = "proofs", params(InclusionQuery),
    responses(
        (status = 200, body = InclusionProofResponse),
        (status = 400, description = "Invalid query", body = ErrorResponse),
        (status = 404, description = "Index or size beyond the tree", body = ErrorResponse),
    ))]
pub(super) async fn inclusion(
    State(state): State<AppState>,
    Query(q): Query<InclusionQuery>,
) -> Result<Json<InclusionProofResponse>, ApiError> {
    let tree_size = q.tree_size.unwrap_or_else(|| state.log.head().size);
    let index = q.index;
    let hashes = state.read(move |log| log.inclusion_proof(index, tree_size)).await?;
    Ok(Json(InclusionProofResponse { index: q.index, tree_size, hashes }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ConsistencyQuery {
    /// Size of the older tree.
    old_size: u64,
    /// Size of the newer tree (default: the current size).
    new_size: Option<u64>,
}

/// RFC 9162 consistency proof.
#[utoipa::path(get, path = "/v1/proof/consistency", tag = "proofs", params(ConsistencyQuery),
    responses(
        (status = 200, body = ConsistencyProofResponse),
        (status = 400, description = "Invalid query or old_size > new_size", body = ErrorResponse),
        (status = 404, description = "Size beyond the tree", body = ErrorResponse),
    ))]
pub(super) async fn consistency(
    State(state): State<AppState>,
    Query(q): Query<ConsistencyQuery>,
) -> Result<Json<ConsistencyProofResponse>, ApiError> {
    let new_size = q.new_size.unwrap_or_else(|| state.log.head().size);
    let old_size = q.old_size;
    let hashes = state.read(move |log| log.consistency_proof(old_size, new_size)).await?;
    Ok(Json(ConsistencyProofResponse { old_size: q.old_size, new_size, hashes }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct BundleQuery {
    /// Entry index.
    index: u64,
}

/// A c2sp.org/tlog-proof@v1 file for one entry against the latest checkpoint.
#[utoipa::path(get, path = "/v1/proof/bundle", tag = "proofs", params(BundleQuery),
    responses(
        (status = 200, description = "tlog-proof file; `extra` holds the leaf bytes", content_type = "text/plain", body = String),
        (status = 400, description = "Invalid query", body = ErrorResponse),
        (status = 404, description = "Index beyond the tree", body = ErrorResponse),
    ))]
pub(super) async fn bundle(State(state): State<AppState>, Query(q): Query<BundleQuery>) -> Result<Response, ApiError> {
    Ok(text(state.read(move |log| log.proof_bundle(q.index)).await?))
}
