//! The support console's actions: the identity checklist, two-person actions and their
//! cooling-off, and the one-person lock and unlock.

use super::factors::remove_every_method;
use super::outbox::insert_message;
use super::{SqlStore, backend_error};
use async_trait::async_trait;
use doorman_core::account::AccountId;
use doorman_core::factors::history::ChangedBy;
use doorman_core::outbox::NewMessage;
use doorman_core::store::StoreError;
use doorman_core::support::CaseUpdate;
use doorman_core::support_actions::{
    ActionStatus, AppliedAction, ApplyOutcome, Approval, CaseCheck, CheckKind, NewCheck, NewProposal, ProposedAction, SupportAction,
    SupportActionStore,
};
use sqlx::AnyConnection;
use sqlx::Row;
use sqlx::any::AnyRow;

/// The columns of a support action, with its agents' usernames.
macro_rules! action_select {
    () => {
        "SELECT s.id AS id, s.case_id AS case_id, s.account_id AS account_id, s.action AS action, s.target AS target, \
                s.reason AS reason, s.proposed_by AS proposed_by, p.username AS proposer, s.proposed_at AS proposed_at, \
                s.expires_at AS expires_at, s.approved_by AS approved_by, a.username AS approver, \
                s.effective_at AS effective_at, s.status AS status \
         FROM support_actions s LEFT JOIN accounts p ON p.id = s.proposed_by LEFT JOIN accounts a ON a.id = s.approved_by "
    };
}

fn action_from_row(row: &AnyRow) -> Result<ProposedAction, StoreError> {
    let text = |column: &str| row.try_get::<String, _>(column).map_err(backend_error);
    let account = |column: &str| row.try_get::<Option<String>, _>(column).map(|id| id.map(AccountId::from_stored)).map_err(backend_error);
    let bad = |what: &str| StoreError::Backend(format!("unknown support action {what}").into());
    Ok(ProposedAction {
        id: text("id")?,
        case_id: text("case_id")?,
        account_id: AccountId::from_stored(text("account_id")?),
        action: SupportAction::parse(&text("action")?).ok_or_else(|| bad("kind"))?,
        target: text("target")?,
        reason: text("reason")?,
        proposed_by: account("proposed_by")?,
        proposer: row.try_get("proposer").map_err(backend_error)?,
        proposed_at: row.try_get("proposed_at").map_err(backend_error)?,
        expires_at: row.try_get("expires_at").map_err(backend_error)?,
        approved_by: account("approved_by")?,
        approver: row.try_get("approver").map_err(backend_error)?,
        effective_at: row.try_get("effective_at").map_err(backend_error)?,
        status: ActionStatus::from_stored(&text("status")?).ok_or_else(|| bad("status"))?,
    })
}

/// Runs a statement on the account (`$1`) as of `now` (`$2`).
async fn run(conn: &mut AnyConnection, sql: &'static str, account: &str, now: i64) -> Result<u64, StoreError> {
    Ok(sqlx::query(sql).bind(account).bind(now).execute(&mut *conn).await.map_err(backend_error)?.rows_affected())
}

/// Deletes the account's (`$1`) rows.
async fn delete(conn: &mut AnyConnection, sql: &'static str, account: &str) -> Result<u64, StoreError> {
    Ok(sqlx::query(sql).bind(account).execute(&mut *conn).await.map_err(backend_error)?.rows_affected())
}

/// Ends every session and device cookie of the account and voids its outstanding tokens
/// (report links excepted: each is its own event's); returns the sessions ended. A lock, a
/// support lock or unlock and an applied support change all do this.
pub(super) async fn revoke_access(conn: &mut AnyConnection, account: &str, now: i64) -> Result<u64, StoreError> {
    let sessions = delete(conn, "DELETE FROM sessions WHERE account_id = $1", account).await?;
    delete(conn, "DELETE FROM trusted_devices WHERE account_id = $1", account).await?;
    void_outstanding(conn, account, now).await?;
    Ok(sessions)
}

