//! Recovery requests (issue 11 §3): pending requests, their confirmation into a support
//! case in one transaction, the status link and the case's notes.

use super::outbox::insert_message;
use super::{SqlStore, backend_error};
use async_trait::async_trait;
use doorman_core::account::AccountId;
use doorman_core::outbox::NewMessage;
use doorman_core::recovery_request::{CaseNote, CaseStatus, Confirmation, NewRequest, PendingRequest, RecoveryRequestStore};
use doorman_core::store::StoreError;
use sqlx::Row;

#[async_trait]
impl RecoveryRequestStore for SqlStore {
    async fn insert_request(&self, request: &NewRequest, code_email: &NewMessage) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        // A new code voids the older ones sent to this address: only the newest works.
        sqlx::query("UPDATE recovery_requests SET expires_at = $2 WHERE contact_email = $1 AND confirmed_at IS NULL AND expires_at > $2")
            .bind(&request.contact_email)
            .bind(request.created_at)
            .execute(&mut *tx)
            .await
            .map_err(backend_error)?;
        sqlx::query(
            "INSERT INTO recovery_requests (id, contact_email, code_hash, account_id, details, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&request.id)
        .bind(&request.contact_email)
        .bind(&request.code_hash)
        .bind(request.account_id.as_ref().map(|a| a.as_str().to_owned()))
        .bind(&request.details)
        .bind(request.created_at)
        .bind(request.expires_at)
        .execute(&mut *tx)
        .await
        .map_err(backend_error)?;
        insert_message(&mut tx, self.sealer.as_ref(), code_email).await?;
        tx.commit().await.map_err(backend_error)?;
        Ok(())
    }

    async fn pending_request(&self, contact_email: &str, now: i64) -> Result<Option<PendingRequest>, StoreError> {
        let row = sqlx::query(
            "SELECT id, code_hash, account_id, details FROM recovery_requests \
             WHERE contact_email = $1 AND confirmed_at IS NULL AND expires_at > $2 ORDER BY created_at DESC, id LIMIT 1",
        )
        .bind(contact_email)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend_error)?;
        let Some(row) = row else { return Ok(None) };
        let account: Option<String> = row.try_get("account_id").map_err(backend_error)?;
        Ok(Some(PendingRequest {
            id: row.try_get("id").map_err(backend_error)?,
            code_hash: row.try_get("code_hash").map_err(backend_error)?,
            account_id: account.map(AccountId::from_stored),
            details: row.try_get("details").map_err(backend_error)?,
        }))
    }

    async fn count_code_try(&self, request_id: &str, max: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE recovery_requests SET tries = tries + 1 WHERE id = $1 AND tries < $2")
            .bind(request_id)
            .bind(max)
            .execute(&self.pool)
            .await
            .map_err(backend_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn confirm_request(&self, c: &Confirmation, now: i64) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO support_cases (id, kind, account_id, status, created_at, details, contact_email) \
             VALUES ($1, $2, $3, 'open', $4, $5, $6)",
        )
        .bind(&c.case.id)
        .bind(c.case.kind)
        .bind(c.case.account_id.as_ref().map(|a| a.as_str().to_owned()))
        .bind(c.case.created_at)
        .bind(&c.case.details)
        .bind(&c.notice.contact)
        .execute(&mut *tx)
        .await
        .map_err(backend_error)?;
        // Spent in one statement: of two confirmations, one opens the case.
        let spent = sqlx::query(
            "UPDATE recovery_requests SET confirmed_at = $1, case_id = $2, status_hash = $3, status_expires_at = $4 \
             WHERE id = $5 AND confirmed_at IS NULL",
        )
        .bind(now)
        .bind(&c.case.id)
        .bind(&c.notice.link.hash)
        .bind(c.notice.link.expires_at)
        .bind(&c.request_id)
        .execute(&mut *tx)
        .await
        .map_err(backend_error)?;
        if spent.rows_affected() != 1 {
            tx.rollback().await.map_err(backend_error)?;
            return Ok(false);
        }
        // The first line of the case's identity checklist; it proves who reads the contact
        // address, nothing about who owns the account, so it never counts toward an action.
        sqlx::query(
            "INSERT INTO support_case_checks (id, case_id, kind, note, agent_id, created_at) \
             VALUES ($1, $2, 'contact_verified', 'The contact address was proved by the code sent to it.', NULL, $3)",
        )
        .bind(format!("contact-{}", c.case.id))
        .bind(&c.case.id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(backend_error)?;
        insert_message(&mut tx, self.sealer.as_ref(), &c.notice.message).await?;
        tx.commit().await.map_err(backend_error)?;
        Ok(true)
    }

    async fn case_by_status_link(&self, status_hash: &str, now: i64) -> Result<Option<CaseStatus>, StoreError> {
        let row = sqlx::query(
            // The case's first link is kept on its request; the links sent with later emails
            // (support's replies, the closing notice) in `case_status_links`.
            "SELECT c.id, c.status, c.created_at FROM support_cases c WHERE c.id IN ( \
               SELECT case_id FROM recovery_requests WHERE status_hash = $1 AND status_expires_at > $2 \
               UNION ALL SELECT case_id FROM case_status_links WHERE hash = $1 AND expires_at > $2)",
        )
        .bind(status_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend_error)?;
        let Some(row) = row else { return Ok(None) };
        let id: String = row.try_get("id").map_err(backend_error)?;
        let notes = sqlx::query(
            "SELECT created_at, author, body FROM support_case_notes WHERE case_id = $1 AND author <> 'agent' ORDER BY created_at, id",
        )
        .bind(&id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend_error)?
        .into_iter()
        .map(|n| {
            Ok(CaseNote {
                created_at: n.try_get("created_at").map_err(backend_error)?,
                author: n.try_get("author").map_err(backend_error)?,
                body: n.try_get("body").map_err(backend_error)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Some(CaseStatus {
            id,
            status: row.try_get("status").map_err(backend_error)?,
            created_at: row.try_get("created_at").map_err(backend_error)?,
            notes,
        }))
    }

    async fn add_case_note(&self, case_id: &str, author: &str, body: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO support_case_notes (id, case_id, author, body, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(super::support::note_id())
            .bind(case_id)
            .bind(author)
            .bind(body)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(backend_error)?;
        Ok(())
    }
}
