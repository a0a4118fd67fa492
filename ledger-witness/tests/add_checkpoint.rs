//! `add-checkpoint` over real HTTP on loopback: each status the
//! specification assigns, with the case that earns it; every refusal also
//! checks that the recorded tree did not move. Trees and proofs come from
//! `verifier::tree`, checkpoints from `verifier::note::NoteSigner`.

// In tests a failed unwrap is the failure report.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use ledger_witness::{app, origin_hash, CheckpointStore, Witness};
use verifier::cosignature::{require_quorum, WitnessSigner};
use verifier::hash::{leaf_hash, Hash, EMPTY_ROOT};
use verifier::note::NoteSigner;
use verifier::tree::{consistency_plan, hash_leaves};
use verifier::Checkpoint;

const ORIGIN: &str = "ledger.example/log";

fn log_signer() -> NoteSigner {
    NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[7; 32])).unwrap()
}

fn witness_signer() -> WitnessSigner {
    WitnessSigner::new("witness.example/w1", SigningKey::from_bytes(&[8; 32])).unwrap()
}

/// The leaves of a log; `fork` tags a different history.
fn leaves(n: u64, fork: u8) -> Vec<Hash> {
    (0..n).map(|i| leaf_hash(&[&i.to_be_bytes()[..], &[fork]].concat())).collect()
}

fn root(leaves: &[Hash], size: u64) -> Hash {
    hash_leaves(&leaves[..size as usize])
}

fn proof(leaves: &[Hash], old: u64, new: u64) -> Vec<Hash> {
    let plan = consistency_plan(old, new).unwrap();
    let hashes: Vec<Hash> = plan
        .nodes()
        .iter()
        .map(|id| {
            let (lo, hi) = id.leaf_range();
            hash_leaves(&leaves[lo as usize..hi as usize])
        })
        .collect();
    plan.assemble(&hashes).unwrap()
}

fn note(signer: &NoteSigner, origin: &str, size: u64, root: Hash) -> String {
    Checkpoint { origin: origin.into(), size, root, extensions: vec![] }.sign(signer).unwrap()
}

fn body(old: u64, proof: &[Hash], note: &str) -> String {
    let mut b = format!("old {old}\n");
    for h in proof {
        b.push_str(&B64.encode(h));
        b.push('\n');
    }
    b.push('\n');
    b.push_str(note);
    b
}

/// A witness served on a random loopback port by its own runtime; dropping
/// it stops the server.
struct Server {
    addr: SocketAddr,
    _rt: tokio::runtime::Runtime,
}

impl Server {
    fn start(state: &Path) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let witness =
            Arc::new(Witness::open(witness_signer(), vec![log_signer().verifier_key()], CheckpointStore::open(state).unwrap()).unwrap());
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        rt.spawn(async move { axum::serve(listener, app(witness)).await });
        Self { addr, _rt: rt }
    }

    fn post(&self, body: &str) -> (u16, Option<String>, String) {
        self.post_bytes(body.as_bytes())
    }

    fn post_bytes(&self, body: &[u8]) -> (u16, Option<String>, String) {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let mut resp = agent.post(&format!("http://{}/add-checkpoint", self.addr)).send(body).unwrap();
        let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
        (resp.status().as_u16(), ct, resp.body_mut().read_to_string().unwrap())
    }

    fn get_checkpoint(&self, origin: &str) -> (u16, String) {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let mut resp = agent.get(&format!("http://{}/{}/checkpoint", self.addr, origin_hash(origin))).call().unwrap();
        (resp.status().as_u16(), resp.body_mut().read_to_string().unwrap())
    }

    /// The size the witness has recorded, read as a client would: a
    /// submission with an old size no log can have gets the 409.
    fn recorded_size(&self) -> u64 {
        let probe = note(&log_signer(), ORIGIN, u64::MAX, [0; 32]);
        let (status, ct, body) = self.post(&self::body(u64::MAX - 1, &[], &probe));
        assert_eq!((status, ct.as_deref()), (409, Some("text/x.tlog.size")), "{body}");
        body.strip_suffix('\n').unwrap().parse().unwrap()
    }
}

