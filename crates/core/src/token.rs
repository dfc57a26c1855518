//! Recovery tokens: the secrets that emailed links carry (password reset, "this wasn't me",
//! answer reset and the links built on them) and a reset email's short code, their stored
//! records, the storage they need, and the reset email itself (sent by forgot password and
//! by support). Shared by the features that send such links, below all of them.

use crate::account::{Account, AccountId};
use crate::clock::in_words;
use crate::deps::Deps;
use crate::keyring::Keyring;
use crate::keys::random_bytes;
use crate::notice::Notice;
use crate::outbox::NewMessage;
use crate::store::StoreError;
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    PasswordReset,
    ReportNotMe,
    /// "Forgot your answer?": the emailed link that lets another method set a new question.
    AnswerReset,
}

impl Purpose {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::PasswordReset => "password_reset",
            Self::ReportNotMe => "report_not_me",
            Self::AnswerReset => "answer_reset",
        }
    }
}

/// A link's token that cannot be a token: answered as a reset link that no longer works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("This reset link is not valid any more: it was used, replaced by a newer one, or has expired. Ask for a new email.")]
pub struct InvalidResetLink;

/// A recovery token as it travels in a link. Only its keyed hash is stored, under a key
/// that names its purpose, so that a token of one purpose never works in another (S1.3).
pub struct RecoveryToken(SecretString);

impl std::fmt::Debug for RecoveryToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryToken(<redacted>)")
    }
}

impl RecoveryToken {
    /// 256 bits from the OS CSPRNG (S1.1).
    /// Names the signing key (see [`crate::keyring`]).
    pub fn generate(keys: &Keyring) -> Self {
        Self(keys.new_token())
    }
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        crate::keyring::token_shape(raw).then(|| Self(SecretString::from(raw.to_owned())))
    }
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
    pub fn storage_key(&self, keys: &Keyring, purpose: Purpose) -> String {
        keys.token_hash(&format!("recovery:{}", purpose.as_str()), self.expose())
    }
}

/// A reset link's token as a request brings it: one that cannot be a token is answered as
/// one that no longer works, at the edge (256 bits cannot be guessed, so it is not counted).
impl<'de> serde::Deserialize<'de> for RecoveryToken {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let typed = crate::input::text(deserializer)?;
        Self::parse(typed.expose_secret()).ok_or_else(|| crate::input::refuse(InvalidResetLink))
    }
}

/// The short code in a reset email, for reading the email on one device and typing on another.
pub struct ResetCode(SecretString);

impl std::fmt::Debug for ResetCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResetCode(<redacted>)")
    }
}

impl ResetCode {
    /// Eight digits, uniform from the OS CSPRNG.
    pub fn generate() -> Self {
        let bytes = random_bytes(8);
        let n = u64::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7]]);
        // 2^64 mod 10^8 bias is below 10^-11: negligible.
        Self(SecretString::from(format!("{:08}", n % 100_000_000)))
    }
    /// What a person typed: spaces and dashes are ignored.
    pub fn parse(raw: &str) -> Option<Self> {
        let digits: String = raw.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
        (digits.len() == 8 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| Self(SecretString::from(digits)))
    }
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
    /// Under the signing key, naming it; keyed by the token it belongs to, so equal codes
    /// of two emails hash differently.
    pub fn storage_key(&self, keys: &Keyring, token_id: &str) -> String {
        keys.hash(&format!("reset-code:{token_id}"), self.expose().as_bytes())
    }
    /// "1234 5678", easier to read out.
    pub fn grouped(&self) -> String {
        let code = self.expose();
        format!("{} {}", &code[..4], &code[4..])
    }
}

/// A reset code as a request brings it: whatever was typed. A malformed one is not refused at
/// the edge: it is a guess like any other, counted and compared as a wrong code is, so it gets
/// a wrong code's answer, at a wrong code's time (S2.5, S3.7).
pub struct ResetCodeAttempt {
    typed: SecretString,
    code: Option<ResetCode>,
}

impl ResetCodeAttempt {
    pub fn new(raw: &str) -> Self {
        Self { typed: SecretString::from(raw.to_owned()), code: ResetCode::parse(raw) }
    }
    /// The text as typed, to show again in the form.
    pub fn typed(&self) -> &str {
        self.typed.expose_secret()
    }
    /// Whether it has a code's shape; one that has not can match nothing.
    pub fn is_well_formed(&self) -> bool {
        self.code.is_some()
    }
    /// The keyed hash to compare with the stored one: the code's, or for a malformed
    /// attempt, one made the same way from what was typed, so that it costs the same.
    /// Made under the key the stored hash names.
    pub fn storage_key(&self, keys: &Keyring, stored: &str, token_id: &str) -> String {
        let typed = match &self.code {
            Some(code) => code.expose(),
            None => self.typed(),
        };
        keys.hash_like(stored, &format!("reset-code:{token_id}"), typed.as_bytes())
    }
}

