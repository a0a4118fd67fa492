//! Proving and verifying every predicate kind, and the soundness checks:
//! false predicates are refused before proving, and a proof verifies only
//! against exactly the statement it was made for.
#![allow(clippy::unwrap_used)]

use bulletproofs::RangeProof;
use curve25519_dalek::scalar::Scalar;
use merlin::Transcript;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use zk::commit::{Blinding, PedersenCommitment};
use zk::predicate::{Claim, Predicate};
use zk::prover::{prove, prove_with_rng, ProofJob, ProverPool, Witness};
use zk::{params, PredicateProof, ZkError};

fn claim(field: &str, value: u64, predicate: Predicate) -> (Claim, Witness) {
    let blinding = Blinding::random(&mut rand_core::OsRng);
    let commitment = PedersenCommitment::commit(value, &blinding);
    (Claim { field: field.into(), predicate, commitment }, Witness { value, blinding })
}

fn split(pairs: Vec<(Claim, Witness)>) -> (Vec<Claim>, Vec<Witness>) {
    pairs.into_iter().unzip()
}

fn roundtrip(claims: &[Claim], witnesses: &[Witness]) -> PredicateProof {
    let proof = prove(claims, witnesses, params()).unwrap();
    let decoded = PredicateProof::from_bytes(&proof.to_bytes()).unwrap();
    decoded.verify(claims, params()).unwrap();
    decoded
}

#[test]
fn every_predicate_kind_proves_and_verifies() {
    let cases = [
        ("le", 1250, Predicate::le(10_000), 16),
        ("le-edge", 10_000, Predicate::le(10_000), 16),
        ("le-zero", 0, Predicate::le(0), 8),
        ("ge", 42, Predicate::ge(18), 64),
        ("ge-edge", 18, Predicate::ge(18), 64),
        ("ge-max", u64::MAX, Predicate::ge(u64::MAX - 10), 8),
        ("between", 70, Predicate { lo: 50, hi: 100 }, 8),
        ("between-32", 1 << 20, Predicate { lo: 0, hi: 1 << 31 }, 32),
        ("between-64", u64::MAX - 1, Predicate { lo: 1, hi: u64::MAX - 1 }, 64),
    ];
    for (name, value, predicate, bits) in cases {
        let (claims, witnesses) = split(vec![claim(name, value, predicate)]);
        let proof = roundtrip(&claims, &witnesses);
        assert_eq!(proof.bits(), bits, "{name}");
    }
}

#[test]
fn several_claims_aggregate_into_one_proof() {
    for count in 1..=zk::MAX_CLAIMS {
        let pairs = (0..count).map(|i| claim(&format!("f{i}"), 100 + i as u64, Predicate { lo: 100, hi: 200 })).collect();
        let (claims, witnesses) = split(pairs);
        let proof = roundtrip(&claims, &witnesses);
        // Two values per claim, padded to a power of two: 32·(9 + 2·log2(8·m)) bytes.
        let m = (2 * count).next_power_of_two();
        assert_eq!(proof.to_bytes().len(), 2 + 32 * (9 + 2 * (8 * m).trailing_zeros() as usize), "{count} claims");
    }
}

#[test]
fn false_predicates_are_refused_not_proven() {
    for (value, predicate) in [
        (10_001, Predicate::le(10_000)),
        (17, Predicate::ge(18)),
        (49, Predicate { lo: 50, hi: 100 }),
        (101, Predicate { lo: 50, hi: 100 }),
    ] {
        let (claims, witnesses) = split(vec![claim("amount", value, predicate)]);
        let err = prove(&claims, &witnesses, params()).unwrap_err();
        assert!(matches!(err, ZkError::PredicateFalse { ref field, .. } if field == "amount"), "{err:?}");
    }
    // One false claim among true ones refuses the whole proof.
    let (claims, witnesses) = split(vec![claim("a", 1, Predicate::le(5)), claim("b", 9, Predicate::le(5))]);
    assert!(matches!(prove(&claims, &witnesses, params()), Err(ZkError::PredicateFalse { field, .. }) if field == "b"));
}

#[test]
fn witnesses_must_open_their_commitments() {
    let (claims, mut witnesses) = split(vec![claim("amount", 5, Predicate::le(10))]);
    witnesses[0].value = 6;
    assert!(matches!(prove(&claims, &witnesses, params()), Err(ZkError::OpeningMismatch { .. })));
    assert!(matches!(prove(&claims, &[], params()), Err(ZkError::ClaimCount { .. })));
    assert!(matches!(prove(&[], &[], params()), Err(ZkError::ClaimCount { .. })));
}

#[test]
fn a_proof_verifies_only_its_own_statement() {
    let (claims, witnesses) = split(vec![claim("amount", 1250, Predicate::le(10_000)), claim("age", 30, Predicate::ge(18))]);
    let proof = roundtrip(&claims, &witnesses);
    let other = claim("amount", 1250, Predicate::le(10_000)).0.commitment;

    let mut wrong_commitment = claims.clone();
    wrong_commitment[0].commitment = other;
    let mut wrong_bound = claims.clone();
    wrong_bound[0].predicate = Predicate::le(9_999);
    let mut wrong_field = claims.clone();
    wrong_field[0].field = "amount2".into();
    let swapped = vec![claims[1].clone(), claims[0].clone()];
    for (name, statement) in [
        ("commitment", wrong_commitment),
        ("bound", wrong_bound),
        ("field", wrong_field),
        ("order", swapped),
        ("subset", claims[..1].to_vec()),
    ] {
        assert_eq!(proof.verify(&statement, params()).unwrap_err(), ZkError::ProofInvalid, "{name}");
    }
}

