//! The one error type of the HTTP API, the one table from error code to
//! HTTP status, and the one place errors are logged.
//!
//! Every error is `{"error": {"code": "<stable_snake_case>", "message":
//! "<precise>"}}` with a [`verifier::wire::ErrorCode`], so the SDK matches
//! on the same enum. Caller mistakes get 4xx with a precise message; our own
//! failures get 500 with a generic message, and the real cause travels, in
//! the response's extensions only, to [`log_errors`], the middleware that
//! logs every error response once.

use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ledger_core::entry::EntryError;
use verifier::disclosure::DisclosureError;
use verifier::fold::sources::SourceError;
use verifier::wire::{ErrorCode, ErrorDetail, ErrorResponse};

/// The HTTP status of each error code. The one exception is
/// [`ApiError::no_such_agent`]: reading an agent that does not exist is a
/// 404, while writing as one is refused with 403.
pub fn status_of(code: ErrorCode) -> StatusCode {
    use ErrorCode as C;
    match code {
        C::InvalidJson
        | C::InvalidEntry
        | C::UnknownKind
        | C::InvalidAgentId
        | C::InvalidHidden
        | C::CommitHiddenFirst
        | C::InvalidPredicate
        | C::InvalidPassport
        | C::WrongTrustDomain
        | C::InvalidRetirement
        | C::InvalidSource
        | C::InvalidSignal
        | C::InvalidDisclosure
        | C::UnknownField
        | C::NotAnInteger
        | C::InvalidBatch
        | C::EmptyBatch
        | C::InvalidQuery
        | C::InvalidIndex
        | C::InvalidTilePath
        | C::OldSizeLarger
        | C::InvalidExportRange
        | C::InvalidPolicy
        | C::BodyReadFailed
        | C::InvalidStream
        | C::InvalidStreamStatus
        | C::InvalidSubject
        | C::InvalidPoll
        | C::InvalidTokenRequest
        | C::InvalidTokenCheck => StatusCode::BAD_REQUEST,
        C::Unauthorized | C::SignatureRequired | C::BadSignature | C::StaleRequest => StatusCode::UNAUTHORIZED,
        C::AdminDisabled
        | C::UnknownAgent
        | C::AgentRetired
        | C::AgentRevoked
        | C::AttestationRequired
        | C::NotOwner
        | C::UnknownSource
        | C::SignalTypeNotAllowed
        | C::InsufficientScope
        | C::ScoreTooLow
        | C::TokenMalformed
        | C::TokenTooLong
        | C::TokenBadSignature
        | C::TokenWrongIssuer
        | C::TokenExpired
        | C::TokenNotYetValid
        | C::TokenWrongAudience
        | C::TokenWrongAction
        | C::TokenSqlMismatch
        | C::TokenAmountOverCeiling
        | C::TokenTargetMismatch
        | C::TokenRevoked => StatusCode::FORBIDDEN,
        C::NotFound
        | C::IndexBeyondTree
        | C::SizeBeyondTree
        | C::TileNotAvailable
        | C::NoHiddenFields
        | C::NoOpenings
        | C::UnknownStream
        | C::UnknownEscalation
        | C::TokensDisabled => StatusCode::NOT_FOUND,
        C::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        C::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        C::AgentExists
        | C::SequenceReplayed
        | C::NonceUnknown
        | C::NonceExpired
        | C::NonceUsed
        | C::NonceWrongAgent
        | C::RequestReplayed
        | C::AlreadyRevoked
        | C::NotRevoked
        | C::TooManyStreams
        | C::TooManySubjects
        | C::AlreadyDecided
        | C::TokenReplayed => StatusCode::CONFLICT,
        C::OpeningsShredded => StatusCode::GONE,
        C::PayloadTooLarge | C::EntryTooLarge | C::BatchTooLarge | C::TooManyHiddenEntries => StatusCode::PAYLOAD_TOO_LARGE,
        C::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        C::PredicateFalse | C::AttestationFailed => StatusCode::UNPROCESSABLE_ENTITY,
        C::TooManyRequests | C::TooManyTokens => StatusCode::TOO_MANY_REQUESTS,
        C::UpgradeRequired => StatusCode::UPGRADE_REQUIRED,
        C::Pushback
        | C::ProverBusy
        | C::ShuttingDown
        | C::ReplayCacheFull
        | C::TokenReplayCacheFull
        | C::TokenRevocationsUnknown
        | C::NonceStoreFull
        | C::TooManyConnections
        | C::TooManySubscribers
        | C::NotWitnessed => StatusCode::SERVICE_UNAVAILABLE,
        // `Internal`, and a code added to the wire enum but not yet given a
        // status here (a unit test below catches that).
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    message: String,
    retry_after: Option<u64>,
    /// `WWW-Authenticate`, for 401 and 403 answers to bearer tokens.
    challenge: Option<HeaderValue>,
    /// Machine-readable particulars ([`ErrorDetail::details`]).
    details: Option<Box<serde_json::Value>>,
    /// What really failed, for a 500: logged, never sent.
    cause: Option<String>,
}

impl ApiError {
    /// An error with a stable code (its status comes from [`status_of`])
    /// and a precise message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { status: status_of(code), code, message: message.into(), retry_after: None, challenge: None, details: None, cause: None }
    }

    /// 500 `internal` with a generic message; `cause` is logged by
    /// [`log_errors`], never sent.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self { cause: Some(cause.to_string()), ..Self::new(ErrorCode::Internal, "internal server error") }
    }

    /// 404 `unknown_agent`: a read of an agent that has no passport.
    pub fn no_such_agent(id: &str) -> Self {
        Self { status: StatusCode::NOT_FOUND, ..Self::new(ErrorCode::UnknownAgent, format!("no passport is registered for {id}")) }
    }

    /// Adds `WWW-Authenticate: Bearer` (a missing or wrong admin token).
    pub fn with_bearer_challenge(self) -> Self {
        self.with_www_authenticate(HeaderValue::from_static("Bearer realm=\"agent-ledger-admin\""))
    }

    /// Adds this `WWW-Authenticate` challenge (RFC 6750 §3).
    pub fn with_www_authenticate(mut self, challenge: HeaderValue) -> Self {
        self.challenge = Some(challenge);
        self
    }

    /// Adds machine-readable particulars.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(Box::new(details));
        self
    }

    /// Adds `Retry-After` (at least one second).
    pub fn with_retry_after(self, after: Duration) -> Self {
        self.retry_after(after)
    }

    /// Adds `Retry-After` (at least one second).
    pub(crate) fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after.as_secs().max(1));
        self
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
    pub fn code(&self) -> ErrorCode {
        self.code
    }
}

