//! Witness cosignatures on checkpoints (c2sp.org/tlog-cosignature, the
//! Ed25519 `cosignature/v1` type).
//!
//! A cosignature is a signed-note line `— <witness name> base64(key id ||
//! timestamp || signature)` added to a checkpoint: the key id is
//! `SHA-256(name || 0x0A || 0x04 || public key)[:4]`, the timestamp is
//! eight big-endian bytes of POSIX seconds, and the Ed25519 signature covers
//! `cosignature/v1\ntime <timestamp>\n` followed by the checkpoint's note
//! text. A witness publishes its key as the vkey
//! `<name>+<hex8(key id)>+<base64(0x04 || public key)>`.
//!
//! Verification here checks cosignatures only; the log's own signature on
//! the checkpoint is checked with [`crate::note::NoteVerifier`]. Lines from
//! keys the caller does not trust are ignored, and a bad line from a trusted
//! witness disqualifies that witness alone, so one broken witness cannot
//! veto a quorum of the others.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, VerifyingKey};

#[cfg(feature = "std")]
use crate::note::SIG_PREFIX;
use crate::note::{KeySyntax, NoteError, SignedNote, VerifierKey};

/// Signature type byte of timestamped Ed25519 checkpoint cosignatures.
pub const ALG_COSIGNATURE_V1: u8 = 0x04;

/// The header line that domain-separates the signed message.
pub const HEADER: &str = "cosignature/v1\n";

/// Bytes of a cosignature after the key id: timestamp and signature.
pub const COSIGNATURE_LEN: usize = 8 + 64;

/// The largest timestamp a cosignature may carry (2^63 - 1).
pub const MAX_TIMESTAMP: u64 = i64::MAX as u64;

/// Why a witness key, a cosignature or a quorum was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CosignatureError {
    /// The note around the cosignatures is malformed.
    #[error("malformed signed note: {0}")]
    Note(NoteError),
    /// The witness key text is malformed.
    #[error("malformed witness key: {0}")]
    MalformedKey(KeySyntax),
    /// The key is of another signature type than `0x04`.
    #[error("witness key has signature type {found:#04x}, expected 0x04 (Ed25519 cosignature/v1)")]
    KeyType { found: u8 },
    /// The cosignature is not a timestamp and a 64-byte signature.
    #[error("cosignature by {name} is {len} bytes, expected {COSIGNATURE_LEN}")]
    Length { name: String, len: usize },
    /// The timestamp is zero or above 2^63 - 1.
    #[error("cosignature by {name} has timestamp {timestamp}, outside 1..=2^63-1")]
    Timestamp { name: String, timestamp: u64 },
    /// The Ed25519 signature does not verify.
    #[error("cosignature by {name} does not verify")]
    BadSignature { name: String },
    /// The text to cosign does not end in exactly one newline.
    #[error("cosigned text must end with exactly one newline")]
    Text,
    /// Fewer witnesses cosigned than the quorum requires.
    #[error("{verified} of the {required} required witnesses cosigned")]
    NoQuorum { verified: usize, required: usize },
}

impl From<NoteError> for CosignatureError {
    fn from(e: NoteError) -> Self {
        Self::Note(e)
    }
}

/// Computes the 4-byte key id of a witness's Ed25519 key under `name`.
pub fn key_id(name: &str, public_key: &[u8; 32]) -> u32 {
    crate::note::key_id_of(name, ALG_COSIGNATURE_V1, public_key)
}

/// The message a witness signs: the header, the time line, then `text`
/// (the checkpoint's note text, final newline included).
pub fn signed_message(text: &str, timestamp: u64) -> String {
    alloc::format!("{HEADER}time {timestamp}\n{text}")
}

/// Key names follow the signed-note rule; [`VerifierKey::new`] owns it.
fn check_name(name: &str, key: &VerifyingKey) -> Result<(), CosignatureError> {
    VerifierKey::new(name, *key).map(|_| ()).map_err(|_| CosignatureError::MalformedKey(KeySyntax::Name))
}

