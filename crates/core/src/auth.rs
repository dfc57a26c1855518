//! The operations of signing in and out, and of creating accounts. Each takes its inputs as
//! domain types, talks to storage through [`AuthStorage`], and records what it did in the audit log.

use crate::account::{Account, AccountId, Country, EmailAddress, LoginIdentifier, UserType, Username};
use crate::audit::{AuditEvent, AuditRecord, RequestContext};
use crate::clock::in_words;
use crate::deps::Deps;
use crate::new_password::NewPasswords;
use crate::password::{HashError, Password, Verified, WeakPassword};
use crate::session::{SessionPolicy, SessionRecord, SessionStage, SessionToken};
use crate::sign_in::{SignInWrites, new_session, renew_device, start_session, trusted_device};
use crate::store::{NewAccount, StoreError};
use crate::throttle::{
    ACCOUNT_KEY_PREFIX, RecentRefusals, Refusal, ThrottleKey, ThrottleRule, account_cap, device_cap, login_keys, refusal, settle_success,
};
use crate::trusted_device::{DeviceToken, NewDevice};
use crate::verifier::Verifier;
use std::sync::Arc;

crate::storage_trait! {
    /// The storage `Auth` reads and writes.
    pub trait AuthStorage:
        crate::store::AccountStore,
        crate::compromise::CompromiseStore,
        crate::trusted_device::DeviceStore,
        crate::store::OutboxStore,
        crate::store::SessionStore,
        crate::store::ThrottleStore,
        crate::sign_in::SignInStorage,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The same answer whether the account is unknown or the password wrong (S2.1).
    #[error("The username, email or password is not correct.")]
    InvalidCredentials,
    #[error("Too many failed attempts. Try again in {}, or reset your password.", in_words(*retry_after_seconds))]
    Throttled { retry_after_seconds: i64 },
    #[error(transparent)]
    WeakPassword(#[from] WeakPassword),
    #[error("That username is already taken.")]
    UsernameTaken,
    #[error("That email address is already in use.")]
    EmailTaken,
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    NotYourProof(#[from] crate::step_up::NotYourProof),
    /// Said only after the right password (issue 11 §4): the lock reveals nothing to
    /// someone who does not know it.
    #[error(
        "This account is locked because a change to it was reported as not made by its owner. To get back in, reset your password with \"Forgot password\": we email a link to the account's address. If 2-step verification was on, the reset also asks for a method you had before the reported change."
    )]
    AccountLocked,
    /// The same, for a lock that took away every 2-step method the account had (S1.12).
    #[error(
        "This account is locked because a change to it was reported as not made by its owner, and the report removed all of its 2-step methods. Support checks that it is you before it unlocks: ask at /recovery-request, with the case number from the email about the lock."
    )]
    AccountLockedForSupport,
    #[error(transparent)]
    ResetWaiting(#[from] crate::reset_hold::ResetWaiting),
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UsernameTaken => Self::UsernameTaken,
            StoreError::EmailTaken => Self::EmailTaken,
            other => Self::Store(other),
        }
    }
}

/// Signing in and out, sessions and trusted devices (S2, S3, S7), and creating accounts.
#[derive(Debug, Clone)]
pub struct Auth {
    deps: Deps,
    store: Arc<dyn AuthStorage>,
    verifier: Verifier,
    passwords: NewPasswords,
    session_policy: SessionPolicy,
    /// The throttle refusals this process gave lately: which logins take their place in the
    /// hashing queue only after their read.
    recent_refusals: Arc<RecentRefusals>,
}

pub struct NewAccountRequest {
    pub username: Username,
    pub email: EmailAddress,
    pub user_type: UserType,
    pub country: Country,
    pub password: Password,
}

/// A signed-in session: the token for the cookie, and whose it is.
#[derive(Debug)]
pub struct SignedIn {
    pub token: SessionToken,
    pub account: Account,
    /// The password was right and the account has 2-step on: the session reaches only the
    /// second step (S5.9).
    pub second_step: bool,
    /// After a full sign-in: the browser's new trusted-device cookie for this account (S3.9).
    pub device: Option<NewDevice>,
}

impl Auth {
    pub fn new(
        deps: Deps,
        store: Arc<dyn AuthStorage>,
        verifier: Verifier,
        passwords: NewPasswords,
        session_policy: SessionPolicy,
    ) -> Self {
        Self { store, deps, verifier, passwords, session_policy, recent_refusals: Arc::default() }
    }

    pub fn session_policy(&self) -> SessionPolicy {
        self.session_policy
    }

