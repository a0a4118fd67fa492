//! Behaviour drift (docs/TRUST.md, "Drift"): each agent's actions hashed
//! into buckets by (action, resource class), its first observations frozen
//! as a baseline, then tumbling windows compared with it by the Population
//! Stability Index `PSI = Σ (q_i − p_i) · ln(q_i / p_i)`, both smoothed by
//! one pseudo-observation per bucket per window's worth of observations
//! (plain +1 Laplace smoothing on a baseline larger than the window would
//! itself read as drift), in integers (log2 by table and interpolation, one
//! multiplication by ln 2 at the end). State is O(B) per agent, an
//! observation O(1), a window's close O(B).
#![deny(clippy::float_arithmetic)]

use alloc::vec;
use alloc::vec::Vec;

use sha2::{Digest, Sha256};

use super::fixed::{self, LN2_Q64};
use super::policy::{Policy, MAX_BUCKETS};
use super::trust::StateError;

/// Version of [`DriftState::to_bytes`].
pub const DRIFT_STATE_VERSION: u8 = 2;

/// Bytes of a stored drift state before its counts.
const DRIFT_HEADER: usize = 19;

/// Domain separation of the bucket hash.
const BUCKET_DOMAIN: &[u8] = b"agent-ledger/drift/v1";

/// A window whose PSI reached the policy's moderate threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DriftFinding {
    /// The window's PSI, thousandths (floor).
    pub psi_milli: u64,
    /// Whether it reached the significant threshold.
    pub significant: bool,
    /// Index of the window's first observation.
    pub first_index: u64,
    /// Index of its last observation.
    pub last_index: u64,
}

/// The class of a resource: scheme and authority of a URL (up to the first
/// `/`, `?` or `#` after `://`), otherwise the resource up to its first
/// `/`, `?`, `#` or `:`; ASCII letters lowercased, ASCII digits removed.
pub fn resource_class(resource: &str) -> Vec<u8> {
    let bytes = resource.as_bytes();
    let end = match resource.find("://") {
        Some(at) => at + 3 + bytes[at + 3..].iter().position(|b| matches!(b, b'/' | b'?' | b'#')).unwrap_or(bytes.len() - at - 3),
        None => bytes.iter().position(|b| matches!(b, b'/' | b'?' | b'#' | b':')).unwrap_or(bytes.len()),
    };
    bytes[..end].iter().filter(|b| !b.is_ascii_digit()).map(u8::to_ascii_lowercase).collect()
}

/// The bucket of an (action, resource) pair among `buckets`: the first 8
/// bytes (big-endian) of SHA-256 over the domain, the action's length
/// (u64, big-endian), the action and the resource class, mod `buckets`
/// (0 when `buckets` is 0).
pub fn bucket(action: &str, resource: &str, buckets: u16) -> u16 {
    bucket_of(observation(action, resource), buckets)
}

/// What [`bucket`] hashes an (action, resource) pair to, before it is
/// reduced mod the bucket count ([`bucket_of`]): the log computes it when
/// it admits an action, off its single sequencing thread.
pub fn observation(action: &str, resource: &str) -> u64 {
    let digest = Sha256::new()
        .chain_update(BUCKET_DOMAIN)
        .chain_update((action.len() as u64).to_be_bytes())
        .chain_update(action.as_bytes())
        .chain_update(resource_class(resource))
        .finalize();
    let mut head = [0; 8];
    head.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(head)
}

/// The bucket of an [`observation`] among `buckets` (0 when `buckets` is
/// 0).
pub fn bucket_of(observation: u64, buckets: u16) -> u16 {
    match buckets {
        0 => 0,
        b => (observation % u64::from(b)) as u16,
    }
}

