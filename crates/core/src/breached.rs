//! The optional Pwned Passwords check (checklist S4.4): a new password that has appeared in
//! a data breach is refused, because attackers try those first. The shipped list of common
//! passwords (`password.rs`) is always checked; this one is on only when the operator points
//! doorman at the offline SHA-1 file or at the k-anonymity range API (the server crate's
//! `breached.rs` has both).
//!
//! **It fails open.** When the check itself cannot run (file unreadable, API down, slow or
//! answering nonsense) the password is accepted, having passed every other rule, and a warning
//! is logged. The check is a second line of defence beside the shipped list; refusing every
//! new password (and so every reset) while a third-party service is down would lock people
//! out of their accounts, which is worse than letting one breached password through.

use crate::password::{Password, WeakPassword};
use crate::store::StoreError;
use async_trait::async_trait;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

/// Where breached passwords are looked up.
#[async_trait]
pub trait BreachedPasswords: Send + Sync + Debug {
    /// How many times the password was seen in breaches, `None` when never. Implementations
    /// must never log, send or put into an error the password or its full hash.
    async fn times_seen(&self, password: &Password) -> Result<Option<u64>, BreachCheckError>;
}

/// The check could not be made. The message says what failed (a file, an HTTP status), never
/// the password or its hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the Pwned Passwords check failed: {0}")]
pub struct BreachCheckError(pub String);

impl BreachCheckError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// A bound on any one check, whatever the implementation does (the range API has its own
/// 3-second timeout); past it the password is accepted.
pub const CHECK_DEADLINE: Duration = Duration::from_secs(5);

/// Refuses a password seen in breaches; accepts it when no check is configured or the check
/// fails (see the module documentation: fail open).
pub async fn check_not_breached(checker: Option<&Arc<dyn BreachedPasswords>>, password: &Password) -> Result<(), WeakPassword> {
    check_breached(checker, password).await.into_result()
}

/// What the check said of a new password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not seen in breaches, or no check configured.
    Accepted,
    Breached,
    /// The check could not be made: accepted anyway (fail open), and counted by the caller.
    FailedOpen(BreachCheckError),
}

impl Verdict {
    pub fn into_result(self) -> Result<(), WeakPassword> {
        match self {
            Verdict::Breached => Err(WeakPassword::Breached),
            Verdict::Accepted | Verdict::FailedOpen(_) => Ok(()),
        }
    }
}

/// The check, with how it ended.
pub async fn check_breached(checker: Option<&Arc<dyn BreachedPasswords>>, password: &Password) -> Verdict {
    check_within(checker, password, CHECK_DEADLINE).await
}

async fn check_within(checker: Option<&Arc<dyn BreachedPasswords>>, password: &Password, deadline: Duration) -> Verdict {
    let Some(checker) = checker else { return Verdict::Accepted };
    let outcome = match tokio::time::timeout(deadline, checker.times_seen(password)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(BreachCheckError::new(format!("no answer within {} ms", deadline.as_millis()))),
    };
    match outcome {
        Ok(Some(seen)) if seen > 0 => Verdict::Breached,
        Ok(_) => Verdict::Accepted,
        Err(error) => {
            tracing::warn!(%error, "accepting the new password without the Pwned Passwords check (fail open)");
            Verdict::FailedOpen(error)
        }
    }
}

/// The name fail-open counts of the Pwned Passwords check are stored under.
pub const PWNED_PASSWORDS_CHECK: &str = "pwned_passwords";

/// How often one check failed open on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailOpenCount {
    pub check: String,
    /// 00:00 UTC of the day, Unix seconds.
    pub day: i64,
    pub failures: i64,
    /// What failed last (a file, a host, a status), never a password or hash.
    pub last_error: Option<String>,
}

/// Fail-open counts, shared by every replica (shown by `doorman mail status`).
#[async_trait]
pub trait FailOpenStore: Send + Sync {
    /// Counts one fail-open of `check` under the UTC day of `now`.
    async fn count_fail_open(&self, check: &str, error: &str, now: i64) -> Result<(), StoreError>;
    /// The counts of the days from `since_day` on, newest first.
    async fn fail_open_since(&self, since_day: i64) -> Result<Vec<FailOpenCount>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Fixed(Result<Option<u64>, BreachCheckError>);

    #[async_trait]
    impl BreachedPasswords for Fixed {
        async fn times_seen(&self, _: &Password) -> Result<Option<u64>, BreachCheckError> {
            self.0.clone()
        }
    }

    #[derive(Debug)]
    struct Hangs;

    #[async_trait]
    impl BreachedPasswords for Hangs {
        async fn times_seen(&self, _: &Password) -> Result<Option<u64>, BreachCheckError> {
            std::future::pending().await
        }
    }

    fn checker(answer: Result<Option<u64>, BreachCheckError>) -> Arc<dyn BreachedPasswords> {
        Arc::new(Fixed(answer))
    }

    #[tokio::test]
    async fn s4_4_breached_passwords_are_refused_and_failures_accepted() {
        let password = Password::new("correct horse battery staple 42").expect("password");
        assert_eq!(check_not_breached(None, &password).await, Ok(()), "off unless configured");
        assert_eq!(check_not_breached(Some(&checker(Ok(Some(3)))), &password).await, Err(WeakPassword::Breached));
        assert_eq!(check_not_breached(Some(&checker(Ok(None))), &password).await, Ok(()));
        assert_eq!(check_not_breached(Some(&checker(Ok(Some(0)))), &password).await, Ok(()), "a count of 0 is padding");
        let down = checker(Err(BreachCheckError::new("connection refused")));
        assert_eq!(check_not_breached(Some(&down), &password).await, Ok(()), "fail open");
        assert_eq!(
            check_breached(Some(&down), &password).await,
            Verdict::FailedOpen(BreachCheckError::new("connection refused")),
            "told apart, to be counted"
        );
        assert_eq!(check_breached(Some(&checker(Ok(None))), &password).await, Verdict::Accepted);
        assert!(WeakPassword::Breached.to_string().contains("data breach"));
    }

    #[tokio::test]
    async fn s4_4_a_check_that_never_answers_is_given_up_and_the_password_accepted() {
        let password = Password::new("correct horse battery staple 42").expect("password");
        let hangs: Arc<dyn BreachedPasswords> = Arc::new(Hangs);
        let verdict = check_within(Some(&hangs), &password, Duration::from_millis(50)).await;
        assert!(matches!(&verdict, Verdict::FailedOpen(e) if e.0.contains("no answer")), "{verdict:?}");
        assert_eq!(verdict.into_result(), Ok(()));
    }
}
