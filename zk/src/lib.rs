//! Selective disclosure for Agent Ledger: commitments to hidden fields and
//! zero-knowledge proofs of predicates on them.
//!
//! * [`commit`]: Pedersen commitments (Ristretto255) for integers, SD-JWT
//!   salted SHA-256 commitments for strings.
//! * [`predicate`]: interval predicates (`x ≤ hi`, `x ≥ lo`, `lo ≤ x ≤ hi`)
//!   and how each reduces to Bulletproofs range statements.
//! * [`proof`]: aggregated predicate proofs, their versioned byte encoding,
//!   verification (also without `std`) and parallel verification.
//! * [`prover`] (feature `prover`): proving with a soundness guard, and a
//!   rayon prover pool.
//! * [`labels`]: every transcript label, versioned in one place.
//!
//! ```
//! # #[cfg(feature = "prover")] {
//! use zk::{commit::{Blinding, PedersenCommitment}, predicate::{Claim, Predicate}, prover::{prove, Witness}};
//!
//! let blinding = Blinding::random(&mut rand_core::OsRng);
//! let commitment = PedersenCommitment::commit(1250, &blinding);
//! let claims = [Claim { field: "amount".into(), predicate: Predicate::le(10_000), commitment }];
//! let proof = prove(&claims, &[Witness { value: 1250, blinding }], zk::params()).unwrap();
//! let bytes = proof.to_bytes();
//! zk::PredicateProof::from_bytes(&bytes).unwrap().verify(&claims, zk::params()).unwrap();
//! # }
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod commit;
mod error;
pub mod labels;
pub mod predicate;
pub mod proof;
#[cfg(feature = "prover")]
pub mod prover;

pub use error::{BackendFailure, Defect, Encoded, ZkError};
#[cfg(feature = "std")]
pub use proof::{params, verify_all};
pub use proof::{PredicateProof, ZkParams, MAX_CLAIMS};

/// The curve25519-dalek backend in use, for reports: without a
/// `curve25519_dalek_backend` cfg, curve25519-dalek 4 compiles its SIMD
/// backend on x86_64 and picks AVX2 at run time when the CPU has it
/// (AVX-512 IFMA needs a nightly compiler), else its serial backend.
pub fn curve_backend() -> &'static str {
    curve25519_dalek_backend()
}

#[cfg(all(feature = "std", curve25519_dalek_backend = "serial"))]
fn curve25519_dalek_backend() -> &'static str {
    "serial (forced)"
}

#[cfg(not(all(feature = "std", curve25519_dalek_backend = "serial")))]
fn curve25519_dalek_backend() -> &'static str {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    {
        if std::is_x86_feature_detected!("avx512ifma") && std::is_x86_feature_detected!("avx512vl") {
            return "simd (avx2; avx512ifma needs nightly)";
        }
        if std::is_x86_feature_detected!("avx2") {
            return "simd (avx2, selected at run time)";
        }
    }
    "serial"
}
