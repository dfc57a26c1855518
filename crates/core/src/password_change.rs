//! Changing the password while signed in (checklist S4.6, S1.6, S7.7, S9.1): with the current
//! password, or within a fresh step-up. Every other session ends, every reset link dies, and
//! the owner is told.

use crate::account::Account;
use crate::audit::{AuditEvent, RequestContext};
use crate::auth::AuthError;
use crate::deps::Deps;
use crate::new_password::NewPasswords;
use crate::notice::Notice;
use crate::outbox::NewMessage;
use crate::password::Password;
use crate::session::SessionRecord;
use crate::step_up::SteppedUp;
use crate::verifier::{TwoStepError, Verifier};
use std::sync::Arc;

crate::storage_trait! {
    /// The storage `PasswordChange` reads and writes.
    pub trait PasswordChangeStorage:
        crate::token::RecoveryStore,
        crate::reset_hold::ResetHoldStore,
        crate::report_link::ReportLinkStore,
}

/// What allows a password change: the current password, or this account's recent step-up.
#[derive(Clone, Copy)]
pub enum ChangeAllowedBy<'a> {
    CurrentPassword(&'a Password),
    SteppedUp(&'a SteppedUp),
}

#[derive(Debug, Clone)]
pub struct PasswordChange {
    deps: Deps,
    store: Arc<dyn PasswordChangeStorage>,
    verifier: Verifier,
    passwords: NewPasswords,
}

impl PasswordChange {
    pub fn new(deps: Deps, store: Arc<dyn PasswordChangeStorage>, verifier: Verifier, passwords: NewPasswords) -> Self {
        Self { store, deps, verifier, passwords }
    }

    /// The rules a new password must pass (shown on the form).
    pub fn passwords(&self) -> &NewPasswords {
        &self.passwords
    }

    /// Returns how many other sessions ended.
    pub async fn change_password(
        &self,
        session: &SessionRecord,
        account: &Account,
        allowed_by: ChangeAllowedBy<'_>,
        new_password: &Password,
        ctx: &RequestContext,
    ) -> Result<u64, AuthError> {
        let now = self.deps.now();
        crate::reset_hold::refuse_while_waiting(&*self.store, &account.id).await??;
        match allowed_by {
            ChangeAllowedBy::CurrentPassword(current) => {
                // Counted before it is compared, against the session's own budget (S3.7).
                let right = self.verifier.check_session_password(session, account, current, ctx).await.map_err(|e| match e {
                    TwoStepError::Throttled(wait) => AuthError::Throttled { retry_after_seconds: wait },
                    TwoStepError::Store(e) => AuthError::Store(e),
                    TwoStepError::Hash(e) => AuthError::Hash(e),
                    _ => AuthError::InvalidCredentials,
                })?;
                if !right {
                    self.deps.audit(AuditEvent::PasswordChangeFailed, Some(&account.id), ctx, "wrong current password").await?;
                    return Err(AuthError::InvalidCredentials);
                }
            }
            ChangeAllowedBy::SteppedUp(proof) => proof.check_owner(&account.id)?,
        }
        self.passwords.check(new_password, &[account.username.as_str(), account.email.local_part()]).await?;
        let hash = self.deps.hasher.hash(new_password).await?;
        let when = crate::clock::rfc2822(now);
        let report_link =
            crate::report_link::report_link(&self.deps, &*self.store, &account.id, crate::report_link::ReportedEvent::PasswordChanged)
                .await?;
        let content = self
            .deps
            .composer
            .compose(&Notice::SecurityChange {
                username: account.username.as_str(),
                change: "Your password was changed, and every other session was signed out.",
                when: &when,
                ip: &ctx.ip.to_string(),
                report_link: &report_link,
            })
            .map_err(|e| AuthError::Store(crate::store::StoreError::Backend(e.into())))?;
        let message = NewMessage::email(account.email.as_str(), "password_changed", Some(account.id.clone()), content, now);
        let ended = self.store.change_password(&account.id, &hash, &session.id_hash, &message, now).await?;
        let how = match allowed_by {
            ChangeAllowedBy::CurrentPassword(_) => "with the current password",
            ChangeAllowedBy::SteppedUp(_) => "after step-up",
        };
        self.deps.audit(AuditEvent::PasswordChanged, Some(&account.id), ctx, how).await?;
        self.deps.audit(AuditEvent::SessionsRevoked, Some(&account.id), ctx, &format!("{ended} ended by a password change")).await?;
        Ok(ended)
    }
}
