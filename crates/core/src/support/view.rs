//! The support console's account view (issue 11 §6): the account a case names, with its
//! profile and contact data masked by default, its 2-step methods, sessions, recent audit
//! events and cases. Revealing a masked field is an operation of its own, audited with the
//! agent and the account.

use super::{Agent, CaseSummary, Support, SupportError};
use crate::account::{Account, AccountId};
use crate::audit::{AuditEvent, AuditRecord, RequestContext};
use crate::factors::history;
use crate::factors::{FactorKind, FactorRecord};

/// Audit events the view shows.
pub const VIEW_EVENTS: i64 = 20;

/// A field that is masked until an agent reveals it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskedField {
    Username,
    Email,
}

impl MaskedField {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "username" => Some(Self::Username),
            "email" => Some(Self::Email),
            _ => None,
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Username => "username",
            Self::Email => "email",
        }
    }
}

/// The first character, then stars: enough to tell two accounts apart, not to contact one.
pub fn mask(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => format!("{first}{}", "•".repeat(chars.count().clamp(3, 8))),
        None => String::new(),
    }
}

/// An email address masked on both sides of the '@': `m•••@e•••.com`.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let (host, tld) = domain.rsplit_once('.').unwrap_or((domain, ""));
            let tld = if tld.is_empty() { String::new() } else { format!(".{tld}") };
            format!("{}@{}{tld}", mask(local), mask(host))
        }
        None => mask(email),
    }
}

#[derive(Debug, Clone)]
pub struct MethodLine {
    pub kind: &'static str,
    /// Already masked where it is contact data (a phone's last digits).
    pub label: String,
    pub confirmed: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct MethodHistoryLine {
    pub kind: &'static str,
    /// Masked like [`MethodLine::label`].
    pub label: String,
    pub change: &'static str,
    pub by: &'static str,
    pub at: i64,
}

#[derive(Debug, Clone)]
pub struct SessionLine {
    pub created_at: i64,
    pub last_seen_at: i64,
    pub ip: String,
}

#[derive(Debug, Clone)]
pub struct AccountView {
    pub username: String,
    pub email: String,
    pub country: String,
    pub user_type: String,
    pub created_at: i64,
    pub locked: bool,
    pub methods: Vec<MethodLine>,
    /// The newest changes to its methods, newest first: what the owner had before a reported
    /// event, for the evidence checks (S10.4, S11.2).
    pub method_history: Vec<MethodHistoryLine>,
    pub sessions: Vec<SessionLine>,
    pub events: Vec<AuditRecord>,
    pub cases: Vec<CaseSummary>,
}

fn method_line(f: &FactorRecord) -> MethodLine {
    let label = if f.kind == FactorKind::Sms { f.label.clone() } else { String::new() };
    MethodLine { kind: f.kind.as_str(), label, confirmed: f.confirmed_at.is_some(), created_at: f.created_at }
}

impl Support {
    async fn account_of_case(&self, case_id: &str) -> Result<Account, SupportError> {
        let case = self.store.case_detail(case_id).await?.ok_or(SupportError::NoSuchCase)?;
        let id: AccountId = case.account_id.ok_or(SupportError::NoAccount)?;
        self.store.get_account(&id).await?.ok_or(SupportError::NoAccount)
    }

    /// The account the case names, masked.
    pub async fn account_view(&self, _agent: &Agent, case_id: &str) -> Result<AccountView, SupportError> {
        let account = self.account_of_case(case_id).await?;
        let store = &self.store;
        let methods = store.factors_of(&account.id).await?.iter().map(method_line).collect();
        let method_history = store
            .factor_history(&account.id, i64::MAX, history::PAGE_SIZE)
            .await?
            .into_iter()
            .map(|e| MethodHistoryLine {
                kind: e.kind.as_str(),
                label: if e.kind == FactorKind::Sms { e.label } else { String::new() },
                change: e.change.as_str(),
                by: e.by.as_str(),
                at: e.at,
            })
            .collect();
        let sessions = store
            .sessions_of(&account.id)
            .await?
            .into_iter()
            .map(|s| SessionLine { created_at: s.created_at, last_seen_at: s.last_seen_at, ip: s.ip })
            .collect();
        Ok(AccountView {
            username: mask(account.username.as_str()),
            email: mask_email(account.email.as_str()),
            country: account.country.as_str().to_owned(),
            user_type: account.user_type.as_str().to_owned(),
            created_at: account.created_at.unix_timestamp(),
            locked: store.lock_of(&account.id).await?.is_some(),
            methods,
            method_history,
            sessions,
            events: store.audit_of(&account.id, VIEW_EVENTS).await?,
            cases: store.cases_of_account(&account.id).await?,
        })
    }

    /// One masked field in clear; audited with the agent, the case and the field.
    pub async fn reveal(&self, agent: &Agent, case_id: &str, field: MaskedField, ctx: &RequestContext) -> Result<String, SupportError> {
        let account = self.account_of_case(case_id).await?;
        let value = match field {
            MaskedField::Username => account.username.as_str().to_owned(),
            MaskedField::Email => account.email.as_str().to_owned(),
        };
        let detail = format!("case={case_id} account={} field={}", account.id.as_str(), field.as_str());
        self.deps.audit(AuditEvent::SupportFieldRevealed, Some(agent.account()), ctx, &detail).await?;
        Ok(value)
    }
}
