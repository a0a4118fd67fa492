//! Commitments to hidden fields.
//!
//! * Integers (`u64`) are hidden behind Pedersen commitments on
//!   Ristretto255, `C = v·B + r·B_blinding`, with bulletproofs' default
//!   generators ([`pedersen_gens`]). They are perfectly hiding and
//!   computationally binding, and predicates on them are proven with range
//!   proofs ([`crate::proof`]). An opening is `(v, r)`.
//! * Strings and bytes are hidden SD-JWT style (RFC 9901 §4.2): the
//!   disclosure is the base64url (no padding) encoding of the JSON array
//!   `[salt, name, value]`, written canonically (RFC 8785), with a 128-bit
//!   random salt, itself base64url; the commitment is SHA-256 of the
//!   disclosure's ASCII. Any SD-JWT implementation recomputes the digest from
//!   the disclosure string.

use alloc::string::String;
use alloc::vec::Vec;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bulletproofs::PedersenGens;
use curve25519_dalek::ristretto::CompressedRistretto;
use curve25519_dalek::scalar::Scalar;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{Defect, Encoded};
use crate::ZkError;

/// Bytes of a salt.
pub const SALT_LEN: usize = 16;
/// Bytes of a commitment (compressed Ristretto point or SHA-256 digest).
pub const COMMITMENT_LEN: usize = 32;

/// The Pedersen generators every commitment and proof uses.
pub fn pedersen_gens() -> PedersenGens {
    PedersenGens::default()
}

/// A Pedersen commitment to a `u64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PedersenCommitment(pub CompressedRistretto);

impl PedersenCommitment {
    /// Commits to `value` with `blinding`.
    pub fn commit(value: u64, blinding: &Blinding) -> Self {
        Self(pedersen_gens().commit(Scalar::from(value), blinding.0).compress())
    }

    /// The 32-byte encoding.
    pub fn to_bytes(&self) -> [u8; COMMITMENT_LEN] {
        self.0.to_bytes()
    }

    /// Decodes 32 bytes, checking they are a canonical Ristretto point.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ZkError> {
        let c = CompressedRistretto::from_slice(bytes).map_err(|_| ZkError::malformed(Encoded::PedersenCommitment, Defect::Length(32)))?;
        c.decompress().ok_or(ZkError::malformed(Encoded::PedersenCommitment, Defect::NotAPoint))?;
        Ok(Self(c))
    }

    /// Whether `(value, blinding)` opens this commitment (constant time in
    /// the comparison).
    pub fn is_opened_by(&self, value: u64, blinding: &Blinding) -> bool {
        Self::commit(value, blinding).0.as_bytes().ct_eq(self.0.as_bytes()).into()
    }
}

/// A Pedersen blinding factor. Zeroized on drop.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Blinding(pub(crate) Scalar);

impl core::fmt::Debug for Blinding {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Blinding(..)")
    }
}

impl Blinding {
    /// A uniformly random blinding factor.
    pub fn random<R: rand_core::RngCore + rand_core::CryptoRng>(rng: &mut R) -> Self {
        Self(Scalar::random(rng))
    }

    /// The canonical 32-byte little-endian scalar.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// Decodes a canonical scalar.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ZkError> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| ZkError::malformed(Encoded::BlindingFactor, Defect::Length(32)))?;
        Option::<Scalar>::from(Scalar::from_canonical_bytes(arr))
            .map(Self)
            .ok_or(ZkError::malformed(Encoded::BlindingFactor, Defect::NotCanonicalScalar))
    }
}

/// A 128-bit salt of a hash commitment. Zeroized on drop.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Salt(pub [u8; SALT_LEN]);

impl core::fmt::Debug for Salt {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Salt(..)")
    }
}

impl Salt {
    /// A uniformly random salt.
    pub fn random<R: rand_core::RngCore + rand_core::CryptoRng>(rng: &mut R) -> Self {
        let mut s = [0u8; SALT_LEN];
        rng.fill_bytes(&mut s);
        Self(s)
    }

    /// base64url, no padding (22 characters), as it appears in a disclosure.
    pub fn to_base64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// Decodes the base64url form.
    pub fn from_base64(text: &str) -> Result<Self, ZkError> {
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| ZkError::malformed(Encoded::Salt, Defect::NotBase64Url))?;
        bytes.as_slice().try_into().map(Self).map_err(|_| ZkError::malformed(Encoded::Salt, Defect::Length(16)))
    }
}

/// A salted SHA-256 commitment to a string field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashCommitment(pub [u8; COMMITMENT_LEN]);

