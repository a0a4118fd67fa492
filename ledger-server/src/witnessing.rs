//! Gathering witness cosignatures on the log's checkpoints, the client side
//! of c2sp.org/tlog-witness.
//!
//! A background task follows the log's head and submits the newest
//! checkpoint to every witness at once; under load the heads in between are
//! skipped, so one round covers many appends. It remembers the size each
//! witness last cosigned and sends the consistency proof from there; a
//! witness that answers 409 with another size (it cosigned before this
//! process started) is retried once from that size. Every cosignature is
//! verified with the witness's key before it is kept. Failures are logged
//! and retried with exponential backoff; appends never wait on witnesses.

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ledger_core::{Head, Log};
use tokio::sync::watch;
use verifier::cosignature::{verify_cosignatures, CosignatureError, WitnessKey};
use verifier::note::SIG_PREFIX;

/// Bound on connecting to a witness, and on each read and write.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Bound on one submission to one witness, retry included.
pub const SUBMIT_TIMEOUT: Duration = Duration::from_secs(30);

/// First retry delay after a failure; it doubles up to [`MAX_BACKOFF`].
pub const MIN_BACKOFF: Duration = Duration::from_millis(500);

/// Longest delay between retries of a failing witness.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Most bytes of a witness's answer that are read.
const MAX_RESPONSE_BYTES: u64 = 16 * 1024;

/// A witness to ask for cosignatures.
#[derive(Clone, Debug)]
pub struct WitnessConfig {
    /// The witness's submission prefix; `/add-checkpoint` is appended.
    pub url: String,
    /// The key its cosignatures must verify with.
    pub key: WitnessKey,
}

/// What one witness has done for this process, for status and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitnessStatus {
    /// The witness's submission prefix.
    pub url: String,
    /// The witness's name.
    pub name: String,
    /// Its verifier key (`name+hex8+base64(0x04 || key)`).
    pub key: String,
    /// The largest size it is known to have cosigned (0 until known).
    pub cosigned_size: u64,
    /// The last failure, cleared by the next success.
    pub last_error: Option<String>,
    /// Failures in a row.
    pub failures: u32,
}

/// Why a submission to a witness gave no cosignature.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The request did not complete (connection, timeout, I/O).
    #[error("request failed: {0}")]
    Transport(String),
    /// The witness answered with an unexpected status.
    #[error("witness answered HTTP {status}")]
    Status { status: u16 },
    /// A 409 without a `text/x.tlog.size` decimal body.
    #[error("malformed 409 answer")]
    MalformedConflict,
    /// The witness cosigned a larger tree than the log has: it saw
    /// another history under this origin.
    #[error("witness has cosigned size {witness}, beyond the log's {log}")]
    WitnessAhead { witness: u64, log: u64 },
    /// Still a conflict after retrying from the witness's size.
    #[error("witness still reports size {witness} after a retry")]
    ConflictAgain { witness: u64 },
    /// The consistency proof could not be read from the log.
    #[error("consistency proof {old} -> {new}: {error}")]
    Proof { old: u64, new: u64, error: String },
    /// The answer carried no cosignature from the witness's key.
    #[error("no cosignature from the witness's key in its answer")]
    NoCosignature,
    /// A cosignature from the witness's key did not verify.
    #[error("cosignature does not verify: {0}")]
    Cosignature(CosignatureError),
    /// The submission ran past [`SUBMIT_TIMEOUT`].
    #[error("no answer within {SUBMIT_TIMEOUT:?}")]
    Timeout,
}

#[derive(Debug)]
struct WitnessState {
    cosigned_size: u64,
    last_error: Option<String>,
    failures: u32,
    retry_at: Option<Instant>,
    /// A submission's thread is still running (past [`SUBMIT_TIMEOUT`],
    /// the round stopped waiting for it): no second one is started.
    in_flight: bool,
}

#[derive(Debug)]
struct Witness {
    config: WitnessConfig,
    state: Mutex<WitnessState>,
}

/// The checkpoint being cosigned and the lines each witness returned for it.
#[derive(Debug)]
struct Round {
    checkpoint: Arc<str>,
    size: u64,
    lines: Vec<Option<String>>,
}

impl Round {
    fn note(&self) -> String {
        let mut note = self.checkpoint.to_string();
        self.lines.iter().flatten().for_each(|l| note.push_str(l));
        note
    }

