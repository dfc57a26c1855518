//! "Forgot your answer?" (issue 11 §1, checklist S6.6): from a security-question prompt (the
//! second step of login, or of a reset), a link is emailed to the account's address. The
//! link opens a page where the person verifies another, strong method of the account (never
//! the question) and sets a new question and answer at once. The link is 256 bits, stored as
//! a keyed hash under its own purpose, single use, valid one hour; the change is notified.

use crate::account::{Account, AccountId};
use crate::audit::{AuditEvent, RequestContext};
use crate::clock::in_words;
use crate::deps::Deps;
use crate::factors::{FactorCode, FactorKind, MethodView, SecurityAnswer};
use crate::notice::Notice;
use crate::outbox::NewMessage;
use crate::question::{check_question, install_question};
use crate::report_link::{ReportedEvent, new_report_link};
use crate::step_up::{AnswerResetProof, QuestionChange};
use crate::store::StoreError;
use crate::throttle::{ThrottleKey, ThrottleRule};
use crate::token::{NewRecoveryToken, Purpose, RecoveryToken, ValidToken};
use crate::verifier::{Binding, TwoStepError, Verifier};
use std::sync::Arc;

crate::storage_trait! {
    /// The storage `AnswerReset` reads and writes.
    pub trait AnswerResetStorage: crate::store::AccountStore, crate::token::RecoveryStore
}

/// How long the emailed link works.
pub const ANSWER_RESET_TTL_SECONDS: i64 = 3600;

/// Where "Forgot your answer?" was asked from: it decides where the page sends someone who
/// cannot use any other method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerResetOrigin {
    /// The second step of login: the password was given.
    Login,
    /// The second step of a password reset: the email was proved, not the password.
    Reset,
}

impl AnswerResetOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Reset => "reset",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Login, Self::Reset].into_iter().find(|o| o.as_str() == raw)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AnswerResetError {
    #[error(
        "This link is not valid any more: it was used, replaced by a newer one, or has expired. Ask for a new one from the security question."
    )]
    InvalidToken,
    #[error(transparent)]
    TwoStep(#[from] TwoStepError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("composing the email failed: {0}")]
    Compose(String),
}

/// A live "Forgot your answer?" link, opened (nothing spent). Only [`AnswerReset::open`]
/// makes one.
pub struct AnswerResetGrant {
    token: ValidToken,
    account: Account,
}

impl AnswerResetGrant {
    pub fn account(&self) -> &Account {
        &self.account
    }
}

/// The token of a "Forgot your answer?" link as a request brings it.
#[derive(Debug)]
pub struct AnswerResetToken(RecoveryToken);

impl AnswerResetToken {
    pub fn parse(raw: &str) -> Option<Self> {
        RecoveryToken::parse(raw).map(Self)
    }
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl<'de> serde::Deserialize<'de> for AnswerResetToken {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let typed = crate::input::text(deserializer)?;
        Self::parse(secrecy::ExposeSecret::expose_secret(&typed)).ok_or_else(|| crate::input::refuse(crate::token::InvalidResetLink))
    }
}

/// Silent limits on the emails (S3.5): the answer is the same when one is held back.
fn email_limits(account: &AccountId, ip: std::net::IpAddr) -> Vec<ThrottleKey> {
    vec![
        ThrottleKey {
            key: format!("answer-reset:account:{account}"),
            rule: ThrottleRule::Budget { limit: 3, window: 3600, cooldown: 3600 },
        },
        ThrottleKey { key: format!("answer-reset:ip:{ip}"), rule: ThrottleRule::Budget { limit: 20, window: 3600, cooldown: 3600 } },
    ]
}

#[derive(Debug, Clone)]
pub struct AnswerReset {
    deps: Deps,
    store: Arc<dyn AnswerResetStorage>,
    verifier: Verifier,
}

impl AnswerReset {
    pub fn new(deps: Deps, store: Arc<dyn AnswerResetStorage>, verifier: Verifier) -> Self {
        Self { store, deps, verifier }
    }

