//! "This wasn't me" links (issue 11 §4). Every security email carries one, tied to the event
//! it reports, so that a lock can roll that change back. A link lives 30 days and is voided
//! only by its own use or its expiry: never by a newer email or a newer link (an attacker who
//! changed the address must not void the owner's link by causing more emails). Features that
//! send a security email call [`report_link`]; the lock itself is `compromise.rs`.

use crate::account::AccountId;
use crate::deps::Deps;
use crate::store::StoreError;
pub use crate::token::ReportedEvent;
use crate::token::{NewRecoveryToken, Purpose, RecoveryToken};
use async_trait::async_trait;

#[async_trait]
pub trait ReportLinkStore: Send + Sync {
    /// Stores a report token; never voids another.
    async fn insert_report_token(&self, token: &NewRecoveryToken) -> Result<(), StoreError>;
}

/// How long a "this wasn't me" link stays valid.
pub const REPORT_TOKEN_TTL_SECONDS: i64 = 30 * 24 * 3600;

/// A report link and the token record behind it, for an operation that stores the token in
/// the transaction that writes its email (see [`report_link`] for the usual case).
pub struct NewReportLink {
    pub link: String,
    pub token: NewRecoveryToken,
}

/// Makes a report link for `event` on `account`, not yet stored.
pub fn new_report_link(deps: &Deps, account: &AccountId, event: ReportedEvent, now: i64) -> NewReportLink {
    let token = RecoveryToken::generate(&deps.keys);
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
        token_hash: token.storage_key(&deps.keys, Purpose::ReportNotMe),
        code_hash: None,
        created_at: now,
        expires_at: now + REPORT_TOKEN_TTL_SECONDS,
        event: Some(event),
    }
}

/// The one call a feature makes for the "this wasn't me" link of a security email: stores
/// the token (a keyed hash, bound to `event`) and returns the link to put in the email. A
/// token stored before its email is harmless: nobody knows it until the email is sent.
pub async fn report_link(
    deps: &Deps,
    store: &dyn ReportLinkStore,
    account: &AccountId,
    event: ReportedEvent,
) -> Result<String, StoreError> {
    Ok(stored_report_link(deps, store, account, event).await?.0)
}

/// [`report_link`], with the stored token's id besides the link, for the change's audit
/// entry to name (`report=<id>`), so that a report from the activity page rolls back what
/// the link would.
pub async fn stored_report_link(
    deps: &Deps,
    store: &dyn ReportLinkStore,
    account: &AccountId,
    event: ReportedEvent,
) -> Result<(String, String), StoreError> {
    let minted = new_report_link(deps, account, event, deps.clock.unix());
    store.insert_report_token(&minted.token).await?;
    Ok((minted.link, minted.token.id))
}
