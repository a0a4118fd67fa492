//! The HTTP API's router, by resource, and the state its handlers share.
//!
//! - [`entries`]: appending (one, a batch), reading entries, and the
//!   log-side commitment of hidden values (`POST /v1/hidden/commit`);
//! - [`proofs`]: inclusion and consistency proofs, tlog-proof bundles;
//! - [`tlog`]: the checkpoint, the log's key and tiles (C2SP);
//! - [`export`]: audit archives of a range of the log (admin);
//! - [`agents`]: passports, retirement and agent reads (rotations are
//!   entries, appended through [`entries`]);
//! - [`attestations`]: attestation nonces and attestations;
//! - [`disclosures`]: disclosures and crypto-shredding of openings;
//! - [`signals`]: signal sources (admin) and signed signals, peer reports
//!   included;
//! - [`events`]: the revocation bus over SSE and WebSocket;
//! - [`ssf`]: the OpenID SSF transmitter: metadata, keys, stream
//!   management and polling;
//! - [`tokens`]: action tokens, their verification, escalations to a
//!   human and trust statements for peers;
//! - [`console`]: the security console's page and its admin reads;
//! - [`ops`]: health, metrics and the OpenAPI document.
//!
//! Authentication is done by the extractors of [`crate::auth`], malformed
//! input is refused by those of [`crate::extract`], and every error
//! response is built by [`crate::error`] and logged once by its
//! middleware.

mod agents;
mod attestations;
mod console;
mod disclosures;
mod entries;
mod events;
mod export;
mod ops;
mod proofs;
mod signals;
mod ssf;
mod tlog;
mod tokens;
mod trust;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::{delete, get, post};
use axum::{middleware, Extension, Router};
use ledger_core::Log;
use verifier::wire::ErrorCode;

use crate::auth::{AdminToken, AuthState};
use crate::bus::RevocationBus;
use crate::error::ApiError;
use crate::extract::{BodyLimit, BodyTimeout};
use crate::metrics::Metrics;

pub use console::serve_console_from;
pub use ops::openapi;

/// Request limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest canonical entry body.
    pub max_entry_bytes: usize,
    /// Largest request body of a single append.
    pub max_entry_request_bytes: usize,
    /// Most entries in a batch append.
    pub max_batch_entries: usize,
    /// Largest request body of a batch append.
    pub max_batch_request_bytes: usize,
    /// How long a client may take to send a request body.
    pub body_timeout: Duration,
}

/// Shared state of every handler.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The log.
    pub log: Arc<Log>,
    /// Metrics (also the log's commit observer).
    pub metrics: Arc<Metrics>,
    /// Request limits.
    pub limits: Limits,
    /// The admin bearer token; `None` disables admin routes.
    pub admin: Option<AdminToken>,
    /// The revocation bus (`/v1/events/*`).
    pub events: Arc<RevocationBus>,
    /// The OpenID SSF transmitter; `None`: its routes answer 404.
    pub ssf: Option<Arc<crate::ssf::Transmitter>>,
    /// The token issuer; `None`: the token routes answer 404
    /// `tokens_disabled`.
    pub issuer: Option<Arc<ledger_core::issuer::Issuer>>,
    /// Witness cosigning; `None`: checkpoints are served as the log signs
    /// them and exports are made under the latest.
    pub witnessing: Option<Arc<crate::witnessing::Witnessing>>,
}

impl AppState {
    /// Runs a storage read on the blocking pool, so RocksDB I/O never
    /// stalls the async workers that serve appends.
    pub(crate) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Log) -> Result<T, ledger_core::Error> + Send + 'static,
    ) -> Result<T, ApiError> {
        let log = Arc::clone(&self.log);
        match tokio::task::spawn_blocking(move || f(&log)).await {
            Ok(result) => result.map_err(ApiError::from),
            Err(e) => Err(ApiError::internal(format_args!("read task failed: {e}"))),
        }
    }
}

impl AppState {
    /// The latest checkpoint, with the witnesses' cosignatures once they
    /// have cosigned it.
    pub(crate) fn checkpoint_note(&self) -> String {
        let signed = self.log.head().checkpoint.to_string();
        match self.witnessing.as_ref().and_then(|w| w.latest()) {
            Some(cosigned) if cosigned.starts_with(&signed) => cosigned,
            _ => signed,
        }
    }

    /// The checkpoint exports are made under: the latest, or with
    /// witnesses the latest cosigned by the quorum (none yet: 503
    /// `not_witnessed`), so that an auditor can require the quorum.
    pub(crate) fn export_checkpoint(&self) -> Result<String, ApiError> {
        match &self.witnessing {
            None => Ok(self.log.head().checkpoint.to_string()),
            Some(w) => w.latest_quorum().ok_or_else(|| {
                ApiError::new(ErrorCode::NotWitnessed, format!("no checkpoint is cosigned by {} witnesses yet", w.quorum()))
                    .retry_after(Duration::from_secs(1))
            }),
        }
    }
}

impl AuthState for AppState {
    fn admin_token(&self) -> Option<&AdminToken> {
        self.admin.as_ref()
    }

    fn log(&self) -> &Log {
        &self.log
    }
}

