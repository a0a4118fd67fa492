//! C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys.
//!
//! A note is UTF-8 text ending in a newline, a blank line, then signature
//! lines `— <name> <base64(key id || signature)>`. The key id is
//! `SHA-256(name || 0x0A || 0x01 || public key)[:4]` and a verifier key is
//! published as `<name>+<hex8(key id)>+<base64(0x01 || public key)>`.
//! Signatures from keys the verifier does not know are ignored, as the
//! specification requires; at least one known signature must verify.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

/// Signature type byte of Ed25519 keys.
pub const ALG_ED25519: u8 = 0x01;

/// Most signature lines a note may carry before it is rejected as abuse.
pub const MAX_SIGNATURES: usize = 16;

/// What starts every signature line: an em dash and a space.
pub const SIG_PREFIX: &str = "\u{2014} ";

/// What is wrong with a signed note's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteSyntax {
    /// Control character other than newline.
    #[error("control character other than newline")]
    ControlCharacter,
    /// Invalid key name on signature line.
    #[error("invalid key name on signature line")]
    SignatureKeyName,
    /// No blank line before signatures.
    #[error("no blank line before signatures")]
    NoBlankLine,
    /// No signature lines.
    #[error("no signature lines")]
    NoSignatures,
    /// Note must end with a newline.
    #[error("note must end with a newline")]
    NoFinalNewline,
    /// Note text must end with exactly one newline.
    #[error("note text must end with exactly one newline")]
    TextNewlines,
    /// Signature is not standard base64.
    #[error("signature is not standard base64")]
    SignatureEncoding,
    /// Signature line must be name and base64.
    #[error("signature line must be name and base64")]
    SignatureLine,
    /// Signature line must start with an em dash and a space.
    #[error("signature line must start with an em dash and a space")]
    SignatureDash,
    /// Signature too short.
    #[error("signature too short")]
    SignatureTooShort,
}

/// What is wrong with a verifier or signer key's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeySyntax {
    /// Ed25519 key must be 32 bytes.
    #[error("Ed25519 key must be 32 bytes")]
    KeyLength,
    /// Ed25519 seed must be 32 bytes.
    #[error("Ed25519 seed must be 32 bytes")]
    SeedLength,
    /// Empty key.
    #[error("empty key")]
    Empty,
    /// Expected PRIVATE+KEY+name+keyid+key.
    #[error("expected PRIVATE+KEY+name+keyid+key")]
    SignerFields,
    /// Expected name+keyid+key.
    #[error("expected name+keyid+key")]
    VerifierFields,
    /// Key id does not match name and key.
    #[error("key id does not match name and key")]
    KeyIdMismatch,
    /// Key id must be 8 lowercase hex digits.
    #[error("key id must be 8 lowercase hex digits")]
    KeyIdSyntax,
    /// Key is not standard base64.
    #[error("key is not standard base64")]
    KeyEncoding,
    /// Key name must be non-empty without spaces or '+'.
    #[error("key name must be non-empty without spaces or '+'")]
    Name,
    /// Not a valid Ed25519 point.
    #[error("not a valid Ed25519 point")]
    NotAPoint,
    /// Only Ed25519 (type 0x01) keys are supported.
    #[error("only Ed25519 (type 0x01) keys are supported")]
    KeyType,
    /// Signer key must start with PRIVATE+KEY+.
    #[error("signer key must start with PRIVATE+KEY+")]
    SignerPrefix,
    /// Small-order Ed25519 key.
    #[error("small-order Ed25519 key")]
    SmallOrder,
}

/// Why a note or key was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    /// The note does not have the signed-note shape.
    #[error("malformed signed note: {0}")]
    Malformed(NoteSyntax),
    /// More signature lines than [`MAX_SIGNATURES`].
    #[error("signed note has more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    /// No signature line came from a key the verifier knows.
    #[error("no signature from a known key (expected key {name}+{id:08x})")]
    UnknownKey { name: String, id: u32 },
    /// A signature from the known key failed to verify.
    #[error("signature by {name} does not verify")]
    BadSignature { name: String },
    /// The verifier key string is malformed.
    #[error("malformed verifier key: {0}")]
    MalformedKey(KeySyntax),
}

/// Computes the 4-byte key id of an Ed25519 key named `name`.
pub fn key_id(name: &str, public_key: &[u8; 32]) -> u32 {
    key_id_of(name, ALG_ED25519, public_key)
}

