//! The operations of signing in and out, and of creating accounts. Each takes its inputs as
//! domain types, talks to storage through [`Store`], and records what it did in the audit log.

use crate::account::{Account, AccountId, Country, EmailAddress, LoginIdentifier, UserType, Username};
use crate::audit::{AuditEvent, AuditRecord, RequestContext};
use crate::clock::{in_words, Clock};
use crate::keys::ServerKey;
use crate::password::{HashError, Password, PasswordHasher, PasswordPolicy, Verified, WeakPassword};
use crate::session::{SessionPolicy, SessionRecord, SessionStage, SessionToken};
use crate::store::{NewAccount, Store, StoreError};
use crate::throttle::{account_cap, device_cap, login_keys, settle_success, Refusal, ThrottleKey, ThrottleRule};
use crate::trusted_device::{cookie_tag, DeviceToken, NewDevice, DEVICE_TTL_SECONDS};
use std::sync::Arc;

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

/// Everything the operations need, shared by every request.
#[derive(Debug, Clone)]
pub struct Services {
    pub store: Arc<dyn Store>,
    pub hasher: PasswordHasher,
    pub clock: Arc<dyn Clock>,
    pub key: ServerKey,
    pub password_policy: PasswordPolicy,
    pub session_policy: SessionPolicy,
    /// Writes the content of every email from its templates.
    pub composer: Arc<dyn crate::notice::Composer>,
    /// The configured public URL, ending in '/': every emailed link starts with it (S1.7).
    pub base_url: String,
    pub reset_token_ttl_seconds: i64,
    pub two_step: crate::two_step::TwoStepSettings,
    /// Help articles and banners held in memory (help center, banners).
    pub content: crate::content::ContentCache,
    /// The optional Pwned Passwords check of new passwords (S4.4); `None` when off.
    pub breached: Option<Arc<dyn crate::breached::BreachedPasswords>>,
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

impl Services {
    pub async fn audit(
        &self,
        event: AuditEvent,
        account: Option<&AccountId>,
        ctx: &RequestContext,
        detail: &str,
    ) -> Result<(), StoreError> {
        let record = AuditRecord::new(self.clock.unix(), event, account.cloned(), ctx, detail);
        self.store.append_audit(&record).await
    }

    pub async fn create_account(&self, request: NewAccountRequest, ctx: &RequestContext) -> Result<Account, AuthError> {
        self.password_policy.check(&request.password, &[request.username.as_str(), request.email.local_part()])?;
        self.check_not_breached(&request.password).await?;
        let password_hash = self.hasher.hash(&request.password).await?;
        let account = self
            .store
            .insert_account(NewAccount {
                id: AccountId::generate(),
                username: request.username,
                email: request.email,
                user_type: request.user_type,
                country: request.country,
                password_hash,
                now: self.clock.unix(),
            })
            .await?;
        self.audit(AuditEvent::AccountCreated, Some(&account.id), ctx, "").await?;
        Ok(account)
    }

