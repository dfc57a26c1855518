//! Retention (issue 13): nothing doorman stores grows without bound. Finished jobs and
//! messages are kept `finished_days`, expired sessions, tokens, codes and throttle counters a
//! day after they stop mattering, audit events `audit_days` (the chain keeps verifying, see
//! [`crate::audit_chain`]), and a resolved support case keeps its personal data (contact
//! address, details, notes, the request's hints) `cases_days`, then only its row and status.
//!
//! Pruning runs in batches of [`PRUNE_BATCH`] rows per statement with a pause between, so no
//! statement holds its locks for long, on SQLite and PostgreSQL alike; each statement reads an
//! index (migration 20261129000040).

use crate::audit_chain::Audit;
use crate::deps::Deps;
use crate::session::SessionPolicy;
use crate::store::StoreError;
use async_trait::async_trait;
use std::sync::Arc;

pub const DAY_SECONDS: i64 = 86_400;
pub use crate::batch::{PRUNE_BATCH, PRUNE_PAUSE, in_batches};
/// How long a row that stopped mattering (an expired session, token or code, a counter past
/// its window) is kept after, for operators looking into something that just happened.
pub const GRACE_SECONDS: i64 = DAY_SECONDS;
/// The longest window or cool-down of any throttle rule ([`crate::throttle`]): a counter
/// whose last failure is older than this limits nothing any more.
pub const LONGEST_THROTTLE_SECONDS: i64 = DAY_SECONDS;

/// What the retention settings allow (checked by the configuration at start-up).
pub const RETAIN_DAYS_RANGE: std::ops::RangeInclusive<i64> = 1..=36_500;

/// Kinds of rows pruned by age, each by one indexed statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Prunable {
    /// Jobs done or failed for good, `finished_days` after they were created.
    FinishedJobs,
    /// Messages sent or dead-lettered, `finished_days` after they were created.
    FinishedMessages,
    /// The per-day delivery counts of `doorman mail status`.
    DeliveryCounts,
    /// The per-day fail-open counts of `doorman mail status`.
    FailOpenCounts,
    /// Sessions idle past the idle timeout.
    IdleSessions,
    /// Sessions older than the absolute timeout.
    OldSessions,
    RateCounters,
    /// Reset links and codes, report links (used ones expire too).
    RecoveryTokens,
    OtpCodes,
    Approvals,
    EmailChanges,
    TrustedDevices,
    /// Recovery requests whose code was never confirmed (confirmed ones belong to a case).
    UnconfirmedRecoveryRequests,
    /// Status links sent with support's replies and closing notices, once expired.
    CaseStatusLinks,
}

impl Prunable {
    pub const ALL: [Prunable; 14] = [
        Prunable::FinishedJobs,
        Prunable::FinishedMessages,
        Prunable::DeliveryCounts,
        Prunable::FailOpenCounts,
        Prunable::IdleSessions,
        Prunable::OldSessions,
        Prunable::RateCounters,
        Prunable::RecoveryTokens,
        Prunable::OtpCodes,
        Prunable::Approvals,
        Prunable::EmailChanges,
        Prunable::TrustedDevices,
        Prunable::UnconfirmedRecoveryRequests,
        Prunable::CaseStatusLinks,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Prunable::FinishedJobs => "finished jobs",
            Prunable::FinishedMessages => "finished messages",
            Prunable::DeliveryCounts => "delivery counts",
            Prunable::FailOpenCounts => "fail-open counts",
            Prunable::IdleSessions => "idle sessions",
            Prunable::OldSessions => "sessions past their absolute timeout",
            Prunable::RateCounters => "rate counters",
            Prunable::RecoveryTokens => "recovery tokens",
            Prunable::OtpCodes => "one-time codes",
            Prunable::Approvals => "approvals",
            Prunable::EmailChanges => "email changes",
            Prunable::TrustedDevices => "trusted devices",
            Prunable::UnconfirmedRecoveryRequests => "unconfirmed recovery requests",
            Prunable::CaseStatusLinks => "expired case status links",
        }
    }
}

#[async_trait]
pub trait RetentionStore: Send + Sync {
    /// Deletes up to `limit` rows of `what` whose time (see [`Prunable`]) is before `before`;
    /// returns how many.
    async fn prune_batch(&self, what: Prunable, before: i64, limit: i64) -> Result<u64, StoreError>;
    /// Blanks the personal data of up to `limit` cases resolved before `resolved_before`, and
    /// marks them erased at `now`; returns how many.
    async fn erase_resolved_cases(&self, resolved_before: i64, now: i64, limit: i64) -> Result<u64, StoreError>;
}