/// Voids the account's outstanding links and codes (report links excepted): reset and
/// answer-reset links, email-change confirmations, approvals and sent 2-step codes. A new
/// password does this too (S1.11), so that a link an earlier session asked for, such as an
/// attacker's email change, does not outlive the owner's recovery.
pub(super) async fn void_outstanding(conn: &mut AnyConnection, account: &str, now: i64) -> Result<(), StoreError> {
    for sql in [
        "UPDATE recovery_tokens SET used_at = $2 WHERE account_id = $1 AND purpose <> 'report_not_me' AND used_at IS NULL",
        "UPDATE email_changes SET used_at = $2 WHERE account_id = $1 AND used_at IS NULL",
        "UPDATE approvals SET used_at = $2 WHERE account_id = $1 AND used_at IS NULL",
        "UPDATE otp_codes SET used_at = $2 WHERE used_at IS NULL AND factor_id IN (SELECT id FROM second_factors WHERE account_id = $1)",
    ] {
        run(conn, sql, account, now).await?;
    }
    Ok(())
}

#[async_trait]
impl SupportActionStore for SqlStore {
    async fn add_check(&self, check: &NewCheck) -> Result<CaseUpdate, StoreError> {
        let done = sqlx::query(
            "INSERT INTO support_case_checks (id, case_id, kind, note, agent_id, created_at) \
             SELECT $1, id, $3, $4, $5, $6 FROM support_cases WHERE id = $2 AND status <> 'resolved'",
        )
        .bind(&check.id)
        .bind(&check.case_id)
        .bind(check.kind.as_str())
        .bind(&check.note)
        .bind(check.agent.as_str())
        .bind(check.now)
        .execute(&self.pool)
        .await
        .map_err(backend_error)?
        .rows_affected();
        if done == 1 {
            return Ok(CaseUpdate::Done);
        }
        let exists = sqlx::query("SELECT 1 AS one FROM support_cases WHERE id = $1")
            .bind(&check.case_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_error)?;
        Ok(if exists.is_some() { CaseUpdate::Resolved } else { CaseUpdate::NoSuchCase })
    }

