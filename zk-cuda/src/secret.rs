//! What the secret path (`commit_bits`) reads, laid out once for the
//! kernel (`zk_commit_bits` in `cuda/kernels.cu`) and its host twin
//! (`zk_host_commit_bits` in `cuda/host.c`): the bases of a shape's secret
//! tables and one record of secrets per proof.

use curve25519_dalek::ristretto::CompressedRistretto;
use zk::prover::engine::BitSecrets;
use zk::prover::gens::ShapeBases;
use zk::BackendFailure;

/// The bases of a shape's secret tables, in the order the kernel indexes
/// them: `G₀ … G_{N−1}, H₀ … H_{N−1}, B̃` (the Pedersen blinding base, the
/// `B̃` of `A` and `S`, where [`ShapeBases`] ends with the value base `B`).
pub(crate) fn secret_bases(shape: &ShapeBases) -> Vec<CompressedRistretto> {
    let n = shape.n();
    let mut bases = Vec::with_capacity(2 * n + 1);
    bases.extend_from_slice(&shape.compressed()[..2 * n]);
    bases.push(zk::commit::pedersen_gens().B_blinding.compress());
    bases
}

/// The records of one call: per proof, `2N + 2` canonical scalars of 32
/// bytes (`s_L`, `s_R`, `s`, `a`, so that scalar `i < 2N + 1` multiplies
/// secret base `i` in `S`), then the `parties` values as little-endian
/// `u64`s.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Records {
    /// Bits per value.
    pub(crate) bits: u32,
    /// Values per proof.
    pub(crate) parties: u32,
    /// Bytes per proof.
    pub(crate) record: usize,
    /// Proofs.
    pub(crate) proofs: usize,
}

impl Records {
    /// The layout for `secrets`, each of which must have `shape`'s bit
    /// count, value count and `s_L`, `s_R` lengths.
    pub(crate) fn new(shape: &ShapeBases, secrets: &[BitSecrets<'_>]) -> Result<Self, BackendFailure> {
        let (bits, parties) = shape.key();
        let n = shape.n();
        let fits = secrets.iter().all(|s| s.bits == bits && s.values.len() == parties && s.s_l.len() == n && s.s_r.len() == n);
        if !fits || !(1..=64).contains(&bits) {
            return Err(BackendFailure::Shape);
        }
        let record = (2 * n + 2) * 32 + parties * 8;
        // The kernel takes these as u32 and addresses records with size_t.
        let (Ok(bits), Ok(parties), Ok(_)) = (u32::try_from(bits), u32::try_from(parties), u32::try_from(record)) else {
            return Err(BackendFailure::Shape);
        };
        Ok(Self { bits, parties, record, proofs: secrets.len() })
    }

    /// Bytes of all records.
    pub(crate) fn bytes(&self) -> usize {
        self.record * self.proofs
    }

    /// Writes one proof's record into `dst` (`self.record` bytes).
    pub(crate) fn pack(&self, dst: &mut [u8], secrets: &BitSecrets<'_>) {
        let scalars = core::iter::empty().chain(secrets.s_l).chain(secrets.s_r).chain([secrets.s_blinding, secrets.a_blinding]);
        let (scalar_bytes, value_bytes) = dst.split_at_mut(self.record - 8 * self.parties as usize);
        for (d, s) in scalar_bytes.chunks_exact_mut(32).zip(scalars) {
            d.copy_from_slice(s.as_bytes());
        }
        for (d, v) in value_bytes.chunks_exact_mut(8).zip(secrets.values) {
            d.copy_from_slice(&v.to_le_bytes());
        }
    }
}
