//! Prometheus metrics, exposed as text at `GET /metrics`, and the
//! middleware that counts requests.

use std::collections::VecDeque;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use ledger_core::views::trust::ScoreTable;
use ledger_core::CommitObserver;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use verifier::entry::{Level, RevocationReason};
use verifier::wire::ErrorCode;

/// Labels of `ledger_http_requests`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Matched route template.
    pub route: String,
    /// Response status code.
    pub status: u16,
}

/// Labels of `ledger_attestations`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerdictLabels {
    /// `ok` or `failed`.
    pub verdict: &'static str,
}

/// Labels of `ledger_agent_refusals`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    /// The stable error code.
    pub code: &'static str,
}

/// Labels of `ledger_proof_latency_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendLabels {
    /// The range prover (`dalek`, `precomputed`, `lockstep-cpu`, `cuda`),
    /// or `verify` for checking a client's proof.
    pub backend: &'static str,
}

/// Labels of `ledger_trust_agents`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LevelLabels {
    /// `low`, `medium`, `high` (risk), or `revoked`.
    pub level: &'static str,
}

/// Labels of `ledger_trust_score_agents`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScoreLabels {
    /// Upper bound (inclusive) of the bucket, as Prometheus' `le`.
    pub le: &'static str,
}

/// Labels of `ledger_revocations`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// `score` or `quarantine`.
    pub reason: &'static str,
}

/// Upper bounds of the score buckets.
const SCORE_BUCKETS: [(u8, &str); 11] =
    [(0, "0"), (10, "10"), (20, "20"), (30, "30"), (40, "40"), (50, "50"), (60, "60"), (70, "70"), (80, "80"), (90, "90"), (100, "100")];

/// Every metric the server exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Entries made durable.
    pub appended_entries: Counter,
    /// Group commits.
    pub commits: Counter,
    /// Entries per group commit.
    pub batch_size: Histogram,
    /// Seconds from picking up a group to it being durable.
    pub commit_latency: Histogram,
    /// Current tree size.
    pub tree_size: Gauge<u64, AtomicU64>,
    /// Bytes of entries waiting for the sequencer.
    pub queued_bytes: Gauge<u64, AtomicU64>,
    /// Appends refused with 503 because the queue was full.
    pub pushbacks: Counter,
    /// HTTP requests by route and status.
    pub requests: Family<RequestLabels, Counter>,
    /// Registered agents.
    pub agents: Gauge<u64, AtomicU64>,
    /// Attestations recorded, by verdict.
    pub attestations: Family<VerdictLabels, Counter>,
    /// Agent entries refused before sequencing, by error code.
    pub agent_refusals: Family<CodeLabels, Counter>,
    /// Entries waiting for or in the prover.
    pub prover_queue: Gauge<u64, AtomicU64>,
    /// Seconds to commit and prove one entry's hidden fields (or one
    /// disclosure's predicates).
    pub proof_latency: Family<BackendLabels, Histogram>,
    /// Agents by risk level (and revoked), as of the last scrape.
    pub trust_agents: Family<LevelLabels, Gauge<u64, AtomicU64>>,
    /// Agents with a score at most `le`, as of the last scrape (a
    /// cumulative gauge histogram).
    pub trust_scores: Family<ScoreLabels, Gauge<u64, AtomicU64>>,
    /// Revocations since the server started, by reason.
    pub revocations: Family<ReasonLabels, Gauge<u64, AtomicU64>>,
    /// Open subscriptions to the revocation bus (SSE and WebSocket).
    pub event_subscribers: Gauge<u64, AtomicU64>,
    /// Events handed to subscribers from the log rather than the bus's
    /// ring (resumes from long ago, subscribers slower than the ring).
    pub events_from_log: Counter,
    /// The latest [`RECENT_COMMITS`] commit latencies, µs, oldest first
    /// (the console's percentiles; the histogram keeps the whole run).
    recent_commits: Mutex<VecDeque<u32>>,
    /// The log's size over time, at most one sample a second, the latest
    /// [`SAMPLES`] (the console's charts).
    samples: Mutex<VecDeque<SizeSample>>,
}

/// Samples of the log's size [`Metrics`] keeps: 10 minutes at one a
/// second, longer when the log is idle.
pub const SAMPLES: usize = 600;

/// The log's size at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct SizeSample {
    /// When, ms since the Unix epoch (the server's clock).
    pub time: u64,
    /// Entries in the log.
    pub tree_size: u64,
    /// Entries made durable since the server started.
    pub appended_entries: u64,
}

/// Commits [`Metrics::recent_commit_latency`] summarises.
pub const RECENT_COMMITS: usize = 1024;

