//! `ledger-verify audit`: the full offline audit of an archive
//! (`GET /v1/export`, `ledger-server export`) or of a running log's tiles.
//!
//! Everything the log claims is checked, with no network for an archive:
//!
//! * the checkpoint's signature, the witnesses' cosignatures (k of n, when
//!   asked) and consistency with the auditor's previous checkpoint
//!   (`--since`): a log that shrank or forked is caught here;
//! * the tree: every leaf hashed into the root (leaves plus the frontier
//!   rebuild the tree of the range's end; one consistency proof ties it to
//!   the signed root);
//! * the registry replayed with the fold the server uses
//!   ([`crate::folds`]): passports, rotations, retirements, every agent
//!   signature against the key in force at its index, sequence numbers,
//!   nothing accepted from a retired or revoked agent; every attestation's
//!   verdict recomputed from its evidence (software and TPM);
//! * every hidden-field commitment and predicate proof;
//! * every trust score, drift signal, revocation, reinstatement, risk
//!   change, token and escalation recomputed with the policy in force.
//!
//! The stateless checks (decoding, hashing, predicate proofs, agent
//! signatures) run on every core (rayon), a chunk of leaves at a time
//! ([`prepare`]), while one thread folds the chunk before in order
//! ([`run`]). Signatures are checked one by one with `verify_strict`, the
//! rule the log admits them with (a batch verification equation admits
//! signatures the strict check refuses), with the key a planner expects
//! from the passports and rotations seen so far ([`prepare::Planner`]).
//!
//! A violation does not stop the audit: every one is counted by check
//! ([`Check`]), the first [`MAX_LISTED`] are listed with their entry index
//! and evidence. Exit status 0 only when nothing is found; 2 for an
//! archive that is not the whole tree without `--partial`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Value};
use verifier::archive::{ArchiveError, ArchiveHead, ArchiveHeader, ArchiveReader, FORMAT};
use verifier::hash::{hashes_equal, Hash};
use verifier::proof::verify_consistency;
use verifier::tree::{frontier, CompactRange};
use verifier::{Checkpoint, NoteVerifier};

mod prepare;

use prepare::{Planner, Prepared};

use crate::folds::{Check, Finding, Folds};
use crate::{agent, escape, fetch_checkpoint, fetch_leaves, load_key, Failure, Outcome};

/// Leaves checked at a time: big enough to keep every core busy, small
/// enough that memory does not grow with the log.
pub(crate) const CHUNK: usize = 4096;

/// Leaf bytes checked at a time at most: a decoded leaf takes a few
/// times its bytes, so memory stays bounded by bytes as well as by count.
pub(crate) const CHUNK_BYTES: usize = 8 << 20;

/// Largest zstd window an archive may ask for (2^24 bytes); exports are
/// written with a far smaller one.
const MAX_WINDOW_LOG: u32 = 24;

/// Violations listed in the report (all are counted).
pub(crate) const MAX_LISTED: usize = 100;

/// What the auditor brings besides the archive.
#[derive(Debug, Default)]
pub(crate) struct AuditOptions {
    /// The checkpoint the auditor verified last (a file).
    pub(crate) since: Option<std::path::PathBuf>,
    /// Witness verifier keys (or files holding them).
    pub(crate) witnesses: Vec<String>,
    /// Cosignatures required among `witnesses` (0: none asked for).
    pub(crate) quorum: usize,
    /// Accept an archive that is not the whole tree.
    pub(crate) partial: bool,
    /// Show a progress bar on standard error (when it is a terminal).
    pub(crate) progress: bool,
}

/// A violation with where it was found.
struct Violation {
    index: Option<u64>,
    finding: Finding,
    /// What proves it: the leaf's bytes, or the checkpoints, roots and
    /// proofs compared.
    evidence: Value,
}

/// The audit in progress.
struct Auditor<'v> {
    verifier: &'v NoteVerifier,
    head: ArchiveHead,
    checkpoint: Checkpoint,
    tree: CompactRange,
    next: u64,
    /// `None` when the archive does not start at entry 0: the folds need
    /// the log from its first entry.
    folds: Option<Folds>,
    since: Option<(String, Checkpoint)>,
    since_root: Option<Hash>,
    violations: Vec<Violation>,
    by_check: BTreeMap<&'static str, u64>,
    kinds: BTreeMap<String, u64>,
    signatures: u64,
    hidden_entries: u64,
    predicate_proofs: u64,
    witnessed: Vec<String>,
    progress: Option<indicatif::ProgressBar>,
    started: Instant,
}

