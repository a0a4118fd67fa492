//! Agent Ledger's storage engine: an append-only RFC 9162 Merkle log.
//!
//! * [`Log`] is the front door: it opens a store, runs the append pipeline
//!   and serves reads.
//! * `append` is the life of an append: admission (agent signatures,
//!   in parallel, against the keys in force), the prover stage (hidden-field
//!   proofs on their own pool), and a single sequencer thread that groups
//!   concurrent appenders into one atomic, synced write (group commit) and
//!   signs a C2SP checkpoint for every commit. An append returns only once
//!   its entries, their tree nodes, the new head and the views' records are
//!   durable.
//! * [`views`] holds state derived from the log by a deterministic fold,
//!   updated in the same commits; the agent registry ([`views::registry`])
//!   is the first.
//! * Reads (entries, inclusion and consistency proofs, tiles, tlog-proof
//!   files) are served from the store against the published head, using the
//!   sans-io proof plans of the [`verifier`] crate, with O(log n) node reads.
//! * [`store`] holds the storage trait (the log, plus generic records in
//!   namespaces) and its RocksDB and in-memory implementations;
//!   `conformance` is the suite both pass (and any new backend must).
//! * [`entry`] defines the leaf encoding (docs/FORMAT.md), RFC 8785
//!   canonical JSON from [`verifier::canonical`]; agent ids are
//!   [`verifier::agent_id::AgentId`]s, parsed once where they enter.
//! * [`signals`]: signed signals (a registered source's, or an agent's
//!   peer report) as a [`Submission`], admitted through the same pipeline
//!   against the sources view ([`views::sources`]) and the registry.
//! * [`hidden`] commits hidden fields and proves their predicates;
//!   [`sealing`] encrypts their openings at rest (a data key per entry,
//!   wrapped by the master key), and [`Log::disclose`] / [`Log::shred`]
//!   (`disclosure`) disclose or crypto-shred them.
//! * [`attest`] and [`nonces`] hold attestations and their single-use
//!   nonces; [`requests`] authenticates agent-signed requests
//!   ([`Log::authenticate_request`]: window, registry, signature, replay
//!   cache). All read the log's [`clock`]: wall time for timestamps,
//!   monotonic time for nonce lifetimes.
//! * [`issuer`] issues just-in-time action tokens on the live trust view,
//!   escalates to a human where the policy says so, and signs trust
//!   statements for peers; [`views::grants`] folds what it logged.
//! * [`export`] writes audit archives ([`export_archive`],
//!   [`Log::export`]): a range of entries tied to a signed checkpoint,
//!   streamed and zstd-compressed, for `ledger-verify audit`.
//! * [`ssf`] keeps the OpenID SSF event streams of the server's
//!   transmitter: their configuration and durable delivery cursor.
//!
//! The log keeps no per-entry state in memory: the sequencer holds the right
//! frontier (at most 64 hashes) and readers go to the store.
#![forbid(unsafe_code)]

mod append;
pub mod attest;
pub mod auth;
pub mod clock;
mod config;
#[doc(hidden)]
pub mod conformance;
mod disclosure;
pub mod entry;
mod error;
pub mod export;
pub mod hidden;
pub mod issuer;
pub mod keys;
mod log;
pub mod nonces;
pub mod prover_backends;
pub mod requests;
pub mod sealing;
pub mod signals;
pub mod ssf;
pub mod store;
pub mod trigger;
pub mod views;

pub use append::sequencer::{Appended, CommitObserver, Head};
pub use config::LogConfig;
pub use disclosure::{DisclosureRequest, ShredTarget};
pub use entry::{AdminOp, EntryAuth, EntryKind, Leaf, NewEntry, Submission};
pub use error::Error;
pub use export::{export_archive, ExportRange};
pub use log::{Log, MAX_RANGE, MAX_RANGE_BYTES};
pub use prover_backends::ProverBackends;
pub use views::registry::AgentState;
