//! A 2-step reset after a waiting period (issue 11 §2): someone who knows the password and
//! reads the account's email, but lost every 2-step method, gets back in after a wait.
//!
//! 1. From a half-signed-in session (the password was given), a confirm link goes to the
//!    account's address ([`TwoStepReset::request`]).
//! 2. The link starts the wait ([`TwoStepReset::confirm`]): every channel on file is told at
//!    once (the email carries a cancel link; each phone a text with no link). The "finish"
//!    email is written in the same transaction, due when the wait ends, and the outbox worker
//!    sends it then (a cancel deletes it and voids its token).
//! 3. After the wait, the finish link plus a half-signed-in session of the account in the
//!    same browser mints [`WaitElapsed`], which [`TwoStepReset::complete`] spends to remove
//!    every method and recovery code and end every session.
//!
//! A cancel (by the link, or by any login that passes a second step) blocks a new request
//! for [`COOL_OFF_SECONDS`]. While a reset waits, the other features refuse sensitive
//! changes ([`crate::reset_hold`]). Email access alone never removes 2-step: the password
//! is needed to start and to finish.

use crate::account::{Account, AccountId};
use crate::audit::{AuditEvent, RequestContext};
use crate::deps::Deps;
use crate::factors::FactorKind;
use crate::notice::Notice;
use crate::outbox::NewMessage;
use crate::report_link::{ReportedEvent, report_link};
use crate::reset_hold::cancelled_notice;
use crate::session::{SessionRecord, SessionStage, SessionToken};
use crate::store::StoreError;
use crate::throttle::{ThrottleKey, ThrottleRule};
use crate::token::RecoveryToken;
use async_trait::async_trait;
use std::sync::Arc;

crate::storage_trait! {
    /// The storage `TwoStepReset` reads and writes.
    pub trait TwoStepResetStorage:
        crate::store::AccountStore,
        crate::factors::FactorStore,
        TwoStepResetStore,
        crate::reset_hold::ResetHoldStore,
        crate::report_link::ReportLinkStore,
        crate::sign_in::SignInStorage,
}

/// How long the confirm link works.
pub const CONFIRM_TTL_SECONDS: i64 = 24 * 3600;
/// After a cancelled wait, how long a new request is refused (so neither side can loop).
pub const COOL_OFF_SECONDS: i64 = 7 * 86_400;

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetState {
    /// The confirm link was sent; no wait yet.
    Requested,
    /// Confirmed: the wait runs until `ready_at` (and past it, until finished or cancelled).
    Waiting,
    Cancelled,
    Completed,
}

impl ResetState {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Waiting => "waiting",
            Self::Cancelled => "cancelled",
            Self::Completed => "completed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Requested, Self::Waiting, Self::Cancelled, Self::Completed].into_iter().find(|v| v.as_str() == s)
    }
}

/// A stored request (no token: only keyed hashes are stored, and never handed out).
#[derive(Debug, Clone)]
pub struct TwoStepResetRecord {
    pub id: String,
    pub account_id: AccountId,
    pub state: ResetState,
    pub created_at: i64,
    pub confirm_expires_at: i64,
    pub ready_at: Option<i64>,
    pub ended_at: Option<i64>,
}

/// Which of a request's links a token is: each is hashed under its own purpose (S1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetLink {
    Confirm,
    Cancel,
    Finish,
}

impl ResetLink {
    fn purpose(self) -> &'static str {
        match self {
            Self::Confirm => "two-step-reset:confirm",
            Self::Cancel => "two-step-reset:cancel",
            Self::Finish => "two-step-reset:finish",
        }
    }
}

pub struct NewTwoStepReset {
    pub id: String,
    pub account_id: AccountId,
    pub confirm_hash: String,
    pub created_at: i64,
    pub confirm_expires_at: i64,
}

/// What starting the wait stores.
pub struct StartWait {
    pub ready_at: i64,
    pub cancel_hash: String,
    pub finish_hash: String,
    /// The finish email's outbox id (a cancel deletes it while it waits).
    pub finish_message_id: String,
}

