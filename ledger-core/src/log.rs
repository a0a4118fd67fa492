//! The log: appends through the sequencer, reads (entries, proofs,
//! checkpoints, tiles) straight from the store against a published head.

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Semaphore};
use verifier::hash::{hashes_equal, Hash, EMPTY_ROOT};
use verifier::note::{NoteSigner, NoteVerifier, SignedNote, VerifierKey};
use verifier::tiles::{self, TileKind, TilePath};
use verifier::tlog_proof::TlogProof;
use verifier::tree::{self, CompactRange, NodeId, ProofPlan};
use verifier::Checkpoint;

use crate::entry::NewEntry;
use crate::sealing::OpeningsKey;
use crate::sequencer::{self, Appended, CommitObserver, Request};
use crate::store::{CommitBatch, LogStore, OpeningsRecord, RocksStore, StorageError, StoredHead};
use crate::Error;

/// Most entries one range read returns.
pub const MAX_RANGE: u64 = 1000;

/// Most leaf bytes one range read returns (it always returns at least one
/// entry): without it, 1000 leaves of 64 KiB make one unauthenticated
/// request hold ~64 MiB of leaves and several times that once encoded.
pub const MAX_RANGE_BYTES: usize = 1 << 20;

/// Entries read from the store at a time by a range read, so that what is
/// read past the byte budget stays under 16 x 64 KiB = 1 MiB.
const RANGE_CHUNK: u64 = 16;

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
    /// Most entries waiting for (or in) the prover before submissions with
    /// hidden fields are pushed back.
    pub prover_queue: usize,
    /// Require agent-written entries to be signed by a registered agent
    /// (the server always does; storage tests and benchmarks of the bare
    /// log may turn it off).
    pub agent_auth: bool,
    /// Verify agent signatures in parallel before the sequencer in
    /// [`Log::submit`]; off: the sequencer thread verifies each one (the
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
            prover_queue: 4096,
            prover_self_check: true,
            agent_auth: true,
            preverify: true,
            trust_domain: None,
            nonce_ttl: Duration::from_secs(60),
            nonce_capacity: 100_000,
        }
    }
}

/// The published head: what readers may see and prove against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// Tree size.
    pub size: u64,
    /// Root hash at `size`.
    pub root: Hash,
    /// Signed C2SP checkpoint note for `size`.
    pub checkpoint: Arc<str>,
    /// Integrated time of the last entry.
    pub integrated_time: u64,
}

pub(crate) struct Shared {
    pub store: Arc<dyn LogStore>,
    pub signer: NoteSigner,
    pub config: LogConfig,
    pub observer: Option<Arc<dyn CommitObserver>>,
    pub registry: crate::agents::Registry,
    pub nonces: crate::attest::NonceStore,
    /// Agent-signed requests already accepted (each is accepted once).
    pub requests: crate::requests::ReplayCache,
    head: RwLock<Head>,
}

impl Shared {
    pub fn publish(&self, head: Head) {
        *self.head.write().unwrap_or_else(|e| e.into_inner()) = head;
    }

