//! The log: one handle on a store, its append pipeline, its views and its
//! reads.
//!
//! [`Log`] is the crate's front door; its methods are grouped below by what
//! they do: opening, the append path (implemented in [`crate::append`]),
//! agents (the registry view and the signed-request and nonce state), and
//! reads (entries, proofs, checkpoints, tiles), served straight from the
//! store against the published head. Disclosure and shredding of hidden
//! fields are in [`crate::disclosure`], attestations in [`crate::attest`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use verifier::agent_id::AgentId;
use verifier::entry::Passport;
use verifier::fold::registry;
use verifier::fold::trust::ReinstateRefusal;
use verifier::hash::{hashes_equal, Hash, EMPTY_ROOT};
use verifier::hidden::HiddenValue;
use verifier::note::{NoteSigner, NoteVerifier, SignedNote, VerifierKey};
use verifier::tiles::{self, TileKind, TilePath};
use verifier::tlog_proof::TlogProof;
use verifier::tree::{self, CompactRange, ProofPlan};
use verifier::Checkpoint;

use crate::append::prover::Prover;
use crate::append::sequencer::{Appended, CommitObserver, Context, Head, PublishedHead};
use crate::append::Pipeline;
use crate::entry::{NewEntry, Submission};
use crate::hidden::CommittedHidden;
use crate::nonces::NonceStore;
use crate::requests::{ReplayCache, RequestError};
use crate::sealing::OpeningsKey;
use crate::store::{fetch_nodes, CommitBatch, LogStore, OpeningsRecord, RocksStore, StorageError, StoredHead};
use crate::views::grants::Grants;
use crate::views::registry::{AgentState, Registry};
use crate::views::sources::{SourceState, Sources};
use crate::views::trust::TrustView;
use crate::views::View;
use crate::{Error, LogConfig};

/// Most entries one range read returns.
pub const MAX_RANGE: u64 = 1000;

/// Most leaf bytes one range read returns (it always returns at least one
/// entry): without it, 1000 leaves of 64 KiB make one unauthenticated
/// request hold ~64 MiB of leaves and several times that once encoded.
pub const MAX_RANGE_BYTES: usize = 1 << 20;

/// Entries read from the store at a time by a range read, so that what is
/// read past the byte budget stays under 16 x 64 KiB = 1 MiB.
const RANGE_CHUNK: u64 = 16;

/// An append-only, verifiable log.
pub struct Log {
    config: Arc<LogConfig>,
    store: Arc<dyn LogStore>,
    verifier_key: VerifierKey,
    head: Arc<PublishedHead>,
    registry: Arc<Registry>,
    trust: Arc<TrustView>,
    sources: Arc<Sources>,
    grants: Arc<Grants>,
    /// Attestation nonces.
    pub(crate) nonces: NonceStore,
    /// Agent-signed requests already accepted (each is accepted once; see
    /// [`Log::authenticate_request`]).
    pub(crate) requests: ReplayCache,
    pipeline: Pipeline,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log").field("origin", &self.config.origin).field("head", &self.head()).finish()
    }
}

