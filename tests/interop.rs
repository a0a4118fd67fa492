//! The running server's checkpoints, proofs and tiles, checked only with
//! independent implementations: rs_merkle (roots, inclusion), ct-merkle
//! (inclusion, consistency) and plain SHA-256 over tlog-tiles bundles.

// In tests a failed unwrap is the failure report.
#![allow(clippy::unwrap_used)]

use ledger_e2e::Server;
use sha2::{Digest, Sha256};
use verifier::wire::{ConsistencyProofResponse, InclusionProofResponse};
use verifier::{Checkpoint, NoteVerifier, VerifierKey};

type Hash = [u8; 32];

#[derive(Clone)]
struct Rfc6962;

impl rs_merkle::Hasher for Rfc6962 {
    type Hash = Hash;

    fn hash(data: &[u8]) -> Hash {
        Sha256::digest(data).into()
    }

    fn concat_and_hash(left: &Hash, right: Option<&Hash>) -> Hash {
        match right {
            Some(r) => Sha256::new().chain_update([1u8]).chain_update(left).chain_update(r).finalize().into(),
            None => *left,
        }
    }
}

fn leaf_hash(leaf: &[u8]) -> Hash {
    Sha256::new().chain_update([0u8]).chain_update(leaf).finalize().into()
}

fn get_bytes(server: &Server, path: &str) -> Vec<u8> {
    ureq::get(&format!("{}{path}", server.url)).call().unwrap().body_mut().read_to_vec().unwrap()
}

/// Splits an entry bundle (big-endian u16 length before each entry).
fn split_bundle(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let len = usize::from(u16::from_be_bytes([data[0], data[1]]));
        out.push(data[2..2 + len].to_vec());
        data = &data[2 + len..];
    }
    out
}

fn root_of(leaves: &[Hash]) -> Hash {
    rs_merkle::MerkleTree::<Rfc6962>::from_leaves(leaves).root().unwrap()
}

#[test]
fn server_output_verifies_with_independent_implementations() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    for b in 0..6 {
        let batch: Vec<String> = (0..100)
            .map(|i| format!(r#"{{"kind":"action","agent":"spiffe://interop.example/agent/a{b}","action":"read","resource":"r/{i}"}}"#))
            .collect();
        let resp = ureq::post(&format!("{}/v1/entries/batch", server.url))
            .header("content-type", "application/json")
            .send(format!("[{}]", batch.join(",")));
        assert_eq!(resp.unwrap().status(), 201);
    }
    let key = VerifierKey::parse(&server.key()).unwrap();
    let cp = Checkpoint::open(&server.get("/tlog/checkpoint"), &NoteVerifier::new(key)).unwrap();
    assert_eq!(cp.size, 600);

    // Entries from the entry bundles, hashed here; they must match the
    // level-0 hash tiles byte for byte.
    let mut leaves = Vec::new();
    for path in ["/tlog/tile/entries/000", "/tlog/tile/entries/001", "/tlog/tile/entries/002.p/88"] {
        leaves.extend(split_bundle(&get_bytes(&server, path)));
    }
    assert_eq!(leaves.len(), 600);
    let hashes: Vec<Hash> = leaves.iter().map(|l| leaf_hash(l)).collect();
    let mut tile0 = Vec::new();
    for path in ["/tlog/tile/0/000", "/tlog/tile/0/001", "/tlog/tile/0/002.p/88"] {
        tile0.extend(get_bytes(&server, path));
    }
    assert_eq!(tile0, hashes.concat());
    let tile1 = get_bytes(&server, "/tlog/tile/1/000.p/2");
    assert_eq!(tile1, [root_of(&hashes[..256]), root_of(&hashes[256..512])].concat());

    // rs_merkle: the root, and the server's inclusion proofs.
    assert_eq!(root_of(&hashes), cp.root);
    let ct_root = ct_merkle::RootHash::<sha2_v011::Sha256>::new(cp.root.into(), cp.size);
    for index in [0usize, 1, 255, 256, 300, 511, 512, 598, 599] {
        let p: InclusionProofResponse =
            serde_json::from_str(&server.get(&format!("/v1/proof/inclusion?index={index}&tree_size=600"))).unwrap();
        let proof = rs_merkle::MerkleProof::<Rfc6962>::new(p.hashes.clone());
        assert!(proof.verify(cp.root, &[index], &[hashes[index]], 600), "rs_merkle rejects inclusion of {index}");
        let ct_proof = ct_merkle::InclusionProof::<sha2_v011::Sha256>::try_from_bytes(p.hashes.concat()).unwrap();
        ct_root.verify_inclusion(&leaves[index], index as u64, &ct_proof).unwrap();
    }

    // ct-merkle: the server's consistency proofs from older sizes.
    for old in [1u64, 7, 200, 256, 599] {
        let p: ConsistencyProofResponse =
            serde_json::from_str(&server.get(&format!("/v1/proof/consistency?old_size={old}&new_size=600"))).unwrap();
        let old_root = ct_merkle::RootHash::<sha2_v011::Sha256>::new(root_of(&hashes[..old as usize]).into(), old);
        let proof = ct_merkle::ConsistencyProof::<sha2_v011::Sha256>::try_from_bytes(p.hashes.concat()).unwrap();
        ct_root.verify_consistency(&old_root, &proof).unwrap();
    }
}
