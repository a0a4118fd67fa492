//! Attestation nonces: bounded, expiring, single-use.
//!
//! `POST /v1/agents/{id}/nonce` issues a random 32-byte nonce, bound to the
//! agent, valid for a short time ([`crate::LogConfig::nonce_ttl`], read on
//! the log's monotonic [`Clock::monotonic_ms`], so steps of the wall clock
//! change no nonce's life) and usable once; the store is bounded per agent
//! ([`NONCES_PER_AGENT`]: an agent's extra draws drop its own nonces) and
//! as a whole (used and expired nonces go first; a live nonce is never
//! dropped for another agent's). An attestation ([`crate::attest`]) names
//! its nonce and consumes it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::{Clock, SystemClock};

/// Bytes of a nonce.
pub use verifier::entry::attestation::NONCE_LEN;

/// Why a nonce was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NonceError {
    /// Never issued (or dropped from the bounded store).
    #[error("unknown nonce")]
    Unknown,
    /// Issued to another agent.
    #[error("nonce was issued to another agent")]
    WrongAgent,
    /// Older than the TTL.
    #[error("nonce expired")]
    Expired,
    /// Already used.
    #[error("nonce already used")]
    Used,
    /// Every slot holds another agent's live nonce; none is dropped for a
    /// new one.
    #[error("the nonce store is full of live nonces; retry after {} s", retry_after.as_secs())]
    Exhausted { retry_after: Duration },
}

/// Most nonces one agent may hold at once; drawing more drops that
/// agent's own used or expired nonces first, then its oldest.
pub const NONCES_PER_AGENT: usize = 8;

struct Issued {
    agent: Arc<str>,
    /// Issue time, ms on the store's monotonic clock.
    at: u64,
    used: bool,
}

/// Issued nonces and the orders eviction looks at. `order` and `used` may
/// hold nonces already dropped (skipped when met, compacted when long).
#[derive(Default)]
struct Nonces {
    by_value: HashMap<[u8; NONCE_LEN], Issued>,
    /// Each agent's nonces, oldest first (at most the per-agent cap).
    by_agent: HashMap<Arc<str>, VecDeque<[u8; NONCE_LEN]>>,
    /// Every nonce in issue order: expired ones form its front.
    order: VecDeque<[u8; NONCE_LEN]>,
    /// Nonces in the order they were used.
    used: VecDeque<[u8; NONCE_LEN]>,
}

impl Nonces {
    fn remove(&mut self, nonce: &[u8; NONCE_LEN]) {
        let Some(issued) = self.by_value.remove(nonce) else { return };
        if let Some(mine) = self.by_agent.get_mut(&issued.agent) {
            mine.retain(|n| n != nonce);
            if mine.is_empty() {
                self.by_agent.remove(&issued.agent);
            }
        }
    }

    /// A nonce nobody can use any more (used, or expired at `now`), oldest
    /// first, for the global capacity: never a live nonce.
    fn dead(&mut self, ttl: u64, now: u64) -> Option<[u8; NONCE_LEN]> {
        while let Some(front) = self.order.front() {
            match self.by_value.get(front) {
                None => {
                    self.order.pop_front();
                }
                Some(i) if now.saturating_sub(i.at) > ttl => return self.order.pop_front(),
                Some(_) => break,
            }
        }
        while let Some(n) = self.used.pop_front() {
            if self.by_value.get(&n).is_some_and(|i| i.used) {
                return Some(n);
            }
        }
        None
    }

    /// Drops entries of `order` and `used` that no longer name a stored
    /// nonce (or, in `used`, a used one), once they grow past `bound`: each
    /// compaction halves them at least, so its cost is amortised.
    fn compact(&mut self, bound: usize) {
        if self.order.len() > bound {
            let map = &self.by_value;
            self.order.retain(|n| map.contains_key(n));
        }
        if self.used.len() > bound {
            let map = &self.by_value;
            let mut seen = std::collections::HashSet::new();
            self.used.retain(|n| map.get(n).is_some_and(|i| i.used) && seen.insert(*n));
        }
    }
}

/// Issued nonces: bounded, expiring, single-use. Each agent holds at most
/// a few at once, and the store as a whole is bounded; neither bound ever
/// drops one agent's live nonce to make room for another's.
pub struct NonceStore {
    ttl: Duration,
    clock: Arc<dyn Clock>,
    capacity: usize,
    per_agent: usize,
    inner: Mutex<Nonces>,
}

impl std::fmt::Debug for NonceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceStore")
            .field("ttl", &self.ttl)
            .field("capacity", &self.capacity)
            .field("per_agent", &self.per_agent)
            .finish_non_exhaustive()
    }
}

