//! The security console: its page at `/console` (the files embedded in
//! the binary from `ledger-server/console/`), and the admin-only reads it
//! is built on (`/v1/console/*`), docs/CONSOLE.md.
//!
//! The page holds no data and needs no login to load; everything it shows
//! comes from admin routes called with the token the operator types in,
//! which the page keeps in memory only. There is no cookie, so no request
//! can be forged from another site. Every file is served under a strict
//! Content-Security-Policy ([`CSP`]): scripts and styles only from the
//! console's own files, no inline script, no other origin.
//!
//! The reads gather what the public API spreads over several calls or does
//! not say (an agent's status, the evidence of its last attestation, its
//! score history, commit latency percentiles), and the live events are the
//! revocation bus's SSE stream behind the admin token.

use std::path::PathBuf;
use std::sync::OnceLock;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ledger_core::views::trust::{ScorePoint, HISTORY_RING};
use ledger_core::Log;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::IntoParams;
use utoipa::ToSchema;
use verifier::entry::{Entry, Leaf, RevocationReason};
use verifier::fold::registry::AgentState;
use verifier::fold::trust_log::{self, TrustRecord};
use verifier::hash::Hash;
use verifier::wire::{ErrorCode, ErrorResponse, TrustScore, WitnessListing};
use verifier::AgentId;

use super::events::EventsQuery;
use super::AppState;
use crate::auth::AdminAuth;
use crate::error::ApiError;
use crate::extract::{EntryIndex, Query};
use crate::metrics::{LatencySummary, SizeSample};

/// The Content-Security-Policy of every console file: nothing but the
/// console's own script, style and API calls.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
                       base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The console's files: name under `/console/` (`""`: the page), file
/// name in `ledger-server/console/`, content type, bytes. The script is
/// ES modules: `app.js` imports the others.
const ASSETS: [(&str, &str, &str, &[u8]); 9] = [
    ("", "index.html", HTML, include_bytes!("../../console/index.html")),
    ("app.css", "app.css", "text/css; charset=utf-8", include_bytes!("../../console/app.css")),
    ("app.js", "app.js", JS, include_bytes!("../../console/app.js")),
    ("api.js", "api.js", JS, include_bytes!("../../console/api.js")),
    ("dom.js", "dom.js", JS, include_bytes!("../../console/dom.js")),
    ("verify.js", "verify.js", JS, include_bytes!("../../console/verify.js")),
    ("feed.js", "feed.js", JS, include_bytes!("../../console/feed.js")),
    ("agents.js", "agents.js", JS, include_bytes!("../../console/agents.js")),
    ("views.js", "views.js", JS, include_bytes!("../../console/views.js")),
];
const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// Where the console's files are read from instead of the binary
/// (`--console-dir`); set once, at start.
static CONSOLE_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Serves the console's files from `dir`, read at each request, instead of
/// the copies built into the binary (`--console-dir`, for working on the
/// page). Only the first call counts.
pub fn serve_console_from(dir: PathBuf) {
    let _ = CONSOLE_DIR.set(dir);
}

/// The console page.
pub(super) async fn page() -> Response {
    asset("").await
}

/// One of the console's files ([`ASSETS`]); 404 for any other.
pub(super) async fn file(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    asset(&name).await
}

async fn asset(name: &str) -> Response {
    let Some(&(_, file, content_type, embedded)) = ASSETS.iter().find(|(n, ..)| *n == name) else {
        return ApiError::new(ErrorCode::NotFound, "no such console file").into_response();
    };
    let body = match CONSOLE_DIR.get() {
        None => Bytes::from_static(embedded),
        Some(dir) => {
            let path = dir.join(file);
            match tokio::task::spawn_blocking(move || std::fs::read(path)).await {
                Ok(Ok(bytes)) => Bytes::from(bytes),
                Ok(Err(e)) => return ApiError::internal(format_args!("--console-dir: {file}: {e}")).into_response(),
                Err(e) => return ApiError::internal(format_args!("--console-dir: {file}: {e}")).into_response(),
            }
        }
    };
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        // Not kept, so no copy of a signed-in page outlives the tab (the
        // back/forward cache included).
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin")),
    ];
    (StatusCode::OK, headers, body).into_response()
}

