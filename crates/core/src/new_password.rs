//! The rules every new password passes, wherever it is chosen (sign-up, reset, change):
//! the policy (S4.1-S4.3), then the optional Pwned Passwords check (S4.4).

use crate::breached::{BreachedPasswords, FailOpenStore, PWNED_PASSWORDS_CHECK, Verdict, check_breached};
use crate::clock::Clock;
use crate::password::{Password, PasswordPolicy, WeakPassword};
use std::sync::Arc;

crate::storage_trait! {
    /// Where a Pwned Passwords check that failed open is counted.
    pub trait FailOpenStorage: FailOpenStore
}

#[derive(Debug, Clone)]
pub struct NewPasswords {
    pub policy: PasswordPolicy,
    /// The optional Pwned Passwords check of new passwords (S4.4); `None` when off.
    pub breached: Option<Arc<dyn BreachedPasswords>>,
    /// Where a check that failed open is counted, and when.
    pub fail_opens: Arc<dyn FailOpenStorage>,
    pub clock: Arc<dyn Clock>,
}

impl NewPasswords {
    /// `personal` are the account's own words (username, email) the password must not be.
    pub async fn check(&self, password: &Password, personal: &[&str]) -> Result<(), WeakPassword> {
        self.policy.check(password, personal)?;
        let verdict = check_breached(self.breached.as_ref(), password).await;
        if let Verdict::FailedOpen(error) = &verdict {
            // Counted for operators (`doorman mail status`); a failure to count changes nothing
            // for the person choosing the password.
            let counted = self.fail_opens.count_fail_open(PWNED_PASSWORDS_CHECK, &error.0, self.clock.unix()).await;
            if let Err(e) = counted {
                tracing::warn!(error = %e, "could not count a fail-open of the Pwned Passwords check");
            }
        }
        verdict.into_result()
    }
}
