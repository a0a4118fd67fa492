//! RFC 6962 §2.1 tree hashing for rs_merkle, written here from the RFC and
//! not from `verifier::hash`, so the cross-checks that use it compare the
//! ledger against code that shares nothing with it but SHA-256.
//!
//! One copy, included with `#[path]` by the tests that need it
//! (`tests/interop.rs` and `verifier/tests/interop.rs`).

use sha2::{Digest, Sha256};

/// An RFC 6962 hash: SHA-256.
pub type Hash = [u8; 32];

/// The leaf hash `SHA-256(0x00 || leaf)`.
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    Sha256::new().chain_update([0u8]).chain_update(leaf).finalize().into()
}

/// RFC 6962 hashing for rs_merkle: leaves go in already hashed with
/// [`leaf_hash`], interior nodes are `SHA-256(0x01 || left || right)`, and
/// a lone right-edge node is promoted unchanged, which gives the RFC's
/// tree shape.
#[derive(Clone, Debug)]
pub struct Rfc6962;

impl rs_merkle::Hasher for Rfc6962 {
    type Hash = Hash;

    fn hash(data: &[u8]) -> Hash {
        Sha256::digest(data).into()
    }

    fn concat_and_hash(left: &Hash, right: Option<&Hash>) -> Hash {
        match right {
            Some(r) => Sha256::new().chain_update([1u8]).chain_update(left).chain_update(r).finalize().into(),
            None => *left,
        }
    }
}
