//! The kernels' curve arithmetic (`cuda/curve25519.cuh`,
//! `cuda/ct_fixed_base.cuh`), compiled for the host by `build.rs` and
//! wrapped safely, so that tests check it against curve25519-dalek on
//! machines without a GPU.
//!
//! This is a test and reference path (tables are built on all cores, the
//! rest runs on one). [`HostTable`] is the public, variable-time path of
//! `msm_public`; [`HostSecretTable`] runs the constant-time code of
//! `commit_bits`, the source the kernel runs, though nobody checks what a
//! host C compiler makes of it.
#![allow(unsafe_code)]

use core::fmt;

use curve25519_dalek::ristretto::CompressedRistretto;
use curve25519_dalek::scalar::Scalar;
use rayon::prelude::*;
use zeroize::Zeroizing;
use zk::prover::engine::BitSecrets;
use zk::prover::gens::ShapeBases;
use zk::BackendFailure;

use crate::secret::{secret_bases, Records};

/// Entries per table window (`ZK_WINDOW_ENTRIES`).
pub const WINDOW_ENTRIES: usize = 128;
/// Windows per base (`ZK_WINDOWS`): 32 signed radix-256 digits cover
/// every canonical scalar.
pub const WINDOWS: usize = 32;
/// Windows per base of a secret table (`ZK_CT_WINDOWS`): 64 signed
/// radix-16 digits.
pub const CT_WINDOWS: usize = 64;
/// Entries per window of a secret table (`ZK_CT_ENTRIES`): `1 … 8` times
/// the window base.
pub const CT_ENTRIES: usize = 8;

/// The shape of a fixed-base table: window `k` of a base `P` holds
/// `(j + 1) · 2^(log_radix·k) · P` for `j < entries`, `windows` windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableLayout {
    /// Windows per base.
    pub windows: usize,
    /// `log₂` of the radix.
    pub log_radix: u32,
    /// Entries per window.
    pub entries: usize,
}

impl TableLayout {
    /// `msm_public`'s tables: radix 256, 32 windows of 128 entries (512 KiB a base).
    pub const PUBLIC: Self = Self { windows: WINDOWS, log_radix: 8, entries: WINDOW_ENTRIES };
    /// `commit_bits`' tables: radix 16, 64 windows of 8 entries (64 KiB a base).
    pub const SECRET: Self = Self { windows: CT_WINDOWS, log_radix: 4, entries: CT_ENTRIES };

    /// Entries per base.
    pub const fn entries_per_base(&self) -> usize {
        self.windows * self.entries
    }
}

/// `zk_p3`: extended coordinates, four field elements of ten `i32` limbs.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct HostPoint {
    limbs: [i32; 40],
}

/// `zk_niels`: one table entry, 128 bytes, 16-byte aligned.
#[repr(C, align(16))]
#[derive(Clone, Copy)]
struct NielsEntry {
    words: [i32; 32],
}

const _: () = assert!(core::mem::size_of::<HostPoint>() == 160);
const _: () = assert!(core::mem::size_of::<NielsEntry>() == 128);

extern "C" {
    fn zk_host_decode(out: *mut HostPoint, bytes: *const u8) -> i32;
    fn zk_host_encode(out: *mut u8, p: *const HostPoint);
    fn zk_host_identity(out: *mut HostPoint);
    fn zk_host_add(out: *mut HostPoint, p: *const HostPoint, q: *const HostPoint);
    fn zk_host_double(out: *mut HostPoint, p: *const HostPoint);
    fn zk_host_neg(out: *mut HostPoint, p: *const HostPoint);
    fn zk_host_scale_coordinates(out: *mut HostPoint, p: *const HostPoint, lambda: *const u8);
    fn zk_host_normalize(out: *mut HostPoint, p: *const HostPoint);
    fn zk_host_coordinates(out: *mut u8, p: *const HostPoint);
    fn zk_host_fe_mul(out: *mut u8, a: *const u8, b: *const u8);
    fn zk_host_fe_invert(out: *mut u8, a: *const u8);
    fn zk_host_build_table(
        table: *mut NielsEntry,
        bases: *const HostPoint,
        n: usize,
        windows: usize,
        log_radix: i32,
        entries: usize,
    ) -> i32;
    fn zk_host_msm(out: *mut u8, table: *const NielsEntry, n: usize, scalars: *const u8, rows: usize);
    fn zk_host_ct_recode(digits: *mut i8, scalar: *const u8);
    fn zk_host_ct_select(out: *mut HostPoint, window: *const NielsEntry, d: i32);
    fn zk_host_ct_mul(out: *mut HostPoint, table: *const NielsEntry, scalar: *const u8);
    fn zk_host_commit_bits(
        out: *mut u8,
        table: *const NielsEntry,
        bits: u32,
        parties: u32,
        records: *const u8,
        record: usize,
        proofs: usize,
    );
}

