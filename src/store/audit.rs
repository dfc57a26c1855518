use super::{backend_error, SqlStore};
use async_trait::async_trait;
use doorman_core::account::AccountId;
use doorman_core::audit::{AuditEvent, AuditRecord};
use doorman_core::store::{AuditStore, StoreError};
use sqlx::Row;

#[async_trait]
impl AuditStore for SqlStore {
    async fn append_audit(&self, r: &AuditRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_events (at, event, account_id, ip, user_agent, request_id, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(r.at)
        .bind(r.event.as_str())
        .bind(r.account_id.as_ref().map(|a| a.as_str().to_owned()))
        .bind(&r.ip)
        .bind(&r.user_agent)
        .bind(&r.request_id)
        .bind(&r.detail)
        .execute(&self.pool)
        .await
        .map_err(backend_error)?;
        Ok(())
    }

    async fn audit_of(&self, account: &AccountId, limit: i64) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query("SELECT at, event, account_id, ip, user_agent, request_id, detail FROM audit_events WHERE account_id = $1 ORDER BY id DESC LIMIT $2")
            .bind(account.as_str())
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(backend_error)?;
        rows.iter()
            .map(|row| {
                let event: String = row.try_get("event").map_err(backend_error)?;
                Ok(AuditRecord {
                    at: row.try_get("at").map_err(backend_error)?,
                    event: AuditEvent::parse(&event).ok_or_else(|| StoreError::Backend(format!("unknown audit event {event}").into()))?,
                    account_id: row.try_get::<Option<String>, _>("account_id").map_err(backend_error)?.map(AccountId::from_stored),
                    ip: row.try_get("ip").map_err(backend_error)?,
                    user_agent: row.try_get("user_agent").map_err(backend_error)?,
                    request_id: row.try_get("request_id").map_err(backend_error)?,
                    detail: row.try_get("detail").map_err(backend_error)?,
                })
            })
            .collect()
    }
}
