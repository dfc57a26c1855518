//! 2-step verification flows (checklist S5, S6, S7.2, S7.6): enrolling and removing
//! methods, the second step of login, step-up before sensitive actions, approvals bound to
//! one transaction, and the check shared by all of them.

use crate::account::{Account, AccountId};
use crate::approval::{Approval, APPROVAL_TTL_SECONDS};
use crate::audit::{AuditEvent, RequestContext};
use crate::auth::Services;
use crate::factors::{
    check_answer, generate_otp, generate_recovery_codes, mask_email, normalise_answer, normalise_code, question_text, recovery_code_hash,
    AnswerError, FactorKind, FactorRecord, MethodView, NewOtp, TotpSecret,
};
use crate::notice::Notice;
use crate::outbox::NewMessage;
use crate::password::{HashError, Password, Verified};
use crate::session::{SessionRecord, SessionStage, SessionToken};
use crate::store::StoreError;
use crate::throttle::{ThrottleKey, ThrottleRule};
use secrecy::{ExposeSecret, SecretString};

/// Lifetime of a code sent by SMS or email (S1.5, S5.5).
pub const OTP_TTL_SECONDS: i64 = 10 * 60;
/// Wrong tries one sent code survives (S3.4).
pub const OTP_MAX_ATTEMPTS: i64 = 5;
/// Least time between two codes sent to one method.
pub const RESEND_COOLDOWN_SECONDS: i64 = 30;
/// How long an enrolment started after a step-up may be confirmed.
pub const ENROL_WINDOW_SECONDS: i64 = 15 * 60;

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
    #[error("Too many wrong tries. Wait {}, or try another method.", crate::clock::in_words(*.0))]
    Throttled(i64),
    #[error("Wait {} before asking for another code.", crate::clock::in_words(*.0))]
    ResendTooSoon(i64),
    #[error("You have tried five new numbers today. Try again in {}.", crate::clock::in_words(*.0))]
    TooManyNumbers(i64),
    #[error("This method does not send codes.")]
    NotSendable,
    #[error("Email codes are turned off on this server.")]
    EmailCodesDisabled,
    #[error("Text-message codes are not available on this server. Use an authenticator app or recovery codes instead.")]
    SmsUnavailable,
    #[error("Add an authenticator app, a phone or recovery codes first: a security question is never enough on its own.")]
    QuestionNeedsAnotherMethod,
    #[error(
        "A security question cannot confirm it is you on its own here. Use your authenticator app, a text message or a recovery code."
    )]
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
}

/// What a TOTP enrolment shows once (S5.1: never again after).
pub struct TotpEnrolment {
    pub method_id: String,
    pub secret: SecretString,
    pub otpauth_uri: String,
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

impl Services {
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
            if f.kind == FactorKind::Email && !self.two_step.email_codes_enabled {
                continue;
            }
            let hint = match f.kind {
                FactorKind::Totp => "Authenticator app".to_owned(),
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
            let available = f.kind != FactorKind::Sms || self.two_step.sms_available;
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
        // Email codes the operator turned off no longer count: they could not be used.
        let usable = |f: &&FactorRecord| f.kind != FactorKind::Email || self.two_step.email_codes_enabled;
        Ok(factors.iter().filter(usable).any(|f| f.confirmed_at.is_some() && f.kind != FactorKind::RecoveryCode))
    }

    async fn notify(&self, account: &Account, change: &str, ctx: &RequestContext) -> Result<(), TwoStepError> {
        let now = self.clock.unix();
        let when = crate::clock::rfc2822(now);
        let content = self
            .composer
            .compose(&Notice::SecurityChange { username: account.username.as_str(), change, when: &when, ip: &ctx.ip.to_string() })
            .map_err(TwoStepError::Compose)?;
        let message = NewMessage::email(account.email.as_str(), "security_change", Some(account.id.clone()), content, now);
        self.store.enqueue_message(&message).await?;
        Ok(())
    }

    // ---- Enrolment (the web layer checks step-up first, S5.4) ----

