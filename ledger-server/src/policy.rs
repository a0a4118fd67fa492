//! The trust policy file (`--policy FILE`, TOML; docs/TRUST.md and
//! docs/policy.example.toml): read into the same JSON the `policy` entry
//! holds and checked by the one strict reader,
//! [`verifier::fold::policy::Policy::from_json`]. Every value is an
//! integer or a string, so no floating point is ever parsed.

use std::path::Path;

use verifier::fold::policy::Policy;

/// Reads a policy written in TOML.
pub fn from_toml(text: &str) -> Result<Policy, String> {
    let value: toml::Value = text.parse::<toml::Table>().map(toml::Value::Table).map_err(|e| format!("not TOML: {}", e.message()))?;
    let json = serde_json::to_value(value).map_err(|e| e.to_string())?;
    Policy::from_json(&json).map_err(|e| e.to_string())
}

/// Reads a policy as a `PUT /v1/policy` body: TOML, or the policy's JSON
/// (what `GET /v1/policy` returns).
pub fn from_body(body: &[u8]) -> Result<Policy, String> {
    let text = std::str::from_utf8(body).map_err(|_| "a policy is UTF-8 text".to_owned())?;
    if text.trim_start().starts_with('{') {
        let json = verifier::canonical::parse_strict(body).map_err(|e| format!("not JSON: {e}"))?;
        return Policy::from_json(&json).map_err(|e| e.to_string());
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
        assert!(from_toml(&text.replace("initial_score = 60", "initial_score = 60.5")).is_err());
        assert!(from_toml(&format!("{text}\nsurprise = 1\n")).is_err());
        assert!(from_toml("initial_score = ").is_err());
        let json = serde_json::to_vec(&Policy::default().to_json()).unwrap();
        assert_eq!(from_body(&json).unwrap(), Policy::default());
    }
}
