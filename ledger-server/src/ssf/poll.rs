//! Poll delivery (RFC 8936): `POST /ssf/poll/{stream_id}` with
//! `{"maxEvents", "returnImmediately", "ack", "setErrs"}`, answered
//! `{"sets": {jti: SET}, "moreAvailable"}`.
//!
//! A poll first takes the acknowledgements: `ack`ed SETs and SETs listed
//! in `setErrs` (the last error listed is kept as the stream's
//! `last_error`) are done and never returned again. It then returns the
//! oldest SETs not yet acknowledged, in index order, verification and
//! stream-updated SETs first, up to `maxEvents` (default 100, at most
//! 1000; `0` only acknowledges); a SET returned but not acknowledged is
//! returned again by the next poll. The cursor moves past every entry
//! whose SETs are all acknowledged. Without `returnImmediately: true` an
//! empty answer waits for new events up to `--ssf-poll-wait-secs`. Polls
//! of one stream are answered one at a time.
//!
//! Acknowledgements beyond the cursor (out of order) are kept in memory;
//! after a restart their SETs may be returned once more, with the same
//! `jti`.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{json, Map, Value};
use tokio::time::Instant;
use verifier::wire::ErrorCode;

use super::push::{events_of, next_refs, BATCH};
use super::set::{self, JtiRef};
use super::stream::{Delivery, DeliveryError, Status};
use super::{lock, now_secs, Inner, StreamState};
use crate::error::ApiError;

/// `maxEvents` when the poll does not say.
const DEFAULT_MAX_EVENTS: usize = 100;
/// The most SETs one answer holds.
const MAX_EVENTS: usize = 1000;
/// The most `ack` and `setErrs` entries one poll may carry.
const MAX_ACKS: usize = 10_000;
/// The most acknowledgements beyond the cursor kept per stream.
const MAX_ACKED: usize = 10_000;

/// A stream's acknowledgements beyond its cursor: `(index, ordinal)`.
#[derive(Debug, Default)]
pub(super) struct PollState {
    acked: BTreeSet<(u64, u8)>,
}

/// A poll request.
#[derive(Debug)]
struct PollRequest {
    max_events: usize,
    return_immediately: bool,
    ack: Vec<String>,
    set_errs: Vec<(String, String, Option<String>)>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidPoll, message)
}

fn read_request(obj: &Map<String, Value>) -> Result<PollRequest, ApiError> {
    let max_events = match obj.get("maxEvents") {
        None => DEFAULT_MAX_EVENTS,
        Some(v) => {
            v.as_u64().map(|n| n.min(MAX_EVENTS as u64) as usize).ok_or_else(|| invalid("\"maxEvents\" must be a non-negative integer"))?
        }
    };
    let return_immediately = match obj.get("returnImmediately") {
        None => false,
        Some(v) => v.as_bool().ok_or_else(|| invalid("\"returnImmediately\" must be a boolean"))?,
    };
    let ack = match obj.get("ack") {
        None => Vec::new(),
        Some(Value::Array(items)) if items.len() <= MAX_ACKS => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| invalid("\"ack\" must be an array of jti strings"))?,
        Some(_) => return Err(invalid(format!("\"ack\" must be an array of at most {MAX_ACKS} jti strings"))),
    };
    let set_errs = match obj.get("setErrs") {
        None => Vec::new(),
        Some(Value::Object(errs)) if errs.len() <= MAX_ACKS => errs
            .iter()
            .map(|(jti, e)| {
                let err = e.get("err").and_then(Value::as_str)?;
                let description = match e.get("description") {
                    None => None,
                    Some(d) => Some(d.as_str()?.chars().take(512).collect()),
                };
                Some((jti.clone(), err.chars().take(128).collect(), description))
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| invalid("each \"setErrs\" member must be {\"err\": string, \"description\"?: string}"))?,
        Some(_) => return Err(invalid(format!("\"setErrs\" must be an object of at most {MAX_ACKS} members"))),
    };
    Ok(PollRequest { max_events, return_immediately, ack, set_errs })
}

/// Marks the SET `jti` done: an entry's is remembered until the cursor
/// passes it, a management SET leaves the queue.
fn acknowledge(stream: &StreamState, state: &mut PollState, cursor: u64, jti: &str) {
    match set::parse_jti(&stream.id, jti) {
        Some(JtiRef::Entry { index, ordinal }) if index >= cursor && state.acked.len() < MAX_ACKED => {
            state.acked.insert((index, ordinal));
        }
        Some(JtiRef::Management(jti)) => lock(&stream.management).retain(|m| m.jti != jti),
        // Below the cursor (acknowledged before), or not this stream's.
        _ => {}
    }
}

