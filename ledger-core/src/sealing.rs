//! Openings at rest: envelope encryption under one master key
//! (docs/FORMAT.md, "Openings at rest").
//!
//! Every entry's openings are sealed with a fresh random 32-byte data key
//! (XChaCha20-Poly1305), and that data key is wrapped by the master
//! [`OpeningsKey`]. The store keeps the two apart: the sealed openings in
//! the `openings` column family, the wrapped data key in `opening_keys`.
//! Shredding an entry destroys its wrapped data key (and the ciphertext),
//! so a copy of the ciphertexts alone — a backup that leaves
//! `opening_keys` out — decrypts with nothing, master key included.
//!
//! | what | bytes | key | associated data |
//! |---|---|---|---|
//! | sealed openings (v2) | `0x02 ‖ nonce (24) ‖ ciphertext ‖ tag (16)` | the entry's data key | [`OPENINGS_AAD_V2`] ‖ index (u64 BE) ‖ leaf hash |
//! | wrapped data key (v1) | `0x01 ‖ nonce (24) ‖ encrypted data key (32) ‖ tag (16)` | the master key | [`DATA_KEY_AAD_V1`] ‖ index (u64 BE) |
//! | legacy sealed openings (v1) | `0x01 ‖ nonce (24) ‖ ciphertext ‖ tag (16)` | the master key | [`OPENINGS_AAD_V1`] ‖ index (u64 BE) ‖ leaf hash |
//!
//! Records sealed before envelope encryption (v1, no data key) are still
//! opened with the master key, and shredding them deletes their only
//! ciphertext; only copies taken before the shred stay readable with the
//! master key, as they always were.
//!
//! Every label and version byte of this format is in this file.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::RngCore;
use verifier::hash::Hash;
use zeroize::Zeroizing;

/// Associated-data label of openings sealed with a data key.
pub const OPENINGS_AAD_V2: &[u8] = b"agent-ledger/openings/v2";
/// Associated-data label of a data key wrapped by the master key.
pub const DATA_KEY_AAD_V1: &[u8] = b"agent-ledger/opening-key/v1";
/// Associated-data label of legacy openings sealed with the master key.
pub const OPENINGS_AAD_V1: &[u8] = b"agent-ledger/openings/v1";

/// Version byte of openings sealed with a per-entry data key.
pub const SEALED_V2: u8 = 2;
/// Version byte of legacy openings sealed with the master key itself.
pub const SEALED_V1: u8 = 1;
/// Version byte of a wrapped data key.
pub const WRAPPED_KEY_V1: u8 = 1;

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Length of a wrapped data key.
pub const WRAPPED_KEY_LEN: usize = 1 + NONCE_LEN + KEY_LEN + TAG_LEN;

/// The master key that wraps every entry's data key (XChaCha20-Poly1305).
///
/// It must not live beside the database nor in the same backup: keep it on
/// another volume, or pass it in `LEDGER_OPENINGS_KEY` from a secrets
/// manager or KMS (docs/SECURITY.md).
#[derive(Clone)]
pub struct OpeningsKey(XChaCha20Poly1305);

impl std::fmt::Debug for OpeningsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpeningsKey(..)")
    }
}

/// Why a key's text form was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyTextError {
    /// Not unpadded base64url.
    #[error("openings key must be base64url")]
    NotBase64,
    /// Decodes to the wrong number of bytes.
    #[error("openings key must be 32 bytes, not {0}")]
    WrongLength(usize),
}

/// Why openings could not be sealed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The OS random source failed to give a data key or nonce.
    #[error("the OS random source failed")]
    Random,
    /// The cipher refused the input (larger than XChaCha20 can encrypt).
    #[error("the openings are too large to encrypt")]
    TooLarge,
}

/// Why sealed openings could not be opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnsealError {
    /// The sealed bytes start with a version this code does not know.
    #[error("sealed openings of entry {index} have unknown format version {version}")]
    UnknownVersion { index: u64, version: u8 },
    /// The sealed bytes or the wrapped key are too short to hold a nonce and tag.
    #[error("sealed openings of entry {index} are truncated")]
    Truncated { index: u64 },
    /// Openings sealed with a data key whose wrapped key is not stored.
    #[error("the data key of entry {index} is missing")]
    MissingDataKey { index: u64 },
    /// The wrapped data key does not unwrap: another master key, another
    /// entry's key, or damaged bytes.
    #[error("the data key of entry {index} does not unwrap: wrong openings key or damaged data")]
    DataKey { index: u64 },
    /// The ciphertext does not decrypt: another key, another entry's
    /// openings, or damaged bytes.
    #[error("sealed openings of entry {index} do not decrypt: wrong key or damaged data")]
    Openings { index: u64 },
}

