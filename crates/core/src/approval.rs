//! Approvals bound to one transaction (checklist S7.6): a verification made for exactly one
//! action, shown to the person as what they approve, spent once. The demo's withdrawals use
//! them; their store is shared by 2-step (which approves) and payments (which spends).

use crate::account::AccountId;
use crate::deps::Deps;
use crate::session::SessionRecord;
use crate::store::StoreError;
use async_trait::async_trait;

/// Lifetime of a transaction approval.
pub const APPROVAL_TTL_SECONDS: i64 = 10 * 60;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    pub id: String,
    pub account_id: AccountId,
    pub binding: String,
    pub purpose: String,
    pub context: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub approved_at: Option<i64>,
    pub used_at: Option<i64>,
}

#[async_trait]
pub trait ApprovalStore: Send + Sync {
    async fn insert_approval(&self, approval: &Approval) -> Result<(), StoreError>;
    async fn get_approval(&self, account: &AccountId, id: &str) -> Result<Option<Approval>, StoreError>;
    async fn mark_approved(&self, id: &str, now: i64) -> Result<bool, StoreError>;
}

/// Records what a session asks to do, for it to approve next.
pub(crate) async fn request(
    deps: &Deps,
    store: &dyn ApprovalStore,
    session: &SessionRecord,
    purpose: &str,
    context: &str,
) -> Result<Approval, StoreError> {
    let now = deps.now();
    let approval = Approval {
        id: uuid::Uuid::new_v4().to_string(),
        account_id: session.account_id.clone(),
        binding: session.id_hash.clone(),
        purpose: purpose.to_owned(),
        context: context.to_owned(),
        created_at: now,
        expires_at: now + APPROVAL_TTL_SECONDS,
        approved_at: None,
        used_at: None,
    };
    store.insert_approval(&approval).await?;
    Ok(approval)
}
