//! 2-step resets after a waiting period (issue 11 §2).

use super::factors::remove_every_method;
use super::outbox::insert_message;
use super::{SqlStore, backend_error};
use async_trait::async_trait;
use doorman_core::account::AccountId;
use doorman_core::factors::history::ChangedBy;
use doorman_core::outbox::NewMessage;
use doorman_core::reset_hold::ResetHoldStore;
use doorman_core::store::StoreError;
use doorman_core::two_step_reset::{NewTwoStepReset, ResetLink, ResetState, StartWait, TwoStepResetRecord, TwoStepResetStore};
use sqlx::Row;
use sqlx::any::AnyRow;

/// Cancels the account's running 2-step reset, if any: its links die and its finish email,
/// if still unsent, never goes (a lock and an applied support change do this); how many.
pub(super) async fn cancel_running_resets(conn: &mut sqlx::AnyConnection, account: &str, now: i64) -> Result<u64, StoreError> {
    sqlx::query(
        "DELETE FROM outbox WHERE status = 'pending' AND id IN \
         (SELECT finish_message_id FROM two_step_resets WHERE account_id = $1 AND status IN ('requested', 'waiting') AND finish_message_id IS NOT NULL)",
    )
    .bind(account)
    .execute(&mut *conn)
    .await
    .map_err(backend_error)?;
    let done = sqlx::query(
        "UPDATE two_step_resets SET status = 'cancelled', confirm_hash = NULL, cancel_hash = NULL, finish_hash = NULL, ended_at = $2 \
         WHERE account_id = $1 AND status IN ('requested', 'waiting')",
    )
    .bind(account)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(backend_error)?;
    Ok(done.rows_affected())
}

macro_rules! reset_columns {
    () => {
        "id, account_id, status, created_at, confirm_expires_at, ready_at, ended_at"
    };
}

fn reset_from_row(row: &AnyRow) -> Result<TwoStepResetRecord, StoreError> {
    let status: String = row.try_get("status").map_err(backend_error)?;
    Ok(TwoStepResetRecord {
        id: row.try_get("id").map_err(backend_error)?,
        account_id: AccountId::from_stored(row.try_get("account_id").map_err(backend_error)?),
        state: ResetState::parse(&status).ok_or_else(|| StoreError::Backend(format!("unknown 2-step reset status {status}").into()))?,
        created_at: row.try_get("created_at").map_err(backend_error)?,
        confirm_expires_at: row.try_get("confirm_expires_at").map_err(backend_error)?,
        ready_at: row.try_get("ready_at").map_err(backend_error)?,
        ended_at: row.try_get("ended_at").map_err(backend_error)?,
    })
}

#[async_trait]
impl TwoStepResetStore for SqlStore {
    async fn latest_two_step_reset(&self, account: &AccountId) -> Result<Option<TwoStepResetRecord>, StoreError> {
        let sql =
            concat!("SELECT ", reset_columns!(), " FROM two_step_resets WHERE account_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1");
        let row = sqlx::query(sql).bind(account.as_str()).fetch_optional(&self.pool).await.map_err(backend_error)?;
        row.as_ref().map(reset_from_row).transpose()
    }

