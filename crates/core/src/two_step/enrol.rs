//! Enrolling, changing and removing 2-step methods (checklist S5.1, S5.4, S5.6-S5.8,
//! S6.1-S6.3). Every change takes a [`SteppedUp`] proof of this account (S5.4, S7.6);
//! confirming an enrolment takes the proof, or was started within
//! [`ENROL_WINDOW_SECONDS`](super::ENROL_WINDOW_SECONDS) (it was started after a step-up, so
//! finishing setting up an app needs no second one).

use super::{ENROL_WINDOW_SECONDS, TotpEnrolment, TwoStep};
use crate::account::Account;
use crate::audit::{AuditEvent, RequestContext};
use crate::factors::history::ChangedBy;
use crate::factors::{
    FactorCode, FactorKind, FactorRecord, FactorSecret, SecurityAnswer, TotpSecret, generate_recovery_codes, recovery_code_hash,
};
use crate::phone::PhoneInput;
use crate::report_link::ReportedEvent;
use crate::step_up::{QuestionChange, SteppedUp};
use crate::throttle::{ThrottleKey, ThrottleRule};
use crate::verifier::{Binding, TwoStepError};
use secrecy::{ExposeSecret, SecretString};

/// Method changes an account may make in a day (starting an enrolment, adding, removing,
/// new recovery codes, a new question): each writes rows kept as long as the account (the
/// methods and their history, S10.4) and sends an email, so a session in a loop could grow
/// the database and the inbox without bound. Generous for a person setting things up.
pub const METHOD_CHANGES_PER_DAY: i64 = 30;

impl TwoStep {
    /// Counts one method change against the day's budget; refused once it is spent.
    async fn claim_method_change(&self, account: &Account) -> Result<(), TwoStepError> {
        let cap = [ThrottleKey {
            key: format!("method-changes:{}", account.id),
            rule: ThrottleRule::Budget { limit: METHOD_CHANGES_PER_DAY, window: 86_400, cooldown: 86_400 },
        }];
        match self.deps.claim(&cap).await? {
            Some(wait) => Err(TwoStepError::TooManyChanges(wait)),
            None => Ok(()),
        }
    }

    /// Confirming an enrolment needs this account's step-up, or an enrolment started within
    /// the enrolment window (never a `SteppedUp` made where no step-up happened).
    async fn may_finish_enrolment(&self, by: Option<&SteppedUp>, account: &Account, method_id: &str) -> Result<(), TwoStepError> {
        crate::reset_hold::refuse_while_waiting(&*self.store, &account.id).await??;
        if let Some(proof) = by {
            proof.check_owner(&account.id)?;
            return Ok(());
        }
        let now = self.deps.now();
        let factors = self.store.factors_of(&account.id).await?;
        if factors.iter().any(|f| f.id == method_id && f.confirmed_at.is_none() && now - f.created_at <= ENROL_WINDOW_SECONDS) {
            return Ok(());
        }
        Err(TwoStepError::StepUpRequired(self.step_up_offer(account).await?))
    }

    pub async fn start_totp(&self, by: &SteppedUp, account: &Account) -> Result<TotpEnrolment, TwoStepError> {
        by.check_owner(&account.id)?;
        crate::reset_hold::refuse_while_waiting(&*self.store, &account.id).await??;
        self.claim_method_change(account).await?;
        let secret = TotpSecret::generate();
        let factor = FactorRecord {
            id: uuid::Uuid::new_v4().to_string(),
            account_id: account.id.clone(),
            kind: FactorKind::Totp,
            label: String::new(),
            secret: FactorSecret::from(secret.seal(&self.deps.keys).map_err(|_| TwoStepError::Seal)?),
            is_default: false,
            confirmed_at: None,
            last_used_step: None,
            created_at: self.deps.clock.unix(),
        };
        self.store.insert_factor(&factor).await?;
        Ok(TotpEnrolment {
            method_id: factor.id,
            otpauth_uri: secret.otpauth_uri(&self.verifier.settings.issuer, account.username.as_str()),
            secret: secret.base32(),
        })
    }

