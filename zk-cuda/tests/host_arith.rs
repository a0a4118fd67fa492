//! The kernels' curve arithmetic, compiled for the host, against
//! curve25519-dalek: Ristretto decoding and encoding, addition and
//! doubling, field inversion, the fixed-base table MSM on real shapes, and
//! the constant-time secret path (radix-16 recoding, masked selection,
//! fixed-base terms, `A` and `S` against `commit_bits_cpu`). Runs on every
//! CI run; no GPU involved.

mod bit_secrets;

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{Identity, VartimeMultiscalarMul};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use zk::prover::engine::{commit_bits_cpu, BitSecrets, CpuEngine, GroupEngine};
use zk::prover::gens::ShapeBases;
use zk::BackendFailure;
use zk_cuda::host::{ct_recode, field_invert, field_mul, HostPoint, HostSecretTable, HostTable, CT_WINDOWS};

/// p = 2²⁵⁵ − 19, little-endian.
const P: [u8; 32] = {
    let mut p = [0xff; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    p
};

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn decode(c: &CompressedRistretto) -> HostPoint {
    HostPoint::decode(&c.0).unwrap_or_else(|| panic!("{c:?} decodes in dalek but not on the host"))
}

fn host(p: &RistrettoPoint) -> HostPoint {
    decode(&p.compress())
}

/// `a + b` for little-endian 256-bit integers (wrapping).
fn add_le(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let s = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i] = s as u8;
        carry = s >> 8;
    }
    out
}

/// `a − b` for little-endian 256-bit integers, `a ≥ b`.
fn sub_le(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in 0..32 {
        let mut d = i16::from(a[i]) - i16::from(b[i]) - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        out[i] = d as u8;
    }
    out
}

fn small(v: u8) -> [u8; 32] {
    let mut b = [0u8; 32];
    b[0] = v;
    b
}

/// Asserts the host accepts exactly what dalek accepts, with equal re-encodings.
fn same_verdict(bytes: &[u8; 32]) -> bool {
    let theirs = CompressedRistretto(*bytes).decompress();
    let ours = HostPoint::decode(bytes);
    assert_eq!(ours.is_some(), theirs.is_some(), "verdicts differ on {}", hex(bytes));
    if let (Some(o), Some(t)) = (ours, theirs) {
        assert_eq!(o.encode(), t.compress().0);
        assert_eq!(o.encode(), *bytes, "an accepted encoding is canonical");
    }
    theirs.is_some()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn random_points_round_trip() {
    let mut r = rng(1);
    for _ in 0..200 {
        let p = RistrettoPoint::random(&mut r);
        let c = p.compress();
        assert_eq!(decode(&c).encode(), c.0);
    }
    let id = RistrettoPoint::identity().compress();
    assert_eq!(id.0, [0u8; 32]);
    assert_eq!(decode(&id).encode(), id.0);
    assert_eq!(HostPoint::identity().encode(), id.0);
}

#[test]
fn small_multiples_of_the_basepoint_round_trip() {
    let mut p = RistrettoPoint::identity();
    for _ in 0..32 {
        let c = p.compress();
        assert_eq!(decode(&c).encode(), c.0);
        p += RISTRETTO_BASEPOINT_POINT;
    }
}

#[test]
fn invalid_encodings_are_rejected_like_dalek() {
    let mut r = rng(2);
    // RFC 9496 A.2: non-canonical field encodings, and a negative one.
    for h in [
        "00ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "f3ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "0100000000000000000000000000000000000000000000000000000000000000",
    ] {
        let mut b = [0u8; 32];
        for (i, byte) in b.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).expect("hex");
        }
        assert!(!same_verdict(&b), "{h} must be rejected");
    }
    // s + p for small s: the same field element, not canonical.
    for v in 0..19 {
        assert!(!same_verdict(&add_le(&small(v), &P)));
    }
    assert!(!same_verdict(&P));
    for _ in 0..100 {
        let c = RistrettoPoint::random(&mut r).compress().0;
        // The top bit set.
        let mut top = c;
        top[31] |= 0x80;
        assert!(!same_verdict(&top));
        // −s is negative (odd) for a non-zero s.
        if c != [0u8; 32] {
            assert!(!same_verdict(&sub_le(&P, &c)));
        }
    }
    // Random strings: mostly invalid; random even field elements: about
    // half pass the square-root and sign checks.
    let mut accepted = 0;
    for i in 0..2000 {
        let mut b = [0u8; 32];
        r.fill_bytes(&mut b);
        if i % 2 == 0 {
            b[31] &= 0x7f;
            b[0] &= 0xfe;
        }
        accepted += usize::from(same_verdict(&b));
    }
    assert!(accepted > 100, "the sample must exercise acceptance too ({accepted})");
}

