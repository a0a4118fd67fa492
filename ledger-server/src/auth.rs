//! Admin authentication: a bearer token compared in constant time.
//!
//! The token comes from `LEDGER_ADMIN_TOKEN`, else from the token file
//! (`<data-dir>/admin.token` by default), which is generated with 32 random
//! bytes and mode 0600 on first start (and printed once). A server built
//! without a token (tests) has no admin routes: they answer 403.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::extract::{BodyLimit, BodyTimeout};

/// The admin bearer token.
#[derive(Clone)]
pub struct AdminToken(String);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

impl AdminToken {
    /// A token from its text; tokens shorter than 16 characters are refused.
    pub fn new(token: impl Into<String>) -> Result<Self, String> {
        let token = token.into().trim().to_owned();
        if token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the admin token must be at least 16 printable ASCII characters".into());
        }
        Ok(Self(token))
    }

    /// Whether `presented` is this token (constant time in its contents).
    pub fn matches(&self, presented: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), presented.as_bytes());
        a.len() == b.len() && bool::from(a.ct_eq(b))
    }
}

/// Checks `Authorization: Bearer <token>` against the admin token.
pub fn require_admin(token: Option<&AdminToken>, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = token else {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "admin_disabled", "this server has no admin token; admin routes are disabled"));
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    match presented {
        Some(p) if token.matches(p.trim()) => Ok(()),
        Some(_) => Err(unauthorized("the admin token is not valid")),
        None => Err(unauthorized("admin route: send Authorization: Bearer <admin token>")),
    }
}

/// How far an agent-signed request's timestamp may be from the server's
/// clock.
pub const AGENT_REQUEST_WINDOW_MS: u64 = ledger_core::requests::REQUEST_WINDOW.as_millis() as u64;

/// Headers of an agent-signed request.
pub const AGENT_ID: &str = "x-agent-id";
/// Milliseconds since the Unix epoch.
pub const AGENT_TIMESTAMP: &str = "x-agent-timestamp";
/// base64 Ed25519 signature over [`verifier::agent::request_message`].
pub const AGENT_SIGNATURE: &str = "x-agent-signature";

/// Checks an agent-signed request (`x-agent-id`, `x-agent-timestamp`,
/// `x-agent-signature`) against the agent's key in force; returns the
/// agent id, or `None` when the request carries no agent signature.
///
/// The signature covers the log's origin and the agent id
/// ([`verifier::agent::request_message`]), so it verifies for no other log
/// and no other agent; once it verified, the log's replay cache accepts the
/// signed bytes once (409 `request_replayed` after that, 429
/// `too_many_requests` past the agent's budget). Nothing is remembered for
/// a request whose signature fails, so callers without a key cannot fill
/// the cache.
pub fn verify_agent_request(
    log: &ledger_core::Log,
    headers: &HeaderMap,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<Option<String>, ApiError> {
    let Some(agent) = headers.get(AGENT_ID) else { return Ok(None) };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let agent = agent.to_str().map_err(|_| unauthorized("x-agent-id is not text"))?.to_owned();
    let ts: u64 = header(AGENT_TIMESTAMP)
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| unauthorized("x-agent-timestamp must be milliseconds since the epoch"))?;
    let now = log.now_ms();
    if ts.abs_diff(now) > AGENT_REQUEST_WINDOW_MS {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "stale_request",
            format!("x-agent-timestamp is more than {} s from the server's clock", AGENT_REQUEST_WINDOW_MS / 1000),
        ));
    }
    let signature = header(AGENT_SIGNATURE)
        .and_then(|s| verifier::agent::parse_signature(s).ok())
        .ok_or_else(|| unauthorized("x-agent-signature must be a base64 Ed25519 signature"))?;
    let state = log
        .agent(&agent)
        .ok_or_else(|| ApiError::new(StatusCode::FORBIDDEN, "unknown_agent", format!("no passport is registered for {agent}")))?;
    if state.retired.is_some() {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "agent_retired", format!("{agent} is retired")));
    }
    let bad_signature = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            format!("the request signature does not verify with the key in force for {agent}"),
        )
    };
    // The ledger's one rule (small-order keys and R refused); weak keys are
    // also refused when registered, and records stored before that rule
    // existed are read leniently, so this is where they stop.
    let message = verifier::agent::request_message(&log.config().origin, &agent, method, path, ts, body);
    if !verifier::agent::verify_signature(&state.key, &message, &signature) {
        return Err(bad_signature());
    }
    log.admit_signed_request(&agent, &message)?;
    Ok(Some(agent))
}

/// The body of an agent-signed request (its hash is signed): any content
/// type, read up to `LIMIT` bytes (or the route's [`BodyLimit`], if
/// smaller) within the route's [`BodyTimeout`], like
/// [`JsonBytes`](crate::extract::JsonBytes), so a slow or endless body
/// cannot hold a connection and a task.
#[derive(Debug)]
pub struct SignedBody<const LIMIT: usize>(pub axum::body::Bytes);

impl<S: Send + Sync, const LIMIT: usize> axum::extract::FromRequest<S> for SignedBody<LIMIT> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, _state: &S) -> Result<Self, ApiError> {
        let limit = req.extensions().get::<BodyLimit>().map_or(LIMIT, |l| l.0.min(LIMIT));
        let timeout = req.extensions().get::<BodyTimeout>().map_or(std::time::Duration::from_secs(30), |t| t.0);
        crate::extract::read_body(req, limit, timeout).await.map(Self)
    }
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
        .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"agent-ledger-admin\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_checks() {
        let t = AdminToken::new("0123456789abcdef-token").unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(require_admin(Some(&t), &h).unwrap_err().status(), StatusCode::UNAUTHORIZED);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer 0123456789abcdef-tokeX"));
        assert_eq!(require_admin(Some(&t), &h).unwrap_err().code(), "unauthorized");
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer 0123456789abcdef-token"));
        assert!(require_admin(Some(&t), &h).is_ok());
        assert_eq!(require_admin(None, &h).unwrap_err().status(), StatusCode::FORBIDDEN);
        assert!(AdminToken::new("short").is_err());
    }
}
