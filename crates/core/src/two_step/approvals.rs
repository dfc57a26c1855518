//! Verifying a method for one approval (S7.6, transaction-bound step-up): the approval names
//! exactly what the person saw, and a verification for one cannot approve another.

use super::TwoStep;
use crate::account::Account;
use crate::approval::Approval;
use crate::audit::{AuditEvent, RequestContext};
use crate::factors::FactorCode;
use crate::verifier::{Binding, TwoStepError};

impl TwoStep {
    /// The account's approval, while it can still be approved and spent.
    pub async fn live_approval(&self, account: &Account, approval_id: &str) -> Result<Option<Approval>, TwoStepError> {
        let now = self.deps.now();
        Ok(self.store.get_approval(&account.id, approval_id).await?.filter(|a| a.expires_at > now && a.used_at.is_none()))
    }

    /// Verifies a method for one approval (its context is what the user saw).
    pub async fn approve(
        &self,
        account: &Account,
        approval_id: &str,
        method_id: &str,
        code: &FactorCode,
        ctx: &RequestContext,
    ) -> Result<Approval, TwoStepError> {
        let now = self.deps.now();
        let approval = self.live_approval(account, approval_id).await?.ok_or(TwoStepError::Invalid)?;
        // Money moves only on a method stronger than a security question (S6.1).
        if self.verifier.is_security_question(&account.id, method_id).await? {
            return Err(TwoStepError::QuestionNotEnough);
        }
        let binding_key = format!("approval:{}", approval.id);
        self.verifier.verify_method(account, method_id, code, &Binding { key: &binding_key, purpose: "withdrawal" }, ctx).await?;
        self.store.mark_approved(&approval.id, now).await?;
        self.deps.audit(AuditEvent::SteppedUp, Some(&account.id), ctx, &format!("approval for {}", approval.purpose)).await?;
        Ok(Approval { approved_at: Some(now), ..approval })
    }
}