#[async_trait]
pub trait TwoStepResetStore: Send + Sync {
    /// The newest request of the account.
    async fn latest_two_step_reset(&self, account: &AccountId) -> Result<Option<TwoStepResetRecord>, StoreError>;
    /// When the newest cancelled *wait* (a confirmed request) of the account was cancelled.
    async fn last_cancelled_wait(&self, account: &AccountId) -> Result<Option<i64>, StoreError>;
    /// In one transaction: `false` when a wait already runs; else voids the account's
    /// unconfirmed requests, stores this one and writes the confirm email.
    async fn insert_two_step_reset(&self, reset: &NewTwoStepReset, message: &NewMessage) -> Result<bool, StoreError>;
    /// The live request one of its links names (`Confirm`: requested and unexpired;
    /// `Cancel` and `Finish`: waiting).
    async fn find_two_step_reset(&self, link: ResetLink, hash: &str, now: i64) -> Result<Option<TwoStepResetRecord>, StoreError>;
    /// In one statement, redeems the confirm link (one of concurrent clicks wins) and starts
    /// the wait unless another runs; writes the messages (the finish email among them, due
    /// at `ready_at`).
    async fn start_two_step_wait(
        &self,
        id: &str,
        confirm_hash: &str,
        now: i64,
        wait: &StartWait,
        messages: &[NewMessage],
    ) -> Result<bool, StoreError>;
    /// In one transaction: redeems the finish link of a waiting request whose wait is over,
    /// removes every 2-step method and recovery code of the account, ends its sessions and
    /// trusted devices, and writes the messages. `false` when it could not be redeemed.
    async fn complete_two_step_reset(&self, id: &str, finish_hash: &str, now: i64, messages: &[NewMessage]) -> Result<bool, StoreError>;
}

/// Proof that a confirmed 2-step reset's wait is over, its finish link was redeemed and the
/// account's password was just given (a half-signed-in session of the account). Private
/// fields and no public constructor: only [`TwoStepReset::complete`] makes one, and the
/// removal of the methods takes it by value. It is never a `SteppedUp`.
#[derive(Debug)]
pub struct WaitElapsed {
    account: AccountId,
    reset_id: String,
}

impl WaitElapsed {
    pub fn account(&self) -> &AccountId {
        &self.account
    }
}

/// A 2-step reset link's token as a request brings it.
#[derive(Debug)]
pub struct TwoStepResetToken(RecoveryToken);

impl TwoStepResetToken {
    pub fn new(token: RecoveryToken) -> Self {
        Self(token)
    }
    pub fn token(&self) -> &RecoveryToken {
        &self.0
    }
}

impl<'de> serde::Deserialize<'de> for TwoStepResetToken {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let typed = crate::input::text(deserializer)?;
        let token = RecoveryToken::parse(secrecy::ExposeSecret::expose_secret(&typed));
        token.map(Self).ok_or_else(|| crate::input::refuse(TwoStepResetError::InvalidToken))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TwoStepResetError {
    #[error("This link is not valid any more: it was used, cancelled, replaced by a newer one, or has expired.")]
    InvalidToken,
    #[error("The waiting period is not over yet. You can finish the 2-step reset after {}.", crate::clock::rfc2822(*.0))]
    NotReady(i64),
    #[error("A 2-step reset is already under way for this account. Its status is on this page; the email we sent says how to cancel it.")]
    AlreadyRunning,
    #[error(
        "A 2-step reset of this account was cancelled recently, so a new one cannot start before {}. If you still cannot sign in, ask support at /recovery-request: they check that it is you.",
        crate::clock::rfc2822(*.0)
    )]
    RecentlyCancelled(i64),
    #[error("Too many requests. Try again in {}.", crate::clock::in_words(*.0))]
    TooMany(i64),
    #[error("Log in with your password first: this step needs the password, given in this browser.")]
    PasswordFirst,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("composing a message failed: {0}")]
    Compose(String),
}

/// Where the account's reset stands, for the status page and API.
#[derive(Debug, Clone)]
pub struct ResetStatus {
    /// `none`, `email_sent`, `waiting`, `ready`, `cancelled` or `completed`.
    pub status: &'static str,
    pub ready_at: Option<i64>,
    pub remaining_seconds: Option<i64>,
    /// After a cancel: when a new request may start.
    pub new_request_after: Option<i64>,
}

/// The 2-step reset after a waiting period.
#[derive(Debug, Clone)]
pub struct TwoStepReset {
    deps: Deps,
    store: Arc<dyn TwoStepResetStorage>,
    wait_seconds: i64,
}

