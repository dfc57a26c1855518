//! The keyring's rows, and the questions a rotation asks: what still needs a key, and which
//! sealed values are still under an older one (issue 13).
//!
//! A value names its key by a prefix: `<id>$` on stored hashes, `<id>.` on sealed values
//! (after `sealed:v1:` in the outbox); values of the original key carry none. The
//! statements below read that prefix with `substr` and compare it with `$1`, which is `''`
//! for the original key. They scan their tables: they run only while more than one key is
//! live (re-seal pass) or when an operator retires a key.

use super::{SqlStore, backend_error};
use async_trait::async_trait;
use doorman_core::keyring::{KeyUse, KeyringStore, SealedKind, SealedValue, StoredKey};
use doorman_core::store::StoreError;
use sqlx::Row;

/// The key id a stored hash in `$col` names, `''` for the original key's (NULL for none).
macro_rules! hash_key {
    ($col:literal) => {
        concat!("(CASE WHEN ", $col, " IS NULL THEN NULL WHEN substr(", $col, ", 9, 1) = '$' THEN substr(", $col, ", 1, 8) ELSE '' END)")
    };
}

/// The key id a sealed value in `$col` names: 8 characters from `$from`, when a dot
/// follows them at `$dot` (base64url has none), else `''` (the original key).
macro_rules! sealed_key {
    ($col:literal, $dot:literal, $from:literal) => {
        concat!(
            "(CASE WHEN ",
            $col,
            " IS NULL THEN NULL WHEN substr(",
            $col,
            ", ",
            $dot,
            ", 1) = '.' THEN substr(",
            $col,
            ", ",
            $from,
            ", 8) ELSE '' END)"
        )
    };
}

/// `(what, statement)`: each counts the live values under the key `$1` at time `$2`.
const USES: [(KeyUse, &str); 13] = [
    (
        KeyUse::TotpSecrets,
        concat!(
            "SELECT COUNT(*) AS n FROM second_factors WHERE kind = 'totp' AND removed_at IS NULL AND $2 = $2 AND ",
            sealed_key!("secret", "9", "1"),
            " = $1"
        ),
    ),
    (
        KeyUse::OutboxBodies,
        concat!(
            "SELECT COUNT(*) AS n FROM outbox WHERE $2 = $2 AND ((body_text LIKE 'sealed:v1:%' AND ",
            sealed_key!("body_text", "19", "11"),
            " = $1) OR (body_html LIKE 'sealed:v1:%' AND ",
            sealed_key!("body_html", "19", "11"),
            " = $1))"
        ),
    ),
    (KeyUse::Sessions, concat!("SELECT COUNT(*) AS n FROM sessions WHERE $2 = $2 AND ", hash_key!("id_hash"), " = $1")),
    (
        KeyUse::TrustedDevices,
        concat!("SELECT COUNT(*) AS n FROM trusted_devices WHERE expires_at > $2 AND ", hash_key!("id_hash"), " = $1"),
    ),
    (
        KeyUse::LinksAndCodes,
        concat!(
            "SELECT COUNT(*) AS n FROM recovery_tokens WHERE used_at IS NULL AND expires_at > $2 AND ",
            hash_key!("token_hash"),
            " = $1"
        ),
    ),
    (
        KeyUse::LinksAndCodes,
        concat!(
            "SELECT COUNT(*) AS n FROM recovery_tokens WHERE used_at IS NULL AND expires_at > $2 AND code_hash IS NOT NULL AND ",
            hash_key!("code_hash"),
            " = $1"
        ),
    ),
    (
        KeyUse::LinksAndCodes,
        concat!("SELECT COUNT(*) AS n FROM email_changes WHERE used_at IS NULL AND expires_at > $2 AND ", hash_key!("token_hash"), " = $1"),
    ),
    (
        KeyUse::LinksAndCodes,
        concat!("SELECT COUNT(*) AS n FROM otp_codes WHERE used_at IS NULL AND expires_at > $2 AND ", hash_key!("code_hash"), " = $1"),
    ),
    (
        KeyUse::LinksAndCodes,
        concat!(
            "SELECT COUNT(*) AS n FROM two_step_resets WHERE ended_at IS NULL AND $2 = $2 AND (",
            hash_key!("confirm_hash"),
            " = $1 OR ",
            hash_key!("cancel_hash"),
            " = $1 OR ",
            hash_key!("finish_hash"),
            " = $1)"
        ),
    ),
    (
        KeyUse::LinksAndCodes,
        concat!(
            "SELECT COUNT(*) AS n FROM support_actions WHERE status IN ('proposed', 'approved') AND cancel_hash IS NOT NULL AND $2 = $2 AND ",
            hash_key!("cancel_hash"),
            " = $1"
        ),
    ),
    (
        KeyUse::LinksAndCodes,
        concat!(
            "SELECT COUNT(*) AS n FROM recovery_requests WHERE status_hash IS NOT NULL AND status_expires_at > $2 AND ",
            hash_key!("status_hash"),
            " = $1"
        ),
    ),
    (
        KeyUse::LinksAndCodes,
        concat!(
            "SELECT COUNT(*) AS n FROM recovery_requests WHERE confirmed_at IS NULL AND expires_at > $2 AND ",
            hash_key!("code_hash"),
            " = $1"
        ),
    ),
    (
        KeyUse::RecoveryCodes,
        concat!("SELECT COUNT(*) AS n FROM recovery_codes WHERE used_at IS NULL AND $2 = $2 AND ", hash_key!("code_hash"), " = $1"),
    ),
];