impl From<EntryError> for ApiError {
    fn from(e: EntryError) -> Self {
        let code = match &e {
            EntryError::Json(_) => ErrorCode::InvalidJson,
            EntryError::Shape(_) | EntryError::Agent(_) => ErrorCode::InvalidEntry,
            EntryError::UnknownKind(_) => ErrorCode::UnknownKind,
            EntryError::AgentId { .. } => ErrorCode::InvalidAgentId,
            EntryError::TooLarge { .. } => ErrorCode::EntryTooLarge,
            EntryError::Hidden(_) => ErrorCode::InvalidHidden,
            EntryError::HiddenInClear => ErrorCode::CommitHiddenFirst,
            EntryError::Predicate(zk::ZkError::PredicateFalse { .. }) => ErrorCode::PredicateFalse,
            // The prover failed (its accelerator, a bug), not the caller.
            EntryError::Predicate(zk::ZkError::Backend(_)) => return Self::internal(e),
            EntryError::Predicate(_) => ErrorCode::InvalidPredicate,
            EntryError::ProofSelfCheck => return Self::internal(e),
            _ => ErrorCode::InvalidEntry,
        };
        Self::new(code, e.to_string())
    }
}

impl From<ledger_core::Error> for ApiError {
    fn from(e: ledger_core::Error) -> Self {
        use ledger_core::nonces::NonceError as N;
        use ledger_core::Error as E;
        let e = match e {
            E::Entry(entry) => return entry.into(),
            other => other,
        };
        let code = match &e {
            E::EmptyBatch => ErrorCode::EmptyBatch,
            E::BatchTooLarge { .. } => ErrorCode::BatchTooLarge,
            E::Pushback { retry_after } => return Self::new(ErrorCode::Pushback, e.to_string()).retry_after(*retry_after),
            E::ProverBusy { retry_after } => return Self::new(ErrorCode::ProverBusy, e.to_string()).retry_after(*retry_after),
            E::Nonce(N::Exhausted { retry_after }) => {
                return Self::new(ErrorCode::NonceStoreFull, e.to_string()).retry_after(*retry_after);
            }
            E::ShuttingDown => return Self::new(ErrorCode::ShuttingDown, e.to_string()).retry_after(Duration::from_secs(1)),
            E::IndexBeyondTree { .. } => ErrorCode::IndexBeyondTree,
            E::SizeBeyondTree { .. } => ErrorCode::SizeBeyondTree,
            E::OldSizeLarger { .. } => ErrorCode::OldSizeLarger,
            E::BadExportRange(_) => ErrorCode::InvalidExportRange,
            E::TileNotAvailable(_) => ErrorCode::TileNotAvailable,
            E::Unsigned(_) => ErrorCode::SignatureRequired,
            E::BadSignature(_) => ErrorCode::BadSignature,
            E::UnknownAgent(_) => ErrorCode::UnknownAgent,
            E::AgentRetired(_) => ErrorCode::AgentRetired,
            E::AgentExists(_) => ErrorCode::AgentExists,
            E::AgentRevoked(_) | E::BelowThreshold { .. } => ErrorCode::AgentRevoked,
            E::AlreadyRevoked(_) => ErrorCode::AlreadyRevoked,
            E::NotRevoked(_) => ErrorCode::NotRevoked,
            E::AttestationRequired { .. } => ErrorCode::AttestationRequired,
            E::ScoreTooLow { score, required, class, .. } => {
                let details = serde_json::json!({"score": score, "required": required, "class": class, "raise": ["attest"]});
                return Self::new(ErrorCode::ScoreTooLow, e.to_string()).with_details(details);
            }
            E::FreshAttestationRequired { class, max_age_s, last_ok_at, .. } => {
                let details = serde_json::json!({"class": class, "max_age_s": max_age_s, "last_ok_at": last_ok_at, "raise": ["attest"]});
                return Self::new(ErrorCode::AttestationRequired, e.to_string()).with_details(details);
            }
            E::InvalidTokenRequest(_) => ErrorCode::InvalidTokenRequest,
            E::TooManyTokens(_) | E::TooManyEscalations(_) => ErrorCode::TooManyTokens,
            E::UnknownEscalation(_) => ErrorCode::UnknownEscalation,
            E::AlreadyDecided { .. } => ErrorCode::AlreadyDecided,
            E::Token(t) => return t.clone().into(),
            E::SequenceReplayed { .. } => ErrorCode::SequenceReplayed,
            E::WrongTrustDomain { .. } => ErrorCode::WrongTrustDomain,
            E::Source(source) => return source_error(source),
            E::Nonce(N::Unknown) => ErrorCode::NonceUnknown,
            E::Nonce(N::WrongAgent) => ErrorCode::NonceWrongAgent,
            E::Nonce(N::Expired) => ErrorCode::NonceExpired,
            E::Nonce(N::Used) => ErrorCode::NonceUsed,
            E::AttestationFailed { .. } => ErrorCode::AttestationFailed,
            E::TooManyHidden { .. } => ErrorCode::TooManyHiddenEntries,
            E::NoHiddenFields { .. } => ErrorCode::NoHiddenFields,
            E::NoOpenings { .. } => ErrorCode::NoOpenings,
            E::OpeningsShredded { .. } => ErrorCode::OpeningsShredded,
            E::UnknownStream(_) => ErrorCode::UnknownStream,
            E::Disclosure(d) => {
                let code = match d {
                    DisclosureError::UnknownField(_) => ErrorCode::UnknownField,
                    DisclosureError::NotAnInteger(_) => ErrorCode::NotAnInteger,
                    _ => ErrorCode::InvalidDisclosure,
                };
                return Self::new(code, d.to_string());
            }
            _ => return Self::internal(e),
        };
        Self::new(code, e.to_string())
    }
}