impl TwoStepReset {
    pub fn new(deps: Deps, store: Arc<dyn TwoStepResetStorage>, wait_seconds: i64) -> Self {
        Self { store, deps, wait_seconds }
    }

    pub fn wait_seconds(&self) -> i64 {
        self.wait_seconds
    }

    fn hash(&self, link: ResetLink, token: &RecoveryToken) -> String {
        self.deps.keys.token_hash(link.purpose(), token.expose())
    }

    fn email(&self, account: &Account, kind: &'static str, subject: &str, body: &str, now: i64) -> Result<NewMessage, TwoStepResetError> {
        let content = self
            .deps
            .composer
            .compose(&Notice::Personal { username: account.username.as_str(), subject, body })
            .map_err(TwoStepResetError::Compose)?;
        Ok(NewMessage::email(account.email.as_str(), kind, Some(account.id.clone()), content, now))
    }

    /// A text to every confirmed phone of the account: no link, ever.
    async fn texts(&self, account: &Account, text: &str, now: i64) -> Result<Vec<NewMessage>, TwoStepResetError> {
        let content = self.deps.composer.compose(&Notice::TwoStepResetText { text }).map_err(TwoStepResetError::Compose)?;
        let factors = self.store.factors_of(&account.id).await?;
        Ok(factors
            .iter()
            .filter(|f| f.kind == FactorKind::Sms && f.confirmed_at.is_some())
            .map(|f| NewMessage::sms(f.secret.expose(), "two_step_reset_text", Some(account.id.clone()), content.clone(), now))
            .collect())
    }

    /// Where the account's reset stands.
    pub async fn status(&self, account: &Account) -> Result<ResetStatus, TwoStepResetError> {
        let now = self.deps.now();
        let latest = self.store.latest_two_step_reset(&account.id).await?;
        let cancelled = self.store.last_cancelled_wait(&account.id).await?;
        let new_request_after = cancelled.map(|at| at + COOL_OFF_SECONDS).filter(|until| *until > now);
        let none = ResetStatus { status: "none", ready_at: None, remaining_seconds: None, new_request_after };
        let Some(latest) = latest else { return Ok(none) };
        Ok(match latest.state {
            ResetState::Requested if latest.confirm_expires_at > now => ResetStatus { status: "email_sent", ..none },
            ResetState::Requested => none,
            ResetState::Waiting => {
                let ready_at = latest.ready_at.unwrap_or(now);
                let status = if ready_at <= now { "ready" } else { "waiting" };
                ResetStatus { status, ready_at: Some(ready_at), remaining_seconds: Some((ready_at - now).max(0)), new_request_after: None }
            }
            ResetState::Cancelled if new_request_after.is_some() => ResetStatus { status: "cancelled", ..none },
            ResetState::Cancelled => none,
            ResetState::Completed => ResetStatus { status: "completed", ..none },
        })
    }

    /// Step 1: from a half-signed-in session (the password was given), sends the confirm
    /// link to the account's address. One running request per account; none for a week
    /// after a cancelled wait.
    pub async fn request(&self, pending: &SessionRecord, account: &Account, ctx: &RequestContext) -> Result<(), TwoStepResetError> {
        if pending.stage != SessionStage::SecondFactor || pending.account_id != account.id {
            return Err(TwoStepResetError::PasswordFirst);
        }
        let now = self.deps.now();
        if let Some(at) = self.store.last_cancelled_wait(&account.id).await?
            && at + COOL_OFF_SECONDS > now
        {
            self.deps.audit(AuditEvent::TwoStepResetRefused, Some(&account.id), ctx, "cancelled in the last 7 days").await?;
            return Err(TwoStepResetError::RecentlyCancelled(at + COOL_OFF_SECONDS));
        }
        if self.store.two_step_reset_waiting(&account.id).await? {
            return Err(TwoStepResetError::AlreadyRunning);
        }
        let cap = [ThrottleKey {
            key: format!("two-step-reset:{}", account.id),
            rule: ThrottleRule::Budget { limit: 5, window: 86_400, cooldown: 86_400 },
        }];
        if let Some(wait) = self.deps.claim(&cap).await? {
            return Err(TwoStepResetError::TooMany(wait));
        }
        let token = RecoveryToken::generate(&self.deps.keys);
        let link = format!("{}two-step-reset/confirm?token={}", self.deps.base_url, token.expose());
        let body = format!(
            "Someone who knows your password asked to reset 2-step verification on your account, because they cannot use any of its methods.\n\nIf it was you, open this link and confirm to start the waiting period of {}:\n\n{link}\n\nThe link works once, for 24 hours. Nothing changes until you confirm, and the reset can be cancelled during the wait.\n\nIf it was not you, do not open the link: someone knows your password. Sign in with one of your methods and change it.",
            crate::clock::in_words(self.wait_seconds)
        );
        let message = self.email(account, "two_step_reset_confirm", "Confirm your 2-step reset", &body, now)?;
        let reset = NewTwoStepReset {
            id: uuid::Uuid::new_v4().to_string(),
            account_id: account.id.clone(),
            confirm_hash: self.hash(ResetLink::Confirm, &token),
            created_at: now,
            confirm_expires_at: now + CONFIRM_TTL_SECONDS,
        };
        if !self.store.insert_two_step_reset(&reset, &message).await? {
            return Err(TwoStepResetError::AlreadyRunning);
        }
        self.deps.audit(AuditEvent::TwoStepResetRequested, Some(&account.id), ctx, "confirm link sent").await?;
        Ok(())
    }

