use super::batch::Statement;
use super::{Backend, SqlStore, backend_error};
use async_trait::async_trait;
use doorman_core::store::{StoreError, ThrottleStore};
use doorman_core::throttle::{EventCount, Refusal, ThrottleKey, refusal};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use std::collections::HashMap;

fn count_from_row(row: &AnyRow) -> Result<EventCount, StoreError> {
    Ok(EventCount {
        failures: row.try_get("failures").map_err(backend_error)?,
        window_start: row.try_get("window_start").map_err(backend_error)?,
        last_failure: row.try_get("last_failure").map_err(backend_error)?,
    })
}

/// One more attempt under a key, starting a new window where the old one is over. `$3` is
/// the oldest window start still inside the key's window. A macro for `concat!`.
macro_rules! count_one {
    () => {
        "INSERT INTO rate_counters (key, failures, window_start, last_failure) VALUES ($1, 1, $2, $2) \
         ON CONFLICT (key) DO UPDATE SET \
           failures = CASE WHEN rate_counters.window_start <= $3 THEN 1 ELSE rate_counters.failures + 1 END, \
           window_start = CASE WHEN rate_counters.window_start <= $3 THEN $2 ELSE rate_counters.window_start END, \
           last_failure = $2"
    };
}

/// `$first, $first+1, ...` for `n` values: the numbered placeholders of a list.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// `keys` sorted by name, each once: the order every claim and settle locks rows in, so that
/// two of them never wait for each other in a circle.
fn lock_order(keys: &[ThrottleKey]) -> Vec<&ThrottleKey> {
    let mut sorted: Vec<&ThrottleKey> = keys.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    sorted.dedup_by(|a, b| a.key == b.key);
    sorted
}

