//! The trust policy file (`--policy FILE`, TOML; docs/TRUST.md and
//! docs/policy.example.toml): read into the same JSON the `policy` entry
//! holds and checked by the one strict reader,
//! [`verifier::fold::policy::Policy::from_json`]. Every value is an
//! integer or a string, so no floating point is ever parsed.

use std::path::Path;

use verifier::fold::policy::{Policy, PolicyError};

/// Why a policy text is refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyTextError {
    /// Not UTF-8.
    #[error("a policy is UTF-8 text")]
    NotUtf8,
    /// Not TOML.
    #[error("not TOML: {0}")]
    Toml(String),
    /// Not JSON.
    #[error("not JSON: {0}")]
    Json(String),
    /// Read, but not a valid policy.
    #[error("{0}")]
    Policy(#[from] PolicyError),
}

/// Reads a policy written in TOML.
pub fn from_toml(text: &str) -> Result<Policy, PolicyTextError> {
    let table = text.parse::<toml::Table>().map_err(|e| PolicyTextError::Toml(e.message().to_owned()))?;
    let json = serde_json::to_value(toml::Value::Table(table)).map_err(|e| PolicyTextError::Toml(e.to_string()))?;
    Ok(Policy::from_json(&json)?)
}

/// Reads a policy as a `PUT /v1/policy` body: TOML, or the policy's JSON
/// (what `GET /v1/policy` returns).
pub fn from_body(body: &[u8]) -> Result<Policy, PolicyTextError> {
    let text = std::str::from_utf8(body).map_err(|_| PolicyTextError::NotUtf8)?;
    if text.trim_start().starts_with('{') {
        let json = verifier::canonical::parse_strict(body).map_err(|e| PolicyTextError::Json(e.to_string()))?;
        return Ok(Policy::from_json(&json)?);
    }
    from_toml(text)
}

/// Reads the policy file at `path`.
pub fn load(path: &Path) -> anyhow::Result<Policy> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading the policy {}: {e}", path.display()))?;
    from_toml(&text).map_err(|e| anyhow::anyhow!("the policy {}: {e}", path.display()))
}

/// Puts `policy` in force (a `policy` entry when it differs from the one
/// in force; without one the policy in force stays: the built-in default
/// until a policy entry says otherwise), lets the revocation trigger ([`ledger_core::trigger`]) log
/// what the trust view implies now, then runs it on the current tokio
/// runtime.
pub async fn start_trust(log: &std::sync::Arc<ledger_core::Log>, policy: Option<&Policy>) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    if let Some(policy) = policy {
        if let Some(done) = log.set_policy(policy).await? {
            tracing::info!(index = done.index, sha256 = %verifier::entry::signing::hex(&policy.hash()), "trust policy entry appended");
        }
    }
    let trigger = ledger_core::trigger::Trigger::catch_up(std::sync::Arc::clone(log)).await;
    Ok(tokio::spawn(trigger.run()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_example_file_is_the_default_policy() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/policy.example.toml")).unwrap();
        assert_eq!(from_toml(&text).unwrap(), Policy::default());
    }

    #[test]
    fn floats_unknown_members_and_bad_toml_are_refused() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/policy.example.toml")).unwrap();
        let float = from_toml(&text.replace("initial_score = 60", "initial_score = 60.5"));
        assert!(matches!(float, Err(PolicyTextError::Policy(PolicyError::NotAnInteger(_)))), "{float:?}");
        let unknown = from_toml(&format!("{text}\nsurprise = 1\n"));
        assert!(matches!(unknown, Err(PolicyTextError::Policy(PolicyError::UnknownMember { .. }))), "{unknown:?}");
        assert!(matches!(from_toml("initial_score = "), Err(PolicyTextError::Toml(_))));
        assert!(matches!(from_body(&[0xff, 0xfe]), Err(PolicyTextError::NotUtf8)));
        assert!(matches!(from_body(b"{\"version\": 1,"), Err(PolicyTextError::Json(_))));
        let json = serde_json::to_vec(&Policy::default().to_json()).unwrap();
        assert_eq!(from_body(&json).unwrap(), Policy::default());
    }
}
