//! The revocation bus over HTTP: `GET /v1/events/stream` (Server-Sent
//! Events) and `GET /v1/events/ws` (WebSocket), both public reads, like
//! the entries they come from. The bus itself is [`crate::bus`].
//!
//! Both take the same query: `types=` (comma-separated
//! [`EventType`] names), `agent=` (one SPIFFE agent id), `trust_domain=`,
//! and where to start: `Last-Event-ID: N` or `?after=N` resume right after
//! index `N` (the header wins, as an `EventSource` reconnecting sends it
//! with the URL it first used), `?after=-1` replays from the first entry,
//! and without either the stream starts with the next event appended. The
//! response header `ledger-events-after` says where it started.
//!
//! SSE frames are encoded once per event by the bus and shared by every
//! subscriber (`id:` the index, `event:` the type, `data:` the
//! [`verifier::wire::Event`] JSON), which is why the body is a plain byte
//! stream rather than axum's `Sse`, which would encode each event again for
//! each subscriber. Every 15 s without an event a keep-alive comment goes
//! out, with an `id:` line naming the index the stream has reached, so a
//! filtered subscriber does not rescan what it has already passed when it
//! resumes. Over WebSocket each event is one text message of the same
//! JSON, and the server pings at the same interval.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde::Deserialize;
use tokio::time::{timeout, Instant};
use utoipa::IntoParams;
use verifier::agent_id::check_trust_domain;
use verifier::wire::{ErrorCode, ErrorResponse, EventType, EVENTS_AFTER_HEADER};
use verifier::AgentId;

use super::AppState;
use crate::bus::{EventFilter, Start, Subscription};
use crate::error::ApiError;
use crate::extract::Query;

/// Largest message a WebSocket subscriber may send (it has nothing to
/// say; pongs and a close frame are small).
const MAX_CLIENT_MESSAGE: usize = 4096;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct EventsQuery {
    /// Comma-separated event types: `revocation`, `reinstatement`,
    /// `risk-level-change`, `signal` (default: all).
    types: Option<String>,
    /// Only events about this agent (a SPIFFE agent id).
    agent: Option<String>,
    /// Only events about agents of this trust domain.
    trust_domain: Option<String>,
    /// Resume right after this index (`-1`: from the first entry; default:
    /// the next event appended). A `Last-Event-ID` header takes precedence.
    after: Option<String>,
}

