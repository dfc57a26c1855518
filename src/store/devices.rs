use super::batch::Statement;
use super::{SqlStore, backend_error};
use async_trait::async_trait;
use doorman_core::account::AccountId;
use doorman_core::sign_in::DeviceRow;
use doorman_core::store::StoreError;
use doorman_core::trusted_device::DeviceStore;
use sqlx::Row;

pub(super) fn device_insert(d: &DeviceRow) -> Statement {
    Statement::new("INSERT INTO trusted_devices (id_hash, account_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
        .text(&d.id_hash)
        .text(d.account.as_str())
        .int(d.created_at)
        .int(d.expires_at)
}

pub(super) fn device_delete(id_hash: &str) -> Statement {
    Statement::new("DELETE FROM trusted_devices WHERE id_hash = $1").text(id_hash)
}

#[async_trait]
impl DeviceStore for SqlStore {
    async fn find_device(&self, account: &AccountId, id_hashes: &[String], now: i64) -> Result<Option<String>, StoreError> {
        for hash in id_hashes {
            let row = sqlx::query("SELECT id_hash FROM trusted_devices WHERE id_hash = $1 AND account_id = $2 AND expires_at > $3")
                .bind(hash)
                .bind(account.as_str())
                .bind(now)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend_error)?;
            if let Some(row) = row {
                return row.try_get("id_hash").map(Some).map_err(backend_error);
            }
        }
        Ok(None)
    }

    async fn delete_devices_of(&self, account: &AccountId) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM trusted_devices WHERE account_id = $1")
            .bind(account.as_str())
            .execute(&self.pool)
            .await
            .map_err(backend_error)?;
        Ok(done.rows_affected())
    }
}
