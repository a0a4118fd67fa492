//! Agent-signed HTTP requests: the one place they are authenticated.
//!
//! An agent authenticates a request (a nonce draw, a disclosure of its own
//! entry) by signing [`verifier::entry::signing::request_message`]: the log origin,
//! its id, the method, the path, a timestamp and the body hash.
//! [`Log::authenticate_request`](crate::Log::authenticate_request) checks, in this order: the timestamp is
//! within [`REQUEST_WINDOW`] of the log's wall clock, the signature is
//! well formed, the agent is registered and not retired
//! ([`verifier::fold::registry::active`]), the signature verifies
//! (strictly) with its key in force, and the request was not accepted
//! before: after the signature verified, the SHA-256 of the signed bytes
//! is remembered until the clock is past its timestamp plus the window,
//! and the same bytes again are [`RequestError::Replayed`].
//!
//! A request is forgotten only when two things hold: the window check
//! refuses it anyway (the wall clock is past its timestamp plus the
//! window), and it has been remembered for twice the window on the
//! monotonic clock (the longest a request can stay inside the window while
//! the wall clock runs true). The first keeps a backward step of the wall
//! clock from reopening a replay; the second keeps a forward step (say a
//! bad NTP answer, later corrected) from forgetting requests that come back
//! inside the window once the clock is put right. The window check that
//! decides acceptance reads the same clock reading as the expiry, under the
//! cache's lock, so a request is never both inside the window and already
//! forgotten.
//!
//! The cache is bounded. Only verified requests enter it, so only
//! registered agents can fill it; each agent may have at most
//! [`REQUESTS_PER_AGENT`] requests remembered at once
//! ([`RequestError::TooMany`]), and the whole cache holds at most
//! [`REPLAY_CAPACITY`] ([`RequestError::Full`]). A remembered request is
//! never dropped early: that would reopen it to replay.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::Digest as _;
use verifier::entry::signing::{parse_signature, request_message, verify_signature, HEADER_AGENT_SIGNATURE, HEADER_AGENT_TIMESTAMP};
use verifier::fold::registry::{self, AgentState, RegistryError};
use verifier::AgentId;

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

/// Why an agent-signed request was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The timestamp is further than the window from the log's clock.
    #[error("{} is more than {} s from the server's clock", HEADER_AGENT_TIMESTAMP, window.as_secs())]
    Stale { window: Duration },
    /// The signature is not a base64 Ed25519 signature.
    #[error("{} must be a base64 Ed25519 signature", HEADER_AGENT_SIGNATURE)]
    MalformedSignature,
    /// No passport for this id (which may not even be an agent id).
    #[error("no passport is registered for {0}")]
    UnknownAgent(String),
    /// The agent is retired.
    #[error("{0} is retired")]
    Retired(AgentId),
    /// The signature does not verify with the agent's key in force.
    #[error("the request signature does not verify with the key in force for {0}")]
    BadSignature(AgentId),
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