const SEALED_TOTP: &str = concat!(
    "SELECT id, secret AS sealed FROM second_factors WHERE kind = 'totp' AND removed_at IS NULL AND ",
    sealed_key!("secret", "9", "1"),
    " = $1 LIMIT $2"
);
const SEALED_TEXT: &str = concat!(
    "SELECT id, body_text AS sealed FROM outbox WHERE body_text LIKE 'sealed:v1:%' AND ",
    sealed_key!("body_text", "19", "11"),
    " = $1 LIMIT $2"
);
const SEALED_HTML: &str = concat!(
    "SELECT id, body_html AS sealed FROM outbox WHERE body_html LIKE 'sealed:v1:%' AND ",
    sealed_key!("body_html", "19", "11"),
    " = $1 LIMIT $2"
);

/// The outbox's marker of a sealed body (see `outbox.rs`).
const SEALED_BODY: &str = "sealed:v1:";

#[async_trait]
impl KeyringStore for SqlStore {
    async fn stored_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        let rows = sqlx::query("SELECT id, wrapped, created_at, active_from, retired_at FROM keyring ORDER BY active_from, created_at, id")
            .fetch_all(&self.pool)
            .await
            .map_err(backend_error)?;
        rows.iter()
            .map(|row| {
                Ok(StoredKey {
                    id: row.try_get("id").map_err(backend_error)?,
                    wrapped: row.try_get("wrapped").map_err(backend_error)?,
                    created_at: row.try_get("created_at").map_err(backend_error)?,
                    active_from: row.try_get("active_from").map_err(backend_error)?,
                    retired_at: row.try_get("retired_at").map_err(backend_error)?,
                })
            })
            .collect()
    }

    async fn insert_key(&self, key: &StoredKey) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO keyring (id, wrapped, created_at, active_from, retired_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&key.id)
        .bind(key.wrapped.as_deref())
        .bind(key.created_at)
        .bind(key.active_from)
        .bind(key.retired_at)
        .execute(&self.pool)
        .await
        .map_err(backend_error)?;
        Ok(())
    }

    async fn retire_key(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE keyring SET retired_at = $1 WHERE id = $2 AND retired_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn key_uses(&self, id: &str, now: i64) -> Result<Vec<(KeyUse, i64)>, StoreError> {
        let mut uses: Vec<(KeyUse, i64)> = Vec::new();
        for (what, sql) in USES {
            let row = sqlx::query(sql).bind(id).bind(now).fetch_one(&self.pool).await.map_err(backend_error)?;
            let n: i64 = row.try_get("n").map_err(backend_error)?;
            match uses.iter_mut().find(|(u, _)| *u == what) {
                Some((_, total)) => *total += n,
                None => uses.push((what, n)),
            }
        }
        Ok(uses)
    }

    async fn sealed_under(&self, id: &str, limit: i64) -> Result<Vec<SealedValue>, StoreError> {
        let mut values = Vec::new();
        for (kind, sql) in
            [(SealedKind::TotpSecret, SEALED_TOTP), (SealedKind::OutboxText, SEALED_TEXT), (SealedKind::OutboxHtml, SEALED_HTML)]
        {
            let rows = sqlx::query(sql).bind(id).bind(limit).fetch_all(&self.pool).await.map_err(backend_error)?;
            for row in &rows {
                let sealed: String = row.try_get("sealed").map_err(backend_error)?;
                let sealed = match kind {
                    SealedKind::TotpSecret => sealed,
                    SealedKind::OutboxText | SealedKind::OutboxHtml => sealed.strip_prefix(SEALED_BODY).unwrap_or(&sealed).to_owned(),
                };
                values.push(SealedValue { kind, row_id: row.try_get("id").map_err(backend_error)?, sealed });
            }
        }
        values.truncate(usize::try_from(limit).unwrap_or(0));
        Ok(values)
    }

    async fn replace_sealed(&self, value: &SealedValue, resealed: &str) -> Result<bool, StoreError> {
        let (sql, old, new) = match value.kind {
            SealedKind::TotpSecret => {
                ("UPDATE second_factors SET secret = $1 WHERE id = $2 AND secret = $3", value.sealed.clone(), resealed.to_owned())
            }
            SealedKind::OutboxText => (
                "UPDATE outbox SET body_text = $1 WHERE id = $2 AND body_text = $3",
                format!("{SEALED_BODY}{}", value.sealed),
                format!("{SEALED_BODY}{resealed}"),
            ),
            SealedKind::OutboxHtml => (
                "UPDATE outbox SET body_html = $1 WHERE id = $2 AND body_html = $3",
                format!("{SEALED_BODY}{}", value.sealed),
                format!("{SEALED_BODY}{resealed}"),
            ),
        };
        let done = sqlx::query(sql).bind(new).bind(&value.row_id).bind(old).execute(&self.pool).await.map_err(backend_error)?;
        Ok(done.rows_affected() == 1)
    }
}
