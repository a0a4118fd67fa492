//! Known-answer tests from the RFC 6962 reference vectors, property tests,
//! and cross-checks against two independent implementations (rs_merkle and
//! ct-merkle).

// In tests and benches a failed unwrap is the failure report.
#![allow(clippy::unwrap_used)]

#[path = "../../tests/independent/rfc6962.rs"]
mod rfc6962;

use proptest::prelude::*;
use verifier::hash::{leaf_hash, Hash, EMPTY_ROOT};
use verifier::proof::{verify_consistency, verify_inclusion, ConsistencyError, InclusionError};
use verifier::tree::{consistency_plan, hash_leaves, inclusion_plan, root_plan, NodeId, ProofPlan};

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn hash(s: &str) -> Hash {
    unhex(s).try_into().unwrap()
}

fn vectors() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors/rfc6962.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn hashes(v: &serde_json::Value) -> Vec<Hash> {
    v.as_array().unwrap().iter().map(|h| hash(h.as_str().unwrap())).collect()
}

/// Answers a plan by hashing leaves directly: an "independent store".
fn answer(plan: &ProofPlan, leaves: &[Hash]) -> Vec<Hash> {
    let fetched: Vec<Hash> = plan
        .nodes()
        .iter()
        .map(|id: &NodeId| {
            let (s, e) = id.leaf_range();
            hash_leaves(&leaves[s as usize..e as usize])
        })
        .collect();
    plan.assemble(&fetched).unwrap()
}

#[test]
fn rfc6962_known_answers() {
    let v = vectors();
    let leaves: Vec<Hash> = v["leaves_hex"].as_array().unwrap().iter().map(|l| leaf_hash(&unhex(l.as_str().unwrap()))).collect();
    let roots = hashes(&v["roots_hex"]);
    assert_eq!(hash(v["empty_root_hex"].as_str().unwrap()), EMPTY_ROOT);
    for (i, root) in roots.iter().enumerate() {
        assert_eq!(hash_leaves(&leaves[..=i]), *root, "root of size {}", i + 1);
        assert_eq!(answer(&root_plan(i as u64 + 1), &leaves)[0], *root);
    }
    for case in v["inclusion"].as_array().unwrap() {
        let (index, size) = (case["index"].as_u64().unwrap(), case["tree_size"].as_u64().unwrap());
        let path = hashes(&case["path_hex"]);
        assert_eq!(answer(&inclusion_plan(index, size).unwrap(), &leaves), path, "inclusion {index}/{size}");
        verify_inclusion(&leaves[index as usize], index, size, &path, &roots[size as usize - 1]).unwrap();
    }
    for case in v["consistency"].as_array().unwrap() {
        let (old, new) = (case["old_size"].as_u64().unwrap(), case["new_size"].as_u64().unwrap());
        let path = hashes(&case["path_hex"]);
        assert_eq!(answer(&consistency_plan(old, new).unwrap(), &leaves), path, "consistency {old}->{new}");
        verify_consistency(old, new, &path, &roots[old as usize - 1], &roots[new as usize - 1]).unwrap();
    }
}

