//! Authentication, as axum extractors that run before the handler:
//!
//! - [`AdminAuth`]: the admin bearer token, compared in constant time,
//!   checked before the request body is read. The token comes from
//!   `LEDGER_ADMIN_TOKEN`, else from the token file
//!   (`<data-dir>/admin.token` by default), which is generated with 32
//!   random bytes and mode 0600 on first start. A server built without a
//!   token (tests) has no admin routes: they answer 403 `admin_disabled`.
//! - [`SignedAgent`]: a request signed by an agent (`x-agent-id`,
//!   `x-agent-timestamp`, `x-agent-signature`, docs/FORMAT.md "Signed
//!   requests"). The signature covers the body's hash, so the body is read
//!   first (once, bounded and timed), then the log checks the timestamp
//!   window, the agent, the key in force and the replay cache
//!   ([`ledger_core::Log::authenticate_request`]), all before the handler
//!   parses anything or does any expensive work.
//! - [`AdminOrAgent`]: either of the two, for routes both may call.
//!
//! The extractors read the router's state through [`AuthState`], so this
//! module does not depend on the routes.

use std::marker::PhantomData;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use subtle::ConstantTimeEq;
use verifier::entry::signing::{HEADER_AGENT_ID, HEADER_AGENT_SIGNATURE, HEADER_AGENT_TIMESTAMP};
use verifier::wire::ErrorCode;
use verifier::AgentId;

use crate::error::ApiError;
use crate::extract::{read_body, require_json};

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

/// What the extractors of this module need from the router's state.
pub trait AuthState: Send + Sync {
    /// The admin token; `None` disables admin routes.
    fn admin_token(&self) -> Option<&AdminToken>;
    /// The log: agents' keys in force, its origin and its replay cache.
    fn log(&self) -> &ledger_core::Log;
}

/// A request that carried the admin bearer token (`Authorization: Bearer
/// <token>`): 401 `unauthorized` with `WWW-Authenticate: Bearer` for a
/// missing or wrong token, 403 `admin_disabled` when the server has none.
#[derive(Clone, Copy, Debug)]
pub struct AdminAuth;

impl<S: AuthState> FromRequestParts<S> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        require_admin(state.admin_token(), &parts.headers).map(|()| Self)
    }
}

fn require_admin(token: Option<&AdminToken>, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = token else {
        return Err(ApiError::new(ErrorCode::AdminDisabled, "this server has no admin token; admin routes are disabled"));
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

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, message).with_bearer_challenge()
}

/// A route that takes agent-signed requests: how it reads their body and
/// what it answers to a request that carries no agent signature.
pub trait SignedRoute {
    /// Most body bytes (the route's `BodyLimit` applies too, if smaller).
    const MAX_BODY: usize;
    /// Whether the body must be `application/json` (415 otherwise).
    const JSON: bool;
    /// The 401 code for a request without `x-agent-id`.
    const UNSIGNED: ErrorCode;
    /// What the request is, as the 401 message names it ("a nonce request").
    const REQUEST: &'static str;
}

/// An agent-signed request to route `R`, verified: the signing agent and
/// the body its signature covers (read once).
#[derive(Debug)]
pub struct SignedAgent<R> {
    /// The agent whose key in force signed the request.
    pub agent: AgentId,
    /// The request body.
    pub body: Bytes,
    route: PhantomData<R>,
}

impl<S: AuthState, R: SignedRoute> FromRequest<S> for SignedAgent<R> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let body = signed_body(&parts, body, R::JSON, R::MAX_BODY).await?;
        match verify_agent_request(state.log(), &parts, &body)? {
            Some(agent) => Ok(Self { agent, body, route: PhantomData }),
            None => Err(ApiError::new(
                R::UNSIGNED,
                format!("{} is signed by its agent (x-agent-id, x-agent-timestamp, x-agent-signature)", R::REQUEST),
            )),
        }
    }
}

/// Who sent a request that the admin or an agent may send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The admin (bearer token).
    Admin,
    /// An agent (signed request), by id.
    Agent(AgentId),
}

/// A JSON request from the admin or an agent: an agent-signed request when
/// it carries `x-agent-id` (verified as for [`SignedAgent`]), else one that
/// must carry the admin token (as for [`AdminAuth`]).
#[derive(Debug)]
pub struct AdminOrAgent {
    /// Who sent it.
    pub caller: Caller,
    /// The request body.
    pub body: Bytes,
}

impl<S: AuthState> FromRequest<S> for AdminOrAgent {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        // A read (GET) has no body to type.
        let json = parts.method != axum::http::Method::GET;
        let body = signed_body(&parts, body, json, usize::MAX).await?;
        let caller = match verify_agent_request(state.log(), &parts, &body)? {
            Some(agent) => Caller::Agent(agent),
            None => {
                require_admin(state.admin_token(), &parts.headers)?;
                Caller::Admin
            }
        };
        Ok(Self { caller, body })
    }
}

async fn signed_body(parts: &Parts, body: Body, json: bool, max: usize) -> Result<Bytes, ApiError> {
    if json {
        require_json(&parts.headers)?;
    }
    read_body(parts, body, max).await
}

/// Checks an agent-signed request with [`ledger_core::Log::authenticate_request`]
/// (the window, the agent registered and not retired, the signature over
/// [`verifier::entry::signing::request_message`], the replay cache) and
/// returns the agent id, or `None` when the request carries no agent
/// signature. Only the headers' text is read here; the refusals are the
/// log's, mapped to their codes by `ApiError`'s `From<RequestError>`.
fn verify_agent_request(log: &ledger_core::Log, parts: &Parts, body: &[u8]) -> Result<Option<AgentId>, ApiError> {
    let headers = &parts.headers;
    let Some(agent) = headers.get(HEADER_AGENT_ID) else { return Ok(None) };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let agent = agent.to_str().map_err(|_| unauthorized("x-agent-id is not text"))?;
    let ts: u64 = header(HEADER_AGENT_TIMESTAMP)
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| unauthorized("x-agent-timestamp must be milliseconds since the epoch"))?;
    // A missing signature header is a malformed one (empty text).
    let signature = header(HEADER_AGENT_SIGNATURE).unwrap_or_default();
    let agent = log.authenticate_request(agent, parts.method.as_str(), parts.uri.path(), ts, signature, body)?;
    Ok(Some(agent))
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderValue, StatusCode};

    use super::*;

    #[test]
    fn bearer_checks() {
        let t = AdminToken::new("0123456789abcdef-token").unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(require_admin(Some(&t), &h).unwrap_err().status(), StatusCode::UNAUTHORIZED);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer 0123456789abcdef-tokeX"));
        assert_eq!(require_admin(Some(&t), &h).unwrap_err().code(), ErrorCode::Unauthorized);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer 0123456789abcdef-token"));
        assert!(require_admin(Some(&t), &h).is_ok());
        let disabled = require_admin(None, &h).unwrap_err();
        assert_eq!((disabled.status(), disabled.code()), (StatusCode::FORBIDDEN, ErrorCode::AdminDisabled));
        assert!(AdminToken::new("short").is_err());
    }
}
