//! The running server's checkpoints, proofs and tiles, checked only with
//! independent implementations: Cloudflare's `signed_note` and `tlog_tiles`
//! (ports of Go's sumdb/note and sumdb/tlog: signatures, checkpoints, tiles
//! authenticated against the tree hash, inclusion and consistency proofs),
//! rs_merkle (roots, inclusion), ct-merkle (inclusion, consistency) and plain
//! SHA-256 over tlog-tiles entry bundles.

// In tests a failed unwrap is the failure report.
#![allow(clippy::unwrap_used)]

#[path = "independent/rfc6962.rs"]
mod rfc6962;

use ledger_e2e::Server;
use rfc6962::{leaf_hash, Hash, Rfc6962};
use verifier::wire::{ConsistencyProofResponse, InclusionProofResponse};
use verifier::{Checkpoint, NoteVerifier, VerifierKey};

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

/// Registers an agent and appends its signed actions, in batches of 100:
/// `100 · batches` entries, the passport included.
fn append_batches(server: &Server, batches: usize) {
    let agent = ledger_e2e::Agent::new("interop");
    server.register(&agent);
    for b in 0..batches {
        let n = if b == 0 { 99 } else { 100 };
        let batch: Vec<String> = (0..n).map(|i| agent.action(&format!("r/{b}/{i}"), None)).collect();
        let resp = ureq::post(&format!("{}/v1/entries/batch", server.url))
            .header("content-type", "application/json")
            .send(format!("[{}]", batch.join(",")));
        assert_eq!(resp.unwrap().status(), 201);
    }
}

/// Fetches tiles from the server for `tlog_tiles`, which authenticates each
/// against the checkpointed tree hash before using it.
struct HttpTiles<'a>(&'a Server);

impl tlog_tiles::TileReader for HttpTiles<'_> {
    fn height(&self) -> u8 {
        8
    }

    fn read_tiles(&self, tiles: &[tlog_tiles::Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        // tlog_tiles writes Go sumdb paths (`tile/8/L/N`); c2sp.org/tlog-tiles
        // drops the height (`tile/L/N`).
        Ok(tiles.iter().map(|t| get_bytes(self.0, &format!("/tlog/tile/{}", t.path().strip_prefix("tile/8/").unwrap()))).collect())
    }

    fn save_tiles(&self, _tiles: &[tlog_tiles::Tile], _data: &[Vec<u8>]) {}
}

#[test]
fn go_sumdb_port_verifies_checkpoints_tiles_and_proofs() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut leaves = Vec::new();
    append_batches(&server, 7);
    for i in 0..700u64 {
        let e: verifier::wire::EntryResponse = serde_json::from_str(&server.get(&format!("/v1/entries/{i}"))).unwrap();
        leaves.push(e.leaf);
    }

    // The checkpoint: signature (signed_note) and body (tlog_tiles).
    let key = server.key();
    let note = signed_note::Note::from_bytes(server.get("/tlog/checkpoint").as_bytes()).unwrap();
    let verifier = signed_note::StandardVerifier::new(&key).unwrap();
    let (verified, _) = note.verify(&signed_note::VerifierList::new(vec![Box::new(verifier)])).unwrap();
    assert_eq!(verified.len(), 1);
    let cp = tlog_tiles::Checkpoint::from_bytes(note.text()).unwrap();
    assert_eq!((cp.origin(), cp.size()), (ledger_e2e::ORIGIN, 700));

    // ledger-verify's own audit agrees: 2 full bundles and one partial.
    let out = ledger_e2e::ledger_verify(&["--json", "audit", "--url", &server.url, "--key", &key]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["result"]["entries"], 700);

    // Every hash read through tiles is checked against the tree hash.
    let tiles = HttpTiles(&server);
    let reader = tlog_tiles::TileHashReader::new(cp.size(), *cp.hash(), &tiles);
    assert_eq!(tlog_tiles::tree_hash(cp.size(), &reader).unwrap(), *cp.hash());

    for index in [0u64, 1, 255, 256, 511, 512, 600, 699] {
        let record = tlog_tiles::record_hash(&leaves[index as usize]);
        let theirs = tlog_tiles::prove_record(cp.size(), index, &reader).unwrap();
        tlog_tiles::check_record(&theirs, cp.size(), *cp.hash(), index, record).unwrap();
        let ours: InclusionProofResponse =
            serde_json::from_str(&server.get(&format!("/v1/proof/inclusion?index={index}&tree_size=700"))).unwrap();
        let ours: Vec<tlog_tiles::Hash> = ours.hashes.iter().map(|h| tlog_tiles::Hash(*h)).collect();
        assert_eq!(ours, theirs, "inclusion proof of {index}");
        tlog_tiles::check_record(&ours, cp.size(), *cp.hash(), index, record).unwrap();
    }
    for old in [1u64, 2, 100, 256, 257, 699] {
        let old_hash = tlog_tiles::tree_hash(old, &reader).unwrap();
        let ours: ConsistencyProofResponse =
            serde_json::from_str(&server.get(&format!("/v1/proof/consistency?old_size={old}&new_size=700"))).unwrap();
        let ours: Vec<tlog_tiles::Hash> = ours.hashes.iter().map(|h| tlog_tiles::Hash(*h)).collect();
        tlog_tiles::check_tree(&ours, cp.size(), *cp.hash(), old, old_hash).unwrap();
        assert_eq!(ours, tlog_tiles::prove_tree(cp.size(), old, &reader).unwrap(), "consistency proof {old} -> 700");
    }
}

fn root_of(leaves: &[Hash]) -> Hash {
    rs_merkle::MerkleTree::<Rfc6962>::from_leaves(leaves).root().unwrap()
}

#[test]
fn server_output_verifies_with_independent_implementations() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    append_batches(&server, 6);
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