#[test]
fn reference_corruptions_are_rejected() {
    // The probes of transparency-dev/merkle's corruptInclusionProof and
    // corruptConsistencyProof, applied to the known-good vectors.
    let v = vectors();
    let leaves: Vec<Hash> = v["leaves_hex"].as_array().unwrap().iter().map(|l| leaf_hash(&unhex(l.as_str().unwrap()))).collect();
    let roots = hashes(&v["roots_hex"]);
    let some: Hash = hash("abacaba000000000000000000000000000000000000000000060061e00123456");
    for case in v["inclusion"].as_array().unwrap() {
        let (i, n) = (case["index"].as_u64().unwrap(), case["tree_size"].as_u64().unwrap());
        let p = hashes(&case["path_hex"]);
        let (leaf, root) = (leaves[i as usize], roots[n as usize - 1]);
        let mut probes: Vec<(u64, u64, Hash, Hash, Vec<Hash>)> = vec![
            (i.wrapping_sub(1), n, leaf, root, p.clone()),
            (i + 1, n, leaf, root, p.clone()),
            (i ^ 2, n, leaf, root, p.clone()),
            (i, n * 2, leaf, root, p.clone()),
            (i, n / 2, leaf, root, p.clone()),
            (i, n, some, root, p.clone()),
            (i, n, leaf, EMPTY_ROOT, p.clone()),
            (i, n, leaf, some, p.clone()),
            (i, n, leaf, root, [p.clone(), vec![root]].concat()),
            (i, n, leaf, root, [vec![root], p.clone()].concat()),
        ];
        for k in 0..p.len() {
            let mut q = p.clone();
            q[k][0] ^= 8;
            probes.push((i, n, leaf, root, q));
        }
        if !p.is_empty() {
            probes.push((i, n, leaf, root, p[..p.len() - 1].to_vec()));
        }
        for (pi, pn, pl, pr, pp) in probes {
            if (pi, pn, pl, pr, &pp) == (i, n, leaf, root, &p) {
                continue;
            }
            assert!(verify_inclusion(&pl, pi, pn, &pp, &pr).is_err(), "probe {pi}/{pn} accepted");
        }
    }
    for case in v["consistency"].as_array().unwrap() {
        let (m, n) = (case["old_size"].as_u64().unwrap(), case["new_size"].as_u64().unwrap());
        let p = hashes(&case["path_hex"]);
        if p.is_empty() {
            continue;
        }
        let (r1, r2) = (roots[m as usize - 1], roots[n as usize - 1]);
        let mut probes: Vec<(u64, u64, Hash, Hash, Vec<Hash>)> = vec![
            (m - 1, n, r1, r2, p.clone()),
            (m + 1, n, r1, r2, p.clone()),
            (m ^ 2, n, r1, r2, p.clone()),
            (m, n * 2, r1, r2, p.clone()),
            (m, n / 2, r1, r2, p.clone()),
            (m, n, some, r2, p.clone()),
            (m, n, r1, some, p.clone()),
            (m, n, r2, r1, p.clone()),
            (m, n, r1, r2, vec![]),
            (m, n, r1, r2, [p.clone(), vec![r1]].concat()),
            (m, n, r1, r2, [vec![r2], p.clone()].concat()),
            (m, n, r1, r2, p[..p.len() - 1].to_vec()),
        ];
        for k in 0..p.len() {
            let mut q = p.clone();
            q[k][0] ^= 16;
            probes.push((m, n, r1, r2, q));
        }
        for (pm, pn, a, b, pp) in probes {
            assert!(verify_consistency(pm, pn, &pp, &a, &b).is_err(), "probe {pm}->{pn} accepted");
        }
    }
}

#[test]
fn trivial_consistency_cases() {
    assert_eq!(verify_consistency(0, 0, &[], &EMPTY_ROOT, &EMPTY_ROOT), Ok(()));
    assert_eq!(verify_consistency(0, 5, &[], &EMPTY_ROOT, &[1; 32]), Ok(()));
    assert_eq!(verify_consistency(3, 3, &[], &[1; 32], &[2; 32]), Err(ConsistencyError::EqualSizeDifferentRoots { size: 3 }));
    assert_eq!(verify_consistency(4, 3, &[], &[1; 32], &[2; 32]), Err(ConsistencyError::OldSizeLarger { old: 4, new: 3 }));
    assert!(matches!(verify_consistency(1, 1, &[EMPTY_ROOT], &EMPTY_ROOT, &EMPTY_ROOT), Err(ConsistencyError::WrongLength { .. })));
    assert_eq!(verify_inclusion(&[0; 32], 0, 0, &[], &EMPTY_ROOT), Err(InclusionError::IndexBeyondTree { index: 0, size: 0 }));
}