/// Opening.
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

    /// Opens a log on `store`, recovering its head, checking that the
    /// stored tree matches the stored, signed checkpoint, and bringing
    /// every view up to the head ([`crate::views`]).
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
        let registry = Arc::new(Registry::default());
        let trust = Arc::new(TrustView::default());
        let sources = Arc::new(Sources::default());
        let grants = Arc::new(Grants::default());
        let mut views: Vec<Arc<dyn View>> =
            vec![registry.clone(), Arc::new(crate::views::events::EventIndex), sources.clone(), trust.clone(), grants.clone()];
        views.extend(config.views.iter().cloned());
        for (i, view) in views.iter().enumerate() {
            if views[..i].iter().any(|v| v.name() == view.name()) {
                return Err(Error::Config(format!("two views are named {:?}", view.name())));
            }
            crate::views::recover(&*store, &**view, head.size)?;
        }
        let config = Arc::new(config);
        let nonces =
            NonceStore::with_clock(config.nonce_ttl, config.nonce_capacity, crate::nonces::NONCES_PER_AGENT, Arc::clone(&config.clock));
        let requests = ReplayCache::with_clock(
            crate::requests::REQUEST_WINDOW,
            crate::requests::REQUESTS_PER_AGENT,
            crate::requests::REPLAY_CAPACITY,
            Arc::clone(&config.clock),
        );
        let verifier_key = signer.verifier_key();
        let last_time = head.integrated_time;
        let head = Arc::new(PublishedHead::new(head));
        let context = Context {
            config: Arc::clone(&config),
            store: Arc::clone(&store),
            signer,
            registry: Arc::clone(&registry),
            sources: Arc::clone(&sources),
            views,
            observer,
            head: Arc::clone(&head),
        };
        let pipeline = Pipeline::start(context, frontier, last_time)?;
        Ok(Self { config, store, verifier_key, head, registry, sources, trust, grants, nonces, requests, pipeline })
    }

    /// The log's configuration.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// The verifier key auditors use.
    pub fn verifier_key(&self) -> VerifierKey {
        self.verifier_key.clone()
    }

    /// The latest published head.
    pub fn head(&self) -> Head {
        self.head.get()
    }

    /// The log's clock, in ms since the Unix epoch
    /// ([`LogConfig::clock`]).
    pub fn now_ms(&self) -> u64 {
        self.config.clock.now_ms()
    }

    /// Stops taking appends, lets the sequencer commit everything queued,
    /// and waits for it. Idempotent.
    pub fn shutdown(&self) {
        self.pipeline.shutdown();
    }

    pub(crate) fn store(&self) -> &dyn LogStore {
        &*self.store
    }

    pub(crate) fn prover(&self) -> &Prover {
        self.pipeline.prover()
    }
}

/// The append path (module `append`).
impl Log {
    /// Appends submissions atomically at contiguous indices. Authentication
    /// comes first: every agent signature is checked against the key in
    /// force (in parallel), with the agents' state and sequence numbers,
    /// before any proof is checked; then the openings and predicate proofs
    /// of committed hidden fields are checked on the prover pool.
    pub async fn submit(&self, submissions: Vec<Submission>) -> Result<Vec<Appended>, Error> {
        for auth in submissions.iter().filter_map(Submission::auth) {
            self.above_threshold(&auth.agent, auth.kind)?;
        }
        self.pipeline.submit(submissions).await
    }

    /// Refuses an agent entry other than an attestation from an agent whose
    /// score is now below the revocation threshold but whose revocation
    /// the trigger has not logged yet ([`Error::BelowThreshold`]), so an
    /// agent is isolated from the instant it crosses, not from when its
    /// revocation commits. A refusal changes nothing and the revocation
    /// follows; the registry fold refuses its entries once it has.
    fn above_threshold(&self, agent: &AgentId, kind: verifier::entry::EntryKind) -> Result<(), Error> {
        if kind == verifier::entry::EntryKind::Attestation {
            return Ok(());
        }
        match self.trust().below_threshold(agent, self.now_ms()) {
            // A retired agent gets the registry's answer (the registry is
            // read only for the few agents below the threshold).
            Some((score, threshold)) if self.registry.get(agent).is_some_and(|s| s.retired.is_none()) => {
                Err(Error::BelowThreshold { agent: agent.clone(), score, threshold })
            }
            _ => Ok(()),
        }
    }

    /// Appends entries atomically at contiguous indices. Returns once they
    /// are durable; fails fast with [`Error::Pushback`] when the queue is full.
    pub async fn append(&self, entries: Vec<NewEntry>) -> Result<Vec<Appended>, Error> {
        for auth in entries.iter().filter_map(NewEntry::auth) {
            self.above_threshold(&auth.agent, auth.kind)?;
        }
        self.pipeline.append(entries).await
    }

    /// Commits hidden values for `agent`'s entry `seq` and proves their
    /// predicates on the prover pool (`POST /v1/hidden/commit`; the caller
    /// has authenticated the agent). The log keeps nothing: the agent signs
    /// the committed entry and sends it back with the openings.
    pub async fn commit_hidden(&self, agent: &AgentId, seq: u64, hidden: BTreeMap<String, HiddenValue>) -> Result<CommittedHidden, Error> {
        self.above_threshold(agent, verifier::entry::EntryKind::Action)?;
        self.pipeline.commit_hidden(agent, seq, hidden).await
    }

    /// Registers an agent (admin): appends its passport entry. The agent
    /// must be in the configured trust domain.
    pub async fn register(&self, passport: Passport) -> Result<Appended, Error> {
        self.pipeline.register(passport).await
    }