/// Count, then compare, inside the caller's transaction (S3.7, S3.8): refuses when one of
/// `keys` is over its limit (counting nothing), else counts one attempt under every key. The
/// keys' rows stay locked until the transaction ends, so guesses on any number of replicas are
/// admitted one after another. Two statements whatever the number of keys (a login names six).
pub(super) async fn claim_in(conn: &mut AnyConnection, keys: &[ThrottleKey], now: i64) -> Result<Option<Refusal>, StoreError> {
    let sorted = lock_order(keys);
    if sorted.is_empty() {
        return Ok(None);
    }
    // One statement creates the rows that are missing, locks the others (the no-op update
    // takes the row lock on PostgreSQL, in the order of the list; the first write takes
    // SQLite's write lock), and returns the counts. An insert-if-missing, then a select,
    // failed when a success cleared the row in between: found under a burst of logins.
    let lock = format!(
        "INSERT INTO rate_counters (key, failures, window_start, last_failure) VALUES {} \
         ON CONFLICT (key) DO UPDATE SET key = excluded.key RETURNING key, failures, window_start, last_failure",
        (2..sorted.len() + 2).map(|i| format!("(${i}, 0, $1, 0)")).collect::<Vec<_>>().join(", ")
    );
    // Only numbered placeholders are written into the text; every value is bound.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(lock)).bind(now);
    for key in &sorted {
        query = query.bind(&key.key);
    }
    let rows = query.fetch_all(&mut *conn).await.map_err(backend_error)?;
    let counts = counts_by_key(&rows)?;
    if let Some(refusal) = refusal(sorted.iter().copied(), |key| counts.get(key).copied(), now) {
        return Ok(Some(refusal));
    }
    // Every row is ours now: one update counts the attempt under each, each key starting a
    // new window where its own is over (`$2k+1` is the key, `$2k+2` its oldest window start
    // still inside the window).
    let n = sorted.len();
    let window_over = format!(
        "window_start <= CASE key {} END",
        (0..n).map(|k| format!("WHEN ${} THEN ${}", 2 * k + 2, 2 * k + 3)).collect::<Vec<_>>().join(" ")
    );
    let count = format!(
        "UPDATE rate_counters SET failures = CASE WHEN {window_over} THEN 1 ELSE failures + 1 END, \
         window_start = CASE WHEN {window_over} THEN $1 ELSE window_start END, last_failure = $1 \
         WHERE key IN ({})",
        (0..n).map(|k| format!("${}", 2 * k + 2)).collect::<Vec<_>>().join(", ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(count)).bind(now);
    for key in &sorted {
        query = query.bind(&key.key).bind(now - key.window());
    }
    query.execute(&mut *conn).await.map_err(backend_error)?;
    Ok(None)
}

/// The rows' counts by key.
fn counts_by_key(rows: &[AnyRow]) -> Result<HashMap<String, EventCount>, StoreError> {
    rows.iter().map(|row| Ok((row.try_get::<String, _>("key").map_err(backend_error)?, count_from_row(row)?))).collect()
}

/// A success's keys in one statement (a login settles six). A cleared row is set to what a
/// missing one counts as (no failures, its window over), and pruned with the others. On
/// PostgreSQL the rows are locked in key order first, the order [`claim_in`] locks them in,
/// so a settle and a claim never wait for each other in a circle; SQLite has one writer and
/// no row locks.
pub(super) fn settle_statement(backend: Backend, cleared: &[String], released: &[String]) -> Option<Statement> {
    if cleared.is_empty() && released.is_empty() {
        return None;
    }
    // `$1..` are the cleared keys, then the released ones; the cleared list is never empty
    // in SQL (a key no row has stands in), so one statement text serves.
    let cleared_list = if cleared.is_empty() { "''".to_owned() } else { placeholders(1, cleared.len()) };
    // In byte order (`COLLATE "C"`), the order of Rust's strings that claims lock in: a
    // database created with a language's collation (en_US.UTF-8 puts "ip:" before "ip+login:")
    // would otherwise lock the same rows in another order.
    let lock_order = backend.pick("", " ORDER BY key COLLATE \"C\" FOR UPDATE");
    let statement = format!(
        "UPDATE rate_counters SET \
           failures = CASE WHEN key IN ({cleared_list}) OR failures <= 0 THEN 0 ELSE failures - 1 END, \
           window_start = CASE WHEN key IN ({cleared_list}) THEN 0 ELSE window_start END, \
           last_failure = CASE WHEN key IN ({cleared_list}) THEN 0 ELSE last_failure END \
         WHERE key IN (SELECT key FROM rate_counters WHERE key IN ({}){lock_order})",
        placeholders(1, cleared.len() + released.len())
    );
    Some(cleared.iter().chain(released).fold(Statement::new(statement), |s, key| s.text(key)))
}

#[async_trait]
impl ThrottleStore for SqlStore {
    async fn claim_attempt(&self, keys: &[ThrottleKey], now: i64) -> Result<Option<Refusal>, StoreError> {
        let mut tx = self.begin_write().await?;
        let refused = claim_in(&mut tx, keys, now).await?;
        // A refusal wrote nothing worth keeping: rolled back, so no commit is waited for.
        if refused.is_none() {
            tx.commit().await.map_err(backend_error)?;
        } else {
            tx.rollback().await.map_err(backend_error)?;
        }
        Ok(refused)
    }

    async fn count_attempt(&self, key: &ThrottleKey, now: i64) -> Result<i64, StoreError> {
        let row = sqlx::query(concat!(count_one!(), " RETURNING failures"))
            .bind(&key.key)
            .bind(now)
            .bind(now - key.window())
            .fetch_one(&self.pool)
            .await
            .map_err(backend_error)?;
        row.try_get("failures").map_err(backend_error)
    }

    async fn release_attempt(&self, keys: &[String]) -> Result<(), StoreError> {
        self.settle_attempts(&[], keys).await
    }

    async fn clear_events(&self, keys: &[String]) -> Result<(), StoreError> {
        self.settle_attempts(keys, &[]).await
    }

    async fn settle_attempts(&self, cleared: &[String], released: &[String]) -> Result<(), StoreError> {
        self.run_together(settle_statement(self.backend, cleared, released).into_iter().collect()).await
    }
}
