use super::batch::{Statement, value_rows};
use super::outbox::insert_message;
use super::{SqlStore, backend_error};
use async_trait::async_trait;
use doorman_core::account::AccountId;
use doorman_core::factors::history::{ChangedBy, FactorChange, FactorHistoryEntry};
use doorman_core::factors::{FactorKind, FactorRecord, FactorSecret, FactorStore, NewOtp, OtpRecord};
use doorman_core::outbox::NewMessage;
use doorman_core::store::StoreError;

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

/// The columns [`factor_from_row`] reads, for `concat!` (queries stay `&'static str`).
macro_rules! factor_columns {
    () => {
        "id, account_id, kind, label, secret, is_default, confirmed_at, last_used_step, created_at"
    };
}

fn factor_from_row(row: &AnyRow) -> Result<FactorRecord, StoreError> {
    let kind: String = row.try_get("kind").map_err(backend_error)?;
    Ok(FactorRecord {
        id: row.try_get("id").map_err(backend_error)?,
        account_id: AccountId::from_stored(row.try_get("account_id").map_err(backend_error)?),
        kind: FactorKind::parse(&kind).ok_or_else(|| StoreError::Backend(format!("unknown factor kind {kind}").into()))?,
        label: row.try_get("label").map_err(backend_error)?,
        secret: FactorSecret::from(row.try_get::<String, _>("secret").map_err(backend_error)?),
        is_default: row.try_get::<i64, _>("is_default").map_err(backend_error)? != 0,
        confirmed_at: row.try_get("confirmed_at").map_err(backend_error)?,
        last_used_step: row.try_get("last_used_step").map_err(backend_error)?,
        created_at: row.try_get("created_at").map_err(backend_error)?,
    })
}

/// The columns of a changed method that its history row copies, for `RETURNING` (`concat!`).
macro_rules! history_columns {
    () => {
        "id, kind, label, confirmed_at"
    };
}
pub(super) use history_columns;

/// A changed method as its history row names it.
pub(super) struct HistoryRow {
    id: String,
    kind: String,
    label: String,
}

impl HistoryRow {
    fn read(row: &AnyRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: row.try_get("id").map_err(backend_error)?,
            kind: row.try_get("kind").map_err(backend_error)?,
            label: row.try_get("label").map_err(backend_error)?,
        })
    }
}

/// Appends one history row for each enrolled method a statement changed (S10.4), in the
/// caller's transaction, so that no change is kept without its row. `changed` holds what the
/// statement's `RETURNING` [`history_columns!`] gave back; a method never confirmed was never
/// enrolled, and its removal is no part of the history.
pub(super) async fn append_history(
    conn: &mut AnyConnection,
    account: &str,
    changed: &[AnyRow],
    change: FactorChange,
    by: ChangedBy,
    at: i64,
) -> Result<(), StoreError> {
    let mut rows = Vec::with_capacity(changed.len());
    for row in changed {
        if row.try_get::<Option<i64>, _>("confirmed_at").map_err(backend_error)?.is_some() {
            rows.push(HistoryRow::read(row)?);
        }
    }
    append_rows(conn, account, &rows, change, by, at).await
}

async fn append_rows(
    conn: &mut AnyConnection,
    account: &str,
    rows: &[HistoryRow],
    change: FactorChange,
    by: ChangedBy,
    at: i64,
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO factor_history (account_id, factor_id, kind, label, change, changed_by, at) VALUES {}",
        value_rows(rows.len(), 7)
    );
    let statement = rows.iter().fold(Statement::new(sql), |s, row| {
        s.text(account)
            .text(row.id.as_str())
            .text(row.kind.as_str())
            .text(row.label.as_str())
            .text(change.as_str())
            .text(by.as_str())
            .int(at)
    });
    statement.execute(conn).await?;
    Ok(())
}

/// Removes one method (`$1` the time, `$2` its id, `$3` the account), for
/// [`change_one_method`].
pub(super) const REMOVE_ONE_METHOD: &str = concat!(
    "UPDATE second_factors SET removed_at = $1, is_default = 0 WHERE id = $2 AND account_id = $3 AND removed_at IS NULL RETURNING ",
    history_columns!()
);

/// Runs `sql`, a change to one method bound to the time (`$1`), the method (`$2`) and the
/// account (`$3`) that returns [`history_columns!`], and writes its history row in the
/// caller's transaction; whether the method was changed.
pub(super) async fn change_one_method(
    conn: &mut AnyConnection,
    sql: &'static str,
    now: i64,
    id: &str,
    account: &str,
    change: FactorChange,
    by: ChangedBy,
) -> Result<bool, StoreError> {
    let changed = sqlx::query(sql).bind(now).bind(id).bind(account).fetch_all(&mut *conn).await.map_err(backend_error)?;
    append_history(conn, account, &changed, change, by, now).await?;
    Ok(!changed.is_empty())
}

