//! Inclusion and consistency proof verification, RFC 9162 §2.1.3.2 and
//! §2.1.4.2. Root comparisons are constant time.

use crate::hash::{hashes_equal, node_hash, Hash};

/// Why an inclusion proof was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InclusionError {
    /// The leaf index is not below the tree size.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexBeyondTree { index: u64, size: u64 },
    /// The proof has the wrong number of hashes for this index and size.
    #[error("inclusion proof has {got} hashes, {expected} expected for this index and tree size")]
    WrongLength { expected: usize, got: usize },
    /// The proof is well formed but leads to a different root.
    #[error("inclusion proof does not lead to the expected root")]
    RootMismatch,
}

/// Why a consistency proof was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConsistencyError {
    /// The old size is larger than the new size (a rollback).
    #[error("old tree size {old} is larger than new tree size {new}")]
    OldSizeLarger { old: u64, new: u64 },
    /// The proof has the wrong number of hashes for these sizes.
    #[error("consistency proof has {got} hashes, {expected} expected for sizes {old} -> {new}")]
    WrongLength { old: u64, new: u64, expected: usize, got: usize },
    /// Equal sizes, different roots: the log forked.
    #[error("trees of equal size {size} have different roots")]
    EqualSizeDifferentRoots { size: u64 },
    /// The proof does not reproduce the old root.
    #[error("consistency proof does not reproduce the old root")]
    OldRootMismatch,
    /// The proof does not reproduce the new root.
    #[error("consistency proof does not reproduce the new root")]
    NewRootMismatch,
}

/// Number of hashes in the inclusion proof of `index` in a tree of `size`.
///
/// A leaf at or beyond the tree size (every index of the empty tree) has no
/// inclusion proof at all, so that is an error rather than a length: a
/// caller that sized a buffer from it would otherwise accept a proof for a
/// leaf the tree does not hold.
pub fn inclusion_proof_len(index: u64, size: u64) -> Result<usize, InclusionError> {
    if index >= size {
        return Err(InclusionError::IndexBeyondTree { index, size });
    }
    // Inner part: levels where index and size-1 share a parent; border part:
    // the remaining set bits of the right edge above them.
    let inner = 64 - (index ^ (size - 1)).leading_zeros() as usize;
    let border = index.checked_shr(inner as u32).unwrap_or(0).count_ones() as usize;
    Ok(inner + border)
}