    pub async fn create_account(&self, request: NewAccountRequest, ctx: &RequestContext) -> Result<Account, AuthError> {
        self.passwords.check(&request.password, &[request.username.as_str(), request.email.local_part()]).await?;
        let password_hash = self.deps.hasher.hash(&request.password).await?;
        let account = self
            .store
            .insert_account(NewAccount {
                id: AccountId::generate(),
                username: request.username,
                email: request.email,
                user_type: request.user_type,
                country: request.country,
                password_hash,
                now: self.deps.clock.unix(),
            })
            .await?;
        self.deps.audit(AuditEvent::AccountCreated, Some(&account.id), ctx, "").await?;
        Ok(account)
    }

    /// Password login (S2.3, S3.1-S3.3, S3.7-S3.9, S4.7, S7.2): the attempt is counted
    /// before the password is compared, one argon2id verification runs whether or not the
    /// account exists, and a success starts a fresh session. `devices` are the trusted-device
    /// cookies the browser presented. A session the browser already had (`previous`) ends
    /// once the new one starts, so that the signed-in session always has a new id (S7.2).
    #[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
    pub async fn login(
        &self,
        login: &LoginIdentifier,
        password: &Password,
        devices: &[DeviceToken],
        previous: Option<&SessionRecord>,
        ctx: &RequestContext,
    ) -> Result<SignedIn, AuthError> {
        let now = self.deps.clock.unix();
        let typed_keys = login_keys(login.key(), ctx.ip);
        // A place in the hashing queue before any other work, or 503 at once: under overload a
        // refusal waits for no database read (which then waits for a connection, issue 12). A
        // login whose keys this process refused lately only checks for room here, and takes its
        // place once the limits let it through (`RecentRefusals`). Either way the answer depends
        // on nothing the request names, so it tells nothing about the account (S2.5), and
        // nothing is counted (S3.1).
        let early_slot = if self.recent_refusals.any_refused(&typed_keys, now) {
            self.deps.hasher.has_room()?;
            None
        } else {
            Some(self.deps.hasher.admit()?)
        };
        // The account, and what its limits hold now, in one read.
        let names: Vec<&str> = typed_keys.iter().map(|k| k.key.as_str()).collect();
        let lookup = self.store.find_for_login_with_counts(login.key(), &names, ACCOUNT_KEY_PREFIX).await?;
        let found = lookup.found;
        let account_id = found.as_ref().map(|(a, _)| a.id.clone());
        let device = match &account_id {
            Some(id) => trusted_device(&self.deps, &*self.store, id, devices).await?,
            None => None,
        };
        // A trusted device spends only its own budget (S3.9); once that is spent, it is
        // counted like any other browser.
        let mut keys = match &device {
            Some(hash) => vec![device_cap(hash)],
            None => self.untrusted_login_keys(login, account_id.as_ref(), ctx),
        };
        // An attempt those limits refuse already is refused here, and gives its place back
        // before the refusal's own work: a flood of throttled guesses cannot crowd other
        // people's logins out of the queue. Nothing is counted either way (S3.1).
        if device.is_none()
            && let Some(refusal) = refusal(&keys, |key| lookup.counts.iter().find(|(k, _)| k == key).map(|(_, c)| *c), now)
        {
            drop(early_slot);
            return Err(self.refuse_login(password, account_id.as_ref(), &refusal, ctx).await?);
        }
        // The place, before anything is counted: with none free the answer is 503 at once, and
        // the attempt is not counted (a refusal is not a guess, S3.1).
        let slot = match early_slot {
            Some(slot) => slot,
            None => self.deps.hasher.admit()?,
        };
        // Every answer to an attempt let through comes after a write of its own (the failure's
        // audit event, the settle, the sign-in), which writes the count to disk with it.
        let mut refused = self.store.claim_attempt_answered_after_a_write(&keys, now).await?;
        let mut trusted = device.is_some();
        if refused.is_some() && trusted {
            trusted = false;
            keys = self.untrusted_login_keys(login, account_id.as_ref(), ctx);
            refused = self.store.claim_attempt_answered_after_a_write(&keys, now).await?;
        }
        if let Some(refusal) = refused {
            // The place is given back before the refusal's own work (it may hash a dummy).
            drop(slot);
            return Err(self.refuse_login(password, account_id.as_ref(), &refusal, ctx).await?);
        }
        let verified = self.deps.hasher.verify_in(slot, password, found.as_ref().map(|(_, hash)| hash.as_str())).await?;
        let account = match (found, verified) {
            (Some((account, _)), Verified::Yes) => account,
            (Some((account, _)), Verified::YesRehashed(new_hash)) => {
                self.store.set_password_hash(&account.id, &new_hash, now).await?;
                self.deps.audit(AuditEvent::PasswordRehashed, Some(&account.id), ctx, "").await?;
                account
            }
            (found, _) => {
                let detail = match (&found, trusted) {
                    (None, _) => "unknown_account",
                    (Some(_), false) => "wrong_password",
                    (Some(_), true) => "wrong_password; trusted device",
                };
                self.deps.audit(AuditEvent::LoginFailed, found.as_ref().map(|(a, _)| &a.id), ctx, detail).await?;
                return Err(AuthError::InvalidCredentials);
            }
        };
        // The lock, the 2-step methods and "has it signed in before", in one read, only once
        // the password is right: a guess pays for no read it does not need (read with the
        // account instead, it saved no CPU this machine could measure: issue 12, tenth pass).
        let facts = self.store.sign_in_facts(&account.id).await?;
        if facts.locked {
            self.deps.settle(&keys).await?;
            self.deps.audit(AuditEvent::LoginRefusedLocked, Some(&account.id), ctx, "right password; account locked").await?;
            return Err(if facts.locked_for_support { AuthError::AccountLockedForSupport } else { AuthError::AccountLocked });
        }
        if self.verifier.two_step_on(facts.confirmed_methods.iter().copied()) {
            self.deps.settle(&keys).await?;
            let token = start_session(&self.deps, &*self.store, &account.id, ctx, SessionStage::SecondFactor).await?;
            self.end_previous(previous).await?;
            self.deps.audit(AuditEvent::PasswordAccepted, Some(&account.id), ctx, "second step required").await?;
            return Ok(SignedIn { token, account, second_step: true, device: None });
        }
        // Signed in: the limits settled, the session, the device, the new-device email and the
        // audit events are written in one transaction (one commit instead of seven).
        let (cleared, released) = settle_success(&keys);
        let (token, session) = new_session(&self.deps, &account.id, ctx, SessionStage::Full);
        let mut writes = SignInWrites {
            cleared,
            released,
            session: Some(session),
            end_session: previous.map(|p| p.id_hash.clone()),
            ..SignInWrites::default()
        };
        let device = renew_device(&self.deps, &*self.store, &account, devices, Some(facts.signed_in_before), ctx, &mut writes).await?;
        writes.audits.push(AuditRecord::new(self.deps.now(), AuditEvent::LoginSucceeded, Some(account.id.clone()), ctx, "password"));
        self.store.commit_sign_in(&writes).await?;
        Ok(SignedIn { token, account, second_step: false, device: Some(device) })
    }