    fn head(&self) -> Head {
        self.head.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// An append-only, verifiable log.
pub struct Log {
    pub(crate) shared: Arc<Shared>,
    pub(crate) prover: crate::disclose::Prover,
    queue: Arc<Semaphore>,
    sender: RwLock<Option<mpsc::UnboundedSender<Request>>>,
    sequencer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log").field("origin", &self.shared.config.origin).field("head", &self.shared.head()).finish()
    }
}

impl Log {
    /// Opens the RocksDB log under `data_dir` (key in `data_dir/log.key`;
    /// unless the config carries one, the openings master key in
    /// `data_dir/openings.key`).
    ///
    /// The openings key file is created only while the store holds no
    /// sealed openings. Once it does, a missing key is an error, never
    /// replaced: a new key would turn every sealed opening into an
    /// undisclosable one. A key (from the file or the config) that opens
    /// none of the first sealed openings is refused as well.
    pub fn open_dir(data_dir: &Path, mut config: LogConfig, observer: Option<Arc<dyn CommitObserver>>) -> Result<Self, Error> {
        let signer = crate::keys::load_or_create_signer(&data_dir.join(crate::keys::KEY_FILE), &config.origin)?;
        // The store first: its lock keeps other servers off the directory
        // while we decide whether a key may be created.
        let store = RocksStore::open(&data_dir.join("db"))?;
        let sealed = crate::store::first_sealed_openings(&store, OPENINGS_KEY_PROBES)?;
        if config.openings_key.is_none() {
            let path = data_dir.join(crate::keys::OPENINGS_KEY_FILE);
            let exists = path.try_exists().map_err(|e| Error::Config(format!("openings key {}: {e}", path.display())))?;
            if let (Some((index, _)), false) = (sealed.first(), exists) {
                return Err(Error::Config(format!(
                    "the openings key {} is missing, but the store holds sealed openings (the first at entry {index}): restore the \
                     key file from where it is kept (or pass it in LEDGER_OPENINGS_KEY / --openings-key); a new key would make every \
                     sealed opening undisclosable, so none is created",
                    path.display()
                )));
            }
            let (text, _) = crate::keys::load_or_create_secret(&path, "openings key")?;
            config.openings_key =
                Some(OpeningsKey::from_text(&text).map_err(|e| Error::Config(format!("openings key {}: {e}", path.display())))?);
        }
        if let Some(key) = &config.openings_key {
            check_openings_key(&store, key, &sealed)?;
        }
        Self::open(Arc::new(store), signer, config, observer)
    }

    /// Opens a log on `store`, recovering its head and checking that the
    /// stored tree matches the stored, signed checkpoint.
    pub fn open(
        store: Arc<dyn LogStore>,
        signer: NoteSigner,
        config: LogConfig,
        observer: Option<Arc<dyn CommitObserver>>,
    ) -> Result<Self, Error> {
        if signer.verifier_key().name() != config.origin {
            return Err(Error::Config(format!(
                "signing key is named {:?} but the origin is {:?}",
                signer.verifier_key().name(),
                config.origin
            )));
        }
        let (frontier, head) = match store.head()? {
            Some(stored) => recover(&*store, &signer.verifier_key(), &config.origin, stored)?,
            None => {
                let checkpoint = Checkpoint { origin: config.origin.clone(), size: 0, root: EMPTY_ROOT, extensions: Vec::new() };
                let note = checkpoint.sign(&signer).map_err(|e| Error::Config(e.to_string()))?;
                let stored = StoredHead { size: 0, integrated_time: 0, checkpoint: note.clone() };
                store.commit(&CommitBatch { head: Some(stored), ..CommitBatch::default() })?;
                (CompactRange::new(), Head { size: 0, root: EMPTY_ROOT, checkpoint: note.into(), integrated_time: 0 })
            }
        };
        let permits = config.queue_bytes.min(Semaphore::MAX_PERMITS);
        let prover = crate::disclose::Prover::new(config.prover_threads, config.prover_queue)?;
        let last_time = head.integrated_time;
        let mut agents = std::collections::HashMap::new();
        for (agent, record) in store.agents()? {
            agents.insert(agent, crate::agents::AgentState::from_bytes(&record)?);
        }
        let registry = crate::agents::Registry::new(agents);
        let nonces = crate::attest::NonceStore::new(config.nonce_ttl, config.nonce_capacity);
        let requests = crate::requests::ReplayCache::default();
        let shared = Arc::new(Shared { store, signer, config, observer, registry, nonces, requests, head: RwLock::new(head) });
        let (tx, rx) = mpsc::unbounded_channel();
        let thread_shared = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name("ledger-sequencer".into())
            .spawn(move || sequencer::run(thread_shared, rx, frontier, last_time))
            .map_err(|e| Error::Config(format!("starting the sequencer: {e}")))?;
        Ok(Self {
            shared,
            prover,
            queue: Arc::new(Semaphore::new(permits)),
            sender: RwLock::new(Some(tx)),
            sequencer: Mutex::new(Some(handle)),
        })
    }

