//! Continuous self-attestation: single-use nonces and attestation entries.
//!
//! `POST /v1/agents/{id}/nonce` issues a random 32-byte nonce, bound to the
//! agent, valid for a short time and usable once; the store is bounded (the
//! oldest nonces are dropped first). An attestation names its nonce; the log
//! consumes it, checks the measurements and evidence against the passport
//! ([`verifier::agent::attestation_failures`]) and records the attestation
//! with its verdict either way: a failed attestation is evidence too.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{Map, Value};

use crate::entry::{required_string, EntryError};

/// Bytes of a nonce.
pub const NONCE_LEN: usize = 32;

/// Members of a submitted attestation.
pub const ATTESTATION_MEMBERS: [&str; 11] =
    ["kind", "agent", "nonce", "code_hash", "model_hash", "runtime", "behaviour", "evidence", "seq", "signature", "verdict"];

fn shape(msg: impl Into<String>) -> EntryError {
    EntryError::Shape(msg.into())
}

/// Checks an attestation's shape; `leaf` allows the log's `verdict`.
pub fn validate_attestation(obj: &Map<String, Value>, leaf: bool) -> Result<(), EntryError> {
    if let Some(k) = obj.keys().find(|k| !ATTESTATION_MEMBERS.contains(&k.as_str()) || (!leaf && k.as_str() == "verdict")) {
        return Err(shape(format!("unexpected field {k:?} in an attestation")));
    }
    let nonce = obj.get("nonce").and_then(Value::as_str).and_then(|n| B64.decode(n).ok());
    if nonce.is_none_or(|n| n.len() != NONCE_LEN) {
        return Err(shape("\"nonce\" must be the base64 of a 32-byte nonce"));
    }
    required_string(obj, "code_hash", 64)?;
    if obj.contains_key("model_hash") {
        required_string(obj, "model_hash", 64)?;
    }
    let runtime = obj.get("runtime").and_then(Value::as_object).ok_or_else(|| shape("\"runtime\" must be an object"))?;
    if let Some(k) = runtime.keys().find(|k| !["os", "version", "image_digest"].contains(&k.as_str())) {
        return Err(shape(format!("unexpected field {k:?} in \"runtime\"")));
    }
    for k in ["os", "version", "image_digest"] {
        required_string(runtime, k, 256)?;
    }
    let behaviour = obj.get("behaviour").and_then(Value::as_object).ok_or_else(|| shape("\"behaviour\" must be an object"))?;
    if let Some(k) = behaviour.keys().find(|k| !["digest", "calls", "distinct"].contains(&k.as_str())) {
        return Err(shape(format!("unexpected field {k:?} in \"behaviour\"")));
    }
    verifier::agent::parse_hash(behaviour.get("digest").and_then(Value::as_str).unwrap_or_default(), "\"behaviour.digest\"")
        .map_err(EntryError::Agent)?;
    for k in ["calls", "distinct"] {
        behaviour.get(k).and_then(Value::as_u64).ok_or_else(|| shape(format!("\"behaviour.{k}\" must be a non-negative integer")))?;
    }
    let evidence = obj.get("evidence").and_then(Value::as_object).ok_or_else(|| shape("\"evidence\" must be an object"))?;
    match evidence.get("type").and_then(Value::as_str) {
        Some("software") if evidence.len() == 1 => {}
        Some("tpm") if evidence.len() == 3 => {
            for k in ["quote", "signature"] {
                let ok = evidence.get(k).and_then(Value::as_str).is_some_and(|s| s.len() <= 4096 && B64.decode(s).is_ok());
                if !ok {
                    return Err(shape(format!("\"evidence.{k}\" must be base64 (at most 4096 characters)")));
                }
            }
        }
        _ => return Err(shape("\"evidence\" is {\"type\":\"software\"} or {\"type\":\"tpm\",\"quote\",\"signature\"}")),
    }
    if leaf && !obj.get("verdict").is_some_and(Value::is_object) {
        return Err(shape("an attestation leaf carries its verdict"));
    }
    Ok(())
}

/// Why a nonce was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NonceError {
    /// Never issued (or dropped from the bounded store).
    #[error("unknown nonce")]
    Unknown,
    /// Issued to another agent.
    #[error("nonce was issued to another agent")]
    WrongAgent,
    /// Older than the TTL.
    #[error("nonce expired")]
    Expired,
    /// Already used.
    #[error("nonce already used")]
    Used,
}

struct Issued {
    agent: String,
    at: Instant,
    used: bool,
}

/// Issued nonces by value, and their issue order (for eviction).
type Nonces = (HashMap<[u8; NONCE_LEN], Issued>, VecDeque<[u8; NONCE_LEN]>);

/// Issued nonces: bounded, expiring, single-use.
pub struct NonceStore {
    ttl: Duration,
    capacity: usize,
    inner: Mutex<Nonces>,
}

impl std::fmt::Debug for NonceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceStore").field("ttl", &self.ttl).field("capacity", &self.capacity).finish_non_exhaustive()
    }
}