/// A witness's public key: `<name>+<hex8(key id)>+<base64(0x04 || key)>`.
#[derive(Clone, PartialEq, Eq)]
pub struct WitnessKey {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl fmt::Debug for WitnessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WitnessKey({self})")
    }
}

impl WitnessKey {
    /// The witness key of `key` under `name`.
    pub fn new(name: &str, key: VerifyingKey) -> Result<Self, CosignatureError> {
        check_name(name, &key)?;
        if key.is_weak() {
            return Err(CosignatureError::MalformedKey(KeySyntax::SmallOrder));
        }
        Ok(Self { name: name.into(), id: key_id(name, key.as_bytes()), key })
    }

    /// Parses the vkey `<name>+<hex8(key id)>+<base64(0x04 || key)>`.
    pub fn parse(text: &str) -> Result<Self, CosignatureError> {
        let text = text.trim_end_matches(['\n', '\r']);
        // The base64 part may itself contain '+', so split at most twice.
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(CosignatureError::MalformedKey(KeySyntax::VerifierFields));
        };
        if id_hex.len() != 8 || !id_hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(CosignatureError::MalformedKey(KeySyntax::KeyIdSyntax));
        }
        let id = u32::from_str_radix(id_hex, 16).map_err(|_| CosignatureError::MalformedKey(KeySyntax::KeyIdSyntax))?;
        let raw = B64.decode(key_b64).map_err(|_| CosignatureError::MalformedKey(KeySyntax::KeyEncoding))?;
        let (&alg, pub_bytes) = raw.split_first().ok_or(CosignatureError::MalformedKey(KeySyntax::Empty))?;
        if alg != ALG_COSIGNATURE_V1 {
            return Err(CosignatureError::KeyType { found: alg });
        }
        let pub_bytes: [u8; 32] = pub_bytes.try_into().map_err(|_| CosignatureError::MalformedKey(KeySyntax::KeyLength))?;
        let key = VerifyingKey::from_bytes(&pub_bytes).map_err(|_| CosignatureError::MalformedKey(KeySyntax::NotAPoint))?;
        let parsed = Self::new(name, key)?;
        if parsed.id != id {
            return Err(CosignatureError::MalformedKey(KeySyntax::KeyIdMismatch));
        }
        Ok(parsed)
    }

    /// The witness's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 4-byte key id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The Ed25519 public key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// Verifies one cosignature (the bytes after the key id) over the note
    /// text `text`, returning its timestamp.
    pub fn verify(&self, text: &str, cosignature: &[u8]) -> Result<u64, CosignatureError> {
        let (Some(ts), Some(sig)) = (cosignature.get(..8), cosignature.get(8..)) else {
            return Err(CosignatureError::Length { name: self.name.clone(), len: cosignature.len() });
        };
        let sig: [u8; 64] = sig.try_into().map_err(|_| CosignatureError::Length { name: self.name.clone(), len: cosignature.len() })?;
        let mut ts_bytes = [0u8; 8];
        ts_bytes.copy_from_slice(ts);
        let timestamp = u64::from_be_bytes(ts_bytes);
        // A v1 cosignature states what the witness saw *as of* its time, so
        // the Ed25519 type always carries one (c2sp.org/tlog-witness).
        if timestamp == 0 || timestamp > MAX_TIMESTAMP {
            return Err(CosignatureError::Timestamp { name: self.name.clone(), timestamp });
        }
        self.key
            .verify_strict(signed_message(text, timestamp).as_bytes(), &Signature::from_bytes(&sig))
            .map_err(|_| CosignatureError::BadSignature { name: self.name.clone() })?;
        Ok(timestamp)
    }
}