impl std::fmt::Debug for ResetCodeAttempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResetCodeAttempt(<redacted>)")
    }
}

impl<'de> serde::Deserialize<'de> for ResetCodeAttempt {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::input::text(deserializer).map(|typed| Self::new(typed.expose_secret()))
    }
}

pub struct NewRecoveryToken {
    pub id: String,
    pub account_id: AccountId,
    pub purpose: Purpose,
    pub token_hash: String,
    pub code_hash: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    /// What a "this wasn't me" token reports; `None` for other purposes.
    pub event: Option<ReportedEvent>,
}

#[derive(Debug, Clone)]
pub struct ValidToken {
    pub id: String,
    pub account_id: AccountId,
    pub code_hash: Option<String>,
}

pub struct PasswordResetCompletion {
    pub token_id: String,
    pub account_id: AccountId,
    pub password_hash: String,
    /// Login throttle keys to clear: a successful recovery ends a lock-out (S3.1).
    pub throttle_keys: Vec<String>,
    pub report_token: NewRecoveryToken,
    pub confirmation: NewMessage,
    pub now: i64,
}

/// Why a reset link could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ResetLinkError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("composing the email failed: {0}")]
    Compose(String),
}

/// Writes a new reset link and code for `account`, valid `ttl_seconds`, replacing its older
/// ones (S1.6), and the email that carries them. No limit is applied here: the caller applies
/// its own (a "forgot password" job its rate limits, support its step-up and audit).
pub async fn email_reset_link(
    deps: &Deps,
    store: &dyn RecoveryStore,
    account: &Account,
    ttl_seconds: i64,
    now: i64,
) -> Result<(), ResetLinkError> {
    let (record, message) = reset_link(deps, account, &uuid::Uuid::new_v4().to_string(), ttl_seconds, now)?;
    store.issue_recovery_token(&record, &message).await?;
    Ok(())
}

/// A new reset link and code for `account`, valid `ttl_seconds`, stored under `token_id`, and
/// the email that carries them (with the same id); not yet written.
pub fn reset_link(
    deps: &Deps,
    account: &Account,
    token_id: &str,
    ttl_seconds: i64,
    now: i64,
) -> Result<(NewRecoveryToken, NewMessage), ResetLinkError> {
    let token = RecoveryToken::generate(&deps.keys);
    let code = ResetCode::generate();
    let token_id = token_id.to_owned();
    let link = format!("{}reset-password?token={}", deps.base_url, token.expose());
    let content = deps
        .composer
        .compose(&Notice::PasswordReset {
            username: account.username.as_str(),
            link: &link,
            code: &code.grouped(),
            valid_for: &in_words(ttl_seconds),
        })
        .map_err(ResetLinkError::Compose)?;
    let record = NewRecoveryToken {
        id: token_id.clone(),
        account_id: account.id.clone(),
        purpose: Purpose::PasswordReset,
        token_hash: token.storage_key(&deps.keys, Purpose::PasswordReset),
        code_hash: Some(code.storage_key(&deps.keys, &token_id)),
        created_at: now,
        expires_at: now + ttl_seconds,
        event: None,
    };
    let mut message = NewMessage::email(account.email.as_str(), "password_reset", Some(account.id.clone()), content, now);
    message.id = record.id.clone();
    Ok((record, message))
}

/// What writing a "forgot password" job's reset link came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetIssue {
    Issued,
    /// A limit is spent: nothing was counted or written.
    Refused,
    /// This job's token exists: it ran before (and crashed before it was marked done).
    AlreadyIssued,
    /// The account was sent a link of the same purpose within the resend cooldown (by
    /// another job that ran at the same time, on this worker or another replica's): nothing
    /// was counted or written.
    TooSoon,
}

/// The event a report link reports, with what a lock needs to roll it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportedEvent {
    PasswordChanged,
    /// A 2-step method (or phone) was added: a lock removes it.
    MethodAdded {
        method_id: String,
    },
    /// A 2-step method was removed: a lock puts it back.
    MethodRemoved {
        method_id: String,
    },
    /// The account's address changed: a lock moves it back to `old_email`.
    EmailChanged {
        old_email: String,
    },
    TwoStepResetStarted,
    NewDeviceSignIn,
    /// Any other security email (recovery codes used, a code replayed...): nothing to undo.
    SecurityChange,
}

