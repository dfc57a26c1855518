//! The rules every new password passes, wherever it is chosen (sign-up, reset, change):
//! the policy (S4.1-S4.3), then the optional Pwned Passwords check (S4.4).

use crate::breached::{BreachedPasswords, check_not_breached};
use crate::password::{Password, PasswordPolicy, WeakPassword};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct NewPasswords {
    pub policy: PasswordPolicy,
    /// The optional Pwned Passwords check of new passwords (S4.4); `None` when off.
    pub breached: Option<Arc<dyn BreachedPasswords>>,
}

impl NewPasswords {
    /// `personal` are the account's own words (username, email) the password must not be.
    pub async fn check(&self, password: &Password, personal: &[&str]) -> Result<(), WeakPassword> {
        self.policy.check(password, personal)?;
        check_not_breached(self.breached.as_ref(), password).await
    }
}
