//! Operations: liveness, Prometheus metrics and the OpenAPI document
//! (generated from the handlers' `#[utoipa::path]` annotations).

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa::OpenApi;
use verifier::wire::{
    ActionEntryRequest, AppendedEntry, BatchAppendResponse, ConsistencyProofResponse, EntriesResponse, EntryRequest, EntryResponse,
    ErrorCode, ErrorDetail, ErrorResponse, EscalationDecided, EscalationListing, EscalationStatus, Event, EventType, HistoryEntry,
    InclusionProofResponse, IssuedToken, ListedAgent, PolicyChange, PolicyInForceResponse, RotationEntryRequest, SourceRecord,
    SourceRequest, SourcesResponse, TokenCheckRequest, TokenKey, TokenValid, TrustComponents, TrustListing, TrustScore, TrustStatement,
    WitnessListing, WitnessRow,
};

use super::{agents, attestations, console, disclosures, entries, events, export, proofs, signals, ssf, tlog, tokens, trust, AppState};

/// Liveness and the current tree size.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "`{\"status\":\"ok\",\"tree_size\":N}`")))]
pub(super) async fn healthz(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok", "tree_size": state.log.head().size }))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, description = "OpenMetrics text exposition", content_type = "application/openmetrics-text", body = String)))]
pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    state.metrics.queued_bytes.set(state.log.queued_bytes() as u64);
    state.metrics.tree_size.set(state.log.head().size);
    state.metrics.prover_queue.set(state.log.prover_queue_depth() as u64);
    state.metrics.agents.set(state.log.agent_count() as u64);
    if let Ok(table) = super::trust::score_table(&state).await {
        state.metrics.observe_trust(&table, state.log.trust().revocations());
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.encode()).into_response()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Agent Ledger",
        description = "Append-only, verifiable ledger for AI agents (RFC 9162 Merkle log, C2SP checkpoints and tiles)."
    ),
    paths(
        entries::append,
        entries::append_batch,
        entries::get,
        entries::list,
        proofs::inclusion,
        proofs::consistency,
        proofs::bundle,
        tlog::checkpoint,
        tlog::log_key,
        tlog::tile,
        export::export,
        tlog::witnesses,
        disclosures::disclose,
        entries::commit_hidden,
        disclosures::shred_entry,
        agents::register,
        agents::get,
        agents::retire,
        trust::get,
        trust::list,
        trust::quarantine,
        trust::reinstate,
        trust::get_policy,
        trust::put_policy,
        tokens::request,
        tokens::verify,
        tokens::key,
        tokens::list,
        tokens::get,
        tokens::approve,
        tokens::deny,
        tokens::statement,
        attestations::nonce,
        attestations::attest,
        signals::register,
        signals::list,
        signals::submit,
        disclosures::shred_agent,
        events::stream,
        events::websocket,
        console::agents,
        console::agent,
        console::health,
        console::entry,
        console::events,
        ssf::configuration,
        ssf::jwks,
        ssf::create,
        ssf::read,
        ssf::update,
        ssf::replace,
        ssf::delete,
        ssf::status,
        ssf::update_status,
        ssf::add_subject,
        ssf::remove_subject,
        ssf::verify,
        ssf::poll,
        healthz,
        metrics
    ),
    components(schemas(
        EntryRequest,
        ActionEntryRequest,
        RotationEntryRequest,
        AppendedEntry,
        BatchAppendResponse,
        EntryResponse,
        EntriesResponse,
        InclusionProofResponse,
        ConsistencyProofResponse,
        ErrorResponse,
        ErrorDetail,
        WitnessListing,
        WitnessRow,
        TrustScore,
        TrustComponents,
        TrustListing,
        ListedAgent,
        PolicyInForceResponse,
        PolicyChange,
        ErrorCode,
        SourceRequest,
        SourceRecord,
        SourcesResponse,
        Event,
        EventType,
        IssuedToken,
        EscalationStatus,
        HistoryEntry,
        EscalationListing,
        EscalationDecided,
        TokenKey,
        TokenCheckRequest,
        TokenValid,
        TrustStatement,
        disclosures::DisclosureBody,
        console::ConsoleAgents,
        console::ConsoleAgentDetail,
        console::ConsoleHealth,
        console::ConsoleEntry
    )),
    modifiers(&AdminSecurity)
)]
struct ApiDoc;

struct AdminSecurity;

impl utoipa::Modify for AdminSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("admin", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
        // SSF receivers' bearer tokens, with the CAEP interoperability
        // profile's scopes (`ssf.read`, `ssf.manage`, `ssf.manage.poll`).
        components.add_security_scheme("ssf", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
    }
}

/// The OpenAPI document of this API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Serves [`openapi`].
pub(super) async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi())
}
