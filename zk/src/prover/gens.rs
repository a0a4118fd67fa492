//! The generators of a range-proof shape, regenerated exactly as
//! bulletproofs 5.0 derives them, and cached once per shape.
//!
//! bulletproofs keeps the `H` generators private, so they are rebuilt with
//! its `GeneratorsChain` construction: SHAKE256 over
//! `"GeneratorsChain" ‖ label`, where `label` is `'G'` or `'H'` followed by
//! the party index as a little-endian `u32`, read 64 bytes at a time into
//! `RistrettoPoint::from_uniform_bytes`. A test checks the `G`s against
//! the crate's public ones, and byte-identical proofs check the `H`s.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoBasepointTable, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use sha3::digest::{ExtendableOutput, Update, XofReader};
use sha3::Shake256;

use crate::commit::pedersen_gens;
use crate::error::BackendFailure;
use crate::proof::MAX_VALUES;

/// Whether bulletproofs accepts the shape `(bits, values)`.
pub(crate) fn shape_ok(bits: usize, values: usize) -> bool {
    matches!(bits, 8 | 16 | 32 | 64) && values.is_power_of_two() && values <= MAX_VALUES
}

/// The fixed bases of one shape (`bits` per value, `parties` values), in
/// the order engines index them: `G₀ … G_{N−1}`, `H₀ … H_{N−1}`, then `B`
/// (the Pedersen value base, which carries `c·w` in every round), where
/// `N = bits · parties` and party `j` owns indices `j·bits … (j+1)·bits − 1`.
pub struct ShapeBases {
    bits: usize,
    parties: usize,
    points: Vec<RistrettoPoint>,
    compressed: Vec<CompressedRistretto>,
    cpu: OnceLock<Arc<CpuTable>>,
}

impl fmt::Debug for ShapeBases {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShapeBases").field("bits", &self.bits).field("parties", &self.parties).finish()
    }
}

impl ShapeBases {
    /// The bases of the shape `(bits, parties)`, built on first use and
    /// shared afterwards; [`BackendFailure::Shape`] for a shape
    /// bulletproofs does not prove (so at most 20 shapes are ever built).
    pub fn get(bits: usize, parties: usize) -> Result<Arc<Self>, BackendFailure> {
        if !shape_ok(bits, parties) {
            return Err(BackendFailure::Shape);
        }
        type Shapes = Mutex<BTreeMap<(usize, usize), Arc<ShapeBases>>>;
        static SHAPES: OnceLock<Shapes> = OnceLock::new();
        let shapes = SHAPES.get_or_init(Mutex::default);
        if let Some(s) = shapes.lock().unwrap_or_else(|e| e.into_inner()).get(&(bits, parties)) {
            return Ok(Arc::clone(s));
        }
        // Built outside the lock: two racing builders make equal values.
        let built = Arc::new(Self::build(bits, parties));
        let mut map = shapes.lock().unwrap_or_else(|e| e.into_inner());
        Ok(Arc::clone(map.entry((bits, parties)).or_insert(built)))
    }

    fn build(bits: usize, parties: usize) -> Self {
        let mut points = Vec::with_capacity(2 * bits * parties + 1);
        for label in [b'G', b'H'] {
            for j in 0..parties {
                points.extend(generators(label, j as u32).take(bits));
            }
        }
        points.push(RISTRETTO_BASEPOINT_POINT);
        let compressed = points.iter().map(RistrettoPoint::compress).collect();
        Self { bits, parties, points, compressed, cpu: OnceLock::new() }
    }

    /// `(bits, parties)`: engines key their tables by it.
    pub fn key(&self) -> (usize, usize) {
        (self.bits, self.parties)
    }

    /// Bits per value.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// Values per proof.
    pub fn parties(&self) -> usize {
        self.parties
    }

    /// `N = bits · parties`.
    pub fn n(&self) -> usize {
        self.bits * self.parties
    }

    /// Number of bases: `2N + 1`.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Never: a shape has at least 17 bases.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The bases.
    pub fn points(&self) -> &[RistrettoPoint] {
        &self.points
    }

    /// The bases, compressed (what an accelerator decodes).
    pub fn compressed(&self) -> &[CompressedRistretto] {
        &self.compressed
    }

    /// `G₀ … G_{N−1}`.
    pub(crate) fn g(&self) -> &[RistrettoPoint] {
        &self.points[..self.n()]
    }

    /// `H₀ … H_{N−1}`.
    pub(crate) fn h(&self) -> &[RistrettoPoint] {
        &self.points[self.n()..2 * self.n()]
    }

    pub(crate) fn cpu_table(&self) -> Arc<CpuTable> {
        Arc::clone(self.cpu.get_or_init(|| CpuTable::new(&self.compressed)))
    }
}

/// bulletproofs' `GeneratorsChain` for `label ‖ party` (u32 little-endian).
fn generators(label: u8, party: u32) -> impl Iterator<Item = RistrettoPoint> {
    let mut shake = Shake256::default();
    shake.update(b"GeneratorsChain");
    let mut l = [label, 0, 0, 0, 0];
    l[1..].copy_from_slice(&party.to_le_bytes());
    shake.update(&l);
    let mut reader = shake.finalize_xof();
    core::iter::repeat_with(move || {
        let mut uniform = [0u8; 64];
        reader.read(&mut uniform);
        RistrettoPoint::from_uniform_bytes(&uniform)
    })
}

/// Constant-time fixed-base table of the Pedersen blinding base `B̃`.
pub(crate) fn blinding_table() -> &'static RistrettoBasepointTable {
    static TABLE: OnceLock<RistrettoBasepointTable> = OnceLock::new();
    TABLE.get_or_init(|| RistrettoBasepointTable::create(&pedersen_gens().B_blinding))
}

/// Precomputed variable-time tables for a shape's bases
/// (curve25519-dalek 5's width-8 precomputed Straus).
pub(crate) struct CpuTable(dalek5::ristretto::VartimeRistrettoPrecomputation);

impl CpuTable {
    pub(crate) fn new(compressed: &[CompressedRistretto]) -> Arc<Self> {
        use dalek5::traits::VartimePrecomputedMultiscalarMul as _;
        let points = compressed
            .iter()
            .map(|c| dalek5::ristretto::CompressedRistretto(c.to_bytes()).decompress().expect("generators are valid encodings"));
        Arc::new(Self(dalek5::ristretto::VartimeRistrettoPrecomputation::new(points)))
    }

    pub(crate) fn vartime_multiscalar_mul(&self, scalars: &[Scalar]) -> CompressedRistretto {
        use dalek5::traits::VartimePrecomputedMultiscalarMul as _;
        let scalars =
            scalars.iter().map(|s| dalek5::scalar::Scalar::from_canonical_bytes(s.to_bytes()).unwrap_or(dalek5::scalar::Scalar::ZERO));
        CompressedRistretto(self.0.vartime_multiscalar_mul(scalars).compress().to_bytes())
    }
}

impl fmt::Debug for CpuTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CpuTable")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g_generators_match_the_crates() {
        let params = crate::params();
        let shape = ShapeBases::get(16, 4).unwrap();
        for j in 0..4 {
            let theirs: Vec<_> = params.bp.share(j).G(16).copied().collect();
            assert_eq!(&shape.g()[j * 16..(j + 1) * 16], &theirs[..]);
        }
        assert_eq!(shape.len(), 2 * 64 + 1);
        assert_eq!(shape.points()[128], RISTRETTO_BASEPOINT_POINT);
        assert!(ShapeBases::get(64, 32).is_err() && ShapeBases::get(7, 1).is_err() && ShapeBases::get(64, 3).is_err());
    }
}