/// The filter and start of a subscription request; 400 `invalid_query`
/// (`invalid_agent_id` for `agent=`) for anything malformed.
fn subscription_request(query: &EventsQuery, headers: &HeaderMap) -> Result<(EventFilter, Start), ApiError> {
    let invalid = |message: String| ApiError::new(ErrorCode::InvalidQuery, message);
    let types = match &query.types {
        None => None,
        Some(list) => Some(
            list.split(',')
                .map(|name| {
                    EventType::parse(name).ok_or_else(|| {
                        let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
                        invalid(format!("unknown event type {name:?} in types=; the types are {}", known.join(", ")))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let agent = match &query.agent {
        None => None,
        Some(id) => Some(
            AgentId::parse(id)
                .map_err(|reason| ApiError::new(ErrorCode::InvalidAgentId, format!("agent={id:?} is not an agent id: {reason}")))?,
        ),
    };
    if let Some(domain) = &query.trust_domain {
        check_trust_domain(domain).map_err(|reason| invalid(format!("trust_domain={domain:?}: {reason}")))?;
    }
    let last_event_id = match headers.get("last-event-id") {
        Some(value) => {
            let text = value.to_str().map_err(|_| invalid("Last-Event-ID is not ASCII".into()))?;
            // An empty id is the EventSource way of saying "none".
            (!text.is_empty()).then(|| parse_index(text).ok_or_else(|| invalid(format!("Last-Event-ID {text:?} is not an event index"))))
        }
        None => None,
    };
    let start = match (last_event_id.transpose()?, query.after.as_deref()) {
        (Some(index), _) => Start::After(index),
        (None, None) => Start::Head,
        (None, Some("-1")) => Start::First,
        (None, Some(text)) => {
            Start::After(parse_index(text).ok_or_else(|| invalid(format!("after={text:?} is neither an entry index nor -1")))?)
        }
    };
    let filter = EventFilter { types, agent, trust_domain: query.trust_domain.clone() };
    Ok((filter, start))
}

/// A decimal index without sign or leading spaces.
fn parse_index(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The `ledger-events-after` header of a subscription.
fn events_after(subscription: &Subscription) -> (HeaderName, HeaderValue) {
    let after = subscription.resume_after().map_or_else(|| "-1".to_owned(), |i| i.to_string());
    (HeaderName::from_static(EVENTS_AFTER_HEADER), HeaderValue::from_str(&after).unwrap_or(HeaderValue::from_static("-1")))
}

/// Subscribe to events as Server-Sent Events.
#[utoipa::path(get, path = "/v1/events/stream", tag = "events",
    params(EventsQuery, ("Last-Event-ID" = Option<u64>, Header, description = "Resume right after this index (takes precedence over `after`)")),
    responses(
        (status = 200, description = "`text/event-stream`: per event `id: <index>`, `event: <type>`, `data: <Event JSON>`; keep-alive comments every 15 s. Header `ledger-events-after`: where the stream starts (`-1`: the first entry)", content_type = "text/event-stream", body = String),
        (status = 400, description = "Malformed query or Last-Event-ID (`invalid_query`, `invalid_agent_id`)", body = ErrorResponse),
        (status = 404, description = "Resume after an index the log does not have (`index_beyond_tree`)", body = ErrorResponse),
        (status = 503, description = "Too many subscribers (`too_many_subscribers`) or shutting down; see Retry-After", body = ErrorResponse),
    ))]
pub(super) async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<EventsQuery>,
) -> Result<Response, ApiError> {
    let (filter, start) = subscription_request(&query, &headers)?;
    let subscription = state.events.subscribe(filter, start)?;
    let after = events_after(&subscription);
    let body = Body::from_stream(sse_frames(subscription, state.events.config().keepalive));
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        // Proxies (nginx) must pass each frame on at once.
        (HeaderName::from_static("x-accel-buffering"), HeaderValue::from_static("no")),
        after,
    ];
    Ok((headers, body).into_response())
}

/// A comment, then the index the stream starts after (if any).
fn position_frame(comment: &str, after: Option<u64>) -> Bytes {
    match after {
        Some(index) => Bytes::from(format!(": {comment}\nid: {index}\n\n")),
        None => Bytes::from(format!(": {comment}\n\n")),
    }
}

/// The SSE body: a first frame with the starting position, then events,
/// and keep-alive frames when none comes for `keepalive`.
fn sse_frames(subscription: Subscription, keepalive: Duration) -> impl Stream<Item = Result<Bytes, Infallible>> + Send {
    let first = position_frame("subscribed", subscription.resume_after());
    futures_util::stream::unfold((subscription, Some(first)), move |(mut subscription, first)| async move {
        if let Some(frame) = first {
            return Some((Ok(frame), (subscription, None)));
        }
        let frame = match timeout(keepalive, subscription.next()).await {
            Ok(Some(event)) => event.sse_frame(),
            Ok(None) => return None,
            Err(_) => {
                subscription.advance();
                position_frame("keep-alive", subscription.resume_after())
            }
        };
        Some((Ok(frame), (subscription, None)))
    })
}

/// Subscribe to events over a WebSocket.
#[utoipa::path(get, path = "/v1/events/ws", tag = "events",
    params(EventsQuery, ("Last-Event-ID" = Option<u64>, Header, description = "Resume right after this index (takes precedence over `after`)")),
    responses(
        (status = 101, description = "WebSocket: one text message per event, the `Event` JSON; pings every 15 s. Header `ledger-events-after` as on the SSE route"),
        (status = 400, description = "Malformed query or Last-Event-ID (`invalid_query`, `invalid_agent_id`)", body = ErrorResponse),
        (status = 404, description = "Resume after an index the log does not have (`index_beyond_tree`)", body = ErrorResponse),
        (status = 426, description = "Not a WebSocket upgrade request (`upgrade_required`)", body = ErrorResponse),
        (status = 503, description = "Too many subscribers (`too_many_subscribers`) or shutting down; see Retry-After", body = ErrorResponse),
    ))]
pub(super) async fn websocket(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<EventsQuery>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let (filter, start) = subscription_request(&query, &headers)?;
    let upgrade = upgrade.map_err(|e| {
        ApiError::new(ErrorCode::UpgradeRequired, format!("GET /v1/events/ws needs a WebSocket upgrade request: {}", e.body_text()))
    })?;
    let subscription = state.events.subscribe(filter, start)?;
    let (name, value) = events_after(&subscription);
    let keepalive = state.events.config().keepalive;
    let mut response = upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| session(socket, subscription, keepalive));
    response.headers_mut().insert(name, value);
    Ok(response)
}

