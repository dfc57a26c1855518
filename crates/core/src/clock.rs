//! Time comes from a [`Clock`] so that tests can move it (session timeouts, throttles, banners).

use std::sync::atomic::{AtomicI64, Ordering};
use time::OffsetDateTime;

pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> OffsetDateTime;

    /// Seconds since the Unix epoch, the unit every stored time uses.
    fn unix(&self) -> i64 {
        self.now().unix_timestamp()
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that stands still until moved: the system time plus an offset tests control.
#[derive(Debug, Default)]
pub struct ManualClock {
    offset_seconds: AtomicI64,
}

impl ManualClock {
    pub fn advance(&self, seconds: i64) {
        self.offset_seconds.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + time::Duration::seconds(self.offset_seconds.load(Ordering::SeqCst))
    }
}