impl ReplayCache {
    /// Authenticates a request signed by `agent` (as its header spells it)
    /// over `method`, `path`, `timestamp_ms` and `body`, with `signature`
    /// as sent (base64), in the log named `origin` whose registry `lookup`
    /// reads, and accepts it once; returns the parsed agent id
    /// ([`Log::authenticate_request`](crate::Log::authenticate_request)).
    /// The checks and their order are the module's (see [`self`]); an id
    /// that is no agent id is answered as an unregistered one, after the
    /// timestamp and the signature's form are checked. Nothing is
    /// remembered for a request whose signature fails, so callers without
    /// a key cannot fill the cache.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn authenticate(
        &self,
        origin: &str,
        lookup: impl FnOnce(&AgentId) -> Option<AgentState>,
        agent: &str,
        method: &str,
        path: &str,
        timestamp_ms: u64,
        signature: &str,
        body: &[u8],
    ) -> Result<AgentId, RequestError> {
        let window = self.window;
        if u128::from(timestamp_ms.abs_diff(self.clock.now_ms())) > window.as_millis() {
            return Err(RequestError::Stale { window });
        }
        let signature = parse_signature(signature).map_err(|_| RequestError::MalformedSignature)?;
        let unknown = || RequestError::UnknownAgent(agent.to_owned());
        let agent = AgentId::parse(agent).map_err(|_| unknown())?;
        let state = lookup(&agent);
        let state = registry::active(&agent, state.as_ref()).map_err(|e| match e {
            RegistryError::Retired(agent) => RequestError::Retired(agent),
            _ => unknown(),
        })?;
        // The ledger's one rule (small-order keys and R refused); weak keys
        // are also refused when registered, and records stored before that
        // rule existed are read leniently, so this is where they stop.
        let message = request_message(origin, agent.as_str(), method, path, timestamp_ms, body);
        if !verify_signature(&state.key, &message, &signature) {
            return Err(RequestError::BadSignature(agent));
        }
        self.admit(agent.as_str(), timestamp_ms, &message)?;
        Ok(agent)
    }
}

/// One reading of the clock: wall (ms since the Unix epoch) and monotonic.
#[derive(Clone, Copy, Debug)]
struct Now {
    wall: u64,
    mono: u64,
}

#[derive(Default)]
struct Inner {
    /// Each remembered request's key, with its agent and its arrival on
    /// the monotonic clock (ms).
    seen: HashMap<[u8; 32], (Arc<str>, u64)>,
    /// Every remembered request by expiry (ms, its timestamp plus the
    /// window): expired ones form the front.
    by_expiry: BTreeSet<(u64, [u8; 32])>,
    by_agent: HashMap<Arc<str>, AgentRequests>,
}

/// One agent's remembered requests.
#[derive(Default)]
struct AgentRequests {
    count: usize,
    /// How many expire at each time.
    expiries: BTreeMap<u64, usize>,
}

