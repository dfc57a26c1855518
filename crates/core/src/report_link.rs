//! The "this wasn't me" link every security email carries. The one place such a link is
//! made, so that the reporting flow (issue 11 §4: a report link tied to its event, which
//! locks the account) can replace it here alone. Today it is the report-not-me token of
//! [`crate::recovery`]: 256 bits, only a keyed hash stored, bound to its purpose.

use crate::account::AccountId;
use crate::deps::Deps;
use crate::recovery::{NewRecoveryToken, Purpose, RecoveryToken, REPORT_TOKEN_TTL_SECONDS};

/// A report link and the token record to store with the email that carries it.
pub struct ReportLink {
    /// The full link, to put in the email.
    pub link: String,
    pub token: NewRecoveryToken,
}

impl ReportLink {
    pub fn mint(deps: &Deps, account: &AccountId, now: i64) -> Self {
        let report = RecoveryToken::generate();
        let link = format!("{}report-not-me?token={}", deps.base_url, report.expose());
        let token = NewRecoveryToken {
            id: uuid::Uuid::new_v4().to_string(),
            account_id: account.clone(),
            purpose: Purpose::ReportNotMe,
            token_hash: report.storage_key(&deps.key, Purpose::ReportNotMe),
            code_hash: None,
            created_at: now,
            expires_at: now + REPORT_TOKEN_TTL_SECONDS,
        };
        Self { link, token }
    }
}
