//! Agent ids: SPIFFE IDs (github.com/spiffe/spiffe, standards/SPIFFE-ID.md)
//! of the profile `spiffe://<trust-domain>/agent/<name>`, checked once when
//! an [`AgentId`] is parsed ([`AgentId::parse`]), so an id that came from a
//! request, a configuration or the SDK is always a valid one. The one
//! exception is [`AgentId::from_stored_unchecked`]: an auditor replaying a
//! log's leaves takes the id as the log stored it, so that it can report an
//! id the log should have refused instead of stopping at it.

use alloc::string::{String, ToString};
use core::fmt;
use core::str::FromStr;

/// Longest SPIFFE ID accepted, in bytes (the specification's URI limit).
pub const MAX_SPIFFE_ID_BYTES: usize = 2048;

/// Why a string is not a SPIFFE agent id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AgentIdError {
    /// Does not start with `spiffe://`.
    #[error("must start with spiffe://")]
    Scheme,
    /// Longer than 2048 bytes.
    #[error("longer than {MAX_SPIFFE_ID_BYTES} bytes")]
    TooLong,
    /// Empty trust domain or characters outside `[a-z0-9._-]`.
    #[error("trust domain must be non-empty lowercase letters, digits, '.', '-' or '_'")]
    TrustDomain,
    /// An empty, `.` or `..` path segment, or characters outside `[A-Za-z0-9._-]`.
    #[error("path segments must be non-empty letters, digits, '.', '-' or '_' and not '.' or '..'")]
    Path,
    /// The path is not `/agent/<name>`.
    #[error("agent ids have the path /agent/<name>")]
    NotAnAgent,
}

const SCHEME: &str = "spiffe://";

/// Checks a SPIFFE ID and that its path is `/agent/<name>`; returns the
/// length of the trust domain.
fn check(id: &str) -> Result<usize, AgentIdError> {
    if id.len() > MAX_SPIFFE_ID_BYTES {
        return Err(AgentIdError::TooLong);
    }
    let rest = id.strip_prefix(SCHEME).ok_or(AgentIdError::Scheme)?;
    let (domain, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    check_trust_domain(domain)?;
    let segment_ok =
        |seg: &str| !seg.is_empty() && seg != "." && seg != ".." && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    let mut segments = path.strip_prefix('/').map(|p| p.split('/'));
    if let Some(all) = segments.clone() {
        for seg in all {
            if !segment_ok(seg) {
                return Err(AgentIdError::Path);
            }
        }
    }
    let first = segments.as_mut().and_then(Iterator::next);
    let name = segments.as_mut().and_then(Iterator::next);
    let extra = segments.as_mut().and_then(Iterator::next);
    match (first, name, extra) {
        (Some("agent"), Some(_), None) => Ok(domain.len()),
        _ => Err(AgentIdError::NotAnAgent),
    }
}

/// Checks a SPIFFE trust domain (`example.org`): non-empty, lowercase
/// letters, digits, `.`, `-` or `_`, as in an [`AgentId`].
pub fn check_trust_domain(domain: &str) -> Result<(), AgentIdError> {
    if domain.is_empty()
        || domain.len() > MAX_SPIFFE_ID_BYTES
        || !domain.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    {
        return Err(AgentIdError::TrustDomain);
    }
    Ok(())
}

/// A valid agent id (`spiffe://<trust-domain>/agent/<name>`). Compared,
/// ordered and hashed as its text (the trust domain's length follows from
/// it), so maps keyed by ids can be looked up with a `&str`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AgentId {
    id: String,
    domain_len: usize,
}

impl AgentId {
    /// Parses and checks an agent id.
    pub fn parse(id: &str) -> Result<Self, AgentIdError> {
        let domain_len = check(id)?;
        Ok(Self { id: id.to_string(), domain_len })
    }

    /// An id as a signed leaf holds it, not checked: an auditor replaying
    /// what a log stored ([`crate::entry::Form::Audit`]) reports an id the
    /// log should have refused (escaped) instead of stopping at it. Never
    /// for ids that arrive in a request.
    pub fn from_stored_unchecked(id: &str) -> Self {
        let rest = id.strip_prefix(SCHEME).unwrap_or_default();
        let domain_len = if id.starts_with(SCHEME) { rest.find('/').unwrap_or(rest.len()) } else { 0 };
        Self { id: id.to_string(), domain_len }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.id
    }

    /// The trust domain (`example.org` of `spiffe://example.org/agent/a`).
    pub fn trust_domain(&self) -> &str {
        self.id.get(SCHEME.len()..SCHEME.len() + self.domain_len).unwrap_or_default()
    }

