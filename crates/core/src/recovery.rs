//! Forgot password (checklist S1, S2, S3.3, S3.5): the request only records the intent; a
//! job looks the account up, applies the silent limits, and writes the token and the email
//! in one transaction; the reset redeems the token atomically and ends every session.

use crate::account::{AccountId, LoginIdentifier};
use crate::audit::{AuditEvent, RequestContext};
use crate::deps::Deps;
use crate::jobs::{DecodeError, Job, PasswordResetRequested};
use crate::keyring::Keyring;
use crate::new_password::NewPasswords;
use crate::notice::Notice;
use crate::outbox::NewMessage;
use crate::password::{HashError, Password, WeakPassword};
use crate::recent_intents::RecentIntents;
use crate::store::StoreError;
use crate::throttle::ThrottleKey;
use crate::throttle::ThrottleRule;
pub use crate::token::{
    NewRecoveryToken, PasswordResetCompletion, Purpose, RecoveryStore, RecoveryToken, ResetCode, ResetCodeAttempt, ResetIssue, ValidToken,
};
use crate::verifier::Verifier;
use std::sync::Arc;

crate::storage_trait! {
    /// The storage `Recovery` reads and writes.
    pub trait RecoveryStorage:
        crate::store::AccountStore,
        crate::compromise::CompromiseStore,
        crate::factors::FactorStore,
        RecoveryStore,
        crate::store::ThrottleStore,
        crate::reset_hold::ResetHoldStore,
}

/// How long after it began a refused reset code is answered (S2.5).
pub const CODE_REFUSAL_FLOOR: std::time::Duration = std::time::Duration::from_millis(50);
/// Attempts allowed at the short code of one reset email (S3.4).
pub const MAX_CODE_ATTEMPTS: i64 = 5;
/// The least time between two reset emails to one account.
pub const RESEND_COOLDOWN_SECONDS: i64 = 60;

/// emailed code that was counted and matched (or by the continuation that a verified code
/// was exchanged for). Private fields and no public constructor: only
/// [`Recovery::open_reset`] makes one, so nothing can show a reset's methods, send its
/// codes or set its password from an unverified code (S3.7).
pub struct ResetGrant {
    token: ValidToken,
    account: crate::account::Account,
    via: Via,
}

/// How a reset reached its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Link,
    /// A login and code in this very request.
    Code,
    /// A continuation made from a verified code in an earlier request.
    Continued,
}

impl ResetGrant {
    pub fn account(&self) -> &crate::account::Account {
        &self.account
    }

    /// Whether the reset came by the emailed code (directly or continued), not the link.
    pub fn by_code(&self) -> bool {
        self.via != Via::Link
    }
}

/// What a verified code is exchanged for, so that the later steps of a reset by code (the
/// 2-step method, sending its code, the new password) need neither the code again nor a
/// copy of it in the page: the token's id, signed under the server key. It names no secret
/// a person typed, cannot be forged, and is only as good as the token: used, replaced or
/// expired, it opens nothing. Only [`Recovery::continuation`] makes one, from a grant.
pub struct ResetContinuation {
    token_id: String,
    tag: String,
}

impl std::fmt::Debug for ResetContinuation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResetContinuation(<redacted>)")
    }
}

const CONTINUATION_PREFIX: &str = "c1.";
const CONTINUATION_PURPOSE: &str = "reset-continuation";

impl ResetContinuation {
    /// `c1.<token id>.<tag>`, as it travels in a cookie.
    pub fn encode(&self) -> String {
        format!("{CONTINUATION_PREFIX}{}.{}", self.token_id, self.tag)
    }

    /// The shape only; the tag is checked by [`Recovery::open_reset`].
    pub fn parse(raw: &str) -> Option<Self> {
        let (token_id, tag) = raw.strip_prefix(CONTINUATION_PREFIX)?.split_once('.')?;
        let id_ok = !token_id.is_empty() && token_id.len() <= 64 && token_id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
        let tag_ok = crate::keyring::tag_shape(tag);
        (id_ok && tag_ok).then(|| Self { token_id: token_id.to_owned(), tag: tag.to_owned() })
    }
}

/// The evidence a person brings to the reset page.
pub enum ResetProof {
    Link(RecoveryToken),
    Code {
        login: LoginIdentifier,
        code: ResetCodeAttempt,
    },
    /// A code verified earlier, exchanged for a continuation (pages keep it in a cookie).
    Continued(ResetContinuation),
}