#[test]
fn addition_and_doubling_match_dalek() {
    let mut r = rng(3);
    let id = RistrettoPoint::identity();
    for _ in 0..100 {
        let (p, q) = (RistrettoPoint::random(&mut r), RistrettoPoint::random(&mut r));
        let (hp, hq) = (host(&p), host(&q));
        assert_eq!(hp.add(&hq).compress(), (p + q).compress());
        assert_eq!(hp.add(&hq.neg()).compress(), (p - q).compress());
        assert_eq!(hp.double().compress(), (p + p).compress());
        assert_eq!(hp.add(&hp).compress(), (p + p).compress(), "adding a point to itself");
        assert_eq!(hp.add(&hp.neg()).compress(), id.compress());
        assert_eq!(hp.add(&HostPoint::identity()).compress(), p.compress());
        // A longer chain: 4p + 3q by repeated doubling and addition.
        let chain = hp.double().double().add(&hq.double()).add(&hq);
        assert_eq!(chain.compress(), (Scalar::from(4u8) * p + Scalar::from(3u8) * q).compress());
    }
    assert_eq!(HostPoint::identity().double().compress(), id.compress());
}

#[test]
fn field_inversion() {
    let mut r = rng(4);
    let one = small(1);
    assert_eq!(field_invert(&[0u8; 32]), [0u8; 32], "0 has no inverse and maps to 0");
    assert_eq!(field_invert(&one), one);
    let minus_one = sub_le(&P, &one);
    assert_eq!(field_invert(&minus_one), minus_one);
    for _ in 0..200 {
        let mut a = [0u8; 32];
        r.fill_bytes(&mut a);
        a[31] &= 0x7f;
        if a == [0u8; 32] || a == P {
            continue;
        }
        assert_eq!(field_mul(&a, &field_invert(&a)), one, "a · a⁻¹ for {}", hex(&a));
    }
}

/// Another representative of the same point, then back to `Z = 1` by an
/// inversion: both must encode like dalek, and the normalised one must be
/// affine (`Z = 1`, `T = XY`).
#[test]
fn inversion_through_point_representatives() {
    let mut r = rng(5);
    let one = small(1);
    for _ in 0..100 {
        let q = RistrettoPoint::random(&mut r);
        // 2q − q: q with a Z that is not 1.
        let hq = host(&q).double().add(&host(&(-q)));
        assert_eq!(hq.compress(), q.compress());
        let mut lambda = [0u8; 32];
        r.fill_bytes(&mut lambda);
        lambda[31] &= 0x3f;
        lambda[0] |= 1;
        let scaled = hq.scale_coordinates(&lambda);
        assert_eq!(scaled.compress(), q.compress());
        let affine = scaled.normalize();
        assert_eq!(affine.compress(), q.compress());
        let [x, y, z, t] = affine.coordinates();
        assert_eq!(z, one);
        assert_eq!(field_mul(&x, &y), t);
    }
}

/// Scalars whose bytes are 0x00, 0x7f, 0x80 or 0xff: every carry pattern
/// of signed radix-256 recoding (long carry chains through 0x7f, digits
/// −128 and −1), kept canonical by a top byte below 0x10.
fn recoding_stress(r: &mut ChaCha20Rng) -> Scalar {
    let mut b = [0u8; 32];
    for x in b.iter_mut() {
        *x = [0x00, 0x7f, 0x80, 0xff][r.gen_range(0..4)];
    }
    b[31] &= 0x0f;
    Option::from(Scalar::from_canonical_bytes(b)).unwrap_or(Scalar::ONE)
}

fn rows_for(width: usize, r: &mut ChaCha20Rng) -> Vec<Scalar> {
    let mut rows: Vec<Vec<Scalar>> = Vec::new();
    rows.push(vec![Scalar::ZERO; width]);
    rows.push((0..width).map(|i| [Scalar::ZERO, Scalar::ONE, -Scalar::ONE][i % 3]).collect());
    rows.push(vec![-Scalar::ONE; width]);
    for _ in 0..3 {
        rows.push((0..width).map(|_| Scalar::random(r)).collect());
    }
    // About half zeros: alternating, the first half, and at random.
    rows.push((0..width).map(|i| if i % 2 == 0 { Scalar::ZERO } else { Scalar::random(r) }).collect());
    rows.push((0..width).map(|i| if i < width / 2 { Scalar::ZERO } else { Scalar::random(r) }).collect());
    rows.push((0..width).map(|_| if r.gen_bool(0.5) { Scalar::ZERO } else { Scalar::random(r) }).collect());
    rows.push((0..width).map(|_| recoding_stress(r)).collect());
    // One non-zero scalar.
    let mut one_hot = vec![Scalar::ZERO; width];
    one_hot[width - 1] = Scalar::from(0xdead_beef_u64);
    rows.push(one_hot);
    rows.concat()
}

