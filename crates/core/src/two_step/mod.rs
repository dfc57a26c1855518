//! 2-step verification as a feature (checklist S5, S6, S7.2, S7.6): the second step of login
//! and step-up (here), enrolling and removing methods (`enrol.rs`), and approvals bound to
//! one transaction (`approvals.rs`). Checking a method is the shared [`Verifier`]'s job.

mod approvals;
mod enrol;
pub use enrol::METHOD_CHANGES_PER_DAY;

use crate::account::{Account, AccountId};
use crate::audit::{AuditEvent, AuditRecord, RequestContext};
use crate::deps::Deps;
use crate::factors::history::{self, FactorHistoryPage};
use crate::factors::{FactorCode, MethodView};
use crate::password::Password;
use crate::session::{SessionRecord, SessionToken};
use crate::sign_in::{SignInWrites, renew_device, rotate_session};
use crate::step_up::{NotYourProof, StepUpRequired, StepUpWindow, SteppedUp};
use crate::store::StoreError;
use crate::trusted_device::{DeviceToken, NewDevice};
use crate::verifier::Verifier;
use secrecy::SecretString;

pub use crate::verifier::{
    Binding, NO_USABLE_METHOD, OTP_MAX_ATTEMPTS, OTP_TTL_SECONDS, RESEND_COOLDOWN_SECONDS, TwoStepError, TwoStepSettings,
};
use std::sync::Arc;

crate::storage_trait! {
    /// The storage `TwoStep` reads and writes.
    pub trait TwoStepStorage:
        crate::approval::ApprovalStore,
        crate::factors::FactorStore,
        crate::sign_in::SignInStorage,
        crate::reset_hold::ResetHoldStorage,
}

/// How long an enrolment started after a step-up may be confirmed.
pub const ENROL_WINDOW_SECONDS: i64 = 15 * 60;

/// What a TOTP enrolment shows once (S5.1: never again after).
pub struct TotpEnrolment {
    pub method_id: String,
    pub secret: SecretString,
    pub otpauth_uri: String,
}

/// What a person proves at step-up.
pub enum StepUpProof<'a> {
    Method { method_id: &'a str, code: &'a FactorCode },
    Password(&'a Password),
}

#[derive(Debug, Clone)]
pub struct TwoStep {
    deps: Deps,
    store: Arc<dyn TwoStepStorage>,
    verifier: Verifier,
    window: StepUpWindow,
}

impl TwoStep {
    pub fn new(deps: Deps, store: Arc<dyn TwoStepStorage>, verifier: Verifier) -> Self {
        let window = StepUpWindow { seconds: verifier.settings.step_up_window_seconds };
        Self { store, deps, verifier, window }
    }

    pub fn settings(&self) -> &TwoStepSettings {
        self.verifier.settings()
    }

    /// The account's usable methods, as offered at login, reset and step-up.
    pub async fn methods(&self, account: &Account) -> Result<Vec<MethodView>, TwoStepError> {
        self.verifier.methods(account).await
    }

    /// Every enrolled method, as Security settings list them.
    pub async fn enrolled_methods(&self, account: &Account) -> Result<Vec<MethodView>, TwoStepError> {
        self.verifier.enrolled_methods(account).await
    }

    /// The methods that may be a proof on their own (payment approvals): all but the
    /// security question (S6.1).
    pub async fn strong_methods(&self, account: &Account) -> Result<Vec<MethodView>, TwoStepError> {
        self.verifier.strong_methods(account).await
    }

    /// A page of the account's method history, newest first, older than `before` (the newest
    /// page without it): every method ever enrolled, when and how it came and went (S10.4).
    pub async fn method_history(&self, account: &AccountId, before: Option<i64>) -> Result<FactorHistoryPage, StoreError> {
        let before = before.filter(|b| *b > 0).unwrap_or(i64::MAX);
        Ok(FactorHistoryPage::from_rows(self.store.factor_history(account, before, history::PAGE_SIZE + 1).await?))
    }

    /// Whether the account has 2-step on.
    pub async fn two_step_enabled(&self, account: &Account) -> Result<bool, StoreError> {
        self.verifier.two_step_enabled(&account.id).await
    }