    /// An enrolment not yet confirmed, shown again after a wrong first code; behind the same
    /// check as confirming it.
    pub async fn pending_totp(&self, by: Option<&SteppedUp>, account: &Account, method_id: &str) -> Result<TotpEnrolment, TwoStepError> {
        self.may_finish_enrolment(by, account, method_id).await?;
        let factors = self.store.factors_of(&account.id).await?;
        let factor = factors
            .iter()
            .find(|f| f.id == method_id && f.kind == FactorKind::Totp && f.confirmed_at.is_none())
            .ok_or(TwoStepError::UnknownMethod)?;
        let secret = TotpSecret::open(factor.secret.expose(), &self.deps.keys).map_err(|_| TwoStepError::Seal)?;
        Ok(TotpEnrolment {
            method_id: factor.id.clone(),
            otpauth_uri: secret.otpauth_uri(&self.verifier.settings.issuer, account.username.as_str()),
            secret: secret.base32(),
        })
    }

    /// Turns an authenticator on after one correct code (S5.4).
    pub async fn confirm_totp(
        &self,
        by: Option<&SteppedUp>,
        account: &Account,
        method_id: &str,
        code: &FactorCode,
        ctx: &RequestContext,
    ) -> Result<(), TwoStepError> {
        self.may_finish_enrolment(by, account, method_id).await?;
        let factors = self.store.factors_of(&account.id).await?;
        let factor = factors
            .iter()
            .find(|f| f.id == method_id && f.kind == FactorKind::Totp && f.confirmed_at.is_none())
            .ok_or(TwoStepError::UnknownMethod)?;
        let limits = self.verifier.claim_guess(account, factor).await?;
        let secret = TotpSecret::open(factor.secret.expose(), &self.deps.keys).map_err(|_| TwoStepError::Seal)?;
        let now = self.deps.clock.unix();
        let Some(step) = secret.matching_step(code.expose(), now, factor.last_used_step) else {
            self.verifier.record_failure(account, factor, ctx).await?;
            return Err(TwoStepError::InvalidTotp);
        };
        self.deps.settle(&limits).await?;
        self.store.advance_totp_step(&factor.id, step).await?;
        // Of two confirmations at once, one turns the method on, is audited and notified.
        if !self.store.confirm_factor(&account.id, &factor.id, now, ChangedBy::Owner).await? {
            return Err(TwoStepError::UnknownMethod);
        }
        self.deps.audit(AuditEvent::FactorAdded, Some(&account.id), ctx, "totp").await?;
        let event = ReportedEvent::MethodAdded { method_id: factor.id.clone() };
        self.verifier.notify_event(account, "An authenticator app was added as a 2-step verification method.", event, ctx).await
    }

    /// S5.6: a new phone number is a new method: a code goes to it, and it is on only once
    /// that code comes back. A number in national form is dialled in the account's country.
    pub async fn start_sms(
        &self,
        by: &SteppedUp,
        account: &Account,
        phone: &PhoneInput,
        ctx: &RequestContext,
    ) -> Result<(String, String), TwoStepError> {
        by.check_owner(&account.id)?;
        crate::reset_hold::refuse_while_waiting(&*self.store, &account.id).await??;
        if !self.verifier.settings.sms_available {
            return Err(TwoStepError::SmsUnavailable);
        }
        let phone = phone.resolve(Some(account.country))?;
        // S3.5 (toll fraud): each new number is a new method with its own caps, so the number
        // of numbers an account may try is capped too: five a day.
        let cap = [ThrottleKey {
            key: format!("sms-enrol:{}", account.id),
            rule: ThrottleRule::Budget { limit: 5, window: 86_400, cooldown: 86_400 },
        }];
        if let Some(wait) = self.deps.claim(&cap).await? {
            return Err(TwoStepError::TooManyNumbers(wait));
        }
        self.claim_method_change(account).await?;
        let factor = FactorRecord {
            id: uuid::Uuid::new_v4().to_string(),
            account_id: account.id.clone(),
            kind: FactorKind::Sms,
            label: phone.masked(),
            secret: FactorSecret::from(phone.e164().to_owned()),
            is_default: false,
            confirmed_at: None,
            last_used_step: None,
            created_at: self.deps.clock.unix(),
        };
        self.store.insert_factor(&factor).await?;
        let binding = format!("enrol:{}", factor.id);
        self.verifier.deliver_code(account, &factor, &Binding { key: &binding, purpose: "enrol" }, ctx).await?;
        Ok((factor.id, factor.label))
    }

