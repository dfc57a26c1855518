//! The support queue: open cases and running 2-step resets; claim, notes, resolve.

use super::outbox::insert_message;
use super::{SqlStore, backend_error};
use async_trait::async_trait;
use doorman_core::account::AccountId;
use doorman_core::case_link::RequesterNotice;
use doorman_core::store::StoreError;
use doorman_core::support::actions::SupportActionStore;
use doorman_core::support::{CaseDetail, CaseNote, CaseSummary, CaseUpdate, SupportStore};
use sqlx::Row;
use sqlx::any::AnyRow;

/// The author of a case's newest note (`requester`, `agent`, `support`, `owner`), as the
/// column `last_author`; through the notes' index on (case_id, created_at). A macro for
/// `concat!`.
macro_rules! last_author {
    () => {
        "(SELECT n.author FROM support_case_notes n WHERE n.case_id = c.id ORDER BY n.created_at DESC, n.id DESC LIMIT 1) AS last_author"
    };
}

fn summary_from_row(row: &AnyRow) -> Result<CaseSummary, StoreError> {
    let last_author: Option<String> = row.try_get("last_author").map_err(backend_error)?;
    Ok(CaseSummary {
        requester_wrote_last: last_author.as_deref() == Some("requester"),
        id: row.try_get("id").map_err(backend_error)?,
        kind: row.try_get("kind").map_err(backend_error)?,
        status: row.try_get("status").map_err(backend_error)?,
        created_at: row.try_get("created_at").map_err(backend_error)?,
        claimed_by: row.try_get("claimed_by").map_err(backend_error)?,
    })
}

/// A case note's id: time-ordered (UUIDv7), so that notes written within the same second of
/// the clock are still listed in the order they were written (`ORDER BY created_at, id`).
pub(super) fn note_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A requester's email and the status link it carries.
async fn write_notice(tx: &mut sqlx::AnyConnection, store: &SqlStore, case_id: &str, notice: &RequesterNotice) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO case_status_links (hash, case_id, expires_at) VALUES ($1, $2, $3)")
        .bind(&notice.link.hash)
        .bind(case_id)
        .bind(notice.link.expires_at)
        .execute(&mut *tx)
        .await
        .map_err(backend_error)?;
    insert_message(tx, store.sealer.as_ref(), &notice.message).await
}

impl SqlStore {
    /// Why a conditional update of a case changed nothing.
    async fn why_unchanged(&self, id: &str) -> Result<CaseUpdate, StoreError> {
        let row = sqlx::query("SELECT status FROM support_cases WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_error)?;
        Ok(match row {
            None => CaseUpdate::NoSuchCase,
            Some(row) if row.try_get::<String, _>("status").map_err(backend_error)? == "resolved" => CaseUpdate::Resolved,
            Some(_) => CaseUpdate::ClaimedByOther,
        })
    }
}

#[async_trait]
impl SupportStore for SqlStore {
    async fn open_cases(&self, limit: i64) -> Result<Vec<CaseSummary>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT c.id AS id, c.kind AS kind, c.status AS status, c.created_at AS created_at, a.username AS claimed_by, ",
            last_author!(),
            // Public reports that name no account come after every other case: support can do
            // nothing with them, and a flood of them must not push real cases off the page.
            ", CASE WHEN c.kind = 'compromise_form' AND c.account_id IS NULL THEN 1 ELSE 0 END AS later \
             FROM support_cases c LEFT JOIN accounts a ON a.id = c.claimed_by WHERE c.status <> 'resolved' \
             UNION ALL \
             SELECT r.id AS id, 'two_step_reset' AS kind, r.status AS status, r.created_at AS created_at, NULL AS claimed_by, \
                    NULL AS last_author, 0 AS later \
             FROM two_step_resets r WHERE r.status IN ('requested', 'waiting') \
             ORDER BY later, created_at, id LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(backend_error)?;
        rows.iter().map(summary_from_row).collect()
    }

