//! Property tests of the log's invariants on the in-memory store: for any
//! sequence of batch sizes, indices are contiguous, every checkpoint seen
//! is consistent with every later one, and every entry is provably included.

// In tests and benches a failed unwrap is the failure report.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use ledger_core::store::MemoryStore;
use ledger_core::{Log, LogConfig, NewEntry};
use proptest::prelude::*;
use verifier::note::{NoteSigner, NoteVerifier};
use verifier::proof::{verify_consistency, verify_inclusion};
use verifier::Checkpoint;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn checkpoints_stay_consistent(batches in proptest::collection::vec(1usize..40, 1..12)) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let signer = NoteSigner::new("p.example/log", SigningKey::from_bytes(&[5; 32])).unwrap();
        let verifier = NoteVerifier::new(signer.verifier_key());
        let log = Log::open(Arc::new(MemoryStore::new()), signer, LogConfig { origin: "p.example/log".into(), agent_auth: false, ..LogConfig::default() }, None).unwrap();
        let mut checkpoints = vec![Checkpoint::open(&log.head().checkpoint, &verifier).unwrap()];
        let mut acked = Vec::new();
        for (b, n) in batches.iter().enumerate() {
            let entries: Vec<NewEntry> = (0..*n).map(|i| NewEntry::action(&"spiffe://p.example/agent/x".parse().unwrap(), "call", &format!("api/{b}/{i}"), None, 1024).unwrap()).collect();
            let done = rt.block_on(log.append(entries)).unwrap();
            prop_assert_eq!(done[0].index, acked.len() as u64);
            acked.extend(done);
            checkpoints.push(Checkpoint::open(&log.head().checkpoint, &verifier).unwrap());
        }
        let latest = checkpoints.last().unwrap().clone();
        for cp in &checkpoints {
            let proof = log.consistency_proof(cp.size, latest.size).unwrap();
            prop_assert!(verify_consistency(cp.size, latest.size, &proof, &cp.root, &latest.root).is_ok());
        }
        for a in &acked {
            for cp in checkpoints.iter().filter(|cp| cp.size > a.index) {
                let proof = log.inclusion_proof(a.index, cp.size).unwrap();
                prop_assert!(verify_inclusion(&a.leaf_hash, a.index, cp.size, &proof, &cp.root).is_ok());
            }
        }
    }
}
