//! Approvals bound to one transaction, and the withdrawals they allow (the demo payments).

use super::{SqlStore, backend_error};
use async_trait::async_trait;
use doorman_core::account::AccountId;
use doorman_core::approval::{Approval, ApprovalStore};
use doorman_core::payments::{Amount, WithdrawalRecord, WithdrawalStore};
use doorman_core::store::StoreError;
use sqlx::Row;
use sqlx::any::AnyRow;

fn approval_from_row(row: &AnyRow) -> Result<Approval, sqlx::Error> {
    Ok(Approval {
        id: row.try_get("id")?,
        account_id: AccountId::from_stored(row.try_get("account_id")?),
        binding: row.try_get("binding")?,
        purpose: row.try_get("purpose")?,
        context: row.try_get("context")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        approved_at: row.try_get("approved_at")?,
        used_at: row.try_get("used_at")?,
    })
}

#[async_trait]
impl ApprovalStore for SqlStore {
    async fn insert_approval(&self, a: &Approval) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO approvals (id, account_id, binding, purpose, context, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&a.id)
        .bind(a.account_id.as_str())
        .bind(&a.binding)
        .bind(&a.purpose)
        .bind(&a.context)
        .bind(a.created_at)
        .bind(a.expires_at)
        .execute(&self.pool)
        .await
        .map_err(backend_error)?;
        Ok(())
    }

    async fn get_approval(&self, account: &AccountId, id: &str) -> Result<Option<Approval>, StoreError> {
        let row = sqlx::query(
            "SELECT id, account_id, binding, purpose, context, created_at, expires_at, approved_at, used_at FROM approvals WHERE id = $1 AND account_id = $2",
        )
        .bind(id)
        .bind(account.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(backend_error)?;
        row.as_ref().map(approval_from_row).transpose().map_err(backend_error)
    }

    async fn mark_approved(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE approvals SET approved_at = $1 WHERE id = $2 AND used_at IS NULL AND expires_at > $1")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend_error)?;
        Ok(done.rows_affected() == 1)
    }
}

#[async_trait]
impl WithdrawalStore for SqlStore {
    async fn record_withdrawal(&self, approval: &Approval, amount_cents: i64, destination: &str, now: i64) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let spent = sqlx::query(
            "UPDATE approvals SET used_at = $1 WHERE id = $2 AND account_id = $3 AND purpose = 'withdrawal' AND context = $4 \
             AND approved_at IS NOT NULL AND used_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(&approval.id)
        .bind(approval.account_id.as_str())
        .bind(&approval.context)
        .execute(&mut *tx)
        .await
        .map_err(backend_error)?;
        if spent.rows_affected() != 1 {
            tx.rollback().await.map_err(backend_error)?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO withdrawals (id, account_id, amount_cents, destination, approval_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(approval.account_id.as_str())
        .bind(amount_cents)
        .bind(destination)
        .bind(&approval.id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(backend_error)?;
        tx.commit().await.map_err(backend_error)?;
        Ok(true)
    }

    async fn withdrawals_of(&self, account: &AccountId) -> Result<Vec<WithdrawalRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT amount_cents, destination, created_at FROM withdrawals WHERE account_id = $1 ORDER BY created_at DESC LIMIT 50",
        )
        .bind(account.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(backend_error)?;
        rows.iter()
            .map(|r| {
                let cents: i64 = r.try_get("amount_cents").map_err(backend_error)?;
                Ok(WithdrawalRecord {
                    amount: Amount::parse(&format!("{}.{:02}", cents / 100, cents % 100))
                        .ok_or_else(|| StoreError::Backend("stored amount out of range".into()))?,
                    destination: r.try_get("destination").map_err(backend_error)?,
                    created_at: r.try_get("created_at").map_err(backend_error)?,
                })
            })
            .collect()
    }
}