/// An agent's status in the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AgentStatus {
    /// Neither revoked nor retired.
    Active,
    /// Revoked by an admin's quarantine.
    Quarantined,
    /// Revoked by its score.
    Revoked,
    /// Retired (whether or not it was revoked before).
    Retired,
}

/// An index and the time of its entry.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
pub struct IndexTime {
    /// The entry's index.
    pub index: u64,
    /// Its integrated time, ms since the Unix epoch.
    pub time: u64,
}

/// An agent's last successful attestation.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct LastAttestation {
    /// The attestation entry's index.
    pub index: u64,
    /// Its integrated time, ms.
    pub time: u64,
    /// Its evidence: `tpm` or `software` (`none`: an attestation that
    /// presented neither, which cannot have held).
    pub evidence: String,
}

/// One agent in [`ConsoleAgents`].
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ConsoleAgent {
    /// The agent's id.
    pub agent: String,
    /// Its score now.
    pub score: u8,
    /// Its logged risk level.
    pub level: String,
    /// Its status.
    pub status: AgentStatus,
    /// Its passport's owner.
    pub owner: String,
    /// Its passport's purpose.
    pub purpose: String,
    /// Its passport.
    pub registered: IndexTime,
    /// Its last successful attestation.
    pub last_attestation: Option<LastAttestation>,
    /// The revocation in force.
    pub revoked_at: Option<u64>,
}

/// `GET /v1/console/agents`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ConsoleAgents {
    /// The last entry the scores reflect.
    pub as_of_index: u64,
    /// The instant they are read at, ms.
    pub as_of_time: u64,
    /// Agents matching the query (all without one); at most
    /// `trust::MAX_LIST` are listed, lowest scores first.
    pub total: u64,
    /// The agents.
    pub agents: Vec<ConsoleAgent>,
}

/// One point of [`ConsoleAgentDetail::history`].
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct HistoryPoint {
    /// The entry's index.
    pub index: u64,
    /// Its integrated time, ms.
    pub time: u64,
    /// Its kind.
    pub kind: String,
    /// The agent's score right after it.
    pub score: u8,
    /// Its logged risk level right after it.
    pub level: String,
}

impl From<ScorePoint> for HistoryPoint {
    fn from(p: ScorePoint) -> Self {
        Self { index: p.index, time: p.time_ms, kind: p.kind.as_str().into(), score: p.score, level: p.level.as_str().into() }
    }
}

/// An agent's passport entry.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PassportEntry {
    /// Its index.
    pub index: u64,
    /// Its integrated time, ms.
    pub time: u64,
    /// The entry, decoded.
    #[schema(value_type = Object)]
    pub entry: Value,
}

/// `GET /v1/console/agents/{id}`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ConsoleAgentDetail {
    /// The agent's id.
    pub agent: String,
    /// Its status.
    pub status: AgentStatus,
    /// Its passport's owner.
    pub owner: String,
    /// Its passport's purpose.
    pub purpose: String,
    /// Its score now, as `GET /v1/agents/{id}/trust` reports it.
    pub trust: TrustScore,
    /// Its passport.
    pub passport: PassportEntry,
    /// The entry that set its key in force (the passport or its last
    /// rotation).
    pub key_index: u64,
    /// Its retirement entry.
    pub retired: Option<u64>,
    /// Its last successful attestation.
    pub last_attestation: Option<LastAttestation>,
    /// Its score after each entry that moved it or changed its key or
    /// lifecycle, oldest first (the latest [`HISTORY_RING`]).
    pub history: Vec<HistoryPoint>,
}

/// `GET /v1/console/health`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ConsoleHealth {
    /// The server's clock, ms.
    pub time: u64,
    /// Entries in the log.
    pub tree_size: u64,
    /// Entries made durable since the server started.
    pub appended_entries: u64,
    /// The log's size over time (one sample a second at most, the latest
    /// 600), after `after=` when given: tree size and append rate charts.
    pub series: Vec<SizeSample>,
    /// Latency of the latest commits.
    pub commit_latency_ms: Option<LatencySummary>,
    /// Entries waiting for or in the prover pool.
    pub prover_queue: u64,
    /// Bytes of entries waiting for the sequencer.
    pub sequencer_queue_bytes: u64,
    /// Open subscriptions to the revocation bus.
    pub event_subscribers: u64,
    /// Registered agents.
    pub agents: u64,
    /// The latest checkpoint (signed note, with the witnesses' cosignature
    /// lines once they have cosigned it).
    pub checkpoint: String,
    /// The log's verifier key (`name+hex8+base64(0x01 || key)`).
    pub log_key: String,
    /// The witnesses.
    pub witnesses: WitnessListing,
}

