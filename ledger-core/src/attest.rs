//! Continuous self-attestation: single-use nonces and attestation entries.
//!
//! `POST /v1/agents/{id}/nonce` issues a random 32-byte nonce, bound to the
//! agent, valid for a short time and usable once; the store is bounded per
//! agent ([`crate::nonces::NONCES_PER_AGENT`]: an agent's extra draws drop its own nonces)
//! and as a whole (used and expired nonces go first; a live nonce is never
//! dropped for another agent's). An attestation names its nonce; the log
//! consumes it, checks the measurements and evidence against the passport
//! ([`verifier::entry::attestation::attestation_failures`]) and records the attestation
//! with its verdict either way: a failed attestation is evidence too. If
//! the attestation cannot be recorded at all, its nonce is given back.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::Value;

use verifier::agent_id::AgentId;
use verifier::entry::attestation::{Attestation, NONCE_LEN};
use verifier::entry::{AgentError, Entry, EntryError, ShapeError};
use verifier::fold::registry;

use crate::entry::EntryAuth;

impl crate::Log {
    /// Issues a nonce for a registered, active agent.
    pub fn issue_nonce(&self, agent: &AgentId) -> Result<[u8; NONCE_LEN], crate::Error> {
        registry::active(agent, self.agent(agent).as_ref())?;
        self.nonces.issue(agent.as_str()).map_err(crate::Error::Nonce)
    }

    /// Checks and records an attestation. The signature, the agent and the
    /// nonce are checked first (refused: nothing recorded); then the
    /// measurements and evidence decide the verdict, and the attestation is
    /// recorded either way. A failing verdict returns
    /// [`crate::Error::AttestationFailed`] with the index it was recorded at.
    pub async fn attest(&self, submitted: &Value) -> Result<(crate::Appended, Value), crate::Error> {
        let entry = Entry::Attestation(Attestation::from_submitted(submitted)?);
        let auth = EntryAuth::of(&entry).ok_or(EntryError::Agent(AgentError::NotAString("signature")))?;
        let Entry::Attestation(Attestation { agent, members: obj, .. }) = entry else {
            return Err(EntryError::Shape(ShapeError::NotAnAttestation).into());
        };
        let state = self.agent(&agent);
        let state = registry::active(&agent, state.as_ref())?;
        // Checked here, before the nonce is spent, so a forger cannot burn
        // an agent's nonces (and before the sequence number, so a forgery
        // is reported as one); the sequencer decides the entry again
        // against the key in force.
        if !auth.verify(&self.config().origin, &state.key) {
            return Err(crate::Error::BadSignature(agent));
        }
        registry::check_seq(&agent, state.last_seq, auth.seq())?;
        let agent = agent.as_str();
        let nonce = obj.get("nonce").and_then(Value::as_str).and_then(|n| B64.decode(n).ok()).unwrap_or_default();
        self.nonces.consume(agent, &nonce).map_err(crate::Error::Nonce)?;
        let reasons = verifier::entry::attestation::attestation_failures(&obj, &state.passport, &state.key);
        let verdict = verifier::entry::attestation::verdict(&obj, &reasons);
        let mut leaf = obj;
        leaf.insert("verdict".into(), verdict.clone());
        let recorded = async {
            let entry = crate::NewEntry::from_log(&leaf, Some(auth), None)?;
            self.append(vec![entry]).await?.into_iter().next().ok_or(crate::Error::EmptyBatch)
        };
        // An error here means the attestation was not recorded (refused by
        // the sequencer, pushed back, shut down, or its commit failed), so
        // the agent gets its nonce back to retry. If this future is dropped
        // instead, the entry may still commit: the nonce stays spent.
        let appended = recorded.await.inspect_err(|_| self.nonces.release(agent, &nonce))?;
        if reasons.is_empty() {
            Ok((appended, verdict))
        } else {
            Err(crate::Error::AttestationFailed { index: appended.index, reasons })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Finding 15: a nonce spent on an attestation the log could not record
    /// (here: the log is shutting down) is given back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_nonce_is_given_back_when_the_attestation_is_not_recorded() {
        const ORIGIN: &str = "nonces.example/log";
        let agent = "spiffe://example.org/agent/a";
        let id = AgentId::parse(agent).unwrap();
        let key = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
        let signer = verifier::note::NoteSigner::new(ORIGIN, ed25519_dalek::SigningKey::from_bytes(&[9; 32])).unwrap();
        let config = crate::LogConfig { origin: ORIGIN.into(), ..crate::LogConfig::default() };
        let log = crate::Log::open(std::sync::Arc::new(crate::store::MemoryStore::new()), signer, config, None).unwrap();
        let passport = verifier::entry::passport::Passport {
            agent: id.clone(),
            public_key: key.verifying_key(),
            code_hash: [0xc0; 32],
            model_hash: None,
            owner: "o".into(),
            purpose: "p".into(),
            tpm_ak: None,
        };
        log.register(passport).await.unwrap();
        let nonce = log.issue_nonce(&id).unwrap();
        let mut att = serde_json::json!({"kind": "attestation", "agent": agent, "nonce": B64.encode(nonce),
            "code_hash": "c0".repeat(32), "runtime": {"os": "linux", "version": "6", "image_digest": "sha256:x"},
            "behaviour": {"digest": "00".repeat(32), "calls": 1, "distinct": 1}, "evidence": {"type": "software"}, "seq": 1});
        verifier::entry::signing::sign_entry(att.as_object_mut().unwrap(), ORIGIN, &key);
        log.shutdown();
        let size = log.head().size;
        assert!(matches!(log.attest(&att).await, Err(crate::Error::ShuttingDown)));
        assert_eq!(log.head().size, size);
        assert_eq!(log.nonces.consume(agent, &nonce), Ok(()), "the nonce was given back");
    }
}
