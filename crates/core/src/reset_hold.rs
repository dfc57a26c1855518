//! The hold a waiting 2-step reset puts on its account (issue 11 §2), shared by every
//! feature it restricts: while a reset waits, withdrawals and changes of email, password,
//! phone and 2-step methods are refused whatever proof is offered, and a login that passes a
//! second step cancels the reset (the owner still has a method). Below the features: no
//! service is imported here.

use crate::account::{Account, AccountId};
use crate::audit::{AuditEvent, RequestContext};
use crate::deps::Deps;
use crate::notice::Notice;
use crate::outbox::NewMessage;
use crate::report_link::{ReportLinkStore, ReportedEvent, report_link};
use crate::store::StoreError;
use async_trait::async_trait;

/// The storage of the hold: the 2-step resets that restrict their account.
#[async_trait]
pub trait ResetHoldStore: Send + Sync {
    /// Whether a confirmed request waits (or is ready) on the account.
    async fn two_step_reset_waiting(&self, account: &AccountId) -> Result<bool, StoreError>;
    /// The id of the account's request that is requested or waiting, if any.
    async fn running_two_step_reset(&self, account: &AccountId) -> Result<Option<String>, StoreError>;
    /// Cancels a requested or waiting request, voids its links, deletes its unsent finish
    /// email and writes the messages; `false` when it was not running any more.
    async fn cancel_two_step_reset(&self, id: &str, now: i64, messages: &[NewMessage]) -> Result<bool, StoreError>;
}

crate::storage_trait! {
    /// What ending a hold needs: the reset, and the report link of the notice.
    pub trait ResetHoldStorage: ResetHoldStore, ReportLinkStore
}

/// A change refused because a 2-step reset waits on the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "A 2-step reset is under way on this account. Until it finishes or is cancelled, its email, password, phone, 2-step methods and withdrawals cannot change. If you did not ask for it, cancel it with the link in the email we sent, or sign in with one of your methods."
)]
pub struct ResetWaiting;

/// `Err(ResetWaiting)` while a confirmed 2-step reset waits (or is ready) on the account.
pub(crate) async fn refuse_while_waiting(store: &dyn ResetHoldStore, account: &AccountId) -> Result<Result<(), ResetWaiting>, StoreError> {
    Ok(if store.two_step_reset_waiting(account).await? { Err(ResetWaiting) } else { Ok(()) })
}

/// The notice that a 2-step reset was cancelled, for the account's address, with its own
/// "this wasn't me" link (stored here; harmless if the cancel then does not happen: nobody
/// knows a token whose email was never sent).
pub(crate) async fn cancelled_notice(
    deps: &Deps,
    store: &dyn ReportLinkStore,
    account: &Account,
    why: &str,
    now: i64,
) -> Result<Option<NewMessage>, StoreError> {
    let report = report_link(deps, store, &account.id, ReportedEvent::TwoStepResetStarted).await?;
    let body = format!(
        "The 2-step reset of your account was cancelled: {why}. Your 2-step verification methods stay as they were.\n\nWhen: {}\n\nIf you did not cancel it and you did not sign in, someone may have your password and a method: this wasn't me, lock my account:\n\n{report}",
        crate::clock::rfc2822(now)
    );
    let content = deps
        .composer
        .compose(&Notice::Personal { username: account.username.as_str(), subject: "Your 2-step reset was cancelled", body: &body })
        .ok();
    Ok(content.map(|content| NewMessage::email(account.email.as_str(), "two_step_reset_cancelled", Some(account.id.clone()), content, now)))
}

/// A login passed a second step: proof the owner still has a method, so a running 2-step
/// reset of the account ends here, and the owner is told.
pub(crate) async fn cancel_after_second_step(
    deps: &Deps,
    store: &dyn ResetHoldStorage,
    account: &Account,
    ctx: &RequestContext,
) -> Result<(), StoreError> {
    let Some(running) = store.running_two_step_reset(&account.id).await? else { return Ok(()) };
    let now = deps.now();
    let messages: Vec<NewMessage> =
        cancelled_notice(deps, store, account, "you signed in with a 2-step verification method", now).await?.into_iter().collect();
    if store.cancel_two_step_reset(&running, now, &messages).await? {
        deps.audit(AuditEvent::TwoStepResetCancelled, Some(&account.id), ctx, "signed in with a second step").await?;
    }
    Ok(())
}
