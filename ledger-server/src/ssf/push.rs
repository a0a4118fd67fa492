//! Push delivery (RFC 8935): one task per stream POSTs its SETs, one at a
//! time and in order, as `application/secevent+jwt` to the receiver's
//! `endpoint_url`, with its `authorization_header`.
//!
//! Outcomes: any `2xx` (RFC 8935 asks for `202`) is delivered; a `400`
//! is the receiver refusing that SET (its `{"err","description"}` is kept
//! as the stream's `last_error`) and the SET is not sent again, since
//! sending the same bytes again would be refused again and would stop
//! the stream for good; anything else (a connection failure, a timeout,
//! `401`, `404`, `429`, `5xx`, a redirect) is retried with exponential
//! backoff from 250 ms up to `--ssf-push-max-backoff-secs`, without end,
//! so a receiver that is down gets everything once it is back. A change to
//! the stream (its endpoint fixed, a verification request, a status
//! change) ends a backoff at once.
//!
//! The cursor is stored after each batch of up to [`BATCH`] events, when
//! the task waits for new events, and when it stops; so a restart may send
//! the SETs of at most one batch again, with the same `jti`s.
//! Verification and stream-updated SETs go first, whatever the status
//! (SSF §8.1.5: a stream-updated SET precedes the pause it announces);
//! log events only while the stream is enabled.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ledger_core::store::StorageError;
use ledger_core::views::events::EventRef;
use ledger_core::EntryKind;
use serde_json::Value;
use tokio::sync::watch;
use verifier::entry::Leaf;

use super::set::{self, EntryEvent};
use super::stream::{Delivery, DeliveryError, Status, Stream};
use super::{lock, now_secs, Inner, ManagementSet, StreamState};
use crate::error::ApiError;

/// Events read from the event index at a time, and most SETs sent between
/// two cursor writes.
pub(super) const BATCH: usize = 64;

/// The shortest wait before a retry.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// Most bytes of a receiver's error body read.
const MAX_ERROR_BODY: u64 = 4096;

/// What one push came to.
#[derive(Debug)]
enum Outcome {
    Delivered,
    /// The receiver refused the SET (400): not sent again.
    Refused {
        err: String,
        description: Option<String>,
    },
    /// Try again later.
    Failed {
        err: String,
        description: Option<String>,
    },
}

/// Why a wait ended.
#[derive(Debug, PartialEq, Eq)]
enum Woken {
    Timeout,
    /// The stream changed, the log grew, or the transmitter stops.
    Changed,
}

/// The kinds whose entries make SETs.
pub(super) fn is_event_kind(kind: EntryKind) -> bool {
    matches!(kind, EntryKind::Revocation | EntryKind::Reinstatement | EntryKind::Risk)
}

/// Reads the SETs each of `refs` makes that `doc` delivers, in one trip
/// to the blocking pool: `(index, its SETs)`, in order, an entry of no
/// delivered event with none.
pub(super) async fn events_of(inner: &Inner, refs: Vec<EventRef>, doc: &Stream) -> Result<Vec<(u64, Vec<EntryEvent>)>, ApiError> {
    let doc = doc.clone();
    inner
        .blocking(move |log| {
            refs.into_iter()
                .map(|r| {
                    if !is_event_kind(r.kind) {
                        return Ok((r.index, Vec::new()));
                    }
                    let leaf = log.entry(r.index)?;
                    let (leaf, _) = Leaf::decode(&leaf)
                        .map_err(|e| ledger_core::Error::Storage(StorageError::Corrupt(format!("entry {}: {e}", r.index))))?;
                    let events = set::events_of(r.index, &leaf, &log.config().origin)
                        .into_iter()
                        .filter(|e| doc.delivers(e.event_type, &e.agent))
                        .collect();
                    Ok((r.index, events))
                })
                .collect()
        })
        .await
}

/// The next events after `cursor` below the tree size, at most [`BATCH`].
pub(super) async fn next_refs(inner: &Inner, cursor: u64) -> Result<Vec<EventRef>, ApiError> {
    let size = inner.log.head().size;
    let after = cursor.checked_sub(1);
    Ok(inner.blocking(move |log| log.events(after, BATCH)).await?.into_iter().filter(|r| r.index < size).collect())
}