/// Percentiles of the latest commits' latency.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct LatencySummary {
    /// Commits summarised (at most [`RECENT_COMMITS`]).
    pub count: usize,
    /// Median, ms.
    pub p50: f64,
    /// 90th percentile, ms.
    pub p90: f64,
    /// 99th percentile, ms.
    pub p99: f64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("ledger");
        let m = Self {
            appended_entries: Counter::default(),
            commits: Counter::default(),
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 15)),
            commit_latency: Histogram::new(exponential_buckets(0.000_05, 2.0, 16)),
            tree_size: Gauge::default(),
            queued_bytes: Gauge::default(),
            pushbacks: Counter::default(),
            requests: Family::default(),
            agents: Gauge::default(),
            attestations: Family::default(),
            agent_refusals: Family::default(),
            prover_queue: Gauge::default(),
            proof_latency: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 2.0, 14))),
            trust_agents: Family::default(),
            trust_scores: Family::default(),
            revocations: Family::default(),
            event_subscribers: Gauge::default(),
            events_from_log: Counter::default(),
            recent_commits: Mutex::new(VecDeque::with_capacity(RECENT_COMMITS)),
            samples: Mutex::new(VecDeque::with_capacity(SAMPLES)),
            registry: Registry::default(),
        };
        registry.register("appended_entries", "Entries made durable", m.appended_entries.clone());
        registry.register("commits", "Group commits (one synced write batch each)", m.commits.clone());
        registry.register("commit_batch_entries", "Entries per group commit", m.batch_size.clone());
        registry.register("commit_latency_seconds", "Time to make one group commit durable", m.commit_latency.clone());
        registry.register("tree_size", "Entries in the log", m.tree_size.clone());
        registry.register("sequencer_queue_bytes", "Bytes of entries waiting for the sequencer", m.queued_bytes.clone());
        registry.register("pushbacks", "Appends refused because the sequencer queue was full", m.pushbacks.clone());
        registry.register("http_requests", "HTTP requests by route and status", m.requests.clone());
        registry.register("agents", "Registered agents", m.agents.clone());
        registry.register("attestations", "Attestations recorded, by verdict", m.attestations.clone());
        registry.register("agent_refusals", "Agent entries refused before sequencing, by error code", m.agent_refusals.clone());
        registry.register("prover_queue_entries", "Entries waiting for or in the prover pool", m.prover_queue.clone());
        registry.register("proof_latency_seconds", "Time to commit and prove one entry's hidden fields (its batch's time), by range prover; backend=verify: checking a client's proof", m.proof_latency.clone());
        registry.register("trust_agents", "Agents by risk level, and revoked agents", m.trust_agents.clone());
        registry.register("trust_score_agents", "Agents whose trust score is at most le (cumulative)", m.trust_scores.clone());
        registry.register("revocations", "Revocations since the server started, by reason", m.revocations.clone());
        registry.register("event_subscribers", "Open subscriptions to the revocation bus", m.event_subscribers.clone());
        registry.register(
            "events_from_log",
            "Events handed to subscribers from the log rather than the bus's ring",
            m.events_from_log.clone(),
        );
        Self { registry, ..m }
    }

    /// Reads the trust view into the trust gauges (at each scrape: O(agents)).
    pub fn observe_trust(&self, table: &ScoreTable, revocations: [(RevocationReason, u64); RevocationReason::ALL.len()]) {
        let mut levels = [0u64; Level::ALL.len() + 1];
        let mut buckets = [0u64; SCORE_BUCKETS.len()];
        for row in &table.rows {
            let level = if row.revoked { Level::ALL.len() } else { row.level as usize };
            levels[level] += 1;
            for (count, (bound, _)) in buckets.iter_mut().zip(SCORE_BUCKETS) {
                *count += u64::from(row.score <= bound);
            }
        }
        for (level, count) in Level::ALL.iter().map(|l| l.as_str()).chain(["revoked"]).zip(levels) {
            self.trust_agents.get_or_create(&LevelLabels { level }).set(count);
        }
        for ((_, le), count) in SCORE_BUCKETS.into_iter().zip(buckets) {
            self.trust_scores.get_or_create(&ScoreLabels { le }).set(count);
        }
        for (reason, count) in revocations {
            self.revocations.get_or_create(&ReasonLabels { reason: reason.as_str() }).set(count);
        }
    }

    /// Counts a refusal of an agent entry or a signed signal (signature,
    /// sequence, agent, source, nonce); other codes are not agent
    /// refusals and are not counted.
    pub fn note_refusal(&self, code: ErrorCode) {
        use ErrorCode as C;
        let refusal = matches!(
            code,
            C::SignatureRequired
                | C::BadSignature
                | C::RequestReplayed
                | C::TooManyRequests
                | C::CommitHiddenFirst
                | C::UnknownAgent
                | C::AgentRetired
                | C::SequenceReplayed
                | C::NonceUnknown
                | C::NonceExpired
                | C::NonceUsed
                | C::NonceWrongAgent
                | C::UnknownSource
                | C::SignalTypeNotAllowed
        );
        if refusal {
            self.agent_refusals.get_or_create(&CodeLabels { code: code.as_str() }).inc();
        }
    }

    /// Percentiles (nearest rank) of the latest [`RECENT_COMMITS`]
    /// commits' latency; `None` before the first.
    pub fn recent_commit_latency(&self) -> Option<LatencySummary> {
        let mut sorted: Vec<u32> = self.recent_commits.lock().unwrap_or_else(|e| e.into_inner()).iter().copied().collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_unstable();
        let n = sorted.len();
        // The smallest value with at least `permille`/1000 of them at or
        // below it.
        let rank = |permille: usize| f64::from(sorted[(n * permille).div_ceil(1000).clamp(1, n) - 1]) / 1000.0;
        Some(LatencySummary { count: n, p50: rank(500), p90: rank(900), p99: rank(990) })
    }

    /// Samples the log's size now (at most one a second: a later call in
    /// the same second updates that second's sample). Called with every
    /// commit, and by readers so that an idle log is sampled too.
    pub fn sample(&self, tree_size: u64) {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        // Times never go back (a clock stepped back) and the size never
        // shrinks (a reader's older size landing after a commit's), so the
        // series stays sorted for `samples_after`.
        let (time, tree_size) = match samples.back() {
            Some(last) => (now.max(last.time), tree_size.max(last.tree_size)),
            None => (now, tree_size),
        };
        let sample = SizeSample { time, tree_size, appended_entries: self.appended_entries.get() };
        match samples.back_mut() {
            Some(last) if last.time / 1000 == time / 1000 => *last = sample,
            _ => {
                if samples.len() == SAMPLES {
                    samples.pop_front();
                }
                samples.push_back(sample);
            }
        }
    }

    /// The samples taken after `after_ms`, oldest first.
    pub fn samples_after(&self, after_ms: u64) -> Vec<SizeSample> {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let first = samples.partition_point(|s| s.time <= after_ms);
        samples.range(first..).copied().collect()
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl CommitObserver for Metrics {
    fn committed(&self, entries: usize, _requests: usize, latency: Duration, tree_size: u64) {
        {
            let mut recent = self.recent_commits.lock().unwrap_or_else(|e| e.into_inner());
            if recent.len() == RECENT_COMMITS {
                recent.pop_front();
            }
            recent.push_back(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
        }
        self.appended_entries.inc_by(entries as u64);
        self.sample(tree_size);
        self.commits.inc();
        self.batch_size.observe(entries as f64);
        self.commit_latency.observe(latency.as_secs_f64());
        self.tree_size.set(tree_size);
    }

    fn proved(&self, latency: Duration, backend: &'static str) {
        self.proof_latency.get_or_create(&BackendLabels { backend }).observe(latency.as_secs_f64());
    }
}

/// Middleware that counts every request by matched route and status, and
/// the 503 answers as pushbacks.
pub async fn count_requests(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    if status == 503 {
        metrics.pushbacks.inc();
    }
    metrics.requests.get_or_create(&RequestLabels { route, status }).inc();
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_commit_percentiles_are_nearest_rank_over_the_latest_commits() {
        let m = Metrics::new();
        assert_eq!(m.recent_commit_latency(), None);
        // 2000 commits: the first 976 (at 1 s) fall out of the window,
        // which then holds 1..=1024 ms.
        for _ in 0..(2000 - RECENT_COMMITS) {
            m.committed(1, 1, Duration::from_secs(1), 1);
        }
        for ms in 1..=RECENT_COMMITS as u64 {
            m.committed(1, 1, Duration::from_millis(ms), 1);
        }
        let s = m.recent_commit_latency().unwrap_or_else(|| panic!("no summary"));
        assert_eq!((s.count, s.p50, s.p90, s.p99), (RECENT_COMMITS, 512.0, 922.0, 1014.0));
        m.committed(1, 1, Duration::from_secs(2), 1);
        assert_eq!(m.recent_commit_latency().map(|s| (s.count, s.p50)), Some((RECENT_COMMITS, 513.0)));
    }

    #[test]
    fn size_samples_are_one_a_second_and_read_after_an_instant() {
        let m = Metrics::new();
        m.committed(3, 1, Duration::from_millis(1), 3);
        m.committed(2, 1, Duration::from_millis(1), 5);
        // Within one second: one sample, the latest.
        let all = m.samples_after(0);
        assert!(!all.is_empty() && all.len() <= 2, "{all:?}");
        let last = all[all.len() - 1];
        assert_eq!((last.tree_size, last.appended_entries), (5, 5));
        assert!(m.samples_after(last.time).is_empty());
        std::thread::sleep(Duration::from_millis(1001));
        m.sample(5);
        let newer = m.samples_after(last.time);
        assert_eq!(newer.len(), 1);
        assert!(newer[0].time > last.time && newer[0].tree_size == 5);
    }
}