    async fn case_detail(&self, id: &str) -> Result<Option<CaseDetail>, StoreError> {
        let Some(row) = sqlx::query(concat!(
            "SELECT c.id AS id, c.kind AS kind, c.status AS status, c.created_at AS created_at, a.username AS claimed_by, \
                    c.account_id AS account_id, c.details AS details, c.contact_email AS contact_email, ",
            last_author!(),
            " FROM support_cases c LEFT JOIN accounts a ON a.id = c.claimed_by WHERE c.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend_error)?
        else {
            return Ok(None);
        };
        let notes = sqlx::query(
            "SELECT n.created_at AS created_at, COALESCE(a.username, n.author) AS agent, n.body AS body, n.author AS author \
             FROM support_case_notes n LEFT JOIN accounts a ON a.id = n.agent_id WHERE n.case_id = $1 ORDER BY n.created_at, n.id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend_error)?
        .iter()
        .map(|n| {
            Ok(CaseNote {
                at: n.try_get("created_at").map_err(backend_error)?,
                agent: n.try_get("agent").map_err(backend_error)?,
                body: n.try_get("body").map_err(backend_error)?,
                to_requester: n.try_get::<String, _>("author").map_err(backend_error)? == "support",
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Some(CaseDetail {
            summary: summary_from_row(&row)?,
            account_id: row.try_get::<Option<String>, _>("account_id").map_err(backend_error)?.map(AccountId::from_stored),
            details: row.try_get("details").map_err(backend_error)?,
            contact: row.try_get("contact_email").map_err(backend_error)?,
            notes,
        }))
    }

    async fn claim_case(&self, id: &str, agent: &AccountId, _now: i64) -> Result<CaseUpdate, StoreError> {
        let done = sqlx::query(
            "UPDATE support_cases SET claimed_by = $2, status = 'claimed' \
             WHERE id = $1 AND status <> 'resolved' AND (claimed_by IS NULL OR claimed_by = $2)",
        )
        .bind(id)
        .bind(agent.as_str())
        .execute(&self.pool)
        .await
        .map_err(backend_error)?
        .rows_affected();
        if done == 1 { Ok(CaseUpdate::Done) } else { self.why_unchanged(id).await }
    }

    async fn add_agent_note(&self, id: &str, agent: &AccountId, body: &str, now: i64) -> Result<CaseUpdate, StoreError> {
        // One statement: the note is written only while the case is not resolved.
        let done = sqlx::query(
            "INSERT INTO support_case_notes (id, case_id, author, agent_id, created_at, body) \
             SELECT $1, id, 'agent', $3, $4, $5 FROM support_cases WHERE id = $2 AND status <> 'resolved'",
        )
        .bind(note_id())
        .bind(id)
        .bind(agent.as_str())
        .bind(now)
        .bind(body)
        .execute(&self.pool)
        .await
        .map_err(backend_error)?
        .rows_affected();
        if done == 1 { Ok(CaseUpdate::Done) } else { self.why_unchanged(id).await }
    }

    async fn resolve_case(
        &self,
        id: &str,
        agent: &AccountId,
        notice: Option<&RequesterNotice>,
        now: i64,
    ) -> Result<CaseUpdate, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE support_cases SET status = 'resolved', resolved_at = $3, claimed_by = $2 \
             WHERE id = $1 AND status <> 'resolved' AND (claimed_by IS NULL OR claimed_by = $2)",
        )
        .bind(id)
        .bind(agent.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(backend_error)?
        .rows_affected();
        if done != 1 {
            tx.rollback().await.map_err(backend_error)?;
            return self.why_unchanged(id).await;
        }
        if let Some(notice) = notice {
            write_notice(&mut tx, self, id, notice).await?;
        }
        tx.commit().await.map_err(backend_error)?;
        Ok(CaseUpdate::Done)
    }

    async fn reply_to_requester(
        &self,
        id: &str,
        agent: &AccountId,
        body: &str,
        notice: &RequesterNotice,
        now: i64,
    ) -> Result<CaseUpdate, StoreError> {
        let mut tx = self.begin_write().await?;
        // Claimed for the agent in the same statement that checks the case is still theirs to
        // answer, and still has the address the email is written to.
        let done = sqlx::query(
            "UPDATE support_cases SET claimed_by = $2, status = 'claimed' \
             WHERE id = $1 AND status <> 'resolved' AND (claimed_by IS NULL OR claimed_by = $2) AND contact_email = $3",
        )
        .bind(id)
        .bind(agent.as_str())
        .bind(&notice.contact)
        .execute(&mut *tx)
        .await
        .map_err(backend_error)?
        .rows_affected();
        if done != 1 {
            tx.rollback().await.map_err(backend_error)?;
            return match self.why_unchanged(id).await? {
                // Still open for this agent: its contact address is not the one written to.
                CaseUpdate::ClaimedByOther if self.case_contact(id).await?.as_deref() != Some(notice.contact.as_str()) => {
                    Ok(CaseUpdate::NoSuchCase)
                }
                other => Ok(other),
            };
        }
        sqlx::query(
            "INSERT INTO support_case_notes (id, case_id, author, agent_id, created_at, body) VALUES ($1, $2, 'support', $3, $4, $5)",
        )
        .bind(note_id())
        .bind(id)
        .bind(agent.as_str())
        .bind(now)
        .bind(body)
        .execute(&mut *tx)
        .await
        .map_err(backend_error)?;
        write_notice(&mut tx, self, id, notice).await?;
        tx.commit().await.map_err(backend_error)?;
        Ok(CaseUpdate::Done)
    }

    async fn cases_of_account(&self, account: &AccountId) -> Result<Vec<CaseSummary>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT c.id AS id, c.kind AS kind, c.status AS status, c.created_at AS created_at, a.username AS claimed_by, ",
            last_author!(),
            " FROM support_cases c LEFT JOIN accounts a ON a.id = c.claimed_by WHERE c.account_id = $1 \
             ORDER BY c.created_at DESC, c.id LIMIT 50"
        ))
        .bind(account.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(backend_error)?;
        rows.iter().map(summary_from_row).collect()
    }
}
