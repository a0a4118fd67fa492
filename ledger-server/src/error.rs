//! The one error type of the HTTP API.
//!
//! Every error is `{"error": {"code": "<stable_snake_case>", "message":
//! "<precise>"}}`. Caller mistakes get 4xx with a precise message; our own
//! failures get 500 with a generic message while the real error is logged.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ledger_core::entry::EntryError;
use verifier::disclosure::DisclosureError;
use verifier::wire::{ErrorDetail, ErrorResponse};

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
    extra_header: Option<Box<(header::HeaderName, HeaderValue)>>,
}

impl ApiError {
    /// An error with a status, a stable code and a message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after: None, extra_header: None }
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.extra_header = Some(Box::new((name, value)));
        self
    }

    /// 400 with `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Prefixes the message with where the error was found.
    pub fn prefixed(mut self, prefix: &str) -> Self {
        self.message = format!("{prefix}: {}", self.message);
        self
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl From<EntryError> for ApiError {
    fn from(e: EntryError) -> Self {
        let code = match &e {
            EntryError::Json(_) => "invalid_json",
            EntryError::Shape(_) => "invalid_entry",
            EntryError::UnknownKind(_) => "unknown_kind",
            EntryError::AgentId { .. } => "invalid_agent_id",
            EntryError::TooLarge { .. } => return Self::new(StatusCode::PAYLOAD_TOO_LARGE, "entry_too_large", e.to_string()),
            EntryError::Hidden(_) => "invalid_hidden",
            EntryError::HiddenInClear => "commit_hidden_first",
            EntryError::Agent(_) => "invalid_entry",
            EntryError::Predicate(zk::ZkError::PredicateFalse { .. }) => {
                return Self::new(StatusCode::UNPROCESSABLE_ENTITY, "predicate_false", e.to_string());
            }
            EntryError::Predicate(_) => "invalid_predicate",
            EntryError::ProofSelfCheck => {
                tracing::error!(error = %e, "internal error");
                return Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal server error");
            }
            _ => "invalid_entry",
        };
        Self::bad_request(code, e.to_string())
    }
}

impl From<ledger_core::Error> for ApiError {
    fn from(e: ledger_core::Error) -> Self {
        use ledger_core::Error as E;
        match e {
            E::Entry(e) => e.into(),
            E::EmptyBatch => Self::bad_request("empty_batch", e.to_string()),
            E::BatchTooLarge { .. } => Self::new(StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large", e.to_string()),
            E::Pushback { retry_after } => Self {
                retry_after: Some(retry_after.as_secs().max(1)),
                ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "pushback", e.to_string())
            },
            E::ShuttingDown => Self { retry_after: Some(1), ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", e.to_string()) },
            E::IndexBeyondTree { .. } => Self::new(StatusCode::NOT_FOUND, "index_beyond_tree", e.to_string()),
            E::SizeBeyondTree { .. } => Self::new(StatusCode::NOT_FOUND, "size_beyond_tree", e.to_string()),
            E::OldSizeLarger { .. } => Self::bad_request("old_size_larger", e.to_string()),
            E::TileNotAvailable(_) => Self::new(StatusCode::NOT_FOUND, "tile_not_available", e.to_string()),
            E::Unsigned(_) => Self::new(StatusCode::UNAUTHORIZED, "signature_required", e.to_string()),
            E::BadSignature(_) => Self::new(StatusCode::UNAUTHORIZED, "bad_signature", e.to_string()),
            E::UnknownAgent(_) => Self::new(StatusCode::FORBIDDEN, "unknown_agent", e.to_string()),
            E::AgentRetired(_) => Self::new(StatusCode::FORBIDDEN, "agent_retired", e.to_string()),
            E::AgentExists(_) => Self::new(StatusCode::CONFLICT, "agent_exists", e.to_string()),
            E::SequenceReplayed { .. } => Self::new(StatusCode::CONFLICT, "sequence_replayed", e.to_string()),
            E::WrongTrustDomain { .. } => Self::bad_request("wrong_trust_domain", e.to_string()),
            E::Nonce(ledger_core::attest::NonceError::Exhausted { retry_after }) => Self {
                retry_after: Some(retry_after.as_secs().max(1)),
                ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "nonce_store_full", e.to_string())
            },
            E::Nonce(n) => {
                use ledger_core::attest::NonceError as N;
                let code = match n {
                    N::Unknown => "nonce_unknown",
                    N::WrongAgent => "nonce_wrong_agent",
                    N::Expired => "nonce_expired",
                    N::Used => "nonce_used",
                    // Answered with 503 by the arm above; kept for the match.
                    N::Exhausted { .. } => "nonce_store_full",
                };
                Self::new(StatusCode::CONFLICT, code, e.to_string())
            }
            E::AttestationFailed { .. } => Self::new(StatusCode::UNPROCESSABLE_ENTITY, "attestation_failed", e.to_string()),
            E::TooManyHidden { .. } => Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_many_hidden_entries", e.to_string()),
            E::NoHiddenFields { .. } => Self::new(StatusCode::NOT_FOUND, "no_hidden_fields", e.to_string()),
            E::NoOpenings { .. } => Self::new(StatusCode::NOT_FOUND, "no_openings", e.to_string()),
            E::OpeningsShredded { .. } => Self::new(StatusCode::GONE, "openings_shredded", e.to_string()),
            E::Disclosure(d) => {
                let code = match d {
                    DisclosureError::UnknownField(_) => "unknown_field",
                    DisclosureError::NotAnInteger(_) => "not_an_integer",
                    _ => "invalid_disclosure",
                };
                Self::bad_request(code, d.to_string())
            }
            E::ProverBusy { retry_after } => Self {
                retry_after: Some(retry_after.as_secs().max(1)),
                ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "prover_busy", e.to_string())
            },
            other => {
                tracing::error!(error = %other, "internal error");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal server error")
            }
        }
    }
}

impl From<ledger_core::requests::RequestError> for ApiError {
    fn from(e: ledger_core::requests::RequestError) -> Self {
        use ledger_core::requests::RequestError as R;
        match e {
            R::Replayed => Self::new(StatusCode::CONFLICT, "request_replayed", e.to_string()),
            R::TooMany { retry_after, .. } => Self {
                retry_after: Some(retry_after.as_secs().max(1)),
                ..Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", e.to_string())
            },
            R::Full { retry_after } => Self {
                retry_after: Some(retry_after.as_secs().max(1)),
                ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "replay_cache_full", e.to_string())
            },
            // A variant added later: refuse, never accept silently.
            _ => Self::new(StatusCode::UNAUTHORIZED, "bad_signature", e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorResponse { error: ErrorDetail { code: self.code.into(), message: self.message } };
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(extra) = self.extra_header {
            let (name, value) = *extra;
            resp.headers_mut().insert(name, value);
        }
        resp
    }
}