/// Removes every method of the account (the owner enrols 2-step again), written to the method
/// history with `by`, in the caller's transaction.
pub(super) async fn remove_every_method(conn: &mut AnyConnection, account: &str, now: i64, by: ChangedBy) -> Result<(), StoreError> {
    let removed = sqlx::query(concat!(
        "UPDATE second_factors SET removed_at = $1, is_default = 0 WHERE account_id = $2 AND removed_at IS NULL RETURNING ",
        history_columns!()
    ))
    .bind(now)
    .bind(account)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend_error)?;
    append_history(conn, account, &removed, FactorChange::Removed, by, now).await
}

fn history_from_row(row: &AnyRow) -> Result<FactorHistoryEntry, StoreError> {
    let text = |column: &str| row.try_get::<String, _>(column).map_err(backend_error);
    let unknown = |what: &str, value: String| StoreError::Backend(format!("unknown {what} {value} in factor_history").into());
    let kind = text("kind")?;
    let change = text("change")?;
    let by = text("changed_by")?;
    Ok(FactorHistoryEntry {
        id: row.try_get("id").map_err(backend_error)?,
        factor_id: text("factor_id")?,
        kind: FactorKind::parse(&kind).ok_or_else(|| unknown("kind", kind.clone()))?,
        label: text("label")?,
        change: FactorChange::parse(&change).ok_or_else(|| unknown("change", change.clone()))?,
        by: ChangedBy::parse(&by).ok_or_else(|| unknown("changed_by", by.clone()))?,
        at: row.try_get("at").map_err(backend_error)?,
    })
}

#[async_trait]
impl FactorStore for SqlStore {
    async fn insert_factor(&self, f: &FactorRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO second_factors (id, account_id, kind, label, secret, is_default, confirmed_at, last_used_step, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&f.id)
        .bind(f.account_id.as_str())
        .bind(f.kind.as_str())
        .bind(&f.label)
        .bind(f.secret.expose())
        .bind(i64::from(f.is_default))
        .bind(f.confirmed_at)
        .bind(f.last_used_step)
        .bind(f.created_at)
        .execute(&self.pool)
        .await
        .map_err(backend_error)?;
        Ok(())
    }

    async fn factors_of(&self, account: &AccountId) -> Result<Vec<FactorRecord>, StoreError> {
        let sql = concat!(
            "SELECT ",
            factor_columns!(),
            " FROM second_factors WHERE account_id = $1 AND removed_at IS NULL ORDER BY created_at, id"
        );
        let rows = sqlx::query(sql).bind(account.as_str()).fetch_all(&self.pool).await.map_err(backend_error)?;
        rows.iter().map(factor_from_row).collect()
    }