/// Signed requests seen within their window: bounded, expiring.
pub struct ReplayCache {
    window: Duration,
    per_agent: usize,
    capacity: usize,
    clock: Arc<dyn Clock>,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for ReplayCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayCache")
            .field("window", &self.window)
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
        Self::with_clock(window, per_agent, capacity, Arc::new(SystemClock::new()))
    }

    /// [`ReplayCache::new`] on `clock`.
    pub fn with_clock(window: Duration, per_agent: usize, capacity: usize, clock: Arc<dyn Clock>) -> Self {
        Self { window, per_agent: per_agent.max(1), capacity: capacity.max(1), clock, inner: Mutex::new(Inner::default()) }
    }

    /// Accepts the signed bytes `message` of `agent`, signed at
    /// `timestamp_ms`, once: call it only after the signature verified and
    /// the timestamp was found within the window.
    pub fn admit(&self, agent: &str, timestamp_ms: u64, message: &[u8]) -> Result<(), RequestError> {
        self.admit_at(agent, timestamp_ms, message, || Now { wall: self.clock.now_ms(), mono: self.clock.monotonic_ms() })
    }

    fn window_ms(&self) -> u64 {
        u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX)
    }

    /// Admits under the lock, with one reading of the clock (`now`, read
    /// once the lock is held) for the window check and for expiry.
    fn admit_at(&self, agent: &str, timestamp_ms: u64, message: &[u8], now: impl FnOnce() -> Now) -> Result<(), RequestError> {
        let key: [u8; 32] = sha2::Sha256::digest(message).into();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Now { wall: now, mono } = now();
        if timestamp_ms.abs_diff(now) > self.window_ms() {
            return Err(RequestError::Stale { window: self.window });
        }
        self.expire(&mut inner, now, mono);
        if inner.seen.contains_key(&key) {
            return Err(RequestError::Replayed);
        }
        let wait = |expiry: u64| Duration::from_millis(expiry.saturating_add(1).saturating_sub(now)).max(Duration::from_secs(1));
        if let Some(times) = inner.by_agent.get(agent).filter(|t| t.count >= self.per_agent) {
            let retry_after = times.expiries.keys().next().map_or(self.window * 2, |&t| wait(t));
            return Err(RequestError::TooMany { max: self.per_agent, window: self.window * 2, retry_after });
        }
        if inner.seen.len() >= self.capacity {
            let retry_after = inner.by_expiry.first().map_or(self.window * 2, |&(t, _)| wait(t));
            return Err(RequestError::Full { retry_after });
        }
        let expiry = timestamp_ms.saturating_add(self.window_ms());
        let agent: Arc<str> = match inner.by_agent.get_key_value(agent) {
            Some((name, _)) => Arc::clone(name),
            None => Arc::from(agent),
        };
        let mine = inner.by_agent.entry(Arc::clone(&agent)).or_default();
        mine.count += 1;
        *mine.expiries.entry(expiry).or_default() += 1;
        inner.seen.insert(key, (agent, mono));
        inner.by_expiry.insert((expiry, key));
        Ok(())
    }

    /// Forgets requests whose timestamps the window now refuses as too old
    /// (the wall clock `now` past their expiry) and that have been kept for
    /// twice the window on the monotonic clock (`mono`). Stops at the first
    /// request that must stay: the ones behind it stay a little longer,
    /// never shorter.
    fn expire(&self, inner: &mut Inner, now: u64, mono: u64) {
        let hold = self.window_ms().saturating_mul(2);
        while let Some(&(expiry, key)) = inner.by_expiry.first() {
            if expiry >= now {
                break;
            }
            if inner.seen.get(&key).is_some_and(|&(_, arrived)| mono < arrived.saturating_add(hold)) {
                break;
            }
            inner.by_expiry.pop_first();
            let Some((agent, _)) = inner.seen.remove(&key) else { continue };
            if let Some(times) = inner.by_agent.get_mut(&agent) {
                times.count = times.count.saturating_sub(1);
                if let Some(n) = times.expiries.get_mut(&expiry) {
                    *n -= 1;
                    if *n == 0 {
                        times.expiries.remove(&expiry);
                    }
                }
                if times.count == 0 {
                    inner.by_agent.remove(&agent);
                }
            }
        }
    }

    /// Requests remembered now.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).seen.len()
    }

    /// Whether no request is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000;
    const S: u64 = 1000;

    /// A steady clock: wall and monotonic readings move together.
    fn at(t: u64) -> impl FnOnce() -> Now {
        move || Now { wall: t, mono: t }
    }

    /// The wall clock at `wall` while the monotonic one reads `mono`.
    fn stepped(wall: u64, mono: u64) -> impl FnOnce() -> Now {
        move || Now { wall, mono }
    }

    #[test]
    fn a_request_is_remembered_while_its_timestamp_is_inside_the_window() {
        let cache = ReplayCache::new(Duration::from_secs(60), 10, 100);
        assert_eq!(cache.admit_at("a", T0, b"request 1", at(T0)), Ok(()));
        // To the last millisecond of the window, the same bytes are a replay.
        assert_eq!(cache.admit_at("a", T0, b"request 1", at(T0 + 60 * S)), Err(RequestError::Replayed));
        // One millisecond later the window refuses it, with the same reading
        // of the clock that expiry uses: never inside the window and forgotten.
        assert!(matches!(cache.admit_at("a", T0, b"request 1", at(T0 + 60 * S + 1)), Err(RequestError::Stale { .. })));
        // A request signed ahead of the clock stays a window past its
        // timestamp.
        assert_eq!(cache.admit_at("b", T0 + 60 * S, b"request 2", at(T0)), Ok(()));
        assert_eq!(cache.admit_at("b", T0 + 60 * S, b"request 2", at(T0 + 120 * S)), Err(RequestError::Replayed));
        // Both are forgotten once outside the window and held twice the
        // window: a new request finds the cache empty but for itself.
        assert_eq!(cache.admit_at("c", T0 + 121 * S, b"request 3", at(T0 + 121 * S)), Ok(()));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn each_agent_has_a_budget_and_cannot_crowd_out_others() {
        let cache = ReplayCache::new(Duration::from_secs(60), 3, 5);
        for i in 0..3u8 {
            let t = T0 + u64::from(i) * S;
            assert_eq!(cache.admit_at("a", t, &[i], at(t)), Ok(()));
        }
        match cache.admit_at("a", T0 + 10 * S, b"one more", at(T0 + 10 * S)) {
            // a's oldest (signed at T0) leaves the window just past T0 + 60 s.
            Err(RequestError::TooMany { max: 3, retry_after, .. }) => assert_eq!(retry_after, Duration::from_millis(50_001)),
            other => panic!("{other:?}"),
        }
        // The refused request was not remembered: it is accepted once the
        // agent's oldest is forgotten (outside the window, held 120 s).
        let later = T0 + 120 * S;
        assert_eq!(cache.admit_at("a", later, b"one more", at(later)), Ok(()));
        assert_eq!(cache.admit_at("b", later, b"b1", at(later)), Ok(()));
        assert_eq!(cache.admit_at("c", later, b"c1", at(later)), Ok(()));
        // a still has two remembered (signed at T0 + 1 s and + 2 s); with
        // five in all a sixth is refused rather than forgetting a live one.
        assert_eq!(cache.len(), 5);
        assert!(matches!(cache.admit_at("d", later, b"d1", at(later)), Err(RequestError::Full { .. })));
    }

    #[test]
    fn expiry_keeps_the_cache_bounded() {
        let cache = ReplayCache::new(Duration::from_secs(1), 10_000, 10_000);
        for i in 0..5000u32 {
            let now = T0 + u64::from(i);
            assert_eq!(cache.admit_at("a", now, &i.to_be_bytes(), at(now)), Ok(()));
            assert!(cache.len() <= 2001);
        }
    }

    /// The wall clock set back by an hour: the request accepted before the
    /// step stays remembered until the window refuses it; those signed
    /// after the step are forgotten within twice the window.
    #[test]
    fn a_backward_step_neither_reopens_a_replay_nor_keeps_the_cache_full() {
        let cache = ReplayCache::new(Duration::from_secs(60), 2, 2);
        assert_eq!(cache.admit_at("a", T0, b"before", at(T0)), Ok(()));
        let back = T0 - 3600 * S;
        assert_eq!(cache.admit_at("b", back, b"after", stepped(back, T0)), Ok(()));
        assert!(matches!(cache.admit_at("c", back, b"c", stepped(back, T0)), Err(RequestError::Full { .. })));
        // Twice the window later, the request signed after the step is gone.
        assert_eq!(cache.admit_at("c", back + 120 * S, b"c", stepped(back + 120 * S, T0 + 120 * S)), Ok(()));
        // When the clock is put right, the request signed before the step
        // is still remembered: no replay.
        assert_eq!(cache.admit_at("a", T0, b"before", stepped(T0, T0 + 130 * S)), Err(RequestError::Replayed));
    }

    /// The wall clock jumps forward past the window (a bad NTP answer) and
    /// is corrected a moment later: the requests accepted before the jump
    /// are not forgotten by requests served during it, so they cannot be
    /// replayed once the clock is right again.
    #[test]
    fn a_forward_step_and_back_reopens_no_replay() {
        let cache = ReplayCache::new(Duration::from_secs(60), 10, 100);
        assert_eq!(cache.admit_at("a", T0, b"before", at(T0)), Ok(()));
        let ahead = T0 + 3600 * S;
        assert_eq!(cache.admit_at("b", ahead, b"during", stepped(ahead, T0 + S)), Ok(()));
        assert_eq!(cache.admit_at("a", T0, b"before", stepped(T0 + 2 * S, T0 + 2 * S)), Err(RequestError::Replayed));
    }
}