    /// Password login (S2.3, S3.1-S3.3, S3.7-S3.9, S4.7, S7.2): the attempt is counted
    /// before the password is compared, one argon2id verification runs whether or not the
    /// account exists, and a success starts a fresh session. `devices` are the trusted-device
    /// cookies the browser presented.
    #[tracing::instrument(skip_all, fields(request_id = %ctx.request_id))]
    pub async fn login(
        &self,
        login: &LoginIdentifier,
        password: &Password,
        devices: &[DeviceToken],
        ctx: &RequestContext,
    ) -> Result<SignedIn, AuthError> {
        let now = self.clock.unix();
        let found = self.store.find_for_login(login.key()).await?;
        let account_id = found.as_ref().map(|(a, _)| a.id.clone());
        let device = match &account_id {
            Some(id) => self.trusted_device(id, devices).await?,
            None => None,
        };
        // A trusted device spends only its own budget (S3.9); once that is spent, it is
        // counted like any other browser.
        let mut keys = match &device {
            Some(hash) => vec![device_cap(hash)],
            None => self.untrusted_login_keys(login, account_id.as_ref(), ctx),
        };
        let mut refused = self.store.claim_attempt(&keys, now).await?;
        let mut trusted = device.is_some();
        if refused.is_some() && trusted {
            trusted = false;
            keys = self.untrusted_login_keys(login, account_id.as_ref(), ctx);
            refused = self.store.claim_attempt(&keys, now).await?;
        }
        if let Some(refusal) = refused {
            return Err(self.refuse_login(password, account_id.as_ref(), &refusal, ctx).await?);
        }

        let verified = self.hasher.verify(password, found.as_ref().map(|(_, hash)| hash.as_str())).await?;
        let account = match (found, verified) {
            (Some((account, _)), Verified::Yes) => account,
            (Some((account, _)), Verified::YesRehashed(new_hash)) => {
                self.store.set_password_hash(&account.id, &new_hash, now).await?;
                self.audit(AuditEvent::PasswordRehashed, Some(&account.id), ctx, "").await?;
                account
            }
            (found, _) => {
                let detail = match (&found, trusted) {
                    (None, _) => "unknown_account",
                    (Some(_), false) => "wrong_password",
                    (Some(_), true) => "wrong_password; trusted device",
                };
                self.audit(AuditEvent::LoginFailed, found.as_ref().map(|(a, _)| &a.id), ctx, detail).await?;
                return Err(AuthError::InvalidCredentials);
            }
        };
        self.settle(&keys).await?;
        if self.two_step_enabled(&account.id).await? {
            let token = self.start_pending_login(&account.id, ctx).await?;
            self.audit(AuditEvent::PasswordAccepted, Some(&account.id), ctx, "second step required").await?;
            return Ok(SignedIn { token, account, second_step: true, device: None });
        }
        let token = self.start_session_at(&account.id, ctx, SessionStage::Full).await?;
        let device = self.renew_device(&account.id, devices).await?;
        self.audit(AuditEvent::LoginSucceeded, Some(&account.id), ctx, "password").await?;
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
        self.audit(AuditEvent::LoginThrottled, account, ctx, &refusal.keys.join(" ")).await?;
        if let (Some(account), Some(key)) = (account, &account_key) {
            if refusal.keys.contains(key) {
                self.tell_owner_of_lockout(account, ctx).await?;
            }
        }
        if only_account {
            self.hasher.verify(password, None).await?;
            return Ok(AuthError::InvalidCredentials);
        }
        Ok(AuthError::Throttled { retry_after_seconds: refusal.until - self.clock.unix() })
    }

    /// S3.9: one email a day when an account's budget is spent: what happened, that the
    /// owner's own browsers still work, and where to reset the password.
    async fn tell_owner_of_lockout(&self, account: &AccountId, ctx: &RequestContext) -> Result<(), AuthError> {
        let once_a_day =
            ThrottleKey { key: format!("lockout-notice:{account}"), rule: ThrottleRule::Budget { limit: 1, window: 86_400, cooldown: 0 } };
        if self.store.count_attempt(&once_a_day, self.clock.unix()).await? != 1 {
            return Ok(());
        }
        let Some(account) = self.store.get_account(account).await? else { return Ok(()) };
        let now = self.clock.unix();
        let content = self
            .composer
            .compose(&crate::notice::Notice::LoginsPaused {
                username: account.username.as_str(),
                when: &crate::clock::rfc2822(now),
                reset_link: &format!("{}forgot-password", self.base_url),
            })
            .map_err(|e| AuthError::Store(StoreError::Backend(e.into())))?;
        let message = crate::outbox::NewMessage::email(account.email.as_str(), "logins_paused", Some(account.id.clone()), content, now);
        self.store.enqueue_message(&message).await?;
        self.audit(AuditEvent::LoginThrottled, Some(&account.id), ctx, "owner told").await?;
        Ok(())
    }