    /// The keys a login from a browser that is not trusted for the account counts under.
    fn untrusted_login_keys(&self, login: &LoginIdentifier, account: Option<&AccountId>, ctx: &RequestContext) -> Vec<ThrottleKey> {
        let mut keys = login_keys(login.key(), ctx.ip);
        keys.extend(account.map(account_cap));
        keys
    }

    /// The answer to a refused login. Only the typed login's own keys (and the address
    /// budgets) answer "too many attempts"; a spent account budget alone answers like a
    /// wrong password, after the same dummy hashing, so that a 429 never links two aliases
    /// (S2.1, S3.9). The owner hears of a spent budget once a day.
    async fn refuse_login(
        &self,
        password: &Password,
        account: Option<&AccountId>,
        refusal: &Refusal,
        ctx: &RequestContext,
    ) -> Result<AuthError, AuthError> {
        let account_key = account.map(|a| account_cap(a).key);
        let only_account = refusal.keys.iter().all(|k| Some(k) == account_key.as_ref());
        self.recent_refusals.note(refusal);
        self.deps.audit(AuditEvent::LoginThrottled, account, ctx, &refusal.keys.join(" ")).await?;
        if let (Some(account), Some(key)) = (account, &account_key)
            && refusal.keys.contains(key)
        {
            self.tell_owner_of_lockout(account, ctx).await?;
        }
        if only_account {
            self.deps.hasher.verify(password, None).await?;
            return Ok(AuthError::InvalidCredentials);
        }
        Ok(AuthError::Throttled { retry_after_seconds: refusal.until - self.deps.clock.unix() })
    }