/// How long things are kept, in days (`DOORMAN_RETAIN_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub finished_days: i64,
    pub audit_days: i64,
    pub cases_days: i64,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self { finished_days: 7, audit_days: 365, cases_days: 180 }
    }
}

/// What one prune removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Rows deleted per kind, in [`Prunable::ALL`] order.
    pub removed: Vec<(Prunable, u64)>,
    pub cases_erased: u64,
    pub audit_events: u64,
}

impl PruneReport {
    pub fn removed_of(&self, what: Prunable) -> u64 {
        self.removed.iter().find(|(w, _)| *w == what).map_or(0, |(_, n)| *n)
    }
}

crate::storage_trait! {
    /// The storage `Retention` prunes (the audit log's through `Audit`).
    pub trait RetentionStorage: RetentionStore
}

#[derive(Debug, Clone)]
pub struct Retention {
    deps: Deps,
    store: Arc<dyn RetentionStorage>,
    audit: Audit,
    policy: RetentionPolicy,
    sessions: SessionPolicy,
}

impl Retention {
    pub fn new(deps: Deps, store: Arc<dyn RetentionStorage>, audit: Audit, policy: RetentionPolicy, sessions: SessionPolicy) -> Self {
        Self { deps, store, audit, policy, sessions }
    }

    pub fn policy(&self) -> RetentionPolicy {
        self.policy
    }

    /// The time before which rows of `what` are pruned.
    pub fn cutoff(&self, what: Prunable, now: i64) -> i64 {
        match what {
            Prunable::FinishedJobs | Prunable::FinishedMessages | Prunable::DeliveryCounts | Prunable::FailOpenCounts => {
                now - self.policy.finished_days * DAY_SECONDS
            }
            Prunable::IdleSessions => now - self.sessions.idle_timeout_seconds - GRACE_SECONDS,
            Prunable::OldSessions => now - self.sessions.absolute_timeout_seconds - GRACE_SECONDS,
            Prunable::RateCounters => now - LONGEST_THROTTLE_SECONDS - GRACE_SECONDS,
            Prunable::RecoveryTokens
            | Prunable::OtpCodes
            | Prunable::Approvals
            | Prunable::EmailChanges
            | Prunable::TrustedDevices
            | Prunable::UnconfirmedRecoveryRequests
            | Prunable::CaseStatusLinks => now - GRACE_SECONDS,
        }
    }

    /// One full pass: every kind of row, the cases, then the audit log.
    pub async fn prune_once(&self) -> Result<PruneReport, StoreError> {
        let now = self.deps.clock.unix();
        let store = &self.store;
        let mut report = PruneReport::default();
        for what in Prunable::ALL {
            let before = self.cutoff(what, now);
            let removed = in_batches(|| store.prune_batch(what, before, PRUNE_BATCH)).await?;
            report.removed.push((what, removed));
        }
        let resolved_before = now - self.policy.cases_days * DAY_SECONDS;
        report.cases_erased = in_batches(|| store.erase_resolved_cases(resolved_before, now, PRUNE_BATCH)).await?;
        report.audit_events = self.audit.prune_audit_log(now - self.policy.audit_days * DAY_SECONDS, now).await?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::throttle::ThrottleRule;

    /// The counters' grace relies on no rule looking further back than a day.
    #[test]
    fn no_throttle_rule_looks_back_further_than_the_counters_are_kept() {
        let account = crate::account::AccountId::from_stored("a".into());
        let ip = std::net::IpAddr::from([192, 0, 2, 1]);
        let keys = crate::throttle::login_keys("x", ip).into_iter();
        for key in keys.chain([crate::throttle::account_cap(&account), crate::throttle::device_cap("d")]) {
            let (window, wait) = match key.rule {
                ThrottleRule::Budget { window, cooldown, .. } => (window, cooldown),
                ThrottleRule::GrowingDelay { window, max_delay, .. } => (window, max_delay),
            };
            assert!(window <= LONGEST_THROTTLE_SECONDS && wait <= LONGEST_THROTTLE_SECONDS, "{key:?}");
        }
    }
}