/// `GET /v1/console/entries/{index}`: an entry with what proves it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ConsoleEntry {
    /// Its index.
    pub index: u64,
    /// The exact leaf bytes, base64.
    pub leaf: String,
    /// The entry, decoded.
    #[schema(value_type = Object)]
    pub entry: Value,
    /// The size of [`Self::checkpoint`]'s tree.
    pub tree_size: u64,
    /// The latest checkpoint (signed note, cosignature lines included).
    pub checkpoint: String,
    /// The RFC 9162 inclusion proof of the entry in that tree, base64
    /// hashes, leaf sibling first.
    pub inclusion: Vec<String>,
}

/// Query of `GET /v1/console/agents`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct AgentsQuery {
    /// Only agents whose id, owner or purpose contains this text (any
    /// case; at most [`MAX_FILTER_CHARS`] characters).
    q: Option<String>,
    /// Only agents with this status.
    status: Option<AgentStatus>,
}

/// Longest `q=` of `GET /v1/console/agents`.
pub const MAX_FILTER_CHARS: usize = 256;

/// Every agent (lowest score first, at most `trust::MAX_LIST`) with its
/// status, passport and last attestation (admin).
#[utoipa::path(get, path = "/v1/console/agents", tag = "console", params(AgentsQuery),
    responses(
        (status = 200, description = "Agents, lowest score first (those matching `q` and `status`; `total`: how many match)", body = ConsoleAgents),
        (status = 400, description = "Bad query (`invalid_query`)", body = ErrorResponse),
        (status = 401, description = "Missing or wrong admin token (`unauthorized`)", body = ErrorResponse),
        (status = 403, description = "Admin routes disabled (`admin_disabled`)", body = ErrorResponse),
    ),
    security(("admin" = [])))]
pub(super) async fn agents(
    State(state): State<AppState>,
    _: AdminAuth,
    Query(query): Query<AgentsQuery>,
) -> Result<Json<ConsoleAgents>, ApiError> {
    let needle = query.q.unwrap_or_default().to_lowercase();
    if needle.chars().count() > MAX_FILTER_CHARS {
        return Err(ApiError::new(ErrorCode::InvalidQuery, format!("q= is at most {MAX_FILTER_CHARS} characters")));
    }
    let wanted = query.status;
    let table = super::trust::score_table(&state).await?;
    let (as_of_index, as_of_time) = (table.applied.saturating_sub(1), table.time_ms);
    let (total, agents) = state
        .read(move |log| {
            let (mut total, mut agents) = (0u64, Vec::new());
            for row in &table.rows {
                // Unfiltered, a full listing only counts the rest.
                if needle.is_empty() && wanted.is_none() && agents.len() == super::trust::MAX_LIST {
                    total += 1;
                    continue;
                }
                let (Some(registered), Some(record)) = (log.agent(&row.agent), log.trust().get(&row.agent)) else { continue };
                let passport = &registered.passport;
                if !needle.is_empty()
                    && ![row.agent.as_str(), &passport.owner, &passport.purpose].iter().any(|t| t.to_lowercase().contains(&needle))
                {
                    continue;
                }
                // Without a status wanted, only the rows listed need theirs.
                if wanted.is_none() && agents.len() == super::trust::MAX_LIST {
                    total += 1;
                    continue;
                }
                let status = status(log, &registered, &record)?;
                if wanted.is_some_and(|w| w != status) {
                    continue;
                }
                total += 1;
                if agents.len() < super::trust::MAX_LIST {
                    agents.push(ConsoleAgent {
                        agent: row.agent.as_str().into(),
                        score: row.score,
                        level: row.level.as_str().into(),
                        status,
                        owner: passport.owner.clone(),
                        purpose: passport.purpose.clone(),
                        registered: index_time(record.trust.registered()),
                        last_attestation: last_attestation(log, &record)?,
                        revoked_at: record.trust.revoked().map(|(index, _)| index),
                    });
                }
            }
            Ok((total, agents))
        })
        .await?;
    Ok(Json(ConsoleAgents { as_of_index, as_of_time, total, agents }))
}

