//! The owner's security activity (issue 11 §5): recent sign-ins and security changes, read
//! from the audit log newest first, a page at a time (keyset paging on the event id, served
//! by a partial index on (account, id) over exactly these events, so a page costs the same
//! at a million accounts as at ten).

use crate::account::AccountId;
use crate::audit::{AuditEvent, AuditRecord};
use crate::factors::FactorKind;
use crate::store::StoreError;
use async_trait::async_trait;
use std::sync::Arc;

crate::storage_trait! {
    /// The storage `Activity` reads and writes.
    pub trait ActivityStorage: ActivityStore
}

/// The events the activity page lists. The same list is written in the partial index of
/// migration 20261129000012 and in the store's query: change all three together.
pub const ACTIVITY_EVENTS: [AuditEvent; 11] = [
    AuditEvent::LoginSucceeded,
    AuditEvent::NewDeviceSignIn,
    AuditEvent::PasswordResetCompleted,
    AuditEvent::PasswordChanged,
    AuditEvent::EmailChanged,
    AuditEvent::FactorAdded,
    AuditEvent::FactorRemoved,
    AuditEvent::RecoveryCodesRegenerated,
    AuditEvent::RecoveryCodeUsed,
    AuditEvent::AnswerResetCompleted,
    AuditEvent::SessionsRevoked,
];

/// Events per page.
pub const PAGE_SIZE: i64 = 20;

#[async_trait]
pub trait ActivityStore: Send + Sync {
    /// The account's events of [`ACTIVITY_EVENTS`] with an id below `before`, newest first.
    async fn activity_of(&self, account: &AccountId, before: i64, limit: i64) -> Result<Vec<(i64, AuditRecord)>, StoreError>;
    /// Whether the account has any event of this kind.
    async fn has_event(&self, account: &AccountId, event: AuditEvent) -> Result<bool, StoreError>;
}

/// One line of the activity page.
#[derive(Debug, Clone)]
pub struct ActivityItem {
    pub id: i64,
    pub at: i64,
    pub event: AuditEvent,
    /// What happened, in words.
    pub title: &'static str,
    pub ip: String,
    /// From the user agent's fixed names only (S9.2).
    pub device: String,
    /// The id of the "this wasn't me" token its security email carried, when the audit
    /// detail names it (`report=<id>`): what a report from the activity page rolls back.
    pub report_token: Option<String>,
}

/// The `report=<id>` part of an audit detail (parts are separated by `;`).
pub fn report_token_of(detail: &str) -> Option<String> {
    detail.split(';').find_map(|part| part.trim().strip_prefix("report=")).filter(|id| !id.is_empty()).map(str::to_owned)
}

#[derive(Debug, Clone)]
pub struct ActivityPage {
    pub items: Vec<ActivityItem>,
    /// The cursor of the next (older) page, if there is one.
    pub next_before: Option<i64>,
}

fn title(event: AuditEvent, detail: &str) -> &'static str {
    match event {
        AuditEvent::LoginSucceeded => "Signed in",
        AuditEvent::NewDeviceSignIn => "Signed in from a new device",
        AuditEvent::PasswordResetCompleted => "Password reset",
        AuditEvent::PasswordChanged => "Password changed",
        AuditEvent::EmailChanged => "Email address changed",
        AuditEvent::FactorAdded if detail.contains("forgot answer") => "Security question replaced after \"Forgot your answer?\"",
        AuditEvent::FactorAdded | AuditEvent::FactorRemoved => method_title(event == AuditEvent::FactorAdded, detail),
        AuditEvent::RecoveryCodesRegenerated => "New recovery codes made",
        AuditEvent::RecoveryCodeUsed => "Recovery code used",
        AuditEvent::AnswerResetCompleted => "\"Forgot your answer?\" link used",
        AuditEvent::SessionsRevoked => "Signed out of sessions",
        _ => "Security event",
    }
}