/// An entry's openings as sealed for the store: two records that are
/// stored apart (the ciphertext in `openings`, the key in `opening_keys`).
pub struct Envelope {
    /// `0x02 ‖ nonce ‖ ciphertext ‖ tag` under the data key.
    pub sealed: Vec<u8>,
    /// The data key wrapped by the master key ([`WRAPPED_KEY_LEN`] bytes).
    pub wrapped_key: Vec<u8>,
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope").field("sealed_len", &self.sealed.len()).finish_non_exhaustive()
    }
}

fn aad(label: &[u8], index: u64, leaf_hash: Option<&Hash>) -> Vec<u8> {
    let mut aad = Vec::with_capacity(label.len() + 8 + 32);
    aad.extend_from_slice(label);
    aad.extend_from_slice(&index.to_be_bytes());
    if let Some(hash) = leaf_hash {
        aad.extend_from_slice(hash);
    }
    aad
}

/// `version ‖ nonce ‖ ciphertext ‖ tag`.
fn encrypt(cipher: &XChaCha20Poly1305, version: u8, nonce: &[u8], msg: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
    let ct = cipher.encrypt(XNonce::from_slice(nonce), Payload { msg, aad }).map_err(|_| SealError::TooLarge)?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
    out.push(version);
    out.extend_from_slice(nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Splits `version ‖ nonce ‖ ciphertext ‖ tag` after its version byte.
fn split_sealed(rest: &[u8]) -> Option<(&[u8], &[u8])> {
    (rest.len() >= NONCE_LEN + TAG_LEN).then(|| rest.split_at(NONCE_LEN))
}

impl OpeningsKey {
    /// A key from 32 bytes.
    pub fn from_bytes(key: &[u8; 32]) -> Self {
        Self(XChaCha20Poly1305::new(key.into()))
    }

    /// A key from its text form (base64url of 32 bytes, as in the key
    /// file or `LEDGER_OPENINGS_KEY`).
    pub fn from_text(text: &str) -> Result<Self, KeyTextError> {
        let bytes = Zeroizing::new(URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| KeyTextError::NotBase64)?);
        let arr: &[u8; 32] = bytes.as_slice().try_into().map_err(|_| KeyTextError::WrongLength(bytes.len()))?;
        Ok(Self::from_bytes(arr))
    }

    /// Seals `plaintext` under a fresh data key bound to the entry's index
    /// and leaf hash (so it cannot be moved to another entry), and wraps
    /// the data key under this master key bound to the index.
    pub fn seal(&self, index: u64, leaf_hash: &Hash, plaintext: &[u8]) -> Result<Envelope, SealError> {
        // One draw for the data key and both nonces: the sequencer seals
        // every hidden entry, and each draw is a system call.
        let mut random = Zeroizing::new([0u8; KEY_LEN + 2 * NONCE_LEN]);
        rand_core::OsRng.try_fill_bytes(random.as_mut_slice()).map_err(|_| SealError::Random)?;
        let (data_key, nonces) = random.split_first_chunk::<KEY_LEN>().ok_or(SealError::Random)?;
        let (sealing_nonce, wrapping_nonce) = nonces.split_at(NONCE_LEN);
        let data_cipher = XChaCha20Poly1305::new(data_key.into());
        let sealed = encrypt(&data_cipher, SEALED_V2, sealing_nonce, plaintext, &aad(OPENINGS_AAD_V2, index, Some(leaf_hash)))?;
        let wrapped_key = encrypt(&self.0, WRAPPED_KEY_V1, wrapping_nonce, data_key, &aad(DATA_KEY_AAD_V1, index, None))?;
        Ok(Envelope { sealed, wrapped_key })
    }

    /// Opens what [`OpeningsKey::seal`] sealed for entry `index` (leaf hash
    /// `leaf_hash`); `wrapped_key` is the entry's stored data key, `None`
    /// when it has none. Legacy v1 records (sealed with this key directly)
    /// open without a data key.
    pub fn open(&self, index: u64, leaf_hash: &Hash, sealed: &[u8], wrapped_key: Option<&[u8]>) -> Result<Zeroizing<Vec<u8>>, UnsealError> {
        let [version, rest @ ..] = sealed else { return Err(UnsealError::Truncated { index }) };
        let (nonce, ct) = split_sealed(rest).ok_or(UnsealError::Truncated { index })?;
        let (cipher, label) = match *version {
            SEALED_V2 => {
                let wrapped = wrapped_key.ok_or(UnsealError::MissingDataKey { index })?;
                (self.unwrap_data_key(index, wrapped)?, OPENINGS_AAD_V2)
            }
            SEALED_V1 => (self.0.clone(), OPENINGS_AAD_V1),
            version => return Err(UnsealError::UnknownVersion { index, version }),
        };
        cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: &aad(label, index, Some(leaf_hash)) })
            .map(Zeroizing::new)
            .map_err(|_| UnsealError::Openings { index })
    }

    fn unwrap_data_key(&self, index: u64, wrapped: &[u8]) -> Result<XChaCha20Poly1305, UnsealError> {
        let [version, rest @ ..] = wrapped else { return Err(UnsealError::Truncated { index }) };
        if *version != WRAPPED_KEY_V1 {
            return Err(UnsealError::UnknownVersion { index, version: *version });
        }
        let (nonce, ct) = split_sealed(rest).ok_or(UnsealError::Truncated { index })?;
        let key = self
            .0
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: &aad(DATA_KEY_AAD_V1, index, None) })
            .map(Zeroizing::new)
            .map_err(|_| UnsealError::DataKey { index })?;
        let key: &[u8; KEY_LEN] = key.as_slice().try_into().map_err(|_| UnsealError::DataKey { index })?;
        Ok(XChaCha20Poly1305::new(key.into()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const LEAF: Hash = [1; 32];

    fn key() -> OpeningsKey {
        OpeningsKey::from_bytes(&[4; 32])
    }

    #[test]
    fn seals_with_a_fresh_data_key_and_opens() {
        let e = key().seal(7, &LEAF, b"secret").unwrap();
        assert_eq!(e.sealed[0], SEALED_V2);
        assert_eq!((e.wrapped_key[0], e.wrapped_key.len()), (WRAPPED_KEY_V1, WRAPPED_KEY_LEN));
        assert_eq!(e.sealed.len(), 1 + NONCE_LEN + b"secret".len() + TAG_LEN);
        assert_eq!(&key().open(7, &LEAF, &e.sealed, Some(&e.wrapped_key)).unwrap()[..], b"secret");
        // The ciphertext is not under the master key: without its data
        // key it opens with nothing, master key included.
        assert_eq!(key().open(7, &LEAF, &e.sealed, None).unwrap_err(), UnsealError::MissingDataKey { index: 7 });
        let mut as_legacy = e.sealed.clone();
        as_legacy[0] = SEALED_V1;
        assert_eq!(key().open(7, &LEAF, &as_legacy, None).unwrap_err(), UnsealError::Openings { index: 7 });
        // Two seals of the same openings share no key, nonce or ciphertext.
        let f = key().seal(7, &LEAF, b"secret").unwrap();
        assert_ne!(e.sealed, f.sealed);
        assert_ne!(e.wrapped_key, f.wrapped_key);
    }

    #[test]
    fn binds_index_leaf_and_master_key() {
        let e = key().seal(7, &LEAF, b"secret").unwrap();
        let open = |k: &OpeningsKey, i: u64, leaf: &Hash, sealed: &[u8], wrapped: &[u8]| k.open(i, leaf, sealed, Some(wrapped));
        // Another index: the wrapped key is bound to it.
        assert_eq!(open(&key(), 8, &LEAF, &e.sealed, &e.wrapped_key).unwrap_err(), UnsealError::DataKey { index: 8 });
        // Another leaf: the data key unwraps, the openings do not decrypt.
        assert_eq!(open(&key(), 7, &[2; 32], &e.sealed, &e.wrapped_key).unwrap_err(), UnsealError::Openings { index: 7 });
        // Another master key.
        let other = OpeningsKey::from_bytes(&[5; 32]);
        assert_eq!(open(&other, 7, &LEAF, &e.sealed, &e.wrapped_key).unwrap_err(), UnsealError::DataKey { index: 7 });
        // Another entry's data key, moved next to this ciphertext.
        let g = key().seal(7, &LEAF, b"other").unwrap();
        assert_eq!(open(&key(), 7, &LEAF, &e.sealed, &g.wrapped_key).unwrap_err(), UnsealError::Openings { index: 7 });
        // Every flipped bit of either record is caught.
        for at in 1..e.sealed.len() {
            let mut flipped = e.sealed.clone();
            flipped[at] ^= 0x20;
            assert_eq!(
                open(&key(), 7, &LEAF, &flipped, &e.wrapped_key).unwrap_err(),
                UnsealError::Openings { index: 7 },
                "sealed byte {at}"
            );
        }
        for at in 1..e.wrapped_key.len() {
            let mut flipped = e.wrapped_key.clone();
            flipped[at] ^= 0x20;
            assert_eq!(open(&key(), 7, &LEAF, &e.sealed, &flipped).unwrap_err(), UnsealError::DataKey { index: 7 }, "key byte {at}");
        }
    }

    #[test]
    fn refuses_malformed_records() {
        let e = key().seal(7, &LEAF, b"secret").unwrap();
        let open = |sealed: &[u8], wrapped: &[u8]| key().open(7, &LEAF, sealed, Some(wrapped)).unwrap_err();
        assert_eq!(open(&[], &e.wrapped_key), UnsealError::Truncated { index: 7 });
        assert_eq!(open(&e.sealed[..1 + NONCE_LEN + TAG_LEN - 1], &e.wrapped_key), UnsealError::Truncated { index: 7 });
        assert_eq!(open(&[&[9u8][..], &e.sealed[1..]].concat(), &e.wrapped_key), UnsealError::UnknownVersion { index: 7, version: 9 });
        assert_eq!(open(&e.sealed, &[]), UnsealError::Truncated { index: 7 });
        assert_eq!(open(&e.sealed, &e.wrapped_key[..40]), UnsealError::Truncated { index: 7 });
        assert_eq!(open(&e.sealed, &[&[2u8][..], &e.wrapped_key[1..]].concat()), UnsealError::UnknownVersion { index: 7, version: 2 });
        // A wrapped value that is not 32 bytes once unwrapped.
        let short = encrypt(&key().0, WRAPPED_KEY_V1, &[0; NONCE_LEN], &[0; 16], &aad(DATA_KEY_AAD_V1, 7, None)).unwrap();
        assert_eq!(open(&e.sealed, &short), UnsealError::DataKey { index: 7 });
    }

    /// Openings sealed before envelope encryption (v1: the master key
    /// itself, no data key) still open, built here from FORMAT.md.
    #[test]
    fn opens_legacy_v1_records() {
        let legacy = encrypt(&key().0, SEALED_V1, &[3; NONCE_LEN], b"secret", &aad(OPENINGS_AAD_V1, 7, Some(&LEAF))).unwrap();
        assert_eq!(&key().open(7, &LEAF, &legacy, None).unwrap()[..], b"secret");
        // A stray data key does not matter to a v1 record.
        assert_eq!(&key().open(7, &LEAF, &legacy, Some(&[0; WRAPPED_KEY_LEN])).unwrap()[..], b"secret");
        assert_eq!(key().open(8, &LEAF, &legacy, None).unwrap_err(), UnsealError::Openings { index: 8 });
        assert_eq!(key().open(7, &[2; 32], &legacy, None).unwrap_err(), UnsealError::Openings { index: 7 });
        assert!(OpeningsKey::from_bytes(&[5; 32]).open(7, &LEAF, &legacy, None).is_err());
    }

    #[test]
    fn key_text() {
        let text = URL_SAFE_NO_PAD.encode([4u8; 32]);
        let e = key().seal(1, &LEAF, b"x").unwrap();
        assert_eq!(
            &OpeningsKey::from_text(&format!("{text}\n")).unwrap().open(1, &LEAF, &e.sealed, Some(&e.wrapped_key)).unwrap()[..],
            b"x"
        );
        assert_eq!(OpeningsKey::from_text("c2hvcnQ").unwrap_err(), KeyTextError::WrongLength(5));
        assert_eq!(OpeningsKey::from_text("not base64!").unwrap_err(), KeyTextError::NotBase64);
        assert_eq!(format!("{:?}", key()), "OpeningsKey(..)");
    }
}