    /// Which of the presented device cookies is a live trusted device of the account.
    async fn trusted_device(&self, account: &AccountId, devices: &[DeviceToken]) -> Result<Option<String>, StoreError> {
        if devices.is_empty() {
            return Ok(None);
        }
        let hashes: Vec<String> = devices.iter().take(16).map(|d| d.storage_key(&self.key)).collect();
        self.store.find_device(account, &hashes, self.clock.unix()).await
    }

    /// A new trusted-device cookie after a full sign-in; the one the browser presented for
    /// this account, if any, is retired (rotation).
    pub(crate) async fn renew_device(&self, account: &AccountId, presented: &[DeviceToken]) -> Result<NewDevice, StoreError> {
        if let Some(old) = self.trusted_device(account, presented).await? {
            self.store.delete_device(&old).await?;
        }
        let token = DeviceToken::generate();
        let now = self.clock.unix();
        self.store.insert_device(account, &token.storage_key(&self.key), now, now + DEVICE_TTL_SECONDS).await?;
        Ok(NewDevice { token, cookie_tag: cookie_tag(&self.key, account) })
    }

    /// A success: the owner's own counters are cleared and address budgets take the
    /// attempt back (they count failures).
    pub async fn settle(&self, keys: &[ThrottleKey]) -> Result<(), StoreError> {
        let (cleared, released) = settle_success(keys);
        self.store.clear_events(&cleared).await?;
        self.store.release_attempt(&released).await
    }

    /// Counts one attempt under `keys` before a secret is compared (S3.7, S3.8); the wait
    /// in seconds when one of them refuses.
    pub async fn claim(&self, keys: &[ThrottleKey]) -> Result<Option<i64>, StoreError> {
        let now = self.clock.unix();
        Ok(self.store.claim_attempt(keys, now).await?.map(|r| (r.until - now).max(1)))
    }

    /// Always a new id (S7.2): a session is never carried over from before login.
    pub(crate) async fn start_session_at(
        &self,
        account: &AccountId,
        ctx: &RequestContext,
        stage: SessionStage,
    ) -> Result<SessionToken, StoreError> {
        let token = SessionToken::generate();
        let now = self.clock.unix();
        let record = SessionRecord {
            id_hash: token.storage_key(&self.key),
            account_id: account.clone(),
            created_at: now,
            last_seen_at: now,
            ip: ctx.ip.to_string(),
            user_agent: ctx.user_agent.chars().take(512).collect(),
            stage,
            // Signing in is a verification: sensitive actions right after login need no step-up.
            verified_at: if stage == SessionStage::Full { now } else { 0 },
        };
        self.store.insert_session(&record).await?;
        Ok(token)
    }

    /// The account behind a session cookie, if the session is live (S7.4). Expired sessions
    /// are deleted on sight.
    pub async fn authenticate(&self, token: &SessionToken) -> Result<Option<(SessionRecord, Account)>, AuthError> {
        let id_hash = token.storage_key(&self.key);
        let Some(session) = self.store.find_session(&id_hash).await? else {
            return Ok(None);
        };
        let now = self.clock.unix();
        if !self.session_policy.is_live(&session, now) {
            self.store.delete_session(&id_hash).await?;
            return Ok(None);
        }
        if self.session_policy.should_touch(&session, now) {
            self.store.touch_session(&id_hash, now).await?;
        }
        let account = self.store.get_account(&session.account_id).await?;
        Ok(account.map(|a| (session, a)))
    }

    /// The account's live sessions, newest first (S7.8).
    pub async fn live_sessions(&self, account: &AccountId) -> Result<Vec<SessionRecord>, AuthError> {
        let now = self.clock.unix();
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
        self.audit(AuditEvent::SessionsRevoked, Some(&current.account_id), ctx, &detail).await?;
        Ok(ended)
    }

    /// Ends the session on the server (S7.5).
    pub async fn logout(&self, session: &SessionRecord, ctx: &RequestContext) -> Result<(), AuthError> {
        self.store.delete_session(&session.id_hash).await?;
        self.audit(AuditEvent::Logout, Some(&session.account_id), ctx, "").await?;
        Ok(())
    }
}