/// The sources fold's refusals ([`verifier::fold::sources`]): the source
/// is unknown or may not file the type, the sequence number is replayed,
/// the signature is forged, the subject is no registered, active agent.
fn source_error(e: &SourceError) -> ApiError {
    let code = match e {
        SourceError::UnknownSource(_) => ErrorCode::UnknownSource,
        SourceError::TypeNotAllowed { .. } => ErrorCode::SignalTypeNotAllowed,
        SourceError::Replayed { .. } => ErrorCode::SequenceReplayed,
        SourceError::BadSignature { .. } => ErrorCode::BadSignature,
        SourceError::WeakKey { .. } => ErrorCode::InvalidSource,
        SourceError::UnknownSubject(_) => ErrorCode::UnknownAgent,
        SourceError::RetiredSubject(_) => ErrorCode::AgentRetired,
        SourceError::Unsigned => ErrorCode::SignatureRequired,
        SourceError::Entry(entry) => return entry.clone().into(),
        // A leaf version refusal comes only from an offline audit; a
        // refusal added to the fold later is never answered as a success.
        _ => return ApiError::internal(e),
    };
    ApiError::new(code, e.to_string())
}

impl From<ledger_core::requests::RequestError> for ApiError {
    fn from(e: ledger_core::requests::RequestError) -> Self {
        use ledger_core::requests::RequestError as R;
        match e {
            R::Stale { .. } => Self::new(ErrorCode::StaleRequest, e.to_string()),
            R::MalformedSignature => Self::new(ErrorCode::Unauthorized, e.to_string()).with_bearer_challenge(),
            R::UnknownAgent(_) => Self::new(ErrorCode::UnknownAgent, e.to_string()),
            R::Retired(_) => Self::new(ErrorCode::AgentRetired, e.to_string()),
            R::BadSignature(_) => Self::new(ErrorCode::BadSignature, e.to_string()),
            R::Replayed => Self::new(ErrorCode::RequestReplayed, e.to_string()),
            R::TooMany { retry_after, .. } => Self::new(ErrorCode::TooManyRequests, e.to_string()).retry_after(retry_after),
            R::Full { retry_after } => Self::new(ErrorCode::ReplayCacheFull, e.to_string()).retry_after(retry_after),
            // A variant added later: refuse, never accept silently.
            _ => Self::new(ErrorCode::BadSignature, e.to_string()),
        }
    }
}