    /// Step 2: the confirm link starts the wait; every channel on file is told at once.
    /// Returns when the reset can be finished.
    pub async fn confirm(&self, token: &TwoStepResetToken, ctx: &RequestContext) -> Result<i64, TwoStepResetError> {
        let now = self.deps.now();
        let confirm_hash = self.hash(ResetLink::Confirm, token.token());
        let reset = self.store.find_two_step_reset(ResetLink::Confirm, &confirm_hash, now).await?.ok_or(TwoStepResetError::InvalidToken)?;
        let account = self.store.get_account(&reset.account_id).await?.ok_or(TwoStepResetError::InvalidToken)?;
        let ready_at = now + self.wait_seconds;
        let (cancel, finish) = (RecoveryToken::generate(&self.deps.keys), RecoveryToken::generate(&self.deps.keys));
        let base = &self.deps.base_url;
        let when = crate::clock::rfc2822(ready_at);
        let report = report_link(&self.deps, &*self.store, &account.id, ReportedEvent::TwoStepResetStarted).await?;
        let announce = format!(
            "A 2-step reset of your account was confirmed. Unless it is cancelled, every 2-step verification method and recovery code of your account will be removed after {when}, and whoever finishes it (with your password) can sign in without them.\n\nUntil then your email, password, phone, methods and withdrawals cannot change.\n\nIf you did not ask for this, cancel it now:\n\n{base}two-step-reset/cancel?token={}\n\nSigning in with one of your methods also cancels it.\n\nIf someone else started it, they know your password: this wasn't me, lock my account (it also cancels the reset):\n\n{report}",
            cancel.expose()
        );
        let finish_body = format!(
            "The waiting period of your 2-step reset is over. To finish it, open this link in the browser where you will sign in, then give your password:\n\n{base}two-step-reset/finish?token={}\n\nFinishing removes every 2-step method and recovery code of your account and signs out every session; you then set up a new method at once.",
            finish.expose()
        );
        let mut messages =
            vec![self.email(&account, "two_step_reset_started", "A 2-step reset of your account has started", &announce, now)?];
        let text =
            format!("a 2-step reset of your account started. It removes your 2-step methods after {when}. Not you? Sign in to cancel.");
        messages.extend(self.texts(&account, &text, now).await?);
        let mut finish_message = self.email(&account, "two_step_reset_ready", "Finish your 2-step reset", &finish_body, now)?;
        finish_message.send_at = ready_at;
        let wait = StartWait {
            ready_at,
            cancel_hash: self.hash(ResetLink::Cancel, &cancel),
            finish_hash: self.hash(ResetLink::Finish, &finish),
            finish_message_id: finish_message.id.clone(),
        };
        messages.push(finish_message);
        if !self.store.start_two_step_wait(&reset.id, &confirm_hash, now, &wait, &messages).await? {
            return Err(TwoStepResetError::InvalidToken);
        }
        self.deps.audit(AuditEvent::TwoStepResetStarted, Some(&account.id), ctx, &format!("ready at {ready_at}")).await?;
        Ok(ready_at)
    }