impl ResetProof {
    /// What a reset cookie holds: a link's token or a continuation.
    pub fn from_cookie(raw: &str) -> Option<Self> {
        RecoveryToken::parse(raw).map(Self::Link).or_else(|| ResetContinuation::parse(raw).map(Self::Continued))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    #[error("{}", crate::token::InvalidResetLink)]
    InvalidToken,
    /// One answer for a wrong or expired code, and for an unknown login (S2.1).
    #[error("That code is not right, has expired, or has had too many wrong tries. Check the newest email, or ask for a new one.")]
    InvalidCode,
    /// More than five codes were typed with this login since its last reset email was asked
    /// for: decided by a counter keyed by the login as typed, so the same for an unknown
    /// login as for an account (S2.5).
    #[error("Too many tries for this code. Use the link in the email, or ask for a new email.")]
    TooManyTries,
    #[error(transparent)]
    WeakPassword(#[from] WeakPassword),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error("composing the email failed: {0}")]
    Compose(String),
    /// 2-step is on: the link alone is not enough (S1.12).
    #[error("Confirm it is you with one of your 2-step verification methods before choosing a new password.")]
    SecondFactorRequired(Vec<crate::factors::MethodView>),
    #[error(transparent)]
    SecondFactor(#[from] crate::verifier::TwoStepError),
    #[error(transparent)]
    ResetWaiting(#[from] crate::reset_hold::ResetWaiting),
    /// The account is locked after a report that took away every 2-step method it had: a
    /// reset by email would unlock it with the email alone (S1.12), so support does.
    #[error(
        "This account is locked after a \"this wasn't me\" report, and the report removed all of its 2-step methods, so a reset by email cannot unlock it: support checks that it is you first. Ask at /recovery-request and give the case number from the email about the lock."
    )]
    SupportUnlockRequired,
}

impl From<crate::token::ResetLinkError> for ResetError {
    fn from(e: crate::token::ResetLinkError) -> Self {
        match e {
            crate::token::ResetLinkError::Store(e) => Self::Store(e),
            crate::token::ResetLinkError::Compose(e) => Self::Compose(e),
        }
    }
}

/// The second factor offered with a reset on an account with 2-step on.
pub struct SecondFactorProof<'a> {
    pub method_id: &'a str,
    pub code: &'a crate::factors::FactorCode,
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// A row this release cannot read as a job.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Reset(#[from] ResetError),
    /// Another feature's job failed; retried.
    #[error("{0}")]
    Failed(String),
}

impl JobError {
    /// Whether running the job again can never succeed: it is dead-lettered, not retried.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Decode(_))
    }
}

impl From<StoreError> for JobError {
    fn from(e: StoreError) -> Self {
        Self::Reset(ResetError::Store(e))
    }
}

/// Silent limits on reset emails (S3.5): per account and per requesting address.
fn reset_limits(account: &AccountId, ip: &str) -> Vec<ThrottleKey> {
    vec![
        ThrottleKey { key: format!("reset:account:{account}"), rule: ThrottleRule::Budget { limit: 5, window: 3600, cooldown: 3600 } },
        ThrottleKey { key: format!("reset:ip:{ip}"), rule: ThrottleRule::Budget { limit: 20, window: 3600, cooldown: 3600 } },
    ]
}

/// The counter of codes typed with one login (as typed, whether or not it names an account),
/// since a reset email was last asked for with it. It decides only whether a refusal says
/// "too many tries": the five tries per email are the token's own counter's (S2.5, S3.4).
/// Named under the root key: a rotation does not reset it.
fn typed_login_counter(keys: &Keyring, login: &LoginIdentifier) -> ThrottleKey {
    ThrottleKey {
        key: format!("reset-code-typed:{}", keys.stable_hash("reset-code-typed", login.key().as_bytes())),
        rule: ThrottleRule::Budget { limit: MAX_CODE_ATTEMPTS, window: 3600, cooldown: 3600 },
    }
}

/// Forgot and reset password.
#[derive(Debug, Clone)]
pub struct Recovery {
    deps: Deps,
    store: Arc<dyn RecoveryStorage>,
    verifier: Verifier,
    passwords: NewPasswords,
    reset_token_ttl_seconds: i64,
    /// The intents this process has queued, so that repeats are merged before the database.
    recent_intents: Arc<RecentIntents>,
}

