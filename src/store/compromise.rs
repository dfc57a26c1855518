//! "This wasn't me": report tokens, the lock in one transaction, and support cases.

use super::factors::{REMOVE_ONE_METHOD, append_history, change_one_method, history_columns};
use super::outbox::insert_message;
use super::recovery::insert_token;
use super::{SqlStore, backend_error};
use async_trait::async_trait;
use doorman_core::account::AccountId;
use doorman_core::compromise::{AccountLock, AccountLockRecord, CompromiseStore, LockOutcome, NewCase, StoredReport};
use doorman_core::factors::history::{ChangedBy, FactorChange};
use doorman_core::recovery::{NewRecoveryToken, Purpose};
use doorman_core::report_link::{ReportLinkStore, ReportedEvent};
use doorman_core::store::StoreError;
use sqlx::{AnyConnection, Row};

async fn insert_case(conn: &mut AnyConnection, case: &NewCase) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO support_cases (id, kind, account_id, status, created_at, details) VALUES ($1, $2, $3, 'open', $4, $5)")
        .bind(&case.id)
        .bind(case.kind)
        .bind(case.account_id.as_ref().map(|a| a.as_str().to_owned()))
        .bind(case.created_at)
        .bind(&case.details)
        .execute(&mut *conn)
        .await
        .map_err(backend_error)?;
    Ok(())
}

/// The account's confirmed 2-step methods in use.
const CONFIRMED_METHODS: &str =
    "SELECT COUNT(*) FROM second_factors WHERE account_id = $1 AND confirmed_at IS NOT NULL AND removed_at IS NULL";

/// Undoes the reported change where it can be; whether something was undone. Methods it
/// removes or gives back are written to the method history as the report's doing.
async fn roll_back(conn: &mut AnyConnection, account: &str, event: &ReportedEvent, event_at: i64, now: i64) -> Result<bool, StoreError> {
    let (changed, change) = match event {
        // Back to the old address, unless another account took it meanwhile.
        ReportedEvent::EmailChanged { old_email } => {
            let done = sqlx::query(
                "UPDATE accounts SET email = $1, updated_at = $2 WHERE id = $3 \
                 AND NOT EXISTS (SELECT 1 FROM accounts o WHERE o.email = $1 AND o.id <> $3)",
            )
            .bind(old_email)
            .bind(now)
            .bind(account)
            .execute(&mut *conn)
            .await
            .map_err(backend_error)?;
            return Ok(done.rows_affected() > 0);
        }
        ReportedEvent::MethodAdded { method_id } => {
            return change_one_method(conn, REMOVE_ONE_METHOD, now, method_id, account, FactorChange::Removed, ChangedBy::Report).await;
        }
        // The owner's method comes back (recovery codes do not: their codes were voided).
        ReportedEvent::MethodRemoved { method_id } => (
            sqlx::query(concat!(
                "UPDATE second_factors SET removed_at = NULL WHERE id = $1 AND account_id = $2 AND removed_at IS NOT NULL \
                 AND kind <> 'recovery_code' RETURNING ",
                history_columns!()
            ))
            .bind(method_id)
            .bind(account)
            .fetch_all(&mut *conn)
            .await
            .map_err(backend_error)?,
            FactorChange::Restored,
        ),
        // A 2-step reset someone else ran: the methods it removed come back (not recovery
        // codes: they were spent). Methods added since go below, with every lock.
        ReportedEvent::TwoStepResetStarted => (
            sqlx::query(concat!(
                "UPDATE second_factors SET removed_at = NULL WHERE account_id = $1 AND removed_at IS NOT NULL \
                 AND removed_at >= $2 AND created_at < $2 AND kind <> 'recovery_code' RETURNING ",
                history_columns!()
            ))
            .bind(account)
            .bind(event_at)
            .fetch_all(&mut *conn)
            .await
            .map_err(backend_error)?,
            FactorChange::Restored,
        ),
        _ => return Ok(false),
    };
    append_history(conn, account, &changed, change, ChangedBy::Report, now).await?;
    Ok(!changed.is_empty())
}

