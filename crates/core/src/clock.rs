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

/// A clock that stands still until a test moves it; it starts at the time it was made.
#[derive(Debug)]
pub struct ManualClock {
    unix_seconds: AtomicI64,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self { unix_seconds: AtomicI64::new(OffsetDateTime::now_utc().unix_timestamp()) }
    }
}

impl ManualClock {
    pub fn advance(&self, seconds: i64) {
        self.unix_seconds.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.unix_seconds.load(Ordering::SeqCst)).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

/// A Unix time as the API gives it ("2026-11-26T07:10:53Z").
pub fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// A Unix time as emails show it ("Thu, 26 Nov 2026 07:10:53 +0000").
pub fn rfc2822(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc2822).ok())
        .unwrap_or_default()
}

/// "1 second", "40 seconds", "15 minutes", "1 hour": a wait as a person says it.
pub fn in_words(seconds: i64) -> String {
    let (n, unit) = match seconds {
        s if s < 60 => (s.max(1), "second"),
        s if s < 3600 => ((s + 59) / 60, "minute"),
        s => ((s + 3599) / 3600, "hour"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    #[test]
    fn waits_are_said_in_words() {
        assert_eq!(super::in_words(1), "1 second");
        assert_eq!(super::in_words(2), "2 seconds");
        assert_eq!(super::in_words(61), "2 minutes");
        assert_eq!(super::in_words(3600), "1 hour");
    }
}