/// The key id of a key named `name` with signature type `alg`:
/// `SHA-256(name ‖ 0x0A ‖ alg ‖ public key)[:4]` (c2sp.org/signed-note).
pub fn key_id_of(name: &str, alg: u8, public_key: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', alg]);
    h.update(public_key);
    let digest = h.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

fn valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// A parsed verifier key `name+hex8(id)+base64(0x01 || pubkey)`.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifierKey({self})")
    }
}

impl VerifierKey {
    /// Builds the verifier key of `public_key` under `name`.
    pub fn new(name: &str, key: VerifyingKey) -> Result<Self, NoteError> {
        if !valid_key_name(name) {
            return Err(NoteError::MalformedKey(KeySyntax::Name));
        }
        Ok(Self { name: name.into(), id: key_id(name, key.as_bytes()), key })
    }

    /// Parses `name+hex8(id)+base64(0x01 || pubkey)`.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let text = text.trim_end_matches(['\n', '\r']);
        // The base64 part may itself contain '+', so split at most twice.
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::MalformedKey(KeySyntax::VerifierFields));
        };
        if !valid_key_name(name) {
            return Err(NoteError::MalformedKey(KeySyntax::Name));
        }
        if id_hex.len() != 8 || !id_hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(NoteError::MalformedKey(KeySyntax::KeyIdSyntax));
        }
        let id = u32::from_str_radix(id_hex, 16).map_err(|_| NoteError::MalformedKey(KeySyntax::KeyIdSyntax))?;
        let raw = B64.decode(key_b64).map_err(|_| NoteError::MalformedKey(KeySyntax::KeyEncoding))?;
        let (&alg, pub_bytes) = raw.split_first().ok_or(NoteError::MalformedKey(KeySyntax::Empty))?;
        if alg != ALG_ED25519 {
            return Err(NoteError::MalformedKey(KeySyntax::KeyType));
        }
        let pub_bytes: [u8; 32] = pub_bytes.try_into().map_err(|_| NoteError::MalformedKey(KeySyntax::KeyLength))?;
        let key = VerifyingKey::from_bytes(&pub_bytes).map_err(|_| NoteError::MalformedKey(KeySyntax::NotAPoint))?;
        if key.is_weak() {
            return Err(NoteError::MalformedKey(KeySyntax::SmallOrder));
        }
        if key_id(name, &pub_bytes) != id {
            return Err(NoteError::MalformedKey(KeySyntax::KeyIdMismatch));
        }
        Ok(Self { name: name.into(), id, key })
    }

    /// The key name (for checkpoints, the log origin).
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
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = [0u8; 33];
        raw[0] = ALG_ED25519;
        raw[1..].copy_from_slice(self.key.as_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.id, B64.encode(raw))
    }
}

/// One signature line of a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    /// Key name as written on the line.
    pub name: String,
    /// Key id (first four bytes of the decoded signature blob).
    pub id: u32,
    /// The signature bytes after the key id.
    pub signature: Vec<u8>,
}

/// A signed note split into its text and signature lines (not yet verified).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedNote {
    /// The signed text, including its final newline.
    pub text: String,
    /// Signature lines in order.
    pub signatures: Vec<NoteSignature>,
}

impl SignedNote {
    /// Splits a signed note. Checks the shape only; see [`NoteVerifier`].
    pub fn parse(note: &str) -> Result<Self, NoteError> {
        if note.bytes().any(|b| b < 0x20 && b != b'\n') {
            return Err(NoteError::Malformed(NoteSyntax::ControlCharacter));
        }
        if !note.ends_with('\n') {
            return Err(NoteError::Malformed(NoteSyntax::NoFinalNewline));
        }
        // The text is separated from the signatures by the last blank line.
        let split = note.rfind("\n\n").ok_or(NoteError::Malformed(NoteSyntax::NoBlankLine))?;
        let text = &note[..split + 1];
        let sig_block = &note[split + 2..];
        if sig_block.is_empty() {
            return Err(NoteError::Malformed(NoteSyntax::NoSignatures));
        }
        let mut signatures = Vec::new();
        for line in sig_block.strip_suffix('\n').unwrap_or(sig_block).split('\n') {
            if signatures.len() == MAX_SIGNATURES {
                return Err(NoteError::TooManySignatures);
            }
            let rest = line.strip_prefix(SIG_PREFIX).ok_or(NoteError::Malformed(NoteSyntax::SignatureDash))?;
            let (name, b64) = rest.split_once(' ').ok_or(NoteError::Malformed(NoteSyntax::SignatureLine))?;
            if !valid_key_name(name) {
                return Err(NoteError::Malformed(NoteSyntax::SignatureKeyName));
            }
            let blob = B64.decode(b64).map_err(|_| NoteError::Malformed(NoteSyntax::SignatureEncoding))?;
            if blob.len() < 5 {
                return Err(NoteError::Malformed(NoteSyntax::SignatureTooShort));
            }
            let id = u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]);
            signatures.push(NoteSignature { name: name.into(), id, signature: blob[4..].to_vec() });
        }
        Ok(Self { text: text.into(), signatures })
    }
}

