//! Delivery outcomes per channel, country and day: upserts of sums, so replicas recording at
//! the same moment add up instead of overwriting each other.

use super::batch::{Statement, value_rows};
use super::{SqlStore, backend_error};
use async_trait::async_trait;
use doorman_core::account::Country;
use doorman_core::delivery_failures::{DeliveryAttempt, DeliveryFailureStore, DeliveryFailures, DeliveryRecord, day_of};
use doorman_core::outbox::Channel;
use doorman_core::store::StoreError;
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::BTreeMap;

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

/// The sums of a group's attempts under one channel, country and day.
#[derive(Default)]
struct DayCount {
    sent: i64,
    failures: i64,
    dead: i64,
    last_error: Option<String>,
    updated_at: i64,
}

/// The attempts of a group counted under their channels, countries and days: one row of
/// sums per day's counter, in one upsert, the rows in key order so that two workers recording
/// at once lock the counters they share in the same order.
fn attempt_counts(attempts: &[&DeliveryAttempt]) -> Option<Statement> {
    let mut counts: BTreeMap<(&str, String, i64), DayCount> = BTreeMap::new();
    for attempt in attempts {
        let country = attempt.country.map(|c| c.as_str().to_owned()).unwrap_or_default();
        let count = counts.entry((attempt.channel.as_str(), country, day_of(attempt.at))).or_default();
        match &attempt.failure {
            None => count.sent += 1,
            Some(f) => {
                count.failures += 1;
                count.dead += i64::from(f.dead);
                count.last_error = Some(f.error.chars().take(500).collect());
            }
        }
        count.updated_at = count.updated_at.max(attempt.at);
    }
    if counts.is_empty() {
        return None;
    }
    let sql = format!(
        "INSERT INTO delivery_failures (channel, country, day, sent, failures, dead, last_error, updated_at) \
         VALUES {} \
         ON CONFLICT (channel, country, day) DO UPDATE SET \
           sent = delivery_failures.sent + excluded.sent, \
           failures = delivery_failures.failures + excluded.failures, \
           dead = delivery_failures.dead + excluded.dead, \
           last_error = COALESCE(excluded.last_error, delivery_failures.last_error), \
           updated_at = excluded.updated_at",
        value_rows(counts.len(), 8)
    );
    Some(counts.into_iter().fold(Statement::new(sql), |s, ((channel, country, day), count)| {
        s.text(channel)
            .text(country)
            .int(day)
            .int(count.sent)
            .int(count.failures)
            .int(count.dead)
            .maybe_text(count.last_error)
            .int(count.updated_at)
    }))
}

#[async_trait]
impl DeliveryFailureStore for SqlStore {
    async fn record_deliveries(&self, records: &[DeliveryRecord]) -> Result<(), StoreError> {
        let mut writes: Vec<Statement> = records
            .iter()
            .map(|r| {
                super::outbox::delivery_outcome(
                    &r.message_id,
                    r.attempt.failure.as_ref().map(|f| (f.error.as_str(), r.retry_at)),
                    r.attempt.at,
                )
            })
            .collect();
        writes.extend(attempt_counts(&records.iter().map(|r| &r.attempt).collect::<Vec<_>>()));
        writes.extend(super::audit::audit_insert(&records.iter().map(|r| r.audit.clone()).collect::<Vec<_>>()));
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