    /// S3.9: one email a day when an account's budget is spent: what happened, that the
    /// owner's own browsers still work, and where to reset the password.
    async fn tell_owner_of_lockout(&self, account: &AccountId, ctx: &RequestContext) -> Result<(), AuthError> {
        let once_a_day =
            ThrottleKey { key: format!("lockout-notice:{account}"), rule: ThrottleRule::Budget { limit: 1, window: 86_400, cooldown: 0 } };
        if self.store.count_attempt(&once_a_day, self.deps.clock.unix()).await? != 1 {
            return Ok(());
        }
        let Some(account) = self.store.get_account(account).await? else { return Ok(()) };
        let now = self.deps.clock.unix();
        let content = self
            .deps
            .composer
            .compose(&crate::notice::Notice::LoginsPaused {
                username: account.username.as_str(),
                when: &crate::clock::rfc2822(now),
                reset_link: &format!("{}forgot-password", self.deps.base_url),
            })
            .map_err(|e| AuthError::Store(StoreError::Backend(e.into())))?;
        let message = crate::outbox::NewMessage::email(account.email.as_str(), "logins_paused", Some(account.id.clone()), content, now);
        self.store.enqueue_message(&message).await?;
        self.deps.audit(AuditEvent::LoginThrottled, Some(&account.id), ctx, "owner told").await?;
        Ok(())
    }

    /// The account behind a session cookie, if the session is live (S7.4). Expired sessions
    /// are deleted on sight.
    pub async fn authenticate(&self, token: &SessionToken) -> Result<Option<(SessionRecord, Account)>, AuthError> {
        let id_hash = token.storage_key(&self.deps.keys);
        let Some(session) = self.store.find_session(&id_hash).await? else {
            return Ok(None);
        };
        let now = self.deps.clock.unix();
        if !self.session_policy.is_live(&session, now) {
            self.store.delete_session(&id_hash).await?;
            return Ok(None);
        }
        // Noting that the session was seen is not worth failing the request for: when it
        // cannot be written (the disk is full), the session lives on from its last touch.
        if self.session_policy.should_touch(&session, now)
            && let Err(e) = self.store.touch_session(&id_hash, now).await
        {
            tracing::warn!(error = %e, "could not note that a session was seen");
        }
        // A lock ends every session (S7.7); one a login wrote while the lock was being
        // committed would outlive it, so a locked account's session is refused here too.
        let Some(account) = self.store.get_unlocked_account(&session.account_id).await? else {
            self.store.delete_session(&id_hash).await?;
            return Ok(None);
        };
        Ok(Some((session, account)))
    }

    /// The account's live sessions, newest first (S7.8).
    pub async fn live_sessions(&self, account: &AccountId) -> Result<Vec<SessionRecord>, AuthError> {
        let now = self.deps.clock.unix();
        let sessions = self.store.sessions_of(account).await?;
        Ok(sessions.into_iter().filter(|s| s.stage == SessionStage::Full && self.session_policy.is_live(s, now)).collect())
    }

    /// Ends one of the account's sessions by its id (the stored hash), or every other one
    /// when `id` is `None` (S7.7, S7.8). Another account's session is never touched.
    pub async fn revoke_sessions(&self, current: &SessionRecord, id: Option<&str>, ctx: &RequestContext) -> Result<u64, AuthError> {
        let ended = match id {
            Some(id) => self.store.end_sessions_of(&current.account_id, Some(id), None).await?,
            None => self.store.end_sessions_of(&current.account_id, None, Some(&current.id_hash)).await?,
        };
        if id.is_none() {
            // "Sign out everywhere" also ends every trusted device (S3.9).
            self.store.delete_devices_of(&current.account_id).await?;
        }
        let detail = format!("{ended} ended by the owner{}", if id.is_none() { " (all others)" } else { "" });
        self.deps.audit(AuditEvent::SessionsRevoked, Some(&current.account_id), ctx, &detail).await?;
        Ok(ended)
    }

    /// Ends the browser's earlier session after a sign-in.
    async fn end_previous(&self, previous: Option<&SessionRecord>) -> Result<(), StoreError> {
        match previous {
            Some(session) => self.store.delete_session(&session.id_hash).await,
            None => Ok(()),
        }
    }

    /// Expired sessions are refused on sight; this only keeps the table small.
    pub async fn purge_expired_sessions(&self) -> Result<u64, StoreError> {
        let now = self.deps.now();
        let policy = self.session_policy;
        self.store.purge_sessions(now - policy.idle_timeout_seconds, now - policy.absolute_timeout_seconds).await
    }

    /// Ends the session on the server (S7.5).
    pub async fn logout(&self, session: &SessionRecord, ctx: &RequestContext) -> Result<(), AuthError> {
        self.store.delete_session(&session.id_hash).await?;
        self.deps.audit(AuditEvent::Logout, Some(&session.account_id), ctx, "").await?;
        Ok(())
    }
}
