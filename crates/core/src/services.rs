//! Wiring only: every feature service, built once from the shared dependencies and the
//! settings. No operation lives here, and no feature imports this file.

use crate::activity::Activity;
use crate::answer_reset::AnswerReset;
use crate::audit_chain::Audit;
use crate::auth::Auth;
use crate::breached::BreachedPasswords;
use crate::compromise::Compromise;
use crate::content::Content;
use crate::deps::Deps;
use crate::email_change::EmailChange;
use crate::keyring::Keys;
use crate::new_password::NewPasswords;
use crate::password::PasswordPolicy;
use crate::password_change::PasswordChange;
use crate::payments::Payments;
use crate::recovery::Recovery;
use crate::recovery_request::RecoveryRequests;
use crate::retention::{Retention, RetentionPolicy};
use crate::roles::Roles;
use crate::session::SessionPolicy;
use crate::support::Support;
use crate::two_step::{TwoStep, TwoStepSettings};
use crate::two_step_reset::TwoStepReset;
use crate::verifier::Verifier;
use std::sync::Arc;

/// The settings of the features, from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub password_policy: PasswordPolicy,
    /// The optional Pwned Passwords check of new passwords (S4.4); `None` when off.
    pub breached: Option<Arc<dyn BreachedPasswords>>,
    pub session_policy: SessionPolicy,
    pub reset_token_ttl_seconds: i64,
    pub two_step: TwoStepSettings,
    /// How long a confirmed 2-step reset waits (issue 11 §2).
    pub two_step_reset_wait_seconds: i64,
    /// The proof-of-work difficulty of the recovery request form (issue 11 §3).
    pub proof_of_work_bits: u8,
    /// How long an approved two-person support action waits before it applies (issue 11 §6).
    pub support_change_delay_seconds: i64,
    /// How long finished, expired and personal data are kept (issue 13).
    pub retention: RetentionPolicy,
}

#[derive(Debug, Clone)]
pub struct Services {
    pub deps: Deps,
    /// The whole storage, for the server crate (its jobs and command line) and tests.
    pub store: Arc<dyn Storage>,
    pub auth: Auth,
    pub recovery: Recovery,
    pub two_step: TwoStep,
    pub two_step_reset: TwoStepReset,
    pub password_change: PasswordChange,
    pub email_change: EmailChange,
    pub payments: Payments,
    pub content: Content,
    pub audit: Audit,
    pub roles: Roles,
    pub compromise: Compromise,
    pub answer_reset: AnswerReset,
    pub activity: Activity,
    pub recovery_requests: RecoveryRequests,
    pub support: Support,
    pub retention: Retention,
    /// The keyring's rotation, reload and re-seal pass (issue 13).
    pub keys: Keys,
}

crate::storage_trait! {
    /// Everything the features store: the shared traits and every feature's own. The server
    /// crate's store implements it; each service is handed the same store, seen through its
    /// feature's trait.
    pub trait Storage:
        crate::store::SharedStore,
        crate::activity::ActivityStorage,
        crate::answer_reset::AnswerResetStorage,
        crate::audit_chain::AuditChainStorage,
        crate::auth::AuthStorage,
        crate::compromise::CompromiseStorage,
        crate::content::ContentStorage,
        crate::email_change::EmailChangeStorage,
        crate::password_change::PasswordChangeStorage,
        crate::payments::PaymentsStorage,
        crate::recovery::RecoveryStorage,
        crate::recovery_request::RecoveryRequestStorage,
        crate::roles::RolesStorage,
        crate::support::SupportStorage,
        crate::two_step::TwoStepStorage,
        crate::two_step_reset::TwoStepResetStorage,
        crate::verifier::VerifierStorage,
        crate::delivery_failures::DeliveryFailureStore,
        crate::retention::RetentionStorage,
        crate::new_password::FailOpenStorage,
        crate::keyring::KeysStorage,
}

impl Services {
    /// `store` is the storage `deps` shares, seen whole.
    pub fn new(store: Arc<dyn Storage>, deps: Deps, settings: Settings) -> Self {
        let verifier = Verifier::new(deps.clone(), store.clone(), settings.two_step);
        let passwords = NewPasswords {
            policy: settings.password_policy,
            breached: settings.breached,
            fail_opens: store.clone(),
            clock: deps.clock.clone(),
        };
        let recovery = Recovery::new(deps.clone(), store.clone(), verifier.clone(), passwords.clone(), settings.reset_token_ttl_seconds);
        let audit = Audit::new(deps.clone(), store.clone());
        Self {
            auth: Auth::new(deps.clone(), store.clone(), verifier.clone(), passwords.clone(), settings.session_policy),
            support: Support::new(
                deps.clone(),
                store.clone(),
                verifier.clone(),
                settings.reset_token_ttl_seconds,
                settings.support_change_delay_seconds,
            ),
            recovery,
            two_step: TwoStep::new(deps.clone(), store.clone(), verifier.clone()),
            two_step_reset: TwoStepReset::new(deps.clone(), store.clone(), settings.two_step_reset_wait_seconds),
            answer_reset: AnswerReset::new(deps.clone(), store.clone(), verifier.clone()),
            activity: Activity::new(store.clone()),
            recovery_requests: RecoveryRequests::new(deps.clone(), store.clone(), settings.proof_of_work_bits),
            password_change: PasswordChange::new(deps.clone(), store.clone(), verifier, passwords),
            email_change: EmailChange::new(deps.clone(), store.clone()),
            payments: Payments::new(deps.clone(), store.clone()),
            content: Content::new(deps.clone(), store.clone()),
            retention: Retention::new(deps.clone(), store.clone(), audit.clone(), settings.retention, settings.session_policy),
            audit,
            roles: Roles::new(deps.clone(), store.clone()),
            compromise: Compromise::new(deps.clone(), store.clone()),
            keys: Keys::new(deps.keys.clone(), deps.clock.clone(), store.clone()),
            deps,
            store,
        }
    }
}