    fn cosigned(&self) -> usize {
        self.lines.iter().flatten().count()
    }
}

/// Gathers cosignatures on the log's checkpoints from a set of witnesses.
#[derive(Debug)]
pub struct Witnessing {
    log: Arc<Log>,
    witnesses: Vec<Witness>,
    quorum: usize,
    http: ureq::Agent,
    round: Mutex<Option<Round>>,
    latest_quorum: Mutex<Option<Arc<str>>>,
    /// Where the latest witnessed checkpoint is kept for exports made from
    /// the data directory (`ledger-server export`) and restarts.
    file: Option<std::path::PathBuf>,
    /// Dropped with `self`, which ends the background task.
    _stop: watch::Sender<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data stays consistent across a panic (each update is one
    // assignment), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Witnessing {
    /// Starts cosigning `log`'s checkpoints with `witnesses`; a checkpoint
    /// counts as witnessed once `quorum` of them cosigned it. Must run
    /// inside a Tokio runtime; the task ends when the returned value drops.
    pub fn spawn(log: Arc<Log>, witnesses: Vec<WitnessConfig>, quorum: usize) -> Arc<Self> {
        Self::spawn_with_file(log, witnesses, quorum, None)
    }

    /// [`Witnessing::spawn`], keeping the latest witnessed checkpoint in
    /// `file` ([`WITNESSED_FILE`] in the data directory): read back at
    /// start when it is a checkpoint of this log's tree cosigned by the
    /// quorum, rewritten (atomically) whenever a newer one is.
    pub fn spawn_with_file(log: Arc<Log>, witnesses: Vec<WitnessConfig>, quorum: usize, file: Option<std::path::PathBuf>) -> Arc<Self> {
        let keys: Vec<WitnessKey> = witnesses.iter().map(|w| w.key.clone()).collect();
        let restored = file.as_deref().and_then(|path| restore(&log, &keys, quorum, path));
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(SUBMIT_TIMEOUT / 2))
            .timeout_connect(Some(IO_TIMEOUT))
            .timeout_per_read(Some(IO_TIMEOUT))
            .timeout_per_write(Some(IO_TIMEOUT))
            .max_redirects(0)
            .max_redirects_will_error(false)
            .build()
            .into();
        let (stop, stopped) = watch::channel(());
        let heads = log.watch_head();
        let witnesses = witnesses
            .into_iter()
            .map(|config| Witness {
                config,
                state: Mutex::new(WitnessState { cosigned_size: 0, last_error: None, failures: 0, retry_at: None, in_flight: false }),
            })
            .collect();
        let this = Arc::new(Self {
            log,
            witnesses,
            quorum,
            http,
            round: Mutex::new(None),
            latest_quorum: Mutex::new(restored.map(Arc::from)),
            file,
            _stop: stop,
        });
        tokio::spawn(run(Arc::downgrade(&this), heads, stopped));
        this
    }

    /// The newest checkpoint submitted, with the cosignature lines gathered
    /// for it so far after the log's signature (a signed note).
    pub fn latest(&self) -> Option<String> {
        lock(&self.round).as_ref().map(Round::note)
    }

    /// The newest checkpoint with at least `quorum` verified cosignatures.
    pub fn latest_quorum(&self) -> Option<String> {
        lock(&self.latest_quorum).as_deref().map(str::to_owned)
    }

    /// The number of cosignatures that makes a checkpoint witnessed.
    pub fn quorum(&self) -> usize {
        self.quorum
    }

    /// Each witness's progress and last failure, in configuration order.
    pub fn status(&self) -> Vec<WitnessStatus> {
        self.witnesses
            .iter()
            .map(|w| {
                let s = lock(&w.state);
                WitnessStatus {
                    url: w.config.url.clone(),
                    name: w.config.key.name().to_owned(),
                    key: w.config.key.to_string(),
                    cosigned_size: s.cosigned_size,
                    last_error: s.last_error.clone(),
                    failures: s.failures,
                }
            })
            .collect()
    }