/// Audits the archive at `path`.
pub(crate) fn audit_archive(key: &str, path: &Path, options: &AuditOptions) -> anyhow::Result<Outcome> {
    let verifier = load_key(key)?;
    let since = read_since(&verifier, options)?;
    let witnesses = crate::witness_keys(&options.witnesses)?;
    let file = std::fs::File::open(path).map_err(|e| anyhow::anyhow!("opening {}: {e}", path.display()))?;
    let started = Instant::now();
    let archive_failure = |e: ArchiveError| {
        Ok(Outcome::Failed(Failure {
            message: format!("[archive] {e}"),
            evidence: json!({ "violations": [{ "check": "archive", "message": e.to_string() }] }),
        }))
    };
    let decoder = match zstd::stream::read::Decoder::new(file).and_then(|mut d| d.window_log_max(MAX_WINDOW_LOG).map(|()| d)) {
        Ok(d) => d,
        Err(e) => return archive_failure(ArchiveError::Io(e)),
    };
    let (mut reader, head) = match ArchiveReader::open(decoder) {
        Ok(opened) => opened,
        Err(e) => return archive_failure(e),
    };
    let auditor = match Auditor::start(&verifier, head, since, &witnesses, options, started) {
        Ok(a) => a,
        Err(failed) => return Ok(failed),
    };
    // A chunk cut short by a broken archive is audited before the error.
    let mut broken = None;
    let chunks = std::iter::from_fn(move || {
        if let Some(e) = broken.take() {
            return Some(Err(e));
        }
        let (mut chunk, mut bytes) = (Vec::with_capacity(CHUNK), 0usize);
        while chunk.len() < CHUNK && bytes < CHUNK_BYTES {
            match reader.next_leaf() {
                Ok(Some(leaf)) => {
                    bytes += leaf.len();
                    chunk.push(leaf);
                }
                Ok(None) => break,
                Err(e) if chunk.is_empty() => return Some(Err(e)),
                Err(e) => {
                    broken = Some(e);
                    break;
                }
            }
        }
        (!chunk.is_empty()).then_some(Ok(chunk))
    });
    Ok(run(auditor, chunks))
}

/// Audits a running log: its latest checkpoint and every entry (tlog-tiles
/// entry bundles), with the same checks as an archive of the whole log.
pub(crate) fn audit_url(url: &str, key: &str, options: &AuditOptions) -> anyhow::Result<Outcome> {
    let verifier = load_key(key)?;
    let since = read_since(&verifier, options)?;
    let witnesses = crate::witness_keys(&options.witnesses)?;
    let base = url.trim_end_matches('/');
    let http = agent();
    let started = Instant::now();
    let (note, cp) = match fetch_checkpoint(&http, base, &verifier)? {
        Ok(found) => found,
        Err(failed) => return Ok(failed),
    };
    let leaves = match fetch_leaves(&http, base, &note, &cp)? {
        Ok(leaves) => leaves,
        Err(failed) => return Ok(failed),
    };
    let header = ArchiveHeader {
        format: FORMAT.to_owned(),
        origin: cp.origin.clone(),
        start: 0,
        end: cp.size,
        tree_size: cp.size,
        since_size: None,
    };
    let head = ArchiveHead { header, checkpoint: note, frontier: Vec::new(), range_proof: Vec::new(), since_proof: None };
    let auditor = match Auditor::start(&verifier, head, since, &witnesses, options, started) {
        Ok(a) => a,
        Err(failed) => return Ok(failed),
    };
    let mut leaves = leaves.into_iter();
    let chunks = std::iter::from_fn(move || {
        let (mut chunk, mut bytes) = (Vec::with_capacity(CHUNK), 0usize);
        while chunk.len() < CHUNK && bytes < CHUNK_BYTES {
            let Some(leaf) = leaves.next() else { break };
            bytes += leaf.len();
            chunk.push(leaf);
        }
        (!chunk.is_empty()).then_some(Ok(chunk))
    });
    Ok(run(auditor, chunks))
}

/// The auditor's previous checkpoint, verified with the log's key.
fn read_since(verifier: &NoteVerifier, options: &AuditOptions) -> anyhow::Result<Option<(String, Checkpoint)>> {
    let Some(path) = &options.since else { return Ok(None) };
    let note = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    let cp = Checkpoint::open(&note, verifier).map_err(|e| anyhow::anyhow!("--since {}: {e}", path.display()))?;
    Ok(Some((note, cp)))
}