impl HostPoint {
    const ZERO: Self = Self { limbs: [0; 40] };

    /// The identity.
    pub fn identity() -> Self {
        let mut out = Self::ZERO;
        // SAFETY: `out` is a valid, writable `zk_p3`.
        unsafe { zk_host_identity(&mut out) };
        out
    }

    /// RFC 9496 decoding; `None` exactly where `CompressedRistretto::decompress` is.
    pub fn decode(bytes: &[u8; 32]) -> Option<Self> {
        let mut out = Self::ZERO;
        // SAFETY: `bytes` is 32 readable bytes and `out` a writable `zk_p3`.
        let ok = unsafe { zk_host_decode(&mut out, bytes.as_ptr()) };
        (ok == 1).then_some(out)
    }

    /// RFC 9496 encoding.
    pub fn encode(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        // SAFETY: `out` is 32 writable bytes and `self` a valid `zk_p3`.
        unsafe { zk_host_encode(out.as_mut_ptr(), self) };
        out
    }

    /// [`Self::encode`] as dalek's type.
    pub fn compress(&self) -> CompressedRistretto {
        CompressedRistretto(self.encode())
    }

    /// `self + other`.
    pub fn add(&self, other: &Self) -> Self {
        let mut out = Self::ZERO;
        // SAFETY: all three are valid `zk_p3`s; the C side reads its inputs before writing.
        unsafe { zk_host_add(&mut out, self, other) };
        out
    }

    /// `2 · self`.
    pub fn double(&self) -> Self {
        let mut out = Self::ZERO;
        // SAFETY: both are valid `zk_p3`s.
        unsafe { zk_host_double(&mut out, self) };
        out
    }

    /// `−self`.
    pub fn neg(&self) -> Self {
        let mut out = Self::ZERO;
        // SAFETY: both are valid `zk_p3`s.
        unsafe { zk_host_neg(&mut out, self) };
        out
    }

    /// The same point with every coordinate multiplied by the field
    /// element `lambda` (little-endian, top bit ignored): another
    /// representative, as a multiplication chain would produce.
    pub fn scale_coordinates(&self, lambda: &[u8; 32]) -> Self {
        let mut out = Self::ZERO;
        // SAFETY: `lambda` is 32 readable bytes; both points are valid `zk_p3`s.
        unsafe { zk_host_scale_coordinates(&mut out, self, lambda.as_ptr()) };
        out
    }

    /// The same point with `Z = 1`, by one field inversion.
    pub fn normalize(&self) -> Self {
        let mut out = Self::ZERO;
        // SAFETY: both are valid `zk_p3`s.
        unsafe { zk_host_normalize(&mut out, self) };
        out
    }

    /// Canonical encodings of `X`, `Y`, `Z`, `T`.
    pub fn coordinates(&self) -> [[u8; 32]; 4] {
        let mut raw = [0u8; 128];
        // SAFETY: `raw` is 128 writable bytes and `self` a valid `zk_p3`.
        unsafe { zk_host_coordinates(raw.as_mut_ptr(), self) };
        let mut out = [[0u8; 32]; 4];
        for (o, c) in out.iter_mut().zip(raw.chunks_exact(32)) {
            o.copy_from_slice(c);
        }
        out
    }
}

impl fmt::Debug for HostPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("HostPoint").field(&self.compress()).finish()
    }
}

/// `a · b` in GF(2²⁵⁵ − 19), canonical little-endian bytes (inputs'
/// top bits ignored).
pub fn field_mul(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    // SAFETY: three distinct 32-byte buffers.
    unsafe { zk_host_fe_mul(out.as_mut_ptr(), a.as_ptr(), b.as_ptr()) };
    out
}

