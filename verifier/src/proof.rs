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
pub fn inclusion_proof_len(index: u64, size: u64) -> usize {
    // Inner part: levels where index and size-1 share a parent; border part:
    // the remaining set bits of the right edge above them.
    let inner = 64 - (index ^ (size - 1)).leading_zeros() as usize;
    let border = index.checked_shr(inner as u32).unwrap_or(0).count_ones() as usize;
    inner + border
}

/// Computes the root implied by an inclusion proof, RFC 9162 §2.1.3.2.
pub fn root_from_inclusion(leaf_hash: &Hash, index: u64, size: u64, proof: &[Hash]) -> Result<Hash, InclusionError> {
    if index >= size {
        return Err(InclusionError::IndexBeyondTree { index, size });
    }
    let expected = inclusion_proof_len(index, size);
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

/// Number of hashes in the consistency proof from `old` to `new` leaves.
pub fn consistency_proof_len(old: u64, new: u64) -> usize {
    if old == 0 || old >= new {
        return 0;
    }
    // The subtrees shared by both trees up to the lowest set bit of `old`
    // are skipped; when `old` is a power of two its root is the start value.
    let shift = old.trailing_zeros();
    let inner = 64 - ((old - 1) ^ (new - 1)).leading_zeros() as usize;
    let border = (old - 1).checked_shr(inner as u32).unwrap_or(0).count_ones() as usize;
    let start = usize::from(old != 1u64 << shift);
    inner - shift as usize + border + start
}

/// Verifies that the tree of `new` leaves with `new_root` extends the tree of
/// `old` leaves with `old_root`, RFC 9162 §2.1.4.2.
pub fn verify_consistency(old: u64, new: u64, proof: &[Hash], old_root: &Hash, new_root: &Hash) -> Result<(), ConsistencyError> {
    if old > new {
        return Err(ConsistencyError::OldSizeLarger { old, new });
    }
    let expected = consistency_proof_len(old, new);
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
                assert_eq!(inclusion_proof_len(index, size), inclusion_plan(index, size).unwrap().len(), "{index}/{size}");
            }
            for old in 0..=size {
                assert_eq!(consistency_proof_len(old, size), consistency_plan(old, size).unwrap().len(), "{old}->{size}");
            }
        }
    }
}