fn msm_matches_dalek(bits: usize, parties: usize, seed: u64) {
    let mut r = rng(seed);
    let shape = ShapeBases::get(bits, parties).expect("a bulletproofs shape");
    let table = HostTable::new(shape.compressed()).expect("shape bases decode");
    assert_eq!(table.len(), shape.len());
    let scalars = rows_for(shape.len(), &mut r);
    let ours = table.msm(&scalars).expect("well-shaped");
    let cpu = CpuEngine.msm_public(&shape, &scalars).expect("well-shaped");
    assert_eq!(ours.len(), scalars.len() / shape.len());
    for (i, row) in scalars.chunks_exact(shape.len()).enumerate() {
        let want = RistrettoPoint::vartime_multiscalar_mul(row, shape.points()).compress();
        assert_eq!(ours[i], want, "row {i} of shape ({bits}, {parties})");
        assert_eq!(cpu[i], want);
    }
    assert_eq!(ours[0], RistrettoPoint::identity().compress(), "an all-zero row is the identity");
}

#[test]
fn table_msm_matches_dalek_for_64_bits_one_party() {
    msm_matches_dalek(64, 1, 6);
}

#[test]
fn table_msm_matches_dalek_for_8_bits_two_parties() {
    msm_matches_dalek(8, 2, 7);
}

#[test]
fn table_msm_rejects_ragged_rows() {
    let shape = ShapeBases::get(8, 2).expect("a bulletproofs shape");
    let table = HostTable::new(shape.compressed()).expect("shape bases decode");
    let scalars = vec![Scalar::ONE; shape.len() + 1];
    assert_eq!(table.msm(&scalars), Err(BackendFailure::Shape));
    assert_eq!(table.msm(&[]), Ok(Vec::new()));
}

#[test]
fn tables_refuse_bases_that_do_not_decode() {
    let mut bad = ShapeBases::get(8, 1).expect("a bulletproofs shape").compressed().to_vec();
    bad[3].0[31] |= 0x80;
    assert!(HostTable::new(&bad).is_none());
}

/// dalek's `Scalar::as_radix_16` (crate-private there), as written in
/// curve25519-dalek 4.1 `src/scalar.rs`.
fn dalek_radix_16(s: &Scalar) -> [i8; 64] {
    let b = s.as_bytes();
    let mut out = [0i8; 64];
    for i in 0..32 {
        out[2 * i] = (b[i] & 15) as i8;
        out[2 * i + 1] = ((b[i] >> 4) & 15) as i8;
    }
    for i in 0..63 {
        let carry = (out[i] + 8) >> 4;
        out[i] -= carry << 4;
        out[i + 1] += carry;
    }
    out
}

/// 0, 1, 8, 15, 16, l − 1, 2²⁵², and their neighbours in the recoding.
fn edge_scalars() -> Vec<Scalar> {
    let mut two_252 = [0u8; 32];
    two_252[31] = 0x10;
    let two_252 = Option::from(Scalar::from_canonical_bytes(two_252)).expect("2^252 < l");
    let mut v: Vec<Scalar> = [0u64, 1, 7, 8, 9, 15, 16, 17, 0x77, 0x78, 0x88, 0x7777, 0x7878, u64::MAX].map(Scalar::from).into();
    v.extend([-Scalar::ONE, two_252, two_252 - Scalar::ONE, -two_252]);
    v
}

fn ct_scalars(r: &mut ChaCha20Rng) -> Vec<Scalar> {
    let mut v = edge_scalars();
    v.extend((0..40).map(|_| Scalar::random(r)));
    v.extend((0..40).map(|_| bit_secrets::recoding_stress(r)));
    v
}