    /// Retires an agent (admin): appends a retirement entry; its later
    /// entries are refused.
    pub async fn retire(&self, agent: &AgentId, reason: &str) -> Result<Appended, Error> {
        self.pipeline.retire(agent, reason).await
    }

    /// Revokes an agent: appends its revocation entry (the registry fold
    /// refuses an agent already revoked, unknown or retired). From then on
    /// only its attestations are taken.
    ///
    /// The agent's live action tokens are revoked with it: their ids are
    /// put in the entry's `tokens`, read under the agent's issuance lock
    /// ([`Grants::lock`]), so no token is issued between the reading and
    /// the entry.
    pub async fn revoke(&self, revocation: &verifier::entry::Revocation) -> Result<Appended, Error> {
        let _issuance = self.grants.lock(&revocation.agent).await;
        let mut revocation = revocation.clone();
        // Bounded even if the clock stepped back (tokens beyond are refused
        // by the agent's revocation time).
        let now = self.now_ms().max(self.head().integrated_time);
        revocation.tokens = self.grants.live_tokens(&revocation.agent, now);
        revocation.tokens.truncate(verifier::token::MAX_LIVE_TOKENS);
        self.pipeline.revoke(&revocation).await
    }

    /// Reinstates a revoked agent on its last successful attestation,
    /// which must come after its revocation
    /// ([`verifier::fold::trust::AgentTrust::reinstatement_basis`], read
    /// from the trust view; [`Error::NotRevoked`],
    /// [`Error::AttestationRequired`]): appends its reinstatement entry.
    /// The registry fold checks again, when the entry is sequenced, that
    /// the agent is still revoked and the attestation after its revocation.
    pub async fn reinstate(&self, agent: &AgentId, note: Option<String>) -> Result<Appended, Error> {
        registry::active(agent, self.agent(agent).as_ref())?;
        let record = self.trust.get(agent).ok_or_else(|| Error::UnknownAgent(agent.clone()))?;
        let attestation_index = record.trust.reinstatement_basis().map_err(|refusal| match refusal {
            ReinstateRefusal::NotRevoked => Error::NotRevoked(agent.clone()),
            ReinstateRefusal::AttestationRequired { revoked_at } => Error::AttestationRequired { agent: agent.clone(), revoked_at },
        })?;
        self.pipeline.reinstate(&verifier::entry::Reinstatement { agent: agent.clone(), attestation_index, note }).await
    }

    /// Makes `policy` the trust policy in force: appends a `policy` entry
    /// unless it is already in force (same canonical JSON). Returns the
    /// entry appended, if any.
    pub async fn set_policy(&self, policy: &verifier::fold::policy::Policy) -> Result<Option<Appended>, Error> {
        // The built-in default is in force before any policy entry, so
        // putting it in force then needs no entry either.
        if self.trust.policy().policy.to_canonical() == policy.to_canonical() {
            return Ok(None);
        }
        let serde_json::Value::Object(obj) = policy.to_json() else {
            return Err(Error::Config("a policy is a JSON object".into()));
        };
        let entry = NewEntry::from_log(&verifier::entry::PolicyEntry::new(obj).to_object(), None, None)?;
        Ok(self.append(vec![entry]).await?.pop())
    }

    /// The last `limit` points (at most
    /// [`crate::views::trust::HISTORY_RING`]) of an agent's score history,
    /// oldest first: its score after each entry that moved it or changed
    /// its key or lifecycle. Reads the store (blocking).
    pub fn score_history(&self, agent: &AgentId, limit: usize) -> Result<Vec<crate::views::trust::ScorePoint>, Error> {
        crate::views::trust::history(self.store(), agent, limit)
    }

    /// The trust view: every agent's trust state and the policy in force.
    pub fn trust(&self) -> &TrustView {
        &self.trust
    }

    /// The grants view: live and revoked action tokens, escalations.
    pub fn grants(&self) -> &Grants {
        &self.grants
    }

    /// Registers a signal source (admin), or replaces the key and types of
    /// one already registered: appends its `source` entry. A replacement
    /// keeps the source's last sequence number, so nothing it signed
    /// before is taken after ([`verifier::fold::sources`]). Its signals are
    /// submitted as [`Submission::signal_from_json`].
    pub async fn register_source(&self, source: verifier::entry::Source) -> Result<Appended, Error> {
        self.pipeline.register_source(source).await
    }