impl Recovery {
    pub fn new(
        deps: Deps,
        store: Arc<dyn RecoveryStorage>,
        verifier: Verifier,
        passwords: NewPasswords,
        reset_token_ttl_seconds: i64,
    ) -> Self {
        Self { store, deps, verifier, passwords, reset_token_ttl_seconds, recent_intents: Arc::default() }
    }

    /// The rules a new password must pass (shown on the form).
    pub fn passwords(&self) -> &NewPasswords {
        &self.passwords
    }

    pub fn reset_token_ttl_seconds(&self) -> i64 {
        self.reset_token_ttl_seconds
    }

    /// "Forgot password": records the intent and returns. Nothing here depends on whether
    /// an account matches (S2.1, S2.3), and nothing changes on any account (S1.9).
    ///
    /// Repeats are merged at intake (issue 12): at most one job per login per minute,
    /// keyed by a keyed hash of the login, the same insert for existing and unknown logins. A
    /// flood of repeats then costs the worker nothing, and real users' emails stay fast. The
    /// worker sends at most one reset email per account a minute anyway
    /// ([`RESEND_COOLDOWN_SECONDS`]), so a merged repeat loses no email. A repeat this
    /// process queued already is merged before the database ([`RecentIntents`]); whether the
    /// login was asked for in this minute is all that decides it, for any login.
    pub async fn request_password_reset(&self, login: &LoginIdentifier, ctx: &RequestContext) -> Result<(), StoreError> {
        let now = self.deps.clock.unix();
        let login_hash = self.deps.keys.stable_hash("password-reset-intent", login.key().as_bytes());
        let window = merge_window(now, &login_hash);
        let memo_key = RecentIntents::key(window, &login_hash);
        if memo_key.is_some_and(|key| self.recent_intents.seen(key)) {
            return Ok(());
        }
        let job = Job::PasswordResetRequested(PasswordResetRequested {
            login: login.clone(),
            ip: ctx.ip,
            user_agent: ctx.user_agent.chars().take(512).collect(),
            request_id: ctx.request_id.clone(),
        });
        let coalesce_key = format!("password-reset:{window}:{login_hash}");
        crate::jobs::enqueue_once(&*self.deps.store, &job, &coalesce_key, now).await?;
        if let Some(key) = memo_key {
            self.recent_intents.remember(key);
        }
        Ok(())
    }

    /// The job of a "forgot password" request (run by the worker): finds the account and,
    /// within the limits, writes the token and the email. `job_id` makes it idempotent: a job
    /// run again after a crash (its lease ran out) neither counts against the limits again
    /// nor writes a second email (issue 13: one lost in two runs of a `kill -9` test).
    pub async fn send_password_reset(&self, request: PasswordResetRequested, job_id: &str) -> Result<(), JobError> {
        let ctx = RequestContext { ip: request.ip, user_agent: request.user_agent, request_id: request.request_id, country: None };
        let now = self.deps.clock.unix();
        // Asking for an email starts the count of typed codes again for this login, whether or
        // not it names an account and whether or not an email goes out: "too many tries" then
        // never depends on the account (S2.5). The token's own five tries stay as they are.
        self.store.clear_events(&[typed_login_counter(&self.deps.keys, &request.login).key]).await?;
        let Some((account, _)) = self.store.find_for_login(request.login.key()).await? else {
            // Operators see whether an account matched; the requester never does.
            self.deps.audit(AuditEvent::PasswordResetRequested, None, &ctx, "no_account").await?;
            return Ok(());
        };
        let limits = reset_limits(&account.id, &crate::throttle::address_key(request.ip));
        let too_soon =
            self.store.last_token_issued_at(&account.id, Purpose::PasswordReset).await?.is_some_and(|t| now - t < RESEND_COOLDOWN_SECONDS);
        if too_soon {
            self.deps.audit(AuditEvent::PasswordResetRequested, Some(&account.id), &ctx, "account_matched; rate_limited").await?;
            return Ok(());
        }
        // The token's and the email's ids are the job's (a UUID, as every token id), so that a
        // second run finds them.
        let (token, message) =
            crate::token::reset_link(&self.deps, &account, job_id, self.reset_token_ttl_seconds, now).map_err(ResetError::from)?;
        let outcome = self.store.issue_reset_within_limits(&limits, now, now - RESEND_COOLDOWN_SECONDS, &token, &message).await?;
        let detail = match outcome {
            ResetIssue::Issued => "account_matched; email_queued",
            ResetIssue::Refused | ResetIssue::TooSoon => "account_matched; rate_limited",
            ResetIssue::AlreadyIssued => return Ok(()),
        };
        self.deps.audit(AuditEvent::PasswordResetRequested, Some(&account.id), &ctx, detail).await?;
        Ok(())
    }

