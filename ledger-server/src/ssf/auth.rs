//! Who may call the stream management API and the poll endpoint: bearer
//! tokens (RFC 6750 §2.1, in the `Authorization` header only, as the CAEP
//! interoperability profile requires) with the profile's scopes.
//!
//! Tokens are configured (`--ssf-token TOKEN:SCOPES[:AUDIENCE]`, repeated,
//! or one per line in `--ssf-tokens-file`); the admin token holds
//! `ssf.manage` and `ssf.read`. A receiver is an audience: the tokens
//! configured with the same audience are one receiver's (say a managing
//! token and a poll-only one), and a token without an audience is a
//! receiver of its own, named `rcv-` and 16 hex digits of the token's
//! SHA-256. The streams a receiver creates are its own, with its audience
//! as their `aud`; another receiver's stream ids answer 404 as unknown
//! ones do (SSF §8: "authorization MUST associate a Receiver with one or
//! more stream IDs and aud values"). The admin sees and manages every
//! stream.
//!
//! | scope | endpoints |
//! |---|---|
//! | `ssf.read` | reading stream configurations and statuses |
//! | `ssf.manage` | every endpoint (reads included) |
//! | `ssf.manage.poll` | polling (RFC 8936) only |
//!
//! Refusals: a missing or unknown token is 401 `unauthorized` with
//! `WWW-Authenticate: Bearer realm="agent-ledger-ssf"` (plus
//! `error="invalid_token"` when a token was sent); a token without the
//! scope is 403 `insufficient_scope` with `error="insufficient_scope",
//! scope="…"` (RFC 6750 §3.1). Tokens are compared through their SHA-256
//! in constant time.

use axum::http::{header, HeaderMap, HeaderValue};
use sha2::Digest as _;
use subtle::ConstantTimeEq as _;
use verifier::wire::ErrorCode;

use crate::error::ApiError;

const REALM: &str = "agent-ledger-ssf";

/// A scope of the CAEP interoperability profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Reads of stream configurations and statuses.
    Read,
    /// Everything.
    Manage,
    /// Polling only.
    ManagePoll,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Self; 3] = [Self::Read, Self::Manage, Self::ManagePoll];

    /// The scope's name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Read => "ssf.read",
            Self::Manage => "ssf.manage",
            Self::ManagePoll => "ssf.manage.poll",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// A configured bearer token: one receiver.
#[derive(Clone)]
pub struct ReceiverToken {
    digest: [u8; 32],
    scopes: Vec<Scope>,
    receiver: String,
    audience: String,
    admin: bool,
}

impl std::fmt::Debug for ReceiverToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiverToken").field("receiver", &self.receiver).field("scopes", &self.scopes).finish_non_exhaustive()
    }
}

fn check_token(token: &str) -> Result<(), String> {
    if token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
        return Err("an SSF token must be at least 16 printable ASCII characters without ':'".into());
    }
    Ok(())
}

impl ReceiverToken {
    /// Parses `TOKEN:SCOPE[,SCOPE…][:AUDIENCE]`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut parts = spec.trim().splitn(3, ':');
        let token = parts.next().unwrap_or_default();
        check_token(token)?;
        let scopes = parts.next().ok_or("an SSF token is TOKEN:SCOPES[:AUDIENCE]")?;
        let scopes = scopes
            .split(',')
            .map(|s| Scope::parse(s.trim()).ok_or_else(|| format!("unknown SSF scope {s:?} (ssf.manage, ssf.read, ssf.manage.poll)")))
            .collect::<Result<Vec<_>, _>>()?;
        let mut receiver = Self::new(token, scopes, false);
        if let Some(audience) = parts.next() {
            if audience.is_empty() || audience.len() > 512 || !audience.bytes().all(|b| b.is_ascii_graphic()) {
                return Err("an SSF token's audience must be 1 to 512 printable ASCII characters".into());
            }
            audience.clone_into(&mut receiver.audience);
            audience.clone_into(&mut receiver.receiver);
        }
        Ok(receiver)
    }

    /// The admin token, with every scope.
    pub fn admin(token: &str) -> Self {
        Self::new(token.trim(), vec![Scope::Manage, Scope::Read], true)
    }

    fn new(token: &str, scopes: Vec<Scope>, admin: bool) -> Self {
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let receiver = format!("rcv-{}", digest.iter().take(8).map(|b| format!("{b:02x}")).collect::<String>());
        Self { digest, scopes, audience: receiver.clone(), receiver, admin }
    }

    /// The receiver's id.
    pub fn receiver(&self) -> &str {
        &self.receiver
    }
}

