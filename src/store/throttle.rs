use super::{SqlStore, backend_error};
use async_trait::async_trait;
use doorman_core::store::{StoreError, ThrottleStore};
use doorman_core::throttle::{EventCount, Refusal, ThrottleKey};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

fn count_from_row(row: &AnyRow) -> Result<EventCount, StoreError> {
    Ok(EventCount {
        failures: row.try_get("failures").map_err(backend_error)?,
        window_start: row.try_get("window_start").map_err(backend_error)?,
        last_failure: row.try_get("last_failure").map_err(backend_error)?,
    })
}

/// One more attempt under a key, starting a new window where the old one is over. `$3` is
/// the oldest window start still inside the key's window. A macro for `concat!`.
macro_rules! count_one {
    () => {
        "INSERT INTO rate_counters (key, failures, window_start, last_failure) VALUES ($1, 1, $2, $2) \
         ON CONFLICT (key) DO UPDATE SET \
           failures = CASE WHEN rate_counters.window_start <= $3 THEN 1 ELSE rate_counters.failures + 1 END, \
           window_start = CASE WHEN rate_counters.window_start <= $3 THEN $2 ELSE rate_counters.window_start END, \
           last_failure = $2"
    };
}

/// Count, then compare, inside the caller's transaction (S3.7, S3.8): refuses when one of
/// `keys` is over its limit (counting nothing), else counts one attempt under every key. The
/// keys' rows stay locked until the transaction ends, so guesses on any number of replicas are
/// admitted one after another. Keys are locked in one order (no deadlocks).
pub(super) async fn claim_in(conn: &mut AnyConnection, keys: &[ThrottleKey], now: i64) -> Result<Option<Refusal>, StoreError> {
    let mut sorted: Vec<&ThrottleKey> = keys.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    sorted.dedup_by(|a, b| a.key == b.key);
    // One statement per key creates the row when missing, or else locks it (the no-op update
    // takes the row lock on PostgreSQL; the first write takes SQLite's write lock), and
    // returns its counts. Two statements (insert if missing, then select) failed when a
    // success cleared the row in between: found under a burst of logins (issue 12).
    let mut refusal: Option<Refusal> = None;
    for key in &sorted {
        let row = sqlx::query(
            "INSERT INTO rate_counters (key, failures, window_start, last_failure) VALUES ($1, 0, $2, 0) \
             ON CONFLICT (key) DO UPDATE SET key = excluded.key RETURNING failures, window_start, last_failure",
        )
        .bind(&key.key)
        .bind(now)
        .fetch_one(&mut *conn)
        .await
        .map_err(backend_error)?;
        if let Some(until) = key.rule.blocked_until(&count_from_row(&row)?, now) {
            let refusal = refusal.get_or_insert(Refusal { keys: Vec::new(), until });
            refusal.keys.push(key.key.clone());
            refusal.until = refusal.until.max(until);
        }
    }
    if refusal.is_some() {
        return Ok(refusal);
    }
    for key in &sorted {
        sqlx::query(count_one!()).bind(&key.key).bind(now).bind(now - key.window()).execute(&mut *conn).await.map_err(backend_error)?;
    }
    Ok(None)
}

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
                counts.push((key.clone(), count_from_row(&row)?));
            }
        }
        Ok(counts)
    }

    async fn claim_attempt(&self, keys: &[ThrottleKey], now: i64) -> Result<Option<Refusal>, StoreError> {
        let mut tx = self.begin_write().await?;
        let refusal = claim_in(&mut tx, keys, now).await?;
        if refusal.is_some() {
            tx.rollback().await.map_err(backend_error)?;
        } else {
            tx.commit().await.map_err(backend_error)?;
        }
        Ok(refusal)
    }

    async fn count_attempt(&self, key: &ThrottleKey, now: i64) -> Result<i64, StoreError> {
        let row = sqlx::query(concat!(count_one!(), " RETURNING failures"))
            .bind(&key.key)
            .bind(now)
            .bind(now - key.window())
            .fetch_one(&self.pool)
            .await
            .map_err(backend_error)?;
        row.try_get("failures").map_err(backend_error)
    }

    async fn release_attempt(&self, keys: &[String]) -> Result<(), StoreError> {
        for key in keys {
            sqlx::query("UPDATE rate_counters SET failures = failures - 1 WHERE key = $1 AND failures > 0")
                .bind(key)
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