    pub async fn start_totp(&self, account: &Account) -> Result<TotpEnrolment, TwoStepError> {
        let secret = TotpSecret::generate();
        let factor = FactorRecord {
            id: uuid::Uuid::new_v4().to_string(),
            account_id: account.id.clone(),
            kind: FactorKind::Totp,
            label: String::new(),
            secret: secret.seal(&self.key).map_err(|_| TwoStepError::Seal)?,
            is_default: false,
            confirmed_at: None,
            last_used_step: None,
            created_at: self.clock.unix(),
        };
        self.store.insert_factor(&factor).await?;
        Ok(TotpEnrolment {
            method_id: factor.id,
            otpauth_uri: secret.otpauth_uri(&self.two_step.issuer, account.username.as_str()),
            secret: secret.base32(),
        })
    }

    /// An enrolment not yet confirmed, shown again after a wrong first code.
    pub async fn pending_totp(&self, account: &Account, method_id: &str) -> Result<TotpEnrolment, TwoStepError> {
        let factors = self.store.factors_of(&account.id).await?;
        let factor = factors
            .iter()
            .find(|f| f.id == method_id && f.kind == FactorKind::Totp && f.confirmed_at.is_none())
            .ok_or(TwoStepError::UnknownMethod)?;
        let secret = TotpSecret::open(&factor.secret, &self.key).map_err(|_| TwoStepError::Seal)?;
        Ok(TotpEnrolment {
            method_id: factor.id.clone(),
            otpauth_uri: secret.otpauth_uri(&self.two_step.issuer, account.username.as_str()),
            secret: secret.base32(),
        })
    }

    /// Turns an authenticator on after one correct code (S5.4).
    pub async fn confirm_totp(&self, account: &Account, method_id: &str, code: &str, ctx: &RequestContext) -> Result<(), TwoStepError> {
        let factors = self.store.factors_of(&account.id).await?;
        let factor = factors
            .iter()
            .find(|f| f.id == method_id && f.kind == FactorKind::Totp && f.confirmed_at.is_none())
            .ok_or(TwoStepError::UnknownMethod)?;
        let limits = self.claim_guess(account, factor).await?;
        let secret = TotpSecret::open(&factor.secret, &self.key).map_err(|_| TwoStepError::Seal)?;
        let now = self.clock.unix();
        let Some(step) = secret.matching_step(code, now, factor.last_used_step) else {
            self.record_failure(account, factor, ctx).await?;
            return Err(TwoStepError::Invalid);
        };
        self.settle(&limits).await?;
        self.store.advance_totp_step(&factor.id, step).await?;
        self.store.confirm_factor(&account.id, &factor.id, now).await?;
        self.audit(AuditEvent::FactorAdded, Some(&account.id), ctx, "totp").await?;
        self.notify(account, "An authenticator app was added as a 2-step verification method.", ctx).await
    }

    /// S5.6: a new phone number is a new method: a code goes to it, and it is on only once
    /// that code comes back. The step-up is checked by the web layer first.
    pub async fn start_sms(&self, account: &Account, raw_phone: &str, ctx: &RequestContext) -> Result<(String, String), TwoStepError> {
        if !self.two_step.sms_available {
            return Err(TwoStepError::SmsUnavailable);
        }
        let phone = crate::phone::PhoneNumber::parse(raw_phone, Some(account.country))?;
        // S3.5 (toll fraud): each new number is a new method with its own caps, so the number
        // of numbers an account may try is capped too: five a day.
        let cap = [ThrottleKey {
            key: format!("sms-enrol:{}", account.id),
            rule: ThrottleRule::Budget { limit: 5, window: 86_400, cooldown: 86_400 },
        }];
        if let Some(wait) = self.claim(&cap).await? {
            return Err(TwoStepError::TooManyNumbers(wait));
        }
        let factor = FactorRecord {
            id: uuid::Uuid::new_v4().to_string(),
            account_id: account.id.clone(),
            kind: FactorKind::Sms,
            label: phone.masked(),
            secret: phone.e164().to_owned(),
            is_default: false,
            confirmed_at: None,
            last_used_step: None,
            created_at: self.clock.unix(),
        };
        self.store.insert_factor(&factor).await?;
        let binding = format!("enrol:{}", factor.id);
        self.deliver_code(account, &factor, &Binding { key: &binding, purpose: "enrol" }, ctx).await?;
        Ok((factor.id, factor.label))
    }

