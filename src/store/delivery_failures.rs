//! Delivery outcomes per channel, country and day: one upsert per attempt, so replicas
//! recording at the same moment add up instead of overwriting each other.

use super::batch::Statement;
use super::{SqlStore, backend_error};
use async_trait::async_trait;
use doorman_core::account::Country;
use doorman_core::delivery_failures::{DeliveryAttempt, DeliveryFailureStore, DeliveryFailures, DeliveryRecord, day_of};
use doorman_core::outbox::Channel;
use doorman_core::store::StoreError;
use sqlx::Row;
use sqlx::any::AnyRow;

fn failures_from_row(row: &AnyRow) -> Result<DeliveryFailures, StoreError> {
    let channel: String = row.try_get("channel").map_err(backend_error)?;
    let country: String = row.try_get("country").map_err(backend_error)?;
    Ok(DeliveryFailures {
        channel: Channel::parse(&channel).ok_or_else(|| StoreError::Backend(format!("unknown channel {channel}").into()))?,
        country: Country::parse(&country).ok(),
        day: row.try_get("day").map_err(backend_error)?,
        sent: row.try_get("sent").map_err(backend_error)?,
        failures: row.try_get("failures").map_err(backend_error)?,
        dead: row.try_get("dead").map_err(backend_error)?,
        last_error: row.try_get("last_error").map_err(backend_error)?,
        updated_at: row.try_get("updated_at").map_err(backend_error)?,
    })
}

/// One attempt counted under its channel, country and day.
fn attempt_count(attempt: &DeliveryAttempt) -> Statement {
    let (sent, failures, dead, error) = match &attempt.failure {
        None => (1i64, 0i64, 0i64, None),
        Some(f) => (0, 1, i64::from(f.dead), Some(f.error.chars().take(500).collect::<String>())),
    };
    Statement::new(
        "INSERT INTO delivery_failures (channel, country, day, sent, failures, dead, last_error, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (channel, country, day) DO UPDATE SET \
           sent = delivery_failures.sent + excluded.sent, \
           failures = delivery_failures.failures + excluded.failures, \
           dead = delivery_failures.dead + excluded.dead, \
           last_error = COALESCE(excluded.last_error, delivery_failures.last_error), \
           updated_at = excluded.updated_at",
    )
    .text(attempt.channel.as_str())
    .text(attempt.country.map(|c| c.as_str().to_owned()).unwrap_or_default())
    .int(day_of(attempt.at))
    .int(sent)
    .int(failures)
    .int(dead)
    .maybe_text(error)
    .int(attempt.at)
}

#[async_trait]
impl DeliveryFailureStore for SqlStore {
    async fn record_delivery(&self, r: &DeliveryRecord) -> Result<(), StoreError> {
        let failure = r.attempt.failure.as_ref().map(|f| (f.error.as_str(), r.retry_at));
        let mut writes = vec![super::outbox::delivery_outcome(&r.message_id, failure, r.attempt.at), attempt_count(&r.attempt)];
        writes.extend(super::audit::audit_insert(std::slice::from_ref(&r.audit)));
        self.run_together(writes).await
    }

    async fn delivery_failures_since(&self, since_day: i64) -> Result<Vec<DeliveryFailures>, StoreError> {
        let rows = sqlx::query(
            "SELECT channel, country, day, sent, failures, dead, last_error, updated_at FROM delivery_failures \
             WHERE day >= $1 AND failures > 0 ORDER BY day DESC, channel, country",
        )
        .bind(day_of(since_day))
        .fetch_all(&self.pool)
        .await
        .map_err(backend_error)?;
        rows.iter().map(failures_from_row).collect()
    }
}
