//! Changing the account's email address (checklist S7.6, S9.1, S9.3): after a step-up, a
//! link goes to the new address; following it and confirming moves the account, and the old
//! address is told. The requester never learns whether the new address has an account.

use crate::account::{Account, AccountId, EmailAddress};
use crate::audit::{AuditEvent, RequestContext};
use crate::deps::Deps;
use crate::keyring::Keyring;
use crate::notice::Notice;
use crate::outbox::NewMessage;
use crate::step_up::{NotYourProof, SteppedUp};
use crate::store::StoreError;
use crate::throttle::{ThrottleKey, ThrottleRule};
use crate::token::RecoveryToken;
use async_trait::async_trait;
use std::sync::Arc;

crate::storage_trait! {
    /// The storage `EmailChange` reads and writes.
    pub trait EmailChangeStorage:
        crate::store::AccountStore,
        crate::report_link::ReportLinkStore,
        EmailChangeStore,
        crate::reset_hold::ResetHoldStore,
}

/// How long the link to the new address works.
pub const EMAIL_CHANGE_TTL_SECONDS: i64 = 24 * 3600;

pub struct NewEmailChange {
    pub id: String,
    pub account_id: AccountId,
    pub new_email: EmailAddress,
    pub token_hash: String,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Debug)]
pub enum EmailChangeOutcome {
    Changed {
        account: Account,
        old_email: EmailAddress,
    },
    /// The link is unknown, used, replaced or expired.
    InvalidToken,
    /// Someone took the address in the meantime.
    AddressTaken,
}

