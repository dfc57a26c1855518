use super::batch::{Statement, value_rows};
use super::{SqlStore, backend_error};
use async_trait::async_trait;
use doorman_core::account::AccountId;
use doorman_core::audit::{AuditEvent, AuditRecord};
use doorman_core::audit_chain::{AuditCheckpoint, ChainedEvent};
use doorman_core::store::{AuditStore, StoreError};
use sqlx::Row;
use sqlx::any::AnyRow;

/// The columns [`chained_from_row`] reads, each event with its seal if it has one, for
/// `concat!` (queries stay `&'static str`). The seal is a subquery, one probe of its key per
/// event, rather than a join: PostgreSQL may plan a join as a merge from the seals' first row,
/// and does not carry `e.id > $1` over to the seals' side.
macro_rules! chained_events {
    () => {
        "SELECT e.id, e.at, e.event, e.account_id, e.ip, e.user_agent, e.request_id, e.detail, \
         (SELECT s.chain_hash FROM audit_seals s WHERE s.event_id = e.id) AS chain_hash FROM audit_events e"
    };
}

/// Audit events, unsealed (the sealer chains them later), in one statement: `None` for none.
/// Their ids follow the order of `records`.
pub(super) fn audit_insert(records: &[AuditRecord]) -> Option<Statement> {
    if records.is_empty() {
        return None;
    }
    let sql = format!(
        "INSERT INTO audit_events (at, event, account_id, ip, user_agent, request_id, detail) VALUES {}",
        value_rows(records.len(), 7)
    );
    let mut statement = Statement::new(sql);
    for r in records {
        statement = statement
            .int(r.at)
            .text(r.event.as_str())
            .maybe_text(r.account_id.as_ref().map(|a| a.as_str()))
            .text(&r.ip)
            .text(&r.user_agent)
            .text(&r.request_id)
            .text(&r.detail);
    }
    Some(statement)
}

#[async_trait]
impl AuditStore for SqlStore {
    async fn append_audit(&self, r: &AuditRecord) -> Result<(), StoreError> {
        self.run_together(audit_insert(std::slice::from_ref(r)).into_iter().collect()).await
    }

