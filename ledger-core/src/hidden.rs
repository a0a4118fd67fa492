//! Hidden fields of action entries: parsing the submitted values,
//! committing to them, proving the declared predicates, and sealing the
//! openings for the secret store (docs/FORMAT.md, "Hidden fields").
//!
//! A submission declares hidden fields beside the public ones:
//!
//! ```json
//! "hidden": {"amount": {"u64": 1250, "prove": [{"le": 10000}]}, "customer": {"str": "ACME"}}
//! ```
//!
//! [`PendingEntry::commit`] replaces each value by its commitment (Pedersen
//! for `u64`, SD-JWT salted SHA-256 for `str`), proves every declared
//! predicate in one aggregated proof, and returns the entry to append with
//! its openings attached. The openings never enter the leaf: the sequencer
//! seals them ([`OpeningsKey`]) and writes them to the store's secret
//! column family in the same atomic batch as the entry.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::{CryptoRng, RngCore};
use serde_json::{Map, Value};
use verifier::disclosure::Opening;
use verifier::hash::Hash;
use zeroize::Zeroizing;
use zk::ZkParams;

use crate::entry::{EntryError, NewEntry};

fn hidden_err(msg: impl Into<String>) -> EntryError {
    EntryError::Hidden(msg.into())
}

pub use verifier::hidden::{check_field_name, HiddenValue, MAX_FIELD_NAME, MAX_HIDDEN_FIELDS, MAX_HIDDEN_STR_CHARS};

/// Parses the submitted `hidden` object: name → value, sorted by name.
pub fn parse_hidden(v: &Value) -> Result<BTreeMap<String, HiddenValue>, EntryError> {
    verifier::hidden::parse_hidden(v).map_err(EntryError::Hidden)
}

/// Secret material kept beside (never inside) an entry.
pub struct EntrySecret {
    /// The acting agent, for shredding by agent.
    pub agent: String,
    /// Canonical JSON of the openings, `{"name": {"u64": …, "blinding": …}, …}`.
    pub openings: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for EntrySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntrySecret").field("agent", &self.agent).finish_non_exhaustive()
    }
}

/// An action entry with hidden fields, validated, waiting for its
/// commitments and proof (the slow part, run on the prover pool), or,
/// when the client committed itself, for its openings and proof to be
/// checked.
#[derive(Clone, Debug)]
pub struct PendingEntry {
    pub(crate) object: Map<String, Value>,
    pub(crate) work: HiddenWork,
    pub(crate) agent: String,
    pub(crate) max_leaf_bytes: usize,
    pub(crate) self_check: bool,
    pub(crate) auth: Option<Arc<crate::entry::EntryAuth>>,
}

/// What the prover stage does for a pending entry.
#[derive(Clone, Debug)]
pub enum HiddenWork {
    /// Commit to these values and prove their predicates (the log commits).
    Commit(BTreeMap<String, HiddenValue>),
    /// Check the client's commitments against these openings, and its
    /// proof (the client committed; the entry is already in leaf form).
    Check(BTreeMap<String, Opening>),
}

impl PendingEntry {
    /// Whether [`PendingEntry::commit`] verifies its proof before returning
    /// the entry (default: yes). The prover already refuses false
    /// predicates and mismatched openings, so the check guards only against
    /// a broken prover; it costs about 15 % of a hidden append.
    pub fn set_self_check(&mut self, on: bool) {
        self.self_check = on;
    }

    /// Predicates this entry proves at append time.
    pub fn claim_count(&self) -> usize {
        match &self.work {
            HiddenWork::Commit(hidden) => {
                hidden.values().map(|v| if let HiddenValue::U64 { prove, .. } = v { prove.len() } else { 0 }).sum()
            }
            HiddenWork::Check(_) => self.object.get("predicates").and_then(|p| p["claims"].as_array()).map_or(0, Vec::len),
        }
    }

    /// Commits with fresh OS randomness and proves.
    pub fn commit(self, params: &ZkParams) -> Result<NewEntry, EntryError> {
        let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::from_rng(rand_core::OsRng)
            .map_err(|_| hidden_err("the OS random source failed"))?;
        self.commit_with_rng(&mut rng, params)
    }

    /// Commits and proves drawing salts, blindings and prover randomness
    /// from `rng`: a client SDK holding the same stream produces the same
    /// leaf.
    pub fn commit_with_rng<R: RngCore + CryptoRng>(mut self, rng: &mut R, params: &ZkParams) -> Result<NewEntry, EntryError> {
        let hidden = match &self.work {
            HiddenWork::Commit(hidden) => hidden,
            HiddenWork::Check(openings) => {
                let fields = verifier::disclosure::CommittedFields::from_leaf(&self.object)
                    .map_err(|e| hidden_err(e.to_string()))?
                    .ok_or_else(|| hidden_err("\"openings\" without \"hidden\""))?;
                verifier::hidden::check_openings(&fields, openings, params).map_err(|e| hidden_err(format!("client commitments: {e}")))?;
                let plain = Zeroizing::new(crate::canonical::to_canonical(&verifier::hidden::openings_to_json(openings)));
                let secret = EntrySecret { agent: self.agent, openings: plain };
                return Ok(NewEntry::assemble(&self.object, self.max_leaf_bytes, Some(Arc::new(secret)))?.with_auth(self.auth));
            }
        };
        let openings = verifier::hidden::commit(&mut self.object, hidden, rng, params, self.self_check).map_err(|e| match e {
            verifier::hidden::CommitError::Predicate(z) => EntryError::Predicate(z),
            verifier::hidden::CommitError::SelfCheck => EntryError::ProofSelfCheck,
        })?;
        let openings = Zeroizing::new(crate::canonical::to_canonical(&verifier::hidden::openings_to_json(&openings)));
        let secret = EntrySecret { agent: self.agent, openings };
        Ok(NewEntry::assemble(&self.object, self.max_leaf_bytes, Some(Arc::new(secret)))?.with_auth(self.auth))
    }
}

