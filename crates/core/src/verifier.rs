//! Verifying a person with their 2-step methods (checklist S3.4, S5.2-S5.8, S6.1-S6.4): which
//! methods an account has and may use here, sending a code, and checking a code or answer,
//! counted before it is compared. Shared by every feature that asks for a method: login's
//! second step and step-up (`TwoStep`), reset (`Recovery`) and password change.

use crate::account::{Account, AccountId};
use crate::audit::{AuditEvent, RequestContext};
use crate::deps::Deps;
use crate::factors::{
    AnswerError, FactorCode, FactorKind, FactorRecord, MethodView, NewOtp, TotpSecret, generate_otp, mask_email, normalise_answer,
    normalise_code, question_text, recovery_code_hashes,
};
use crate::notice::Notice;
use crate::outbox::NewMessage;
use crate::password::{HashError, Password, Verified};
use crate::report_link::ReportedEvent;
use crate::session::SessionRecord;
use crate::step_up::{NotYourProof, StepUpRequired};
use crate::store::StoreError;
use crate::throttle::{ThrottleKey, ThrottleRule};
use secrecy::ExposeSecret;
use std::sync::Arc;

crate::storage_trait! {
    /// The storage `Verifier` reads and writes.
    pub trait VerifierStorage:
        crate::store::AccountStore,
        crate::factors::FactorStore,
        crate::store::OutboxStore,
        crate::store::ThrottleStore,
        crate::report_link::ReportLinkStore,
        crate::reset_hold::ResetHoldStore,
}

/// Lifetime of a code sent by SMS or email (S1.5, S5.5).
pub const OTP_TTL_SECONDS: i64 = 10 * 60;
/// Wrong tries one sent code survives (S3.4).
pub const OTP_MAX_ATTEMPTS: i64 = 5;
/// Least time between two codes sent to one method.
pub const RESEND_COOLDOWN_SECONDS: i64 = 30;

/// What an account is told when 2-step is on but none of its methods can be used here: its
/// only method is a phone and this server has no SMS provider. The password alone never
/// replaces the second step (issue 8), so the owner and the operator must act.
pub const NO_USABLE_METHOD: &str = "Your 2-step verification method is text messages, which this server cannot send at the moment, and you have no other method that works here. Ask the administrator of this server to turn text messages back on; your password alone cannot replace the second step.";

#[derive(Debug, Clone)]
pub struct TwoStepSettings {
    /// Email codes are the weakest method and off unless the operator turns them on (S5.7).
    pub email_codes_enabled: bool,
    /// Whether this server can send a text (an SMS provider, or the dev outbox in demo
    /// mode). Without it no SMS method is offered, enrolled, sent to or accepted (issue 8).
    pub sms_available: bool,
    /// How recent a verification must be for sensitive actions (S7.6).
    pub step_up_window_seconds: i64,
    /// The issuer name shown in authenticator apps.
    pub issuer: String,
}