    pub async fn confirm_sms(&self, account: &Account, method_id: &str, code: &str, ctx: &RequestContext) -> Result<(), TwoStepError> {
        if !self.two_step.sms_available {
            return Err(TwoStepError::SmsUnavailable);
        }
        let factors = self.store.factors_of(&account.id).await?;
        let factor = factors
            .iter()
            .find(|f| f.id == method_id && f.kind == FactorKind::Sms && f.confirmed_at.is_none())
            .ok_or(TwoStepError::UnknownMethod)?;
        let limits = self.claim_guess(account, factor).await?;
        let now = self.clock.unix();
        let binding = format!("enrol:{}", factor.id);
        if !self.check_otp(&binding, factor, code, now).await? {
            self.record_failure(account, factor, ctx).await?;
            return Err(TwoStepError::Invalid);
        }
        self.settle(&limits).await?;
        self.store.confirm_factor(&account.id, &factor.id, now).await?;
        self.audit(AuditEvent::FactorAdded, Some(&account.id), ctx, "sms").await?;
        self.notify(account, &format!("The phone number {} was added for text-message codes.", factor.label), ctx).await
    }

    /// Checks a sent code for a binding and method, spending it when right.
    async fn check_otp(&self, binding: &str, factor: &FactorRecord, code: &str, now: i64) -> Result<bool, TwoStepError> {
        match self.store.latest_otp(binding, &factor.id, now).await? {
            Some(otp) if otp.attempts < OTP_MAX_ATTEMPTS => {
                if !self.store.claim_otp_attempt(&otp.id, OTP_MAX_ATTEMPTS).await? {
                    return Ok(false);
                }
                let typed = self.key.keyed_hash(&format!("otp:{}", otp.id), normalise_code(code).as_bytes());
                if subtle::ConstantTimeEq::ct_eq(typed.as_bytes(), otp.code_hash.as_bytes()).into() {
                    Ok(self.store.consume_otp(&otp.id, now).await?)
                } else {
                    Ok(false)
                }
            }
            _ => Ok(false),
        }
    }

    pub async fn add_email_codes(&self, account: &Account, ctx: &RequestContext) -> Result<String, TwoStepError> {
        if !self.two_step.email_codes_enabled {
            return Err(TwoStepError::EmailCodesDisabled);
        }
        self.add_confirmed(account, FactorKind::Email, String::new(), String::new(), ctx).await
    }

    /// S6.1-S6.3: a question from the list, a non-trivial answer, only beside a real method.
    pub async fn set_security_question(
        &self,
        account: &Account,
        question_id: &str,
        answer: &str,
        ctx: &RequestContext,
    ) -> Result<String, TwoStepError> {
        question_text(question_id).ok_or(AnswerError::UnknownQuestion)?;
        let factors = self.store.factors_of(&account.id).await?;
        let has_real = factors.iter().any(|f| f.confirmed_at.is_some() && !matches!(f.kind, FactorKind::SecurityQuestion));
        if !has_real {
            return Err(TwoStepError::QuestionNeedsAnotherMethod);
        }
        let normalised = normalise_answer(answer);
        check_answer(&normalised, &[account.username.as_str(), account.email.as_str(), account.email.local_part()])?;
        // S6.3: not the password either, as typed or as normalised. This compares a typed
        // value with the password, so it is counted first (S3.7): a session cannot use it to
        // guess the password.
        let oracle = [ThrottleKey {
            key: format!("answer-vs-password:{}", account.id),
            rule: ThrottleRule::Budget { limit: 10, window: 86_400, cooldown: 86_400 },
        }];
        if let Some(wait) = self.claim(&oracle).await? {
            return Err(TwoStepError::Throttled(wait));
        }
        let stored = self.store.find_for_login(&account.username.key()).await?.map(|(_, hash)| hash);
        for candidate in [answer.trim(), normalised.as_str()] {
            if let Ok(candidate) = Password::new(candidate) {
                if self.hasher.verify(&candidate, stored.as_deref()).await? != Verified::No {
                    return Err(AnswerError::Personal.into());
                }
            }
        }
        let hash = self.hasher.hash(&Password::new(&normalised).map_err(|_| AnswerError::TooLong)?).await?;
        // One question at a time: a new one replaces the old.
        for old in factors.iter().filter(|f| f.kind == FactorKind::SecurityQuestion) {
            self.store.remove_factor(&account.id, &old.id, self.clock.unix()).await?;
        }
        self.add_confirmed(account, FactorKind::SecurityQuestion, question_id.to_owned(), hash, ctx).await
    }

