//! Pure verification for Agent Ledger.
//!
//! Everything an offline auditor needs to check what the ledger serves lives
//! here, and the server uses the same code to build what it serves:
//!
//! * [`hash`]: RFC 9162 §2.1.1 hashing (`leaf = SHA-256(0x00 || d)`,
//!   `node = SHA-256(0x01 || l || r)`).
//! * [`tree`]: sans-io index maths. A proof is *planned* (which complete
//!   subtrees are needed), the caller fetches those node hashes from wherever
//!   they live (RocksDB, memory, tiles read from files) and the plan
//!   *assembles* the proof.
//! * [`proof`]: inclusion (RFC 9162 §2.1.3.2) and consistency (§2.1.4.2)
//!   verification with one typed error enum per proof kind.
//! * [`note`] and [`checkpoint`]: C2SP signed notes (c2sp.org/signed-note)
//!   with Ed25519 keys, and checkpoints (c2sp.org/tlog-checkpoint).
//! * [`cosignature`]: witness cosignatures on checkpoints
//!   (c2sp.org/tlog-cosignature, Ed25519 `cosignature/v1`) and quorums.
//! * [`tlog_proof`]: offline proof files (c2sp.org/tlog-proof, `@v1`).
//! * [`tiles`]: tile paths and geometry (c2sp.org/tlog-tiles, height 8).
//! * [`canonical`]: RFC 8785 canonical JSON and the strict parser every
//!   entry and leaf goes through.
//! * [`agent_id`]: SPIFFE agent ids ([`AgentId`]), checked once.
//! * [`entry`]: the entry model: every entry kind as a typed [`Entry`],
//!   its validation rules, leaf decoding ([`entry::Leaf`]), what agents
//!   sign and the signed-request headers.
//! * [`fold`]: state derived from the log by pure folds, used alike by the
//!   log's admission and by offline audits; [`fold::registry`] is the
//!   agents' key chains, [`fold::trust`] and [`fold::drift`] their trust
//!   scores and behaviour drift under a [`fold::policy`] (docs/TRUST.md).
//! * [`disclosure`] and [`hidden`]: hidden fields (commitments, openings,
//!   predicate proofs) and offline disclosure bundles.
//! * [`tpm`]: TPM 2.0 quotes as attestation evidence.
//! * [`wire`]: the JSON shapes of the HTTP API.
//! * [`archive`] (`std`): the framing of audit archives, a streamable
//!   export of a range of the log with what checks it offline.
//! * [`error`]: the crate's one error enum ([`Error`]), over the typed
//!   errors of each module.
//!
//! The crate is `no_std` + `alloc` with `--no-default-features`; the `std`
//! feature adds signing and `std::error::Error` impls. It does no I/O: the
//! `ledger-verify` command-line tool (its own crate) fetches and reads files
//! and calls it.
//!
//! ```
//! use verifier::{hash, proof, tree};
//!
//! let leaves: Vec<_> = (0u8..5).map(|i| hash::leaf_hash(&[i])).collect();
//! // A toy node store: compute every complete subtree of a 5-leaf tree.
//! let node = |id: tree::NodeId| tree::hash_leaves(&leaves[id.leaf_range().0 as usize..id.leaf_range().1 as usize]);
//! let plan = tree::inclusion_plan(3, 5).unwrap();
//! let fetched: Vec<_> = plan.nodes().iter().map(|id| node(*id)).collect();
//! let path = plan.assemble(&fetched).unwrap();
//! let root = tree::hash_leaves(&leaves);
//! proof::verify_inclusion(&leaves[3], 3, 5, &path, &root).unwrap();
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod agent_id;
#[cfg(feature = "std")]
pub mod archive;
pub mod canonical;
pub mod checkpoint;
pub mod cosignature;
pub mod disclosure;
pub mod entry;
pub mod error;
pub mod fold;
pub mod hash;
pub mod hidden;
pub mod note;
pub mod proof;
pub mod statement;
pub mod tiles;
pub mod tlog_proof;
pub mod token;
pub mod tpm;
pub mod tree;
pub mod wire;

pub use agent_id::AgentId;
pub use checkpoint::Checkpoint;
pub use entry::{Entry, EntryError, EntryKind};
pub use error::Error;
pub use hash::Hash;
pub use note::{NoteVerifier, VerifierKey};
pub use proof::{ConsistencyError, InclusionError};
