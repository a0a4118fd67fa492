//! SPIFFE IDs (github.com/spiffe/spiffe, standards/SPIFFE-ID.md) and the
//! agent id profile `spiffe://<trust-domain>/agent/<name>`.

/// Longest SPIFFE ID accepted, in bytes (the specification's URI limit).
pub const MAX_SPIFFE_ID_BYTES: usize = 2048;

/// Why a string is not a SPIFFE agent id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpiffeIdError {
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

/// Checks a SPIFFE ID and that its path is `/agent/<name>`.
pub fn validate_agent_id(id: &str) -> Result<(), SpiffeIdError> {
    if id.len() > MAX_SPIFFE_ID_BYTES {
        return Err(SpiffeIdError::TooLong);
    }
    let rest = id.strip_prefix("spiffe://").ok_or(SpiffeIdError::Scheme)?;
    let (domain, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if domain.is_empty() || !domain.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)) {
        return Err(SpiffeIdError::TrustDomain);
    }
    let segments: Vec<&str> = if path.is_empty() { Vec::new() } else { path[1..].split('/').collect() };
    for seg in &segments {
        if seg.is_empty() || *seg == "." || *seg == ".." || !seg.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
            return Err(SpiffeIdError::Path);
        }
    }
    match segments.as_slice() {
        ["agent", _name] => Ok(()),
        _ => Err(SpiffeIdError::NotAnAgent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_agent_ids() {
        for ok in ["spiffe://example.org/agent/billing", "spiffe://prod.acme-corp_1/agent/Agent.v2-x_y"] {
            assert_eq!(validate_agent_id(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        let cases = [
            ("http://example.org/agent/a", SpiffeIdError::Scheme),
            ("SPIFFE://example.org/agent/a", SpiffeIdError::Scheme),
            ("spiffe:///agent/a", SpiffeIdError::TrustDomain),
            ("spiffe://Example.org/agent/a", SpiffeIdError::TrustDomain),
            ("spiffe://example.org:8080/agent/a", SpiffeIdError::TrustDomain),
            ("spiffe://user@example.org/agent/a", SpiffeIdError::TrustDomain),
            ("spiffe://example.org/agent/", SpiffeIdError::Path),
            ("spiffe://example.org/agent/../x", SpiffeIdError::Path),
            ("spiffe://example.org/agent/a?x=1", SpiffeIdError::Path),
            ("spiffe://example.org/agent/a b", SpiffeIdError::Path),
            ("spiffe://example.org", SpiffeIdError::NotAnAgent),
            ("spiffe://example.org/agent", SpiffeIdError::NotAnAgent),
            ("spiffe://example.org/workload/a", SpiffeIdError::NotAnAgent),
            ("spiffe://example.org/agent/a/b", SpiffeIdError::NotAnAgent),
        ];
        for (id, want) in cases {
            assert_eq!(validate_agent_id(id), Err(want), "{id}");
        }
        assert_eq!(validate_agent_id(&format!("spiffe://example.org/agent/{}", "a".repeat(2048))), Err(SpiffeIdError::TooLong));
    }
}
