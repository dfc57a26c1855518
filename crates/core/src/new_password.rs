//! The rules every new password passes, wherever it is chosen (sign-up, reset, change):
//! the policy (S4.1-S4.3), then the optional Pwned Passwords check (S4.4).

use crate::breached::{BreachedPasswords, PWNED_PASSWORDS_CHECK, Verdict, check_breached};
use crate::deps::Deps;
use crate::password::{Password, PasswordPolicy, WeakPassword};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct NewPasswords {
    pub policy: PasswordPolicy,
    /// The optional Pwned Passwords check of new passwords (S4.4); `None` when off.
    pub breached: Option<Arc<dyn BreachedPasswords>>,
    /// Where a check that failed open is counted.
    pub deps: Deps,
}

impl NewPasswords {
    /// `personal` are the account's own words (username, email) the password must not be.
    pub async fn check(&self, password: &Password, personal: &[&str]) -> Result<(), WeakPassword> {
        self.policy.check(password, personal)?;
        let verdict = check_breached(self.breached.as_ref(), password).await;
        if let Verdict::FailedOpen(error) = &verdict {
            // Counted for operators (`doorman mail status`); a failure to count changes nothing
            // for the person choosing the password.
            let counted = self.deps.store.count_fail_open(PWNED_PASSWORDS_CHECK, &error.0, self.deps.now()).await;
            if let Err(e) = counted {
                tracing::warn!(error = %e, "could not count a fail-open of the Pwned Passwords check");
            }
        }
        verdict.into_result()
    }
}
