use super::batch::Statement;
use super::outbox::insert_message;
use super::{SqlStore, backend_error};
use async_trait::async_trait;
use doorman_core::account::AccountId;
use doorman_core::outbox::NewMessage;
use doorman_core::recovery::{NewRecoveryToken, PasswordResetCompletion, Purpose, ResetIssue, ValidToken};
use doorman_core::store::StoreError;
use doorman_core::throttle::ThrottleKey;
use doorman_core::token::RecoveryStore;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

/// The columns [`valid_from_row`] reads, for `concat!` (queries stay `&'static str`).
macro_rules! valid_columns {
    () => {
        "id, account_id, code_hash"
    };
}

fn valid_from_row(row: &AnyRow) -> Result<ValidToken, StoreError> {
    Ok(ValidToken {
        id: row.try_get("id").map_err(backend_error)?,
        account_id: AccountId::from_stored(row.try_get("account_id").map_err(backend_error)?),
        code_hash: row.try_get("code_hash").map_err(backend_error)?,
    })
}

/// Voids the account's unused tokens of the token's purpose, then stores it. Report links
/// are the exception (issue 11 §4): each is voided only by its own use or expiry, so a newer
/// email never voids the owner's link to an older event (S1.5's cap is for reset links).
async fn replace_tokens(conn: &mut AnyConnection, t: &NewRecoveryToken) -> Result<(), StoreError> {
    if t.purpose != Purpose::ReportNotMe {
        sqlx::query("UPDATE recovery_tokens SET used_at = $1 WHERE account_id = $2 AND purpose = $3 AND used_at IS NULL")
            .bind(t.created_at)
            .bind(t.account_id.as_str())
            .bind(t.purpose.as_str())
            .execute(&mut *conn)
            .await
            .map_err(backend_error)?;
    }
    insert_token(conn, t).await
}

/// Stores a token, voiding nothing.
pub(super) async fn insert_token(conn: &mut AnyConnection, t: &NewRecoveryToken) -> Result<(), StoreError> {
    token_insert(t).execute(conn).await.map(drop)
}