    async fn audit_of(&self, account: &AccountId, limit: i64) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query("SELECT at, event, account_id, ip, user_agent, request_id, detail FROM audit_events WHERE account_id = $1 ORDER BY id DESC LIMIT $2")
            .bind(account.as_str())
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(backend_error)?;
        rows.iter().map(record_from_row).collect()
    }

    async fn last_sealed_audit(&self) -> Result<Option<(i64, String)>, StoreError> {
        // One probe at the end of the seals' key: seals are written in event order.
        let row = sqlx::query("SELECT event_id AS id, chain_hash FROM audit_seals ORDER BY event_id DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_error)?;
        row.map(|r| Ok((r.try_get("id").map_err(backend_error)?, r.try_get("chain_hash").map_err(backend_error)?))).transpose()
    }

    async fn unsealed_audit(&self, after_id: i64, before: i64, limit: i64) -> Result<Vec<ChainedEvent>, StoreError> {
        // The events after the newest seal are the unsealed ones: the sealer seals in id order.
        let sql = concat!(chained_events!(), " WHERE e.id > $1 AND e.at < $2 ORDER BY e.id LIMIT $3");
        let rows = sqlx::query(sql).bind(after_id).bind(before).bind(limit).fetch_all(&self.pool).await.map_err(backend_error)?;
        rows.iter().map(chained_from_row).collect()
    }

    async fn seal_audit(&self, seals: &[(i64, String)]) -> Result<(), StoreError> {
        // A batch in one statement: one call to SQLite's thread (or one round trip) and one
        // commit, instead of one per event (issue 12: each call wakes a thread that takes a
        // core from the hashing). Rows of their own, not an update of the events' rows (issue
        // 12, twelfth pass: see the migration `audit_seals`). A seal already there is kept: a
        // second replica sealing at once writes the same values.
        if seals.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "INSERT INTO audit_seals (event_id, chain_hash) VALUES {} ON CONFLICT (event_id) DO NOTHING",
            value_rows(seals.len(), 2)
        );
        let statement = seals.iter().fold(Statement::new(sql), |s, (id, hash)| s.int(*id).text(hash.as_str()));
        self.run_together(vec![statement]).await
    }

    async fn audit_events_after(&self, after_id: i64, limit: i64) -> Result<Vec<ChainedEvent>, StoreError> {
        let sql = concat!(chained_events!(), " WHERE e.id > $1 ORDER BY e.id LIMIT $2");
        let rows = sqlx::query(sql).bind(after_id).bind(limit).fetch_all(&self.pool).await.map_err(backend_error)?;
        rows.iter().map(chained_from_row).collect()
    }

    async fn first_audit_id(&self) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT id FROM audit_events ORDER BY id LIMIT 1").fetch_optional(&self.pool).await.map_err(backend_error)?;
        row.map(|r| r.try_get("id").map_err(backend_error)).transpose()
    }

    async fn newest_audit_id_before(&self, at: i64) -> Result<Option<i64>, StoreError> {
        // One read of audit_events_at_idx, from its end.
        let row = sqlx::query("SELECT id FROM audit_events WHERE at < $1 ORDER BY at DESC, id DESC LIMIT 1")
            .bind(at)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_error)?;
        row.map(|r| r.try_get("id").map_err(backend_error)).transpose()
    }

    async fn audit_event(&self, id: i64) -> Result<Option<ChainedEvent>, StoreError> {
        let sql = concat!(chained_events!(), " WHERE e.id = $1");
        let row = sqlx::query(sql).bind(id).fetch_optional(&self.pool).await.map_err(backend_error)?;
        row.as_ref().map(chained_from_row).transpose()
    }

    async fn insert_audit_checkpoint(&self, c: &AuditCheckpoint) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_checkpoints (event_id, chain_hash, event_at, created_at, seal) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(c.event_id)
        .bind(&c.chain_hash)
        .bind(c.event_at)
        .bind(c.created_at)
        .bind(&c.seal)
        .execute(&self.pool)
        .await
        .map_err(backend_error)?;
        Ok(())
    }

    async fn audit_checkpoint_before(&self, first_event: Option<i64>) -> Result<Option<AuditCheckpoint>, StoreError> {
        let row = sqlx::query(
            "SELECT event_id, chain_hash, event_at, created_at, seal FROM audit_checkpoints \
             WHERE event_id < $1 ORDER BY event_id DESC LIMIT 1",
        )
        .bind(first_event.unwrap_or(i64::MAX))
        .fetch_optional(&self.pool)
        .await
        .map_err(backend_error)?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(AuditCheckpoint {
            event_id: row.try_get("event_id").map_err(backend_error)?,
            chain_hash: row.try_get("chain_hash").map_err(backend_error)?,
            event_at: row.try_get("event_at").map_err(backend_error)?,
            created_at: row.try_get("created_at").map_err(backend_error)?,
            seal: row.try_get("seal").map_err(backend_error)?,
        }))
    }

    async fn delete_audit_through(&self, through: i64, limit: i64) -> Result<u64, StoreError> {
        // The events and their seals together, the same number of the oldest of each: every
        // event up to `through` is sealed, so each batch takes the same ids from both.
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events WHERE id <= $1 ORDER BY id LIMIT $2)")
            .bind(through)
            .bind(limit)
            .execute(&mut *tx)
            .await
            .map_err(backend_error)?;
        sqlx::query(
            "DELETE FROM audit_seals WHERE event_id IN (SELECT event_id FROM audit_seals WHERE event_id <= $1 ORDER BY event_id LIMIT $2)",
        )
        .bind(through)
        .bind(limit)
        .execute(&mut *tx)
        .await
        .map_err(backend_error)?;
        tx.commit().await.map_err(backend_error)?;
        Ok(done.rows_affected())
    }

    async fn delete_audit_checkpoints_before(&self, event_id: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM audit_checkpoints WHERE event_id < $1")
            .bind(event_id)
            .execute(&self.pool)
            .await
            .map_err(backend_error)?;
        Ok(done.rows_affected())
    }
}

pub(super) fn record_from_row(row: &AnyRow) -> Result<AuditRecord, StoreError> {
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
}

fn chained_from_row(row: &AnyRow) -> Result<ChainedEvent, StoreError> {
    Ok(ChainedEvent {
        id: row.try_get("id").map_err(backend_error)?,
        record: record_from_row(row)?,
        chain_hash: row.try_get("chain_hash").map_err(backend_error)?,
    })
}
