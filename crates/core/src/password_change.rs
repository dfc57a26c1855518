//! Changing the password while signed in (checklist S4.6, S1.6, S7.7, S9.1): with the current
//! password, or within a fresh step-up. Every other session ends, every reset link dies, and
//! the owner is told.

use crate::account::Account;
use crate::audit::{AuditEvent, RequestContext};
use crate::auth::{AuthError, Services};
use crate::notice::Notice;
use crate::outbox::NewMessage;
use crate::password::Password;
use crate::session::SessionRecord;

impl Services {
    /// `current` is the current password, or `None` when the session stepped up recently (the
    /// web layer checks that). Returns how many other sessions ended.
    pub async fn change_password(
        &self,
        session: &SessionRecord,
        account: &Account,
        current: Option<&Password>,
        new_password: &Password,
        ctx: &RequestContext,
    ) -> Result<u64, AuthError> {
        let now = self.clock.unix();
        if let Some(current) = current {
            // Counted before it is compared, against the session's own budget (S3.7).
            let right = self.check_session_password(session, account, current, ctx).await.map_err(|e| match e {
                crate::two_step::TwoStepError::Throttled(wait) => AuthError::Throttled { retry_after_seconds: wait },
                crate::two_step::TwoStepError::Store(e) => AuthError::Store(e),
                crate::two_step::TwoStepError::Hash(e) => AuthError::Hash(e),
                _ => AuthError::InvalidCredentials,
            })?;
            if !right {
                self.audit(AuditEvent::PasswordChangeFailed, Some(&account.id), ctx, "wrong current password").await?;
                return Err(AuthError::InvalidCredentials);
            }
        }
        self.password_policy.check(new_password, &[account.username.as_str(), account.email.local_part()])?;
        self.check_not_breached(new_password).await?;
        let hash = self.hasher.hash(new_password).await?;
        let when = crate::clock::rfc2822(now);
        let content = self
            .composer
            .compose(&Notice::SecurityChange {
                username: account.username.as_str(),
                change: "Your password was changed, and every other session was signed out.",
                when: &when,
                ip: &ctx.ip.to_string(),
            })
            .map_err(|e| AuthError::Store(crate::store::StoreError::Backend(e.into())))?;
        let message = NewMessage::email(account.email.as_str(), "password_changed", Some(account.id.clone()), content, now);
        let ended = self.store.change_password(&account.id, &hash, &session.id_hash, &message, now).await?;
        self.audit(
            AuditEvent::PasswordChanged,
            Some(&account.id),
            ctx,
            if current.is_some() { "with the current password" } else { "after step-up" },
        )
        .await?;
        self.audit(AuditEvent::SessionsRevoked, Some(&account.id), ctx, &format!("{ended} ended by a password change")).await?;
        Ok(ended)
    }
}
