//! Owned `commit_bits` inputs for the tests: edge-case proofs first, then
//! random ones, all of one shape.

use curve25519_dalek::scalar::Scalar;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use zk::prover::engine::BitSecrets;
use zk::prover::gens::ShapeBases;

/// The secrets of one proof, owned; [`Self::borrow`] is what engines take.
pub struct OwnedSecrets {
    values: Vec<u64>,
    bits: usize,
    a: Scalar,
    s: Scalar,
    s_l: Vec<Scalar>,
    s_r: Vec<Scalar>,
}

impl OwnedSecrets {
    pub fn borrow(&self) -> BitSecrets<'_> {
        BitSecrets { values: &self.values, bits: self.bits, a_blinding: &self.a, s_blinding: &self.s, s_l: &self.s_l, s_r: &self.s_r }
    }

    /// The same secrets with `s_L` one scalar short: a shape mismatch.
    pub fn truncated(&self) -> Self {
        let mut t =
            Self { values: self.values.clone(), bits: self.bits, a: self.a, s: self.s, s_l: self.s_l.clone(), s_r: self.s_r.clone() };
        t.s_l.pop();
        t
    }
}

/// A scalar whose bytes are 0x00, 0x77, 0x78, 0x7f, 0x80, 0x88 or 0xff:
/// every carry pattern of signed radix-16 recoding (0x77 passes a carry
/// on, 0x78 and up make one), kept canonical by a top byte below 0x10.
pub fn recoding_stress(r: &mut ChaCha20Rng) -> Scalar {
    let mut b = [0u8; 32];
    for x in b.iter_mut() {
        *x = [0x00, 0x77, 0x78, 0x7f, 0x80, 0x88, 0xff][r.gen_range(0..7)];
    }
    b[31] &= 0x0f;
    Option::from(Scalar::from_canonical_bytes(b)).unwrap_or(Scalar::ONE)
}

/// `count` proofs of `shape`: all zero (values and scalars), all ones
/// (values `u64::MAX`, scalars −1), recoding-stress scalars with
/// alternating bits, then random values and scalars, a quarter of them
/// zero.
pub fn proofs(shape: &ShapeBases, count: usize, seed: u64) -> Vec<OwnedSecrets> {
    let mut r = ChaCha20Rng::seed_from_u64(seed);
    let (bits, parties) = shape.key();
    let n = shape.n();
    (0..count)
        .map(|p| {
            let scalar = |r: &mut ChaCha20Rng| match p {
                0 => Scalar::ZERO,
                1 => -Scalar::ONE,
                2 => recoding_stress(r),
                _ if r.gen_bool(0.25) => Scalar::ZERO,
                _ => Scalar::random(r),
            };
            let values = (0..parties)
                .map(|_| match p {
                    0 => 0,
                    1 => u64::MAX,
                    2 => 0x5555_5555_5555_5555,
                    _ => r.gen(),
                })
                .collect();
            let (a, s) = (scalar(&mut r), scalar(&mut r));
            let s_l = (0..n).map(|_| scalar(&mut r)).collect();
            let s_r = (0..n).map(|_| scalar(&mut r)).collect();
            OwnedSecrets { values, bits, a, s, s_l, s_r }
        })
        .collect()
}
