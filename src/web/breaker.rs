//! Fails fast while the database cannot be reached (issue 13). Without it, every request
//! during an outage waited out the pool's 5-second acquire timeout before its 503 (sqlx keeps
//! retrying a refused connection until then), and a replica's requests piled up meanwhile.
//!
//! An answer marked [`DatabaseUnreachable`] opens the breaker: for [`OPEN_FOR`], requests that
//! may need the database are answered 503 `unavailable` at once, in the usual error shape and
//! with `Retry-After`. Then one request goes through as a probe while the others are still
//! answered at once: if the probe reaches the database, the breaker closes; if not, it opens
//! again. Health checks, static assets and the reads of banners and help articles (served from
//! memory) always pass, and a successful `/readyz` (which asks the database itself) closes the
//! breaker.
//! The state is per process: every replica finds out for itself.

use crate::web::error::{ApiError, DatabaseUnreachable, PageError};
use crate::web::state::AppState;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long requests are answered at once after the database was found unreachable.
pub const OPEN_FOR: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct DatabaseBreaker {
    started: Instant,
    /// Milliseconds since `started` until which the breaker is open; 0: closed.
    open_until_ms: AtomicU64,
    /// A probe is under way (the breaker is half open).
    probing: AtomicBool,
}

impl Default for DatabaseBreaker {
    fn default() -> Self {
        Self { started: Instant::now(), open_until_ms: AtomicU64::new(0), probing: AtomicBool::new(false) }
    }
}

/// What a request may do now.
#[derive(Debug, PartialEq, Eq)]
enum Admission {
    /// The breaker is closed: go on.
    Pass,
    /// Half open, and this request is the probe.
    Probe,
    /// Open, or another request is probing: answer at once.
    Refuse,
}

impl DatabaseBreaker {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn admit(&self) -> Admission {
        let until = self.open_until_ms.load(Ordering::Acquire);
        if until == 0 {
            return Admission::Pass;
        }
        if self.now_ms() < until {
            return Admission::Refuse;
        }
        match self.probing.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => Admission::Probe,
            Err(_) => Admission::Refuse,
        }
    }

    /// The database answered a check of its own.
    fn close(&self) {
        self.open_until_ms.store(0, Ordering::Release);
    }

    /// What an answer said about the database.
    fn record(&self, unreachable: bool, probe: bool) {
        if unreachable {
            let until = self.now_ms().saturating_add(u64::try_from(OPEN_FOR.as_millis()).unwrap_or(u64::MAX)).max(1);
            self.open_until_ms.store(until, Ordering::Release);
        } else if probe {
            self.open_until_ms.store(0, Ordering::Release);
        }
        if probe {
            self.probing.store(false, Ordering::Release);
        }
    }
}

/// Clears the probe flag if the probe's future is dropped before it answers (the client went
/// away), so that a later request can probe.
struct ProbeGuard<'a>(&'a DatabaseBreaker, bool);

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        if self.1 {
            self.0.probing.store(false, Ordering::Release);
        }
    }
}

/// Banners and help articles are served from memory (content.rs), so reading them works with
/// the database down: they are not refused. (A signed-in reader's session is still looked up.)
fn reads_cached_content(request: &Request) -> bool {
    let path = request.uri().path();
    matches!(*request.method(), axum::http::Method::GET | axum::http::Method::HEAD)
        && (path.starts_with("/api/v1/banners") || path.starts_with("/api/v1/help/") || path == "/help" || path.starts_with("/help/"))
}

/// Whether [`database_breaker`] sees this request: not the static assets, the liveness check
/// or the reads served from memory.
pub fn may_need_the_database(request: &Request) -> bool {
    let path = request.uri().path();
    !(path.starts_with("/static/") || path == "/healthz" || reads_cached_content(request))
}

pub async fn database_breaker(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let breaker = &state.database_breaker;
    if path == "/readyz" {
        // The readiness check asks the database itself: its success closes the breaker, so a
        // replica that its balancer sees ready again serves again at once.
        let response = next.run(request).await;
        if response.status().is_success() {
            breaker.close();
        }
        return response;
    }
    let probe = match breaker.admit() {
        Admission::Pass => false,
        Admission::Probe => true,
        Admission::Refuse => {
            return if path.starts_with("/api/") {
                ApiError::unavailable().into_response()
            } else {
                PageError(ApiError::unavailable()).into_response()
            };
        }
    };
    let mut guard = ProbeGuard(breaker, probe);
    let response = next.run(request).await;
    guard.1 = false;
    breaker.record(response.extensions().get::<DatabaseUnreachable>().is_some(), probe);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A breaker started a while ago, so that an open time of 1 ms is over.
    fn breaker() -> DatabaseBreaker {
        DatabaseBreaker { started: Instant::now().checked_sub(Duration::from_secs(1)).unwrap(), ..DatabaseBreaker::default() }
    }

    #[test]
    fn opens_on_an_unreachable_answer_then_lets_one_probe_through() {
        let breaker = breaker();
        assert_eq!(breaker.admit(), Admission::Pass);
        breaker.record(false, false);
        assert_eq!(breaker.admit(), Admission::Pass, "a good answer keeps it closed");
        breaker.record(true, false);
        assert_eq!(breaker.admit(), Admission::Refuse, "open");
        // Once the open time is over: one probe, the others still refused.
        breaker.open_until_ms.store(1, Ordering::Release);
        assert_eq!(breaker.admit(), Admission::Probe);
        assert_eq!(breaker.admit(), Admission::Refuse, "one probe at a time");
        breaker.record(true, true);
        assert_eq!(breaker.admit(), Admission::Refuse, "a failed probe opens it again");
        breaker.open_until_ms.store(1, Ordering::Release);
        assert_eq!(breaker.admit(), Admission::Probe);
        breaker.record(false, true);
        assert_eq!(breaker.admit(), Admission::Pass, "a good probe closes it");
        breaker.record(true, false);
        breaker.close();
        assert_eq!(breaker.admit(), Admission::Pass, "so does a good readiness check");
    }

    #[test]
    fn a_probe_dropped_before_its_answer_frees_the_next_one() {
        let breaker = breaker();
        breaker.open_until_ms.store(1, Ordering::Release);
        assert_eq!(breaker.admit(), Admission::Probe);
        drop(ProbeGuard(&breaker, true));
        assert_eq!(breaker.admit(), Admission::Probe);
    }
}