    /// The agent's name (the last path segment).
    pub fn name(&self) -> &str {
        self.id.get(SCHEME.len() + self.domain_len + "/agent/".len()..).unwrap_or_default()
    }

    /// The id as an owned string.
    pub fn into_string(self) -> String {
        self.id
    }
}

impl core::hash::Hash for AgentId {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        // As `str` hashes, which `Borrow<str>` requires.
        self.id.hash(state);
    }
}

impl fmt::Debug for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.id, f)
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

impl AsRef<str> for AgentId {
    fn as_ref(&self) -> &str {
        &self.id
    }
}

impl core::borrow::Borrow<str> for AgentId {
    fn borrow(&self) -> &str {
        &self.id
    }
}

impl FromStr for AgentId {
    type Err = AgentIdError;

    fn from_str(s: &str) -> Result<Self, AgentIdError> {
        Self::parse(s)
    }
}

impl TryFrom<String> for AgentId {
    type Error = AgentIdError;

    fn try_from(id: String) -> Result<Self, AgentIdError> {
        let domain_len = check(&id)?;
        Ok(Self { id, domain_len })
    }
}

impl From<AgentId> for String {
    fn from(id: AgentId) -> String {
        id.id
    }
}

impl PartialEq<str> for AgentId {
    fn eq(&self, other: &str) -> bool {
        self.id == other
    }
}

impl PartialEq<&str> for AgentId {
    fn eq(&self, other: &&str) -> bool {
        self.id == *other
    }
}

impl PartialEq<String> for AgentId {
    fn eq(&self, other: &String) -> bool {
        self.id == *other
    }
}

impl serde::Serialize for AgentId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.id)
    }
}

impl<'de> serde::Deserialize<'de> for AgentId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let id = String::deserialize(d)?;
        Self::try_from(id).map_err(serde::de::Error::custom)
    }
}

/// Percent-encodes an agent id (or any text) for one URL path segment:
/// everything but RFC 3986 unreserved characters.
pub fn encode_id(id: &str) -> alloc::string::String {
    use core::fmt::Write as _;
    let mut out = alloc::string::String::with_capacity(id.len() * 3);
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn accepts_agent_ids() {
        for ok in ["spiffe://example.org/agent/billing", "spiffe://prod.acme-corp_1/agent/Agent.v2-x_y"] {
            assert_eq!(AgentId::parse(ok).map(|id| id.to_string()), Ok(ok.to_string()), "{ok}");
        }
        let id = AgentId::parse("spiffe://prod.acme-corp_1/agent/Agent.v2-x_y").unwrap();
        assert_eq!((id.trust_domain(), id.name()), ("prod.acme-corp_1", "Agent.v2-x_y"));
        assert_eq!(id.to_string(), "spiffe://prod.acme-corp_1/agent/Agent.v2-x_y");
        assert_eq!(id.as_ref().parse::<AgentId>(), Ok(id.clone()));
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"spiffe://prod.acme-corp_1/agent/Agent.v2-x_y\"");
        assert_eq!(serde_json::from_str::<AgentId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<AgentId>("\"spiffe://example.org/x\"").is_err());
    }

    #[test]
    fn rejects_everything_else() {
        let cases = [
            ("http://example.org/agent/a", AgentIdError::Scheme),
            ("SPIFFE://example.org/agent/a", AgentIdError::Scheme),
            ("spiffe:///agent/a", AgentIdError::TrustDomain),
            ("spiffe://Example.org/agent/a", AgentIdError::TrustDomain),
            ("spiffe://example.org:8080/agent/a", AgentIdError::TrustDomain),
            ("spiffe://user@example.org/agent/a", AgentIdError::TrustDomain),
            ("spiffe://example.org/agent/", AgentIdError::Path),
            ("spiffe://example.org/agent/../x", AgentIdError::Path),
            ("spiffe://example.org/agent/a?x=1", AgentIdError::Path),
            ("spiffe://example.org/agent/a b", AgentIdError::Path),
            ("spiffe://example.org", AgentIdError::NotAnAgent),
            ("spiffe://example.org/agent", AgentIdError::NotAnAgent),
            ("spiffe://example.org/workload/a", AgentIdError::NotAnAgent),
            ("spiffe://example.org/agent/a/b", AgentIdError::NotAnAgent),
        ];
        for (id, want) in cases {
            assert_eq!(AgentId::parse(id), Err(want), "{id}");
        }
        assert_eq!(AgentId::parse(&format!("spiffe://example.org/agent/{}", "a".repeat(2048))), Err(AgentIdError::TooLong));
    }
}
