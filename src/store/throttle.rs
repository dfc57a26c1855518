use super::{backend_error, SqlStore};
use async_trait::async_trait;
use doorman_core::store::{StoreError, ThrottleStore};
use doorman_core::throttle::{EventCount, ThrottleKey};
use sqlx::Row;

#[async_trait]
impl ThrottleStore for SqlStore {
    async fn event_counts(&self, keys: &[String]) -> Result<Vec<(String, EventCount)>, StoreError> {
        let mut counts = Vec::with_capacity(keys.len());
        for key in keys {
            let row = sqlx::query("SELECT failures, window_start, last_failure FROM rate_counters WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend_error)?;
            if let Some(row) = row {
                let count = EventCount {
                    failures: row.try_get("failures").map_err(backend_error)?,
                    window_start: row.try_get("window_start").map_err(backend_error)?,
                    last_failure: row.try_get("last_failure").map_err(backend_error)?,
                };
                counts.push((key.clone(), count));
            }
        }
        Ok(counts)
    }

    async fn record_event(&self, keys: &[ThrottleKey], now: i64) -> Result<(), StoreError> {
        // One atomic upsert per key: concurrent failures on several replicas all count.
        for key in keys {
            sqlx::query(
                "INSERT INTO rate_counters (key, failures, window_start, last_failure) VALUES ($1, 1, $2, $2) \
                 ON CONFLICT (key) DO UPDATE SET \
                   failures = CASE WHEN rate_counters.window_start <= $3 THEN 1 ELSE rate_counters.failures + 1 END, \
                   window_start = CASE WHEN rate_counters.window_start <= $3 THEN $2 ELSE rate_counters.window_start END, \
                   last_failure = $2",
            )
            .bind(&key.key)
            .bind(now)
            .bind(now - key.window())
            .execute(&self.pool)
            .await
            .map_err(backend_error)?;
        }
        Ok(())
    }

    async fn clear_events(&self, keys: &[String]) -> Result<(), StoreError> {
        for key in keys {
            sqlx::query("DELETE FROM rate_counters WHERE key = $1").bind(key).execute(&self.pool).await.map_err(backend_error)?;
        }
        Ok(())
    }
}