/// Answers a poll of `stream`.
pub(super) async fn poll(inner: &Arc<Inner>, stream: &StreamState, obj: &Map<String, Value>) -> Result<Value, ApiError> {
    let request = read_request(obj)?;
    if !matches!(stream.snapshot().delivery, Delivery::Poll) {
        return Err(invalid("this stream delivers by push (urn:ietf:rfc:8935); it cannot be polled"));
    }
    let mut state = stream.poll.lock().await;
    let cursor = *stream.cursor.lock().await;
    for jti in &request.ack {
        acknowledge(stream, &mut state, cursor, jti);
    }
    for (jti, _, _) in &request.set_errs {
        acknowledge(stream, &mut state, cursor, jti);
    }
    // One stored error per poll, however many the receiver reports.
    if let Some((jti, err, description)) = request.set_errs.last() {
        let error = DeliveryError { jti: jti.clone(), err: err.clone(), description: description.clone(), at: now_secs(), dropped: true };
        inner.record_error(stream, error).await;
    }
    let deadline = Instant::now() + inner.config.poll_wait;
    let mut version = stream.version.subscribe();
    let mut head = inner.log.watch_head();
    let mut stop = inner.stop.subscribe();
    loop {
        version.borrow_and_update();
        head.borrow_and_update();
        let (sets, more) = collect(inner, stream, &mut state, request.max_events).await?;
        let done =
            !sets.is_empty() || request.return_immediately || request.max_events == 0 || *stop.borrow() || Instant::now() >= deadline;
        if done {
            return Ok(json!({ "sets": sets, "moreAvailable": more }));
        }
        tokio::select! {
            _ = version.changed() => {}
            _ = head.changed() => {}
            _ = stop.changed() => {}
            () = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// The oldest SETs of `stream` not acknowledged, up to `max`, and
/// whether more wait; moves the cursor past every entry whose SETs are
/// all acknowledged.
async fn collect(
    inner: &Arc<Inner>,
    stream: &StreamState,
    state: &mut PollState,
    max: usize,
) -> Result<(Map<String, Value>, bool), ApiError> {
    let doc = stream.snapshot();
    let now = now_secs();
    let mut claims: Vec<(String, Value)> = Vec::new();
    let mut more = false;
    for m in lock(&stream.management).iter() {
        if claims.len() >= max {
            more = true;
            break;
        }
        let c = set::management_claims(&m.jti, m.event_type, &m.event, &doc.stream_id, &inner.config.issuer, &doc.aud, now);
        claims.push((m.jti.clone(), c));
    }
    if doc.status == Status::Enabled && !more {
        let size = inner.log.head().size;
        let cursor = *stream.cursor.lock().await;
        let mut new_cursor = cursor;
        // Whether an entry with SETs not acknowledged was met: the cursor
        // stops there.
        let mut blocked = false;
        let mut after = cursor.checked_sub(1);
        // Entries read per poll, so one poll's work stays bounded.
        let budget = max.saturating_mul(4).max(BATCH) + state.acked.len();
        let mut read = 0usize;
        'scan: loop {
            let refs = next_refs(inner, after.map_or(0, |a| a + 1)).await?.into_iter().filter(|r| r.index < size).collect::<Vec<_>>();
            if refs.is_empty() {
                if !blocked {
                    new_cursor = size;
                }
                break;
            }
            for (index, events) in events_of(inner, refs, &doc).await? {
                after = Some(index);
                read += 1;
                let pending: Vec<_> = events.into_iter().filter(|e| !state.acked.contains(&(e.index, e.ordinal))).collect();
                if pending.is_empty() {
                    if !blocked {
                        new_cursor = index + 1;
                    }
                    continue;
                }
                blocked = true;
                for event in pending {
                    if claims.len() >= max {
                        more = true;
                        break 'scan;
                    }
                    claims.push((event.jti(&stream.id), set::entry_claims(&event, &stream.id, &inner.config.issuer, &doc.aud, now)));
                }
                if read >= budget {
                    more = true;
                    break 'scan;
                }
            }
        }
        inner.advance(stream, new_cursor).await?;
        state.acked.retain(|(index, _)| *index >= new_cursor);
    }
    // RSA signatures take about a millisecond each: off the async workers.
    let signer = Arc::clone(inner);
    let signed = tokio::task::spawn_blocking(move || {
        claims
            .into_iter()
            .map(|(jti, c)| signer.signer.sign(&c).map(|set| (jti, Value::from(set))))
            .collect::<Result<Map<String, Value>, _>>()
    })
    .await
    .map_err(|e| ApiError::internal(format_args!("signing task failed: {e}")))?
    .map_err(|e| ApiError::internal(format_args!("signing a SET failed: {e}")))?;
    Ok((signed, more))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn poll_requests_are_read_strictly() {
        let r = read_request(&obj(json!({}))).unwrap();
        assert_eq!((r.max_events, r.return_immediately, r.ack.len(), r.set_errs.len()), (DEFAULT_MAX_EVENTS, false, 0, 0));
        let r = read_request(&obj(json!({
            "maxEvents": 5000, "returnImmediately": true, "ack": ["a", "b"],
            "setErrs": {"c": {"err": "invalid_key", "description": "no such key"}}
        })))
        .unwrap();
        assert_eq!((r.max_events, r.return_immediately, r.ack), (MAX_EVENTS, true, vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(r.set_errs, [("c".to_owned(), "invalid_key".to_owned(), Some("no such key".to_owned()))]);
        for bad in [
            json!({"maxEvents": -1}),
            json!({"maxEvents": "10"}),
            json!({"returnImmediately": "yes"}),
            json!({"ack": "a"}),
            json!({"ack": [1]}),
            json!({"setErrs": []}),
            json!({"setErrs": {"c": {"description": "no err"}}}),
        ] {
            assert_eq!(read_request(&obj(bad.clone())).unwrap_err().code(), ErrorCode::InvalidPoll, "{bad}");
        }
    }
}