/// Parses a tokens file: one `TOKEN:SCOPES[:AUDIENCE]` per line; blank
/// lines and lines starting with `#` are skipped.
pub fn parse_tokens_file(text: &str) -> Result<Vec<ReceiverToken>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(n, l)| ReceiverToken::parse(l).map_err(|e| format!("line {}: {e}", n + 1)))
        .collect()
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The receiver's id: the owner of the streams it creates.
    pub receiver: String,
    /// The `aud` of the streams it creates.
    pub audience: String,
    /// Whether it is the admin (every stream is its).
    pub admin: bool,
    scopes: Vec<Scope>,
}

impl Caller {
    /// 403 `insufficient_scope` unless the caller holds one of `scopes`.
    pub fn require(&self, scopes: &[Scope]) -> Result<(), ApiError> {
        if self.scopes.iter().any(|s| scopes.contains(s)) {
            return Ok(());
        }
        let names: Vec<&str> = scopes.iter().map(|s| s.name()).collect();
        let challenge = format!("Bearer realm=\"{REALM}\", error=\"insufficient_scope\", scope=\"{}\"", names.join(" "));
        Err(ApiError::new(ErrorCode::InsufficientScope, format!("this endpoint needs the scope {}", names.join(" or ")))
            .with_www_authenticate(HeaderValue::from_str(&challenge).unwrap_or(HeaderValue::from_static("Bearer"))))
    }

    /// Whether the caller may see and manage a stream owned by `owner`.
    pub fn owns(&self, owner: &str) -> bool {
        self.admin || self.receiver == owner
    }
}

/// Authenticates the bearer token of `headers` against `tokens`.
pub fn authenticate(tokens: &[ReceiverToken], headers: &HeaderMap) -> Result<Caller, ApiError> {
    let unauthorized = |message: &str, challenge: &'static str| {
        ApiError::new(ErrorCode::Unauthorized, message).with_www_authenticate(HeaderValue::from_static(challenge))
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let Some(presented) = presented else {
        return Err(unauthorized("send Authorization: Bearer <SSF token>", "Bearer realm=\"agent-ledger-ssf\""));
    };
    let digest: [u8; 32] = sha2::Sha256::digest(presented.as_bytes()).into();
    // Every configured token is compared, so the time taken does not say
    // which one (or whether any) matched.
    let mut found = None;
    for token in tokens {
        if bool::from(token.digest.ct_eq(&digest)) {
            found = Some(token);
        }
    }
    let token =
        found.ok_or_else(|| unauthorized("the SSF token is not valid", "Bearer realm=\"agent-ledger-ssf\", error=\"invalid_token\""))?;
    Ok(Caller { receiver: token.receiver.clone(), audience: token.audience.clone(), admin: token.admin, scopes: token.scopes.clone() })
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;

    fn bearer(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
        h
    }

    #[test]
    fn tokens_parse_with_scopes_and_audience() {
        let t = ReceiverToken::parse("reader-token-0123456789:ssf.read").unwrap();
        assert_eq!(t.scopes, [Scope::Read]);
        assert!(t.receiver.starts_with("rcv-") && t.receiver.len() == 20);
        assert_eq!(t.audience, t.receiver);
        let t = ReceiverToken::parse("manager-token-0123456789:ssf.manage,ssf.read:https://rx.example/caep").unwrap();
        assert_eq!((t.scopes.as_slice(), t.audience.as_str()), ([Scope::Manage, Scope::Read].as_slice(), "https://rx.example/caep"));
        assert_eq!(t.receiver, "https://rx.example/caep", "a receiver is its audience");
        for bad in
            ["short:ssf.read", "manager-token-0123456789", "manager-token-0123456789:ssf.write", "manager-token-0123456789:ssf.read:"]
        {
            assert!(ReceiverToken::parse(bad).is_err(), "{bad}");
        }
        let file = "# receivers\n\nreader-token-0123456789:ssf.read\n  manager-token-0123456789:ssf.manage\n";
        assert_eq!(parse_tokens_file(file).unwrap().len(), 2);
        assert!(parse_tokens_file("x:y\n").unwrap_err().starts_with("line 1:"));
    }

    #[test]
    fn bearer_tokens_and_scopes() {
        let tokens = [ReceiverToken::parse("reader-token-0123456789:ssf.read").unwrap(), ReceiverToken::admin("admin-token-0123456789")];
        let missing = authenticate(&tokens, &HeaderMap::new()).unwrap_err();
        assert_eq!((missing.status(), missing.code()), (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized));
        let wrong = authenticate(&tokens, &bearer("reader-token-012345678X")).unwrap_err();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        let reader = authenticate(&tokens, &bearer("reader-token-0123456789")).unwrap();
        assert!(reader.require(&[Scope::Read, Scope::Manage]).is_ok());
        let refused = reader.require(&[Scope::Manage]).unwrap_err();
        assert_eq!((refused.status(), refused.code()), (StatusCode::FORBIDDEN, ErrorCode::InsufficientScope));
        let admin = authenticate(&tokens, &bearer("admin-token-0123456789")).unwrap();
        assert!(admin.admin && admin.owns(&reader.receiver) && !reader.owns(&admin.receiver));
    }
}
