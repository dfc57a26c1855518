use super::{SqlStore, backend_error};
use async_trait::async_trait;
use doorman_core::account::{Account, AccountId, Country, EmailAddress, UserType, Username};
use doorman_core::store::{AccountStore, LoginLookup, NewAccount, StoreError};
use doorman_core::throttle::EventCount;
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

/// The columns [`account_from_row`] reads, for `concat!` (queries stay `&'static str`).
macro_rules! account_columns {
    () => {
        "id, username, email, user_type, country, created_at, updated_at"
    };
}
pub(crate) use account_columns;

/// Rows are ours, but a value that no longer parses is still reported, never trusted.
fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("stored account has an invalid {what}").into())
}

pub(crate) fn account_from_row(row: &AnyRow) -> Result<Account, StoreError> {
    let get_str = |name: &str| row.try_get::<String, _>(name).map_err(backend_error);
    let get_time = |name: &str| {
        row.try_get::<i64, _>(name).map_err(backend_error).and_then(|t| OffsetDateTime::from_unix_timestamp(t).map_err(|_| corrupt(name)))
    };
    Ok(Account {
        id: AccountId::from_stored(get_str("id")?),
        username: Username::parse(&get_str("username")?).map_err(|_| corrupt("username"))?,
        email: EmailAddress::parse(&get_str("email")?).map_err(|_| corrupt("email"))?,
        user_type: UserType::parse(&get_str("user_type")?).map_err(|_| corrupt("user type"))?,
        country: Country::parse(&get_str("country")?).map_err(|_| corrupt("country"))?,
        created_at: get_time("created_at")?,
        updated_at: get_time("updated_at")?,
    })
}

/// Unique indexes keep usernames and emails unique; their violations become user errors.
fn map_unique(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e
        && db.is_unique_violation()
    {
        let text = format!("{} {}", db.message(), db.constraint().unwrap_or_default());
        if text.contains("username") {
            return StoreError::UsernameTaken;
        }
        if text.contains("email") {
            return StoreError::EmailTaken;
        }
    }
    backend_error(e)
}

impl SqlStore {
    /// The one account `sql` selects by its id (`$1`), if any.
    async fn account_where(&self, sql: &'static str, id: &AccountId) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query(sql).bind(id.as_str()).fetch_optional(&self.pool).await.map_err(backend_error)?;
        row.as_ref().map(account_from_row).transpose()
    }
}

#[async_trait]
impl AccountStore for SqlStore {
    async fn insert_account(&self, a: NewAccount) -> Result<Account, StoreError> {
        let sql = concat!(
            "INSERT INTO accounts (id, username, username_key, email, user_type, country, password_hash, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING ",
            account_columns!()
        );
        let row = sqlx::query(sql)
            .bind(a.id.as_str())
            .bind(a.username.as_str())
            .bind(a.username.key())
            .bind(a.email.as_str())
            .bind(a.user_type.as_str())
            .bind(a.country.as_str())
            .bind(&a.password_hash)
            .bind(a.now)
            .fetch_one(&self.pool)
            .await
            .map_err(map_unique)?;
        account_from_row(&row)
    }

    async fn find_for_login(&self, login_key: &str) -> Result<Option<(Account, String)>, StoreError> {
        // Two indexed lookups; a username never contains '@', so at most one row matches.
        let sql = concat!("SELECT ", account_columns!(), ", password_hash FROM accounts WHERE username_key = $1 OR email = $1 LIMIT 1");
        let row = sqlx::query(sql).bind(login_key).fetch_optional(&self.pool).await.map_err(backend_error)?;
        row.map(|row| Ok((account_from_row(&row)?, row.try_get::<String, _>("password_hash").map_err(backend_error)?))).transpose()
    }

    async fn find_for_login_with_counts(
        &self,
        login_key: &str,
        counter_keys: &[&str],
        account_key_prefix: &str,
    ) -> Result<LoginLookup, StoreError> {
        // One row whatever is found: the account (or NULLs) beside each key's counter (or
        // NULLs), every part an indexed lookup of its own. `c0` is the account's own key.
        let columns: String = (0..=counter_keys.len())
            .map(|k| format!(", c{k}.key AS key{k}, c{k}.failures AS failures{k}, c{k}.window_start AS window_start{k}, c{k}.last_failure AS last_failure{k}"))
            .collect();
        let joins: String = (1..=counter_keys.len()).map(|k| format!(" LEFT JOIN rate_counters c{k} ON c{k}.key = ${}", k + 2)).collect();
        // The account's columns unqualified: no other table here has columns of those names.
        let sql = format!(
            concat!(
                "SELECT ",
                account_columns!(),
                ", password_hash{columns} FROM (SELECT 1 AS one) AS base ",
                "LEFT JOIN accounts a ON a.username_key = $1 OR a.email = $1 LEFT JOIN rate_counters c0 ON c0.key = $2 || a.id{joins}"
            ),
            columns = columns,
            joins = joins
        );
        // Only numbered placeholders are written into the text; every value is bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(login_key).bind(account_key_prefix);
        for key in counter_keys {
            query = query.bind(*key);
        }
        // A username never contains '@', so at most one account matches.
        let Some(row) = query.fetch_optional(&self.pool).await.map_err(backend_error)? else { return Ok(LoginLookup::default()) };
        let found = match row.try_get::<Option<String>, _>("id").map_err(backend_error)? {
            Some(_) => Some((account_from_row(&row)?, row.try_get::<String, _>("password_hash").map_err(backend_error)?)),
            None => None,
        };
        let mut counts = Vec::new();
        for k in 0..=counter_keys.len() {
            let number = |name: &str| row.try_get::<Option<i64>, _>(format!("{name}{k}").as_str()).map_err(backend_error);
            let key = row.try_get::<Option<String>, _>(format!("key{k}").as_str()).map_err(backend_error)?;
            if let (Some(key), Some(failures), Some(window_start), Some(last_failure)) =
                (key, number("failures")?, number("window_start")?, number("last_failure")?)
            {
                counts.push((key, EventCount { failures, window_start, last_failure }));
            }
        }
        Ok(LoginLookup { found, counts })
    }

    async fn get_account(&self, id: &AccountId) -> Result<Option<Account>, StoreError> {
        self.account_where(concat!("SELECT ", account_columns!(), " FROM accounts WHERE id = $1"), id).await
    }

    async fn get_unlocked_account(&self, id: &AccountId) -> Result<Option<Account>, StoreError> {
        let sql = concat!(
            "SELECT ",
            account_columns!(),
            " FROM accounts WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM account_locks WHERE account_id = $1)"
        );
        self.account_where(sql, id).await
    }

    async fn set_password_hash(&self, id: &AccountId, hash: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE accounts SET password_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(hash)
            .bind(now)
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(backend_error)?;
        Ok(())
    }
}