    /// Cancels a waiting reset with the link its announcement carried; the owner is told.
    pub async fn cancel(&self, token: &TwoStepResetToken, ctx: &RequestContext) -> Result<(), TwoStepResetError> {
        let now = self.deps.now();
        let hash = self.hash(ResetLink::Cancel, token.token());
        let reset = self.store.find_two_step_reset(ResetLink::Cancel, &hash, now).await?.ok_or(TwoStepResetError::InvalidToken)?;
        let account = self.store.get_account(&reset.account_id).await?.ok_or(TwoStepResetError::InvalidToken)?;
        let messages: Vec<NewMessage> =
            cancelled_notice(&self.deps, &*self.store, &account, "someone used the cancel link in our email", now)
                .await?
                .into_iter()
                .collect();
        if !self.store.cancel_two_step_reset(&reset.id, now, &messages).await? {
            return Err(TwoStepResetError::InvalidToken);
        }
        self.deps.audit(AuditEvent::TwoStepResetCancelled, Some(&account.id), ctx, "cancel link").await?;
        Ok(())
    }

    /// Step 3: the finish link, from a half-signed-in session of the account (its password
    /// just given in this browser), after the wait. Mints [`WaitElapsed`] and spends it on
    /// the removal; returns the new full session (2-step is off: the user sets up a new
    /// method next).
    pub async fn complete(
        &self,
        pending: &SessionRecord,
        account: &Account,
        token: &TwoStepResetToken,
        ctx: &RequestContext,
    ) -> Result<SessionToken, TwoStepResetError> {
        if pending.stage != SessionStage::SecondFactor || pending.account_id != account.id {
            return Err(TwoStepResetError::PasswordFirst);
        }
        let now = self.deps.now();
        let finish_hash = self.hash(ResetLink::Finish, token.token());
        let reset = self.store.find_two_step_reset(ResetLink::Finish, &finish_hash, now).await?.ok_or(TwoStepResetError::InvalidToken)?;
        // Another account's link is as good as no link.
        if reset.account_id != account.id {
            return Err(TwoStepResetError::InvalidToken);
        }
        let ready_at = reset.ready_at.unwrap_or(i64::MAX);
        if now < ready_at {
            return Err(TwoStepResetError::NotReady(ready_at));
        }
        let proof = WaitElapsed { account: account.id.clone(), reset_id: reset.id };
        self.remove_lost_methods(proof, account, &finish_hash, ctx).await?;
        let token = crate::sign_in::start_session(&self.deps, &*self.store, &account.id, ctx, SessionStage::Full).await?;
        self.deps.audit(AuditEvent::LoginSucceeded, Some(&account.id), ctx, "password+two_step_reset").await?;
        Ok(token)
    }

    /// Removes every 2-step method and recovery code and ends every session, with the proof
    /// that the wait is over; everyone on file is told.
    async fn remove_lost_methods(
        &self,
        by: WaitElapsed,
        account: &Account,
        finish_hash: &str,
        ctx: &RequestContext,
    ) -> Result<(), TwoStepResetError> {
        if by.account != account.id {
            return Err(TwoStepResetError::InvalidToken);
        }
        let now = self.deps.now();
        let report = report_link(&self.deps, &*self.store, &account.id, ReportedEvent::TwoStepResetStarted).await?;
        let body = format!(
            "Your 2-step reset was finished: every 2-step verification method and recovery code of your account was removed, and every session was signed out.\n\nWhen: {}\nFrom: {}\n\nSet up a new method in Security settings now.\n\nIf this was not you, lock your account at once (this wasn't me):\n\n{report}",
            crate::clock::rfc2822(now),
            ctx.ip
        );
        let mut messages = vec![self.email(account, "two_step_reset_completed", "Your 2-step verification was reset", &body, now)?];
        let text = "the 2-step reset of your account was finished: this phone no longer signs you in. Not you? Contact support.";
        messages.extend(self.texts(account, text, now).await?);
        if !self.store.complete_two_step_reset(&by.reset_id, finish_hash, now, &messages).await? {
            return Err(TwoStepResetError::InvalidToken);
        }
        self.deps.audit(AuditEvent::TwoStepResetCompleted, Some(&account.id), ctx, "methods, recovery codes and sessions removed").await?;
        Ok(())
    }
}