/// Computes the root implied by an inclusion proof, RFC 9162 §2.1.3.2.
pub fn root_from_inclusion(leaf_hash: &Hash, index: u64, size: u64, proof: &[Hash]) -> Result<Hash, InclusionError> {
    let expected = inclusion_proof_len(index, size)?;
    if proof.len() != expected {
        return Err(InclusionError::WrongLength { expected, got: proof.len() });
    }
    let mut fn_ = index;
    let mut sn = size - 1;
    let mut r = *leaf_hash;
    for p in proof {
        if sn == 0 {
            return Err(InclusionError::WrongLength { expected, got: proof.len() });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(InclusionError::WrongLength { expected, got: proof.len() });
    }
    Ok(r)
}

/// Verifies that `leaf_hash` is at `index` in the tree of `size` with `root`.
pub fn verify_inclusion(leaf_hash: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> Result<(), InclusionError> {
    let computed = root_from_inclusion(leaf_hash, index, size, proof)?;
    if hashes_equal(&computed, root) {
        Ok(())
    } else {
        Err(InclusionError::RootMismatch)
    }
}

/// Number of hashes in the consistency proof from `old` to `new` leaves:
/// none when `old` is 0 (every tree extends the empty one) or equals `new`.
/// A tree never shrinks, so `old > new` is an error, not an empty proof.
pub fn consistency_proof_len(old: u64, new: u64) -> Result<usize, ConsistencyError> {
    if old > new {
        return Err(ConsistencyError::OldSizeLarger { old, new });
    }
    if old == 0 || old == new {
        return Ok(0);
    }
    // The subtrees shared by both trees up to the lowest set bit of `old`
    // are skipped; when `old` is a power of two its root is the start value.
    let shift = old.trailing_zeros();
    let inner = 64 - ((old - 1) ^ (new - 1)).leading_zeros() as usize;
    let border = (old - 1).checked_shr(inner as u32).unwrap_or(0).count_ones() as usize;
    let start = usize::from(old != 1u64 << shift);
    Ok(inner - shift as usize + border + start)
}

/// Verifies that the tree of `new` leaves with `new_root` extends the tree of
/// `old` leaves with `old_root`, RFC 9162 §2.1.4.2.
pub fn verify_consistency(old: u64, new: u64, proof: &[Hash], old_root: &Hash, new_root: &Hash) -> Result<(), ConsistencyError> {
    let expected = consistency_proof_len(old, new)?;
    if proof.len() != expected {
        return Err(ConsistencyError::WrongLength { old, new, expected, got: proof.len() });
    }
    if old == new {
        return if hashes_equal(old_root, new_root) { Ok(()) } else { Err(ConsistencyError::EqualSizeDifferentRoots { size: old }) };
    }
    if old == 0 {
        // Every tree extends the empty tree.
        return Ok(());
    }

    // When `old` is a power of two, its root is the first node of the path.
    let (first, rest) = if old.is_power_of_two() { (*old_root, proof) } else { (proof[0], &proof[1..]) };
    let mut fn_ = old - 1;
    let mut sn = new - 1;
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let mut fr = first;
    let mut sr = first;
    for c in rest {
        if sn == 0 {
            return Err(ConsistencyError::WrongLength { old, new, expected, got: proof.len() });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ConsistencyError::WrongLength { old, new, expected, got: proof.len() });
    }
    if !hashes_equal(&fr, old_root) {
        return Err(ConsistencyError::OldRootMismatch);
    }
    if !hashes_equal(&sr, new_root) {
        return Err(ConsistencyError::NewRootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{consistency_plan, inclusion_plan};

    #[test]
    fn proof_lengths_match_plans() {
        for size in 1..=130u64 {
            for index in 0..size {
                assert_eq!(inclusion_proof_len(index, size), Ok(inclusion_plan(index, size).unwrap().len()), "{index}/{size}");
            }
            for old in 0..=size {
                assert_eq!(consistency_proof_len(old, size), Ok(consistency_plan(old, size).unwrap().len()), "{old}->{size}");
            }
        }
    }

    #[test]
    fn lengths_of_proofs_that_cannot_exist_are_errors() {
        // Finding 17 of issue 8: `inclusion_proof_len(_, 0)` computed
        // `size - 1` and panicked (overflow checks are on in release).
        for index in [0, 1, u64::MAX] {
            assert_eq!(inclusion_proof_len(index, 0), Err(InclusionError::IndexBeyondTree { index, size: 0 }));
        }
        assert_eq!(inclusion_proof_len(5, 5), Err(InclusionError::IndexBeyondTree { index: 5, size: 5 }));
        assert_eq!(inclusion_proof_len(u64::MAX, u64::MAX), Err(InclusionError::IndexBeyondTree { index: u64::MAX, size: u64::MAX }));
        assert_eq!(inclusion_proof_len(0, 1), Ok(0));
        // The last leaf of 2^64 - 1 leaves: one sibling per larger subtree.
        assert_eq!(inclusion_proof_len(u64::MAX - 1, u64::MAX), Ok(63));
        assert_eq!(inclusion_proof_len(0, u64::MAX), Ok(64));
        // A tree never shrinks: no proof, not an empty one.
        assert_eq!(consistency_proof_len(2, 1), Err(ConsistencyError::OldSizeLarger { old: 2, new: 1 }));
        assert_eq!(consistency_proof_len(1, 0), Err(ConsistencyError::OldSizeLarger { old: 1, new: 0 }));
        assert_eq!(consistency_proof_len(0, 0), Ok(0));
        assert_eq!(consistency_proof_len(0, u64::MAX), Ok(0));
        assert_eq!(consistency_proof_len(u64::MAX, u64::MAX), Ok(0));
        assert!(consistency_proof_len(u64::MAX - 1, u64::MAX).is_ok());
        assert!(consistency_proof_len(1, u64::MAX).is_ok());
    }

    #[test]
    fn verifying_against_empty_or_too_small_trees_is_an_error() {
        let h = [7u8; 32];
        assert_eq!(verify_inclusion(&h, 0, 0, &[], &h), Err(InclusionError::IndexBeyondTree { index: 0, size: 0 }));
        assert_eq!(root_from_inclusion(&h, 3, 3, &[h, h]), Err(InclusionError::IndexBeyondTree { index: 3, size: 3 }));
        assert_eq!(verify_consistency(3, 2, &[], &h, &h), Err(ConsistencyError::OldSizeLarger { old: 3, new: 2 }));
        assert_eq!(verify_consistency(0, 0, &[], &h, &h), Ok(()));
    }

    proptest::proptest! {
        /// Whatever sizes, indices and proof lengths a caller passes, the
        /// public functions answer with a value or a typed error.
        #[test]
        fn never_panics(a in proptest::prelude::any::<u64>(), b in proptest::prelude::any::<u64>(), small in 0u64..300, len in 0usize..70) {
            let h = [1u8; 32];
            let proof = vec![h; len];
            for (x, y) in [(a, b), (small, b), (a, small), (small, small.saturating_add(len as u64))] {
                let _ = inclusion_proof_len(x, y);
                let _ = consistency_proof_len(x, y);
                let _ = root_from_inclusion(&h, x, y, &proof);
                let _ = verify_inclusion(&h, x, y, &proof, &h);
                let _ = verify_consistency(x, y, &proof, &h, &h);
            }
        }
    }
}
