//! The configuration of a log: one struct, with defaults that run.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::sealing::OpeningsKey;
use crate::views::View;

/// Tunables of a log.
#[derive(Clone, Debug)]
pub struct LogConfig {
    /// Checkpoint origin and key name, e.g. `ledger.example/agents`.
    pub origin: String,
    /// Bytes of entries that may wait for the sequencer before appends are
    /// pushed back.
    pub queue_bytes: usize,
    /// Most entries grouped into one commit (a single larger append is never
    /// split).
    pub max_batch_entries: usize,
    /// What a pushed-back client is told to wait.
    pub retry_after: Duration,
    /// Master key wrapping the per-entry data keys that encrypt openings
    /// of hidden fields at rest ([`crate::sealing`]); entries with hidden
    /// fields are refused without it.
    pub openings_key: Option<OpeningsKey>,
    /// Prover threads (0 = one per core).
    pub prover_threads: usize,
    /// The range provers of the prover stage
    /// ([`crate::ProverBackends`]; default: the precomputed CPU
    /// prover for everything).
    pub prover_backends: crate::ProverBackends,
    /// Most entries waiting for (or in) the prover before submissions with
    /// hidden fields are pushed back.
    pub prover_queue: usize,
    /// Require agent-written entries to be signed by a registered agent
    /// (the server always does; storage tests and benchmarks of the bare
    /// log may turn it off).
    pub agent_auth: bool,
    /// Verify agent signatures in parallel before the sequencer in
    /// [`Log::submit`](crate::Log::submit); off: the sequencer thread verifies each one (the
    /// baseline of the signed-append bench). Entries with hidden fields are
    /// authenticated before their proofs are checked either way.
    pub preverify: bool,
    /// Trust domain agents are registered in (`None`: any).
    pub trust_domain: Option<String>,
    /// How long an attestation nonce stays valid.
    pub nonce_ttl: Duration,
    /// Most outstanding nonces (used or expired ones dropped first; a live
    /// nonce is never dropped for another agent's).
    pub nonce_capacity: usize,
    /// Verify every proof the log makes (`POST /v1/hidden/commit`) before
    /// handing it out. The prover already refuses false predicates and
    /// mismatched openings, so this guards only against a broken prover.
    /// (Proofs made by clients are always verified.)
    pub prover_self_check: bool,
    /// The time everything in the log reads: integrated times and the
    /// signed-request window (wall clock), nonce expiry (monotonic clock)
    /// ([`SystemClock`] by default; a
    /// [`crate::clock::ManualClock`] in tests).
    pub clock: Arc<dyn Clock>,
    /// Views the log keeps besides the agent registry ([`crate::views`]),
    /// folded in every group commit in this order; each must have its own
    /// name.
    pub views: Vec<Arc<dyn View>>,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            origin: "localhost/agent-ledger".into(),
            queue_bytes: 64 * 1024 * 1024,
            max_batch_entries: 16 * 1024,
            retry_after: Duration::from_secs(1),
            openings_key: None,
            prover_threads: 0,
            prover_backends: crate::ProverBackends::default(),
            prover_queue: 4096,
            prover_self_check: true,
            agent_auth: true,
            preverify: true,
            trust_domain: None,
            nonce_ttl: Duration::from_secs(60),
            nonce_capacity: 100_000,
            clock: Arc::new(SystemClock::new()),
            views: Vec::new(),
        }
    }
}
