//! The outbox and the job queue: rows claimed with a lease, so that several replicas never
//! take the same row while its lease runs (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite
//! has one writer at a time, which gives the same guarantee).
//!
//! Messages to one recipient go out in the order they were written (issue 13): a message is
//! not claimed while an earlier one (by `seq`, the insertion order) to the same recipient on
//! the same channel is still pending, whether it is being sent or waits for its next try.
//! One that waits for a later time (`send_at`) and has not been tried holds nothing up.

use super::batch::Statement;
use super::{Backend, SqlStore, backend_error};
use async_trait::async_trait;
use doorman_core::account::AccountId;
use doorman_core::keyring::Keyring;
use doorman_core::outbox::{Channel, ClaimedMessage, DeadLetter, Job, MessageContent, NewMessage, OutboxSummary};
use doorman_core::store::{JobStore, OutboxStore, StoreError};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

/// The statement that leases up to `$4` due rows of `$table` (the outbox or the jobs) to the
/// worker `$1` until `$2`, taking over leases expired at `$3`, and returns their `$columns`:
/// one for SQLite and one for PostgreSQL, which locks the rows it takes. `$also` is a further
/// condition on the candidate row, named `due`.
macro_rules! claim_sql {
    ($table:literal, $columns:literal, $also:literal) => {
        ClaimSql {
            sqlite: claim_sql!($table, $columns, $also, ""),
            postgres: claim_sql!($table, $columns, $also, " FOR UPDATE SKIP LOCKED"),
        }
    };
    ($table:literal, $columns:literal, $also:literal, $lock:literal) => {
        concat!(
            "UPDATE ",
            $table,
            " SET lease_owner = $1, lease_until = $2, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM ",
            $table,
            " AS due WHERE status = 'pending' AND next_attempt_at <= $3 \
              AND (lease_until IS NULL OR lease_until < $3)",
            $also,
            " ORDER BY next_attempt_at LIMIT $4",
            $lock,
            ") RETURNING ",
            $columns
        )
    };
}

/// A claim statement per backend.
struct ClaimSql {
    sqlite: &'static str,
    postgres: &'static str,
}

/// A message waits while an earlier one to its recipient is pending and has been tried (it is
/// being sent, or waits for its retry) or is due.
const CLAIM_MESSAGES: ClaimSql = claim_sql!(
    "outbox",
    "id, channel, recipient, kind, account_id, subject, body_text, body_html, attempts, created_at",
    " AND NOT EXISTS (SELECT 1 FROM outbox AS earlier WHERE earlier.status = 'pending' \
       AND earlier.channel = due.channel AND earlier.recipient = due.recipient AND earlier.seq < due.seq \
       AND (earlier.attempts > 0 OR earlier.next_attempt_at <= $3))"
);
const CLAIM_JOBS: ClaimSql = claim_sql!("jobs", "id, kind, payload, attempts", "");

impl SqlStore {
    /// Leases due rows with a statement of `claim_sql!`, in the backend's dialect.
    async fn claim_rows(&self, sql: &ClaimSql, worker: &str, now: i64, lease_seconds: i64, limit: i64) -> Result<Vec<AnyRow>, StoreError> {
        sqlx::query(self.backend.pick(sql.sqlite, sql.postgres))
            .bind(worker)
            .bind(now + lease_seconds)
            .bind(now)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(backend_error)
    }
}

/// Writes a message; used on its own and inside the transactions of other store methods.
const SEALED: &str = "sealed:v1:";

/// A body as stored: sealed when a key is set. Bodies written without one (by tools or
/// older versions) are read as they are.
fn seal_body(sealer: Option<&Keyring>, body: &str) -> Result<String, StoreError> {
    match sealer {
        Some(key) if !body.is_empty() => {
            let sealed =
                key.seal(doorman_core::outbox::BODY_SEAL_PURPOSE, body.as_bytes()).map_err(|e| StoreError::Backend(Box::new(e)))?;
            Ok(format!("{SEALED}{sealed}"))
        }
        _ => Ok(body.to_owned()),
    }
}

fn open_body(sealer: Option<&Keyring>, stored: String) -> Result<String, StoreError> {
    let Some(sealed) = stored.strip_prefix(SEALED) else { return Ok(stored) };
    let key = sealer.ok_or_else(|| StoreError::Backend("a sealed message body needs the server key".into()))?;
    let bytes = key.open(doorman_core::outbox::BODY_SEAL_PURPOSE, sealed).map_err(|e| StoreError::Backend(Box::new(e)))?;
    String::from_utf8(bytes).map_err(|e| StoreError::Backend(Box::new(e)))
}