    async fn checks_of(&self, case_id: &str) -> Result<Vec<CaseCheck>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.kind AS kind, c.note AS note, a.username AS agent, c.created_at AS created_at \
             FROM support_case_checks c LEFT JOIN accounts a ON a.id = c.agent_id WHERE c.case_id = $1 ORDER BY c.created_at, c.id",
        )
        .bind(case_id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend_error)?;
        rows.iter()
            .map(|row| {
                let kind: String = row.try_get("kind").map_err(backend_error)?;
                Ok(CaseCheck {
                    kind: CheckKind::from_stored(&kind).ok_or_else(|| StoreError::Backend(format!("unknown check kind {kind}").into()))?,
                    note: row.try_get("note").map_err(backend_error)?,
                    agent: row.try_get("agent").map_err(backend_error)?,
                    at: row.try_get("created_at").map_err(backend_error)?,
                })
            })
            .collect()
    }

    async fn case_contact(&self, case_id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT contact_email FROM support_cases WHERE id = $1")
            .bind(case_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_error)?;
        Ok(row.map(|r| r.try_get::<Option<String>, _>("contact_email")).transpose().map_err(backend_error)?.flatten())
    }

    async fn propose_action(&self, p: &NewProposal) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE support_actions SET status = 'expired', ended_at = $2 WHERE account_id = $1 AND status = 'proposed' AND expires_at <= $2")
            .bind(p.account_id.as_str())
            .bind(p.now)
            .execute(&mut *tx)
            .await
            .map_err(backend_error)?;
        // The partial unique index keeps one waiting action per account, whatever the replica.
        let inserted = sqlx::query(
            "INSERT INTO support_actions (id, case_id, account_id, action, target, reason, proposed_by, proposed_at, expires_at, status) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'proposed') ON CONFLICT DO NOTHING",
        )
        .bind(&p.id)
        .bind(&p.case_id)
        .bind(p.account_id.as_str())
        .bind(p.action.as_str())
        .bind(&p.target)
        .bind(&p.reason)
        .bind(p.agent.as_str())
        .bind(p.now)
        .bind(p.now + doorman_core::support_actions::APPROVAL_TTL_SECONDS)
        .execute(&mut *tx)
        .await
        .map_err(backend_error)?
        .rows_affected();
        tx.commit().await.map_err(backend_error)?;
        Ok(inserted == 1)
    }

    async fn support_action(&self, id: &str) -> Result<Option<ProposedAction>, StoreError> {
        let row =
            sqlx::query(concat!(action_select!(), "WHERE s.id = $1")).bind(id).fetch_optional(&self.pool).await.map_err(backend_error)?;
        row.as_ref().map(action_from_row).transpose()
    }

    async fn actions_of_case(&self, case_id: &str) -> Result<Vec<ProposedAction>, StoreError> {
        let rows = sqlx::query(concat!(action_select!(), "WHERE s.case_id = $1 ORDER BY s.proposed_at DESC, s.id"))
            .bind(case_id)
            .fetch_all(&self.pool)
            .await
            .map_err(backend_error)?;
        rows.iter().map(action_from_row).collect()
    }

    async fn pending_actions_of(&self, account: &AccountId) -> Result<Vec<ProposedAction>, StoreError> {
        let rows = sqlx::query(concat!(action_select!(), "WHERE s.account_id = $1 AND s.status = 'approved' ORDER BY s.proposed_at, s.id"))
            .bind(account.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(backend_error)?;
        rows.iter().map(action_from_row).collect()
    }

    async fn action_by_cancel_hash(&self, hash: &str) -> Result<Option<ProposedAction>, StoreError> {
        let row = sqlx::query(concat!(action_select!(), "WHERE s.cancel_hash = $1"))
            .bind(hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_error)?;
        row.as_ref().map(action_from_row).transpose()
    }

    async fn approve_action(&self, a: &Approval) -> Result<bool, StoreError> {
        let (kind, payload) = a.job.encode().map_err(|e| StoreError::Backend(Box::new(e)))?;
        let mut tx = self.begin_write().await?;
        // One statement decides: of two approvals, one wins; never the proposer's own.
        let approved = sqlx::query(
            "UPDATE support_actions SET status = 'approved', approved_by = $2, approved_at = $3, approval_reason = $4, \
             effective_at = $5, cancel_hash = $6 \
             WHERE id = $1 AND status = 'proposed' AND expires_at > $3 AND (proposed_by IS NULL OR proposed_by <> $2)",
        )
        .bind(&a.action_id)
        .bind(a.approver.as_str())
        .bind(a.now)
        .bind(&a.reason)
        .bind(a.effective_at)
        .bind(&a.cancel_hash)
        .execute(&mut *tx)
        .await
        .map_err(backend_error)?
        .rows_affected();
        if approved != 1 {
            tx.rollback().await.map_err(backend_error)?;
            return Ok(false);
        }
        sqlx::query("INSERT INTO jobs (id, kind, payload, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(kind)
            .bind(payload)
            .bind(a.effective_at)
            .bind(a.now)
            .execute(&mut *tx)
            .await
            .map_err(backend_error)?;
        for message in &a.messages {
            insert_message(&mut tx, self.sealer.as_ref(), message).await?;
        }
        tx.commit().await.map_err(backend_error)?;
        Ok(true)
    }

    async fn cancel_action(&self, id: &str, now: i64, note: &str, messages: &[NewMessage]) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE support_actions SET status = 'cancelled', cancel_hash = NULL, ended_at = $2 WHERE id = $1 AND status IN ('proposed', 'approved')",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(backend_error)?
        .rows_affected();
        if done != 1 {
            tx.rollback().await.map_err(backend_error)?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO support_case_notes (id, case_id, author, body, created_at) \
             SELECT $1, case_id, 'owner', $2, $3 FROM support_actions WHERE id = $4",
        )
        .bind(super::support::note_id())
        .bind(note)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(backend_error)?;
        for message in messages {
            insert_message(&mut tx, self.sealer.as_ref(), message).await?;
        }
        tx.commit().await.map_err(backend_error)?;
        Ok(true)
    }

    async fn apply_action(&self, applied: &AppliedAction) -> Result<ApplyOutcome, StoreError> {
        let account = applied.account_id.as_str();
        let now = applied.now;
        let mut tx = self.begin_write().await?;
        let due = sqlx::query(
            "UPDATE support_actions SET status = 'applied', cancel_hash = NULL, ended_at = $2 \
             WHERE id = $1 AND status = 'approved' AND effective_at <= $2",
        )
        .bind(&applied.action_id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(backend_error)?
        .rows_affected();
        if due != 1 {
            tx.rollback().await.map_err(backend_error)?;
            return Ok(ApplyOutcome::NotDue);
        }
        if let Some(email) = &applied.new_email {
            let moved = sqlx::query(
                "UPDATE accounts SET email = $1, updated_at = $2 WHERE id = $3 \
                 AND NOT EXISTS (SELECT 1 FROM accounts o WHERE o.email = $1 AND o.id <> $3)",
            )
            .bind(email.as_str())
            .bind(now)
            .bind(account)
            .execute(&mut *tx)
            .await
            .map_err(backend_error)?
            .rows_affected();
            if moved != 1 {
                tx.rollback().await.map_err(backend_error)?;
                return Ok(ApplyOutcome::EmailTaken);
            }
        }
        revoke_access(&mut tx, account, now).await?;
        // The owner enrols 2-step again: every method and recovery code goes.
        remove_every_method(&mut tx, account, now, ChangedBy::Support).await?;
        run(&mut tx, "UPDATE recovery_codes SET used_at = $2 WHERE account_id = $1 AND used_at IS NULL", account, now).await?;
        // A lock only support lifts (it took every method away) becomes one a reset lifts: the
        // lock stays (the password from before it still does not sign in), and the owner sets
        // a new password by email, then enrols 2-step again (S11.4).
        sqlx::query("UPDATE account_locks SET support_only = 0 WHERE account_id = $1")
            .bind(account)
            .execute(&mut *tx)
            .await
            .map_err(backend_error)?;
        // A running 2-step reset ends too, and its finish email never goes.
        super::two_step_reset::cancel_running_resets(&mut tx, account, now).await?;
        for message in &applied.messages {
            insert_message(&mut tx, self.sealer.as_ref(), message).await?;
        }
        tx.commit().await.map_err(backend_error)?;
        Ok(ApplyOutcome::Applied)
    }

    async fn mark_action_failed(&self, id: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE support_actions SET status = 'failed', cancel_hash = NULL, ended_at = $2 WHERE id = $1 AND status = 'approved'",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(backend_error)?;
        Ok(())
    }

    async fn support_lock(&self, account: &AccountId, case_id: &str, now: i64, messages: &[NewMessage]) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        // An existing lock keeps its case and its (earlier) event.
        sqlx::query(
            "INSERT INTO account_locks (account_id, locked_at, event_at, case_id) VALUES ($1, $2, $2, $3) ON CONFLICT (account_id) DO NOTHING",
        )
        .bind(account.as_str())
        .bind(now)
        .bind(case_id)
        .execute(&mut *tx)
        .await
        .map_err(backend_error)?;
        let sessions = revoke_access(&mut tx, account.as_str(), now).await?;
        for message in messages {
            insert_message(&mut tx, self.sealer.as_ref(), message).await?;
        }
        tx.commit().await.map_err(backend_error)?;
        Ok(sessions)
    }

    async fn support_unlock(&self, account: &AccountId, unusable_hash: &str, now: i64) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        // Not a lock only two agents lift, even one a report made since the agent looked.
        let unlocked = delete(&mut tx, "DELETE FROM account_locks WHERE account_id = $1 AND support_only = 0", account.as_str()).await?;
        if unlocked != 1 {
            tx.rollback().await.map_err(backend_error)?;
            return Ok(false);
        }
        sqlx::query("UPDATE accounts SET password_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(unusable_hash)
            .bind(now)
            .bind(account.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend_error)?;
        revoke_access(&mut tx, account.as_str(), now).await?;
        tx.commit().await.map_err(backend_error)?;
        Ok(true)
    }
}