/// Verifies notes signed by one trusted key.
#[derive(Clone, Debug)]
pub struct NoteVerifier {
    key: VerifierKey,
}

impl NoteVerifier {
    /// A verifier trusting `key`.
    pub fn new(key: VerifierKey) -> Self {
        Self { key }
    }

    /// The trusted key.
    pub fn key(&self) -> &VerifierKey {
        &self.key
    }

    /// Parses and verifies a note, returning its text.
    pub fn open(&self, note: &str) -> Result<String, NoteError> {
        let parsed = SignedNote::parse(note)?;
        self.verify(&parsed)?;
        Ok(parsed.text)
    }

    /// Verifies a parsed note: some line from the trusted key must verify,
    /// and no line claiming the trusted key may fail.
    pub fn verify(&self, note: &SignedNote) -> Result<(), NoteError> {
        let mut verified = false;
        for sig in &note.signatures {
            if sig.name != self.key.name || sig.id != self.key.id {
                continue;
            }
            let sig_bytes: [u8; 64] =
                sig.signature.as_slice().try_into().map_err(|_| NoteError::BadSignature { name: sig.name.clone() })?;
            self.key
                .key
                .verify_strict(note.text.as_bytes(), &Signature::from_bytes(&sig_bytes))
                .map_err(|_| NoteError::BadSignature { name: sig.name.clone() })?;
            verified = true;
        }
        if verified {
            Ok(())
        } else {
            Err(NoteError::UnknownKey { name: self.key.name.clone(), id: self.key.id })
        }
    }
}

/// Signs notes with an Ed25519 key (`std` only: auditors never sign).
#[cfg(feature = "std")]
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    id: u32,
    key: ed25519_dalek::SigningKey,
}

#[cfg(feature = "std")]
impl fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NoteSigner({}+{:08x})", self.name, self.id)
    }
}

#[cfg(feature = "std")]
impl NoteSigner {
    /// A signer named `name` (the log origin for checkpoints).
    pub fn new(name: &str, key: ed25519_dalek::SigningKey) -> Result<Self, NoteError> {
        if !valid_key_name(name) {
            return Err(NoteError::MalformedKey(KeySyntax::Name));
        }
        let id = key_id(name, key.verifying_key().as_bytes());
        Ok(Self { name: name.into(), id, key })
    }