#[async_trait]
impl ReportLinkStore for SqlStore {
    async fn insert_report_token(&self, token: &NewRecoveryToken) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(backend_error)?;
        insert_token(&mut conn, token).await
    }
}

#[async_trait]
impl CompromiseStore for SqlStore {
    async fn reported_event_of_token(&self, account: &AccountId, token_id: &str) -> Result<Option<ReportedEvent>, StoreError> {
        let row = sqlx::query("SELECT event_kind, event_detail FROM recovery_tokens WHERE id = $1 AND account_id = $2 AND purpose = $3")
            .bind(token_id)
            .bind(account.as_str())
            .bind(Purpose::ReportNotMe.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_error)?;
        let Some(row) = row else { return Ok(None) };
        let kind: Option<String> = row.try_get("event_kind").map_err(backend_error)?;
        Ok(Some(ReportedEvent::from_stored(kind.as_deref(), row.try_get("event_detail").map_err(backend_error)?)))
    }

    async fn find_report(&self, token_hash: &str, now: i64) -> Result<Option<StoredReport>, StoreError> {
        let row = sqlx::query(
            "SELECT id, account_id, created_at, event_kind, event_detail FROM recovery_tokens \
             WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3",
        )
        .bind(token_hash)
        .bind(Purpose::ReportNotMe.as_str())
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend_error)?;
        let Some(row) = row else { return Ok(None) };
        let kind: Option<String> = row.try_get("event_kind").map_err(backend_error)?;
        Ok(Some(StoredReport {
            token_id: row.try_get("id").map_err(backend_error)?,
            account_id: AccountId::from_stored(row.try_get("account_id").map_err(backend_error)?),
            event: ReportedEvent::from_stored(kind.as_deref(), row.try_get("event_detail").map_err(backend_error)?),
            event_at: row.try_get("created_at").map_err(backend_error)?,
        }))
    }

    async fn lock_account(&self, lock: &AccountLock) -> Result<Option<LockOutcome>, StoreError> {
        let account = lock.report.account_id.as_str();
        let now = lock.now;
        let mut tx = self.begin_write().await?;
        // The report token is spent first, in one statement: of two clicks, one locks.
        let spent = sqlx::query(
            "UPDATE recovery_tokens SET used_at = $1 WHERE id = $2 AND account_id = $3 AND purpose = $4 AND used_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(&lock.report.token_id)
        .bind(account)
        .bind(Purpose::ReportNotMe.as_str())
        .execute(&mut *tx)
        .await
        .map_err(backend_error)?;
        if spent.rows_affected() != 1 {
            tx.rollback().await.map_err(backend_error)?;
            return Ok(None);
        }
        insert_case(&mut tx, &lock.case).await?;
        let methods_before: i64 = sqlx::query_scalar(CONFIRMED_METHODS).bind(account).fetch_one(&mut *tx).await.map_err(backend_error)?;
        // A second report keeps the first case and the earliest event.
        sqlx::query(
            "INSERT INTO account_locks (account_id, locked_at, event_at, case_id) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (account_id) DO UPDATE SET event_at = CASE WHEN excluded.event_at < account_locks.event_at \
             THEN excluded.event_at ELSE account_locks.event_at END",
        )
        .bind(account)
        .bind(now)
        .bind(lock.report.event_at)
        .bind(&lock.case.id)
        .execute(&mut *tx)
        .await
        .map_err(backend_error)?;
        let sessions = super::support_actions::revoke_access(&mut tx, account, now).await?;
        // Recovery codes made at or after the reported event are not the owner's.
        sqlx::query("UPDATE recovery_codes SET used_at = $1 WHERE account_id = $2 AND used_at IS NULL AND created_at >= $3")
            .bind(now)
            .bind(account)
            .bind(lock.report.event_at)
            .execute(&mut *tx)
            .await
            .map_err(backend_error)?;
        let rolled_back = roll_back(&mut tx, account, &lock.report.event, lock.report.event_at, now).await?;
        // A running 2-step reset is cancelled: its unsent finish email goes, its links die.
        let resets_cancelled = super::two_step_reset::cancel_running_resets(&mut tx, account, now).await?;
        // Methods added since the reported event are not the owner's either: they go, so
        // that they neither unlock the account nor leave it with 2-step on and no usable method.
        let removed = sqlx::query(concat!(
            "UPDATE second_factors SET removed_at = $1, is_default = 0 WHERE account_id = $2 AND removed_at IS NULL \
             AND (created_at >= $3 OR confirmed_at >= $3) RETURNING ",
            history_columns!()
        ))
        .bind(now)
        .bind(account)
        .bind(lock.report.event_at)
        .fetch_all(&mut *tx)
        .await
        .map_err(backend_error)?;
        append_history(&mut tx, account, &removed, FactorChange::Removed, ChangedBy::Report, now).await?;
        // 2-step was on and no method from before the event is left: a reset by email must
        // not unlock (it would need the email alone, on an account that had 2-step on).
        let mut support_only = false;
        if methods_before > 0 {
            let marked = sqlx::query(concat!(
                "UPDATE account_locks SET support_only = 1 WHERE account_id = $1 AND NOT EXISTS (",
                "SELECT 1 FROM second_factors WHERE account_id = $1 AND confirmed_at IS NOT NULL AND removed_at IS NULL \
                 AND created_at < account_locks.event_at AND confirmed_at < account_locks.event_at)"
            ))
            .bind(account)
            .execute(&mut *tx)
            .await
            .map_err(backend_error)?;
            support_only = marked.rows_affected() > 0;
        }
        // A second report finds the first's mark (and counts no methods left to take).
        if !support_only {
            let marked: i32 = sqlx::query_scalar("SELECT support_only FROM account_locks WHERE account_id = $1")
                .bind(account)
                .fetch_one(&mut *tx)
                .await
                .map_err(backend_error)?;
            support_only = marked != 0;
        }
        for notice in &lock.notices {
            insert_message(&mut tx, self.sealer.as_ref(), notice).await?;
        }
        tx.commit().await.map_err(backend_error)?;
        let two_step_reset_cancelled = resets_cancelled > 0;
        let rolled_back = rolled_back || (two_step_reset_cancelled && lock.report.event == ReportedEvent::TwoStepResetStarted);
        Ok(Some(LockOutcome { sessions_ended: sessions, rolled_back, two_step_reset_cancelled, support_only }))
    }

    async fn lock_of(&self, account: &AccountId) -> Result<Option<AccountLockRecord>, StoreError> {
        let row = sqlx::query("SELECT locked_at, event_at, case_id, support_only FROM account_locks WHERE account_id = $1")
            .bind(account.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_error)?;
        row.map(|row| {
            Ok(AccountLockRecord {
                locked_at: row.try_get("locked_at").map_err(backend_error)?,
                event_at: row.try_get("event_at").map_err(backend_error)?,
                case_id: row.try_get("case_id").map_err(backend_error)?,
                support_only: row.try_get::<i32, _>("support_only").map_err(backend_error)? != 0,
            })
        })
        .transpose()
    }

    async fn open_case(&self, case: &NewCase) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(backend_error)?;
        insert_case(&mut conn, case).await
    }

    async fn open_public_report_of(&self, account: Option<&AccountId>) -> Result<Option<String>, StoreError> {
        // `account_id = NULL` matches nothing: the same statement for a login with no account.
        sqlx::query_scalar(
            "SELECT id FROM support_cases WHERE account_id = $1 AND kind = 'compromise_form' AND status <> 'resolved' \
             ORDER BY created_at, id LIMIT 1",
        )
        .bind(account.map(|a| a.as_str().to_owned()))
        .fetch_optional(&self.pool)
        .await
        .map_err(backend_error)
    }

    async fn add_public_report_note(&self, case_id: &str, body: &str, now: i64) -> Result<(), StoreError> {
        use doorman_core::recovery_request::RecoveryRequestStore;
        self.add_case_note(case_id, "reporter", body, now).await
    }
}