    /// Sends a code by SMS or email for a method, bound to `binding` (S3.4, S3.5).
    pub async fn send_code(
        &self,
        account: &Account,
        method_id: &str,
        binding: &Binding<'_>,
        ctx: &RequestContext,
    ) -> Result<(), TwoStepError> {
        self.verifier.send_code(account, method_id, binding, ctx).await
    }

    /// Whether a code sent for `binding` to a method can still be used (see
    /// [`Verifier::code_is_live`]).
    pub async fn code_sent(&self, binding: &Binding<'_>, method_id: &str) -> Result<bool, TwoStepError> {
        self.verifier.code_is_live(binding.key, method_id).await
    }

    // ---- The second step of login ----

    /// Completes the second step: the half session is replaced by a full one with a new id.
    pub async fn complete_second_step(
        &self,
        pending: &SessionRecord,
        account: &Account,
        method_id: &str,
        code: &FactorCode,
        devices: &[DeviceToken],
        ctx: &RequestContext,
    ) -> Result<(SessionToken, NewDevice), TwoStepError> {
        let binding = Binding { key: &pending.id_hash, purpose: "login" };
        let kind = self.verifier.verify_method(account, method_id, code, &binding, ctx).await?;
        let token = rotate_session(&self.deps, &*self.store, pending, ctx).await?;
        // Proof the owner still has a method: a running 2-step reset ends here (issue 11 §2).
        crate::reset_hold::cancel_after_second_step(&self.deps, &*self.store, account, ctx).await?;
        let mut writes = SignInWrites::default();
        let device = renew_device(&self.deps, &*self.store, account, devices, None, ctx, &mut writes).await?;
        let detail = format!("password+{}", kind.as_str());
        writes.audits.push(AuditRecord::new(self.deps.now(), AuditEvent::LoginSucceeded, Some(account.id.clone()), ctx, &detail));
        self.store.commit_sign_in(&writes).await?;
        Ok((token, device))
    }

    // ---- Step-up (S7.6) ----

    /// The proof that `session` verified recently, which every sensitive change takes; else
    /// [`TwoStepError::StepUpRequired`] with the methods to step up with.
    pub async fn check_step_up(&self, session: &SessionRecord, account: &Account) -> Result<SteppedUp, TwoStepError> {
        if session.account_id != account.id {
            return Err(NotYourProof.into());
        }
        match self.window.check(session, self.deps.now()) {
            Some(proof) => Ok(proof),
            None => Err(TwoStepError::StepUpRequired(self.step_up_offer(account).await?)),
        }
    }

    /// The proof, if the session verified recently; `None` otherwise (no methods looked up).
    pub fn recent_step_up(&self, session: &SessionRecord) -> Option<SteppedUp> {
        self.window.check(session, self.deps.now())
    }

    /// What the account may step up with: its strong methods when 2-step is on (a security
    /// question is never a step-up on its own, S6.1), else its password.
    pub async fn step_up_offer(&self, account: &Account) -> Result<StepUpRequired, TwoStepError> {
        let two_step_enabled = self.verifier.two_step_enabled(&account.id).await?;
        let methods = if two_step_enabled { self.verifier.strong_methods(account).await? } else { Vec::new() };
        Ok(StepUpRequired { two_step_enabled, methods })
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
                if self.verifier.is_security_question(&account.id, method_id).await? {
                    return Err(TwoStepError::QuestionNotEnough);
                }
                self.verifier.verify_method(account, method_id, code, &Binding { key: &session.id_hash, purpose: "step_up" }, ctx).await?;
            }
            StepUpProof::Password(password) => {
                if self.verifier.two_step_enabled(&account.id).await? {
                    return Err(TwoStepError::Invalid);
                }
                if !self.verifier.check_session_password(session, account, password, ctx).await? {
                    return Err(TwoStepError::Invalid);
                }
            }
        }
        let token = rotate_session(&self.deps, &*self.store, session, ctx).await?;
        self.deps.audit(AuditEvent::SteppedUp, Some(&account.id), ctx, "").await?;
        Ok(token)
    }
}