    /// Writes a new reset link and code for `account`, replacing its older ones (S1.6), and
    /// the email that carries them. No limit is applied here: the caller applies its own
    /// (a "forgot password" job its rate limits, support its step-up and audit).
    pub async fn email_reset_link(&self, account: &crate::account::Account, now: i64) -> Result<(), ResetError> {
        Ok(crate::token::email_reset_link(&self.deps, &*self.store, account, self.reset_token_ttl_seconds, now).await?)
    }

    /// Checks what a person brings to the reset page, and makes the grant every later step
    /// takes. A link's token is 256 bits and needs no count, nor does a continuation (signed
    /// by this server). A typed code is counted before it is compared, every time (S3.4,
    /// S3.7), and the work is the same whatever the input (S2.5): one lookup, two counter
    /// writes (one keyed by the token, or when there is none by a keyed hash of the login;
    /// one keyed by the login as typed), one keyed hash and one constant-time comparison.
    /// The five tries belong to the token, so a new email brings new tries and nobody can
    /// use up someone else's future codes; the typed login's count only decides whether a
    /// refusal is [`ResetError::TooManyTries`]. A right code gives its tries back, so a
    /// person's own steps never use them up.
    pub async fn open_reset(&self, proof: &ResetProof) -> Result<ResetGrant, ResetError> {
        let now = self.deps.clock.unix();
        let (token, via) = match proof {
            ResetProof::Link(token) => {
                let hash = token.storage_key(&self.deps.keys, Purpose::PasswordReset);
                (self.store.find_valid_token(Purpose::PasswordReset, &hash, now).await?.ok_or(ResetError::InvalidToken)?, Via::Link)
            }
            ResetProof::Continued(continuation) => {
                // Signed by this server (constant-time check), so not guessable: no count.
                if !self.deps.keys.verify(CONTINUATION_PURPOSE, continuation.token_id.as_bytes(), &continuation.tag) {
                    return Err(ResetError::InvalidToken);
                }
                let found = self.store.find_valid_token_by_id(Purpose::PasswordReset, &continuation.token_id, now).await?;
                (found.ok_or(ResetError::InvalidToken)?, Via::Continued)
            }
            ResetProof::Code { login, code } => {
                // S2.5: a refused code answers at a fixed time after the request began, so
                // what is left of the difference between a real account with a live email
                // and an unknown login (a few index reads) is hidden, as Kanidm does.
                let started = tokio::time::Instant::now();
                match self.check_reset_code(login, code, now).await {
                    Ok(token) => (token, Via::Code),
                    Err(refused) => {
                        tokio::time::sleep_until(started + CODE_REFUSAL_FLOOR).await;
                        return Err(refused);
                    }
                }
            }
        };
        let account = self.store.get_account(&token.account_id).await?.ok_or(ResetError::InvalidToken)?;
        Ok(ResetGrant { token, account, via })
    }

    /// What a verified code is exchanged for (see [`ResetContinuation`]): it takes a grant,
    /// so it exists only after the code was counted and matched (S3.7).
    pub fn continuation(&self, grant: &ResetGrant) -> ResetContinuation {
        let token_id = grant.token.id.clone();
        let tag = self.deps.keys.sign(CONTINUATION_PURPOSE, token_id.as_bytes());
        ResetContinuation { token_id, tag }
    }