impl ReportedEvent {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::PasswordChanged => "password_changed",
            Self::MethodAdded { .. } => "method_added",
            Self::MethodRemoved { .. } => "method_removed",
            Self::EmailChanged { .. } => "email_changed",
            Self::TwoStepResetStarted => "two_step_reset_started",
            Self::NewDeviceSignIn => "new_device_sign_in",
            Self::SecurityChange => "security_change",
        }
    }

    /// The stored detail: a method's id or the old address.
    pub fn detail(&self) -> Option<&str> {
        match self {
            Self::MethodAdded { method_id } | Self::MethodRemoved { method_id } => Some(method_id),
            Self::EmailChanged { old_email } => Some(old_email),
            _ => None,
        }
    }

    /// Read back from storage; an unknown kind reports nothing that can be undone.
    pub fn from_stored(kind: Option<&str>, detail: Option<String>) -> Self {
        match (kind, detail) {
            (Some("password_changed"), _) => Self::PasswordChanged,
            (Some("method_added"), Some(method_id)) => Self::MethodAdded { method_id },
            (Some("method_removed"), Some(method_id)) => Self::MethodRemoved { method_id },
            (Some("email_changed"), Some(old_email)) => Self::EmailChanged { old_email },
            (Some("two_step_reset_started"), _) => Self::TwoStepResetStarted,
            (Some("new_device_sign_in"), _) => Self::NewDeviceSignIn,
            _ => Self::SecurityChange,
        }
    }
}

#[async_trait]
pub trait RecoveryStore: Send + Sync {
    /// In one transaction: voids the account's unused tokens of the same purpose (S1.6),
    /// stores the new token's hash and writes the message that carries it.
    async fn issue_recovery_token(&self, token: &NewRecoveryToken, message: &NewMessage) -> Result<(), StoreError>;
    /// In one transaction, for a "forgot password" job: nothing when a token with `token`'s id
    /// exists (the job ran before a crash and is run again); else counts one attempt under
    /// `limits` (refusing when one is spent, counting nothing), then does what
    /// `issue_recovery_token` does, unless the account has a token of the same purpose
    /// created after `not_since` (checked once the limits' rows are held, so two jobs for
    /// one account at once send one email). A crash anywhere leaves either all of it or
    /// none: a job run twice neither counts twice nor emails twice.
    async fn issue_reset_within_limits(
        &self,
        limits: &[crate::throttle::ThrottleKey],
        now: i64,
        not_since: i64,
        token: &NewRecoveryToken,
        message: &NewMessage,
    ) -> Result<ResetIssue, StoreError>;
    /// In one transaction: voids the account's unused tokens of `replacing`'s purpose and
    /// stores it (when given), stores each of `adding` beside what exists (report links are
    /// voided by nothing but their own use or expiry), and writes the message that carries them.
    async fn issue_tokens(
        &self,
        replacing: Option<&NewRecoveryToken>,
        adding: &[NewRecoveryToken],
        message: &NewMessage,
    ) -> Result<(), StoreError>;
    /// Spends a live token by its id, once: exactly one of concurrent redemptions wins.
    async fn redeem_token(&self, purpose: Purpose, id: &str, now: i64) -> Result<bool, StoreError>;
    async fn find_valid_token(&self, purpose: Purpose, token_hash: &str, now: i64) -> Result<Option<ValidToken>, StoreError>;
    /// A live token by its id (a reset continued after its emailed code was verified).
    async fn find_valid_token_by_id(&self, purpose: Purpose, id: &str, now: i64) -> Result<Option<ValidToken>, StoreError>;
    /// The newest live password-reset token of the account a login names, in one query
    /// whether or not the account exists (S2.5: reset by code does the same work for all).
    async fn reset_code_target(&self, login_key: &str, now: i64) -> Result<Option<ValidToken>, StoreError>;
    /// In one transaction: sets the password, voids every reset link, ends every session but
    /// `keep_session`, and writes the notice. Returns how many sessions ended.
    async fn change_password(
        &self,
        account: &AccountId,
        password_hash: &str,
        keep_session: &str,
        notice: &NewMessage,
        now: i64,
    ) -> Result<u64, StoreError>;
    /// When the account's newest token of a purpose was issued, if any.
    async fn last_token_issued_at(&self, account: &AccountId, purpose: Purpose) -> Result<Option<i64>, StoreError>;
    /// In one transaction: redeems the token (exactly one of concurrent redemptions wins,
    /// S1.4), sets the password, voids every other reset token (S1.6), ends every session
    /// (S1.11), clears the login throttles, issues the "this wasn't me" token and writes the
    /// confirmation. `None` when the token could no longer be redeemed; else sessions ended.
    async fn complete_password_reset(&self, completion: &PasswordResetCompletion) -> Result<Option<u64>, StoreError>;
}