/// Which method came or went, from the audit detail (the method's kind first): a person who
/// did not add an authenticator app is more likely to notice "Authenticator app added" than
/// "2-step method added".
fn method_title(added: bool, detail: &str) -> &'static str {
    let kind = FactorKind::parse(detail.split(';').next().unwrap_or_default().trim());
    match (kind, added) {
        (Some(FactorKind::Totp), true) => "Authenticator app added",
        (Some(FactorKind::Totp), false) => "Authenticator app removed",
        (Some(FactorKind::Sms), true) => "Phone added for text-message codes",
        (Some(FactorKind::Sms), false) => "Phone removed from text-message codes",
        (Some(FactorKind::Email), true) => "Email codes added",
        (Some(FactorKind::Email), false) => "Email codes removed",
        (Some(FactorKind::SecurityQuestion), true) => "Security question set",
        (Some(FactorKind::SecurityQuestion), false) => "Security question removed",
        (Some(FactorKind::RecoveryCode), true) => "Recovery codes added",
        (Some(FactorKind::RecoveryCode), false) => "Recovery codes removed",
        (None, true) => "2-step method added",
        (None, false) => "2-step method removed",
    }
}

fn item(id: i64, r: AuditRecord) -> ActivityItem {
    ActivityItem {
        id,
        at: r.at,
        event: r.event,
        title: title(r.event, &r.detail),
        ip: r.ip,
        device: crate::device::Device::from_user_agent(&r.user_agent).describe(),
        report_token: report_token_of(&r.detail),
    }
}

/// One listed entry of the account's activity, by id (also what a report from the activity
/// page names, `compromise.rs`); `None` for another account's, an unlisted event or none.
pub async fn entry(store: &dyn ActivityStore, account: &AccountId, id: i64) -> Result<Option<ActivityItem>, StoreError> {
    let Some(after) = id.checked_add(1).filter(|_| id > 0) else { return Ok(None) };
    let rows = store.activity_of(account, after, 1).await?;
    Ok(rows.into_iter().find(|(found, _)| *found == id).map(|(id, r)| item(id, r)))
}

#[derive(Debug, Clone)]
pub struct Activity {
    store: Arc<dyn ActivityStorage>,
}

impl Activity {
    pub fn new(store: Arc<dyn ActivityStorage>) -> Self {
        Self { store }
    }

    /// One listed entry of the account's activity, by id; `None` for another account's, an
    /// unlisted event or no event at all.
    pub async fn entry(&self, account: &AccountId, id: i64) -> Result<Option<ActivityItem>, StoreError> {
        entry(&*self.store, account, id).await
    }

    /// A page of the account's activity, older than `before` (the newest page without it).
    pub async fn page(&self, account: &AccountId, before: Option<i64>) -> Result<ActivityPage, StoreError> {
        let before = before.filter(|b| *b > 0).unwrap_or(i64::MAX);
        let mut rows = self.store.activity_of(account, before, PAGE_SIZE + 1).await?;
        let more = rows.len() as i64 > PAGE_SIZE;
        rows.truncate(PAGE_SIZE as usize);
        let next_before = if more { rows.last().map(|(id, _)| *id) } else { None };
        let items = rows.into_iter().map(|(id, r)| item(id, r)).collect();
        Ok(ActivityPage { items, next_before })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_names_the_report_token_of_its_email_when_the_detail_has_one() {
        assert_eq!(report_token_of("totp; report=abc-1"), Some("abc-1".to_owned()));
        assert_eq!(report_token_of("report=abc-1"), Some("abc-1".to_owned()));
        assert_eq!(report_token_of("totp"), None);
        assert_eq!(report_token_of("report="), None);
        assert_eq!(report_token_of(""), None);
    }

    #[test]
    fn added_and_removed_methods_are_named_from_the_audit_detail() {
        assert_eq!(title(AuditEvent::FactorAdded, "totp"), "Authenticator app added");
        assert_eq!(title(AuditEvent::FactorRemoved, "sms"), "Phone removed from text-message codes");
        assert_eq!(title(AuditEvent::FactorAdded, "security_question"), "Security question set");
        assert_eq!(
            title(AuditEvent::FactorAdded, "security_question; forgot answer"),
            "Security question replaced after \"Forgot your answer?\""
        );
        assert_eq!(title(AuditEvent::FactorRemoved, "recovery_code"), "Recovery codes removed");
        // A detail that names no method (older events) keeps the general words.
        assert_eq!(title(AuditEvent::FactorAdded, ""), "2-step method added");
        assert_eq!(title(AuditEvent::FactorRemoved, "something else"), "2-step method removed");
    }
}