impl fmt::Display for WitnessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = [0u8; 33];
        raw[0] = ALG_COSIGNATURE_V1;
        raw[1..].copy_from_slice(self.key.as_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.id, B64.encode(raw))
    }
}

/// A witness whose cosignature verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cosigned {
    /// The witness's name.
    pub name: String,
    /// The witness's key id.
    pub id: u32,
    /// When the witness cosigned, in POSIX seconds.
    pub timestamp: u64,
}

/// A trusted witness whose cosignature line did not verify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CosignatureFailure {
    /// The witness's name.
    pub name: String,
    /// The witness's key id.
    pub id: u32,
    /// What was wrong with its line.
    pub error: CosignatureError,
}

/// The outcome of checking a note's cosignatures against trusted witnesses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CosignatureReport {
    /// Witnesses with at least one line, every one of which verified, in
    /// the order of the trusted keys.
    pub verified: Vec<Cosigned>,
    /// Witnesses with a line that failed (their other lines do not count).
    pub failed: Vec<CosignatureFailure>,
}

/// Checks every cosignature line of `note` from a key in `witnesses`.
/// Lines from other keys (the log's own signature among them) are ignored.
/// Only a note that is not a signed note at all is an error.
pub fn verify_cosignatures(note: &str, witnesses: &[WitnessKey]) -> Result<CosignatureReport, CosignatureError> {
    let parsed = SignedNote::parse(note)?;
    let mut report = CosignatureReport::default();
    for (i, witness) in witnesses.iter().enumerate() {
        // A key listed twice is one witness.
        if witnesses[..i].contains(witness) {
            continue;
        }
        let mut outcome: Option<Result<u64, CosignatureError>> = None;
        for sig in parsed.signatures.iter().filter(|s| s.name == witness.name && s.id == witness.id) {
            match witness.verify(&parsed.text, &sig.signature) {
                Ok(ts) if outcome.is_none() => outcome = Some(Ok(ts)),
                Ok(_) => {}
                Err(e) => {
                    outcome = Some(Err(e));
                    break;
                }
            }
        }
        match outcome {
            Some(Ok(timestamp)) => report.verified.push(Cosigned { name: witness.name.clone(), id: witness.id, timestamp }),
            Some(Err(error)) => report.failed.push(CosignatureFailure { name: witness.name.clone(), id: witness.id, error }),
            None => {}
        }
    }
    Ok(report)
}

/// Requires valid cosignatures on `note` from at least `quorum` distinct
/// witness names in `witnesses`, returning those names. Two keys with one
/// name count once: they are one witness (say, before and after rotating
/// its key).
pub fn require_quorum(note: &str, witnesses: &[WitnessKey], quorum: usize) -> Result<Vec<String>, CosignatureError> {
    let report = verify_cosignatures(note, witnesses)?;
    let mut names: Vec<String> = Vec::new();
    for cosigned in report.verified {
        if !names.contains(&cosigned.name) {
            names.push(cosigned.name);
        }
    }
    if names.len() < quorum {
        return Err(CosignatureError::NoQuorum { verified: names.len(), required: quorum });
    }
    Ok(names)
}

/// A witness's signing key (`std` only: auditors never cosign).
#[cfg(feature = "std")]
#[derive(Clone)]
pub struct WitnessSigner {
    name: String,
    id: u32,
    key: ed25519_dalek::SigningKey,
}

#[cfg(feature = "std")]
impl fmt::Debug for WitnessSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WitnessSigner({}+{:08x})", self.name, self.id)
    }
}

#[cfg(feature = "std")]
impl WitnessSigner {
    /// A signer for the witness named `name`.
    pub fn new(name: &str, key: ed25519_dalek::SigningKey) -> Result<Self, CosignatureError> {
        let public = WitnessKey::new(name, key.verifying_key())?;
        Ok(Self { name: public.name, id: public.id, key })
    }

