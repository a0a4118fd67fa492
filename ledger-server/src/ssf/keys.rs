//! The transmitter's SET signing key and its JWK Set (RFC 7517).
//!
//! One key per algorithm, generated on first start and kept beside the
//! log's keys in the data directory (`ssf-rs256.key`, `ssf-es256.key`,
//! `ssf-eddsa.key`; mode 0600, refused when group or others may read it,
//! as every secret file: [`ledger_core::keys`]). The file holds one line:
//! the base64 of the private key's PKCS #8 DER. RS256 keys are 2048-bit
//! RSA (the CAEP interoperability profile's minimum), made by the `rsa`
//! crate; ES256 (P-256) and EdDSA (Ed25519) keys are made by `ring`.
//! Signing is `jsonwebtoken`'s, on `ring`. The key id (`kid`) is the
//! RFC 7638 thumbprint of the public JWK, so it names the key and nothing
//! else.

use std::path::Path;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64URL};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use rsa::traits::PublicKeyParts as _;
use serde_json::{json, Value};
use sha2::Digest as _;

/// Bits of a generated RSA key.
pub const RSA_BITS: usize = 2048;

/// The SET signing algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (the CAEP interoperability profile's).
    #[value(name = "RS256")]
    Rs256,
    /// ECDSA P-256 with SHA-256.
    #[value(name = "ES256")]
    Es256,
    /// Ed25519.
    #[value(name = "EdDSA")]
    EdDsa,
}

impl SigningAlg {
    /// The JWS `alg` name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    /// The key file's name in the data directory.
    pub const fn key_file(self) -> &'static str {
        match self {
            Self::Rs256 => "ssf-rs256.key",
            Self::Es256 => "ssf-es256.key",
            Self::EdDsa => "ssf-eddsa.key",
        }
    }

    fn jws(self) -> Algorithm {
        match self {
            Self::Rs256 => Algorithm::RS256,
            Self::Es256 => Algorithm::ES256,
            Self::EdDsa => Algorithm::EdDSA,
        }
    }
}

/// A SET signing key: the private key in `jsonwebtoken`'s form, its
/// public JWK and key id.
pub struct SetSigner {
    alg: SigningAlg,
    kid: String,
    key: EncodingKey,
    jwk: Value,
}

impl std::fmt::Debug for SetSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetSigner").field("alg", &self.alg).field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl SetSigner {
    /// Loads the key for `alg` from `data_dir`, or generates and stores
    /// one. Returns the signer and whether the key was created now.
    pub fn load_or_create(data_dir: &Path, alg: SigningAlg) -> Result<(Self, bool), ledger_core::Error> {
        let path = data_dir.join(alg.key_file());
        let what = "SSF signing key";
        let (text, created) = ledger_core::keys::load_or_create_with(&path, what, || {
            generate_pkcs8(alg).map(|der| STANDARD.encode(der)).map_err(ledger_core::Error::Config)
        })?;
        let bad = |e: String| ledger_core::Error::Config(format!("{what} {}: {e}", path.display()));
        let der = STANDARD.decode(text.trim()).map_err(|e| bad(format!("not base64: {e}")))?;
        Ok((Self::from_pkcs8(alg, &der).map_err(bad)?, created))
    }

    /// A signer from a PKCS #8 DER private key.
    pub fn from_pkcs8(alg: SigningAlg, der: &[u8]) -> Result<Self, String> {
        let (key, mut jwk) = match alg {
            SigningAlg::Rs256 => {
                let private = rsa::RsaPrivateKey::from_pkcs8_der(der).map_err(|e| format!("not an RSA PKCS #8 key: {e}"))?;
                if private.size() * 8 < RSA_BITS {
                    return Err(format!("an RS256 key must have at least {RSA_BITS} bits"));
                }
                let pkcs1 = private.to_pkcs1_der().map_err(|e| e.to_string())?;
                let n = B64URL.encode(private.n().to_bytes_be());
                let e = B64URL.encode(private.e().to_bytes_be());
                (EncodingKey::from_rsa_der(pkcs1.as_bytes()), json!({"e": e, "kty": "RSA", "n": n}))
            }
            SigningAlg::Es256 => {
                let rng = ring::rand::SystemRandom::new();
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
                    .map_err(|e| format!("not a P-256 PKCS #8 key: {e}"))?;
                // An uncompressed point: 0x04 ‖ x ‖ y.
                let point = pair.public_key().as_ref();
                let (x, y) = point.get(1..).filter(|xy| xy.len() == 64).map(|xy| xy.split_at(32)).ok_or("bad P-256 public key")?;
                (EncodingKey::from_ec_der(der), json!({"crv": "P-256", "kty": "EC", "x": B64URL.encode(x), "y": B64URL.encode(y)}))
            }
            SigningAlg::EdDsa => {
                let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|e| format!("not an Ed25519 PKCS #8 key: {e}"))?;
                let x = B64URL.encode(pair.public_key().as_ref());
                (EncodingKey::from_ed_der(der), json!({"crv": "Ed25519", "kty": "OKP", "x": x}))
            }
        };
        // RFC 7638: the thumbprint hashes the required members in
        // lexicographic order without whitespace, which is how serde_json
        // writes these maps (sorted keys).
        let kid = B64URL.encode(sha2::Sha256::digest(jwk.to_string().as_bytes()));
        if let Some(members) = jwk.as_object_mut() {
            members.insert("kid".into(), Value::from(kid.clone()));
            members.insert("use".into(), Value::from("sig"));
            members.insert("alg".into(), Value::from(alg.name()));
        }
        Ok(Self { alg, kid, key, jwk })
    }

    /// The algorithm.
    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWK Set served at `jwks_uri`.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.jwk] })
    }

    /// Signs `claims` as a SET: a JWS with `typ: secevent+jwt` (RFC 8417
    /// §2.3, SSF §4.1.1), this key's `alg` and `kid`.
    pub fn sign(&self, claims: &Value) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(self.alg.jws());
        header.typ = Some("secevent+jwt".into());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key)
    }
}