impl<'v> Auditor<'v> {
    /// Checks what comes before the leaves: the checkpoint, the
    /// witnesses, the header against the checkpoint. `Err` is an audit
    /// that cannot go on (nothing else can be trusted).
    fn start(
        verifier: &'v NoteVerifier,
        head: ArchiveHead,
        since: Option<(String, Checkpoint)>,
        witnesses: &[verifier::cosignature::WitnessKey],
        options: &AuditOptions,
        started: Instant,
    ) -> Result<Self, Outcome> {
        let stop = |check: Check, message: String, evidence: Value| {
            Outcome::Failed(Failure {
                message: format!("[{}] {message}", check.as_str()),
                evidence: json!({ "violations": [{ "check": check.as_str(), "message": message }], "evidence": evidence }),
            })
        };
        let checkpoint = Checkpoint::open(&head.checkpoint, verifier)
            .map_err(|e| stop(Check::Checkpoint, format!("the archive's checkpoint: {e}"), json!({ "checkpoint": head.checkpoint })))?;
        let h = &head.header;
        if h.origin != checkpoint.origin || h.tree_size != checkpoint.size {
            return Err(stop(
                Check::Archive,
                format!(
                    "the header describes {:?} at size {}, the checkpoint {:?} at {}",
                    h.origin, h.tree_size, checkpoint.origin, checkpoint.size
                ),
                json!({ "checkpoint": head.checkpoint }),
            ));
        }
        let mut witnessed = Vec::new();
        if !h.whole_tree() && !options.partial {
            return Err(Outcome::Unchecked(format!(
                "the archive holds entries [{}, {}) of a tree of {}: the registry and trust folds need every entry from the first, \
                 so signatures and scores cannot be checked; export the whole log, or pass --partial to check only the tree and \
                 each entry's hidden fields",
                h.start, h.end, h.tree_size
            )));
        }
        if options.quorum > 0 {
            match verifier::cosignature::require_quorum(&head.checkpoint, witnesses, options.quorum) {
                Ok(names) => witnessed = names,
                Err(e) => return Err(stop(Check::Witnesses, e.to_string(), json!({ "checkpoint": head.checkpoint }))),
            }
        }
        let Some(tree) = CompactRange::from_frontier(h.start, &head.frontier) else {
            return Err(stop(
                Check::Tree,
                format!(
                    "the archive's frontier holds {} hashes, a tree of {} entries has {}",
                    head.frontier.len(),
                    h.start,
                    frontier(h.start).len()
                ),
                Value::Null,
            ));
        };
        let folds = (h.start == 0).then(|| Folds::new(verifier.key().name()));
        let progress = options.progress.then(|| {
            let bar = indicatif::ProgressBar::new(h.end - h.start);
            let style = indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} entries ({per_sec}, {eta} left)")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            bar.set_style(style.progress_chars("=> "));
            bar
        });
        let mut auditor = Self {
            verifier,
            next: h.start,
            head,
            checkpoint,
            tree,
            folds,
            since,
            since_root: None,
            violations: Vec::new(),
            by_check: BTreeMap::new(),
            kinds: BTreeMap::new(),
            signatures: 0,
            hidden_entries: 0,
            predicate_proofs: 0,
            witnessed,
            progress,
            started,
        };
        auditor.note_since_root();
        Ok(auditor)
    }

    fn origin(&self) -> &str {
        self.verifier.key().name()
    }

    fn violation(&mut self, index: Option<u64>, finding: Finding, evidence: Value) {
        *self.by_check.entry(finding.check.as_str()).or_default() += 1;
        if self.violations.len() < MAX_LISTED {
            self.violations.push(Violation { index, finding, evidence });
        }
    }

    /// Keeps the root at the size of the auditor's previous checkpoint
    /// when the tree passes it.
    fn note_since_root(&mut self) {
        if self.since.as_ref().is_some_and(|(_, old)| old.size == self.tree.size()) {
            self.since_root = Some(self.tree.root());
        }
    }

    /// Folds the next leaves, prepared by [`Prepared::of`], in order.
    fn apply(&mut self, prepared: Prepared) {
        let Prepared { decoded, checked } = prepared;
        for (d, checked) in decoded.into_iter().zip(checked) {
            let index = self.next;
            let leaf_evidence = || json!({ "leaf": B64.encode(&d.bytes) });
            self.next += 1;
            self.tree.push(d.hash);
            self.note_since_root();
            self.signatures += u64::from(checked.is_some());
            let leaf = match d.leaf {
                Ok(leaf) => leaf,
                Err(e) => {
                    self.violation(Some(index), Finding::new(Check::Leaf, format!("not a valid leaf: {e}")), leaf_evidence());
                    if let Some(folds) = &mut self.folds {
                        folds.skip(index);
                    }
                    continue;
                }
            };
            *self.kinds.entry(leaf.kind.to_string()).or_default() += 1;
            match d.hidden {
                Some(Ok(proofs)) => {
                    self.hidden_entries += 1;
                    self.predicate_proofs += proofs as u64;
                }
                Some(Err(e)) => self.violation(Some(index), Finding::new(Check::Hidden, e), leaf_evidence()),
                None => {}
            }
            if let Some(folds) = &mut self.folds {
                if let Err(finding) = folds.apply(index, &leaf, checked) {
                    self.violation(Some(index), finding, leaf_evidence());
                }
            }
        }
        if let Some(bar) = &self.progress {
            bar.set_position(self.next - self.head.header.start);
        }
    }

    /// Checks what needs every leaf: the root, the consistency proofs,
    /// what the log owes at its end; then reports.
    fn finish(mut self) -> Outcome {
        let h = self.head.header.clone();
        let root = self.tree.root();
        let n = self.checkpoint.size;
        let hashes = |proof: &[Hash]| proof.iter().map(|p| B64.encode(p)).collect::<Vec<_>>();
        let evidence = json!({
            "checkpoint": self.head.checkpoint,
            "computed_root": B64.encode(root),
            "start": h.start,
            "end": h.end,
            "frontier": hashes(&self.head.frontier),
            "range_proof": hashes(&self.head.range_proof),
        });
        if h.end == n {
            if !hashes_equal(&root, &self.checkpoint.root) {
                let message = format!("the entries do not hash to the checkpoint's root (computed {})", B64.encode(root));
                self.violation(None, Finding::new(Check::Tree, message), evidence.clone());
            }
        } else if h.end > 0 {
            if let Err(e) = verify_consistency(h.end, n, &self.head.range_proof, &root, &self.checkpoint.root) {
                let message = format!("the entries up to {} are not a prefix of the checkpoint's tree: {e}", h.end);
                self.violation(None, Finding::new(Check::Tree, message), evidence.clone());
            }
        }
        if let Some((_, old)) = self.since.clone() {
            self.check_since(&old);
        }
        if let Some(owed) = self.folds.as_ref().and_then(Folds::owed_at_end) {
            self.violation(None, Finding::new(Check::Trust, owed), Value::Null);
        }
        self.report(true)
    }

    /// Consistency with the auditor's previous checkpoint: from the
    /// leaves when the archive holds its size, else from the archive's
    /// proof from it.
    fn check_since(&mut self, old: &Checkpoint) {
        let n = self.checkpoint.size;
        let finding = if old.size > n {
            Some(format!("rollback: the log shrank from {} entries (the previous checkpoint) to {n}", old.size))
        } else if old.size == n {
            (!hashes_equal(&old.root, &self.checkpoint.root)).then(|| format!("fork: two different trees of {n} entries"))
        } else if let Some(root) = self.since_root {
            (!hashes_equal(&old.root, &root)).then(|| {
                format!(
                    "fork: the first {} entries hash to {}, the previous checkpoint says {}",
                    old.size,
                    B64.encode(root),
                    B64.encode(old.root)
                )
            })
        } else if self.head.header.since_size == Some(old.size) {
            let proof = self.head.since_proof.clone().unwrap_or_default();
            verify_consistency(old.size, n, &proof, &old.root, &self.checkpoint.root)
                .err()
                .map(|e| format!("fork: the checkpoint is not consistent with the previous one (size {}): {e}", old.size))
        } else {
            Some(format!(
                "the archive neither holds entries 0..{0} nor a consistency proof from size {0}: export with since_size={0}",
                old.size
            ))
        };
        if let Some(message) = finding {
            let evidence = json!({
                "checkpoint": self.head.checkpoint,
                "previous": self.since.as_ref().map(|(note, _)| note),
                "since_proof": self.head.since_proof.as_ref().map(|p| p.iter().map(|h| B64.encode(h)).collect::<Vec<_>>()),
            });
            self.violation(None, Finding::new(Check::Consistency, message), evidence);
        }
    }

    /// The report; `complete` when every leaf was read.
    fn report(self, complete: bool) -> Outcome {
        if let Some(bar) = &self.progress {
            bar.finish_and_clear();
        }
        let h = &self.head.header;
        let entries = self.next - h.start;
        let seconds = self.started.elapsed().as_secs_f64();
        let rate = (entries as f64 / seconds.max(1e-9)).round();
        let total: u64 = self.by_check.values().sum();
        let listed: Vec<Value> = self
            .violations
            .iter()
            .map(|v| json!({ "index": v.index, "check": v.finding.check.as_str(), "message": v.finding.message, "evidence": v.evidence }))
            .collect();
        let folds = self.folds.as_ref().map(|f| json!({ "agents": f.agents(), "trust": f.counts() }));
        let value = json!({
            "origin": h.origin,
            "checkpoint": self.checkpoint.to_json(),
            "start": h.start,
            "end": h.end,
            "entries": entries,
            "complete": complete,
            "by_kind": self.kinds,
            "signatures_checked": self.signatures,
            "hidden_entries": self.hidden_entries,
            "predicate_proofs": self.predicate_proofs,
            "witnesses": self.witnessed,
            "since": self.since.as_ref().map(|(_, cp)| cp.to_json()),
            "folds": folds,
            "violation_count": total,
            "violations_by_check": self.by_check,
            "violations": listed,
            "seconds": seconds,
            "entries_per_second": rate,
        });
        let mut human = format!(
            "{} entries [{}, {}) of {} (tree size {}) audited in {seconds:.2} s ({rate} entries/s)",
            entries,
            h.start,
            h.end,
            escape::text(&h.origin),
            self.checkpoint.size
        );
        let kinds: Vec<String> = self.kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
        human.push_str(&format!("\n  entries by kind: {}", if kinds.is_empty() { "none".into() } else { kinds.join(", ") }));
        human.push_str(&format!(
            "\n  {} agent signatures, {} hidden-field entries ({} predicate proofs) checked",
            self.signatures, self.hidden_entries, self.predicate_proofs
        ));
        match &self.folds {
            Some(f) => {
                let c = f.counts();
                human.push_str(&format!(
                    "\n  registry and trust replayed: {} agents; {} revocations, {} risk changes, {} drift signals, {} tokens, {} escalation decisions checked",
                    f.agents(),
                    c.revocations,
                    c.risk_changes,
                    c.drift_signals,
                    c.tokens,
                    c.decisions
                ));
            }
            None => human.push_str(&format!(
                "\n  registry and trust not replayed: the archive starts at entry {}, the folds need the log from entry 0",
                h.start
            )),
        }
        if !self.witnessed.is_empty() {
            human.push_str(&format!("\n  cosigned by {}", self.witnessed.iter().map(|w| escape::text(w)).collect::<Vec<_>>().join(", ")));
        }
        if let Some((_, old)) = &self.since {
            human.push_str(&format!("\n  consistent with the previous checkpoint at size {}", old.size));
        }
        if total == 0 && complete {
            return Outcome::Verified(value, human);
        }
        let first = self.violations.first().map_or(String::new(), |v| {
            let at = v.index.map_or(String::new(), |i| format!("entry {i}: "));
            format!("; first: {at}[{}] {}", v.finding.check.as_str(), v.finding.message)
        });
        Outcome::Failed(Failure { message: format!("{total} violation(s){first}"), evidence: value })
    }
}