impl NonceStore {
    /// A store keeping at most `capacity` nonces for `ttl` each.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self { ttl, capacity: capacity.max(1), inner: Mutex::new((HashMap::new(), VecDeque::new())) }
    }

    /// Issues a fresh nonce for `agent`.
    pub fn issue(&self, agent: &str) -> [u8; NONCE_LEN] {
        let mut nonce = [0u8; NONCE_LEN];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (map, order) = &mut *guard;
        while map.len() >= self.capacity {
            match order.pop_front() {
                Some(old) => {
                    map.remove(&old);
                }
                None => break,
            }
        }
        map.insert(nonce, Issued { agent: agent.to_owned(), at: Instant::now(), used: false });
        order.push_back(nonce);
        nonce
    }

    /// Consumes `nonce` for `agent`: it must be known, fresh, unused and
    /// issued to that agent. A nonce is consumed even if the attestation
    /// then fails.
    pub fn consume(&self, agent: &str, nonce: &[u8]) -> Result<(), NonceError> {
        let key: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| NonceError::Unknown)?;
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let issued = guard.0.get_mut(&key).ok_or(NonceError::Unknown)?;
        if issued.agent != agent {
            return Err(NonceError::WrongAgent);
        }
        if issued.used {
            return Err(NonceError::Used);
        }
        if issued.at.elapsed() > self.ttl {
            return Err(NonceError::Expired);
        }
        issued.used = true;
        Ok(())
    }

    /// The time-to-live of a nonce.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

impl crate::Log {
    /// Issues a nonce for a registered, active agent.
    pub fn issue_nonce(&self, agent: &str) -> Result<[u8; NONCE_LEN], crate::Error> {
        let state = self.agent(agent).ok_or_else(|| crate::Error::UnknownAgent(agent.to_owned()))?;
        if state.retired.is_some() {
            return Err(crate::Error::AgentRetired(agent.to_owned()));
        }
        Ok(self.shared.nonces.issue(agent))
    }

    /// Checks and records an attestation. The signature, the agent and the
    /// nonce are checked first (refused: nothing recorded); then the
    /// measurements and evidence decide the verdict, and the attestation is
    /// recorded either way. A failing verdict returns
    /// [`crate::Error::AttestationFailed`] with the index it was recorded at.
    pub async fn attest(&self, submitted: &Value) -> Result<(crate::Appended, Value), crate::Error> {
        use ed25519_dalek::Verifier as _;
        let obj = submitted.as_object().ok_or_else(|| shape("an attestation must be a JSON object"))?;
        if obj.get("kind").and_then(Value::as_str) != Some("attestation") {
            return Err(shape("\"kind\" must be \"attestation\"").into());
        }
        validate_attestation(obj, false)?;
        let agent = verifier::agent::string(obj, "agent").map_err(EntryError::Agent)?;
        crate::spiffe::validate_agent_id(agent).map_err(|reason| EntryError::AgentId { id: agent.into(), reason })?;
        let state = self.agent(agent).ok_or_else(|| crate::Error::UnknownAgent(agent.to_owned()))?;
        if state.retired.is_some() {
            return Err(crate::Error::AgentRetired(agent.to_owned()));
        }
        let auth = crate::entry::parse_auth(obj, crate::EntryKind::Attestation)?.ok_or(crate::Error::Unsigned("attestation"))?;
        // Checked here, before the nonce is spent, so a forger cannot burn
        // an agent's nonces; the sequencer checks both again.
        state.key.verify(&auth.message, &auth.signature).map_err(|_| crate::Error::BadSignature(agent.to_owned()))?;
        if auth.seq <= state.last_seq {
            return Err(crate::Error::SequenceReplayed { agent: agent.to_owned(), seq: auth.seq, last: state.last_seq });
        }
        let nonce = obj.get("nonce").and_then(Value::as_str).and_then(|n| B64.decode(n).ok()).unwrap_or_default();
        self.shared.nonces.consume(agent, &nonce).map_err(crate::Error::Nonce)?;
        let reasons = verifier::agent::attestation_failures(obj, &state.passport);
        let verdict = verifier::agent::verdict(&reasons);
        let mut leaf = obj.clone();
        leaf.insert("verdict".into(), verdict.clone());
        let entry = crate::NewEntry::from_log(&leaf, Some(auth), None)?;
        let appended = self.append(vec![entry]).await?.into_iter().next().ok_or(crate::Error::EmptyBatch)?;
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

    #[test]
    fn nonces_are_single_use_bound_fresh_and_bounded() {
        let store = NonceStore::new(Duration::from_millis(50), 2);
        let a = store.issue("a");
        assert_eq!(store.consume("b", &a), Err(NonceError::WrongAgent));
        assert_eq!(store.consume("a", &a), Ok(()));
        assert_eq!(store.consume("a", &a), Err(NonceError::Used));
        assert_eq!(store.consume("a", &[0; 32]), Err(NonceError::Unknown));
        let b = store.issue("a");
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(store.consume("a", &b), Err(NonceError::Expired));
        let c = store.issue("a");
        let _d = store.issue("a");
        let _e = store.issue("a");
        assert_eq!(store.consume("a", &c), Err(NonceError::Unknown), "the oldest nonce is dropped when the store is full");
    }
}