pub(crate) async fn insert_message(conn: &mut AnyConnection, sealer: Option<&Keyring>, m: &NewMessage) -> Result<(), StoreError> {
    let backend = if conn.backend_name().eq_ignore_ascii_case("sqlite") { Backend::Sqlite } else { Backend::Postgres };
    message_insert(backend, sealer, m)?.execute(conn).await.map(drop)
}

pub(crate) fn message_insert(backend: Backend, sealer: Option<&Keyring>, m: &NewMessage) -> Result<Statement, StoreError> {
    // `seq`, the insertion order: a sequence on PostgreSQL (the column's default), the next
    // number on SQLite, whose writers take turns.
    let sql = backend.pick(
        "INSERT INTO outbox (id, channel, recipient, kind, account_id, subject, body_text, body_html, next_attempt_at, created_at, seq) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, (SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox))",
        "INSERT INTO outbox (id, channel, recipient, kind, account_id, subject, body_text, body_html, next_attempt_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    );
    Ok(Statement::new(sql)
        .text(&m.id)
        .text(m.channel.as_str())
        .text(&m.recipient)
        .text(m.kind)
        .maybe_text(m.account_id.as_ref().map(|a| a.as_str()))
        .text(&m.content.subject)
        .text(seal_body(sealer, &m.content.text)?)
        .text(seal_body(sealer, &m.content.html)?)
        .int(m.send_at)
        .int(m.created_at))
}

/// The message's state after an attempt: sent, or failed and retried at `retry_at`, or given
/// up (`None`). A sent or dead message keeps no body: a link in it must not outlive it.
pub(super) fn delivery_outcome(id: &str, failure: Option<(&str, Option<i64>)>, now: i64) -> Statement {
    match failure {
        None => Statement::new(
            "UPDATE outbox SET status = 'sent', sent_at = $1, body_text = '', body_html = '', lease_owner = NULL, lease_until = NULL, last_error = NULL WHERE id = $2",
        )
        .int(now),
        Some((error, Some(at))) => {
            Statement::new("UPDATE outbox SET next_attempt_at = $1, last_error = $2, lease_owner = NULL, lease_until = NULL WHERE id = $3")
                .int(at)
                .text(error.chars().take(1000).collect::<String>())
        }
        Some((error, None)) => Statement::new(
            "UPDATE outbox SET status = 'dead', body_text = '', body_html = '', last_error = $1, lease_owner = NULL, lease_until = NULL WHERE id = $2",
        )
        .text(error.chars().take(1000).collect::<String>()),
    }
    .text(id)
}

fn channel(row: &AnyRow) -> Result<Channel, StoreError> {
    let raw: String = row.try_get("channel").map_err(backend_error)?;
    Channel::parse(&raw).ok_or_else(|| StoreError::Backend(format!("unknown channel {raw}").into()))
}

fn claimed_from_row(row: &AnyRow) -> Result<ClaimedMessage, StoreError> {
    let get = |name: &str| row.try_get::<String, _>(name).map_err(backend_error);
    Ok(ClaimedMessage {
        id: get("id")?,
        channel: channel(row)?,
        recipient: get("recipient")?,
        kind: get("kind")?,
        account_id: row.try_get::<Option<String>, _>("account_id").map_err(backend_error)?.map(AccountId::from_stored),
        content: MessageContent { subject: get("subject")?, text: get("body_text")?, html: get("body_html")? },
        attempts: row.try_get("attempts").map_err(backend_error)?,
        created_at: row.try_get("created_at").map_err(backend_error)?,
    })
}

#[async_trait]
impl OutboxStore for SqlStore {
    async fn enqueue_message(&self, message: &NewMessage) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(backend_error)?;
        insert_message(&mut conn, self.sealer.as_ref(), message).await
    }

    async fn claim_messages(&self, worker: &str, now: i64, lease_seconds: i64, limit: i64) -> Result<Vec<ClaimedMessage>, StoreError> {
        let rows = self.claim_rows(&CLAIM_MESSAGES, worker, now, lease_seconds, limit).await?;
        let mut messages = rows.iter().map(claimed_from_row).collect::<Result<Vec<_>, _>>()?;
        for m in &mut messages {
            m.content.text = open_body(self.sealer.as_ref(), std::mem::take(&mut m.content.text))?;
            m.content.html = open_body(self.sealer.as_ref(), std::mem::take(&mut m.content.html))?;
        }
        messages.sort_by_key(|m| m.created_at);
        Ok(messages)
    }

    async fn outbox_summary(&self, dead_letter_limit: i64) -> Result<OutboxSummary, StoreError> {
        let rows =
            sqlx::query("SELECT status, COUNT(*) AS n FROM outbox GROUP BY status").fetch_all(&self.pool).await.map_err(backend_error)?;
        let mut summary = OutboxSummary::default();
        for row in rows {
            let status: String = row.try_get("status").map_err(backend_error)?;
            let n: i64 = row.try_get("n").map_err(backend_error)?;
            match status.as_str() {
                "pending" => summary.pending = n,
                "sent" => summary.sent = n,
                _ => summary.dead = n,
            }
        }
        let backlog = sqlx::query(
            "SELECT MIN(created_at) AS oldest, COUNT(CASE WHEN attempts > 0 THEN 1 END) AS retrying FROM outbox WHERE status = 'pending'",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(backend_error)?;
        summary.oldest_pending_at = backlog.try_get("oldest").map_err(backend_error)?;
        summary.retrying = backlog.try_get("retrying").map_err(backend_error)?;
        let dead = sqlx::query(
            "SELECT id, channel, recipient, kind, attempts, last_error, created_at FROM outbox WHERE status = 'dead' ORDER BY created_at DESC LIMIT $1",
        )
        .bind(dead_letter_limit)
        .fetch_all(&self.pool)
        .await
        .map_err(backend_error)?;
        for row in dead {
            summary.dead_letters.push(DeadLetter {
                id: row.try_get("id").map_err(backend_error)?,
                channel: channel(&row)?,
                recipient: row.try_get("recipient").map_err(backend_error)?,
                kind: row.try_get("kind").map_err(backend_error)?,
                attempts: row.try_get("attempts").map_err(backend_error)?,
                last_error: row.try_get::<Option<String>, _>("last_error").map_err(backend_error)?.unwrap_or_default(),
                created_at: row.try_get("created_at").map_err(backend_error)?,
            });
        }
        Ok(summary)
    }
}

#[async_trait]
impl JobStore for SqlStore {
    async fn enqueue_job(&self, kind: &str, payload: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO jobs (id, kind, payload, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $4)")
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(kind)
            .bind(payload)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(backend_error)?;
        Ok(())
    }

    async fn enqueue_job_once(&self, kind: &str, payload: &str, coalesce_key: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO jobs (id, kind, payload, next_attempt_at, created_at, coalesce_key) VALUES ($1, $2, $3, $4, $4, $5) \
             ON CONFLICT (coalesce_key) DO NOTHING",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(kind)
        .bind(payload)
        .bind(now)
        .bind(coalesce_key)
        .execute(&self.pool)
        .await
        .map_err(backend_error)?;
        Ok(())
    }

    async fn claim_jobs(&self, worker: &str, now: i64, lease_seconds: i64, limit: i64) -> Result<Vec<Job>, StoreError> {
        let rows = self.claim_rows(&CLAIM_JOBS, worker, now, lease_seconds, limit).await?;
        rows.iter()
            .map(|row| {
                Ok(Job {
                    id: row.try_get("id").map_err(backend_error)?,
                    kind: row.try_get("kind").map_err(backend_error)?,
                    payload: row.try_get("payload").map_err(backend_error)?,
                    attempts: row.try_get("attempts").map_err(backend_error)?,
                })
            })
            .collect()
    }

    async fn complete_job(&self, id: &str) -> Result<(), StoreError> {
        // The payload names a login and an address: it is not kept once the job is done.
        sqlx::query("UPDATE jobs SET status = 'done', payload = '', lease_owner = NULL, lease_until = NULL WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend_error)?;
        Ok(())
    }

    async fn fail_job(&self, id: &str, error: &str, retry_at: Option<i64>) -> Result<(), StoreError> {
        let error: String = error.chars().take(1000).collect();
        let query = match retry_at {
            Some(at) => {
                sqlx::query("UPDATE jobs SET next_attempt_at = $1, last_error = $2, lease_owner = NULL, lease_until = NULL WHERE id = $3")
                    .bind(at)
            }
            None => sqlx::query("UPDATE jobs SET status = 'failed', last_error = $1, lease_owner = NULL, lease_until = NULL WHERE id = $2"),
        };
        query.bind(error).bind(id).execute(&self.pool).await.map_err(backend_error)?;
        Ok(())
    }
}