    /// Parses a Go-style `PRIVATE+KEY+<name>+<hex8 id>+<base64(0x01 || seed)>`.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let rest = text.trim_end().strip_prefix("PRIVATE+KEY+").ok_or(NoteError::MalformedKey(KeySyntax::SignerPrefix))?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::MalformedKey(KeySyntax::SignerFields));
        };
        let raw = B64.decode(b64).map_err(|_| NoteError::MalformedKey(KeySyntax::KeyEncoding))?;
        let seed: [u8; 32] = match raw.split_first() {
            Some((&ALG_ED25519, seed)) => seed.try_into().map_err(|_| NoteError::MalformedKey(KeySyntax::SeedLength))?,
            _ => return Err(NoteError::MalformedKey(KeySyntax::KeyType)),
        };
        let signer = Self::new(name, ed25519_dalek::SigningKey::from_bytes(&seed))?;
        if format!("{:08x}", signer.id) != id_hex {
            return Err(NoteError::MalformedKey(KeySyntax::KeyIdMismatch));
        }
        Ok(signer)
    }

    /// The Go `sumdb/note` private key string; keep it secret.
    pub fn to_private_key(&self) -> String {
        let mut raw = [0u8; 33];
        raw[0] = ALG_ED25519;
        raw[1..].copy_from_slice(self.key.as_bytes());
        format!("PRIVATE+KEY+{}+{:08x}+{}", self.name, self.id, B64.encode(raw))
    }

    /// The verifier key others use to check this signer.
    pub fn verifier_key(&self) -> VerifierKey {
        VerifierKey { name: self.name.clone(), id: self.id, key: self.key.verifying_key() }
    }

    /// Signs `text` (which must end in a newline) into a complete note.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        use ed25519_dalek::Signer as _;
        if !text.ends_with('\n') || text.ends_with("\n\n") {
            return Err(NoteError::Malformed(NoteSyntax::TextNewlines));
        }
        if text.bytes().any(|b| b < 0x20 && b != b'\n') {
            return Err(NoteError::Malformed(NoteSyntax::ControlCharacter));
        }
        let sig = self.key.sign(text.as_bytes());
        let mut blob = Vec::with_capacity(68);
        blob.extend_from_slice(&self.id.to_be_bytes());
        blob.extend_from_slice(&sig.to_bytes());
        Ok(format!("{text}\n{SIG_PREFIX}{} {}\n", self.name, B64.encode(blob)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Known-answer vector from golang.org/x/mod/sumdb/note (note.go package
    // documentation and note_test.go, module version v0.41.0).
    const GO_SIGNER: &str = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const GO_VERIFIER: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const GO_NOTE: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    #[test]
    fn go_vector_verifies() {
        let key = VerifierKey::parse(GO_VERIFIER).unwrap();
        assert_eq!(key.to_string(), GO_VERIFIER);
        assert_eq!(NoteVerifier::new(key).open(GO_NOTE).unwrap(), GO_TEXT);
    }

    #[cfg(feature = "std")]
    #[test]
    fn go_vector_signs_byte_for_byte() {
        let signer = NoteSigner::parse(GO_SIGNER).unwrap();
        assert_eq!(signer.verifier_key().to_string(), GO_VERIFIER);
        assert_eq!(signer.to_private_key(), GO_SIGNER);
        assert_eq!(signer.sign(GO_TEXT).unwrap(), GO_NOTE);
    }

    #[test]
    fn tampered_text_fails() {
        let v = NoteVerifier::new(VerifierKey::parse(GO_VERIFIER).unwrap());
        let bad = GO_NOTE.replace("cryptography", "cryptographY");
        assert!(matches!(v.open(&bad), Err(NoteError::BadSignature { .. })));
    }

    #[test]
    fn unknown_keys_are_ignored_but_one_known_is_required() {
        let v = NoteVerifier::new(VerifierKey::parse(GO_VERIFIER).unwrap());
        let with_other = GO_NOTE.replacen("\u{2014} PeterNeumann", "\u{2014} Other AAAAAAAAAAAAAAAA\n\u{2014} PeterNeumann", 1);
        assert_eq!(v.open(&with_other).unwrap(), GO_TEXT);
        let only_other = GO_NOTE.replace("PeterNeumann x08g", "Other x08g");
        assert!(matches!(v.open(&only_other), Err(NoteError::UnknownKey { .. })));
    }

    #[test]
    fn too_many_signatures_rejected() {
        let mut note = String::from(GO_TEXT);
        note.push('\n');
        for _ in 0..=MAX_SIGNATURES {
            note.push_str("\u{2014} Other AAAAAAAAAAAAAAAA\n");
        }
        assert_eq!(SignedNote::parse(&note), Err(NoteError::TooManySignatures));
    }

    #[test]
    fn malformed_keys_rejected() {
        for bad in [
            "",
            "PeterNeumann",
            "PeterNeumann+c74f20a3",
            "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+c74f20a3+ApxzZ2QcUPDhMQegwxbzhKqiBfsVkmqq",
        ] {
            assert!(VerifierKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn malformed_notes_rejected() {
        for bad in [
            "",
            "text\n",
            "text\n\n",
            "text\n\nno dash\n",
            "text\n\n\u{2014} name\n",
            "te\u{1}xt\n\n\u{2014} n AAAAAAAA\n",
            "text\n\n\u{2014} n AAAAAAAA",
        ] {
            assert!(SignedNote::parse(bad).is_err(), "{bad:?}");
        }
    }
}