    /// Parses `PRIVATE+KEY+<name>+<hex8(key id)>+<base64(0x04 || seed)>`,
    /// the Go `sumdb/note` private key layout with the cosignature type.
    pub fn parse(text: &str) -> Result<Self, CosignatureError> {
        let rest = text.trim_end().strip_prefix("PRIVATE+KEY+").ok_or(CosignatureError::MalformedKey(KeySyntax::SignerPrefix))?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(CosignatureError::MalformedKey(KeySyntax::SignerFields));
        };
        let raw = B64.decode(b64).map_err(|_| CosignatureError::MalformedKey(KeySyntax::KeyEncoding))?;
        let (&alg, seed) = raw.split_first().ok_or(CosignatureError::MalformedKey(KeySyntax::Empty))?;
        if alg != ALG_COSIGNATURE_V1 {
            return Err(CosignatureError::KeyType { found: alg });
        }
        let seed: &[u8; 32] = seed.try_into().map_err(|_| CosignatureError::MalformedKey(KeySyntax::SeedLength))?;
        let signer = Self::new(name, ed25519_dalek::SigningKey::from_bytes(seed))?;
        if format!("{:08x}", signer.id) != id_hex {
            return Err(CosignatureError::MalformedKey(KeySyntax::KeyIdMismatch));
        }
        Ok(signer)
    }

    /// The private key string [`WitnessSigner::parse`] reads; keep it secret.
    pub fn to_private_key(&self) -> String {
        let mut raw = [0u8; 33];
        raw[0] = ALG_COSIGNATURE_V1;
        raw[1..].copy_from_slice(self.key.as_bytes());
        format!("PRIVATE+KEY+{}+{:08x}+{}", self.name, self.id, B64.encode(raw))
    }

    /// The witness's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key clients verify this witness's cosignatures with.
    pub fn witness_key(&self) -> WitnessKey {
        WitnessKey { name: self.name.clone(), id: self.id, key: self.key.verifying_key() }
    }

    /// Cosigns the note text `text` (a checkpoint body, final newline
    /// included) at `timestamp` POSIX seconds, returning the signature line
    /// `— <name> <base64>\n` to append to the checkpoint note.
    pub fn cosign(&self, text: &str, timestamp: u64) -> Result<String, CosignatureError> {
        use ed25519_dalek::Signer as _;
        if !text.ends_with('\n') || text.ends_with("\n\n") {
            return Err(CosignatureError::Text);
        }
        if timestamp == 0 || timestamp > MAX_TIMESTAMP {
            return Err(CosignatureError::Timestamp { name: self.name.clone(), timestamp });
        }
        let sig = self.key.sign(signed_message(text, timestamp).as_bytes());
        let mut blob = Vec::with_capacity(4 + COSIGNATURE_LEN);
        blob.extend_from_slice(&self.id.to_be_bytes());
        blob.extend_from_slice(&timestamp.to_be_bytes());
        blob.extend_from_slice(&sig.to_bytes());
        Ok(format!("{SIG_PREFIX}{} {}\n", self.name, B64.encode(blob)))
    }
}

