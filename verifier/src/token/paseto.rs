//! PASETO `v4.public` (paseto.io, "Version 4", "v4.public"): Ed25519 over
//! the pre-authentication encoding of the header, the payload, the footer
//! and the implicit assertion.
//!
//! Written here over `ed25519-dalek` (the signature library of every other
//! check in this crate) rather than taken from `pasetors`, whose `v4`
//! feature verifies with `ed25519-compact`: the token check is a hot path
//! of resource servers, measured next to a bare `ed25519-dalek` verify
//! (docs/PERFORMANCE.md). `pasetors` is the independent implementation the
//! tests check this one against, both ways, with the specification's test
//! vectors.
//!
//! Tokens of this log carry no footer; a token with one is refused. The
//! implicit assertion separates what one key signs: an action token and a
//! trust statement are signed with different assertions
//! ([`super::TOKEN_ASSERTION`], [`crate::statement::STATEMENT_ASSERTION`]),
//! so neither verifies as the other.

use alloc::string::String;
use alloc::vec::Vec;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

/// The header of every `v4.public` token.
pub const HEADER: &str = "v4.public.";

/// The longest token accepted, in bytes (checked before decoding).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Why a token's envelope is refused (before its claims are read).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasetoError {
    /// Longer than [`MAX_TOKEN_BYTES`].
    #[error("the token is longer than {MAX_TOKEN_BYTES} bytes")]
    TooLong,
    /// Not `v4.public.<base64url>` without a footer, or too short to hold
    /// a signature.
    #[error("not a v4.public token without a footer")]
    Malformed,
    /// The signature does not verify with the issuer's key.
    #[error("the token's signature does not verify with the issuer key")]
    BadSignature,
}

/// PAE (paseto.io, "Common", "Authentication Padding"): the count of
/// pieces, then each piece, every length as a 64-bit little-endian integer
/// with the top bit clear.
pub fn pae(pieces: &[&[u8]]) -> Vec<u8> {
    let le64 = |n: usize| ((n as u64) & (u64::MAX >> 1)).to_le_bytes();
    let mut out = Vec::with_capacity(8 + pieces.iter().map(|p| 8 + p.len()).sum::<usize>());
    out.extend_from_slice(&le64(pieces.len()));
    for piece in pieces {
        out.extend_from_slice(&le64(piece.len()));
        out.extend_from_slice(piece);
    }
    out
}

/// Signs `payload` into a `v4.public` token without a footer.
pub fn sign(key: &SigningKey, payload: &[u8], implicit: &[u8]) -> String {
    let signature = key.sign(&pae(&[HEADER.as_bytes(), payload, b"", implicit]));
    let mut body = Vec::with_capacity(payload.len() + 64);
    body.extend_from_slice(payload);
    body.extend_from_slice(&signature.to_bytes());
    let mut token = String::with_capacity(HEADER.len() + body.len() * 4 / 3 + 4);
    token.push_str(HEADER);
    URL_SAFE_NO_PAD.encode_string(&body, &mut token);
    token
}

/// Verifies a `v4.public` token without a footer and returns its payload.
/// The length is checked before anything is decoded.
pub fn verify(key: &VerifyingKey, token: &str, implicit: &[u8]) -> Result<Vec<u8>, PasetoError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(PasetoError::TooLong);
    }
    let body = token.strip_prefix(HEADER).ok_or(PasetoError::Malformed)?;
    // A footer follows a second dot; this log's tokens have none.
    if body.contains('.') {
        return Err(PasetoError::Malformed);
    }
    let mut bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| PasetoError::Malformed)?;
    if bytes.len() < 64 {
        return Err(PasetoError::Malformed);
    }
    let split = bytes.len() - 64;
    let signature = Signature::from_slice(&bytes[split..]).map_err(|_| PasetoError::Malformed)?;
    bytes.truncate(split);
    key.verify_strict(&pae(&[HEADER.as_bytes(), &bytes, b"", implicit]), &signature).map_err(|_| PasetoError::BadSignature)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn pae_matches_the_specification_examples() {
        // paseto.io "Common": PAE([]), PAE(['']), PAE(['test']).
        assert_eq!(pae(&[]), [0u8; 8]);
        assert_eq!(pae(&[b""]), [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let mut test = pae(&[b"test"]);
        assert_eq!(test.split_off(16), b"test");
        assert_eq!(test, [1, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn round_trip_and_refusals() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let token = sign(&key, br#"{"a":1}"#, b"ctx");
        assert_eq!(verify(&key.verifying_key(), &token, b"ctx").unwrap(), br#"{"a":1}"#);
        assert_eq!(verify(&key.verifying_key(), &token, b"other"), Err(PasetoError::BadSignature));
        let other = SigningKey::from_bytes(&[8; 32]);
        assert_eq!(verify(&other.verifying_key(), &token, b"ctx"), Err(PasetoError::BadSignature));
        assert_eq!(verify(&key.verifying_key(), &format!("{token}.Zm9v"), b"ctx"), Err(PasetoError::Malformed));
        assert_eq!(verify(&key.verifying_key(), &token.replacen("v4.public.", "v4.local.", 1), b"ctx"), Err(PasetoError::Malformed));
        assert_eq!(verify(&key.verifying_key(), "v4.public.AAAA", b"ctx"), Err(PasetoError::Malformed));
        assert_eq!(verify(&key.verifying_key(), &"v".repeat(MAX_TOKEN_BYTES + 1), b""), Err(PasetoError::TooLong));
        // A flipped payload byte.
        let mut tampered = token.into_bytes();
        tampered[12] ^= 1;
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(verify(&key.verifying_key(), &tampered, b"ctx").is_err());
    }
}
