//! Retention (issue 13): each kind of row is pruned by one statement that deletes at most
//! `limit` rows, the oldest first, found through an index (migration 20261129000040), and
//! fail-open counts. The `ORDER BY` makes PostgreSQL read the index in order: without it, it
//! chose a sequential scan while many rows were old, which reads the whole table once none is.

use super::{SqlStore, backend_error};
use async_trait::async_trait;
use doorman_core::breached::{FailOpenCount, FailOpenStore};
use doorman_core::delivery_failures::day_of;
use doorman_core::retention::{Prunable, RetentionStore};
use doorman_core::store::StoreError;
use sqlx::Row;

impl SqlStore {
    /// The statement that deletes up to `$2` rows of `what` older than `$1`.
    fn prune_statement(&self, what: Prunable) -> &'static str {
        match what {
            Prunable::FinishedJobs => {
                "DELETE FROM jobs WHERE id IN \
                 (SELECT id FROM jobs WHERE status IN ('done', 'failed') AND created_at < $1 ORDER BY created_at LIMIT $2)"
            }
            Prunable::FinishedMessages => {
                "DELETE FROM outbox WHERE id IN \
                 (SELECT id FROM outbox WHERE status IN ('sent', 'dead') AND created_at < $1 ORDER BY created_at LIMIT $2)"
            }
            // Tables keyed by several columns: by SQLite's rowid, or PostgreSQL's ctid.
            Prunable::DeliveryCounts => self.backend.pick(
                "DELETE FROM delivery_failures WHERE rowid IN (SELECT rowid FROM delivery_failures WHERE day < $1 ORDER BY day LIMIT $2)",
                "DELETE FROM delivery_failures WHERE ctid IN (SELECT ctid FROM delivery_failures WHERE day < $1 ORDER BY day LIMIT $2)",
            ),
            Prunable::FailOpenCounts => self.backend.pick(
                "DELETE FROM fail_open_counts WHERE rowid IN (SELECT rowid FROM fail_open_counts WHERE day < $1 ORDER BY day LIMIT $2)",
                "DELETE FROM fail_open_counts WHERE ctid IN (SELECT ctid FROM fail_open_counts WHERE day < $1 ORDER BY day LIMIT $2)",
            ),
            Prunable::IdleSessions => {
                "DELETE FROM sessions WHERE id_hash IN (SELECT id_hash FROM sessions WHERE last_seen_at < $1 ORDER BY last_seen_at LIMIT $2)"
            }
            Prunable::OldSessions => {
                "DELETE FROM sessions WHERE id_hash IN (SELECT id_hash FROM sessions WHERE created_at < $1 ORDER BY created_at LIMIT $2)"
            }
            // Found by the hour of the newest count (an index a count leaves as it is: migration
            // 20261201000100); a row an older replica counted in, without its hour, is kept
            // while its last attempt is recent.
            Prunable::RateCounters => {
                "DELETE FROM rate_counters WHERE key IN (SELECT key FROM rate_counters \
                 WHERE touched_hour < $1 / 3600 AND last_failure < $1 ORDER BY touched_hour LIMIT $2)"
            }
            Prunable::RecoveryTokens => {
                "DELETE FROM recovery_tokens WHERE id IN (SELECT id FROM recovery_tokens WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)"
            }
            Prunable::OtpCodes => {
                "DELETE FROM otp_codes WHERE id IN (SELECT id FROM otp_codes WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)"
            }
            Prunable::Approvals => {
                "DELETE FROM approvals WHERE id IN (SELECT id FROM approvals WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)"
            }
            Prunable::EmailChanges => {
                "DELETE FROM email_changes WHERE id IN (SELECT id FROM email_changes WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)"
            }
            Prunable::TrustedDevices => {
                "DELETE FROM trusted_devices WHERE id_hash IN (SELECT id_hash FROM trusted_devices WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)"
            }
            Prunable::UnconfirmedRecoveryRequests => {
                "DELETE FROM recovery_requests WHERE id IN \
                 (SELECT id FROM recovery_requests WHERE case_id IS NULL AND expires_at < $1 ORDER BY expires_at LIMIT $2)"
            }
            Prunable::CaseStatusLinks => {
                "DELETE FROM case_status_links WHERE hash IN \
                 (SELECT hash FROM case_status_links WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)"
            }
        }
    }
}

#[async_trait]
impl RetentionStore for SqlStore {
    async fn prune_batch(&self, what: Prunable, before: i64, limit: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(self.prune_statement(what)).bind(before).bind(limit).execute(&self.pool).await.map_err(backend_error)?;
        Ok(done.rows_affected())
    }

    async fn erase_resolved_cases(&self, resolved_before: i64, now: i64, limit: i64) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let ids: Vec<String> = sqlx::query(
            "SELECT id FROM support_cases WHERE status = 'resolved' AND erased_at IS NULL AND resolved_at < $1 \
             ORDER BY resolved_at LIMIT $2",
        )
        .bind(resolved_before)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await
        .map_err(backend_error)?
        .iter()
        .map(|row| row.try_get("id"))
        .collect::<Result<_, _>>()
        .map_err(backend_error)?;
        for id in &ids {
            sqlx::query("UPDATE support_case_notes SET body = '' WHERE case_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(backend_error)?;
            // The identity checklist's notes and the support actions' reasons and target
            // addresses (issue 11 §6) are the person's data too.
            for sql in [
                "UPDATE support_case_checks SET note = '' WHERE case_id = $1",
                "UPDATE support_actions SET target = '', reason = '', approval_reason = NULL WHERE case_id = $1",
            ] {
                sqlx::query(sql).bind(id).execute(&mut *tx).await.map_err(backend_error)?;
            }
            // The request behind the case: its contact address and the hints it gave.
            sqlx::query("UPDATE recovery_requests SET contact_email = '', details = '' WHERE case_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(backend_error)?;
            sqlx::query("UPDATE support_cases SET details = '', contact_email = NULL, erased_at = $2 WHERE id = $1")
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(backend_error)?;
        }
        tx.commit().await.map_err(backend_error)?;
        Ok(ids.len() as u64)
    }
}

#[async_trait]
impl FailOpenStore for SqlStore {
    async fn count_fail_open(&self, check: &str, error: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO fail_open_counts (check_name, day, failures, last_error, updated_at) VALUES ($1, $2, 1, $3, $4) \
             ON CONFLICT (check_name, day) DO UPDATE SET failures = fail_open_counts.failures + 1, \
               last_error = excluded.last_error, updated_at = excluded.updated_at",
        )
        .bind(check)
        .bind(day_of(now))
        .bind(error.chars().take(500).collect::<String>())
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(backend_error)?;
        Ok(())
    }

    async fn fail_open_since(&self, since_day: i64) -> Result<Vec<FailOpenCount>, StoreError> {
        let rows =
            sqlx::query("SELECT check_name, day, failures, last_error FROM fail_open_counts WHERE day >= $1 ORDER BY day DESC, check_name")
                .bind(day_of(since_day))
                .fetch_all(&self.pool)
                .await
                .map_err(backend_error)?;
        rows.iter()
            .map(|row| {
                Ok(FailOpenCount {
                    check: row.try_get("check_name")?,
                    day: row.try_get("day")?,
                    failures: row.try_get("failures")?,
                    last_error: row.try_get("last_error")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(backend_error)
    }
}