#[test]
fn tampered_proof_bytes_fail() {
    let (claims, witnesses) = split(vec![claim("amount", 1250, Predicate::le(10_000))]);
    let bytes = prove(&claims, &witnesses, params()).unwrap().to_bytes();
    for i in 0..bytes.len() {
        let mut t = bytes.clone();
        t[i] ^= 0x01;
        let rejected = match PredicateProof::from_bytes(&t) {
            Err(ZkError::Malformed { .. }) => true,
            Err(e) => panic!("unexpected {e:?}"),
            Ok(p) => p.verify(&claims, params()).is_err(),
        };
        assert!(rejected, "flipping byte {i} still verifies");
    }
    assert!(PredicateProof::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    assert!(PredicateProof::from_bytes(&[]).is_err());
}

/// The reduction's reason for proving both sides of `x ≤ hi`: a commitment
/// to a "negative" x (a scalar above every u64) passes a one-sided proof of
/// `hi − x ∈ [0, 2^n)`, and must not pass ours.
#[test]
fn a_one_sided_proof_of_a_negative_value_is_rejected() {
    let r = Scalar::from(7u64);
    let minus_one = -Scalar::ONE;
    let gens = params();
    let c = gens.pedersen_gens().commit(minus_one, r).compress();
    let claims = vec![Claim { field: "amount".into(), predicate: Predicate::le(10), commitment: PedersenCommitment(c) }];
    // hi − x = 11 is in range; prove just that value, with our transcript.
    let mut t = Transcript::new(zk::labels::PREDICATE_TRANSCRIPT);
    let (rp, _) = RangeProof::prove_single(gens.bulletproof_gens(), gens.pedersen_gens(), &mut t, 11, &(-r), 8).unwrap();
    let mut bytes = vec![zk::labels::VERSION, 8];
    bytes.extend_from_slice(&rp.to_bytes());
    let forged = PredicateProof::from_bytes(&bytes).unwrap();
    assert_eq!(forged.verify(&claims, gens).unwrap_err(), ZkError::ProofInvalid);
}

#[test]
fn proving_is_deterministic_given_the_rng() {
    let (claims, witnesses) = split(vec![claim("amount", 1250, Predicate::le(10_000))]);
    let a = prove_with_rng(&claims, &witnesses, params(), &mut ChaCha20Rng::from_seed([9; 32])).unwrap();
    let b = prove_with_rng(&claims, &witnesses, params(), &mut ChaCha20Rng::from_seed([9; 32])).unwrap();
    assert_eq!(a.to_bytes(), b.to_bytes());
}

#[test]
fn pool_and_parallel_verification_match_sequential() {
    let pool = ProverPool::new(0).unwrap();
    let jobs: Vec<ProofJob> = (0..6)
        .map(|i| {
            let (claims, witnesses) = split(vec![claim("x", i * 10, Predicate::le(25))]);
            ProofJob { claims, witnesses }
        })
        .collect();
    let proved = pool.prove_all(&jobs);
    assert_eq!(proved.len(), 6);
    for (i, p) in proved.iter().enumerate() {
        assert_eq!(p.result.is_ok(), i * 10 <= 25, "job {i}");
    }
    let ok: Vec<(PredicateProof, &[Claim])> =
        proved.into_iter().zip(&jobs).filter_map(|(p, j)| p.result.ok().map(|proof| (proof, j.claims.as_slice()))).collect();
    let mut items: Vec<(&PredicateProof, &[Claim])> = ok.iter().map(|(p, c)| (p, *c)).collect();
    assert!(zk::verify_all(&items, params()).iter().all(Result::is_ok));
    // A proof checked against another job's claims fails in the batch too.
    items[0].1 = items[1].1;
    let results = zk::verify_all(&items, params());
    assert!(results[0].is_err() && results[1..].iter().all(Result::is_ok));
}

#[test]
fn a_bound_proof_verifies_only_in_its_own_context() {
    let (claims, witnesses) = split(vec![claim("amount", 1250, Predicate::le(10_000))]);
    let ctx = b"origin\nspiffe://example.org/agent/a\n7";
    let proof = zk::prover::prove_bound(&claims, &witnesses, ctx, params()).unwrap();
    proof.verify_bound(&claims, ctx, params()).unwrap();
    assert_eq!(proof.verify(&claims, params()).unwrap_err(), ZkError::ProofInvalid, "unbound check of a bound proof");
    assert_eq!(
        proof.verify_bound(&claims, b"origin\nspiffe://example.org/agent/b\n7", params()).unwrap_err(),
        ZkError::ProofInvalid,
        "the same commitments and proof pasted into another agent's entry"
    );
    let unbound = prove(&claims, &witnesses, params()).unwrap();
    assert_eq!(unbound.verify_bound(&claims, ctx, params()).unwrap_err(), ZkError::ProofInvalid);
}