impl Default for TwoStepSettings {
    fn default() -> Self {
        Self { email_codes_enabled: false, sms_available: false, step_up_window_seconds: 10 * 60, issuer: "doorman".into() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TwoStepError {
    /// One answer for every wrong code, answer or unknown method (never says which part).
    #[error("That code or answer is not right. Check it and try again, or try another method.")]
    Invalid,
    /// A wrong code while adding a method: there is no other method to point to yet.
    #[error("That code is not right. Enter the newest code and try again.")]
    WrongEnrolmentCode,
    /// Every failure of an authenticator code, wrong or already used: the hint about waiting
    /// for the next code is given either way, so it never tells a replay from a wrong code.
    #[error("That code is not right. If you just used a code, wait for the next one.")]
    InvalidTotp,
    #[error("Too many wrong tries. Wait {}, or try another method.", crate::clock::in_words(*.0))]
    Throttled(i64),
    #[error("Wait {} before asking for another code.", crate::clock::in_words(*.0))]
    ResendTooSoon(i64),
    #[error("You have tried five new numbers today. Try again in {}.", crate::clock::in_words(*.0))]
    TooManyNumbers(i64),
    #[error("You have changed your 2-step methods {} times today. Try again in {}.", crate::two_step::METHOD_CHANGES_PER_DAY, crate::clock::in_words(*.0))]
    TooManyChanges(i64),
    #[error("This method does not send codes.")]
    NotSendable,
    #[error("Email codes are turned off on this server.")]
    EmailCodesDisabled,
    #[error("Text-message codes are not available on this server. Use an authenticator app or recovery codes instead.")]
    SmsUnavailable,
    #[error("Add an authenticator app, a phone or recovery codes first: a security question is never enough on its own.")]
    QuestionNeedsAnotherMethod,
    #[error("A security question cannot confirm it is you on its own here. Use your authenticator app, a text message or a recovery code.")]
    QuestionNotEnough,
    #[error("Remove your security question first: it cannot be your only method.")]
    LastRealMethod,
    #[error("No such method.")]
    UnknownMethod,
    #[error(transparent)]
    Answer(#[from] AnswerError),
    #[error(transparent)]
    Phone(#[from] crate::phone::PhoneError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error("a stored secret could not be read")]
    Seal,
    #[error("composing a message failed: {0}")]
    Compose(String),
    /// The session did not verify recently (S7.6): what it may step up with.
    #[error("Confirm it is you first.")]
    StepUpRequired(StepUpRequired),
    #[error(transparent)]
    NotYourProof(#[from] NotYourProof),
    #[error(transparent)]
    ResetWaiting(#[from] crate::reset_hold::ResetWaiting),
}

/// Where a verification happens: its kind of binding decides which codes count.
pub struct Binding<'a> {
    /// The session id hash or reset-token id the codes are bound to.
    pub key: &'a str,
    pub purpose: &'static str,
}

fn factor_limits(account: &AccountId, factor_id: &str) -> Vec<ThrottleKey> {
    vec![
        // Each method: 5 wrong tries per 15 minutes; sending a new code does not reset it (S3.4).
        ThrottleKey { key: format!("factor:{factor_id}"), rule: ThrottleRule::Budget { limit: 5, window: 900, cooldown: 900 } },
        // All methods of an account together.
        ThrottleKey { key: format!("factors:{account}"), rule: ThrottleRule::Budget { limit: 15, window: 3600, cooldown: 900 } },
    ]
}

/// The 2-step methods of accounts, over the factor store.
#[derive(Debug, Clone)]
pub struct Verifier {
    pub(crate) deps: Deps,
    pub(crate) store: Arc<dyn VerifierStorage>,
    pub(crate) settings: TwoStepSettings,
}

impl Verifier {
    pub fn new(deps: Deps, store: Arc<dyn VerifierStorage>, settings: TwoStepSettings) -> Self {
        Self { store, deps, settings }
    }

    pub fn settings(&self) -> &TwoStepSettings {
        &self.settings
    }

    /// The account's usable methods, as offered at login, reset and step-up: the enrolled
    /// ones less those this server cannot use now. A default that cannot be used gives way
    /// to the strongest one left.
    pub async fn methods(&self, account: &Account) -> Result<Vec<MethodView>, TwoStepError> {
        Ok(self.enrolled_methods(account).await?.into_iter().filter(|m| m.available).collect())
    }

    /// Every enrolled method, as Security settings list them, with `available` false for a
    /// phone when this server cannot send texts.
    pub async fn enrolled_methods(&self, account: &Account) -> Result<Vec<MethodView>, TwoStepError> {
        let factors = self.store.factors_of(&account.id).await?;
        let mut views = Vec::new();
        for f in factors.iter().filter(|f| f.confirmed_at.is_some()) {
            if f.kind == FactorKind::Email && !self.settings.email_codes_enabled {
                continue;
            }
            let hint = match f.kind {
                FactorKind::Totp => "6-digit code from your app".to_owned(),
                FactorKind::Sms => f.label.clone(),
                FactorKind::Email => mask_email(&account.email),
                FactorKind::SecurityQuestion => question_text(&f.label).unwrap_or("Security question").to_owned(),
                FactorKind::RecoveryCode => {
                    let left = self.store.recovery_codes_left(&account.id).await?;
                    if left == 0 {
                        continue;
                    }
                    format!("{left} codes left")
                }
            };
            let available = f.kind != FactorKind::Sms || self.settings.sms_available;
            views.push(MethodView { id: f.id.clone(), kind: f.kind, hint, title: f.kind.title(), is_default: f.is_default, available });
        }
        // The default first, then the strongest: app, SMS, email, question, recovery codes.
        views.sort_by_key(|v| (!v.is_default, FactorKind::ALL.iter().position(|k| *k == v.kind)));
        Ok(views)
    }

    /// The methods that may be a proof on their own (step-up, payment approvals): all but
    /// the security question (S6.1).
    pub async fn strong_methods(&self, account: &Account) -> Result<Vec<MethodView>, TwoStepError> {
        Ok(self.methods(account).await?.into_iter().filter(|m| m.kind != FactorKind::SecurityQuestion).collect())
    }

    /// Whether the account has 2-step on: any confirmed method besides recovery codes.
    pub async fn two_step_enabled(&self, account: &AccountId) -> Result<bool, StoreError> {
        let factors = self.store.factors_of(account).await?;
        Ok(self.two_step_on(factors.iter().filter(|f| f.confirmed_at.is_some()).map(|f| f.kind)))
    }

    /// [`Self::two_step_enabled`] from the kinds of an account's confirmed methods, read
    /// elsewhere (a password sign-in reads them with the lock, in one round trip).
    pub fn two_step_on(&self, confirmed: impl IntoIterator<Item = FactorKind>) -> bool {
        // Email codes the operator turned off no longer count: they could not be used.
        confirmed
            .into_iter()
            .any(|kind| kind != FactorKind::RecoveryCode && (kind != FactorKind::Email || self.settings.email_codes_enabled))
    }

    pub(crate) async fn notify(&self, account: &Account, change: &str, ctx: &RequestContext) -> Result<(), TwoStepError> {
        self.notify_event(account, change, ReportedEvent::SecurityChange, ctx).await
    }

    /// A security email whose "this wasn't me" link reports `event` (issue 11 §4).
    pub(crate) async fn notify_event(
        &self,
        account: &Account,
        change: &str,
        event: ReportedEvent,
        ctx: &RequestContext,
    ) -> Result<(), TwoStepError> {
        let report_link = crate::report_link::report_link(&self.deps, &*self.store, &account.id, event).await?;
        self.send_security_change(account, change, &report_link, ctx).await
    }

    /// A stored "this wasn't me" link for `event` and its token's id
    /// ([`crate::report_link::stored_report_link`]).
    pub(crate) async fn mint_report_link(&self, account: &Account, event: ReportedEvent) -> Result<(String, String), TwoStepError> {
        Ok(crate::report_link::stored_report_link(&self.deps, &*self.store, &account.id, event).await?)
    }

    /// The security email of a change, with its report link.
    pub(crate) async fn send_security_change(
        &self,
        account: &Account,
        change: &str,
        report_link: &str,
        ctx: &RequestContext,
    ) -> Result<(), TwoStepError> {
        let now = self.deps.clock.unix();
        let when = crate::clock::rfc2822(now);
        let content = self
            .deps
            .composer
            .compose(&Notice::SecurityChange {
                username: account.username.as_str(),
                change,
                when: &when,
                ip: &ctx.ip.to_string(),
                report_link,
            })
            .map_err(TwoStepError::Compose)?;
        let message = NewMessage::email(account.email.as_str(), "security_change", Some(account.id.clone()), content, now);
        self.store.enqueue_message(&message).await?;
        Ok(())
    }

    /// Sends a code by SMS or email for a method, bound to `binding` (a session or a reset
    /// link). The resend wait and the per-method attempt count survive a new code (S3.4).
    pub async fn send_code(
        &self,
        account: &Account,
        method_id: &str,
        binding: &Binding<'_>,
        ctx: &RequestContext,
    ) -> Result<(), TwoStepError> {
        let factors = self.store.factors_of(&account.id).await?;
        let factor = factors.iter().find(|f| f.id == method_id && f.confirmed_at.is_some()).ok_or(TwoStepError::UnknownMethod)?;
        if !factor.kind.is_sent() {
            return Err(TwoStepError::NotSendable);
        }
        if factor.kind == FactorKind::Email && !self.settings.email_codes_enabled {
            return Err(TwoStepError::EmailCodesDisabled);
        }
        if factor.kind == FactorKind::Sms && !self.settings.sms_available {
            return Err(TwoStepError::SmsUnavailable);
        }
        self.deliver_code(account, factor, binding, ctx).await
    }

    /// Makes, stores and queues one code for a method, within the resend wait and the caps
    /// per method and per phone number (S3.5: inbox flooding and SMS toll fraud).
    pub(crate) async fn deliver_code(
        &self,
        account: &Account,
        factor: &FactorRecord,
        binding: &Binding<'_>,
        ctx: &RequestContext,
    ) -> Result<(), TwoStepError> {
        let now = self.deps.clock.unix();
        // The resend wait is a count like the others, claimed in the same statement (S3.8):
        // read and compared apart, parallel requests to two replicas each sent a text.
        let mut caps = vec![
            ThrottleKey {
                key: format!("code-resend:{}", factor.id),
                rule: ThrottleRule::Budget { limit: 1, window: RESEND_COOLDOWN_SECONDS, cooldown: RESEND_COOLDOWN_SECONDS },
            },
            ThrottleKey {
                key: format!("codes-sent:{}", factor.id),
                rule: ThrottleRule::Budget { limit: 10, window: 3600, cooldown: 3600 },
            },
        ];
        if factor.kind == FactorKind::Sms {
            // Across accounts: one number cannot be made to receive more than 20 texts a day.
            caps.push(ThrottleKey {
                key: format!("sms-to:{}", factor.secret.expose()),
                rule: ThrottleRule::Budget { limit: 20, window: 86_400, cooldown: 86_400 },
            });
        }
        if let Some(wait) = self.deps.claim(&caps).await? {
            return Err(TwoStepError::ResendTooSoon(wait));
        }
        let code = generate_otp();
        let otp_id = uuid::Uuid::new_v4().to_string();
        let otp = NewOtp {
            id: otp_id.clone(),
            binding: binding.key.to_owned(),
            factor_id: factor.id.clone(),
            code_hash: self.deps.keys.hash(&format!("otp:{otp_id}"), code.expose_secret().as_bytes()),
            created_at: now,
            expires_at: now + OTP_TTL_SECONDS,
        };
        let content = self
            .deps
            .composer
            .compose(&Notice::VerificationCode {
                username: account.username.as_str(),
                code: code.expose_secret(),
                purpose: binding.purpose,
                sms: factor.kind == FactorKind::Sms,
            })
            .map_err(TwoStepError::Compose)?;
        let message = match factor.kind {
            FactorKind::Sms => NewMessage::sms(factor.secret.expose(), "verification_code", Some(account.id.clone()), content, now),
            _ => NewMessage::email(account.email.as_str(), "verification_code", Some(account.id.clone()), content, now),
        };
        self.store.insert_otp(&otp, &message).await?;
        self.deps.audit(AuditEvent::CodeSent, Some(&account.id), ctx, factor.kind.as_str()).await?;
        Ok(())
    }

    /// Checks a sent code for a binding and method, spending it when right.
    pub(crate) async fn check_otp(&self, binding: &str, factor: &FactorRecord, code: &FactorCode, now: i64) -> Result<bool, TwoStepError> {
        match self.store.latest_otp(binding, &factor.id, now).await? {
            Some(otp) if otp.attempts < OTP_MAX_ATTEMPTS => {
                if !self.store.claim_otp_attempt(&otp.id, OTP_MAX_ATTEMPTS).await? {
                    return Ok(false);
                }
                let typed = self.deps.keys.hash_like(&otp.code_hash, &format!("otp:{}", otp.id), normalise_code(code.expose()).as_bytes());
                if subtle::ConstantTimeEq::ct_eq(typed.as_bytes(), otp.code_hash.as_bytes()).into() {
                    Ok(self.store.consume_otp(&otp.id, now).await?)
                } else {
                    Ok(false)
                }
            }
            _ => Ok(false),
        }
    }

    /// Whether a code sent for `binding_key` to a method can still be used (unexpired, not
    /// spent, tries left): pages then ask for it rather than offer to send one.
    pub async fn code_is_live(&self, binding_key: &str, method_id: &str) -> Result<bool, TwoStepError> {
        let now = self.deps.clock.unix();
        Ok(self.store.latest_otp(binding_key, method_id, now).await?.is_some_and(|otp| otp.attempts < OTP_MAX_ATTEMPTS))
    }

    /// Count, then compare (S3.4, S3.7, S3.8): one try at a method is counted before its
    /// code or answer is compared, and refused once a limit is reached. A security answer
    /// also counts toward the account's own budget (S6.4). Returns the keys to settle on
    /// success.
    pub(crate) async fn claim_guess(&self, account: &Account, factor: &FactorRecord) -> Result<Vec<ThrottleKey>, TwoStepError> {
        let mut keys = factor_limits(&account.id, &factor.id);
        if factor.kind == FactorKind::SecurityQuestion {
            keys.push(crate::throttle::account_cap(&account.id));
        }
        match self.deps.claim(&keys).await? {
            Some(wait) => Err(TwoStepError::Throttled(wait)),
            None => Ok(keys),
        }
    }

    /// S9.1: the right password followed by a failed second step means someone may know the
    /// password. The owner hears of it once per login attempt, not once per wrong code.
    async fn warn_password_known(&self, account: &Account, pending_session: &str, ctx: &RequestContext) -> Result<(), TwoStepError> {
        let now = self.deps.clock.unix();
        let key = ThrottleKey {
            key: format!("second-step-failed:{pending_session}"),
            rule: ThrottleRule::Budget { limit: 1, window: 3600, cooldown: 0 },
        };
        if self.store.count_attempt(&key, now).await? == 1 {
            self.notify(account, "Someone entered your password correctly but did not pass 2-step verification. If that was not you, change your password now.", ctx).await?;
        }
        Ok(())
    }

    /// A wrong code or answer: already counted by `claim_guess`, recorded here.
    pub(crate) async fn record_failure(&self, account: &Account, factor: &FactorRecord, ctx: &RequestContext) -> Result<(), TwoStepError> {
        self.deps.audit(AuditEvent::SecondFactorFailed, Some(&account.id), ctx, factor.kind.as_str()).await?;
        Ok(())
    }

    /// Checks a code or answer for one of the account's methods (S5.2-S5.8, S6.3, S6.4).
    /// Every failure gives the same error: `InvalidTotp` for an authenticator app (wrong or
    /// replayed alike), `Invalid` otherwise.
    pub async fn verify_method(
        &self,
        account: &Account,
        method_id: &str,
        code: &FactorCode,
        binding: &Binding<'_>,
        ctx: &RequestContext,
    ) -> Result<FactorKind, TwoStepError> {
        let factors = self.store.factors_of(&account.id).await?;
        let Some(factor) = factors.iter().find(|f| f.id == method_id && f.confirmed_at.is_some()) else {
            return Err(TwoStepError::Invalid);
        };
        // Methods this server cannot offer are not accepted either, whatever code is typed.
        if (factor.kind == FactorKind::Email && !self.settings.email_codes_enabled)
            || (factor.kind == FactorKind::Sms && !self.settings.sms_available)
        {
            return Err(TwoStepError::Invalid);
        }
        let limits = self.claim_guess(account, factor).await?;
        let now = self.deps.clock.unix();
        let ok = match factor.kind {
            FactorKind::Totp => {
                let secret = TotpSecret::open(factor.secret.expose(), &self.deps.keys).map_err(|_| TwoStepError::Seal)?;
                match secret.matching_step(code.expose(), now, factor.last_used_step) {
                    Some(step) => self.store.advance_totp_step(&factor.id, step).await?,
                    None => {
                        if secret.matching_step(code.expose(), now, None).is_some() {
                            // A right code used twice: someone may have seen it (S5.3).
                            self.deps.audit(AuditEvent::TotpReplayed, Some(&account.id), ctx, "").await?;
                            self.notify(account, "An authenticator code that had already been used was tried again. If that was not you, change your password.", ctx).await?;
                        }
                        false
                    }
                }
            }
            FactorKind::Sms | FactorKind::Email => self.check_otp(binding.key, factor, code, now).await?,
            FactorKind::SecurityQuestion => {
                let answer = Password::new(&normalise_answer(code.expose())).map_err(|_| TwoStepError::Invalid)?;
                matches!(self.deps.hasher.verify(&answer, Some(factor.secret.expose())).await?, Verified::Yes | Verified::YesRehashed(_))
            }
            FactorKind::RecoveryCode => {
                // Under every live key: codes made before a rotation keep working (issue 13).
                let mut used = false;
                for hash in recovery_code_hashes(&self.deps.keys, &account.id, code.expose()) {
                    if self.store.use_recovery_code(&account.id, &hash, now).await? {
                        used = true;
                        break;
                    }
                }
                if used {
                    let left = self.store.recovery_codes_left(&account.id).await?;
                    self.deps.audit(AuditEvent::RecoveryCodeUsed, Some(&account.id), ctx, &format!("{left} left")).await?;
                    self.notify(account, &format!("A recovery code was used to verify it is you. {left} codes are left."), ctx).await?;
                }
                used
            }
        };
        if !ok {
            self.record_failure(account, factor, ctx).await?;
            if binding.purpose == "login" {
                self.warn_password_known(account, binding.key, ctx).await?;
            }
            return Err(if factor.kind == FactorKind::Totp { TwoStepError::InvalidTotp } else { TwoStepError::Invalid });
        }
        self.deps.settle(&limits).await?;
        self.deps
            .audit(AuditEvent::SecondFactorSucceeded, Some(&account.id), ctx, &format!("{}; {}", factor.kind.as_str(), binding.purpose))
            .await?;
        Ok(factor.kind)
    }

    /// The password typed inside a signed-in session (step-up, password change), counted
    /// before it is compared against the session's own budget of 10 a day: a stolen session
    /// cannot guess freely, and a flood of logins elsewhere cannot stop the owner (S3.7, S3.9).
    pub async fn check_session_password(
        &self,
        session: &SessionRecord,
        account: &Account,
        password: &Password,
        ctx: &RequestContext,
    ) -> Result<bool, TwoStepError> {
        let keys = [ThrottleKey {
            key: format!("session-password:{}", session.id_hash),
            rule: ThrottleRule::Budget { limit: 10, window: 86_400, cooldown: 86_400 },
        }];
        if let Some(wait) = self.deps.claim(&keys).await? {
            return Err(TwoStepError::Throttled(wait));
        }
        let found = self.store.find_for_login(account.username.key().as_str()).await?;
        let verified = self.deps.hasher.verify(password, found.as_ref().map(|(_, h)| h.as_str())).await?;
        if verified == Verified::No {
            self.deps.audit(AuditEvent::SecondFactorFailed, Some(&account.id), ctx, "password").await?;
            return Ok(false);
        }
        Ok(true)
    }

    pub(crate) async fn is_security_question(&self, account: &AccountId, method_id: &str) -> Result<bool, StoreError> {
        let factors = self.store.factors_of(account).await?;
        Ok(factors.iter().any(|f| f.id == method_id && f.kind == FactorKind::SecurityQuestion))
    }
}
