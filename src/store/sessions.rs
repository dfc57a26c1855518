use super::batch::Statement;
use super::{SqlStore, backend_error};
use async_trait::async_trait;
use doorman_core::account::AccountId;
use doorman_core::factors::FactorKind;
use doorman_core::session::{SessionRecord, SessionStage};
use doorman_core::sign_in::{SignInFacts, SignInWrites};
use doorman_core::store::{SessionStore, StoreError};
use sqlx::Row;
use sqlx::any::AnyRow;

/// The columns [`session_from_row`] reads, for `concat!` (queries stay `&'static str`).
macro_rules! session_columns {
    () => {
        "id_hash, account_id, created_at, last_seen_at, ip, user_agent, stage, verified_at"
    };
}

fn session_from_row(row: &AnyRow) -> Result<SessionRecord, sqlx::Error> {
    Ok(SessionRecord {
        id_hash: row.try_get("id_hash")?,
        account_id: AccountId::from_stored(row.try_get("account_id")?),
        created_at: row.try_get("created_at")?,
        last_seen_at: row.try_get("last_seen_at")?,
        ip: row.try_get("ip")?,
        user_agent: row.try_get("user_agent")?,
        stage: SessionStage::parse(&row.try_get::<String, _>("stage")?),
        verified_at: row.try_get("verified_at")?,
    })
}

fn session_delete(id_hash: &str) -> Statement {
    Statement::new("DELETE FROM sessions WHERE id_hash = $1").text(id_hash)
}

pub(crate) fn session_insert(s: &SessionRecord) -> Statement {
    Statement::new(
        "INSERT INTO sessions (id_hash, account_id, created_at, last_seen_at, ip, user_agent, stage, verified_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .text(&s.id_hash)
    .text(s.account_id.as_str())
    .int(s.created_at)
    .int(s.last_seen_at)
    .text(&s.ip)
    .text(&s.user_agent)
    .text(s.stage.as_str())
    .int(s.verified_at)
}

#[async_trait]
impl SessionStore for SqlStore {
    async fn insert_session(&self, s: &SessionRecord) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(backend_error)?;
        session_insert(s).execute(&mut conn).await.map(drop)
    }

    async fn find_session(&self, id_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        let sql = concat!("SELECT ", session_columns!(), " FROM sessions WHERE id_hash = $1");
        let row = sqlx::query(sql).bind(id_hash).fetch_optional(&self.pool).await.map_err(backend_error)?;
        row.as_ref().map(session_from_row).transpose().map_err(backend_error)
    }

    async fn touch_session(&self, id_hash: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2")
            .bind(now)
            .bind(id_hash)
            .execute(&self.pool)
            .await
            .map_err(backend_error)?;
        Ok(())
    }

    async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(backend_error)?;
        session_delete(id_hash).execute(&mut conn).await.map(drop)
    }

    async fn sign_in_facts(&self, account: &AccountId) -> Result<SignInFacts, StoreError> {
        // One row per confirmed method (one with a NULL kind when there is none), each with
        // the two counts: three reads' worth in one round trip. The event is written as a
        // literal, so that both databases use the partial index `audit_events_sign_in_idx`
        // (one probe, however many events the account has).
        let rows = sqlx::query(
            "SELECT (SELECT CAST(COALESCE(MAX(1 + support_only), 0) AS BIGINT) FROM account_locks WHERE account_id = $1) AS locks, \
             (SELECT COUNT(*) FROM (SELECT 1 FROM audit_events WHERE account_id = $1 AND event = 'login_succeeded' LIMIT 1) AS earlier) AS sign_ins, \
             f.kind AS kind \
             FROM (SELECT 1 AS one) AS base \
             LEFT JOIN second_factors f ON f.account_id = $1 AND f.confirmed_at IS NOT NULL AND f.removed_at IS NULL",
        )
        .bind(account.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(backend_error)?;
        let mut facts = SignInFacts::default();
        for row in &rows {
            // 0: not locked; 1: a reset unlocks; 2: support does.
            let locks = row.try_get::<i64, _>("locks").map_err(backend_error)?;
            (facts.locked, facts.locked_for_support) = (locks > 0, locks > 1);
            facts.signed_in_before = row.try_get::<i64, _>("sign_ins").map_err(backend_error)? > 0;
            if let Some(kind) = row.try_get::<Option<String>, _>("kind").map_err(backend_error)? {
                facts.confirmed_methods.extend(FactorKind::parse(&kind));
            }
        }
        Ok(facts)
    }

    async fn commit_sign_in(&self, w: &SignInWrites) -> Result<(), StoreError> {
        // One round trip on PostgreSQL (issue 12): every part writes rows of its own.
        let mut writes: Vec<Statement> = Vec::with_capacity(8);
        writes.extend(super::throttle::settle_statement(&w.cleared, &w.released));
        writes.extend(w.session.as_ref().map(session_insert));
        writes.extend(w.end_session.as_deref().map(session_delete));
        writes.extend(w.retire_device.as_deref().map(super::devices::device_delete));
        writes.extend(w.new_device.as_ref().map(super::devices::device_insert));
        if let Some((token, message)) = &w.alert {
            writes.push(super::recovery::token_insert(token));
            writes.push(super::outbox::message_insert(self.backend, self.sealer.as_ref(), message)?);
        }
        writes.extend(super::audit::audit_insert(&w.audits));
        self.run_together(writes).await
    }

    async fn delete_sessions_of(&self, account: &AccountId) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE account_id = $1")
            .bind(account.as_str())
            .execute(&self.pool)
            .await
            .map_err(backend_error)?;
        Ok(done.rows_affected())
    }

    async fn sessions_of(&self, account: &AccountId) -> Result<Vec<SessionRecord>, StoreError> {
        let sql = concat!("SELECT ", session_columns!(), " FROM sessions WHERE account_id = $1 ORDER BY created_at DESC");
        let rows = sqlx::query(sql).bind(account.as_str()).fetch_all(&self.pool).await.map_err(backend_error)?;
        rows.iter().map(session_from_row).collect::<Result<_, _>>().map_err(backend_error)
    }

    async fn end_sessions_of(&self, account: &AccountId, only: Option<&str>, keep: Option<&str>) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM sessions WHERE account_id = $1 AND ($2 IS NULL OR id_hash = $2) AND ($3 IS NULL OR id_hash <> $3)")
                .bind(account.as_str())
                .bind(only.map(str::to_owned))
                .bind(keep.map(str::to_owned))
                .execute(&self.pool)
                .await
                .map_err(backend_error)?;
        Ok(done.rows_affected())
    }

    async fn purge_sessions(&self, idle_before: i64, created_before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE last_seen_at < $1 OR created_at < $2")
            .bind(idle_before)
            .bind(created_before)
            .execute(&self.pool)
            .await
            .map_err(backend_error)?;
        Ok(done.rows_affected())
    }

    async fn replace_session(&self, old_id_hash: &str, new: &SessionRecord) -> Result<(), StoreError> {
        self.run_together(vec![session_delete(old_id_hash), session_insert(new)]).await
    }
}

#[cfg(test)]
mod tests {
    use doorman_core::audit::AuditEvent;

    /// `sign_in_facts` and the partial index `audit_events_sign_in_idx` name the event as a
    /// literal: it must stay the name the audit log writes.
    #[test]
    fn the_sign_in_probe_names_the_event_the_audit_log_writes() {
        assert_eq!(AuditEvent::LoginSucceeded.as_str(), "login_succeeded");
        let migration = include_str!("../../migrations/common/20261130000070_first_sign_in_index.sql");
        assert!(migration.contains("WHERE event = 'login_succeeded'"));
    }
}