/// A refused action token: its code is the token rule's own
/// ([`verifier::token::TokenError::code`]), which names an [`ErrorCode`].
impl From<verifier::token::TokenError> for ApiError {
    fn from(e: verifier::token::TokenError) -> Self {
        match e.code().parse::<ErrorCode>() {
            Ok(ErrorCode::TokenReplayCacheFull) => {
                Self::new(ErrorCode::TokenReplayCacheFull, e.to_string()).retry_after(Duration::from_secs(1))
            }
            Ok(code) => Self::new(code, e.to_string()),
            Err(_) => Self::internal(format_args!("token error {} has no API code", e.code())),
        }
    }
}

/// What [`log_errors`] learns about an error response: set by
/// [`ApiError::into_response`] in the response's extensions.
#[derive(Clone, Debug)]
struct ErrorReport {
    code: ErrorCode,
    cause: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorResponse { error: ErrorDetail { code: self.code, message: self.message, details: self.details.map(|d| *d) } };
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(challenge) = self.challenge {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
        }
        resp.extensions_mut().insert(ErrorReport { code: self.code, cause: self.cause });
        resp
    }
}

/// Middleware that logs every error response once, with its status, code,
/// method and matched route: 500s at `error` with their cause, other 5xx
/// (pushback) at `warn`, 4xx at `info`. Messages are not logged: they
/// quote what the client sent.
pub async fn log_errors(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let report = resp.extensions().get::<ErrorReport>();
    let code = report.map_or("-", |r| r.code.as_str());
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let status = status.as_u16();
    if status == 500 {
        let cause = report.and_then(|r| r.cause.as_deref()).unwrap_or("-");
        tracing::error!(status, code, %method, route, cause, "request failed");
    } else if status >= 500 {
        tracing::warn!(status, code, %method, route, "request refused");
    } else {
        tracing::info!(status, code, %method, route, "request refused");
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_but_internal_has_its_own_status() {
        for &code in ErrorCode::ALL {
            let status = status_of(code);
            assert_eq!(status == StatusCode::INTERNAL_SERVER_ERROR, code == ErrorCode::Internal, "{code}: {status}");
        }
    }

    /// A `MakeWriter` that keeps what is logged.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Self;

        fn make_writer(&'a self) -> Self {
            self.clone()
        }
    }

    #[test]
    fn every_error_response_is_logged_once_with_its_route_and_code() {
        use axum::routing::get;
        use tower::ServiceExt as _;

        let app = axum::Router::new()
            .route("/boom/{n}", get(|| async { ApiError::internal("disk on fire") }))
            .route("/refused", get(|| async { ApiError::new(ErrorCode::BadSignature, "secret-ish client text") }))
            .route("/fine", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn(log_errors));
        let logs = Captured::default();
        let subscriber = tracing_subscriber::fmt().with_writer(logs.clone()).with_ansi(false).with_max_level(tracing::Level::INFO).finish();
        tracing::subscriber::with_default(subscriber, || {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(async {
                for uri in ["/boom/7", "/refused", "/fine", "/nowhere"] {
                    let req = axum::http::Request::get(uri).body(axum::body::Body::empty()).unwrap();
                    app.clone().oneshot(req).await.unwrap();
                }
            });
        });
        let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // One line per error response, none for the 200; the router's own
        // 404 (no fallback here) is logged too, without a code.
        assert_eq!(lines.len(), 3, "{text}");
        for expected in ["ERROR", "status=500", "code=\"internal\"", "method=GET", "route=\"/boom/{n}\"", "cause=\"disk on fire\""] {
            assert!(lines[0].contains(expected), "{expected} missing from {}", lines[0]);
        }
        for expected in ["INFO", "status=401", "code=\"bad_signature\"", "route=\"/refused\""] {
            assert!(lines[1].contains(expected), "{expected} missing from {}", lines[1]);
        }
        assert!(
            lines[2].contains("status=404") && lines[2].contains("code=\"-\"") && lines[2].contains("route=\"unmatched\""),
            "{}",
            lines[2]
        );
        assert!(!text.contains("secret-ish"), "messages quote the client and are not logged: {text}");
    }

    #[test]
    fn an_internal_error_keeps_its_cause_out_of_the_body() {
        let resp = ApiError::internal("disk on fire").into_response();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let report = resp.extensions().get::<ErrorReport>().expect("a report");
        assert_eq!((report.code, report.cause.as_deref()), (ErrorCode::Internal, Some("disk on fire")));
    }

    #[test]
    fn every_token_refusal_has_its_api_code() {
        use verifier::token::TokenError as T;
        let all = [
            T::Malformed,
            T::TooLong,
            T::BadSignature,
            T::WrongIssuer { expected: String::new(), found: String::new() },
            T::Expired { expires: 0, now: 0, leeway: 0 },
            T::NotYetValid { not_before: 0, now: 0 },
            T::WrongAudience { expected: String::new(), found: String::new() },
            T::WrongAction { allowed: String::new(), asked: String::new() },
            T::SqlMismatch,
            T::AmountOverCeiling { asked: None, ceiling: 0 },
            T::TargetMismatch,
            T::Revoked { jti: String::new() },
            T::Replayed { jti: String::new() },
            T::ReplayCacheFull,
            T::RevocationsUnknown,
        ];
        for e in all {
            let code = e.code();
            let api = ApiError::from(e);
            assert_eq!(api.code().as_str(), code);
            assert_ne!(api.status(), StatusCode::INTERNAL_SERVER_ERROR, "{code}");
        }
    }
}