/// `1 / a` (and 0 for 0), canonical little-endian bytes.
pub fn field_invert(a: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    // SAFETY: two distinct 32-byte buffers.
    unsafe { zk_host_fe_invert(out.as_mut_ptr(), a.as_ptr()) };
    out
}

/// The fixed-base tables of a list of bases, built by the kernels' code:
/// for base `i`, window `k`, entry `j`, `(j + 1) · 256ᵏ · Pᵢ` in affine
/// Niels form.
pub struct HostTable {
    bases: usize,
    entries: Vec<NielsEntry>,
}

impl HostTable {
    /// Tables for `bases`; `None` if one of them does not decode.
    pub fn new(bases: &[CompressedRistretto]) -> Option<Self> {
        let (bases, entries) = build_tables(bases, TableLayout::PUBLIC)?;
        Some(Self { bases, entries })
    }

    /// Number of bases.
    pub fn len(&self) -> usize {
        self.bases
    }

    /// Whether there are no bases.
    pub fn is_empty(&self) -> bool {
        self.bases == 0
    }

    /// For every row of `self.len()` scalars, `Σᵢ sᵢ · Pᵢ`, compressed:
    /// the arithmetic of the `zk_msm` kernel, one row at a time.
    pub fn msm(&self, scalars: &[Scalar]) -> Result<Vec<CompressedRistretto>, BackendFailure> {
        if self.bases == 0 || !scalars.len().is_multiple_of(self.bases) {
            return Err(BackendFailure::Shape);
        }
        let rows = scalars.len() / self.bases;
        let mut bytes = Vec::with_capacity(scalars.len() * 32);
        for s in scalars {
            bytes.extend_from_slice(s.as_bytes());
        }
        let mut out = vec![0u8; rows * 32];
        // SAFETY: `bytes` is rows · bases canonical 32-byte scalars (a
        // `Scalar` is always reduced), `out` has 32 bytes per row, and
        // `entries` is the table of exactly `self.bases` bases.
        unsafe { zk_host_msm(out.as_mut_ptr(), self.entries.as_ptr(), self.bases, bytes.as_ptr(), rows) };
        Ok(out.chunks_exact(32).map(compressed).collect())
    }
}

impl fmt::Debug for HostTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostTable").field("bases", &self.bases).finish()
    }
}

/// Decodes `bases` and builds their tables in `layout` (bases in
/// parallel); `None` if a base does not decode.
fn build_tables(bases: &[CompressedRistretto], layout: TableLayout) -> Option<(usize, Vec<NielsEntry>)> {
    let points = bases.iter().map(|b| HostPoint::decode(&b.0)).collect::<Option<Vec<_>>>()?;
    let per_base = layout.entries_per_base();
    let mut entries = vec![NielsEntry { words: [0; 32] }; points.len() * per_base];
    let log_radix = i32::try_from(layout.log_radix).ok()?;
    let built = entries.par_chunks_mut(per_base).zip(&points).all(|(table, point)| {
        // SAFETY: `table` holds one base's `layout.windows · layout.entries`
        // entries, aligned as `zk_niels`; `point` is one valid `zk_p3`.
        unsafe { zk_host_build_table(table.as_mut_ptr(), point, 1, layout.windows, log_radix, layout.entries) == 1 }
    });
    built.then_some((points.len(), entries))
}

/// The signed radix-16 digits `d₀ … d₆₃` (`Σ dₖ·16ᵏ = s`, `dₖ ∈ [−8, 8)`)
/// of a scalar, as the secret path recodes it: byte carries by masks, then
/// two digits a byte, all arithmetic.
pub fn ct_recode(s: &Scalar) -> [i8; 64] {
    let mut digits = [0i8; 64];
    // SAFETY: 64 writable digits; a `Scalar`'s 32 bytes are canonical.
    unsafe { zk_host_ct_recode(digits.as_mut_ptr(), s.as_bytes().as_ptr()) };
    digits
}