    /// The log's configuration.
    pub fn config(&self) -> &LogConfig {
        &self.shared.config
    }

    /// The verifier key auditors use.
    pub fn verifier_key(&self) -> VerifierKey {
        self.shared.signer.verifier_key()
    }

    /// The latest published head.
    pub fn head(&self) -> Head {
        self.shared.head()
    }

    /// Bytes currently waiting for the sequencer.
    pub fn queued_bytes(&self) -> usize {
        self.shared.config.queue_bytes.min(Semaphore::MAX_PERMITS) - self.queue.available_permits()
    }

    /// Appends entries atomically at contiguous indices. Returns once they
    /// are durable; fails fast with [`Error::Pushback`] when the queue is full.
    pub async fn append(&self, entries: Vec<NewEntry>) -> Result<Vec<Appended>, Error> {
        if entries.is_empty() {
            return Err(Error::EmptyBatch);
        }
        if self.shared.config.agent_auth {
            use crate::entry::EntryKind;
            if let Some(e) = entries
                .iter()
                .find(|e| e.auth().is_none() && matches!(e.kind(), EntryKind::Action | EntryKind::Rotation | EntryKind::Attestation))
            {
                return Err(Error::Unsigned(e.kind().as_str()));
            }
        }
        if self.shared.config.openings_key.is_none() && entries.iter().any(|e| e.secret().is_some()) {
            return Err(Error::Config("entries with hidden fields need an openings key, and none is configured".into()));
        }
        let bytes: usize = entries.iter().map(NewEntry::queued_bytes).sum();
        let max = self.shared.config.queue_bytes.min(Semaphore::MAX_PERMITS);
        if bytes > max {
            return Err(Error::BatchTooLarge { bytes, max });
        }
        let permit = Arc::clone(&self.queue)
            .try_acquire_many_owned(bytes as u32)
            .map_err(|_| Error::Pushback { retry_after: self.shared.config.retry_after })?;
        let (reply, rx) = oneshot::channel();
        {
            let sender = self.sender.read().unwrap_or_else(|e| e.into_inner());
            let sender = sender.as_ref().ok_or(Error::ShuttingDown)?;
            sender.send(Request { entries, reply, _permit: permit }).map_err(|_| Error::ShuttingDown)?;
        }
        rx.await.map_err(|_| Error::ShuttingDown)?
    }

    /// Stops taking appends, lets the sequencer commit everything queued,
    /// and waits for it. Idempotent.
    pub fn shutdown(&self) {
        self.sender.write().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = self.sequencer.lock().unwrap_or_else(|e| e.into_inner()).take() {
            if handle.join().is_err() {
                tracing::error!("the sequencer thread panicked");
            }
        }
    }

    /// Leaf bytes of entry `index`.
    pub fn entry(&self, index: u64) -> Result<Vec<u8>, Error> {
        let size = self.head().size;
        if index >= size {
            return Err(Error::IndexBeyondTree { index, size });
        }
        self.shared.store.get_entries(index, index + 1)?.pop().ok_or_else(|| missing_entry(index))
    }

