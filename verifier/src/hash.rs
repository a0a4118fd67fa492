//! RFC 9162 §2.1.1 Merkle tree hashing.
//!
//! Leaves and interior nodes are domain separated by a one-byte prefix so a
//! leaf can never be passed off as a node (second-preimage resistance).

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Length of every hash in the tree (SHA-256).
pub const HASH_LEN: usize = 32;

/// A SHA-256 tree hash.
pub type Hash = [u8; HASH_LEN];

/// Prefix of leaf hashes.
pub const LEAF_PREFIX: u8 = 0x00;
/// Prefix of interior node hashes.
pub const NODE_PREFIX: u8 = 0x01;

/// `MTH({})`: the root of the empty tree, SHA-256 of the empty string.
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b,
    0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([LEAF_PREFIX]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([NODE_PREFIX]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Compares two hashes in constant time.
pub fn hashes_equal(a: &Hash, b: &Hash) -> bool {
    a.ct_eq(b).into()
}

/// Reads a hash from a slice, `None` unless it is exactly 32 bytes.
pub fn hash_from_slice(bytes: &[u8]) -> Option<Hash> {
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        let digest: Hash = Sha256::digest([]).into();
        assert_eq!(digest, EMPTY_ROOT);
    }

    #[test]
    fn leaf_and_node_are_domain_separated() {
        let l = leaf_hash(&[]);
        let mut concat = [0u8; 64];
        concat[..32].copy_from_slice(&l);
        concat[32..].copy_from_slice(&l);
        assert_ne!(node_hash(&l, &l), leaf_hash(&concat));
    }
}