/// The delivery task of one stream: runs until the stream is deleted or
/// the transmitter stops. Streams delivered by poll idle here.
pub(super) async fn run(inner: Arc<Inner>, stream: Arc<StreamState>) {
    let mut version = stream.version.subscribe();
    let mut head = inner.log.watch_head();
    let mut stop = inner.stop.subscribe();
    // Where delivery stands: every SET of entries below `cursor` is
    // delivered, and of entry `cursor`, those of ordinal below `next`.
    let mut cursor = *stream.cursor.lock().await;
    let mut next: u8 = 0;
    let mut failures: u32 = 0;
    'run: loop {
        if *stop.borrow_and_update() || stream.deleted.load(Ordering::SeqCst) {
            break;
        }
        version.borrow_and_update();
        head.borrow_and_update();
        let doc = stream.snapshot();
        let Delivery::Push { endpoint_url, authorization_header } = &doc.delivery else {
            wait(&mut version, None, &mut stop, None).await;
            continue;
        };
        let target = Target { url: endpoint_url.clone(), authorization: authorization_header.clone() };

        let management = lock(&stream.management).front().cloned();
        if let Some(m) = management {
            let claims = management_claims(&inner, &doc, &m);
            match push(&inner, &target, claims).await {
                Outcome::Failed { err, description } => {
                    inner.record_error(&stream, error(&m.jti, err, description, false)).await;
                    failures += 1;
                    wait(&mut version, None, &mut stop, Some(backoff(&inner, failures))).await;
                }
                outcome => {
                    if let Outcome::Refused { err, description } = outcome {
                        inner.record_error(&stream, error(&m.jti, err, description, true)).await;
                    }
                    failures = 0;
                    lock(&stream.management).retain(|q| q.jti != m.jti);
                }
            }
            continue;
        }
        if doc.status != Status::Enabled {
            store_cursor(&inner, &stream, cursor).await;
            wait(&mut version, None, &mut stop, None).await;
            continue;
        }
        // A status change may have moved the durable cursor past us.
        let durable = *stream.cursor.lock().await;
        if durable > cursor {
            (cursor, next) = (durable, 0);
        }
        let refs = match next_refs(&inner, cursor).await {
            Ok(refs) => refs,
            Err(e) => {
                tracing::error!(stream = %stream.id, error = %e.message(), "reading the event index failed");
                wait(&mut version, None, &mut stop, Some(backoff(&inner, 8))).await;
                continue;
            }
        };
        if refs.is_empty() {
            store_cursor(&inner, &stream, cursor).await;
            wait(&mut version, Some(&mut head), &mut stop, None).await;
            continue;
        }
        let batch = match events_of(&inner, refs, &doc).await {
            Ok(batch) => batch,
            Err(e) => {
                tracing::error!(stream = %stream.id, error = %e.message(), "reading the entries of events failed");
                wait(&mut version, None, &mut stop, Some(backoff(&inner, 8))).await;
                continue;
            }
        };
        for (index, events) in batch {
            for event in events {
                if index == cursor && event.ordinal < next {
                    continue;
                }
                let jti = event.jti(&stream.id);
                loop {
                    let claims = set::entry_claims(&event, &stream.id, &inner.config.issuer, &doc.aud, now_secs());
                    match push(&inner, &target, claims).await {
                        Outcome::Delivered => break,
                        Outcome::Refused { err, description } => {
                            inner.record_error(&stream, error(&jti, err, description, true)).await;
                            break;
                        }
                        Outcome::Failed { err, description } => {
                            inner.record_error(&stream, error(&jti, err, description, false)).await;
                            failures += 1;
                            if wait(&mut version, None, &mut stop, Some(backoff(&inner, failures))).await == Woken::Changed {
                                // Start over with the stream as it is
                                // now; what was sent stays sent.
                                store_cursor(&inner, &stream, cursor).await;
                                continue 'run;
                            }
                        }
                    }
                }
                failures = 0;
                (cursor, next) = (index, event.ordinal.saturating_add(1));
            }
            (cursor, next) = (index + 1, 0);
        }
        store_cursor(&inner, &stream, cursor).await;
    }
    store_cursor(&inner, &stream, cursor).await;
}

