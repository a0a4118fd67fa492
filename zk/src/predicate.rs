//! Predicates on committed integers and how they reduce to range proofs.
//!
//! Every predicate is an interval `lo ≤ x ≤ hi` over `u64` (`x ≤ hi` is
//! `lo = 0`, `x ≥ lo` is `hi = u64::MAX`). A Bulletproofs range proof shows
//! that committed values lie in `[0, 2^n)`, `n ∈ {8, 16, 32, 64}`, so a
//! claim on a commitment `C = x·B + r·B̃` becomes range statements on
//! commitments anyone can derive from `C`:
//!
//! * `a = x − lo`, committed as `C − lo·B` (blinding `r`), and
//! * `b = hi − x`, committed as `hi·B − C` (blinding `−r`),
//!
//! with `n` the smallest size such that `hi − lo < 2^n`. Since `a, b ≥ 0`,
//! both are below `2^64`, and `a + b = hi − lo` holds in a field of order
//! ≈ 2^252, there is no wrap-around: `lo ≤ x ≤ hi` as integers. A `ge`
//! claim (`hi = u64::MAX`) needs only `a`: `x = lo + a` with `a ≥ 0`
//! already means `x ≥ lo`. Proving `b` alone is not enough for `le`: a
//! committed "negative" `x` (a scalar above the `u64`s) would satisfy it.

use alloc::string::String;
use core::fmt;

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;

use crate::commit::{pedersen_gens, PedersenCommitment};
use crate::ZkError;

/// An interval predicate `lo ≤ x ≤ hi`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Predicate {
    /// Inclusive lower bound.
    pub lo: u64,
    /// Inclusive upper bound.
    pub hi: u64,
}

impl Predicate {
    /// `x ≤ hi`.
    pub const fn le(hi: u64) -> Self {
        Self { lo: 0, hi }
    }

    /// `x ≥ lo`.
    pub const fn ge(lo: u64) -> Self {
        Self { lo, hi: u64::MAX }
    }

    /// `lo ≤ x ≤ hi`; [`ZkError::EmptyPredicate`] when `lo > hi`.
    pub fn between(field: &str, lo: u64, hi: u64) -> Result<Self, ZkError> {
        if lo > hi {
            return Err(ZkError::EmptyPredicate { field: field.into(), lo, hi });
        }
        Ok(Self { lo, hi })
    }

    /// Whether `x` satisfies the predicate.
    pub const fn holds(&self, x: u64) -> bool {
        self.lo <= x && x <= self.hi
    }

    /// Range-proof bit size: the smallest `n ∈ {8, 16, 32, 64}` with
    /// `hi − lo < 2^n`.
    pub const fn bits(&self) -> usize {
        let span = self.hi.saturating_sub(self.lo);
        if span < 1 << 8 {
            8
        } else if span < 1 << 16 {
            16
        } else if span < 1 << 32 {
            32
        } else {
            64
        }
    }

    /// How many range-proof values the predicate reduces to (1 or 2).
    pub const fn values(&self) -> usize {
        if self.hi == u64::MAX {
            1
        } else {
            2
        }
    }

    /// Formats the predicate about a field, e.g. `amount ≤ 10000`.
    pub fn describe(&self, field: &str) -> String {
        use alloc::format;
        match (self.lo, self.hi) {
            (0, hi) if hi != u64::MAX => format!("{field} ≤ {hi}"),
            (lo, u64::MAX) => format!("{field} ≥ {lo}"),
            (lo, hi) => format!("{lo} ≤ {field} ≤ {hi}"),
        }
    }
}

/// A predicate about one committed field: the public statement a proof is
/// checked against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The field's name.
    pub field: String,
    /// What is claimed about its value.
    pub predicate: Predicate,
    /// The field's Pedersen commitment.
    pub commitment: PedersenCommitment,
}

impl fmt::Display for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.predicate.describe(&self.field))
    }
}

impl Claim {
    /// The commitments of the range-proof values the claim reduces to, in
    /// order (`x − lo`, then `hi − x` unless `hi = u64::MAX`).
    pub(crate) fn value_commitments(&self) -> Result<([CompressedRistretto; 2], usize), ZkError> {
        let c: RistrettoPoint = self.commitment.0.decompress().ok_or_else(|| ZkError::BadCommitment { field: self.field.clone() })?;
        let b = pedersen_gens().B;
        let a = (c - Scalar::from(self.predicate.lo) * b).compress();
        let upper = (Scalar::from(self.predicate.hi) * b - c).compress();
        Ok(([a, upper], self.predicate.values()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_and_values() {
        assert_eq!(Predicate::le(255).bits(), 8);
        assert_eq!(Predicate::le(256).bits(), 16);
        assert_eq!(Predicate::le(10_000).bits(), 16);
        assert_eq!(Predicate { lo: 1_000_000, hi: 1_000_100 }.bits(), 8);
        assert_eq!(Predicate::ge(18).bits(), 64);
        assert_eq!(Predicate::ge(u64::MAX - 3).bits(), 8);
        assert_eq!(Predicate::le(5).values(), 2);
        assert_eq!(Predicate::ge(5).values(), 1);
        assert_eq!(Predicate::le(10_000).describe("amount"), "amount ≤ 10000");
        assert_eq!(Predicate::ge(18).describe("age"), "age ≥ 18");
        assert_eq!(Predicate { lo: 18, hi: 65 }.describe("age"), "18 ≤ age ≤ 65");
        assert!(Predicate::between("x", 3, 2).is_err());
        assert!(Predicate::le(3).holds(3) && !Predicate::le(3).holds(4));
    }
}
