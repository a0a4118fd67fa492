//! Extractors (JSON bodies, query strings, entry indices in paths) and the
//! body reader and strict JSON parser they share: malformed input gets the
//! API's error shape, and every body is read bounded and timed.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use serde::de::{DeserializeOwned, Deserializer as _, SeqAccess, Visitor};
use serde_json::value::RawValue;
use verifier::wire::ErrorCode;
use verifier::{AgentId, EntryError};

use crate::error::ApiError;

/// A JSON request body, read up to a size limit after checking the
/// content type. The limit comes from the route (`BodyLimit` extension).
#[derive(Debug)]
pub struct JsonBytes(pub Bytes);

/// Per-route body limit, installed as a request extension.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub usize);

/// How long a client may take to send a request body (slow senders hold a
/// connection and a task), installed as a request extension.
#[derive(Clone, Copy, Debug)]
pub struct BodyTimeout(pub Duration);

/// The body limit of a route without a [`BodyLimit`].
const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

impl<S: Send + Sync> FromRequest<S> for JsonBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        require_json(&parts.headers)?;
        read_body(&parts, body, usize::MAX).await.map(Self)
    }
}

/// 415 `unsupported_media_type` unless the body is `application/json`.
pub(crate) fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let is_json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if is_json {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::UnsupportedMediaType, "request body must be Content-Type: application/json"))
    }
}

/// Reads a request body of at most `max` bytes, or the route's
/// [`BodyLimit`] if smaller, within the route's [`BodyTimeout`]: 408
/// `request_timeout`, 413 `payload_too_large` or 400 `body_read_failed`
/// otherwise. Every body the API reads goes through here, once.
pub(crate) async fn read_body(parts: &Parts, body: Body, max: usize) -> Result<Bytes, ApiError> {
    let limit = parts.extensions.get::<BodyLimit>().map_or(DEFAULT_BODY_LIMIT, |l| l.0).min(max);
    let timeout = parts.extensions.get::<BodyTimeout>().map_or(Duration::from_secs(30), |t| t.0);
    let read = tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await.map_err(|_| {
        ApiError::new(ErrorCode::RequestTimeout, format!("request body was not received within {} ms", timeout.as_millis()))
    })?;
    read.map_err(|e| {
        let too_large =
            std::iter::successors(std::error::Error::source(&e), |s| s.source()).any(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            ApiError::new(ErrorCode::PayloadTooLarge, format!("request body is larger than {limit} bytes"))
        } else {
            ApiError::new(ErrorCode::BodyReadFailed, format!("reading the request body failed: {e}"))
        }
    })
}

/// Query parameters with errors in the API's shape.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| Query(q.0))
            .map_err(|e| ApiError::new(ErrorCode::InvalidQuery, format!("invalid query string: {}", e.body_text())))
    }
}

/// A request body parsed as strict JSON (duplicate keys and non-integer
/// numbers refused, as in entries): 400 `invalid_json` otherwise.
pub(crate) fn strict_json(body: &[u8]) -> Result<serde_json::Value, ApiError> {
    verifier::canonical::parse_strict(body).map_err(|e| ApiError::new(ErrorCode::InvalidJson, format!("request is not valid JSON: {e}")))
}

/// An agent id from a path or a query string, parsed once: 400
/// `invalid_agent_id` (the entry model's [`EntryError::AgentId`]) when it
/// is no SPIFFE agent id. Routes that read an agent answer an invalid id
/// as they answer an unknown one instead.
pub(crate) fn agent_id(id: &str) -> Result<AgentId, ApiError> {
    AgentId::parse(id).map_err(|reason| EntryError::AgentId { id: id.to_owned(), reason }.into())
}

/// An entry index in the path (`{index}`), a decimal integer: 400
/// `invalid_index` otherwise.
#[derive(Clone, Copy, Debug)]
pub struct EntryIndex(pub u64);

impl<S: Send + Sync> FromRequestParts<S> for EntryIndex {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(index) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::new(ErrorCode::InvalidIndex, format!("invalid index: {}", e.body_text())))?;
        parse_index(&index).map(Self)
    }
}

/// Parses a path segment as a decimal index.
fn parse_index(s: &str) -> Result<u64, ApiError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::new(ErrorCode::InvalidIndex, format!("index {s:?} is not a non-negative decimal integer")));
    }
    s.parse().map_err(|_| ApiError::new(ErrorCode::InvalidIndex, format!("index {s:?} is out of range")))
}