impl HashCommitment {
    /// Commits to `value` of field `name` under `salt`.
    pub fn commit(salt: &Salt, name: &str, value: &str) -> Self {
        Self::of_disclosure(&disclosure(salt, name, value))
    }

    /// The digest of an SD-JWT disclosure string.
    pub fn of_disclosure(disclosure: &str) -> Self {
        Self(Sha256::digest(disclosure.as_bytes()).into())
    }

    /// Decodes 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ZkError> {
        bytes.try_into().map(Self).map_err(|_| ZkError::malformed(Encoded::HashCommitment, Defect::Length(32)))
    }

    /// Whether `(salt, name, value)` opens this commitment (constant-time
    /// comparison).
    pub fn is_opened_by(&self, salt: &Salt, name: &str, value: &str) -> bool {
        Self::commit(salt, name, value).0.ct_eq(&self.0).into()
    }
}

/// The SD-JWT disclosure string of `[salt, name, value]`.
pub fn disclosure(salt: &Salt, name: &str, value: &str) -> String {
    disclosure_with_salt_text(&salt.to_base64(), name, value)
}

/// The SD-JWT disclosure string for a salt given as text (SD-JWT salts
/// are any string; ours are 16 random bytes in base64url).
pub fn disclosure_with_salt_text(salt: &str, name: &str, value: &str) -> String {
    let mut json = Vec::with_capacity(40 + salt.len() + name.len() + value.len());
    json.push(b'[');
    write_json_string(salt, &mut json);
    json.push(b',');
    write_json_string(name, &mut json);
    json.push(b',');
    write_json_string(value, &mut json);
    json.push(b']');
    let out = URL_SAFE_NO_PAD.encode(&json);
    json.zeroize();
    out
}

/// RFC 8785 §3.2.2.2 string serialization.
fn write_json_string(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x09 => out.extend_from_slice(b"\\t"),
            0x0a => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            0x0d => out.extend_from_slice(b"\\r"),
            0x00..=0x1f => out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sd_jwt_disclosure_matches_the_rfc_example() {
        // RFC 9901 §4.2.1: salt "_26bc4LT-ac6q2KI6cBW5es", claim family_name "Möbius".
        // The RFC's example uses a space after each comma; ours is the
        // canonical form, so check the structure rather than its string.
        let d = disclosure_with_salt_text("_26bc4LT-ac6q2KI6cBW5es", "family_name", "Möbius");
        let json = URL_SAFE_NO_PAD.decode(&d).unwrap();
        assert_eq!(core::str::from_utf8(&json).unwrap(), r#"["_26bc4LT-ac6q2KI6cBW5es","family_name","Möbius"]"#);
        let salt = Salt([0x5a; SALT_LEN]);
        assert_eq!(Salt::from_base64(&salt.to_base64()).unwrap(), salt);
        assert!(HashCommitment::commit(&salt, "family_name", "Möbius").is_opened_by(&salt, "family_name", "Möbius"));
        assert!(!HashCommitment::commit(&salt, "family_name", "Möbius").is_opened_by(&salt, "family_name", "Mobius"));
        // The RFC's own disclosure string (spaces after commas) and digest:
        // the digest is over whatever string was issued.
        let rfc = HashCommitment::of_disclosure("WyJfMjZiYzRMVC1hYzZxMktJNmNCVzVlcyIsICJmYW1pbHlfbmFtZSIsICJNw7ZiaXVzIl0");
        assert_eq!(URL_SAFE_NO_PAD.encode(rfc.0), "X9yH0Ajrdm1Oij4tWso9UzzKJvPoDxwmuEcO3XAdRC0");
    }

    #[test]
    fn escapes_like_rfc8785() {
        let mut out = Vec::new();
        write_json_string("a\"\\\u{1}\n€", &mut out);
        assert_eq!(core::str::from_utf8(&out).unwrap(), "\"a\\\"\\\\\\u0001\\n€\"");
    }

    #[test]
    fn pedersen_opens_only_with_its_opening() {
        let r = Blinding::from_bytes(&[7u8; 32]).unwrap();
        let c = PedersenCommitment::commit(1250, &r);
        assert!(c.is_opened_by(1250, &r));
        assert!(!c.is_opened_by(1251, &r));
        assert_eq!(PedersenCommitment::from_bytes(&c.to_bytes()).unwrap(), c);
        assert!(PedersenCommitment::from_bytes(&[0xffu8; 32]).is_err());
        assert!(Blinding::from_bytes(&[0xffu8; 32]).is_err());
    }
}