/// A new private key for `alg`, PKCS #8 DER.
pub fn generate_pkcs8(alg: SigningAlg) -> Result<Vec<u8>, String> {
    let rng = ring::rand::SystemRandom::new();
    match alg {
        SigningAlg::Rs256 => {
            let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, RSA_BITS).map_err(|e| format!("generating an RSA key: {e}"))?;
            Ok(key.to_pkcs8_der().map_err(|e| e.to_string())?.as_bytes().to_vec())
        }
        SigningAlg::Es256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map(|d| d.as_ref().to_vec())
            .map_err(|_| "generating a P-256 key failed".into()),
        SigningAlg::EdDsa => {
            Ed25519KeyPair::generate_pkcs8(&rng).map(|d| d.as_ref().to_vec()).map_err(|_| "generating an Ed25519 key failed".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_made_once_kept_0600_and_sign_sets() {
        let dir = tempfile::tempdir().unwrap();
        for alg in [SigningAlg::Rs256, SigningAlg::Es256, SigningAlg::EdDsa] {
            let (a, created) = SetSigner::load_or_create(dir.path(), alg).unwrap();
            assert!(created);
            let (b, created) = SetSigner::load_or_create(dir.path(), alg).unwrap();
            assert!(!created);
            assert_eq!((a.kid(), a.jwks()), (b.kid(), b.jwks()), "{alg:?}: the same key after a restart");
            assert_eq!(a.jwks()["keys"][0]["alg"], alg.name());
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                let mode = std::fs::metadata(dir.path().join(alg.key_file())).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600);
            }
            let set = a.sign(&json!({"iss": "https://tr.example", "jti": "1"})).unwrap();
            let header: Value = serde_json::from_slice(&B64URL.decode(set.split('.').next().unwrap()).unwrap()).unwrap();
            assert_eq!(header, json!({"typ": "secevent+jwt", "alg": alg.name(), "kid": a.kid()}));
        }
    }

    /// RFC 7638 §3.1: the thumbprint of the example RSA key.
    #[test]
    fn kid_is_the_rfc7638_thumbprint() {
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMs\
                 tn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajr\
                 n1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let jwk = json!({"e": "AQAB", "kty": "RSA", "n": n});
        assert_eq!(B64URL.encode(sha2::Sha256::digest(jwk.to_string().as_bytes())), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }
}
