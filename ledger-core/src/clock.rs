//! Time, behind a trait so tests can drive it.
//!
//! Everything in the log that reads the time reads a [`Clock`]: the
//! sequencer's integrated time and the signed-request window
//! ([`crate::requests`]) read its wall clock ([`Clock::now_ms`]); the
//! attestation nonces' time-to-live ([`crate::nonces`]) reads its monotonic
//! clock ([`Clock::monotonic_ms`]), so a wall clock set back or forward
//! neither keeps a nonce alive longer nor drops a live one. A log runs on
//! [`SystemClock`] unless its [`LogConfig::clock`](crate::LogConfig::clock)
//! says otherwise; tests use a [`ManualClock`] and move it by hand, so no
//! test waits for time to pass.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of wall-clock and monotonic time.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Milliseconds since the Unix epoch. May go backwards (a wall clock
    /// can be set back); callers that need monotonic time read
    /// [`Clock::monotonic_ms`] or keep their own high-water mark, as the
    /// sequencer does for integrated time.
    fn now_ms(&self) -> u64;

    /// Milliseconds since an arbitrary origin fixed when the clock was
    /// made; never goes backwards and ignores steps of the wall clock.
    /// Only differences of two readings mean anything.
    fn monotonic_ms(&self) -> u64;
}

/// The system's wall clock, and a monotonic clock ([`Instant`]) started
/// when it was made.
#[derive(Clone, Copy, Debug)]
pub struct SystemClock {
    start: Instant,
}

impl SystemClock {
    /// A clock whose monotonic reading starts at zero now.
    pub fn new() -> Self {
        Self { start: Instant::now() }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
    }

    fn monotonic_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// A clock that moves only when told to (tests): [`ManualClock::advance`]
/// moves both readings together, [`ManualClock::set`] steps only the wall
/// clock, as an operator or NTP setting the time would.
#[derive(Debug, Default)]
pub struct ManualClock {
    wall: AtomicU64,
    monotonic: AtomicU64,
}

impl ManualClock {
    /// A clock reading `ms` milliseconds since the Unix epoch (and zero on
    /// its monotonic clock).
    pub fn new(ms: u64) -> Self {
        Self { wall: AtomicU64::new(ms), monotonic: AtomicU64::new(0) }
    }

    /// Lets `by` pass: both readings move forward.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.wall.fetch_add(ms, Ordering::SeqCst);
        self.monotonic.fetch_add(ms, Ordering::SeqCst);
    }

    /// Sets the wall clock to `ms`, backwards too (a wall clock set back);
    /// the monotonic reading does not move.
    pub fn set(&self, ms: u64) {
        self.wall.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.wall.load(Ordering::SeqCst)
    }

    fn monotonic_ms(&self) -> u64 {
        self.monotonic.load(Ordering::SeqCst)
    }
}
