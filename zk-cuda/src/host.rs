//! The kernels' curve arithmetic (`cuda/curve25519.cuh`), compiled for
//! the host by `build.rs` and wrapped safely, so that tests check it
//! against curve25519-dalek on machines without a GPU.
//!
//! This is a test and reference path: single-threaded, variable-time, and
//! built for public inputs only.
#![allow(unsafe_code)]

use core::fmt;

use curve25519_dalek::ristretto::CompressedRistretto;
use curve25519_dalek::scalar::Scalar;
use zk::BackendFailure;

/// Entries per table window (`ZK_WINDOW_ENTRIES`).
pub const WINDOW_ENTRIES: usize = 128;
/// Windows per base (`ZK_WINDOWS`): 32 signed radix-256 digits cover
/// every canonical scalar.
pub const WINDOWS: usize = 32;

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
    fn zk_host_build_table(table: *mut NielsEntry, bases: *const HostPoint, n: usize);
    fn zk_host_msm(out: *mut u8, table: *const NielsEntry, n: usize, scalars: *const u8, rows: usize);
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
        let points = bases.iter().map(|b| HostPoint::decode(&b.0)).collect::<Option<Vec<_>>>()?;
        let mut entries = vec![NielsEntry { words: [0; 32] }; points.len() * WINDOWS * WINDOW_ENTRIES];
        // SAFETY: `entries` holds exactly `points.len()` bases' windows of
        // entries, aligned as `zk_niels`; `points` holds `points.len()` `zk_p3`s.
        unsafe { zk_host_build_table(entries.as_mut_ptr(), points.as_ptr(), points.len()) };
        Some(Self { bases: points.len(), entries })
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
        if self.bases == 0 || scalars.len() % self.bases != 0 {
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
        Ok(out
            .chunks_exact(32)
            .map(|c| {
                let mut a = [0u8; 32];
                a.copy_from_slice(c);
                CompressedRistretto(a)
            })
            .collect())
    }
}

impl fmt::Debug for HostTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostTable").field("bases", &self.bases).finish()
    }
}