/// The API router.
pub fn app(state: AppState) -> Router {
    let limits = state.limits;
    let limit = |bytes: usize| Extension(BodyLimit(bytes));
    Router::new()
        .route("/v1/entries", post(entries::append).layer(limit(limits.max_entry_request_bytes)).get(entries::list))
        .route("/v1/entries/batch", post(entries::append_batch).layer(limit(limits.max_batch_request_bytes)))
        .route("/v1/entries/{index}", get(entries::get))
        .route("/v1/hidden/commit", post(entries::commit_hidden).layer(limit(64 * 1024)))
        .route("/v1/entries/{index}/disclosures", post(disclosures::disclose).layer(limit(64 * 1024)))
        .route("/v1/entries/{index}/openings", delete(disclosures::shred_entry))
        .route("/v1/openings", delete(disclosures::shred_agent))
        .route("/v1/agents", post(agents::register).layer(limit(16 * 1024)))
        .route("/v1/agents/{id}", get(agents::get))
        .route("/v1/agents/{id}/retire", post(agents::retire).layer(limit(4 * 1024)))
        .route("/v1/agents/{id}/nonce", post(attestations::nonce))
        .route("/v1/agents/{id}/trust", get(trust::get))
        .route("/v1/agents/{id}/statement", get(tokens::statement))
        .route("/v1/tokens", post(tokens::request).layer(limit(tokens::MAX_REQUEST_BYTES)))
        .route("/v1/tokens/verify", post(tokens::verify).layer(limit(tokens::MAX_CHECK_BYTES)))
        .route("/v1/tokens/key", get(tokens::key))
        .route("/v1/escalations", get(tokens::list))
        .route("/v1/escalations/{index}", get(tokens::get))
        .route("/v1/escalations/{index}/approve", post(tokens::approve).layer(limit(4 * 1024)))
        .route("/v1/escalations/{index}/deny", post(tokens::deny).layer(limit(4 * 1024)))
        .route("/v1/agents/{id}/quarantine", post(trust::quarantine).layer(limit(4 * 1024)))
        .route("/v1/agents/{id}/reinstate", post(trust::reinstate).layer(limit(4 * 1024)))
        .route("/v1/trust", get(trust::list))
        .route("/v1/policy", get(trust::get_policy).put(trust::put_policy))
        .route("/v1/attestations", post(attestations::attest).layer(limit(32 * 1024)))
        .route("/v1/sources", post(signals::register).layer(limit(4 * 1024)).get(signals::list))
        .route("/v1/signals", post(signals::submit).layer(limit(limits.max_entry_request_bytes)))
        .route("/v1/events/stream", get(events::stream))
        .route("/v1/events/ws", get(events::websocket))
        .route("/v1/proof/inclusion", get(proofs::inclusion))
        .route("/v1/proof/consistency", get(proofs::consistency))
        .route("/v1/proof/bundle", get(proofs::bundle))
        .route("/v1/checkpoint", get(tlog::checkpoint))
        .route("/tlog/checkpoint", get(tlog::checkpoint))
        .route("/v1/log/key", get(tlog::log_key))
        .route("/tlog/tile/{*path}", get(tlog::tile))
        .route("/v1/export", get(export::export))
        .route("/v1/witnesses", get(tlog::witnesses))
        .route("/console", get(console::page))
        .route("/console/", get(console::page))
        .route("/console/{file}", get(console::file))
        .route("/v1/console/agents", get(console::agents))
        .route("/v1/console/agents/{id}", get(console::agent))
        .route("/v1/console/health", get(console::health))
        .route("/v1/console/entries/{index}", get(console::entry))
        .route("/v1/console/events", get(console::events))
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi_json))
        .route("/.well-known/ssf-configuration", get(ssf::configuration))
        .route("/ssf/jwks.json", get(ssf::jwks))
        .route(
            "/ssf/stream",
            post(ssf::create)
                .get(ssf::read)
                .patch(ssf::update)
                .put(ssf::replace)
                .delete(ssf::delete)
                .layer(limit(ssf::MANAGEMENT_BODY_BYTES)),
        )
        .route("/ssf/status", get(ssf::status).post(ssf::update_status).layer(limit(ssf::MANAGEMENT_BODY_BYTES)))
        .route("/ssf/subjects/add", post(ssf::add_subject).layer(limit(ssf::MANAGEMENT_BODY_BYTES)))
        .route("/ssf/subjects/remove", post(ssf::remove_subject).layer(limit(ssf::MANAGEMENT_BODY_BYTES)))
        .route("/ssf/verify", post(ssf::verify).layer(limit(ssf::MANAGEMENT_BODY_BYTES)))
        .route("/ssf/poll/{stream_id}", post(ssf::poll).layer(limit(ssf::POLL_BODY_BYTES)))
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such route") })
        .method_not_allowed_fallback(|| async { ApiError::new(ErrorCode::MethodNotAllowed, "method not allowed on this route") })
        .layer(Extension(BodyTimeout(limits.body_timeout)))
        // No answer of this origin is ever sniffed into something else
        // (the console lives here).
        .layer(middleware::map_response(|mut resp: axum::response::Response| async move {
            resp.headers_mut().entry(axum::http::header::X_CONTENT_TYPE_OPTIONS).or_insert(axum::http::HeaderValue::from_static("nosniff"));
            resp
        }))
        .layer(middleware::from_fn(crate::error::log_errors))
        .layer(middleware::from_fn_with_state(Arc::clone(&state.metrics), crate::metrics::count_requests))
        .with_state(state)
}
