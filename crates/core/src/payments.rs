//! The demo payments page: withdrawals that need a step-up bound to their amount and
//! destination, so a verification for one withdrawal cannot approve another.

use crate::account::{Account, AccountId};
use crate::approval::Approval;
use crate::audit::{AuditEvent, RequestContext};
use crate::deps::Deps;
use crate::session::SessionRecord;
use crate::step_up::{NotYourProof, SteppedUp};
use crate::store::StoreError;
use async_trait::async_trait;
use std::sync::Arc;

crate::storage_trait! {
    /// The storage `Payments` reads and writes.
    pub trait PaymentsStorage:
        crate::approval::ApprovalStore,
        crate::compromise::CompromiseStore,
        WithdrawalStore,
        crate::reset_hold::ResetHoldStore,
}

/// Where the demo can send money.
pub const PAYOUT_DESTINATIONS: [(&str, &str); 3] =
    [("bank-ph", "Bank account ending 4821 (BDO, PHP)"), ("paypal", "PayPal m***@example.com"), ("gcash", "GCash +63 *** *** 4521")];

/// An amount in cents, from text like "125" or "125.50"; 1.00 to 10,000.00.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amount(i64);

impl Amount {
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim().trim_start_matches('$');
        let (whole, frac) = raw.split_once('.').unwrap_or((raw, ""));
        if whole.is_empty()
            || whole.len() > 6
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || frac.len() > 2
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let cents = whole.parse::<i64>().ok()? * 100 + format!("{frac:0<2}").parse::<i64>().ok()?;
        (100..=1_000_000).contains(&cents).then_some(Self(cents))
    }
    pub fn cents(&self) -> i64 {
        self.0
    }
}

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WithdrawalError {
    #[error("Enter an amount between 1.00 and 10000.00, like 125.50.")]
    Amount,
    #[error("Choose one of your payout methods.")]
    Destination,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withdrawal {
    pub amount: Amount,
    pub destination: &'static str,
}

impl Withdrawal {
    pub fn parse(amount: &str, destination: &str) -> Result<Self, WithdrawalError> {
        let amount = Amount::parse(amount).ok_or(WithdrawalError::Amount)?;
        let destination =
            PAYOUT_DESTINATIONS.iter().find(|(id, _)| *id == destination).map(|(id, _)| *id).ok_or(WithdrawalError::Destination)?;
        Ok(Self { amount, destination })
    }
    pub fn destination_label(&self) -> &'static str {
        PAYOUT_DESTINATIONS.iter().find(|(id, _)| *id == self.destination).map(|(_, label)| *label).unwrap_or(self.destination)
    }
    /// The withdrawal an approval was made for.
    pub fn from_context(context: &str) -> Option<Self> {
        let rest = context.strip_prefix("withdraw ")?;
        let (cents, destination) = rest.split_once(" cents to ")?;
        let cents: i64 = cents.parse().ok()?;
        Self::parse(&format!("{}.{:02}", cents / 100, cents % 100), destination).ok()
    }
    /// What an approval is bound to.
    pub fn context(&self) -> String {
        format!("withdraw {} cents to {}", self.amount.cents(), self.destination)
    }
}

#[derive(Debug, Clone)]
pub struct WithdrawalRecord {
    pub amount: Amount,
    pub destination: String,
    pub created_at: i64,
}

impl WithdrawalRecord {
    /// How the destination is shown (its label, or the stored id if it is no longer offered).
    pub fn destination_label(&self) -> &str {
        PAYOUT_DESTINATIONS.iter().find(|(id, _)| *id == self.destination).map(|(_, label)| *label).unwrap_or(&self.destination)
    }
}