/// The PSI (thousandths, floor) of a window against a baseline, both as
/// per-bucket counts of equal length, smoothed at the window's scale
/// (docs/TRUST.md, "Drift"): `q_i = (k_i + 1)/(W + B)`,
/// `p_i = (c_i·W + N)/(N·(W + B))`. Counts are at most
/// [`super::policy::MAX_DRIFT_EVENTS`] in all and buckets at most
/// [`MAX_BUCKETS`], which keeps every sum below `2^90`; 0 for an empty
/// baseline or mismatched histograms.
pub fn psi_milli(baseline: &[u32], window: &[u32]) -> u64 {
    let total = |h: &[u32]| h.iter().map(|&c| u64::from(c)).sum::<u64>();
    let (n, w, b) = (total(baseline), total(window), baseline.len() as u64);
    if n == 0 || baseline.len() != window.len() {
        return 0;
    }
    // q_i / p_i = A_i / C_i and q_i − p_i = (A_i − C_i) / (N·(W + B)).
    // Saturating only beyond the documented bounds, where nothing panics
    // but the value means little.
    let sum: u128 = baseline.iter().zip(window).fold(0, |sum, (&c, &k)| {
        let a = n.saturating_mul(u64::from(k) + 1);
        let c = (u64::from(c).saturating_mul(w)).saturating_add(n);
        sum.saturating_add(u128::from(a.abs_diff(c)) * u128::from(fixed::log2(a).abs_diff(fixed::log2(c))))
    });
    let psi_log2 = sum / (u128::from(n) * u128::from(w + b));
    psi_log2.checked_mul(1000 * u128::from(LN2_Q64)).map_or(u64::MAX, |m| u64::try_from(m >> 96).unwrap_or(u64::MAX))
}

/// One agent's drift detector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriftState {
    baseline: Vec<u32>,
    baseline_n: u32,
    window: Vec<u32>,
    window_n: u32,
    window_first: u64,
}

impl DriftState {
    /// An agent with no observation, with the policy's bucket count.
    pub fn new(policy: &Policy) -> Self {
        let b = usize::from(policy.drift.buckets.clamp(1, MAX_BUCKETS));
        Self { baseline: vec![0; b], baseline_n: 0, window: vec![0; b], window_n: 0, window_first: 0 }
    }

    /// Observes the action at `index` in `bucket` (taken mod the bucket
    /// count): the first `baseline_events` make the baseline, then every
    /// `window_events` close a window, a finding when its PSI reaches
    /// `moderate_milli`.
    pub fn observe(&mut self, policy: &Policy, index: u64, bucket: u16) -> Option<DriftFinding> {
        let i = usize::from(bucket) % self.baseline.len();
        if self.baseline_n < policy.drift.baseline_events {
            self.baseline[i] += 1;
            self.baseline_n += 1;
            return None;
        }
        if self.window_n == 0 {
            self.window_first = index;
        }
        self.window[i] += 1;
        self.window_n += 1;
        if self.window_n < policy.drift.window_events {
            return None;
        }
        let psi = psi_milli(&self.baseline, &self.window);
        let first_index = self.window_first;
        self.window.iter_mut().for_each(|c| *c = 0);
        (self.window_n, self.window_first) = (0, 0);
        (psi >= u64::from(policy.drift.moderate_milli)).then_some(DriftFinding {
            psi_milli: psi,
            significant: psi >= u64::from(policy.drift.significant_milli),
            first_index,
            last_index: index,
        })
    }

    /// Observations in the baseline so far, and in the open window.
    pub fn counts(&self) -> (u32, u32) {
        (self.baseline_n, self.window_n)
    }

    /// The storage form (docs/TRUST.md, "Stored encodings"): version 2,
    /// a big-endian header of 19 bytes, then the `2·B` counts as unsigned
    /// LEB128 (most are under 128: one byte each).
    pub fn to_bytes(&self) -> Vec<u8> {
        let b = self.baseline.len();
        let mut out = Vec::with_capacity(DRIFT_HEADER + 2 * b);
        out.push(DRIFT_STATE_VERSION);
        out.extend_from_slice(&(b as u16).to_be_bytes());
        out.extend_from_slice(&self.baseline_n.to_be_bytes());
        out.extend_from_slice(&self.window_n.to_be_bytes());
        out.extend_from_slice(&self.window_first.to_be_bytes());
        for &c in self.baseline.iter().chain(&self.window) {
            let mut c = c;
            while c >= 0x80 {
                out.push((c as u8 & 0x7f) | 0x80);
                c >>= 7;
            }
            out.push(c as u8);
        }
        out
    }

