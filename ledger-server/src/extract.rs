//! Extractors that turn malformed input into the API's error shape.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

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
        let read = tokio::time::timeout(timeout, axum::body::to_bytes(req.into_body(), limit)).await.map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!("request body was not received within {} ms", timeout.as_millis()),
            )
        })?;
        let body = read.map_err(|e| {
            let too_large =
                std::iter::successors(std::error::Error::source(&e), |s| s.source()).any(|s| s.is::<http_body_util::LengthLimitError>());
            if too_large {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", format!("request body is larger than {limit} bytes"))
            } else {
                ApiError::bad_request("body_read_failed", format!("reading the request body failed: {e}"))
            }
        })?;
        Ok(Self(body))
    }
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