fn management_claims(inner: &Inner, doc: &Stream, m: &ManagementSet) -> Value {
    set::management_claims(&m.jti, m.event_type, &m.event, &doc.stream_id, &inner.config.issuer, &doc.aud, now_secs())
}

fn error(jti: &str, err: String, description: Option<String>, dropped: bool) -> DeliveryError {
    DeliveryError { jti: jti.to_owned(), err, description, at: now_secs(), dropped }
}

/// The wait before try `failures + 1`: 250 ms doubled per failure, at most
/// the configured maximum.
fn backoff(inner: &Inner, failures: u32) -> Duration {
    let max = inner.config.push_max_backoff.max(FIRST_BACKOFF);
    FIRST_BACKOFF.saturating_mul(1u32 << failures.saturating_sub(1).min(16)).min(max)
}

async fn store_cursor(inner: &Inner, stream: &StreamState, cursor: u64) {
    if let Err(e) = inner.advance(stream, cursor).await {
        tracing::error!(stream = %stream.id, cursor, error = %e.message(), "storing the SSF cursor failed");
    }
}

/// Waits for a change of the stream, of the log's head (when `head` is
/// given), for the transmitter to stop, or for `timeout`.
async fn wait(
    version: &mut watch::Receiver<u64>,
    head: Option<&mut watch::Receiver<u64>>,
    stop: &mut watch::Receiver<bool>,
    timeout: Option<Duration>,
) -> Woken {
    let head_changed = async {
        match head {
            Some(h) => {
                if h.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending().await,
        }
    };
    let timer = async {
        match timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = version.changed() => Woken::Changed,
        _ = stop.changed() => Woken::Changed,
        () = head_changed => Woken::Changed,
        () = timer => Woken::Timeout,
    }
}

/// Where and how to push.
#[derive(Clone, Debug)]
struct Target {
    url: String,
    authorization: Option<String>,
}

/// Signs `claims` and POSTs the SET, on the blocking pool (an RSA
/// signature takes about a millisecond).
async fn push(inner: &Arc<Inner>, target: &Target, claims: Value) -> Outcome {
    let (inner, target) = (Arc::clone(inner), target.clone());
    tokio::task::spawn_blocking(move || match inner.signer.sign(&claims) {
        Ok(set) => post(&inner.http, &target, &set),
        Err(e) => Outcome::Failed { err: "signing_failed".into(), description: Some(e.to_string()) },
    })
    .await
    .unwrap_or_else(|e| Outcome::Failed { err: "internal".into(), description: Some(e.to_string()) })
}

fn post(http: &ureq::Agent, target: &Target, set: &str) -> Outcome {
    let mut request = http.post(&target.url).header("content-type", "application/secevent+jwt").header("accept", "application/json");
    if let Some(authorization) = &target.authorization {
        request = request.header("authorization", authorization);
    }
    let mut response = match request.send(set) {
        Ok(response) => response,
        // Only the kind of failure is kept (it is shown to the receiver):
        // the transport's own text would tell a receiver that points its
        // endpoint at internal addresses which of them answer.
        Err(e) => {
            tracing::debug!(url = %target.url, error = %e, "SET push failed");
            return Outcome::Failed { err: "connection_failed".into(), description: None };
        }
    };
    let status = response.status().as_u16();
    match status {
        200..=299 => Outcome::Delivered,
        400 => {
            // RFC 8935 §2.3: {"err": "<code>", "description": "<text>"}.
            let body = response.body_mut().with_config().limit(MAX_ERROR_BODY).read_to_string().unwrap_or_default();
            let parsed: Value = serde_json::from_str(&body).unwrap_or_default();
            let text = |member: &str| parsed.get(member).and_then(Value::as_str).map(|s| s.chars().take(512).collect::<String>());
            Outcome::Refused { err: text("err").unwrap_or_else(|| "http_400".into()), description: text("description") }
        }
        _ => Outcome::Failed { err: format!("http_{status}"), description: None },
    }
}