#[test]
fn ct_recoding_is_dalek_radix_16() {
    let mut r = rng(10);
    for s in ct_scalars(&mut r) {
        let digits = ct_recode(&s);
        assert_eq!(digits, dalek_radix_16(&s), "digits of {:?}", s);
        assert!(digits[..63].iter().all(|d| (-8..8).contains(d)));
        assert!((0..=2).contains(&digits[63]), "top digit of a canonical scalar");
        let sum = digits.iter().rev().fold(Scalar::ZERO, |acc, &d| {
            acc * Scalar::from(16u8) + if d < 0 { -Scalar::from(d.unsigned_abs()) } else { Scalar::from(d as u8) }
        });
        assert_eq!(sum, s);
    }
}

#[test]
fn ct_select_is_every_small_multiple() {
    let mut r = rng(11);
    let p = RistrettoPoint::random(&mut r);
    let table = HostSecretTable::new(&[p.compress()]).expect("decodes");
    let sixteen = Scalar::from(16u8);
    for window in [0, 1, 2, 31, CT_WINDOWS - 1] {
        let radix = (0..window).fold(Scalar::ONE, |acc, _| acc * sixteen);
        for d in -8i8..=8 {
            let k = if d < 0 { -Scalar::from(d.unsigned_abs()) } else { Scalar::from(d as u8) };
            assert_eq!(table.select(0, window, d), Some((k * radix * p).compress()), "window {window}, digit {d}");
        }
    }
    assert_eq!(table.select(0, 0, 0), Some(RistrettoPoint::identity().compress()));
    assert_eq!(table.select(0, CT_WINDOWS, 1), None);
    assert_eq!(table.select(0, 0, 9), None);
    assert_eq!(table.select(1, 0, 1), None);
}

#[test]
fn ct_fixed_base_term_matches_dalek() {
    let mut r = rng(12);
    let points = [RistrettoPoint::random(&mut r), RISTRETTO_BASEPOINT_POINT, zk::commit::pedersen_gens().B_blinding];
    let table = HostSecretTable::new(&points.map(|p| p.compress())).expect("decodes");
    assert_eq!(table.len(), 3);
    for k in ct_scalars(&mut r) {
        for (i, p) in points.iter().enumerate() {
            assert_eq!(table.mul(i, &k), Some((k * p).compress()), "{k:?} · base {i}");
        }
    }
    assert_eq!(table.mul(0, &Scalar::ZERO), Some(RistrettoPoint::identity().compress()));
    assert_eq!(table.mul(3, &Scalar::ONE), None);
}

fn host_commit_bits_matches_cpu(bits: usize, parties: usize, proofs: usize, seed: u64) {
    let shape = ShapeBases::get(bits, parties).expect("a bulletproofs shape");
    let table = HostSecretTable::for_shape(&shape).expect("shape bases decode");
    assert_eq!(table.len(), 2 * shape.n() + 1);
    let owned = bit_secrets::proofs(&shape, proofs, seed);
    let secrets: Vec<BitSecrets<'_>> = owned.iter().map(|o| o.borrow()).collect();
    let ours = table.commit_bits(&shape, &secrets).expect("well-shaped");
    assert_eq!(ours.len(), proofs);
    for (i, (o, s)) in ours.iter().zip(&secrets).enumerate() {
        assert_eq!(*o, commit_bits_cpu(&shape, s), "proof {i} of shape ({bits}, {parties})");
    }
    // All-zero secrets: S is the identity.
    assert_eq!(ours[0][1], RistrettoPoint::identity().compress());
}

#[test]
fn host_commit_bits_matches_cpu_for_64_bits_one_party() {
    host_commit_bits_matches_cpu(64, 1, 5, 13);
}

#[test]
fn host_commit_bits_matches_cpu_for_8_bits_two_parties() {
    host_commit_bits_matches_cpu(8, 2, 6, 14);
}

#[test]
fn host_commit_bits_matches_cpu_for_16_bits_four_parties() {
    host_commit_bits_matches_cpu(16, 4, 4, 15);
}

#[test]
fn host_commit_bits_rejects_secrets_of_another_shape() {
    let shape = ShapeBases::get(8, 2).expect("a bulletproofs shape");
    let table = HostSecretTable::for_shape(&shape).expect("shape bases decode");
    let owned = bit_secrets::proofs(&shape, 2, 16);
    let short = owned[1].truncated();
    let mixed = [owned[0].borrow(), short.borrow()];
    assert_eq!(table.commit_bits(&shape, &mixed), Err(BackendFailure::Shape));
    // Tables of (8, 2) for a shape of another size.
    let other = ShapeBases::get(8, 1).expect("a bulletproofs shape");
    assert_eq!(table.commit_bits(&other, &[]), Err(BackendFailure::Shape));
    assert_eq!(table.commit_bits(&shape, &[]), Ok(Vec::new()));
}
