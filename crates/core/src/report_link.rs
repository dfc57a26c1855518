//! "This wasn't me" links (issue 11 §4). Every security email carries one, tied to the event
//! it reports, so that a lock can roll that change back. A link lives 30 days and is voided
//! only by its own use or its expiry: never by a newer email or a newer link (an attacker who
//! changed the address must not void the owner's link by causing more emails). Features that
//! send a security email call [`report_link`]; the lock itself is `compromise.rs`.

use crate::account::AccountId;
use crate::deps::Deps;
use crate::recovery::{NewRecoveryToken, Purpose, RecoveryToken};
use crate::store::StoreError;

/// How long a "this wasn't me" link stays valid.
pub const REPORT_TOKEN_TTL_SECONDS: i64 = 30 * 24 * 3600;

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

/// A report link and the token record behind it, for an operation that stores the token in
/// the transaction that writes its email (see [`report_link`] for the usual case).
pub struct NewReportLink {
    pub link: String,
    pub token: NewRecoveryToken,
}

/// Makes a report link for `event` on `account`, not yet stored.
pub fn new_report_link(deps: &Deps, account: &AccountId, event: ReportedEvent, now: i64) -> NewReportLink {
    let token = RecoveryToken::generate();
    let link = link_of(deps, &token);
    NewReportLink { link, token: token_record(deps, &token, account, event, now) }
}

/// The link that carries `token`.
pub fn link_of(deps: &Deps, token: &RecoveryToken) -> String {
    format!("{}report-not-me?token={}", deps.base_url, token.expose())
}

/// The stored record of a report token, for when the account or the event is known only
/// after the email was composed (an address change).
pub fn token_record(deps: &Deps, token: &RecoveryToken, account: &AccountId, event: ReportedEvent, now: i64) -> NewRecoveryToken {
    NewRecoveryToken {
        id: uuid::Uuid::new_v4().to_string(),
        account_id: account.clone(),
        purpose: Purpose::ReportNotMe,
        token_hash: token.storage_key(&deps.key, Purpose::ReportNotMe),
        code_hash: None,
        created_at: now,
        expires_at: now + REPORT_TOKEN_TTL_SECONDS,
        event: Some(event),
    }
}

/// The one call a feature makes for the "this wasn't me" link of a security email: stores
/// the token (a keyed hash, bound to `event`) and returns the link to put in the email. A
/// token stored before its email is harmless: nobody knows it until the email is sent.
pub async fn report_link(deps: &Deps, account: &AccountId, event: ReportedEvent) -> Result<String, StoreError> {
    let minted = new_report_link(deps, account, event, deps.clock.unix());
    deps.store.insert_report_token(&minted.token).await?;
    Ok(minted.link)
}
