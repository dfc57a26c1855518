use super::{SqlStore, backend_error};
use async_trait::async_trait;
use doorman_core::account::AccountId;
use doorman_core::sign_in::DeviceRow;
use doorman_core::store::StoreError;
use doorman_core::trusted_device::DeviceStore;
use sqlx::Row;

pub(super) async fn insert_device(conn: &mut sqlx::AnyConnection, d: &DeviceRow) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO trusted_devices (id_hash, account_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(&d.id_hash)
        .bind(d.account.as_str())
        .bind(d.created_at)
        .bind(d.expires_at)
        .execute(&mut *conn)
        .await
        .map_err(backend_error)?;
    Ok(())
}

pub(super) async fn delete_device(conn: &mut sqlx::AnyConnection, id_hash: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM trusted_devices WHERE id_hash = $1").bind(id_hash).execute(&mut *conn).await.map_err(backend_error)?;
    Ok(())
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
