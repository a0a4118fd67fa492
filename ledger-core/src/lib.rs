//! Agent Ledger's storage engine: an append-only RFC 9162 Merkle log.
//!
//! * [`Log`] accepts appends through a single sequencer thread that groups
//!   concurrent appenders into one atomic, synced write (group commit) and
//!   signs a C2SP checkpoint for every commit. An append returns only once
//!   its entries, their tree nodes and the new head are durable.
//! * Reads (entries, inclusion and consistency proofs, tiles, tlog-proof
//!   files) are served from the store against the published head, using the
//!   sans-io proof plans of the [`verifier`] crate, with O(log n) node reads.
//! * [`store`] holds the narrow storage trait and its RocksDB and in-memory
//!   implementations.
//! * [`entry`] and [`canonical`] define the canonical leaf encoding
//!   (docs/FORMAT.md).
//! * [`hidden`] commits hidden fields and proves their predicates on a
//!   rayon prover pool fed by the append path; [`sealing`] encrypts their
//!   openings at rest (a data key per entry, wrapped by the master key), and
//!   [`Log::disclose`] / [`Log::shred`] disclose or crypto-shred them.
//!
//! The log keeps no per-entry state in memory: the sequencer holds the right
//! frontier (at most 64 hashes) and readers go to the store.
#![forbid(unsafe_code)]

pub mod agents;
pub mod attest;
pub mod canonical;
mod disclose;
pub mod entry;
mod error;
pub mod hidden;
pub mod keys;
mod log;
pub mod requests;
pub mod sealing;
mod sequencer;
pub mod spiffe;
pub mod store;

pub use agents::AgentState;
pub use disclose::{DisclosureRequest, ShredTarget};
pub use entry::{AdminOp, EntryAuth, EntryKind, Leaf, NewEntry, Submission};
pub use error::Error;
pub use log::{Head, Log, LogConfig, MAX_RANGE, MAX_RANGE_BYTES};
pub use sequencer::{Appended, CommitObserver};