    async fn last_cancelled_wait(&self, account: &AccountId) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT MAX(ended_at) AS at FROM two_step_resets WHERE account_id = $1 AND status = 'cancelled' AND ready_at IS NOT NULL",
        )
        .bind(account.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(backend_error)?;
        row.try_get("at").map_err(backend_error)
    }

    async fn insert_two_step_reset(&self, r: &NewTwoStepReset, message: &NewMessage) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let waiting = sqlx::query("SELECT COUNT(*) AS n FROM two_step_resets WHERE account_id = $1 AND status = 'waiting'")
            .bind(r.account_id.as_str())
            .fetch_one(&mut *tx)
            .await
            .map_err(backend_error)?;
        if waiting.try_get::<i64, _>("n").map_err(backend_error)? > 0 {
            tx.rollback().await.map_err(backend_error)?;
            return Ok(false);
        }
        // A newer request voids the older links (never counted as a cancelled wait).
        sqlx::query(
            "UPDATE two_step_resets SET status = 'cancelled', confirm_hash = NULL, ended_at = $1 WHERE account_id = $2 AND status = 'requested'",
        )
        .bind(r.created_at)
        .bind(r.account_id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(backend_error)?;
        // The unique index of running resets decides between parallel requests: one inserts,
        // the others are answered as one already running.
        let inserted = sqlx::query(
            "INSERT INTO two_step_resets (id, account_id, status, confirm_hash, created_at, confirm_expires_at) VALUES ($1, $2, 'requested', $3, $4, $5)",
        )
        .bind(&r.id)
        .bind(r.account_id.as_str())
        .bind(&r.confirm_hash)
        .bind(r.created_at)
        .bind(r.confirm_expires_at)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                tx.rollback().await.map_err(backend_error)?;
                return Ok(false);
            }
            Err(e) => return Err(backend_error(e)),
        }
        insert_message(&mut tx, self.sealer.as_ref(), message).await?;
        tx.commit().await.map_err(backend_error)?;
        Ok(true)
    }

    async fn find_two_step_reset(&self, link: ResetLink, hash: &str, now: i64) -> Result<Option<TwoStepResetRecord>, StoreError> {
        let sql = match link {
            ResetLink::Confirm => concat!(
                "SELECT ",
                reset_columns!(),
                " FROM two_step_resets WHERE confirm_hash = $1 AND status = 'requested' AND confirm_expires_at > $2"
            ),
            ResetLink::Cancel => {
                concat!("SELECT ", reset_columns!(), " FROM two_step_resets WHERE cancel_hash = $1 AND status = 'waiting'")
            }
            ResetLink::Finish => {
                concat!("SELECT ", reset_columns!(), " FROM two_step_resets WHERE finish_hash = $1 AND status = 'waiting'")
            }
        };
        let query = sqlx::query(sql).bind(hash);
        let query = if link == ResetLink::Confirm { query.bind(now) } else { query };
        let row = query.fetch_optional(&self.pool).await.map_err(backend_error)?;
        row.as_ref().map(reset_from_row).transpose()
    }

    async fn start_two_step_wait(
        &self,
        id: &str,
        confirm_hash: &str,
        now: i64,
        wait: &StartWait,
        messages: &[NewMessage],
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE two_step_resets SET status = 'waiting', confirm_hash = NULL, ready_at = $1, cancel_hash = $2, finish_hash = $3, \
             finish_message_id = $4 WHERE id = $5 AND confirm_hash = $6 AND status = 'requested' AND confirm_expires_at > $7 \
             AND NOT EXISTS (SELECT 1 FROM two_step_resets w WHERE w.account_id = two_step_resets.account_id AND w.status = 'waiting')",
        )
        .bind(wait.ready_at)
        .bind(&wait.cancel_hash)
        .bind(&wait.finish_hash)
        .bind(&wait.finish_message_id)
        .bind(id)
        .bind(confirm_hash)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(backend_error)?;
        if done.rows_affected() != 1 {
            tx.rollback().await.map_err(backend_error)?;
            return Ok(false);
        }
        for message in messages {
            insert_message(&mut tx, self.sealer.as_ref(), message).await?;
        }
        tx.commit().await.map_err(backend_error)?;
        Ok(true)
    }

    async fn complete_two_step_reset(&self, id: &str, finish_hash: &str, now: i64, messages: &[NewMessage]) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "UPDATE two_step_resets SET status = 'completed', cancel_hash = NULL, finish_hash = NULL, ended_at = $1 \
             WHERE id = $2 AND finish_hash = $3 AND status = 'waiting' AND ready_at <= $1 RETURNING account_id",
        )
        .bind(now)
        .bind(id)
        .bind(finish_hash)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend_error)?;
        let Some(row) = row else {
            tx.rollback().await.map_err(backend_error)?;
            return Ok(false);
        };
        let account: String = row.try_get("account_id").map_err(backend_error)?;
        remove_every_method(&mut tx, &account, now, ChangedBy::TwoStepReset).await?;
        for sql in [
            "UPDATE recovery_codes SET used_at = $1 WHERE account_id = $2 AND used_at IS NULL",
            "UPDATE recovery_tokens SET used_at = $1 WHERE account_id = $2 AND purpose = 'password_reset' AND used_at IS NULL",
        ] {
            sqlx::query(sql).bind(now).bind(&account).execute(&mut *tx).await.map_err(backend_error)?;
        }
        for sql in ["DELETE FROM sessions WHERE account_id = $1", "DELETE FROM trusted_devices WHERE account_id = $1"] {
            sqlx::query(sql).bind(&account).execute(&mut *tx).await.map_err(backend_error)?;
        }
        for message in messages {
            insert_message(&mut tx, self.sealer.as_ref(), message).await?;
        }
        tx.commit().await.map_err(backend_error)?;
        Ok(true)
    }
}

/// The hold a waiting 2-step reset puts on its account.
#[async_trait]
impl ResetHoldStore for SqlStore {
    async fn two_step_reset_waiting(&self, account: &AccountId) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM two_step_resets WHERE account_id = $1 AND status = 'waiting'")
            .bind(account.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(backend_error)?;
        Ok(row.try_get::<i64, _>("n").map_err(backend_error)? > 0)
    }

    async fn running_two_step_reset(&self, account: &AccountId) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT id FROM two_step_resets WHERE account_id = $1 AND status IN ('requested', 'waiting') ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(account.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(backend_error)?;
        row.map(|r| r.try_get("id").map_err(backend_error)).transpose()
    }

    async fn cancel_two_step_reset(&self, id: &str, now: i64, messages: &[NewMessage]) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        // The finish email, if it still waits in the outbox, never goes.
        sqlx::query("DELETE FROM outbox WHERE status = 'pending' AND id = (SELECT finish_message_id FROM two_step_resets WHERE id = $1)")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(backend_error)?;
        let done = sqlx::query(
            "UPDATE two_step_resets SET status = 'cancelled', confirm_hash = NULL, cancel_hash = NULL, finish_hash = NULL, ended_at = $1 \
             WHERE id = $2 AND status IN ('requested', 'waiting')",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(backend_error)?;
        if done.rows_affected() != 1 {
            tx.rollback().await.map_err(backend_error)?;
            return Ok(false);
        }
        for message in messages {
            insert_message(&mut tx, self.sealer.as_ref(), message).await?;
        }
        tx.commit().await.map_err(backend_error)?;
        Ok(true)
    }
}