#[async_trait]
pub trait WithdrawalStore: Send + Sync {
    /// Spends an approval on the withdrawal it approved, in one transaction; `false` when
    /// it was not approved, already used, expired, or for another context.
    async fn record_withdrawal(&self, approval: &Approval, amount_cents: i64, destination: &str, now: i64) -> Result<bool, StoreError>;
    async fn withdrawals_of(&self, account: &AccountId) -> Result<Vec<WithdrawalRecord>, StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// The approval is unknown, not approved, used, expired, or for another withdrawal.
    #[error("The approval is not valid for this withdrawal.")]
    ApprovalInvalid,
    /// The account is locked from a "this wasn't me" link (issue 11 §4).
    #[error("Withdrawals are frozen while this account is locked. Reset your password to unlock it.")]
    Frozen,
    #[error(transparent)]
    NotYourProof(#[from] NotYourProof),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    ResetWaiting(#[from] crate::reset_hold::ResetWaiting),
}

/// The demo payments: payout details behind a step-up, withdrawals behind an approval.
#[derive(Debug, Clone)]
pub struct Payments {
    deps: Deps,
    store: Arc<dyn PaymentsStorage>,
}

impl Payments {
    pub fn new(deps: Deps, store: Arc<dyn PaymentsStorage>) -> Self {
        Self { store, deps }
    }

    /// Records a withdrawal a session asks for; it waits for an approval of exactly it.
    pub async fn request_withdrawal(&self, session: &SessionRecord, withdrawal: &Withdrawal) -> Result<Approval, StoreError> {
        crate::approval::request(&self.deps, &*self.store, session, "withdrawal", &withdrawal.context()).await
    }

    /// Submits a withdrawal with an approval made for exactly it, once. The approval is the
    /// proof here: a verification bound to this amount and destination, checked in the same
    /// statement that spends it.
    pub async fn submit_withdrawal(
        &self,
        account: &Account,
        approval_id: &str,
        withdrawal: &Withdrawal,
        ctx: &RequestContext,
    ) -> Result<(), PaymentError> {
        crate::reset_hold::refuse_while_waiting(&*self.store, &account.id).await??;
        let now = self.deps.now();
        // Frozen while locked, whatever proof is offered.
        if self.store.lock_of(&account.id).await?.is_some() {
            return Err(PaymentError::Frozen);
        }
        let approval = self.store.get_approval(&account.id, approval_id).await?.ok_or(PaymentError::ApprovalInvalid)?;
        // The approval's own context is compared in the same statement that spends it.
        let bound = Approval { context: withdrawal.context(), ..approval };
        if !self.store.record_withdrawal(&bound, withdrawal.amount.cents(), withdrawal.destination, now).await? {
            return Err(PaymentError::ApprovalInvalid);
        }
        self.deps
            .audit(AuditEvent::WithdrawalSubmitted, Some(&account.id), ctx, &format!("{} to {}", withdrawal.amount, withdrawal.destination))
            .await?;
        Ok(())
    }

    /// The payout details: past withdrawals. Needs the account's step-up (S7.6).
    pub async fn history(&self, by: &SteppedUp) -> Result<Vec<WithdrawalRecord>, PaymentError> {
        Ok(self.store.withdrawals_of(by.account()).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_strictly() {
        assert_eq!(Amount::parse("125.5").map(|a| a.cents()), Some(12550));
        assert_eq!(Amount::parse("$20").map(|a| a.to_string()), Some("20.00".into()));
        for bad in ["", "0.50", "-5", "1e3", "12.345", "abc", "10000.01", "1,000"] {
            assert!(Amount::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn contexts_differ_by_amount_and_destination() {
        let a = Withdrawal::parse("100", "paypal").expect("valid");
        let b = Withdrawal::parse("100.01", "paypal").expect("valid");
        let c = Withdrawal::parse("100", "gcash").expect("valid");
        assert_ne!(a.context(), b.context());
        assert_ne!(a.context(), c.context());
        assert!(Withdrawal::parse("100", "elsewhere").is_err());
        assert_eq!(Withdrawal::from_context(&b.context()), Some(b));
    }
}
