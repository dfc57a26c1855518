use super::accounts::{account_columns, account_from_row};
use super::outbox::insert_message;
use super::{SqlStore, backend_error};
use async_trait::async_trait;
use doorman_core::account::{Account, AccountId, EmailAddress};
use doorman_core::email_change::{EmailChangeOutcome, EmailChangeStore, NewEmailChange};
use doorman_core::outbox::NewMessage;
use doorman_core::store::StoreError;
use sqlx::Row;

#[async_trait]
impl EmailChangeStore for SqlStore {
    async fn insert_email_change(&self, c: &NewEmailChange, message: &NewMessage) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE email_changes SET used_at = $1 WHERE account_id = $2 AND used_at IS NULL")
            .bind(c.created_at)
            .bind(c.account_id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend_error)?;
        sqlx::query(
            "INSERT INTO email_changes (id, account_id, new_email, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&c.id)
        .bind(c.account_id.as_str())
        .bind(c.new_email.as_str())
        .bind(&c.token_hash)
        .bind(c.created_at)
        .bind(c.expires_at)
        .execute(&mut *tx)
        .await
        .map_err(backend_error)?;
        insert_message(&mut tx, self.sealer.as_ref(), message).await?;
        tx.commit().await.map_err(backend_error)
    }

    async fn complete_email_change(
        &self,
        token_hash: &str,
        now: i64,
        notice: &(dyn for<'n> Fn(&'n Account, &'n EmailAddress) -> Option<NewMessage> + Send + Sync),
    ) -> Result<EmailChangeOutcome, StoreError> {
        let mut tx = self.begin_write().await?;
        // Redeeming is one statement: of two clicks, one wins.
        let row = sqlx::query(
            "UPDATE email_changes SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING account_id, new_email",
        )
        .bind(now)
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend_error)?;
        let Some(row) = row else {
            tx.rollback().await.map_err(backend_error)?;
            return Ok(EmailChangeOutcome::InvalidToken);
        };
        let account_id = AccountId::from_stored(row.try_get("account_id").map_err(backend_error)?);
        let new_email: String = row.try_get("new_email").map_err(backend_error)?;
        let sql = concat!("SELECT ", account_columns!(), " FROM accounts WHERE id = $1");
        let Some(before) = sqlx::query(sql).bind(account_id.as_str()).fetch_optional(&mut *tx).await.map_err(backend_error)? else {
            tx.rollback().await.map_err(backend_error)?;
            return Ok(EmailChangeOutcome::InvalidToken);
        };
        let old = account_from_row(&before)?;
        // The unique index decides whether the address is still free.
        let sql = concat!("UPDATE accounts SET email = $1, updated_at = $2 WHERE id = $3 RETURNING ", account_columns!());
        let updated = sqlx::query(sql).bind(&new_email).bind(now).bind(account_id.as_str()).fetch_one(&mut *tx).await;
        let updated = match updated {
            Ok(row) => row,
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                tx.rollback().await.map_err(backend_error)?;
                return Ok(EmailChangeOutcome::AddressTaken);
            }
            Err(e) => return Err(backend_error(e)),
        };
        let account = account_from_row(&updated)?;
        // Reset links went to the old inbox: they stop working.
        sqlx::query("UPDATE recovery_tokens SET used_at = $1 WHERE account_id = $2 AND purpose = 'password_reset' AND used_at IS NULL")
            .bind(now)
            .bind(account_id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend_error)?;
        if let Some(message) = notice(&account, &old.email) {
            insert_message(&mut tx, self.sealer.as_ref(), &message).await?;
        }
        tx.commit().await.map_err(backend_error)?;
        Ok(EmailChangeOutcome::Changed { account, old_email: old.email })
    }
}
