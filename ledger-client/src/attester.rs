//! Attestation: what an agent measures about itself, and the evidence that
//! backs it (software: the agent's own signature; TPM: a quote).

use std::collections::{BTreeSet, VecDeque};
use std::sync::Mutex;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::ClientError;

/// Produces the evidence of an attestation.
pub trait Attester: Send + Sync {
    /// The evidence object (`{"type":"software"}` or
    /// `{"type":"tpm","quote","signature"}`) for one attestation, given the
    /// code hash being attested. `qualifying_data` is
    /// [`verifier::tpm::qualifying_data`] of the log's nonce, the agent's key
    /// in force and the attestation's claims (agent and `seq` included):
    /// evidence that can carry it (a TPM quote's `extraData`) must, so that
    /// it backs this attestation and no other.
    fn evidence(&self, qualifying_data: &[u8; 32], code_hash: &[u8; 32]) -> Result<Value, ClientError>;
}

/// Software evidence: the attestation is backed by the agent's Ed25519
/// signature over its canonical bytes, which every agent entry carries.
/// The log refuses it (verdict reason `downgrade: …`) from an agent whose
/// passport has a TPM attestation key.
#[derive(Clone, Copy, Debug, Default)]
pub struct SoftwareAttester;

impl Attester for SoftwareAttester {
    fn evidence(&self, _qualifying_data: &[u8; 32], _code_hash: &[u8; 32]) -> Result<Value, ClientError> {
        Ok(json!({"type": "software"}))
    }
}

/// What the agent reports about its runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Runtime {
    /// Operating system.
    pub os: String,
    /// Its version.
    pub version: String,
    /// Digest of the container or VM image.
    pub image_digest: String,
}

impl Runtime {
    /// The running OS (from `std::env::consts` and `/proc`), with an image
    /// digest supplied by the deployment.
    pub fn current(image_digest: &str) -> Self {
        let version =
            std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_owned()).unwrap_or_else(|_| "unknown".into());
        Self { os: std::env::consts::OS.into(), version, image_digest: image_digest.into() }
    }
}

/// A rolling fingerprint of the agent's recent API calls: a SHA-256 over
/// the last `window` call names in order, plus counts.
#[derive(Debug)]
pub struct BehaviourTracker {
    window: usize,
    inner: Mutex<(VecDeque<String>, u64)>,
}

impl BehaviourTracker {
    /// Keeps the last `window` calls.
    pub fn new(window: usize) -> Self {
        Self { window: window.max(1), inner: Mutex::new((VecDeque::new(), 0)) }
    }

    /// Records one call.
    pub fn record(&self, call: &str) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.0.push_back(call.to_owned());
        while g.0.len() > self.window {
            g.0.pop_front();
        }
        g.1 += 1;
    }

    /// `{"digest","calls","distinct"}` over the window.
    pub fn fingerprint(&self) -> Value {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut h = Sha256::new();
        for call in &g.0 {
            h.update((call.len() as u32).to_be_bytes());
            h.update(call.as_bytes());
        }
        let distinct: BTreeSet<&String> = g.0.iter().collect();
        json!({"digest": verifier::entry::signing::hex(&h.finalize()), "calls": g.1, "distinct": distinct.len()})
    }
}
