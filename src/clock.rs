//! What time it is, as kurir's stages ask: the system's clock in the daemon, a clock a test
//! sets in the in-process test world ([`crate::assemble::Kurir`] with a [`ManualClock`]), so
//! deadlines across weekends and holidays are tested without waiting for them.
//!
//! The stages whose decisions depend on the hour ask this clock: intake (when a job was
//! received, from which its deadlines count), the queue manager (which jobs are due, which
//! deadline passed) and proof coming back (which report is overdue). Records keep their own
//! write times from the system clock.

use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The system's clock: the daemon's.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that stands still until it is set or moved: simulated time for tests.
#[derive(Debug)]
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    /// A clock that says `at`.
    pub fn at(at: Timestamp) -> ManualClock {
        ManualClock(Mutex::new(at))
    }

    /// Sets it to `at`.
    pub fn set(&self, at: Timestamp) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }

    /// Moves it on by `by`.
    pub fn advance(&self, by: SignedDuration) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