#[async_trait]
pub trait EmailChangeStore: Send + Sync {
    /// In one transaction: voids the account's pending changes, stores this one and writes
    /// the message to the new address.
    async fn insert_email_change(&self, change: &NewEmailChange, message: &NewMessage) -> Result<(), StoreError>;
    /// In one transaction: redeems the link, moves the account to the new address, voids its
    /// reset links, and writes the notice to the old address (composed by `notice`).
    async fn complete_email_change(
        &self,
        token_hash: &str,
        now: i64,
        notice: &(dyn for<'n> Fn(&'n Account, &'n EmailAddress) -> Option<NewMessage> + Send + Sync),
    ) -> Result<EmailChangeOutcome, StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum EmailChangeError {
    #[error("That is already your email address.")]
    Same,
    #[error("Too many changes asked for. Try again in {}.", crate::clock::in_words(*.0))]
    TooMany(i64),
    #[error("This confirmation link is not valid any more: it was used, replaced by a newer one, or has expired.")]
    InvalidToken,
    #[error("That email address is already in use.")]
    AddressTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("composing the email failed: {0}")]
    Compose(String),
    #[error(transparent)]
    NotYourProof(#[from] NotYourProof),
    #[error(transparent)]
    ResetWaiting(#[from] crate::reset_hold::ResetWaiting),
}

/// An email-change link's token as a request brings it: a [`RecoveryToken`] of this purpose,
/// so that one that cannot be a token gets this link's answer at the edge, not a reset link's.
#[derive(Debug)]
pub struct EmailChangeToken(RecoveryToken);

impl EmailChangeToken {
    pub fn token(&self) -> &RecoveryToken {
        &self.0
    }
}

impl<'de> serde::Deserialize<'de> for EmailChangeToken {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let typed = crate::input::text(deserializer)?;
        let token = RecoveryToken::parse(secrecy::ExposeSecret::expose_secret(&typed));
        token.map(Self).ok_or_else(|| crate::input::refuse(EmailChangeError::InvalidToken))
    }
}

fn token_hash(keys: &Keyring, token: &RecoveryToken) -> String {
    keys.token_hash("email-change", token.expose())
}

/// Moving an account to a new email address.
#[derive(Debug, Clone)]
pub struct EmailChange {
    deps: Deps,
    store: Arc<dyn EmailChangeStorage>,
}

impl EmailChange {
    pub fn new(deps: Deps, store: Arc<dyn EmailChangeStorage>) -> Self {
        Self { store, deps }
    }

    /// Sends a confirmation link to the new address (or, when it already has an account, a
    /// note saying so), and answers the same either way. Needs this account's step-up (S7.6).
    pub async fn request_email_change(
        &self,
        by: &SteppedUp,
        account: &Account,
        new_email: &EmailAddress,
        ctx: &RequestContext,
    ) -> Result<(), EmailChangeError> {
        by.check_owner(&account.id)?;
        crate::reset_hold::refuse_while_waiting(&*self.store, &account.id).await??;
        if new_email == &account.email {
            return Err(EmailChangeError::Same);
        }
        let now = self.deps.clock.unix();
        let cap = [ThrottleKey {
            key: format!("email-change:{}", account.id),
            rule: ThrottleRule::Budget { limit: 5, window: 86_400, cooldown: 86_400 },
        }];
        if let Some(wait) = self.deps.claim(&cap).await? {
            return Err(EmailChangeError::TooMany(wait));
        }

        let taken = self.store.find_for_login(new_email.as_str()).await?.is_some();
        let token = RecoveryToken::generate(&self.deps.keys);
        let link = format!("{}account/email/confirm?token={}", self.deps.base_url, token.expose());
        let notice = if taken {
            Notice::EmailInUse { username: account.username.as_str() }
        } else {
            Notice::EmailChangeConfirm { username: account.username.as_str(), link: &link, new_email: new_email.as_str() }
        };
        let content = self.deps.composer.compose(&notice).map_err(EmailChangeError::Compose)?;
        let message = NewMessage::email(new_email.as_str(), "email_change", Some(account.id.clone()), content, now);
        let change = NewEmailChange {
            id: uuid::Uuid::new_v4().to_string(),
            account_id: account.id.clone(),
            new_email: new_email.clone(),
            // A taken address gets no working link: its token is never sent.
            token_hash: if taken {
                token_hash(&self.deps.keys, &RecoveryToken::generate(&self.deps.keys))
            } else {
                token_hash(&self.deps.keys, &token)
            },
            created_at: now,
            expires_at: now + EMAIL_CHANGE_TTL_SECONDS,
        };
        self.store.insert_email_change(&change, &message).await?;
        self.deps
            .audit(AuditEvent::EmailChangeRequested, Some(&account.id), ctx, if taken { "address in use" } else { "link sent" })
            .await?;
        Ok(())
    }

    /// Confirms with the link's token; the old address is told (S9.1, S9.3).
    pub async fn confirm_email_change(&self, token: &RecoveryToken, ctx: &RequestContext) -> Result<Account, EmailChangeError> {
        let now = self.deps.clock.unix();
        let when = crate::clock::rfc2822(now);
        let ip = ctx.ip.to_string();
        let composer = self.deps.composer.clone();
        // "This wasn't me" on the old address: its token is stored once the account is known.
        let report = RecoveryToken::generate(&self.deps.keys);
        let report_link = crate::report_link::link_of(&self.deps, &report);
        let notice = move |account: &Account, old: &EmailAddress| {
            let change = format!("The email address of your account was changed from {} to {}.", old.as_str(), account.email.as_str());
            let content = composer
                .compose(&Notice::SecurityChange {
                    username: account.username.as_str(),
                    change: &change,
                    when: &when,
                    ip: &ip,
                    report_link: &report_link,
                })
                .ok()?;
            Some(NewMessage::email(old.as_str(), "email_changed", Some(account.id.clone()), content, now))
        };
        match self.store.complete_email_change(&token_hash(&self.deps.keys, token), now, &notice).await? {
            EmailChangeOutcome::Changed { account, old_email } => {
                let event = crate::report_link::ReportedEvent::EmailChanged { old_email: old_email.as_str().to_owned() };
                let record = crate::report_link::token_record(&self.deps, &report, &account.id, event, now);
                self.store.insert_report_token(&record).await?;
                // The entry names its report token: a report from the activity page rolls
                // back what this email's link would.
                self.deps.audit(AuditEvent::EmailChanged, Some(&account.id), ctx, &format!("report={}", record.id)).await?;
                Ok(account)
            }
            EmailChangeOutcome::InvalidToken => Err(EmailChangeError::InvalidToken),
            EmailChangeOutcome::AddressTaken => Err(EmailChangeError::AddressTaken),
        }
    }
}