/// Parses decrypted openings.
pub fn parse_openings(plaintext: &[u8]) -> Result<BTreeMap<String, Opening>, EntryError> {
    let v: Value = serde_json::from_slice(plaintext).map_err(|_| hidden_err("stored openings are not JSON"))?;
    verifier::hidden::openings_from_json(&v).map_err(|e| hidden_err(format!("stored openings: {e}")))
}

/// Associated data binding sealed openings to their entry.
const AAD_LABEL: &[u8] = b"agent-ledger/openings/v1";
const SEAL_VERSION: u8 = 1;
const NONCE_LEN: usize = 24;

/// The key that encrypts openings at rest (XChaCha20-Poly1305).
#[derive(Clone)]
pub struct OpeningsKey(XChaCha20Poly1305);

impl std::fmt::Debug for OpeningsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpeningsKey(..)")
    }
}

/// Why sealed openings could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("sealed openings of entry {index} do not decrypt: wrong key or damaged data")]
pub struct UnsealError {
    /// The entry.
    pub index: u64,
}

impl OpeningsKey {
    /// A key from 32 bytes.
    pub fn from_bytes(key: &[u8; 32]) -> Self {
        Self(XChaCha20Poly1305::new(key.into()))
    }

    /// A key from its text form (base64url of 32 bytes, as in the key
    /// file or `LEDGER_OPENINGS_KEY`).
    pub fn from_text(text: &str) -> Result<Self, String> {
        let bytes = Zeroizing::new(URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| "openings key must be base64url".to_owned())?);
        let arr: &[u8; 32] = bytes.as_slice().try_into().map_err(|_| "openings key must be 32 bytes".to_owned())?;
        Ok(Self::from_bytes(arr))
    }

    fn aad(index: u64, leaf_hash: &Hash) -> Vec<u8> {
        let mut aad = Vec::with_capacity(AAD_LABEL.len() + 40);
        aad.extend_from_slice(AAD_LABEL);
        aad.extend_from_slice(&index.to_be_bytes());
        aad.extend_from_slice(leaf_hash);
        aad
    }

    /// `version ‖ nonce ‖ ciphertext ‖ tag`, bound to the entry's index and
    /// leaf hash so sealed openings cannot be moved to another entry.
    pub fn seal(&self, index: u64, leaf_hash: &Hash, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand_core::OsRng.fill_bytes(&mut nonce);
        let aad = Self::aad(index, leaf_hash);
        // Encryption with a valid key and nonce length cannot fail.
        let ct = self.0.encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad: &aad }).unwrap_or_default();
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(SEAL_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Decrypts [`OpeningsKey::seal`].
    pub fn open(&self, index: u64, leaf_hash: &Hash, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, UnsealError> {
        let err = UnsealError { index };
        let [version, rest @ ..] = sealed else { return Err(err) };
        if *version != SEAL_VERSION || rest.len() < NONCE_LEN {
            return Err(err);
        }
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let aad = Self::aad(index, leaf_hash);
        self.0.decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: &aad }).map(Zeroizing::new).map_err(|_| err)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use zk::predicate::Predicate;

    #[test]
    fn seal_binds_to_index_and_leaf() {
        let key = OpeningsKey::from_bytes(&[4; 32]);
        let sealed = key.seal(7, &[1; 32], b"secret");
        assert_eq!(&key.open(7, &[1; 32], &sealed).unwrap()[..], b"secret");
        assert!(key.open(8, &[1; 32], &sealed).is_err());
        assert!(key.open(7, &[2; 32], &sealed).is_err());
        assert!(OpeningsKey::from_bytes(&[5; 32]).open(7, &[1; 32], &sealed).is_err());
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(key.open(7, &[1; 32], &flipped).is_err());
        assert!(key.open(7, &[1; 32], &[]).is_err());
        assert!(OpeningsKey::from_text("short").is_err());
    }

    #[test]
    fn hidden_specs_parse_and_reject() {
        let ok = serde_json::json!({"amount": {"u64": 1250, "prove": [{"le": 10000}, {"ge": 1, "le": 2000}]}, "customer": {"str": "ACME"}});
        let parsed = parse_hidden(&ok).unwrap();
        assert_eq!(parsed["amount"], HiddenValue::U64 { value: 1250, prove: vec![Predicate::le(10_000), Predicate { lo: 1, hi: 2000 }] });
        for bad in [
            serde_json::json!([]),
            serde_json::json!({}),
            serde_json::json!({"a b": {"str": "x"}}),
            serde_json::json!({"a": {"u64": -1}}),
            serde_json::json!({"a": {"u64": 9007199254740992u64}}),
            serde_json::json!({"a": {"u64": 1, "prove": [{"lt": 3}]}}),
            serde_json::json!({"a": {"u64": 1, "prove": [{"ge": 5, "le": 3}]}}),
            serde_json::json!({"a": {"u64": 1, "prove": {"le": 3}}}),
            serde_json::json!({"a": {"str": "x", "prove": []}}),
            serde_json::json!({"a": {"str": 5}}),
            serde_json::json!({"a": {"bytes": "x"}}),
            serde_json::json!({"a": {"u64": 1, "prove": [{"le": 1}, {"le": 1}, {"le": 1}, {"le": 1}, {"le": 1}, {"le": 1}, {"le": 1}, {"le": 1}, {"le": 1}]}}),
        ] {
            assert!(matches!(parse_hidden(&bad), Err(EntryError::Hidden(_))), "{bad}");
        }
    }
}