/// Audits `leaves` (chunks, or where the input broke) with `auditor`: one
/// thread folds chunk after chunk while the calling thread and the rayon
/// pool prepare the next ones ([`Prepared`]); at most [`IN_FLIGHT`]
/// prepared chunks wait.
fn run(mut auditor: Auditor<'_>, leaves: impl Iterator<Item = Result<Vec<Vec<u8>>, ArchiveError>>) -> Outcome {
    let origin = auditor.origin().to_owned();
    let mut planner = auditor.folds.is_some().then(Planner::default);
    let (auditor, broken) = std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Prepared>(IN_FLIGHT);
        let folder = scope.spawn(move || {
            for prepared in rx {
                auditor.apply(prepared);
            }
            auditor
        });
        let mut broken = None;
        for chunk in leaves {
            match chunk {
                Ok(chunk) => {
                    if tx.send(Prepared::of(chunk, &origin, planner.as_mut())).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    broken = Some(e);
                    break;
                }
            }
        }
        drop(tx);
        (folder.join(), broken)
    });
    let Ok(mut auditor) = auditor else {
        return Outcome::Failed(Failure { message: "the audit's fold thread panicked".into(), evidence: Value::Null });
    };
    match broken {
        Some(e) => {
            auditor.violation(None, Finding::new(Check::Archive, e.to_string()), Value::Null);
            auditor.report(false)
        }
        None => auditor.finish(),
    }
}

/// Prepared chunks that may wait for the fold.
const IN_FLIGHT: usize = 2;