    async fn check_reset_code(&self, login: &LoginIdentifier, code: &ResetCodeAttempt, now: i64) -> Result<ValidToken, ResetError> {
        let found = self.store.reset_code_target(login.key(), now).await?;
        let counted = match &found {
            Some(token) => format!("token:{}", token.id),
            None => format!("login:{}", login.key()),
        };
        let counter = ThrottleKey {
            key: format!("reset-code:{}", self.deps.keys.stable_hash("reset-code-counter", counted.as_bytes())),
            rule: ThrottleRule::Budget { limit: MAX_CODE_ATTEMPTS, window: 3600, cooldown: 3600 },
        };
        let tries = self.store.count_attempt(&counter, now).await?;
        // Counted as well under the login as typed, for every input: only this count says
        // "too many tries", so that answer never depends on whether the login names an
        // account, nor links two aliases of one account (S2.5, S3.9).
        let typed_counter = typed_login_counter(&self.deps.keys, login);
        let typed_tries = self.store.count_attempt(&typed_counter, now).await?;
        // A stored hash is 64 hex characters (after its key id); with no token, compare
        // against a value no code can hash to, so that the same comparison runs.
        let expected = found.as_ref().and_then(|t| t.code_hash.clone()).unwrap_or_else(|| "-".repeat(64));
        let typed = code.storage_key(&self.deps.keys, &expected, found.as_ref().map_or("", |t| t.id.as_str()));
        let matches = bool::from(subtle::ConstantTimeEq::ct_eq(typed.as_bytes(), expected.as_bytes())) && code.is_well_formed();
        match found {
            Some(token) if matches && tries <= MAX_CODE_ATTEMPTS => {
                self.store.release_attempt(&[counter.key, typed_counter.key]).await?;
                Ok(token)
            }
            _ if typed_tries > MAX_CODE_ATTEMPTS => Err(ResetError::TooManyTries),
            _ => Err(ResetError::InvalidCode),
        }
    }

    /// The methods to offer on the reset page (empty when 2-step is off).
    pub async fn reset_methods(&self, grant: &ResetGrant) -> Result<Vec<crate::factors::MethodView>, ResetError> {
        if !self.verifier.two_step_enabled(&grant.account.id).await? {
            return Ok(Vec::new());
        }
        self.offered_methods(&grant.account).await
    }

    /// `Err(SupportUnlockRequired)` while a lock that only support lifts holds the account;
    /// the reset page asks first, so nobody types a new password for nothing.
    pub async fn refuse_support_only_lock(&self, account: &crate::account::Account) -> Result<(), ResetError> {
        match self.store.lock_of(&account.id).await? {
            Some(lock) if lock.support_only => Err(ResetError::SupportUnlockRequired),
            _ => Ok(()),
        }
    }

    /// The methods a reset may pass: while the account is locked from a "this wasn't me"
    /// link, only those enrolled before the reported event (issue 11 §4), so that a method
    /// an attacker added never unlocks it.
    async fn offered_methods(&self, account: &crate::account::Account) -> Result<Vec<crate::factors::MethodView>, ResetError> {
        let methods = self.verifier.methods(account).await?;
        let Some(lock) = self.store.lock_of(&account.id).await? else {
            return Ok(methods);
        };
        let before = |f: &crate::factors::FactorRecord| f.created_at < lock.event_at && f.confirmed_at.is_some_and(|at| at < lock.event_at);
        let older: Vec<String> = self.store.factors_of(&account.id).await?.into_iter().filter(before).map(|f| f.id).collect();
        Ok(methods.into_iter().filter(|m| older.contains(&m.id)).collect())
    }

    /// Sends an SMS or email code for the second step of a reset, bound to its token.
    pub async fn send_reset_code(&self, grant: &ResetGrant, method_id: &str, ctx: &RequestContext) -> Result<(), ResetError> {
        let binding = crate::verifier::Binding { key: &grant.token.id, purpose: "password_reset" };
        self.verifier.send_code(&grant.account, method_id, &binding, ctx).await?;
        Ok(())
    }

    /// Whether a code sent for this reset's second step to `method_id` can still be used:
    /// the page then asks for it ("Enter the code we texted to ...") instead of offering to
    /// send one.
    pub async fn reset_code_sent(&self, grant: &ResetGrant, method_id: &str) -> Result<bool, ResetError> {
        Ok(self.verifier.code_is_live(&grant.token.id, method_id).await?)
    }

    /// Whether a reset link can still be used, without using it (opening the link changes
    /// nothing, S1.9).
    pub async fn reset_link_is_valid(&self, token: &RecoveryToken) -> Result<bool, StoreError> {
        let hash = token.storage_key(&self.deps.keys, Purpose::PasswordReset);
        Ok(self.store.find_valid_token(Purpose::PasswordReset, &hash, self.deps.clock.unix()).await?.is_some())
    }