/// Asserts a 200 whose body is one cosignature line that verifies on `note`.
fn assert_cosigned(resp: (u16, Option<String>, String), note: &str) {
    let (status, _, line) = resp;
    assert_eq!(status, 200, "{line}");
    assert!(line.starts_with("\u{2014} witness.example/w1 ") && line.ends_with('\n') && line.lines().count() == 1, "{line:?}");
    let names = require_quorum(&format!("{note}{line}"), &[witness_signer().witness_key()], 1).unwrap();
    assert_eq!(names, ["witness.example/w1"]);
}

#[test]
fn first_checkpoint_then_growth() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let l = leaves(13, 0);
    assert_eq!(server.recorded_size(), 0);
    assert_eq!(server.get_checkpoint(ORIGIN).0, 404);

    let n5 = note(&log_signer(), ORIGIN, 5, root(&l, 5));
    assert_cosigned(server.post(&body(0, &[], &n5)), &n5);
    assert_eq!(server.recorded_size(), 5);

    let n13 = note(&log_signer(), ORIGIN, 13, root(&l, 13));
    assert_cosigned(server.post(&body(5, &proof(&l, 5, 13), &n13)), &n13);
    // The same checkpoint again is cosigned again (nothing moves).
    assert_cosigned(server.post(&body(13, &[], &n13)), &n13);
    assert_eq!(server.recorded_size(), 13);

    // The monitoring view: the log's signature and the cosignature.
    let (status, served) = server.get_checkpoint(ORIGIN);
    assert_eq!(status, 200);
    assert!(served.starts_with(&n13), "{served}");
    require_quorum(&served, &[witness_signer().witness_key()], 1).unwrap();
    assert_eq!(server.get_checkpoint("other.example/log").0, 404);
}

#[test]
fn empty_tree_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let n0 = note(&log_signer(), ORIGIN, 0, EMPTY_ROOT);
    assert_cosigned(server.post(&body(0, &[], &n0)), &n0);
    let bad = note(&log_signer(), ORIGIN, 0, [1; 32]);
    assert_eq!(server.post(&body(0, &[], &bad)).0, 422);
}

#[test]
fn every_refusal_has_its_status_and_moves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let l = leaves(20, 0);
    let n8 = note(&log_signer(), ORIGIN, 8, root(&l, 8));
    assert_cosigned(server.post(&body(0, &[], &n8)), &n8);
    let n12 = note(&log_signer(), ORIGIN, 12, root(&l, 12));
    let good_proof = proof(&l, 8, 12);

    let other_key = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[99; 32])).unwrap();
    let stranger = NoteSigner::new("stranger.example/log", SigningKey::from_bytes(&[7; 32])).unwrap();
    let mut wrong_proof = good_proof.clone();
    wrong_proof[0][0] ^= 1;
    let h = B64.encode([1u8; 32]);
    let too_many = format!("old 8\n{}\n{n12}", format!("{h}\n").repeat(64));
    let tampered = n12.replacen("\n12\n", "\n13\n", 1);

    let cases: Vec<(&str, String, u16)> = vec![
        // 400: malformed bodies.
        ("no old line", n12.clone(), 400),
        ("leading zero", body(8, &good_proof, &n12).replacen("old 8", "old 08", 1), 400),
        ("proof line not base64", body(8, &good_proof, &n12).replacen(&B64.encode(good_proof[0]), "!!", 1), 400),
        ("proof hash of 31 bytes", body(8, &good_proof, &n12).replacen(&B64.encode(good_proof[0]), &B64.encode([0u8; 31]), 1), 400),
        ("64 proof lines", too_many, 400),
        ("no empty line", format!("old 8\n{}", n12.replace("\n\n", "\n")), 400),
        ("not a checkpoint", body(8, &good_proof, &log_signer().sign("hello\n").unwrap()), 400),
        ("no signature", body(8, &good_proof, &Checkpoint::from_text(&n12[..n12.find("\n\n").unwrap() + 1]).unwrap().to_text()), 400),
        // 404: a log the witness does not watch.
        ("unknown origin", body(8, &good_proof, &note(&stranger, "stranger.example/log", 12, root(&l, 12))), 404),
        // 403: the log's key did not sign it.
        ("another key, same origin", body(8, &good_proof, &note(&other_key, ORIGIN, 12, root(&l, 12))), 403),
        ("tampered checkpoint", body(8, &good_proof, &tampered), 403),
        // 400: old size beyond the checkpoint.
        ("old beyond size", body(13, &[], &n12), 400),
        // 422: proofs that do not verify.
        ("stale old size 0", body(0, &good_proof, &n12), 409),
        ("wrong proof", body(8, &wrong_proof, &n12), 422),
        ("short proof", body(8, &good_proof[1..], &n12), 422),
        ("no proof", body(8, &[], &n12), 422),
    ];
    for (name, request, expected) in cases {
        let (status, ct, text) = server.post(&request);
        assert_eq!(status, expected, "{name}: {text}");
        if expected != 409 {
            assert_eq!(ct.as_deref(), Some("application/json"), "{name}");
            let json: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert!(json["error"]["code"].is_string(), "{name}: {text}");
        }
        assert_eq!(server.recorded_size(), 8, "{name} moved the tree");
    }

    // 409: a stale old size, answered with the recorded size.
    let (status, ct, text) = server.post(&body(5, &proof(&l, 5, 12), &n12));
    assert_eq!((status, ct.as_deref(), text.as_str()), (409, Some("text/x.tlog.size"), "8\n"));

    // 413: a body over the bound is not read.
    let (status, _, _) = server.post_bytes(&vec![b'a'; ledger_witness::MAX_BODY_BYTES + 1]);
    assert_eq!(status, 413);
    assert_eq!(server.recorded_size(), 8);

    // And the good request still goes through.
    assert_cosigned(server.post(&body(8, &good_proof, &n12)), &n12);
}