/// Splits a batch body, a JSON array, into its elements' raw JSON without
/// building any value, and stops as soon as the array holds more than
/// `max_entries` elements or one element is longer than `max_item_bytes`.
/// Parsing the whole body into a `serde_json::Value` first made
/// `[0,0,0,...]` cost a `Value` per element (over 1 GiB for a 64 MiB body)
/// before the count was checked; here each element costs one borrowed
/// slice, and at most `max_entries` of them are kept.
///
/// Errors: 413 `batch_too_large`, 413 `entry_too_large`, 400 `invalid_batch`
/// (not an array), 400 `invalid_json`. The elements themselves are not
/// checked here: callers parse each one strictly.
pub fn batch_items(body: &[u8], max_entries: usize, max_item_bytes: usize) -> Result<Vec<&RawValue>, ApiError> {
    let mut refusal = None;
    let mut de = serde_json::Deserializer::from_slice(body);
    let items =
        de.deserialize_seq(BatchItems { max_entries, max_item_bytes, refusal: &mut refusal }).and_then(|items| de.end().map(|()| items));
    items.map_err(|e| match refusal {
        Some(BatchRefusal::TooMany) => {
            ApiError::new(ErrorCode::BatchTooLarge, format!("batch holds more than {max_entries} entries; the limit is {max_entries}"))
        }
        Some(BatchRefusal::ItemTooLarge { index, len }) => {
            ApiError::new(ErrorCode::EntryTooLarge, format!("entry {index}: {len} bytes of JSON; the limit is {max_item_bytes}"))
        }
        // Only the visitor's own refusals (above) and a body that is not
        // an array are data errors; everything else is malformed JSON.
        None if e.classify() == serde_json::error::Category::Data => {
            ApiError::new(ErrorCode::InvalidBatch, "a batch must be a JSON array of entries")
        }
        None => ApiError::new(ErrorCode::InvalidJson, format!("batch is not valid JSON: {e}")),
    })
}

/// Why [`BatchItems`] stopped early (serde errors carry only text).
#[derive(Debug)]
enum BatchRefusal {
    TooMany,
    ItemTooLarge { index: usize, len: usize },
}

struct BatchItems<'r> {
    max_entries: usize,
    max_item_bytes: usize,
    refusal: &'r mut Option<BatchRefusal>,
}

impl<'de> Visitor<'de> for BatchItems<'_> {
    type Value = Vec<&'de RawValue>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON array of entries")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        // A borrowed RawValue is checked for syntax and sliced out of the
        // body; nothing per element is allocated.
        while let Some(item) = seq.next_element::<&'de RawValue>()? {
            if items.len() == self.max_entries {
                *self.refusal = Some(BatchRefusal::TooMany);
                return Err(serde::de::Error::custom("too many entries"));
            }
            let len = item.get().len();
            if len > self.max_item_bytes {
                *self.refusal = Some(BatchRefusal::ItemTooLarge { index: items.len(), len });
                return Err(serde::de::Error::custom("entry too large"));
            }
            items.push(item);
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;

    fn code(r: Result<Vec<&RawValue>, ApiError>) -> (StatusCode, &'static str) {
        let e = r.expect_err("an error");
        (e.status(), e.code().as_str())
    }

    #[test]
    fn batch_items_are_sliced_out_of_the_body() {
        let items = batch_items(br#" [ {"a": [1, 2]} , 3,"x" ] "#, 3, 100).unwrap();
        assert_eq!(items.iter().map(|i| i.get()).collect::<Vec<_>>(), [r#"{"a": [1, 2]}"#, "3", r#""x""#]);
        assert!(batch_items(b"[]", 3, 100).unwrap().is_empty());
    }

    #[test]
    fn batch_items_refuse_before_reading_past_the_limits() {
        // Far more elements than allowed, and a syntax error at the end that
        // is never reached: the count stops the parse first.
        let mut body = "[0".to_owned() + &",0".repeat(100_000);
        body.push_str(",}");
        assert_eq!(code(batch_items(body.as_bytes(), 1000, 100)), (StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large"));
        let long = format!(r#"[1,"{}",2"#, "x".repeat(200));
        assert_eq!(code(batch_items(long.as_bytes(), 10, 100)), (StatusCode::PAYLOAD_TOO_LARGE, "entry_too_large"));
        assert_eq!(code(batch_items(b"[1,2]", 1, 100)), (StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large"));
    }

    #[test]
    fn batch_items_keep_the_error_codes() {
        for (body, expected) in [
            (r#"{"kind":"action"}"#, "invalid_batch"),
            ("3", "invalid_batch"),
            ("[", "invalid_json"),
            ("[1,]", "invalid_json"),
            ("[1] [2]", "invalid_json"),
            (r#"[1,{"a":}]"#, "invalid_json"),
            ("", "invalid_json"),
        ] {
            assert_eq!(code(batch_items(body.as_bytes(), 10, 100)).1, expected, "{body}");
        }
    }
}