/// One WebSocket subscriber: events as text messages, as fast as the
/// socket takes them; a ping every `keepalive`. The session ends when the
/// bus closes (close frame 1001), when the client closes or goes silent
/// (no pong) for four intervals, or when a send stalls that long.
async fn session(mut socket: WebSocket, mut subscription: Subscription, keepalive: Duration) {
    let stall = keepalive * 4;
    let mut ping = tokio::time::interval_at(Instant::now() + keepalive, keepalive);
    let mut heard = Instant::now();
    loop {
        tokio::select! {
            event = subscription.next() => {
                let Some(event) = event else {
                    let close = CloseFrame { code: close_code::AWAY, reason: "stream ended; resume after the last event received".into() };
                    let _ = timeout(keepalive, socket.send(Message::Close(Some(close)))).await;
                    return;
                };
                if !matches!(timeout(stall, socket.send(Message::Text(event.json()))).await, Ok(Ok(()))) {
                    return;
                }
            }
            received = socket.recv() => match received {
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => heard = Instant::now(),
            },
            _ = ping.tick() => {
                if heard.elapsed() > stall {
                    return;
                }
                if !matches!(timeout(stall, socket.send(Message::Ping(Bytes::new()))).await, Ok(Ok(()))) {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: &str, last_event_id: Option<&str>) -> Result<(EventFilter, Start), ApiError> {
        let uri: axum::http::Uri = format!("/v1/events/stream?{query}").parse().map_err(|_| ApiError::internal("uri"))?;
        let query =
            axum::extract::Query::<EventsQuery>::try_from_uri(&uri).map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e.body_text()))?.0;
        let mut headers = HeaderMap::new();
        if let Some(id) = last_event_id {
            headers.insert("last-event-id", HeaderValue::from_str(id).map_err(|_| ApiError::internal("header"))?);
        }
        subscription_request(&query, &headers)
    }

    fn code(r: Result<(EventFilter, Start), ApiError>) -> &'static str {
        r.map_or_else(|e| e.code().as_str(), |_| "ok")
    }

    #[test]
    fn starts_and_filters_are_parsed_strictly() {
        let (filter, start) = request("types=revocation,risk-level-change&trust_domain=a.example", None).unwrap();
        assert_eq!(filter.types, Some(vec![EventType::Revocation, EventType::RiskLevelChange]));
        assert_eq!((filter.trust_domain.as_deref(), start), (Some("a.example"), Start::Head));
        assert_eq!(request("after=-1", None).unwrap().1, Start::First);
        assert_eq!(request("after=7", None).unwrap().1, Start::After(7));
        // The header wins: an EventSource reconnects with its first URL.
        assert_eq!(request("after=7", Some("9")).unwrap().1, Start::After(9));
        assert_eq!(request("", Some("")).unwrap().1, Start::Head);
        for bad in
            ["types=revocation,", "types=", "types=Revocation", "after=-2", "after=+3", "after=x", "trust_domain=A.example", "nope=1"]
        {
            assert_eq!(code(request(bad, None)), "invalid_query", "{bad}");
        }
        assert_eq!(code(request("agent=spiffe://a.example/workload/x", None)), "invalid_agent_id");
        assert_eq!(code(request("", Some("-1"))), "invalid_query");
        assert_eq!(code(request("", Some("12a"))), "invalid_query");
    }
}