    /// Submits the head to every witness that has not cosigned it and is
    /// not backing off; returns how long until the next retry is due.
    async fn round(self: &Arc<Self>) -> Option<Duration> {
        let head: Head = self.log.head();
        if head.size == 0 {
            return None;
        }
        let due: Vec<usize> = {
            let mut round = lock(&self.round);
            if round.as_ref().is_none_or(|r| r.checkpoint != head.checkpoint) {
                *round = Some(Round { checkpoint: Arc::clone(&head.checkpoint), size: head.size, lines: vec![None; self.witnesses.len()] });
            }
            let lines = round.as_ref().map(|r| r.lines.clone()).unwrap_or_default();
            let now = Instant::now();
            (0..self.witnesses.len())
                .filter(|&i| {
                    let mut state = lock(&self.witnesses[i].state);
                    let due = lines[i].is_none() && !state.in_flight && state.retry_at.is_none_or(|t| t <= now);
                    state.in_flight |= due;
                    due
                })
                .collect()
        };
        let submissions = due.iter().map(|&i| {
            let this = Arc::clone(self);
            let checkpoint = Arc::clone(&head.checkpoint);
            let size = head.size;
            async move {
                let task = tokio::task::spawn_blocking(move || {
                    let result = this.submit(i, &checkpoint, size);
                    lock(&this.witnesses[i].state).in_flight = false;
                    result
                });
                let result = match tokio::time::timeout(SUBMIT_TIMEOUT, task).await {
                    Ok(Ok(result)) => result,
                    Ok(Err(e)) => Err(SubmitError::Transport(e.to_string())),
                    Err(_) => Err(SubmitError::Timeout),
                };
                (i, result)
            }
        });
        let results = futures_util::future::join_all(submissions).await;

        let mut round = lock(&self.round);
        for (i, result) in results {
            let witness = &self.witnesses[i];
            let mut state = lock(&witness.state);
            match result {
                Ok(line) => {
                    state.cosigned_size = state.cosigned_size.max(head.size);
                    state.failures = 0;
                    state.last_error = None;
                    state.retry_at = None;
                    if let Some(r) = round.as_mut().filter(|r| r.checkpoint == head.checkpoint) {
                        r.lines[i] = Some(line);
                    }
                }
                Err(e) => {
                    state.failures = state.failures.saturating_add(1);
                    let backoff = MIN_BACKOFF.saturating_mul(1 << state.failures.min(8).saturating_sub(1)).min(MAX_BACKOFF);
                    state.retry_at = Some(Instant::now() + backoff);
                    tracing::warn!(witness = %witness.config.url, size = head.size, error = %e, retry_in = ?backoff, "witness cosigning failed");
                    state.last_error = Some(e.to_string());
                }
            }
        }
        if let Some(r) = round.as_ref().filter(|r| r.cosigned() >= self.quorum.max(1)) {
            let mut latest = lock(&self.latest_quorum);
            let newer = latest.as_deref().is_none_or(|l| l != r.note());
            if newer {
                tracing::debug!(size = r.size, cosignatures = r.cosigned(), "checkpoint witnessed");
                let note = r.note();
                if let Some(path) = self.file.clone() {
                    let text = note.clone();
                    tokio::task::spawn_blocking(move || {
                        if let Err(e) = save(&path, &text) {
                            tracing::warn!(path = %path.display(), error = %e, "cannot keep the witnessed checkpoint");
                        }
                    });
                }
                *latest = Some(note.into());
            }
        }
        let lines = round.as_ref().map(|r| r.lines.clone()).unwrap_or_default();
        drop(round);
        let now = Instant::now();
        (0..self.witnesses.len())
            .filter(|&i| lines.get(i).is_none_or(Option::is_none))
            .filter_map(|i| lock(&self.witnesses[i].state).retry_at)
            .map(|t| t.saturating_duration_since(now))
            .min()
    }