    async fn add_confirmed(
        &self,
        account: &Account,
        kind: FactorKind,
        label: String,
        secret: String,
        ctx: &RequestContext,
    ) -> Result<String, TwoStepError> {
        let now = self.clock.unix();
        let factor = FactorRecord {
            id: uuid::Uuid::new_v4().to_string(),
            account_id: account.id.clone(),
            kind,
            label,
            secret,
            is_default: false,
            confirmed_at: None,
            last_used_step: None,
            created_at: now,
        };
        self.store.insert_factor(&factor).await?;
        self.store.confirm_factor(&account.id, &factor.id, now).await?;
        self.audit(AuditEvent::FactorAdded, Some(&account.id), ctx, kind.as_str()).await?;
        self.notify(account, &format!("{} was added as a 2-step verification method.", kind.title()), ctx).await?;
        Ok(factor.id)
    }

    /// Ten new recovery codes, shown once; the old set stops working (S5.8).
    pub async fn regenerate_recovery_codes(&self, account: &Account, ctx: &RequestContext) -> Result<Vec<SecretString>, TwoStepError> {
        let codes = generate_recovery_codes();
        let hashes: Vec<String> = codes.iter().map(|c| recovery_code_hash(&self.key, &account.id, c.expose_secret())).collect();
        let now = self.clock.unix();
        let existing = self.store.factors_of(&account.id).await?.into_iter().find(|f| f.kind == FactorKind::RecoveryCode);
        let factor = existing.unwrap_or(FactorRecord {
            id: uuid::Uuid::new_v4().to_string(),
            account_id: account.id.clone(),
            kind: FactorKind::RecoveryCode,
            label: String::new(),
            secret: String::new(),
            is_default: false,
            confirmed_at: Some(now),
            last_used_step: None,
            created_at: now,
        });
        self.store.replace_recovery_codes(&account.id, &factor, &hashes, now).await?;
        self.audit(AuditEvent::RecoveryCodesRegenerated, Some(&account.id), ctx, "").await?;
        self.notify(account, "New recovery codes were made; the old ones no longer work.", ctx).await?;
        Ok(codes)
    }

    /// Removes a method. The security question cannot outlive the last real method (S6.1).
    pub async fn remove_method(&self, account: &Account, method_id: &str, ctx: &RequestContext) -> Result<(), TwoStepError> {
        let factors = self.store.factors_of(&account.id).await?;
        let factor = factors.iter().find(|f| f.id == method_id).ok_or(TwoStepError::UnknownMethod)?;
        let real_left = factors
            .iter()
            .filter(|f| f.id != method_id && f.confirmed_at.is_some() && !matches!(f.kind, FactorKind::SecurityQuestion))
            .count();
        let has_question = factors.iter().any(|f| f.kind == FactorKind::SecurityQuestion && f.id != method_id);
        if has_question && real_left == 0 {
            return Err(TwoStepError::LastRealMethod);
        }
        self.store.remove_factor(&account.id, &factor.id, self.clock.unix()).await?;
        self.audit(AuditEvent::FactorRemoved, Some(&account.id), ctx, factor.kind.as_str()).await?;
        self.notify(account, &format!("{} was removed from your 2-step verification methods.", factor.kind.title()), ctx).await
    }

    pub async fn set_default_method(&self, account: &Account, method_id: &str) -> Result<(), TwoStepError> {
        if self.store.set_default_factor(&account.id, method_id).await? {
            Ok(())
        } else {
            Err(TwoStepError::UnknownMethod)
        }
    }

    // ---- Sending codes ----

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
        if factor.kind == FactorKind::Email && !self.two_step.email_codes_enabled {
            return Err(TwoStepError::EmailCodesDisabled);
        }
        if factor.kind == FactorKind::Sms && !self.two_step.sms_available {
            return Err(TwoStepError::SmsUnavailable);
        }
        self.deliver_code(account, factor, binding, ctx).await
    }