#[cfg(all(test, feature = "std"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::checkpoint::Checkpoint;
    use crate::note::NoteSigner;

    const CHECKPOINT: &str = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
    const TIME: u64 = 1679315147;

    fn witness(n: u8) -> WitnessSigner {
        WitnessSigner::new(&format!("witness.example/w{n}"), ed25519_dalek::SigningKey::from_bytes(&[n; 32])).unwrap()
    }

    fn log_note() -> String {
        let log = NoteSigner::new("example.com/behind-the-sofa", ed25519_dalek::SigningKey::from_bytes(&[42; 32])).unwrap();
        log.sign(CHECKPOINT).unwrap()
    }

    fn cosigned(witnesses: &[WitnessSigner]) -> String {
        let mut note = log_note();
        for w in witnesses {
            note.push_str(&w.cosign(CHECKPOINT, TIME).unwrap());
        }
        note
    }

    fn keys(witnesses: &[WitnessSigner]) -> Vec<WitnessKey> {
        witnesses.iter().map(WitnessSigner::witness_key).collect()
    }

    /// Rewrites the blob of the signature line of `name` in `note`.
    fn edit_line(note: &str, name: &str, edit: impl Fn(&mut Vec<u8>)) -> String {
        let mut out = String::new();
        for line in note.split_inclusive('\n') {
            match line.strip_prefix(&format!("{SIG_PREFIX}{name} ")) {
                Some(b64) => {
                    let mut blob = B64.decode(b64.trim_end()).unwrap();
                    edit(&mut blob);
                    out.push_str(&format!("{SIG_PREFIX}{name} {}\n", B64.encode(blob)));
                }
                None => out.push_str(line),
            }
        }
        out
    }

    // The spec's example (tlog-cosignature.md, C2SP/C2SP at
    // 5ba5ee830903e91240fc6f9f3a7a9293d49e69c9) shows the line layout; it
    // does not publish the witness key, so only the layout is checked.
    const SPEC_LINE: &str = "\u{2014} witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n";

    #[test]
    fn spec_example_layout() {
        let note = format!("{CHECKPOINT}\n{SPEC_LINE}");
        let parsed = SignedNote::parse(&note).unwrap();
        let sig = &parsed.signatures[0];
        assert_eq!(sig.signature.len(), COSIGNATURE_LEN);
        assert_eq!(u64::from_be_bytes(sig.signature[..8].try_into().unwrap()), TIME);
        // A line from a key we do not trust is ignored.
        assert_eq!(verify_cosignatures(&note, &keys(&[witness(1)])).unwrap(), CosignatureReport::default());
    }

    // Known answer produced independently of this crate, with Python's
    // `cryptography` (OpenSSL) Ed25519: seed [1; 32], name
    // witness.example/w1, key id SHA-256(name || 0x0A || 0x04 || pub)[:4],
    // signing `cosignature/v1\ntime 1679315147\n` || CHECKPOINT.
    const VECTOR_KEY: &str = "witness.example/w1+0ad7d35e+BIqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c";
    const VECTOR_LINE: &str = "\u{2014} witness.example/w1 CtfTXgAAAABkGFDL0l0pFwTk9MykvW0AWQ7aj3wlQOPdkH/U6S+pa35ceaScuEzSwKfIeJ7i4Fxp8hH+ardr70qwEBhCA4/FskmwAg==\n";

    #[test]
    fn known_answer_signs_and_verifies_byte_for_byte() {
        let w = witness(1);
        assert_eq!(w.witness_key().to_string(), VECTOR_KEY);
        assert_eq!(WitnessKey::parse(VECTOR_KEY).unwrap(), w.witness_key());
        assert_eq!(w.cosign(CHECKPOINT, TIME).unwrap(), VECTOR_LINE);
        let note = format!("{}{VECTOR_LINE}", log_note());
        let report = verify_cosignatures(&note, &[WitnessKey::parse(VECTOR_KEY).unwrap()]).unwrap();
        assert_eq!(report.verified, [Cosigned { name: "witness.example/w1".into(), id: 0x0ad7d35e, timestamp: TIME }]);
    }

    #[test]
    fn keys_round_trip() {
        let w = witness(3);
        assert_eq!(WitnessSigner::parse(&w.to_private_key()).unwrap().witness_key(), w.witness_key());
        let vkey = w.witness_key().to_string();
        assert_eq!(WitnessKey::parse(&vkey).unwrap().to_string(), vkey);
        assert_eq!(w.witness_key().id(), key_id(w.name(), w.witness_key().verifying_key().as_bytes()));
    }

    #[test]
    fn malformed_keys_rejected() {
        let good = witness(1).witness_key().to_string();
        let (name_id, b64) = good.rsplit_once('+').unwrap();
        let mut raw = B64.decode(b64).unwrap();
        raw[0] = crate::note::ALG_ED25519;
        // A note key (type 0x01) of the same public key is not a witness key.
        assert_eq!(WitnessKey::parse(&format!("{name_id}+{}", B64.encode(&raw))), Err(CosignatureError::KeyType { found: 0x01 }));
        for bad in ["", "w", "w+00000000", &good.replacen("+0ad7d35e+", "+0ad7d35f+", 1), &good.replacen("+0ad7d35e+", "+0AD7D35E+", 1)] {
            assert!(matches!(WitnessKey::parse(bad), Err(CosignatureError::MalformedKey(_))), "{bad:?}");
        }
        assert!(WitnessKey::parse(&format!("bad name{}", &good["witness.example/w1".len()..])).is_err());
        let note_signer = NoteSigner::new("w", ed25519_dalek::SigningKey::from_bytes(&[1; 32])).unwrap();
        assert!(WitnessSigner::parse(&note_signer.to_private_key()).is_err());
    }

    #[test]
    fn cosignatures_verify_and_make_a_quorum() {
        let ws = [witness(1), witness(2), witness(3)];
        let note = cosigned(&ws);
        let report = verify_cosignatures(&note, &keys(&ws)).unwrap();
        assert_eq!(report.verified.len(), 3);
        assert!(report.failed.is_empty());
        assert!(report.verified.iter().all(|c| c.timestamp == TIME));
        assert_eq!(require_quorum(&note, &keys(&ws), 3).unwrap().len(), 3);
        assert_eq!(require_quorum(&note, &keys(&ws), 4), Err(CosignatureError::NoQuorum { verified: 3, required: 4 }));
        // The log's own signature and cosignatures stay a valid checkpoint.
        let log = NoteSigner::new("example.com/behind-the-sofa", ed25519_dalek::SigningKey::from_bytes(&[42; 32])).unwrap();
        Checkpoint::open(&note, &crate::NoteVerifier::new(log.verifier_key())).unwrap();
    }

    #[test]
    fn a_key_listed_twice_counts_once() {
        let w = witness(1);
        let note = cosigned(std::slice::from_ref(&w));
        assert_eq!(
            require_quorum(&note, &[w.witness_key(), w.witness_key()], 2),
            Err(CosignatureError::NoQuorum { verified: 1, required: 2 })
        );
    }

    #[test]
    fn wrong_key_is_ignored_or_fails() {
        let note = cosigned(&[witness(1)]);
        // Another key under another name: not ours to check, ignored.
        assert_eq!(verify_cosignatures(&note, &keys(&[witness(2)])).unwrap(), CosignatureReport::default());
        // Same name, another key: its key id differs, so the line is ignored.
        let impostor = WitnessSigner::new("witness.example/w1", ed25519_dalek::SigningKey::from_bytes(&[9; 32])).unwrap();
        assert_eq!(require_quorum(&note, &keys(&[impostor]), 1), Err(CosignatureError::NoQuorum { verified: 0, required: 1 }));
        // Same name and key id, another signature: a failure for that key.
        let forged = edit_line(&note, "witness.example/w1", |blob| {
            let other = witness(9).cosign(CHECKPOINT, TIME).unwrap();
            let other = B64.decode(other.trim_end().rsplit(' ').next().unwrap()).unwrap();
            blob[12..].copy_from_slice(&other[12..]);
        });
        let report = verify_cosignatures(&forged, &keys(&[witness(1)])).unwrap();
        assert!(report.verified.is_empty());
        assert_eq!(report.failed[0].error, CosignatureError::BadSignature { name: "witness.example/w1".into() });
    }

    #[test]
    fn tampered_body_fails() {
        let ws = [witness(1)];
        let note = cosigned(&ws).replacen("20852163", "20852164", 1);
        let report = verify_cosignatures(&note, &keys(&ws)).unwrap();
        assert_eq!(report.failed[0].error, CosignatureError::BadSignature { name: "witness.example/w1".into() });
        assert!(require_quorum(&note, &keys(&ws), 1).is_err());
    }

    #[test]
    fn tampered_timestamp_fails() {
        let ws = [witness(1)];
        let note = edit_line(&cosigned(&ws), "witness.example/w1", |blob| blob[11] ^= 1);
        let report = verify_cosignatures(&note, &keys(&ws)).unwrap();
        assert_eq!(report.failed[0].error, CosignatureError::BadSignature { name: "witness.example/w1".into() });
        for (timestamp, byte) in [(0u64, 0u8), (1 << 63, 0x80)] {
            let note = edit_line(&cosigned(&ws), "witness.example/w1", |blob| {
                blob[4..12].copy_from_slice(&[0; 8]);
                blob[4] = byte;
            });
            let report = verify_cosignatures(&note, &keys(&ws)).unwrap();
            assert_eq!(report.failed[0].error, CosignatureError::Timestamp { name: "witness.example/w1".into(), timestamp });
        }
    }

    #[test]
    fn wrong_signature_type_fails() {
        // A plain note signature (type 0x01) by the witness's key: its key id
        // is computed with 0x01, so it is not a line from the witness key.
        let w = witness(1);
        let as_note = NoteSigner::new(w.name(), ed25519_dalek::SigningKey::from_bytes(&[1; 32])).unwrap();
        let note = format!("{}{}", log_note(), as_note.sign(CHECKPOINT).unwrap().rsplit_once("\n\n").unwrap().1);
        assert_eq!(require_quorum(&note, &keys(std::slice::from_ref(&w)), 1), Err(CosignatureError::NoQuorum { verified: 0, required: 1 }));
        // The same signature relabelled with the witness's 0x04 key id: it
        // signed the bare text, not the cosignature message, and is too short.
        let relabelled = edit_line(&note, w.name(), |blob| blob[..4].copy_from_slice(&w.witness_key().id().to_be_bytes()));
        let report = verify_cosignatures(&relabelled, &keys(std::slice::from_ref(&w))).unwrap();
        assert_eq!(report.failed[0].error, CosignatureError::Length { name: w.name().into(), len: 64 });
    }

    #[test]
    fn a_bad_line_fails_its_witness_only() {
        let ws = [witness(1), witness(2)];
        let note = edit_line(&cosigned(&ws), "witness.example/w1", |blob| {
            blob.pop();
        });
        let report = verify_cosignatures(&note, &keys(&ws)).unwrap();
        assert_eq!(report.verified.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["witness.example/w2"]);
        assert_eq!(report.failed[0].error, CosignatureError::Length { name: "witness.example/w1".into(), len: COSIGNATURE_LEN - 1 });
        assert_eq!(require_quorum(&note, &keys(&ws), 1).unwrap(), ["witness.example/w2"]);
        assert_eq!(require_quorum(&note, &keys(&ws), 2), Err(CosignatureError::NoQuorum { verified: 1, required: 2 }));
        // A good line does not excuse a bad one from the same key.
        let twice = format!("{}{}", note, witness(1).cosign(CHECKPOINT, TIME).unwrap());
        assert_eq!(require_quorum(&twice, &keys(&ws), 2), Err(CosignatureError::NoQuorum { verified: 1, required: 2 }));
    }

    #[test]
    fn cosign_refuses_bad_input() {
        let w = witness(1);
        assert_eq!(w.cosign("no newline", TIME), Err(CosignatureError::Text));
        assert_eq!(w.cosign("two\n\n", TIME), Err(CosignatureError::Text));
        assert!(matches!(w.cosign(CHECKPOINT, 0), Err(CosignatureError::Timestamp { .. })));
        assert!(matches!(verify_cosignatures("not a note", &keys(&[w])), Err(CosignatureError::Note(_))));
    }
}
