//! Agent-signed HTTP requests: the freshness window and the replay cache.
//!
//! An agent authenticates a request (a nonce draw, a disclosure of its own
//! entry) by signing [`verifier::entry::signing::request_message`]: the log origin,
//! its id, the method, the path, a timestamp and the body hash. The server
//! accepts a timestamp within [`REQUEST_WINDOW`] of its clock, and this
//! module makes each signed request usable once: after the signature
//! verified, the SHA-256 of the signed bytes is remembered for as long as
//! the timestamp could still be accepted, and the same bytes again are
//! [`RequestError::Replayed`].
//!
//! The cache is bounded. Only verified requests enter it, so only
//! registered agents can fill it; each agent may have at most
//! [`REQUESTS_PER_AGENT`] requests remembered at once
//! ([`RequestError::TooMany`]), and the whole cache holds at most
//! [`REPLAY_CAPACITY`] ([`RequestError::Full`]). A remembered request is
//! never dropped early: that would reopen it to replay.
//!
//! Both the window and the retention run on the log's [`Clock`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::Digest as _;

use crate::clock::{Clock, SystemClock};

/// How far a signed request's timestamp may be from the server's clock.
pub const REQUEST_WINDOW: Duration = Duration::from_secs(60);

/// Most signed requests one agent may have remembered at once, that is,
/// in any period of twice [`REQUEST_WINDOW`]: 50 a second sustained, room
/// for an agent committing hidden values (`POST /v1/hidden/commit`, one
/// signed request per entry) at a rate the prover can serve.
pub const REQUESTS_PER_AGENT: usize = 6_000;

/// Most signed requests remembered at once, all agents together (about
/// 120 bytes each, so at most some 25 MB).
pub const REPLAY_CAPACITY: usize = 200_000;

/// Why a signed request was refused after its signature verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The same signed request was already accepted.
    #[error("this signed request was already accepted; sign a new one (a fresh timestamp)")]
    Replayed,
    /// The agent sent more signed requests than its budget.
    #[error("more than {max} signed requests from this agent in {} s; retry after {} s", window.as_secs(), retry_after.as_secs())]
    TooMany { max: usize, window: Duration, retry_after: Duration },
    /// The cache is full of requests that may not be forgotten yet.
    #[error("too many signed requests in flight; retry after {} s", retry_after.as_secs())]
    Full { retry_after: Duration },
}

struct Remembered {
    /// Arrival, since the Unix epoch.
    at: Duration,
    key: [u8; 32],
    agent: Arc<str>,
}

#[derive(Default)]
struct Inner {
    seen: HashSet<[u8; 32]>,
    /// Every remembered request, in arrival order (so expiry is from the
    /// front).
    order: VecDeque<Remembered>,
    /// Arrival times of each agent's remembered requests, oldest first.
    by_agent: HashMap<Arc<str>, VecDeque<Duration>>,
}

/// Signed requests seen within their window: bounded, expiring.
pub struct ReplayCache {
    retention: Duration,
    per_agent: usize,
    capacity: usize,
    clock: Arc<dyn Clock>,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for ReplayCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayCache")
            .field("retention", &self.retention)
            .field("per_agent", &self.per_agent)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl Default for ReplayCache {
    fn default() -> Self {
        Self::new(REQUEST_WINDOW, REQUESTS_PER_AGENT, REPLAY_CAPACITY)
    }
}

impl ReplayCache {
    /// A cache for timestamps accepted within `window` of the clock, with
    /// at most `per_agent` requests per agent and `capacity` in all.
    pub fn new(window: Duration, per_agent: usize, capacity: usize) -> Self {
        Self::with_clock(window, per_agent, capacity, Arc::new(SystemClock))
    }

    /// [`ReplayCache::new`] on `clock`.
    pub fn with_clock(window: Duration, per_agent: usize, capacity: usize, clock: Arc<dyn Clock>) -> Self {
        // A timestamp accepted now is at most `window` ahead of the clock,
        // so it stays acceptable for at most twice the window.
        let retention = window.saturating_mul(2);
        Self { retention, per_agent: per_agent.max(1), capacity: capacity.max(1), clock, inner: Mutex::new(Inner::default()) }
    }

    /// Accepts the signed bytes `message` of `agent` once: call it only
    /// after the signature verified.
    pub fn admit(&self, agent: &str, message: &[u8]) -> Result<(), RequestError> {
        self.admit_at(agent, message, Duration::from_millis(self.clock.now_ms()))
    }