#[test]
fn matches_rs_merkle_roots_and_inclusion_proofs() {
    let leaves: Vec<Hash> = (0..2100u32).map(|i| rfc6962::leaf_hash(&i.to_le_bytes())).collect();
    let mut tree = rs_merkle::MerkleTree::<rfc6962::Rfc6962>::new();
    for size in 1..=leaves.len() {
        tree.insert(leaves[size - 1]).commit();
        let root = tree.root().unwrap();
        assert_eq!(answer(&root_plan(size as u64), &leaves)[0], root, "root at size {size}");
        // Every index at small sizes, a stride of indices at larger ones.
        let step = if size <= 300 { 1 } else { 97 };
        for index in (0..size).step_by(step).chain([size - 1]) {
            let theirs = tree.proof(&[index]).proof_hashes().to_vec();
            let ours = answer(&inclusion_plan(index as u64, size as u64).unwrap(), &leaves);
            assert_eq!(ours, theirs, "inclusion {index}/{size}");
            verify_inclusion(&leaves[index], index as u64, size as u64, &ours, &root).unwrap();
        }
    }
}

#[test]
fn matches_ct_merkle_consistency_and_inclusion_proofs() {
    use ct_merkle::mem_backed_tree::MemoryBackedTree;
    let data: Vec<Vec<u8>> = (0..300u32).map(|i| i.to_be_bytes().to_vec()).collect();
    let leaves: Vec<Hash> = data.iter().map(|d| leaf_hash(d)).collect();
    let mut tree = MemoryBackedTree::<sha2_v011::Sha256, Vec<u8>>::new();
    for (n, item) in data.iter().enumerate() {
        tree.push(item.clone());
        let size = n as u64 + 1;
        let root: Hash = tree.root().as_bytes().as_slice().try_into().unwrap();
        assert_eq!(answer(&root_plan(size), &leaves)[0], root);
        for old in 1..size {
            let theirs = tree.prove_consistency((size - old) as usize);
            let ours: Vec<u8> = answer(&consistency_plan(old, size).unwrap(), &leaves).concat();
            assert_eq!(ours, theirs.as_bytes(), "consistency {old}->{size}");
        }
        for index in 0..size {
            let theirs = tree.prove_inclusion(index as usize);
            let ours: Vec<u8> = answer(&inclusion_plan(index, size).unwrap(), &leaves).concat();
            assert_eq!(ours, theirs.as_bytes(), "inclusion {index}/{size}");
        }
    }
}

fn flip(proof: &mut [Hash], bit: usize) {
    let (h, b) = (bit / 256 % proof.len(), bit % 256);
    proof[h][b / 8] ^= 1 << (b % 8);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_proof_verifies_and_any_flipped_bit_fails(size in 1u64..600, seed in any::<u64>(), bit in any::<usize>()) {
        let leaves: Vec<Hash> = (0..size).map(|i| leaf_hash(&(i ^ seed).to_le_bytes())).collect();
        let root = hash_leaves(&leaves);
        for index in 0..size {
            let mut proof = answer(&inclusion_plan(index, size).unwrap(), &leaves);
            prop_assert!(verify_inclusion(&leaves[index as usize], index, size, &proof, &root).is_ok());
            if !proof.is_empty() {
                flip(&mut proof, bit.wrapping_add(index as usize));
                prop_assert!(verify_inclusion(&leaves[index as usize], index, size, &proof, &root).is_err());
            }
        }
        for old in 1..=size {
            let old_root = hash_leaves(&leaves[..old as usize]);
            let mut proof = answer(&consistency_plan(old, size).unwrap(), &leaves);
            prop_assert!(verify_consistency(old, size, &proof, &old_root, &root).is_ok());
            if !proof.is_empty() {
                flip(&mut proof, bit.wrapping_add(old as usize));
                prop_assert!(verify_consistency(old, size, &proof, &old_root, &root).is_err());
            }
        }
    }

    #[test]
    fn flipped_root_or_leaf_fails(size in 1u64..300, index_seed in any::<u64>(), bit in 0usize..256) {
        let leaves: Vec<Hash> = (0..size).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        let index = index_seed % size;
        let proof = answer(&inclusion_plan(index, size).unwrap(), &leaves);
        let mut root = hash_leaves(&leaves);
        let mut leaf = leaves[index as usize];
        leaf[bit / 8] ^= 1 << (bit % 8);
        prop_assert_eq!(verify_inclusion(&leaf, index, size, &proof, &root), Err(InclusionError::RootMismatch));
        root[bit / 8] ^= 1 << (bit % 8);
        prop_assert_eq!(verify_inclusion(&leaves[index as usize], index, size, &proof, &root), Err(InclusionError::RootMismatch));
    }
}