/// One agent: its score and what it is made of, passport, key, status and
/// score history (admin).
#[utoipa::path(get, path = "/v1/console/agents/{id}", tag = "console",
    params(("id" = String, Path, description = "SPIFFE id, percent-encoded")),
    responses(
        (status = 200, description = "The agent", body = ConsoleAgentDetail),
        (status = 401, description = "Missing or wrong admin token (`unauthorized`)", body = ErrorResponse),
        (status = 403, description = "Admin routes disabled (`admin_disabled`)", body = ErrorResponse),
        (status = 404, description = "No such agent (`unknown_agent`)", body = ErrorResponse),
    ),
    security(("admin" = [])))]
pub(super) async fn agent(
    State(state): State<AppState>,
    _: AdminAuth,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<ConsoleAgentDetail>, ApiError> {
    let agent = AgentId::parse(&id).map_err(|_| ApiError::no_such_agent(&id))?;
    let detail = state
        .read(move |log| {
            let (Some(registered), Some((record, policy, applied))) = (log.agent(&agent), log.trust().snapshot(&agent)) else {
                return Ok(None);
            };
            let trust = trust_log::report(&agent, &record, &policy, applied.saturating_sub(1), log.now_ms());
            let (leaf, entry) = decode(log, registered.passport_index)?;
            Ok(Some(ConsoleAgentDetail {
                agent: agent.as_str().into(),
                status: status(log, &registered, &record)?,
                owner: registered.passport.owner.clone(),
                purpose: registered.passport.purpose.clone(),
                trust,
                passport: PassportEntry { index: registered.passport_index, time: leaf.integrated_time, entry },
                key_index: registered.key_index,
                retired: registered.retired,
                last_attestation: last_attestation(log, &record)?,
                history: log.score_history(&agent, HISTORY_RING as usize)?.into_iter().map(HistoryPoint::from).collect(),
            }))
        })
        .await?;
    detail.map(Json).ok_or_else(|| ApiError::no_such_agent(&id))
}

/// Query of `GET /v1/console/health`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct HealthQuery {
    /// Only the size samples taken after this instant (ms since the Unix
    /// epoch): what a poller has not seen yet.
    after: Option<u64>,
}

/// The log's health: size over time, commits, queues, the latest
/// checkpoint and the witnesses (admin).
#[utoipa::path(get, path = "/v1/console/health", tag = "console", params(HealthQuery),
    responses(
        (status = 200, description = "The log's health", body = ConsoleHealth),
        (status = 401, description = "Missing or wrong admin token (`unauthorized`)", body = ErrorResponse),
        (status = 403, description = "Admin routes disabled (`admin_disabled`)", body = ErrorResponse),
    ),
    security(("admin" = [])))]
pub(super) async fn health(State(state): State<AppState>, _: AdminAuth, Query(query): Query<HealthQuery>) -> Json<ConsoleHealth> {
    let log = &state.log;
    let tree_size = log.head().size;
    // An idle log is sampled by its readers.
    state.metrics.sample(tree_size);
    Json(ConsoleHealth {
        time: log.now_ms(),
        tree_size,
        appended_entries: state.metrics.appended_entries.get(),
        series: state.metrics.samples_after(query.after.unwrap_or(0)),
        commit_latency_ms: state.metrics.recent_commit_latency(),
        prover_queue: log.prover_queue_depth() as u64,
        sequencer_queue_bytes: log.queued_bytes() as u64,
        event_subscribers: state.metrics.event_subscribers.get(),
        agents: log.agent_count() as u64,
        checkpoint: state.checkpoint_note(),
        log_key: log.verifier_key().to_string(),
        witnesses: super::tlog::witness_listing(&state),
    })
}

/// An entry, the latest checkpoint and the entry's inclusion proof in its
/// tree: what the page verifies by itself (admin).
#[utoipa::path(get, path = "/v1/console/entries/{index}", tag = "console",
    params(("index" = u64, Path, description = "Entry index")),
    responses(
        (status = 200, description = "The entry, checkpoint and inclusion proof", body = ConsoleEntry),
        (status = 401, description = "Missing or wrong admin token (`unauthorized`)", body = ErrorResponse),
        (status = 403, description = "Admin routes disabled (`admin_disabled`)", body = ErrorResponse),
        (status = 404, description = "Beyond the latest checkpoint (`index_beyond_tree`)", body = ErrorResponse),
    ),
    security(("admin" = [])))]
