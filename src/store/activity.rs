use super::audit::record_from_row;
use super::{SqlStore, backend_error};
use async_trait::async_trait;
use doorman_core::account::AccountId;
use doorman_core::activity::ActivityStore;
use doorman_core::audit::{AuditEvent, AuditRecord};
use doorman_core::store::StoreError;
use sqlx::Row;

#[async_trait]
impl ActivityStore for SqlStore {
    async fn activity_of(&self, account: &AccountId, before: i64, limit: i64) -> Result<Vec<(i64, AuditRecord)>, StoreError> {
        // The IN list is the partial index's predicate, word for word (migration
        // 20261129000012), so both backends can use that index.
        let rows = sqlx::query(
            "SELECT id, at, event, account_id, ip, user_agent, request_id, detail FROM audit_events \
             WHERE account_id = $1 AND id < $2 AND event IN ('login_succeeded', 'new_device_sign_in', 'password_reset_completed', 'password_changed', \
                    'email_changed', 'factor_added', 'factor_removed', 'recovery_codes_regenerated', \
                    'recovery_code_used', 'answer_reset_completed', 'sessions_revoked') \
             ORDER BY id DESC LIMIT $3",
        )
        .bind(account.as_str())
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(backend_error)?;
        rows.iter().map(|row| Ok((row.try_get("id").map_err(backend_error)?, record_from_row(row)?))).collect()
    }

    async fn has_event(&self, account: &AccountId, event: AuditEvent) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 AS found FROM audit_events WHERE account_id = $1 AND event = $2 LIMIT 1")
            .bind(account.as_str())
            .bind(event.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_error)?;
        Ok(row.is_some())
    }
}