/// The constant-time fixed-base tables of `commit_bits` (radix 16, 64
/// windows of 8 entries a base) and the kernel's arithmetic over them.
pub struct HostSecretTable {
    bases: usize,
    entries: Vec<NielsEntry>,
}

impl HostSecretTable {
    /// Secret tables for `bases`; `None` if one of them does not decode.
    pub fn new(bases: &[CompressedRistretto]) -> Option<Self> {
        let (bases, entries) = build_tables(bases, TableLayout::SECRET)?;
        Some(Self { bases, entries })
    }

    /// The secret tables of a shape, over the bases `zk_commit_bits` reads:
    /// `G₀ … G_{N−1}, H₀ … H_{N−1}, B̃`.
    pub fn for_shape(shape: &ShapeBases) -> Option<Self> {
        Self::new(&secret_bases(shape))
    }

    /// Number of bases.
    pub fn len(&self) -> usize {
        self.bases
    }

    /// Whether there are no bases.
    pub fn is_empty(&self) -> bool {
        self.bases == 0
    }

    fn base(&self, i: usize) -> Option<&[NielsEntry]> {
        let per_base = TableLayout::SECRET.entries_per_base();
        self.entries.get(i * per_base..(i + 1) * per_base)
    }

    /// `d · 16^window · P_base` by the masked eight-way selection
    /// (`zk_ct_select`), `d ∈ [−8, 8]`; `None` out of those ranges.
    pub fn select(&self, base: usize, window: usize, d: i8) -> Option<CompressedRistretto> {
        let table = self.base(base)?;
        if window >= CT_WINDOWS || !(-8..=8).contains(&d) {
            return None;
        }
        let mut out = HostPoint::ZERO;
        // SAFETY: the window's 8 entries exist in `table`; `out` is a writable `zk_p3`.
        unsafe { zk_host_ct_select(&mut out, table[window * CT_ENTRIES..].as_ptr(), i32::from(d)) };
        Some(out.compress())
    }

    /// `k · P_base` in constant time (`zk_ct_acc_scalar`: recoding,
    /// selection, 64 mixed additions); `None` for a base out of range.
    pub fn mul(&self, base: usize, k: &Scalar) -> Option<CompressedRistretto> {
        let table = self.base(base)?;
        let mut out = HostPoint::ZERO;
        // SAFETY: `table` is one base's secret table; a `Scalar`'s 32 bytes are canonical.
        unsafe { zk_host_ct_mul(&mut out, table.as_ptr(), k.as_bytes().as_ptr()) };
        Some(out.compress())
    }

    /// `[A, S]` of every proof, from the records `zk_commit_bits` reads,
    /// by the kernel's arithmetic one proof at a time. The tables must be
    /// [`Self::for_shape`]`(shape)`'s.
    pub fn commit_bits(&self, shape: &ShapeBases, secrets: &[BitSecrets<'_>]) -> Result<Vec<[CompressedRistretto; 2]>, BackendFailure> {
        let layout = Records::new(shape, secrets)?;
        if self.bases != 2 * shape.n() + 1 {
            return Err(BackendFailure::Shape);
        }
        let mut records = Zeroizing::new(vec![0u8; layout.bytes()]);
        for (dst, s) in records.chunks_exact_mut(layout.record).zip(secrets) {
            layout.pack(dst, s);
        }
        let mut out = vec![0u8; layout.proofs * 64];
        // SAFETY: `entries` is the secret table of the 2N + 1 bases the
        // records index; `records` holds `proofs` records of `record` bytes
        // laid out by `Records`; `out` has 64 bytes per proof.
        unsafe {
            zk_host_commit_bits(
                out.as_mut_ptr(),
                self.entries.as_ptr(),
                layout.bits,
                layout.parties,
                records.as_ptr(),
                layout.record,
                layout.proofs,
            )
        };
        Ok(out.chunks_exact(64).map(|c| [compressed(&c[..32]), compressed(&c[32..])]).collect())
    }
}

impl fmt::Debug for HostSecretTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostSecretTable").field("bases", &self.bases).finish()
    }
}

/// A 32-byte chunk as a compressed point.
pub(crate) fn compressed(bytes: &[u8]) -> CompressedRistretto {
    let mut a = [0u8; 32];
    a.copy_from_slice(bytes);
    CompressedRistretto(a)
}