    pub async fn confirm_sms(
        &self,
        by: Option<&SteppedUp>,
        account: &Account,
        method_id: &str,
        code: &FactorCode,
        ctx: &RequestContext,
    ) -> Result<(), TwoStepError> {
        self.may_finish_enrolment(by, account, method_id).await?;
        if !self.verifier.settings.sms_available {
            return Err(TwoStepError::SmsUnavailable);
        }
        let factors = self.store.factors_of(&account.id).await?;
        let factor = factors
            .iter()
            .find(|f| f.id == method_id && f.kind == FactorKind::Sms && f.confirmed_at.is_none())
            .ok_or(TwoStepError::UnknownMethod)?;
        let limits = self.verifier.claim_guess(account, factor).await?;
        let now = self.deps.clock.unix();
        let binding = format!("enrol:{}", factor.id);
        if !self.verifier.check_otp(&binding, factor, code, now).await? {
            self.verifier.record_failure(account, factor, ctx).await?;
            return Err(TwoStepError::WrongEnrolmentCode);
        }
        self.deps.settle(&limits).await?;
        if !self.store.confirm_factor(&account.id, &factor.id, now, ChangedBy::Owner).await? {
            return Err(TwoStepError::UnknownMethod);
        }
        self.deps.audit(AuditEvent::FactorAdded, Some(&account.id), ctx, "sms").await?;
        let change = format!("The phone number {} was added for text-message codes.", factor.label);
        self.verifier.notify_event(account, &change, ReportedEvent::MethodAdded { method_id: factor.id.clone() }, ctx).await
    }

    pub async fn add_email_codes(&self, by: &SteppedUp, account: &Account, ctx: &RequestContext) -> Result<String, TwoStepError> {
        by.check_owner(&account.id)?;
        crate::reset_hold::refuse_while_waiting(&*self.store, &account.id).await??;
        if !self.verifier.settings.email_codes_enabled {
            return Err(TwoStepError::EmailCodesDisabled);
        }
        self.claim_method_change(account).await?;
        self.add_confirmed(account, FactorKind::Email, String::new(), FactorSecret::none(), ctx).await
    }

    /// S6.1-S6.3: a question from the list, a non-trivial answer (the trivial ones are refused
    /// as a [`SecurityAnswer`] is made), only beside a real method.
    pub async fn set_security_question(
        &self,
        by: &SteppedUp,
        account: &Account,
        question_id: &str,
        answer: &SecurityAnswer,
        ctx: &RequestContext,
    ) -> Result<String, TwoStepError> {
        by.check_owner(&account.id)?;
        let checked = crate::question::check_question(&self.verifier, account, question_id, answer).await?;
        self.claim_method_change(account).await?;
        crate::question::install_question(&self.verifier, QuestionChange::SteppedUp(by), account, checked, ctx).await
    }