    /// Makes, stores and queues one code for a method, within the resend wait and the caps
    /// per method and per phone number (S3.5: inbox flooding and SMS toll fraud).
    async fn deliver_code(
        &self,
        account: &Account,
        factor: &FactorRecord,
        binding: &Binding<'_>,
        ctx: &RequestContext,
    ) -> Result<(), TwoStepError> {
        let now = self.clock.unix();
        if let Some(last) = self.store.last_otp_sent_at(&factor.id).await? {
            if now - last < RESEND_COOLDOWN_SECONDS {
                return Err(TwoStepError::ResendTooSoon(RESEND_COOLDOWN_SECONDS - (now - last)));
            }
        }
        let mut caps = vec![ThrottleKey {
            key: format!("codes-sent:{}", factor.id),
            rule: ThrottleRule::Budget { limit: 10, window: 3600, cooldown: 3600 },
        }];
        if factor.kind == FactorKind::Sms {
            // Across accounts: one number cannot be made to receive more than 20 texts a day.
            caps.push(ThrottleKey {
                key: format!("sms-to:{}", factor.secret),
                rule: ThrottleRule::Budget { limit: 20, window: 86_400, cooldown: 86_400 },
            });
        }
        if let Some(wait) = self.claim(&caps).await? {
            return Err(TwoStepError::ResendTooSoon(wait));
        }
        let code = generate_otp();
        let otp_id = uuid::Uuid::new_v4().to_string();
        let otp = NewOtp {
            id: otp_id.clone(),
            binding: binding.key.to_owned(),
            factor_id: factor.id.clone(),
            code_hash: self.key.keyed_hash(&format!("otp:{otp_id}"), code.expose_secret().as_bytes()),
            created_at: now,
            expires_at: now + OTP_TTL_SECONDS,
        };
        let content = self
            .composer
            .compose(&Notice::VerificationCode {
                username: account.username.as_str(),
                code: code.expose_secret(),
                purpose: binding.purpose,
                sms: factor.kind == FactorKind::Sms,
            })
            .map_err(TwoStepError::Compose)?;
        let message = match factor.kind {
            FactorKind::Sms => NewMessage::sms(&factor.secret, "verification_code", Some(account.id.clone()), content, now),
            _ => NewMessage::email(account.email.as_str(), "verification_code", Some(account.id.clone()), content, now),
        };
        self.store.insert_otp(&otp, &message).await?;
        self.audit(AuditEvent::CodeSent, Some(&account.id), ctx, factor.kind.as_str()).await?;
        Ok(())
    }

    // ---- Verifying ----

    /// Count, then compare (S3.4, S3.7, S3.8): one try at a method is counted before its
    /// code or answer is compared, and refused once a limit is reached. A security answer
    /// also counts toward the account's own budget (S6.4). Returns the keys to settle on
    /// success.
    async fn claim_guess(&self, account: &Account, factor: &FactorRecord) -> Result<Vec<ThrottleKey>, TwoStepError> {
        let mut keys = factor_limits(&account.id, &factor.id);
        if factor.kind == FactorKind::SecurityQuestion {
            keys.push(crate::throttle::account_cap(&account.id));
        }
        match self.claim(&keys).await? {
            Some(wait) => Err(TwoStepError::Throttled(wait)),
            None => Ok(keys),
        }
    }

