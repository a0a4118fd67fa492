//! Extractors that turn malformed input into the API's error shape.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::{DeserializeOwned, Deserializer as _, SeqAccess, Visitor};
use serde_json::value::RawValue;

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

impl<S: Send + Sync> FromRequest<S> for JsonBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "request body must be Content-Type: application/json",
            ));
        }
        let limit = req.extensions().get::<BodyLimit>().map_or(64 * 1024, |l| l.0);
        let timeout = req.extensions().get::<BodyTimeout>().map_or(Duration::from_secs(30), |t| t.0);
        read_body(req, limit, timeout).await.map(Self)
    }
}

/// Reads a request body of at most `limit` bytes within `timeout`: 408
/// `request_timeout`, 413 `payload_too_large` or 400 `body_read_failed`
/// otherwise. Every body the API reads goes through here.
pub(crate) async fn read_body(req: Request, limit: usize, timeout: Duration) -> Result<Bytes, ApiError> {
    let read = tokio::time::timeout(timeout, axum::body::to_bytes(req.into_body(), limit)).await.map_err(|_| {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!("request body was not received within {} ms", timeout.as_millis()),
        )
    })?;
    read.map_err(|e| {
        let too_large =
            std::iter::successors(std::error::Error::source(&e), |s| s.source()).any(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", format!("request body is larger than {limit} bytes"))
        } else {
            ApiError::bad_request("body_read_failed", format!("reading the request body failed: {e}"))
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
            .map_err(|e| ApiError::bad_request("invalid_query", format!("invalid query string: {}", e.body_text())))
    }
}

/// Parses a path segment as a decimal index.
pub fn parse_index(s: &str) -> Result<u64, ApiError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad_request("invalid_index", format!("index {s:?} is not a non-negative decimal integer")));
    }
    s.parse().map_err(|_| ApiError::bad_request("invalid_index", format!("index {s:?} is out of range")))
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
        Some(BatchRefusal::TooMany) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!("batch holds more than {max_entries} entries; the limit is {max_entries}"),
        ),
        Some(BatchRefusal::ItemTooLarge { index, len }) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "entry_too_large",
            format!("entry {index}: {len} bytes of JSON; the limit is {max_item_bytes}"),
        ),
        // Only the visitor's own refusals (above) and a body that is not
        // an array are data errors; everything else is malformed JSON.
        None if e.classify() == serde_json::error::Category::Data => {
            ApiError::bad_request("invalid_batch", "a batch must be a JSON array of entries")
        }
        None => ApiError::bad_request("invalid_json", format!("batch is not valid JSON: {e}")),
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
    use super::*;

    fn code(r: Result<Vec<&RawValue>, ApiError>) -> (StatusCode, &'static str) {
        let e = r.expect_err("an error");
        (e.status(), e.code())
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