    /// One witness, one checkpoint (blocking): `old` is the size it last
    /// cosigned as far as this process knows; a 409 corrects it once.
    fn submit(&self, i: usize, checkpoint: &str, size: u64) -> Result<String, SubmitError> {
        let witness = &self.witnesses[i];
        let mut old = lock(&witness.state).cosigned_size;
        for attempt in 0..2 {
            if old > size {
                return Err(SubmitError::WitnessAhead { witness: old, log: size });
            }
            let proof = if old == 0 || old == size {
                Vec::new()
            } else {
                self.log.consistency_proof(old, size).map_err(|e| SubmitError::Proof { old, new: size, error: e.to_string() })?
            };
            let mut body = format!("old {old}\n");
            for hash in &proof {
                body.push_str(&B64.encode(hash));
                body.push('\n');
            }
            body.push('\n');
            body.push_str(checkpoint);
            let url = format!("{}/add-checkpoint", witness.config.url.trim_end_matches('/'));
            let mut response = self.http.post(&url).send(body.as_str()).map_err(|e| SubmitError::Transport(e.to_string()))?;
            let status = response.status().as_u16();
            let is_size =
                response.headers().get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/x.tlog.size"));
            let text = response
                .body_mut()
                .with_config()
                .limit(MAX_RESPONSE_BYTES)
                .read_to_string()
                .map_err(|e| SubmitError::Transport(e.to_string()))?;
            match status {
                200 => return self.keep_cosignature(witness, checkpoint, &text),
                409 => {
                    let witness_size = text
                        .strip_suffix('\n')
                        .filter(|_| is_size)
                        .and_then(|s| s.parse::<u64>().ok())
                        .ok_or(SubmitError::MalformedConflict)?;
                    if attempt == 1 {
                        return Err(SubmitError::ConflictAgain { witness: witness_size });
                    }
                    let mut state = lock(&witness.state);
                    state.cosigned_size = witness_size;
                    old = witness_size;
                }
                status => return Err(SubmitError::Status { status }),
            }
        }
        Err(SubmitError::ConflictAgain { witness: old })
    }

    /// The first line of `answer` from the witness's key that verifies on
    /// the checkpoint: one line per witness, so a witness answering many
    /// cannot push the served note past the signature lines a verifier
    /// reads (`verifier::note::MAX_SIGNATURES`); lines from other keys are
    /// dropped.
    fn keep_cosignature(&self, witness: &Witness, checkpoint: &str, answer: &str) -> Result<String, SubmitError> {
        let key = &witness.config.key;
        let prefix = format!("{SIG_PREFIX}{} ", key.name());
        let mut last_error = SubmitError::NoCosignature;
        for line in answer.lines() {
            let ours = line
                .strip_prefix(&prefix)
                .and_then(|b64| B64.decode(b64).ok())
                .is_some_and(|blob| blob.get(..4) == Some(&key.id().to_be_bytes()[..]));
            if !ours {
                continue;
            }
            let line = format!("{line}\n");
            match verify_cosignatures(&format!("{checkpoint}{line}"), std::slice::from_ref(key)) {
                Ok(report) if !report.verified.is_empty() => return Ok(line),
                Ok(report) => {
                    if let Some(failure) = report.failed.into_iter().next() {
                        last_error = SubmitError::Cosignature(failure.error);
                    }
                }
                Err(e) => last_error = SubmitError::Cosignature(e),
            }
        }
        Err(last_error)
    }
}

/// The file in the data directory that keeps the latest witnessed
/// checkpoint.
pub const WITNESSED_FILE: &str = "witnessed.checkpoint";

/// The witnessed checkpoint kept in `path`, if it still is one: signed by
/// the log, of a tree the log holds (same root at that size), cosigned by
/// `quorum` of `keys`. Anything else is ignored with a warning.
fn restore(log: &Log, keys: &[WitnessKey], quorum: usize, path: &std::path::Path) -> Option<String> {
    let note = std::fs::read_to_string(path).ok()?;
    let checked =
        verifier::Checkpoint::open(&note, &verifier::NoteVerifier::new(log.verifier_key())).map_err(|e| e.to_string()).and_then(|cp| {
            let root = log.root_at(cp.size).map_err(|e| e.to_string())?;
            if !verifier::hash::hashes_equal(&root, &cp.root) {
                return Err(format!("its root at size {} is not the log's", cp.size));
            }
            verifier::cosignature::require_quorum(&note, keys, quorum).map_err(|e| e.to_string())
        });
    match checked {
        Ok(_) => Some(note),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "ignoring the kept witnessed checkpoint");
            None
        }
    }
}

/// Writes `note` to `path` through a temporary file and a rename.
fn save(path: &std::path::Path, note: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, note)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)
}

async fn run(this: Weak<Witnessing>, mut heads: watch::Receiver<u64>, mut stopped: watch::Receiver<()>) {
    loop {
        heads.borrow_and_update();
        let Some(witnessing) = this.upgrade() else { return };
        let retry_in = witnessing.round().await;
        drop(witnessing);
        let retry = async {
            match retry_in {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = heads.changed() => if changed.is_err() { return },
            _ = stopped.changed() => return,
            () = retry => {}
        }
    }
}
