//! Wall-clock time, behind a trait so tests can drive it.
//!
//! Everything in the log that reads the time reads a [`Clock`]: the
//! sequencer's integrated time, the attestation nonces' time-to-live
//! ([`crate::nonces`]) and the signed-request replay window
//! ([`crate::requests`]). A log runs on [`SystemClock`] unless its
//! [`LogConfig::clock`](crate::LogConfig::clock) says otherwise; tests use a
//! [`ManualClock`] and move it by hand, so no test waits for time to pass.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Milliseconds since the Unix epoch. May go backwards (a wall clock
    /// can be set back); callers that need monotonic time keep their own
    /// high-water mark, as the sequencer does.
    fn now_ms(&self) -> u64;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
    }
}

/// A clock that moves only when told to (tests).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock reading `ms` milliseconds since the Unix epoch.
    pub fn new(ms: u64) -> Self {
        Self(AtomicU64::new(ms))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }

    /// Sets the clock to `ms`, backwards too (a wall clock set back).
    pub fn set(&self, ms: u64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}