    /// Sets a new password with a reset link or code (S1.4, S1.6, S1.10, S1.11): the policy
    /// is checked before the token is spent, then one transaction redeems it, sets the
    /// password, ends every session and writes the "password changed" email. No login follows.
    pub async fn reset_password(
        &self,
        grant: &ResetGrant,
        new_password: &Password,
        second: Option<SecondFactorProof<'_>>,
        ctx: &RequestContext,
    ) -> Result<(), ResetError> {
        let now = self.deps.clock.unix();
        let ResetGrant { token, account, via } = grant;
        crate::reset_hold::refuse_while_waiting(&*self.store, &account.id).await??;
        self.refuse_support_only_lock(account).await?;
        self.passwords.check(new_password, &[account.username.as_str(), account.email.local_part()]).await?;
        // S1.12: with 2-step on, a method must be verified too, bound to this reset.
        if self.verifier.two_step_enabled(&account.id).await? {
            let offered = self.offered_methods(account).await?;
            let Some(second) = second else {
                return Err(ResetError::SecondFactorRequired(offered));
            };
            if !offered.iter().any(|m| m.id == second.method_id) {
                return Err(ResetError::SecondFactor(crate::verifier::TwoStepError::Invalid));
            }
            let binding = crate::verifier::Binding { key: &token.id, purpose: "password_reset" };
            self.verifier.verify_method(account, second.method_id, second.code, &binding, ctx).await?;
        }
        let password_hash = self.deps.hasher.hash(new_password).await?;
        // A completed reset unlocks a locked account (the store removes the lock).
        let was_locked = self.store.lock_of(&account.id).await?.is_some();

        let report = crate::report_link::new_report_link(&self.deps, &account.id, crate::report_link::ReportedEvent::PasswordChanged, now);
        let report_link = report.link;
        let when = crate::clock::rfc2822(now);
        // The user agent is the client's own text: only names from a fixed list reach the email (S9.2).
        let device = crate::device::Device::from_user_agent(&ctx.user_agent).describe();
        let content = self
            .deps
            .composer
            .compose(&Notice::PasswordChanged {
                username: account.username.as_str(),
                when: &when,
                ip: &ctx.ip.to_string(),
                device: &device,
                report_link: &report_link,
            })
            .map_err(ResetError::Compose)?;
        let completion = PasswordResetCompletion {
            token_id: token.id.clone(),
            account_id: account.id.clone(),
            password_hash,
            // Both aliases and the account's own budget: a reset ends a lock-out (S3.1, S3.9).
            throttle_keys: vec![
                crate::throttle::login_key(&account.username.key()),
                crate::throttle::login_key(account.email.as_str()),
                crate::throttle::account_cap(&account.id).key,
            ],
            report_token: report.token,
            confirmation: NewMessage::email(account.email.as_str(), "password_changed", Some(account.id.clone()), content, now),
            now,
        };
        let Some(sessions_ended) = self.store.complete_password_reset(&completion).await? else {
            return Err(if *via == Via::Code { ResetError::InvalidCode } else { ResetError::InvalidToken });
        };
        let via = if grant.by_code() { "code" } else { "link" };
        if was_locked {
            self.deps.audit(AuditEvent::AccountUnlocked, Some(&account.id), ctx, "password reset").await?;
        }
        self.deps.audit(AuditEvent::PasswordResetCompleted, Some(&account.id), ctx, via).await?;
        self.deps.audit(AuditEvent::SessionsRevoked, Some(&account.id), ctx, &format!("{sessions_ended} ended by password reset")).await?;
        Ok(())
    }
}