pub(super) async fn entry(
    State(state): State<AppState>,
    _: AdminAuth,
    EntryIndex(index): EntryIndex,
) -> Result<Json<ConsoleEntry>, ApiError> {
    use base64::Engine as _;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let checkpoint = state.checkpoint_note();
    let tree_size = ledger_core::export::checkpoint_of(&checkpoint)
        .map_err(|e| ApiError::internal(format_args!("the log's checkpoint does not parse: {e}")))?
        .size;
    if index >= tree_size {
        return Err(ApiError::new(ErrorCode::IndexBeyondTree, format!("entry {index} is not in the latest checkpoint (size {tree_size})")));
    }
    let (leaf, proof): (Vec<u8>, Vec<Hash>) =
        state.read(move |log| Ok((log.entry(index)?, log.inclusion_proof(index, tree_size)?))).await?;
    let (_, entry) = Leaf::decode(&leaf).map_err(|e| ApiError::internal(format_args!("stored leaf {index} does not decode: {e}")))?;
    Ok(Json(ConsoleEntry { index, leaf: b64(&leaf), entry, tree_size, checkpoint, inclusion: proof.iter().map(|h| b64(h)).collect() }))
}

/// The revocation bus as Server-Sent Events, as `GET /v1/events/stream`
/// (same query, `Last-Event-ID` and frames), for the admin only.
#[utoipa::path(get, path = "/v1/console/events", tag = "console",
    params(EventsQuery, ("Last-Event-ID" = Option<u64>, Header, description = "Resume right after this index (takes precedence over `after`)")),
    responses(
        (status = 200, description = "`text/event-stream`, as `GET /v1/events/stream`", content_type = "text/event-stream", body = String),
        (status = 401, description = "Missing or wrong admin token (`unauthorized`)", body = ErrorResponse),
        (status = 403, description = "Admin routes disabled (`admin_disabled`)", body = ErrorResponse),
        (status = 400, description = "Malformed query or Last-Event-ID (`invalid_query`, `invalid_agent_id`)", body = ErrorResponse),
    ),
    security(("admin" = [])))]
pub(super) async fn events(
    State(state): State<AppState>,
    _: AdminAuth,
    headers: HeaderMap,
    query: Query<EventsQuery>,
) -> Result<Response, ApiError> {
    super::events::stream(State(state), headers, query).await
}

fn index_time((index, time): (u64, u64)) -> IndexTime {
    IndexTime { index, time }
}

/// The stored entry at `index`, decoded.
fn decode(log: &Log, index: u64) -> Result<(Leaf, Value), ledger_core::Error> {
    Leaf::decode(&log.entry(index)?)
        .map_err(|e| ledger_core::Error::Storage(ledger_core::store::StorageError::Corrupt(format!("entry {index}: {e}"))))
}

/// An agent's status: retired, else quarantined or revoked (by the reason
/// of the revocation in force), else active.
fn status(log: &Log, registered: &AgentState, record: &TrustRecord) -> Result<AgentStatus, ledger_core::Error> {
    if registered.retired.is_some() {
        return Ok(AgentStatus::Retired);
    }
    let Some(index) = registered.revoked.or(record.trust.revoked().map(|(i, _)| i)) else { return Ok(AgentStatus::Active) };
    Ok(match decode(log, index)?.0.entry {
        Some(Entry::Revocation(r)) if r.reason == RevocationReason::Quarantine => AgentStatus::Quarantined,
        _ => AgentStatus::Revoked,
    })
}

/// An agent's last successful attestation and its evidence type.
fn last_attestation(log: &Log, record: &TrustRecord) -> Result<Option<LastAttestation>, ledger_core::Error> {
    let Some((index, time)) = record.trust.last_ok_attestation() else { return Ok(None) };
    let evidence = match decode(log, index)?.0.entry {
        Some(Entry::Attestation(att)) => att.evidence_type().unwrap_or("none").to_owned(),
        _ => "none".to_owned(),
    };
    Ok(Some(LastAttestation { index, time, evidence }))
}