    fn admit_at(&self, agent: &str, message: &[u8], now: Duration) -> Result<(), RequestError> {
        let key: [u8; 32] = sha2::Sha256::digest(message).into();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        self.expire(&mut inner, now);
        if inner.seen.contains(&key) {
            return Err(RequestError::Replayed);
        }
        let wait = |oldest: Duration| (oldest + self.retention).saturating_sub(now).max(Duration::from_secs(1));
        if let Some(times) = inner.by_agent.get(agent).filter(|t| t.len() >= self.per_agent) {
            let retry_after = times.front().map_or(self.retention, |&t| wait(t));
            return Err(RequestError::TooMany { max: self.per_agent, window: self.retention, retry_after });
        }
        if inner.order.len() >= self.capacity {
            let retry_after = inner.order.front().map_or(self.retention, |r| wait(r.at));
            return Err(RequestError::Full { retry_after });
        }
        let agent: Arc<str> = match inner.by_agent.get_key_value(agent) {
            Some((name, _)) => Arc::clone(name),
            None => Arc::from(agent),
        };
        inner.by_agent.entry(Arc::clone(&agent)).or_default().push_back(now);
        inner.seen.insert(key);
        inner.order.push_back(Remembered { at: now, key, agent });
        Ok(())
    }

    /// Forgets requests whose timestamps can no longer be accepted.
    fn expire(&self, inner: &mut Inner, now: Duration) {
        while let Some(front) = inner.order.front() {
            if now.saturating_sub(front.at) < self.retention {
                break;
            }
            let Some(old) = inner.order.pop_front() else { break };
            inner.seen.remove(&old.key);
            if let Some(times) = inner.by_agent.get_mut(&old.agent) {
                times.pop_front();
                if times.is_empty() {
                    inner.by_agent.remove(&old.agent);
                }
            }
        }
    }

    /// Requests remembered now.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).order.len()
    }

    /// Whether no request is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_accepted_once_within_its_window() {
        let cache = ReplayCache::new(Duration::from_secs(60), 10, 100);
        let t0 = Duration::from_secs(1_700_000_000);
        assert_eq!(cache.admit_at("a", b"request 1", t0), Ok(()));
        assert_eq!(cache.admit_at("a", b"request 1", t0 + Duration::from_secs(119)), Err(RequestError::Replayed));
        assert_eq!(cache.admit_at("b", b"request 2", t0), Ok(()));
        // Past twice the window the timestamp is stale anyway: forgotten.
        assert_eq!(cache.admit_at("a", b"request 1", t0 + Duration::from_secs(120)), Ok(()));
        assert_eq!(cache.len(), 1, "both expired, request 1 is remembered again");
    }

    #[test]
    fn each_agent_has_a_budget_and_cannot_crowd_out_others() {
        let cache = ReplayCache::new(Duration::from_secs(60), 3, 5);
        let t0 = Duration::from_secs(1_700_000_000);
        for i in 0..3u8 {
            assert_eq!(cache.admit_at("a", &[i], t0 + Duration::from_secs(u64::from(i))), Ok(()));
        }
        match cache.admit_at("a", b"one more", t0 + Duration::from_secs(10)) {
            Err(RequestError::TooMany { max: 3, retry_after, .. }) => assert_eq!(retry_after, Duration::from_secs(110)),
            other => panic!("{other:?}"),
        }
        // The refused request was not remembered: it is accepted once the
        // agent's oldest expires.
        assert_eq!(cache.admit_at("a", b"one more", t0 + Duration::from_secs(120)), Ok(()));
        assert_eq!(cache.admit_at("b", b"b1", t0 + Duration::from_secs(120)), Ok(()));
        assert_eq!(cache.admit_at("c", b"c1", t0 + Duration::from_secs(120)), Ok(()));
        // Full (5): a sixth is refused rather than forgetting a live one.
        assert!(matches!(cache.admit_at("d", b"d1", t0 + Duration::from_secs(120)), Err(RequestError::Full { .. })));
        assert_eq!(cache.admit_at("a", &[1], t0 + Duration::from_secs(120)), Err(RequestError::Replayed));
    }

    #[test]
    fn expiry_keeps_the_cache_bounded() {
        let cache = ReplayCache::new(Duration::from_secs(1), 10_000, 10_000);
        let t0 = Duration::from_secs(1_700_000_000);
        for i in 0..5000u32 {
            let now = t0 + Duration::from_millis(u64::from(i));
            assert_eq!(cache.admit_at("a", &i.to_be_bytes(), now), Ok(()));
            assert!(cache.len() <= 2000);
        }
    }
}