    /// Up to `limit` (at most [`MAX_RANGE`]) entries from `start`, with the
    /// tree size they were read at. The entries stop early, after at least
    /// one, where the next would take the leaf bytes past
    /// [`MAX_RANGE_BYTES`]; callers continue from `start + entries.len()`.
    pub fn entries(&self, start: u64, limit: u64) -> Result<(Vec<Vec<u8>>, u64), Error> {
        let size = self.head().size;
        if start >= size {
            return Err(Error::IndexBeyondTree { index: start, size });
        }
        let end = start.saturating_add(limit.clamp(1, MAX_RANGE)).min(size);
        let mut entries = Vec::new();
        let mut bytes = 0usize;
        let mut from = start;
        while from < end {
            let to = from.saturating_add(RANGE_CHUNK).min(end);
            let chunk = self.shared.store.get_entries(from, to)?;
            if chunk.len() as u64 != to - from {
                return Err(missing_entry(from + chunk.len() as u64));
            }
            for leaf in chunk {
                if !entries.is_empty() && bytes.saturating_add(leaf.len()) > MAX_RANGE_BYTES {
                    return Ok((entries, size));
                }
                bytes += leaf.len();
                entries.push(leaf);
            }
            from = to;
        }
        Ok((entries, size))
    }

    fn fetch(&self, plan: &ProofPlan) -> Result<Vec<Hash>, Error> {
        let hashes = fetch_nodes(&*self.shared.store, plan.nodes())?;
        plan.assemble(&hashes).map_err(|e| Error::Storage(StorageError::Corrupt(e.to_string())))
    }

    fn check_size(&self, requested: u64) -> Result<(), Error> {
        let size = self.head().size;
        if requested > size {
            return Err(Error::SizeBeyondTree { requested, size });
        }
        Ok(())
    }

    /// Root hash of the tree at `size` (any size up to the head).
    pub fn root_at(&self, size: u64) -> Result<Hash, Error> {
        self.check_size(size)?;
        Ok(self.fetch(&tree::root_plan(size))?.first().copied().unwrap_or(EMPTY_ROOT))
    }

    /// RFC 9162 inclusion proof of `index` in the tree of `tree_size`.
    pub fn inclusion_proof(&self, index: u64, tree_size: u64) -> Result<Vec<Hash>, Error> {
        self.check_size(tree_size)?;
        let plan = tree::inclusion_plan(index, tree_size).map_err(|_| Error::IndexBeyondTree { index, size: tree_size })?;
        self.fetch(&plan)
    }

    /// RFC 9162 consistency proof from `old_size` to `new_size`.
    pub fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<Vec<Hash>, Error> {
        self.check_size(new_size)?;
        let plan = tree::consistency_plan(old_size, new_size).map_err(|_| Error::OldSizeLarger { old: old_size, new: new_size })?;
        self.fetch(&plan)
    }

    /// A c2sp.org/tlog-proof@v1 file for `index` against the latest
    /// checkpoint, carrying the leaf bytes as its extra data.
    pub fn proof_bundle(&self, index: u64) -> Result<String, Error> {
        Ok(self.tlog_proof(index)?.to_text())
    }

    /// The tlog-proof of [`Log::proof_bundle`], parsed.
    pub fn tlog_proof(&self, index: u64) -> Result<TlogProof, Error> {
        let head = self.head();
        let leaf = self.entry(index)?;
        let hashes = self.inclusion_proof(index, head.size)?;
        Ok(TlogProof { extra: Some(leaf), index, hashes, checkpoint: head.checkpoint.to_string() })
    }