/// The minute a forgot-password request is merged into, for the login whose keyed hash is
/// `login_hash`. Each login's minutes start at its own second (from the hash), so a flood
/// that repeats many logins opens their new windows spread over the minute, not all at once on
/// the clock's full minute: those bursts of a thousand jobs at :00 held up the one real user
/// whose request came right after them (issue 12, docs/BENCHMARKS.md).
fn merge_window(now: i64, login_hash: &str) -> i64 {
    let offset = login_hash.get(login_hash.len().saturating_sub(4)..).and_then(|h| i64::from_str_radix(h, 16).ok()).unwrap_or(0) % 60;
    (now + offset).div_euclid(60)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn each_logins_merge_window_lasts_a_minute_and_opens_at_its_own_second() {
        let boundaries = |hash: &str| -> Vec<i64> { (1..=600).filter(|t| merge_window(*t, hash) != merge_window(t - 1, hash)).collect() };
        let early = boundaries("ab0000");
        let late = boundaries("ab001e");
        assert_eq!(early.len(), 10, "one new window a minute: {early:?}");
        assert!(early.windows(2).all(|w| w[1] - w[0] == 60));
        assert_eq!(late.len(), 10);
        assert_ne!(early[0] % 60, late[0] % 60, "two logins open their windows at different seconds");
    }
    use crate::input::{ParseFailure, parse};

    #[test]
    fn a_malformed_code_is_an_attempt_that_matches_nothing() {
        let key = Keyring::single(crate::keys::ServerKey::generate());
        let code = ResetCode::generate();
        let stored = code.storage_key(&key, "t1");
        let typed: ResetCodeAttempt = serde_json::from_value(serde_json::Value::from(code.grouped())).unwrap();
        assert!(typed.is_well_formed());
        assert_eq!(typed.typed(), code.grouped(), "shown again as typed");
        assert_eq!(typed.storage_key(&key, &stored, "t1"), stored, "spaces are ignored, as ResetCode::parse does");
        for malformed in ["", "1234", "1234 567x", &"9".repeat(500)] {
            let attempt: ResetCodeAttempt = serde_json::from_value(serde_json::Value::from(malformed)).expect("never refused");
            assert!(!attempt.is_well_formed(), "{malformed}");
            assert_eq!(attempt.storage_key(&key, &stored, "t1").len(), stored.len(), "hashed like a code");
            assert_ne!(attempt.storage_key(&key, &stored, "t1"), stored);
        }
        assert_eq!(format!("{typed:?}"), "ResetCodeAttempt(<redacted>)");
    }

    #[test]
    fn a_token_of_the_wrong_shape_is_refused_as_an_invalid_link() {
        let token = RecoveryToken::generate(&Keyring::single(crate::keys::ServerKey::generate()));
        let parsed: RecoveryToken = serde_json::from_value(serde_json::Value::from(token.expose())).unwrap();
        assert_eq!(parsed.expose(), token.expose());
        let refused = parse(|| serde_json::from_str::<RecoveryToken>("\"short\"")).unwrap_err();
        assert!(
            matches!(&refused, ParseFailure::Refused(r) if r.downcast_ref::<crate::token::InvalidResetLink>().is_some()),
            "{refused:?}"
        );
        assert_eq!(crate::token::InvalidResetLink.to_string(), ResetError::InvalidToken.to_string(), "the domain's own words");
    }

    #[test]
    fn a_continuation_travels_as_the_token_id_and_a_tag() {
        let key = Keyring::single(crate::keys::ServerKey::generate());
        let token_id = uuid::Uuid::new_v4().to_string();
        let tag = key.sign(CONTINUATION_PURPOSE, token_id.as_bytes());
        let encoded = ResetContinuation { token_id: token_id.clone(), tag: tag.clone() }.encode();
        assert_eq!(encoded, format!("c1.{token_id}.{tag}"));
        let parsed = ResetContinuation::parse(&encoded).expect("its own shape parses");
        assert_eq!((parsed.token_id.as_str(), parsed.tag.as_str()), (token_id.as_str(), tag.as_str()));
        assert!(key.verify(CONTINUATION_PURPOSE, parsed.token_id.as_bytes(), &parsed.tag));
        assert!(
            !Keyring::single(crate::keys::ServerKey::generate()).verify(CONTINUATION_PURPOSE, parsed.token_id.as_bytes(), &parsed.tag),
            "another key"
        );
        assert!(!format!("{parsed:?}").contains(&tag), "redacted in logs");
        for junk in ["", "c1.", "c1.abc", &format!("c1.{token_id}.short"), &format!("c2.{token_id}.{tag}"), &format!("c1.x'y.{tag}")] {
            assert!(ResetContinuation::parse(junk).is_none(), "{junk:?}");
        }
    }

    #[test]
    fn a_reset_cookie_holds_a_link_token_or_a_continuation() {
        let token = RecoveryToken::generate(&Keyring::single(crate::keys::ServerKey::generate()));
        assert!(matches!(ResetProof::from_cookie(token.expose()), Some(ResetProof::Link(_))));
        let continuation = format!("c1.{}.{}", uuid::Uuid::new_v4(), "a".repeat(43));
        assert!(matches!(ResetProof::from_cookie(&continuation), Some(ResetProof::Continued(_))));
        assert!(ResetProof::from_cookie("12345678").is_none(), "never a code");
    }
}