    /// Emails a "Forgot your answer?" link to the account's address, when the account has a
    /// question and another method to prove, within the silent limits. The caller answers
    /// the same whatever happened here. `account` comes from a half-signed-in session (the
    /// password was right) or a reset grant (the email was proved): never from a typed login.
    pub async fn request(&self, account: &Account, origin: AnswerResetOrigin, ctx: &RequestContext) -> Result<(), AnswerResetError> {
        let methods = self.verifier.methods(account).await?;
        let has_question = methods.iter().any(|m| m.kind == FactorKind::SecurityQuestion);
        let has_other = methods.iter().any(|m| m.kind != FactorKind::SecurityQuestion);
        if !has_question || !has_other {
            self.deps.audit(AuditEvent::AnswerResetRequested, Some(&account.id), ctx, "nothing to reset; no email").await?;
            return Ok(());
        }
        if self.deps.claim(&email_limits(&account.id, ctx.ip)).await?.is_some() {
            self.deps.audit(AuditEvent::AnswerResetRequested, Some(&account.id), ctx, "limited; no email").await?;
            return Ok(());
        }
        let now = self.deps.now();
        let token = RecoveryToken::generate(&self.deps.keys);
        let link = format!("{}answer-reset?token={}&from={}", self.deps.base_url, token.expose(), origin.as_str());
        let report = new_report_link(&self.deps, &account.id, ReportedEvent::SecurityChange, now);
        let content = self
            .deps
            .composer
            .compose(&Notice::AnswerReset {
                username: account.username.as_str(),
                link: &link,
                valid_for: &in_words(ANSWER_RESET_TTL_SECONDS),
                when: &crate::clock::rfc2822(now),
                ip: &ctx.ip.to_string(),
                report_link: &report.link,
            })
            .map_err(AnswerResetError::Compose)?;
        let record = NewRecoveryToken {
            id: uuid::Uuid::new_v4().to_string(),
            account_id: account.id.clone(),
            purpose: Purpose::AnswerReset,
            token_hash: token.storage_key(&self.deps.keys, Purpose::AnswerReset),
            code_hash: None,
            created_at: now,
            expires_at: now + ANSWER_RESET_TTL_SECONDS,
            event: None,
        };
        let message = NewMessage::email(account.email.as_str(), "answer_reset", Some(account.id.clone()), content, now);
        self.store.issue_tokens(Some(&record), std::slice::from_ref(&report.token), &message).await?;
        self.deps.audit(AuditEvent::AnswerResetRequested, Some(&account.id), ctx, origin.as_str()).await?;
        Ok(())
    }

    /// Opens a link without spending it (GETs change nothing).
    pub async fn open(&self, token: &AnswerResetToken) -> Result<AnswerResetGrant, AnswerResetError> {
        let hash = token.0.storage_key(&self.deps.keys, Purpose::AnswerReset);
        let found = self.store.find_valid_token(Purpose::AnswerReset, &hash, self.deps.now()).await?;
        let token = found.ok_or(AnswerResetError::InvalidToken)?;
        let account = self.store.get_account(&token.account_id).await?.ok_or(AnswerResetError::InvalidToken)?;
        Ok(AnswerResetGrant { token, account })
    }

    /// The methods that may prove it is the owner here: the strong ones, never the question.
    pub async fn methods(&self, grant: &AnswerResetGrant) -> Result<Vec<MethodView>, AnswerResetError> {
        Ok(self.verifier.strong_methods(&grant.account).await?)
    }

    fn binding(grant: &AnswerResetGrant) -> Binding<'_> {
        Binding { key: &grant.token.id, purpose: "answer_reset" }
    }

    /// Sends an SMS or email code for a method, bound to this link.
    pub async fn send_code(&self, grant: &AnswerResetGrant, method_id: &str, ctx: &RequestContext) -> Result<(), AnswerResetError> {
        if self.verifier.is_security_question(&grant.account.id, method_id).await? {
            return Err(TwoStepError::QuestionNotEnough.into());
        }
        Ok(self.verifier.send_code(&grant.account, method_id, &Self::binding(grant), ctx).await?)
    }

    /// Whether a code sent for this link to `method_id` can still be used.
    pub async fn code_sent(&self, grant: &AnswerResetGrant, method_id: &str) -> Result<bool, AnswerResetError> {
        Ok(self.verifier.code_is_live(&grant.token.id, method_id).await?)
    }

    /// Sets the new question: the answer is checked first (a refused one spends nothing),
    /// then the method (counted before compared; never the question itself), which makes
    /// the [`AnswerResetProof`]; then the link is spent, once, and the question replaced
    /// and notified.
    pub async fn complete(
        &self,
        grant: &AnswerResetGrant,
        method_id: &str,
        code: &FactorCode,
        question_id: &str,
        answer: &SecurityAnswer,
        ctx: &RequestContext,
    ) -> Result<(), AnswerResetError> {
        let account = &grant.account;
        if self.verifier.is_security_question(&account.id, method_id).await? {
            return Err(TwoStepError::QuestionNotEnough.into());
        }
        let checked = check_question(&self.verifier, account, question_id, answer).await?;
        self.verifier.verify_method(account, method_id, code, &Self::binding(grant), ctx).await?;
        let proof = AnswerResetProof::after_link_and_method(account.id.clone(), grant.token.id.clone());
        if !self.store.redeem_token(Purpose::AnswerReset, proof.token_id(), self.deps.now()).await? {
            return Err(AnswerResetError::InvalidToken);
        }
        install_question(&self.verifier, QuestionChange::AnswerReset(&proof), account, checked, ctx).await?;
        self.deps.audit(AuditEvent::AnswerResetCompleted, Some(&account.id), ctx, "").await?;
        Ok(())
    }
}