#[test]
fn proof_from_size_zero_must_be_empty() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let l = leaves(6, 0);
    let n6 = note(&log_signer(), ORIGIN, 6, root(&l, 6));
    assert_eq!(server.post(&body(0, &[[1; 32]], &n6)).0, 422);
    assert_eq!(server.recorded_size(), 0);
}

#[test]
fn restart_keeps_state() {
    let dir = tempfile::tempdir().unwrap();
    let l = leaves(9, 0);
    let n5 = note(&log_signer(), ORIGIN, 5, root(&l, 5));
    {
        let server = Server::start(dir.path());
        assert_cosigned(server.post(&body(0, &[], &n5)), &n5);
    }
    let server = Server::start(dir.path());
    let (status, ct, text) = server.post(&body(0, &[], &n5));
    assert_eq!((status, ct.as_deref(), text.as_str()), (409, Some("text/x.tlog.size"), "5\n"));
    assert!(server.get_checkpoint(ORIGIN).1.starts_with(&n5));
    let n9 = note(&log_signer(), ORIGIN, 9, root(&l, 9));
    assert_cosigned(server.post(&body(5, &proof(&l, 5, 9), &n9)), &n9);
    drop(server);
    assert_eq!(Server::start(dir.path()).recorded_size(), 9);
}

#[test]
fn split_views_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let honest = leaves(16, 0);
    let forked = leaves(16, 1);
    let n7 = note(&log_signer(), ORIGIN, 7, root(&honest, 7));
    assert_cosigned(server.post(&body(0, &[], &n7)), &n7);

    // Same size, another root.
    let f7 = note(&log_signer(), ORIGIN, 7, root(&forked, 7));
    assert_eq!(server.post(&body(7, &[], &f7)).0, 422);
    // A larger tree whose proof is consistent with the fork, not with what
    // was cosigned.
    let f16 = note(&log_signer(), ORIGIN, 16, root(&forked, 16));
    assert_eq!(server.post(&body(7, &proof(&forked, 7, 16), &f16)).0, 422);
    // A larger tree that shares the first leaves but rewrote one of them.
    let mut rewritten = honest.clone();
    rewritten[3] = leaf_hash(b"rewritten");
    let r16 = note(&log_signer(), ORIGIN, 16, root(&rewritten, 16));
    assert_eq!(server.post(&body(7, &proof(&rewritten, 7, 16), &r16)).0, 422);
    assert_eq!(server.recorded_size(), 7);
    assert!(server.get_checkpoint(ORIGIN).1.starts_with(&n7));
}

#[test]
fn concurrent_submissions_cosign_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Arc::new(Server::start(dir.path()));
    let l = leaves(4, 0);
    let n4 = note(&log_signer(), ORIGIN, 4, root(&l, 4));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (server, request) = (Arc::clone(&server), body(0, &[], &n4));
            std::thread::spawn(move || server.post(&request).0)
        })
        .collect();
    let mut statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    statuses.sort();
    assert_eq!(statuses, [200, 409, 409, 409, 409, 409, 409, 409]);
    assert_eq!(server.recorded_size(), 4);
}
