//! Agent-signed HTTP requests: the three headers with which an agent
//! authenticates a request that is not itself a signed entry (nonce draws,
//! commits of hidden values, disclosures).
//!
//! The signature covers [`request_message`]: the log's
//! origin, the agent id, the method, the path, the timestamp and the body's
//! hash, so it is good for one request to one log only. The log accepts a
//! given signed request once, and Ed25519 is deterministic, so two equal
//! requests signed in the same millisecond would be one:
//! [`RequestSignature::sign`] takes its timestamps from a clock that
//! strictly increases within the process.
//!
//! The SDK signs its requests here; tests and the load generator use the
//! same code, so there is one client-side implementation of the scheme the
//! server checks (`ledger-server`'s `auth` module).

use std::sync::atomic::{AtomicU64, Ordering};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use verifier::entry::signing::{request_message, HEADER_AGENT_ID, HEADER_AGENT_SIGNATURE, HEADER_AGENT_TIMESTAMP};
use verifier::AgentId;

/// The authentication of one agent-signed request, as sent in its headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestSignature {
    /// The agent the request is sent as (`x-agent-id`).
    pub agent: AgentId,
    /// Milliseconds since the Unix epoch (`x-agent-timestamp`); the log
    /// accepts it only within its request window.
    pub timestamp_ms: u64,
    /// Base64 of the Ed25519 signature over the request message
    /// (`x-agent-signature`).
    pub signature: String,
}

impl RequestSignature {
    /// Signs `method path` with `body`, sent by `agent` to the log of
    /// `origin`, now ([`RequestSignature::next_timestamp_ms`]).
    pub fn sign(origin: &str, agent: &AgentId, key: &SigningKey, method: &str, path: &str, body: &[u8]) -> RequestSignature {
        Self::sign_at(origin, agent, key, method, path, Self::next_timestamp_ms(), body)
    }

    /// [`RequestSignature::sign`] at a given time (tests of the request
    /// window and of replays choose it).
    pub fn sign_at(
        origin: &str,
        agent: &AgentId,
        key: &SigningKey,
        method: &str,
        path: &str,
        timestamp_ms: u64,
        body: &[u8],
    ) -> RequestSignature {
        let message = request_message(origin, agent.as_str(), method, path, timestamp_ms, body);
        RequestSignature { agent: agent.clone(), timestamp_ms, signature: B64.encode(key.sign(&message).to_bytes()) }
    }

    /// The current time in milliseconds since the Unix epoch, strictly
    /// greater than any value this function returned before in this process.
    pub fn next_timestamp_ms() -> u64 {
        static LAST: AtomicU64 = AtomicU64::new(0);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let previous = LAST.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| Some(now.max(last.saturating_add(1)))).unwrap_or(now);
        now.max(previous.saturating_add(1))
    }

    /// The headers to add to the request, as `(name, value)` pairs.
    pub fn headers(&self) -> [(&'static str, String); 3] {
        [
            (HEADER_AGENT_ID, self.agent.to_string()),
            (HEADER_AGENT_TIMESTAMP, self.timestamp_ms.to_string()),
            (HEADER_AGENT_SIGNATURE, self.signature.clone()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_strictly_increase() {
        let mut last = RequestSignature::next_timestamp_ms();
        for _ in 0..1000 {
            let next = RequestSignature::next_timestamp_ms();
            assert!(next > last);
            last = next;
        }
    }

    #[test]
    fn the_signature_verifies_over_the_request_message() {
        use base64::Engine as _;
        let key = SigningKey::from_bytes(&[7; 32]);
        let agent = AgentId::parse("spiffe://o.example/agent/a").unwrap();
        let signed = RequestSignature::sign_at("o.example/log", &agent, &key, "POST", "/v1/x", 42, b"{}");
        let message = request_message("o.example/log", "spiffe://o.example/agent/a", "POST", "/v1/x", 42, b"{}");
        let bytes: [u8; 64] = B64.decode(&signed.signature).ok().and_then(|b| b.try_into().ok()).expect("64 bytes of base64");
        assert!(key.verifying_key().verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&bytes)).is_ok());
        let headers = signed.headers();
        assert_eq!(headers[0], ("x-agent-id", "spiffe://o.example/agent/a".to_owned()));
        assert_eq!(headers[1], ("x-agent-timestamp", "42".to_owned()));
        // The wire spelling of the headers, defined once in the verifier.
        assert_eq!(
            [HEADER_AGENT_ID, HEADER_AGENT_TIMESTAMP, HEADER_AGENT_SIGNATURE],
            ["x-agent-id", "x-agent-timestamp", "x-agent-signature"]
        );
    }
}