    async fn add_confirmed(
        &self,
        account: &Account,
        kind: FactorKind,
        label: String,
        secret: FactorSecret,
        ctx: &RequestContext,
    ) -> Result<String, TwoStepError> {
        let now = self.deps.clock.unix();
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
        self.store.confirm_factor(&account.id, &factor.id, now, ChangedBy::Owner).await?;
        self.deps.audit(AuditEvent::FactorAdded, Some(&account.id), ctx, kind.as_str()).await?;
        let change = format!("{} was added as a 2-step verification method.", kind.title());
        self.verifier.notify_event(account, &change, ReportedEvent::MethodAdded { method_id: factor.id.clone() }, ctx).await?;
        Ok(factor.id)
    }

    /// Ten new recovery codes, shown once; the old set stops working (S5.8).
    pub async fn regenerate_recovery_codes(
        &self,
        by: &SteppedUp,
        account: &Account,
        ctx: &RequestContext,
    ) -> Result<Vec<SecretString>, TwoStepError> {
        by.check_owner(&account.id)?;
        crate::reset_hold::refuse_while_waiting(&*self.store, &account.id).await??;
        self.claim_method_change(account).await?;
        let codes = generate_recovery_codes();
        let hashes: Vec<String> = codes.iter().map(|c| recovery_code_hash(&self.deps.keys, &account.id, c.expose_secret())).collect();
        let now = self.deps.clock.unix();
        let existing = self.store.factors_of(&account.id).await?.into_iter().find(|f| f.kind == FactorKind::RecoveryCode);
        let factor = existing.unwrap_or(FactorRecord {
            id: uuid::Uuid::new_v4().to_string(),
            account_id: account.id.clone(),
            kind: FactorKind::RecoveryCode,
            label: String::new(),
            secret: FactorSecret::none(),
            is_default: false,
            confirmed_at: Some(now),
            last_used_step: None,
            created_at: now,
        });
        self.store.replace_recovery_codes(&account.id, &factor, &hashes, now, ChangedBy::Owner).await?;
        self.deps.audit(AuditEvent::RecoveryCodesRegenerated, Some(&account.id), ctx, "").await?;
        self.verifier.notify(account, "New recovery codes were made; the old ones no longer work.", ctx).await?;
        Ok(codes)
    }

    /// Removes a method. The security question cannot outlive the last real method (S6.1).
    pub async fn remove_method(
        &self,
        by: &SteppedUp,
        account: &Account,
        method_id: &str,
        ctx: &RequestContext,
    ) -> Result<(), TwoStepError> {
        by.check_owner(&account.id)?;
        crate::reset_hold::refuse_while_waiting(&*self.store, &account.id).await??;
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
        self.claim_method_change(account).await?;
        self.store.remove_factor(&account.id, &factor.id, self.deps.clock.unix(), ChangedBy::Owner).await?;
        let event = ReportedEvent::MethodRemoved { method_id: factor.id.clone() };
        let (report_link, report_id) = self.verifier.mint_report_link(account, event).await?;
        let detail = format!("{}; report={report_id}", factor.kind.as_str());
        self.deps.audit(AuditEvent::FactorRemoved, Some(&account.id), ctx, &detail).await?;
        let change = format!("{} was removed from your 2-step verification methods.", factor.kind.title());
        self.verifier.send_security_change(account, &change, &report_link, ctx).await
    }

    pub async fn set_default_method(&self, by: &SteppedUp, account: &Account, method_id: &str) -> Result<(), TwoStepError> {
        by.check_owner(&account.id)?;
        crate::reset_hold::refuse_while_waiting(&*self.store, &account.id).await??;
        if self.store.set_default_factor(&account.id, method_id).await? { Ok(()) } else { Err(TwoStepError::UnknownMethod) }
    }

    /// The masked number of a phone being enrolled, to show again after a wrong code.
    pub async fn pending_phone_label(&self, account: &Account, method_id: &str) -> Result<String, TwoStepError> {
        let factors = self.store.factors_of(&account.id).await?;
        Ok(factors.into_iter().find(|f| f.id == method_id).map(|f| f.label).unwrap_or_default())
    }
}