    /// S9.1: the right password followed by a failed second step means someone may know the
    /// password. The owner hears of it once per login attempt, not once per wrong code.
    async fn warn_password_known(&self, account: &Account, pending_session: &str, ctx: &RequestContext) -> Result<(), TwoStepError> {
        let now = self.clock.unix();
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
    async fn record_failure(&self, account: &Account, factor: &FactorRecord, ctx: &RequestContext) -> Result<(), TwoStepError> {
        self.audit(AuditEvent::SecondFactorFailed, Some(&account.id), ctx, factor.kind.as_str()).await?;
        Ok(())
    }

    /// Checks a code or answer for one of the account's methods (S5.2-S5.8, S6.3, S6.4).
    /// Every failure gives the same error.
    pub async fn verify_method(
        &self,
        account: &Account,
        method_id: &str,
        code: &str,
        binding: &Binding<'_>,
        ctx: &RequestContext,
    ) -> Result<FactorKind, TwoStepError> {
        let factors = self.store.factors_of(&account.id).await?;
        let Some(factor) = factors.iter().find(|f| f.id == method_id && f.confirmed_at.is_some()) else {
            return Err(TwoStepError::Invalid);
        };
        // Methods this server cannot offer are not accepted either, whatever code is typed.
        if (factor.kind == FactorKind::Email && !self.two_step.email_codes_enabled)
            || (factor.kind == FactorKind::Sms && !self.two_step.sms_available)
        {
            return Err(TwoStepError::Invalid);
        }
        let limits = self.claim_guess(account, factor).await?;
        let now = self.clock.unix();
        let ok = match factor.kind {
            FactorKind::Totp => {
                let secret = TotpSecret::open(&factor.secret, &self.key).map_err(|_| TwoStepError::Seal)?;
                match secret.matching_step(code, now, factor.last_used_step) {
                    Some(step) => self.store.advance_totp_step(&factor.id, step).await?,
                    None => {
                        if secret.matching_step(code, now, None).is_some() {
                            // A right code used twice: someone may have seen it (S5.3).
                            self.audit(AuditEvent::TotpReplayed, Some(&account.id), ctx, "").await?;
                            self.notify(account, "An authenticator code that had already been used was tried again. If that was not you, change your password.", ctx).await?;
                        }
                        false
                    }
                }
            }
            FactorKind::Sms | FactorKind::Email => self.check_otp(binding.key, factor, code, now).await?,
            FactorKind::SecurityQuestion => {
                let answer = Password::new(&normalise_answer(code)).map_err(|_| TwoStepError::Invalid)?;
                matches!(self.hasher.verify(&answer, Some(&factor.secret)).await?, Verified::Yes | Verified::YesRehashed(_))
            }
            FactorKind::RecoveryCode => {
                let used = self.store.use_recovery_code(&account.id, &recovery_code_hash(&self.key, &account.id, code), now).await?;
                if used {
                    let left = self.store.recovery_codes_left(&account.id).await?;
                    self.audit(AuditEvent::RecoveryCodeUsed, Some(&account.id), ctx, &format!("{left} left")).await?;
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
            return Err(TwoStepError::Invalid);
        }
        self.settle(&limits).await?;
        self.audit(AuditEvent::SecondFactorSucceeded, Some(&account.id), ctx, &format!("{}; {}", factor.kind.as_str(), binding.purpose))
            .await?;
        Ok(factor.kind)
    }

    // ---- Sessions: the second step of login, and step-up ----

    /// A half-signed-in session after a correct password on an account with 2-step.
    pub async fn start_pending_login(&self, account: &AccountId, ctx: &RequestContext) -> Result<SessionToken, StoreError> {
        self.start_session_at(account, ctx, SessionStage::SecondFactor).await
    }

    /// Completes the second step: the half session is replaced by a full one with a new id.
    pub async fn complete_second_step(
        &self,
        pending: &SessionRecord,
        account: &Account,
        method_id: &str,
        code: &str,
        devices: &[crate::trusted_device::DeviceToken],
        ctx: &RequestContext,
    ) -> Result<(SessionToken, crate::trusted_device::NewDevice), TwoStepError> {
        let binding = Binding { key: &pending.id_hash, purpose: "login" };
        let kind = self.verify_method(account, method_id, code, &binding, ctx).await?;
        let token = self.rotate_session(pending, ctx).await?;
        let device = self.renew_device(&account.id, devices).await?;
        self.audit(AuditEvent::LoginSucceeded, Some(&account.id), ctx, &format!("password+{}", kind.as_str())).await?;
        Ok((token, device))
    }

    /// Whether an enrolment this account started (after a step-up) can still be confirmed:
    /// finishing setting up an app must not need a second step-up.
    pub async fn enrolment_is_fresh(&self, account: &AccountId, method_id: &str) -> Result<bool, StoreError> {
        let now = self.clock.unix();
        let factors = self.store.factors_of(account).await?;
        Ok(factors.iter().any(|f| f.id == method_id && f.confirmed_at.is_none() && now - f.created_at <= ENROL_WINDOW_SECONDS))
    }

    /// Whether the session's last verification is inside the step-up window (S7.6).
    pub fn recently_verified(&self, session: &SessionRecord) -> bool {
        self.clock.unix() - session.verified_at <= self.two_step.step_up_window_seconds
    }

    /// Step-up with a method, or with the password when the account has no method.
    /// Returns the new session token (S7.2).
    pub async fn step_up(
        &self,
        session: &SessionRecord,
        account: &Account,
        proof: StepUpProof<'_>,
        ctx: &RequestContext,
    ) -> Result<SessionToken, TwoStepError> {
        match proof {
            StepUpProof::Method { method_id, code } => {
                // S6.1: step-up is a single proof, so a security question can never be it.
                if self.is_security_question(&account.id, method_id).await? {
                    return Err(TwoStepError::QuestionNotEnough);
                }
                self.verify_method(account, method_id, code, &Binding { key: &session.id_hash, purpose: "step_up" }, ctx).await?;
            }
            StepUpProof::Password(password) => {
                if self.two_step_enabled(&account.id).await? {
                    return Err(TwoStepError::Invalid);
                }
                if !self.check_session_password(session, account, password, ctx).await? {
                    return Err(TwoStepError::Invalid);
                }
            }
        }
        let token = self.rotate_session(session, ctx).await?;
        self.audit(AuditEvent::SteppedUp, Some(&account.id), ctx, "").await?;
        Ok(token)
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
        if let Some(wait) = self.claim(&keys).await? {
            return Err(TwoStepError::Throttled(wait));
        }
        let found = self.store.find_for_login(account.username.key().as_str()).await?;
        let verified = self.hasher.verify(password, found.as_ref().map(|(_, h)| h.as_str())).await?;
        if verified == Verified::No {
            self.audit(AuditEvent::SecondFactorFailed, Some(&account.id), ctx, "password").await?;
            return Ok(false);
        }
        Ok(true)
    }

    async fn is_security_question(&self, account: &AccountId, method_id: &str) -> Result<bool, StoreError> {
        let factors = self.store.factors_of(account).await?;
        Ok(factors.iter().any(|f| f.id == method_id && f.kind == FactorKind::SecurityQuestion))
    }

    async fn rotate_session(&self, old: &SessionRecord, ctx: &RequestContext) -> Result<SessionToken, StoreError> {
        let token = SessionToken::generate();
        let now = self.clock.unix();
        let record = SessionRecord {
            id_hash: token.storage_key(&self.key),
            account_id: old.account_id.clone(),
            created_at: if old.stage == SessionStage::Full { old.created_at } else { now },
            last_seen_at: now,
            ip: ctx.ip.to_string(),
            user_agent: ctx.user_agent.chars().take(512).collect(),
            stage: SessionStage::Full,
            verified_at: now,
        };
        self.store.replace_session(&old.id_hash, &record).await?;
        Ok(token)
    }

    // ---- Approvals bound to one transaction ----

    pub async fn request_approval(&self, session: &SessionRecord, purpose: &str, context: &str) -> Result<Approval, StoreError> {
        let now = self.clock.unix();
        let approval = Approval {
            id: uuid::Uuid::new_v4().to_string(),
            account_id: session.account_id.clone(),
            binding: session.id_hash.clone(),
            purpose: purpose.to_owned(),
            context: context.to_owned(),
            created_at: now,
            expires_at: now + APPROVAL_TTL_SECONDS,
            approved_at: None,
            used_at: None,
        };
        self.store.insert_approval(&approval).await?;
        Ok(approval)
    }

    /// Verifies a method for one approval (its context is what the user saw).
    pub async fn approve(
        &self,
        account: &Account,
        approval_id: &str,
        method_id: &str,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<Approval, TwoStepError> {
        let now = self.clock.unix();
        let approval = self
            .store
            .get_approval(&account.id, approval_id)
            .await?
            .filter(|a| a.expires_at > now && a.used_at.is_none())
            .ok_or(TwoStepError::Invalid)?;
        // Money moves only on a method stronger than a security question (S6.1).
        if self.is_security_question(&account.id, method_id).await? {
            return Err(TwoStepError::QuestionNotEnough);
        }
        let binding_key = format!("approval:{}", approval.id);
        self.verify_method(account, method_id, code, &Binding { key: &binding_key, purpose: "withdrawal" }, ctx).await?;
        self.store.mark_approved(&approval.id, now).await?;
        self.audit(AuditEvent::SteppedUp, Some(&account.id), ctx, &format!("approval for {}", approval.purpose)).await?;
        Ok(Approval { approved_at: Some(now), ..approval })
    }
}

/// What a person proves at step-up.
pub enum StepUpProof<'a> {
    Method { method_id: &'a str, code: &'a str },
    Password(&'a Password),
}