impl NonceStore {
    /// A store keeping at most `capacity` nonces (and
    /// [`NONCES_PER_AGENT`] per agent) for `ttl` each.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self::with_per_agent(ttl, capacity, NONCES_PER_AGENT)
    }

    /// A store with a per-agent cap other than [`NONCES_PER_AGENT`].
    pub fn with_per_agent(ttl: Duration, capacity: usize, per_agent: usize) -> Self {
        Self::with_clock(ttl, capacity, per_agent, Arc::new(SystemClock::new()))
    }

    /// A store whose time-to-live runs on `clock`'s monotonic reading.
    pub fn with_clock(ttl: Duration, capacity: usize, per_agent: usize, clock: Arc<dyn Clock>) -> Self {
        Self { ttl, clock, capacity: capacity.max(1), per_agent: per_agent.max(1), inner: Mutex::new(Nonces::default()) }
    }

    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX)
    }

    /// Issues a fresh nonce for `agent`. At its cap, the agent's own used
    /// or expired nonces are dropped first, then its oldest; when the
    /// store is full, anyone's used or expired nonce is dropped, and if
    /// there is none the request is refused ([`NonceError::Exhausted`]).
    pub fn issue(&self, agent: &str) -> Result<[u8; NONCE_LEN], NonceError> {
        let now = self.clock.monotonic_ms();
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let inner = &mut *guard;
        let ttl = self.ttl_ms();
        let dead = |i: &Issued| i.used || now.saturating_sub(i.at) > ttl;
        if let Some(mine) = inner.by_agent.get(agent).filter(|m| m.len() >= self.per_agent) {
            let victim = mine.iter().find(|n| inner.by_value.get(*n).is_none_or(dead)).or(mine.front()).copied();
            if let Some(victim) = victim {
                inner.remove(&victim);
            }
        }
        if inner.by_value.len() >= self.capacity {
            match inner.dead(ttl, now) {
                Some(victim) => inner.remove(&victim),
                None => {
                    let oldest = inner.order.front().and_then(|n| inner.by_value.get(n)).map_or(now, |i| i.at);
                    let retry_after = Duration::from_millis(oldest.saturating_add(ttl).saturating_sub(now)).max(Duration::from_secs(1));
                    return Err(NonceError::Exhausted { retry_after });
                }
            }
        }
        let mut nonce = [0u8; NONCE_LEN];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
        let agent: Arc<str> = match inner.by_agent.get_key_value(agent) {
            Some((name, _)) => Arc::clone(name),
            None => Arc::from(agent),
        };
        inner.by_agent.entry(Arc::clone(&agent)).or_default().push_back(nonce);
        inner.by_value.insert(nonce, Issued { agent, at: now, used: false });
        inner.order.push_back(nonce);
        inner.compact(self.capacity.saturating_mul(2));
        Ok(nonce)
    }

    /// Consumes `nonce` for `agent`: it must be known, fresh, unused and
    /// issued to that agent. A nonce is consumed even if the attestation
    /// then fails its verdict; [`NonceStore::release`] gives it back when
    /// the attestation could not be recorded at all.
    pub fn consume(&self, agent: &str, nonce: &[u8]) -> Result<(), NonceError> {
        let key: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| NonceError::Unknown)?;
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let issued = guard.by_value.get_mut(&key).ok_or(NonceError::Unknown)?;
        if &*issued.agent != agent {
            return Err(NonceError::WrongAgent);
        }
        if issued.used {
            return Err(NonceError::Used);
        }
        if self.clock.monotonic_ms().saturating_sub(issued.at) > self.ttl_ms() {
            return Err(NonceError::Expired);
        }
        issued.used = true;
        guard.used.push_back(key);
        guard.compact(self.capacity.saturating_mul(2));
        Ok(())
    }

    /// Gives back a nonce [`NonceStore::consume`]d for an attestation that
    /// was not recorded (pushback, shutdown, a refusal by the sequencer,
    /// a failed commit), so the agent can retry with it. Nothing happens
    /// if the nonce was dropped meanwhile or is not `agent`'s.
    pub fn release(&self, agent: &str, nonce: &[u8]) {
        let Ok(key) = <[u8; NONCE_LEN]>::try_from(nonce) else { return };
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(issued) = guard.by_value.get_mut(&key).filter(|i| &*i.agent == agent) {
            issued.used = false;
        }
    }

    /// The time-to-live of a nonce.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_single_use_bound_and_fresh() {
        let store = NonceStore::new(Duration::from_millis(50), 16);
        let a = store.issue("a").unwrap();
        assert_eq!(store.consume("b", &a), Err(NonceError::WrongAgent));
        assert_eq!(store.consume("a", &a), Ok(()));
        assert_eq!(store.consume("a", &a), Err(NonceError::Used));
        assert_eq!(store.consume("a", &[0; 32]), Err(NonceError::Unknown));
        let b = store.issue("a").unwrap();
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(store.consume("a", &b), Err(NonceError::Expired));
    }

    /// The attack of finding 10: one agent drawing nonces as fast as it can
    /// used to push every other agent's nonces out of one global FIFO.
    #[test]
    fn one_agent_cannot_evict_another_agents_live_nonce() {
        let store = NonceStore::with_per_agent(Duration::from_secs(60), 64, 8);
        let b = store.issue("b").unwrap();
        let first = store.issue("a").unwrap();
        let drawn: Vec<_> = (0..10_000).map(|_| store.issue("a").unwrap()).collect();
        assert_eq!(store.consume("b", &b), Ok(()), "b's nonce survived 10000 draws by a");
        // a only ever displaced its own nonces: its oldest went, its last
        // eight are live.
        assert_eq!(store.consume("a", &first), Err(NonceError::Unknown));
        for n in &drawn[drawn.len() - 8..] {
            assert_eq!(store.consume("a", n), Ok(()));
        }
        let inner = store.inner.lock().unwrap();
        assert!(inner.by_value.len() <= 64 && inner.order.len() <= 2 * 64 + 1 && inner.used.len() <= 2 * 64 + 1);
    }

    #[test]
    fn at_its_cap_an_agent_loses_its_dead_nonces_first() {
        let store = NonceStore::with_per_agent(Duration::from_secs(60), 64, 3);
        let [n1, n2, n3] = [(); 3].map(|()| store.issue("a").unwrap());
        store.consume("a", &n2).unwrap();
        let n4 = store.issue("a").unwrap();
        // The used n2 made room; the older but live n1 is kept.
        assert_eq!(store.consume("a", &n2), Err(NonceError::Unknown));
        for n in [n1, n3, n4] {
            assert_eq!(store.consume("a", &n), Ok(()));
        }
    }

    #[test]
    fn a_full_store_drops_dead_nonces_and_never_live_ones() {
        let store = NonceStore::with_per_agent(Duration::from_secs(60), 4, 2);
        let a = [(); 2].map(|()| store.issue("a").unwrap());
        let b = [(); 2].map(|()| store.issue("b").unwrap());
        // Full of live nonces: c is refused rather than evicting a or b.
        match store.issue("c") {
            Err(NonceError::Exhausted { retry_after }) => assert!(retry_after <= Duration::from_secs(60)),
            other => panic!("{other:?}"),
        }
        store.consume("a", &a[0]).unwrap();
        let c = store.issue("c").unwrap();
        assert_eq!(store.consume("a", &a[0]), Err(NonceError::Unknown), "the used nonce made room");
        for (agent, n) in [("a", a[1]), ("b", b[0]), ("b", b[1]), ("c", c)] {
            assert_eq!(store.consume(agent, &n), Ok(()));
        }
        // Expired nonces make room too.
        let short = NonceStore::with_per_agent(Duration::from_millis(20), 2, 2);
        let old = short.issue("a").unwrap();
        short.issue("b").unwrap();
        assert!(matches!(short.issue("c"), Err(NonceError::Exhausted { .. })));
        std::thread::sleep(Duration::from_millis(30));
        let c = short.issue("c").unwrap();
        assert_eq!(short.consume("a", &old), Err(NonceError::Unknown));
        assert_eq!(short.consume("c", &c), Ok(()));
    }

    #[test]
    fn a_released_nonce_can_be_used_again_by_its_agent_only() {
        let store = NonceStore::new(Duration::from_secs(60), 16);
        let n = store.issue("a").unwrap();
        store.consume("a", &n).unwrap();
        store.release("b", &n);
        assert_eq!(store.consume("a", &n), Err(NonceError::Used), "another agent cannot give it back");
        store.release("a", &n);
        assert_eq!(store.consume("a", &n), Ok(()));
        store.release("a", &[7; 32]);
    }

    #[test]
    fn a_nonce_expires_when_the_clock_passes_its_ttl() {
        let clock = Arc::new(crate::clock::ManualClock::new(1_000_000));
        let store = NonceStore::with_clock(Duration::from_secs(60), 2, 2, clock.clone());
        let n = store.issue("a").unwrap();
        let m = store.issue("b").unwrap();
        clock.advance(Duration::from_secs(60));
        match store.issue("c") {
            Err(NonceError::Exhausted { retry_after }) => assert_eq!(retry_after, Duration::from_secs(1)),
            other => panic!("{other:?}"),
        }
        assert_eq!(store.consume("a", &n), Ok(()), "still fresh at exactly its TTL");
        clock.advance(Duration::from_millis(1));
        assert_eq!(store.consume("b", &m), Err(NonceError::Expired));
        // Expired and used nonces make room.
        let c = store.issue("c").unwrap();
        assert_eq!(store.consume("c", &c), Ok(()));
    }

    #[test]
    fn a_nonce_ttl_ignores_steps_of_the_wall_clock() {
        let clock = Arc::new(crate::clock::ManualClock::new(1_000_000_000));
        let store = NonceStore::with_clock(Duration::from_secs(60), 16, 4, clock.clone());
        let n = store.issue("a").unwrap();
        let m = store.issue("a").unwrap();
        // Forward by an hour: the nonces are 0 s old, not an hour.
        clock.set(1_000_000_000 + 3_600_000);
        assert_eq!(store.consume("a", &n), Ok(()), "a forward step drops no live nonce");
        // Back by a day: no nonce lives longer for it.
        clock.set(1_000_000_000 - 86_400_000);
        clock.advance(Duration::from_secs(60));
        let o = store.issue("a").unwrap();
        clock.advance(Duration::from_millis(1));
        assert_eq!(store.consume("a", &m), Err(NonceError::Expired), "expired at TTL + 1 ms of real time");
        assert_eq!(store.consume("a", &o), Ok(()));
    }
}