    /// The body of a tile (c2sp.org/tlog-tiles).
    pub fn tile(&self, path: &TilePath) -> Result<Vec<u8>, Error> {
        if !path.available_in(self.head().size) {
            return Err(Error::TileNotAvailable(path.to_path()));
        }
        match path.kind {
            TileKind::Hashes { .. } => Ok(tiles::encode_hash_tile(&fetch_nodes(&*self.shared.store, &path.node_ids())?)),
            TileKind::Entries => {
                let start = path.index * tiles::TILE_WIDTH;
                let entries = self.shared.store.get_entries(start, start + path.width())?;
                if entries.len() as u64 != path.width() {
                    return Err(missing_entry(start + entries.len() as u64));
                }
                tiles::encode_entry_bundle(entries.iter().map(Vec::as_slice))
                    .ok_or_else(|| Error::Storage(StorageError::Corrupt("stored entry longer than 65535 bytes".into())))
            }
        }
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn missing_entry(index: u64) -> Error {
    Error::Storage(StorageError::Corrupt(format!("entry {index} is missing below the tree size")))
}

fn fetch_nodes(store: &dyn LogStore, ids: &[NodeId]) -> Result<Vec<Hash>, Error> {
    store
        .get_nodes(ids)?
        .into_iter()
        .zip(ids)
        .map(|(h, id)| h.ok_or_else(|| Error::Storage(StorageError::Corrupt(format!("node {}/{} is missing", id.level, id.index)))))
        .collect()
}

/// Rebuilds the frontier from stored nodes and checks it against the stored
/// checkpoint: a store whose tree does not match what was signed is refused.
fn recover(store: &dyn LogStore, key: &VerifierKey, origin: &str, stored: StoredHead) -> Result<(CompactRange, Head), Error> {
    let parsed =
        SignedNote::parse(&stored.checkpoint).map_err(|e| Error::Storage(StorageError::Corrupt(format!("stored checkpoint: {e}"))))?;
    let checkpoint =
        Checkpoint::from_text(&parsed.text).map_err(|e| Error::Storage(StorageError::Corrupt(format!("stored checkpoint: {e}"))))?;
    if checkpoint.origin != origin {
        return Err(Error::Config(format!("the data directory holds log {:?}, not {origin:?}", checkpoint.origin)));
    }
    NoteVerifier::new(key.clone())
        .verify(&parsed)
        .map_err(|e| Error::Config(format!("the stored checkpoint is not signed by the configured log key: {e}")))?;
    if checkpoint.size != stored.size {
        return Err(Error::Storage(StorageError::Corrupt("stored head size differs from its checkpoint".into())));
    }
    let ids = tree::frontier(stored.size);
    let hashes = fetch_nodes(store, &ids)?;
    let frontier = CompactRange::from_frontier(stored.size, &hashes)
        .ok_or_else(|| Error::Storage(StorageError::Corrupt("frontier does not match the tree size".into())))?;
    let root = frontier.root();
    let expected = if stored.size == 0 { EMPTY_ROOT } else { checkpoint.root };
    if !hashes_equal(&root, &expected) {
        return Err(Error::Storage(StorageError::Corrupt("stored tree does not match the signed checkpoint".into())));
    }
    let head = Head { size: stored.size, root, checkpoint: stored.checkpoint.into(), integrated_time: stored.integrated_time };
    Ok((frontier, head))
}

/// Sealed openings [`Log::open_dir`] tries the master key on.
const OPENINGS_KEY_PROBES: usize = 8;

/// Refuses a master key that opens none of `sealed` (the first sealed
/// openings of the store): it is not the key they were sealed with. One
/// that opens any of them is taken, so a single damaged record does not
/// keep the log from starting.
fn check_openings_key(store: &dyn LogStore, key: &OpeningsKey, sealed: &[(u64, OpeningsRecord)]) -> Result<(), Error> {
    let mut last = None;
    for (index, record) in sealed {
        let OpeningsRecord::Sealed { sealed, wrapped_key } = record else { continue };
        let leaf = store.get_entries(*index, index.saturating_add(1))?.pop().ok_or_else(|| missing_entry(*index))?;
        match key.open(*index, &verifier::hash::leaf_hash(&leaf), sealed, wrapped_key.as_deref()) {
            Ok(_) => return Ok(()),
            Err(e) => {
                tracing::warn!(index, error = %e, "sealed openings do not open with the configured openings key");
                last = Some(e);
            }
        }
    }
    match last {
        None => Ok(()),
        Some(e) => Err(Error::Config(format!(
            "the configured openings key opens none of the first {} sealed openings ({e}): it is not the key they were sealed \
             with; restore the right key",
            sealed.len()
        ))),
    }
}