    /// Reads [`to_bytes`](Self::to_bytes), refusing any other length or
    /// version, a count not in its shortest form, a bucket count outside `1..=1024`, counts that do
    /// not add up to their totals or exceed the largest baseline or window,
    /// and a window start set for an empty window.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StateError> {
        let version = bytes.first().copied().unwrap_or(DRIFT_STATE_VERSION);
        if version != DRIFT_STATE_VERSION {
            return Err(StateError::Version(version));
        }
        let (header, body) =
            bytes.split_at_checked(DRIFT_HEADER).ok_or(StateError::Length { expected: DRIFT_HEADER, found: bytes.len() })?;
        let b = usize::from(u16::from_be_bytes([header[1], header[2]]));
        if b == 0 || b > usize::from(MAX_BUCKETS) {
            return Err(StateError::Invalid("bucket count"));
        }
        let be32 = |at: usize| u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]]);
        let (baseline_n, window_n) = (be32(3), be32(7));
        let mut first = [0; 8];
        first.copy_from_slice(&header[11..19]);
        let window_first = u64::from_be_bytes(first);
        let max = u64::from(super::policy::MAX_DRIFT_EVENTS);
        let mut counts = Vec::with_capacity(2 * b);
        let mut rest = body;
        while counts.len() < 2 * b {
            let (count, used) = read_count(rest).ok_or(StateError::Invalid("count"))?;
            counts.push(count);
            rest = &rest[used..];
        }
        if !rest.is_empty() {
            return Err(StateError::Invalid("trailing bytes"));
        }
        let (baseline, window) = (counts[..b].to_vec(), counts[b..].to_vec());
        let total = |c: &[u32]| c.iter().map(|&x| u64::from(x)).sum::<u64>();
        if total(&baseline) != u64::from(baseline_n) || baseline_n as u64 > max {
            return Err(StateError::Invalid("baseline counts"));
        }
        if total(&window) != u64::from(window_n) || window_n as u64 > max || (window_n > 0 && baseline_n == 0) {
            return Err(StateError::Invalid("window counts"));
        }
        if window_n == 0 && window_first != 0 {
            return Err(StateError::Invalid("window start"));
        }
        Ok(Self { baseline, baseline_n, window, window_n, window_first })
    }
}