pub(super) fn token_insert(t: &NewRecoveryToken) -> Statement {
    Statement::new(
        "INSERT INTO recovery_tokens (id, account_id, purpose, token_hash, code_hash, created_at, expires_at, event_kind, event_detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .text(&t.id)
    .text(t.account_id.as_str())
    .text(t.purpose.as_str())
    .text(&t.token_hash)
    .maybe_text(t.code_hash.clone())
    .int(t.created_at)
    .int(t.expires_at)
    .maybe_text(t.event.as_ref().map(|e| e.kind()))
    .maybe_text(t.event.as_ref().and_then(|e| e.detail()))
}

#[async_trait]
impl RecoveryStore for SqlStore {
    async fn issue_recovery_token(&self, token: &NewRecoveryToken, message: &NewMessage) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        replace_tokens(&mut tx, token).await?;
        insert_message(&mut tx, self.sealer.as_ref(), message).await?;
        tx.commit().await.map_err(backend_error)
    }

    async fn issue_reset_within_limits(
        &self,
        limits: &[ThrottleKey],
        now: i64,
        not_since: i64,
        token: &NewRecoveryToken,
        message: &NewMessage,
    ) -> Result<ResetIssue, StoreError> {
        let mut tx = self.begin_write().await?;
        // A job run again after a crash finds its own token, and does nothing more.
        let done = sqlx::query("SELECT 1 AS one FROM recovery_tokens WHERE id = $1")
            .bind(&token.id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend_error)?;
        if done.is_some() {
            tx.rollback().await.map_err(backend_error)?;
            return Ok(ResetIssue::AlreadyIssued);
        }
        if super::throttle::claim_in(&mut tx, limits, now).await?.is_some() {
            tx.rollback().await.map_err(backend_error)?;
            return Ok(ResetIssue::Refused);
        }
        // After the claim: the account's limit row is held now (PostgreSQL; SQLite holds its
        // write lock from BEGIN), so a job for the same account running at the same time
        // waits, and then sees this one's token.
        let recent = sqlx::query("SELECT 1 AS one FROM recovery_tokens WHERE account_id = $1 AND purpose = $2 AND created_at > $3 LIMIT 1")
            .bind(token.account_id.as_str())
            .bind(token.purpose.as_str())
            .bind(not_since)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend_error)?;
        if recent.is_some() {
            tx.rollback().await.map_err(backend_error)?;
            return Ok(ResetIssue::TooSoon);
        }
        replace_tokens(&mut tx, token).await?;
        insert_message(&mut tx, self.sealer.as_ref(), message).await?;
        tx.commit().await.map_err(backend_error)?;
        Ok(ResetIssue::Issued)
    }

    async fn issue_tokens(
        &self,
        replacing: Option<&NewRecoveryToken>,
        adding: &[NewRecoveryToken],
        message: &NewMessage,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        if let Some(token) = replacing {
            replace_tokens(&mut tx, token).await?;
        }
        for token in adding {
            insert_token(&mut tx, token).await?;
        }
        insert_message(&mut tx, self.sealer.as_ref(), message).await?;
        tx.commit().await.map_err(backend_error)
    }

    async fn redeem_token(&self, purpose: Purpose, id: &str, now: i64) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE recovery_tokens SET used_at = $1 WHERE id = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $1")
                .bind(now)
                .bind(id)
                .bind(purpose.as_str())
                .execute(&self.pool)
                .await
                .map_err(backend_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn find_valid_token(&self, purpose: Purpose, token_hash: &str, now: i64) -> Result<Option<ValidToken>, StoreError> {
        let sql = concat!(
            "SELECT ",
            valid_columns!(),
            " FROM recovery_tokens WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3"
        );
        let row =
            sqlx::query(sql).bind(token_hash).bind(purpose.as_str()).bind(now).fetch_optional(&self.pool).await.map_err(backend_error)?;
        row.as_ref().map(valid_from_row).transpose()
    }

    async fn find_valid_token_by_id(&self, purpose: Purpose, id: &str, now: i64) -> Result<Option<ValidToken>, StoreError> {
        let sql = concat!(
            "SELECT ",
            valid_columns!(),
            " FROM recovery_tokens WHERE id = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3"
        );
        let row = sqlx::query(sql).bind(id).bind(purpose.as_str()).bind(now).fetch_optional(&self.pool).await.map_err(backend_error)?;
        row.as_ref().map(valid_from_row).transpose()
    }

    async fn reset_code_target(&self, login_key: &str, now: i64) -> Result<Option<ValidToken>, StoreError> {
        // Always one row and the same index probes: the account's id, or '' when the login
        // names none, then that id's newest live token (S2.5).
        let row = sqlx::query(
            "SELECT t.id, t.account_id, t.code_hash FROM \
               (SELECT COALESCE((SELECT id FROM accounts WHERE username_key = $1 OR email = $1 LIMIT 1), '') AS aid) a \
             LEFT JOIN recovery_tokens t ON t.id = \
               (SELECT id FROM recovery_tokens WHERE account_id = a.aid AND purpose = $2 AND used_at IS NULL AND expires_at > $3 \
                ORDER BY created_at DESC LIMIT 1)",
        )
        .bind(login_key)
        .bind(Purpose::PasswordReset.as_str())
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(backend_error)?;
        let id: Option<String> = row.try_get("id").map_err(backend_error)?;
        let account_id: Option<String> = row.try_get("account_id").map_err(backend_error)?;
        let code_hash: Option<String> = row.try_get("code_hash").map_err(backend_error)?;
        Ok(id.zip(account_id).map(|(id, account_id)| ValidToken { id, account_id: AccountId::from_stored(account_id), code_hash }))
    }

    async fn last_token_issued_at(&self, account: &AccountId, purpose: Purpose) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT MAX(created_at) AS latest FROM recovery_tokens WHERE account_id = $1 AND purpose = $2")
            .bind(account.as_str())
            .bind(purpose.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(backend_error)?;
        row.try_get::<Option<i64>, _>("latest").map_err(backend_error)
    }

    async fn change_password(
        &self,
        account: &AccountId,
        password_hash: &str,
        keep_session: &str,
        notice: &NewMessage,
        now: i64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE accounts SET password_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(password_hash)
            .bind(now)
            .bind(account.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend_error)?;
        super::support_actions::void_outstanding(&mut tx, account.as_str(), now).await?;
        // Other browsers stop being trusted too (S3.9).
        sqlx::query("DELETE FROM trusted_devices WHERE account_id = $1")
            .bind(account.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend_error)?;
        let ended = sqlx::query("DELETE FROM sessions WHERE account_id = $1 AND id_hash <> $2")
            .bind(account.as_str())
            .bind(keep_session)
            .execute(&mut *tx)
            .await
            .map_err(backend_error)?;
        insert_message(&mut tx, self.sealer.as_ref(), notice).await?;
        tx.commit().await.map_err(backend_error)?;
        Ok(ended.rows_affected())
    }

    async fn complete_password_reset(&self, c: &PasswordResetCompletion) -> Result<Option<u64>, StoreError> {
        let mut tx = self.begin_write().await?;
        // The redemption itself: one statement, so of concurrent attempts exactly one wins.
        let redeemed = sqlx::query(
            "UPDATE recovery_tokens SET used_at = $1 WHERE id = $2 AND account_id = $3 AND purpose = $4 AND used_at IS NULL AND expires_at > $1",
        )
        .bind(c.now)
        .bind(&c.token_id)
        .bind(c.account_id.as_str())
        .bind(Purpose::PasswordReset.as_str())
        .execute(&mut *tx)
        .await
        .map_err(backend_error)?;
        if redeemed.rows_affected() != 1 {
            tx.rollback().await.map_err(backend_error)?;
            return Ok(None);
        }
        sqlx::query("UPDATE accounts SET password_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(&c.password_hash)
            .bind(c.now)
            .bind(c.account_id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend_error)?;
        // Every session, trusted browser, link and code of the account ends (S1.11), the
        // owner's report links excepted.
        let sessions = super::support_actions::revoke_access(&mut tx, c.account_id.as_str(), c.now).await?;
        // A completed reset unlocks an account locked from a "this wasn't me" link.
        sqlx::query("DELETE FROM account_locks WHERE account_id = $1")
            .bind(c.account_id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend_error)?;
        for key in &c.throttle_keys {
            sqlx::query("DELETE FROM rate_counters WHERE key = $1").bind(key).execute(&mut *tx).await.map_err(backend_error)?;
        }
        replace_tokens(&mut tx, &c.report_token).await?;
        insert_message(&mut tx, self.sealer.as_ref(), &c.confirmation).await?;
        tx.commit().await.map_err(backend_error)?;
        Ok(Some(sessions))
    }
}