    /// Bytes currently waiting for the sequencer.
    pub fn queued_bytes(&self) -> usize {
        self.pipeline.queued_bytes()
    }

    /// Prover threads.
    pub fn prover_threads(&self) -> usize {
        self.prover().threads()
    }

    /// The range provers of the prover stage.
    pub fn prover_backends(&self) -> &crate::ProverBackends {
        self.prover().backends()
    }

    /// Entries waiting for or in the prover.
    pub fn prover_queue_depth(&self) -> usize {
        self.prover().depth()
    }
}

/// Agents.
impl Log {
    /// The registry record of `agent` (as of the latest commit).
    pub fn agent(&self, agent: &AgentId) -> Option<AgentState> {
        self.registry.get(agent)
    }

    /// Authenticates a request signed by `agent` (as its header spells it)
    /// over `method`, `path`, `timestamp_ms` and `body`, with `signature`
    /// as sent (base64), and accepts it once; returns the parsed agent id.
    /// The checks and their order are [`crate::requests`]'s: the window
    /// against the log's clock, the signature's form, the agent (known and
    /// active, decided by the registry fold), the signature, then the
    /// replay cache.
    pub fn authenticate_request(
        &self,
        agent: &str,
        method: &str,
        path: &str,
        timestamp_ms: u64,
        signature: &str,
        body: &[u8],
    ) -> Result<AgentId, RequestError> {
        self.requests.authenticate(&self.config.origin, |id| self.agent(id), agent, method, path, timestamp_ms, signature, body)
    }

    /// Registered agents.
    pub fn agent_count(&self) -> usize {
        self.registry.len()
    }

    /// The record of the signal source `name` (as of the latest commit).
    pub fn source(&self, name: &str) -> Option<SourceState> {
        self.sources.get(name)
    }

    /// Every registered signal source, by name (as of the latest commit).
    pub fn sources(&self) -> Vec<(String, SourceState)> {
        self.sources.all()
    }
}

/// Reads.
impl Log {
    /// Up to `limit` events (revocations, reinstatements, risk-level
    /// changes, signals: [`crate::views::events`]) after index `after`
    /// (from the first when `None`), in index order, as of the latest
    /// commit.
    pub fn events(&self, after: Option<u64>, limit: usize) -> Result<Vec<crate::views::events::EventRef>, Error> {
        Ok(crate::views::events::scan(&*self.store, after, limit)?)
    }

    /// A receiver told of every new head (its tree size): subscribers wait
    /// on it, then read what is new from the log.
    pub fn watch_head(&self) -> tokio::sync::watch::Receiver<u64> {
        self.head.watch()
    }

    /// Leaf bytes of entry `index`.
    pub fn entry(&self, index: u64) -> Result<Vec<u8>, Error> {
        let size = self.head().size;
        if index >= size {
            return Err(Error::IndexBeyondTree { index, size });
        }
        self.store.get_entries(index, index + 1)?.pop().ok_or_else(|| missing_entry(index))
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
            let chunk = self.store.get_entries(from, to)?;
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
        let hashes = fetch_nodes(&*self.store, plan.nodes())?;
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

    /// Writes a zstd-compressed audit archive of `range` under the signed
    /// checkpoint `note` (the latest, or an older one such as the latest
    /// witnessed) to `out`, reading the store as it goes (see
    /// [`crate::export_archive`]).
    pub fn export(
        &self,
        note: &str,
        range: crate::ExportRange,
        out: impl std::io::Write,
    ) -> Result<verifier::archive::ArchiveHeader, Error> {
        crate::export_archive(&*self.store, note, range, out)
    }

    /// The body of a tile (c2sp.org/tlog-tiles).
    pub fn tile(&self, path: &TilePath) -> Result<Vec<u8>, Error> {
        if !path.available_in(self.head().size) {
            return Err(Error::TileNotAvailable(path.to_path()));
        }
        match path.kind {
            TileKind::Hashes { .. } => Ok(tiles::encode_hash_tile(&fetch_nodes(&*self.store, &path.node_ids())?)),
            TileKind::Entries => {
                let start = path.index * tiles::TILE_WIDTH;
                let entries = self.store.get_entries(start, start + path.width())?;
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