    async fn confirm_factor(&self, account: &AccountId, id: &str, now: i64, by: ChangedBy) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let sql = concat!(
            "UPDATE second_factors SET confirmed_at = $1 WHERE id = $2 AND account_id = $3 AND removed_at IS NULL AND confirmed_at IS NULL RETURNING ",
            history_columns!()
        );
        let changed = change_one_method(&mut tx, sql, now, id, account.as_str(), FactorChange::Added, by).await?;
        // The first real method becomes the default.
        sqlx::query(
            "UPDATE second_factors SET is_default = 1 WHERE id = $1 AND kind <> 'recovery_code' AND NOT EXISTS \
             (SELECT 1 FROM second_factors d WHERE d.account_id = $2 AND d.is_default = 1 AND d.removed_at IS NULL)",
        )
        .bind(id)
        .bind(account.as_str())
        .execute(&mut *tx)
        .await
        .map_err(backend_error)?;
        tx.commit().await.map_err(backend_error)?;
        Ok(changed)
    }

    async fn remove_factor(&self, account: &AccountId, id: &str, now: i64, by: ChangedBy) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let changed = change_one_method(&mut tx, REMOVE_ONE_METHOD, now, id, account.as_str(), FactorChange::Removed, by).await?;
        sqlx::query("UPDATE recovery_codes SET used_at = $1 WHERE account_id = $2 AND used_at IS NULL AND EXISTS (SELECT 1 FROM second_factors f WHERE f.id = $3 AND f.kind = 'recovery_code')")
            .bind(now)
            .bind(account.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(backend_error)?;
        // Another confirmed method takes over as the default.
        sqlx::query(
            "UPDATE second_factors SET is_default = 1 WHERE id = (SELECT id FROM second_factors WHERE account_id = $1 AND removed_at IS NULL \
             AND confirmed_at IS NOT NULL AND kind <> 'recovery_code' ORDER BY created_at LIMIT 1) AND NOT EXISTS \
             (SELECT 1 FROM second_factors d WHERE d.account_id = $1 AND d.is_default = 1 AND d.removed_at IS NULL)",
        )
        .bind(account.as_str())
        .execute(&mut *tx)
        .await
        .map_err(backend_error)?;
        tx.commit().await.map_err(backend_error)?;
        Ok(changed)
    }

    async fn factor_history(&self, account: &AccountId, before: i64, limit: i64) -> Result<Vec<FactorHistoryEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, factor_id, kind, label, change, changed_by, at FROM factor_history \
             WHERE account_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(account.as_str())
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(backend_error)?;
        rows.iter().map(history_from_row).collect()
    }

    async fn set_default_factor(&self, account: &AccountId, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let exists = sqlx::query(
            "SELECT id FROM second_factors WHERE id = $1 AND account_id = $2 AND removed_at IS NULL AND confirmed_at IS NOT NULL AND kind <> 'recovery_code'",
        )
        .bind(id)
        .bind(account.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend_error)?;
        if exists.is_none() {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE second_factors SET is_default = CASE WHEN id = $1 THEN 1 ELSE 0 END WHERE account_id = $2 AND removed_at IS NULL",
        )
        .bind(id)
        .bind(account.as_str())
        .execute(&mut *tx)
        .await
        .map_err(backend_error)?;
        tx.commit().await.map_err(backend_error)?;
        Ok(true)
    }

    async fn advance_totp_step(&self, id: &str, step: i64) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE second_factors SET last_used_step = $1 WHERE id = $2 AND (last_used_step IS NULL OR last_used_step < $1)")
                .bind(step)
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(backend_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn replace_recovery_codes(
        &self,
        account: &AccountId,
        factor: &FactorRecord,
        hashes: &[String],
        now: i64,
        by: ChangedBy,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM recovery_codes WHERE account_id = $1")
            .bind(account.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend_error)?;
        for hash in hashes {
            sqlx::query("INSERT INTO recovery_codes (id, account_id, code_hash, created_at) VALUES ($1, $2, $3, $4)")
                .bind(uuid::Uuid::new_v4().to_string())
                .bind(account.as_str())
                .bind(hash)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(backend_error)?;
        }
        let added = sqlx::query(concat!(
            "INSERT INTO second_factors (id, account_id, kind, label, secret, is_default, confirmed_at, created_at) \
             VALUES ($1, $2, 'recovery_code', '', '', 0, $3, $3) ON CONFLICT (id) DO NOTHING RETURNING ",
            history_columns!()
        ))
        .bind(&factor.id)
        .bind(account.as_str())
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .map_err(backend_error)?;
        // A first set is a method added; a set in place of one is the same method renewed.
        let (change, row) = match added.as_slice() {
            [] => (
                FactorChange::Renewed,
                HistoryRow { id: factor.id.clone(), kind: FactorKind::RecoveryCode.as_str().to_owned(), label: String::new() },
            ),
            [row] => (FactorChange::Added, HistoryRow::read(row)?),
            _ => return Err(StoreError::Backend("one recovery-code method expected".into())),
        };
        append_rows(&mut tx, account.as_str(), &[row], change, by, now).await?;
        tx.commit().await.map_err(backend_error)
    }

    async fn use_recovery_code(&self, account: &AccountId, hash: &str, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE recovery_codes SET used_at = $1 WHERE account_id = $2 AND code_hash = $3 AND used_at IS NULL")
            .bind(now)
            .bind(account.as_str())
            .bind(hash)
            .execute(&self.pool)
            .await
            .map_err(backend_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn recovery_codes_left(&self, account: &AccountId) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM recovery_codes WHERE account_id = $1 AND used_at IS NULL")
            .bind(account.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(backend_error)?;
        row.try_get("n").map_err(backend_error)
    }

    async fn insert_otp(&self, otp: &NewOtp, message: &NewMessage) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE otp_codes SET used_at = $1 WHERE binding = $2 AND factor_id = $3 AND used_at IS NULL")
            .bind(otp.created_at)
            .bind(&otp.binding)
            .bind(&otp.factor_id)
            .execute(&mut *tx)
            .await
            .map_err(backend_error)?;
        sqlx::query("INSERT INTO otp_codes (id, binding, factor_id, code_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&otp.id)
            .bind(&otp.binding)
            .bind(&otp.factor_id)
            .bind(&otp.code_hash)
            .bind(otp.created_at)
            .bind(otp.expires_at)
            .execute(&mut *tx)
            .await
            .map_err(backend_error)?;
        insert_message(&mut tx, self.sealer.as_ref(), message).await?;
        tx.commit().await.map_err(backend_error)
    }

    async fn latest_otp(&self, binding: &str, factor_id: &str, now: i64) -> Result<Option<OtpRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, code_hash, attempts FROM otp_codes WHERE binding = $1 AND factor_id = $2 AND used_at IS NULL AND expires_at > $3 \
             ORDER BY created_at DESC LIMIT 1",
        )
        .bind(binding)
        .bind(factor_id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend_error)?;
        row.map(|r| {
            Ok(OtpRecord {
                id: r.try_get("id").map_err(backend_error)?,
                code_hash: r.try_get("code_hash").map_err(backend_error)?,
                attempts: r.try_get("attempts").map_err(backend_error)?,
            })
        })
        .transpose()
    }

    async fn claim_otp_attempt(&self, id: &str, max: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE otp_codes SET attempts = attempts + 1 WHERE id = $1 AND attempts < $2")
            .bind(id)
            .bind(max)
            .execute(&self.pool)
            .await
            .map_err(backend_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn consume_otp(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE otp_codes SET used_at = $1 WHERE id = $2 AND used_at IS NULL AND expires_at > $1")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend_error)?;
        Ok(done.rows_affected() == 1)
    }
}