/// One count of a stored drift state: unsigned LEB128, at most
/// [`super::policy::MAX_DRIFT_EVENTS`], in its shortest form; with the
/// bytes it took.
fn read_count(bytes: &[u8]) -> Option<(u32, usize)> {
    let mut value: u32 = 0;
    for (i, &byte) in bytes.iter().enumerate().take(3) {
        value |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            let shortest = i == 0 || byte != 0;
            return (shortest && value <= super::policy::MAX_DRIFT_EVENTS).then_some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::fold::policy::DriftParams;

    #[test]
    fn resource_classes() {
        for (resource, class) in [
            ("db/invoices/42", "db"),
            ("https://API.example.com:8443/v1/users?id=7", "https://api.example.com:"),
            ("queue-17:jobs", "queue-"),
            ("s3://bucket-9", "s://bucket-"),
            ("plain", "plain"),
            ("", ""),
        ] {
            assert_eq!(resource_class(resource), class.as_bytes(), "{resource}");
        }
    }

    #[test]
    fn buckets_depend_on_the_class_only() {
        assert_eq!(bucket("read", "db/invoices/1", 64), bucket("read", "DB/users", 64));
        assert!(bucket("read", "db/x", 1024) < 1024);
        assert_eq!(bucket("read", "db/x", 0), 0);
        // The length prefix keeps ("ab", "c") apart from ("a", "bc").
        assert_ne!(bucket("ab", "c", u16::MAX), bucket("a", "bc", u16::MAX));
    }

    #[test]
    fn psi_by_hand() {
        // p = (1/2, 1/2), q = (3/4, 1/4): ¼ ln(3/2) + ¼ ln 2 = 0.27465.
        assert_eq!(psi_milli(&[1, 1], &[2, 0]), 274);
        assert_eq!(psi_milli(&[5, 5, 5], &[5, 5, 5]), 0);
        assert_eq!(psi_milli(&[], &[]), 0);
        assert_eq!(psi_milli(&[0, 0], &[1, 1]), 0, "no baseline");
        // A window distributed exactly as a larger baseline is no drift,
        // however many buckets are empty.
        let mut baseline = [0u32; 64];
        let mut window = [0u32; 64];
        baseline[..4].copy_from_slice(&[400, 300, 200, 100]);
        window[..4].copy_from_slice(&[100, 75, 50, 25]);
        assert_eq!(psi_milli(&baseline, &window), 0);
    }

    #[test]
    fn windows_tumble_after_the_baseline() {
        let p = Policy {
            drift: DriftParams { buckets: 2, baseline_events: 2, window_events: 2, ..Policy::default().drift },
            ..Policy::default()
        };
        let mut d = DriftState::new(&p);
        assert_eq!(d.observe(&p, 10, 0), None);
        assert_eq!(d.observe(&p, 11, 1), None);
        assert_eq!(d.observe(&p, 12, 0), None);
        assert_eq!(d.observe(&p, 13, 2), Some(DriftFinding { psi_milli: 274, significant: true, first_index: 12, last_index: 13 }));
        assert_eq!(d.observe(&p, 14, 0), None);
        assert_eq!(d.observe(&p, 15, 1), None, "a window like the baseline is no finding");
        assert_eq!(d.counts(), (2, 0));
    }

    #[test]
    fn bytes_round_trip_and_refuse_inconsistent_counts() {
        let p = Policy::default();
        let mut d = DriftState::new(&p);
        for i in 0..1100u64 {
            d.observe(&p, i, (i % 7) as u16);
        }
        let bytes = d.to_bytes();
        let leb = |c: u32| {
            if c < 0x80 {
                1
            } else if c < 0x4000 {
                2
            } else {
                3
            }
        };
        assert_eq!(bytes.len(), 19 + d.baseline.iter().chain(&d.window).map(|&c| leb(c)).sum::<usize>());
        assert!(bytes.len() < 19 + 3 * 64, "one or two bytes a count");
        assert_eq!(DriftState::from_bytes(&bytes).unwrap(), d);
        let mut b = bytes.clone();
        b[19] ^= 1;
        assert_eq!(DriftState::from_bytes(&b), Err(StateError::Invalid("baseline counts")));
        assert_eq!(DriftState::from_bytes(&bytes[..40]), Err(StateError::Invalid("count")));
        assert_eq!(DriftState::from_bytes(&bytes[..10]), Err(StateError::Length { expected: 19, found: 10 }));
        assert_eq!(DriftState::from_bytes(&[3]), Err(StateError::Version(3)));
        assert_eq!(DriftState::from_bytes(&[bytes.as_slice(), &[0]].concat()), Err(StateError::Invalid("trailing bytes")));
        // A count not in its shortest form: the last bucket's zero as two
        // bytes.
        assert_eq!(*bytes.last().unwrap(), 0);
        let long = [&bytes[..bytes.len() - 1], &[0x80, 0x00]].concat();
        assert_eq!(DriftState::from_bytes(&long), Err(StateError::Invalid("count")));
        assert_eq!(DriftState::from_bytes(&[&[1u8][..], &bytes[1..]].concat()), Err(StateError::Version(1)));
    }
}
