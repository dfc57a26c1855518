use super::batch::Statement;
use super::{SqlStore, backend_error};
use async_trait::async_trait;
use doorman_core::store::{StoreError, ThrottleStore};
use doorman_core::throttle::{EventCount, Refusal, ThrottleKey, refusal};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use std::collections::HashMap;

/// One more attempt under a key, starting a new window where the old one is over. `$3` is
/// the oldest window start still inside the key's window, `$4` the hour of `$2`. A macro for
/// `concat!`.
macro_rules! count_one {
    () => {
        "INSERT INTO rate_counters (key, failures, window_start, last_failure, touched_hour) VALUES ($1, 1, $2, $2, $4) \
         ON CONFLICT (key) DO UPDATE SET \
           failures = CASE WHEN rate_counters.window_start <= $3 THEN 1 ELSE rate_counters.failures + 1 END, \
           window_start = CASE WHEN rate_counters.window_start <= $3 THEN $2 ELSE rate_counters.window_start END, \
           last_failure = $2, \
           touched_hour = $4"
    };
}

/// The hour a counter was last counted in, which retention finds old counters by: it changes
/// once an hour, so a count leaves the table's indexes as they are, and PostgreSQL can write
/// the row's new version in place (migration 20261201000100).
fn hour_of(now: i64) -> i64 {
    now.div_euclid(3600)
}

/// `keys` sorted by name, each once: the order every claim and settle locks rows in, so that
/// two of them never wait for each other in a circle.
fn lock_order(keys: &[ThrottleKey]) -> Vec<&ThrottleKey> {
    let mut sorted: Vec<&ThrottleKey> = keys.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    sorted.dedup_by(|a, b| a.key == b.key);
    sorted
}

/// Count, then compare, inside the caller's transaction (S3.7, S3.8): counts one attempt under
/// every key, and refuses when one of `keys` was over its limit before (the caller then rolls
/// the count back). One statement whatever the number of keys (a login names five): it
/// creates the rows that are missing and counts under the others, each key starting a new
/// window where its own is over, and returns what each row held before the attempt. The rows
/// stay locked until the transaction ends, so guesses on any number of replicas are admitted
/// one after another, the later ones seeing the earlier ones' counts; PostgreSQL locks them in
/// the order of the list, the key order every claim and settle uses, and SQLite's first write
/// takes its one write lock.
pub(super) async fn claim_in(conn: &mut AnyConnection, keys: &[ThrottleKey], now: i64) -> Result<Option<Refusal>, StoreError> {
    let sorted = lock_order(keys);
    if sorted.is_empty() {
        return Ok(None);
    }
    // `$1` is now; `$2k+2` the k-th key, `$2k+3` its oldest window start still inside its
    // window; `$2n+2` the hour of now.
    // Counting in the same write that locks the row, instead of locking with a no-op update
    // and counting in a second one, halves the row versions a login writes (issue 12,
    // eleventh pass); `previous_failure` keeps the time the limits' delays run from.
    let n = sorted.len();
    let hour = format!("${}", 2 * n + 2);
    let window_over = format!(
        "rate_counters.window_start <= CASE rate_counters.key {} END",
        (0..n).map(|k| format!("WHEN ${} THEN ${}", 2 * k + 2, 2 * k + 3)).collect::<Vec<_>>().join(" ")
    );
    let count = format!(
        "INSERT INTO rate_counters (key, failures, window_start, last_failure, previous_failure, touched_hour) VALUES {} \
         ON CONFLICT (key) DO UPDATE SET \
           failures = CASE WHEN {window_over} THEN 1 ELSE rate_counters.failures + 1 END, \
           window_start = CASE WHEN {window_over} THEN $1 ELSE rate_counters.window_start END, \
           previous_failure = rate_counters.last_failure, \
           last_failure = $1, \
           touched_hour = {hour} \
         RETURNING key, failures, window_start, previous_failure",
        (0..n).map(|k| format!("(${}, 1, $1, $1, 0, {hour})", 2 * k + 2)).collect::<Vec<_>>().join(", ")
    );
    // Only numbered placeholders are written into the text; every value is bound.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(count)).bind(now);
    for key in &sorted {
        query = query.bind(&key.key).bind(now - key.window());
    }
    let rows = query.bind(hour_of(now)).fetch_all(&mut *conn).await.map_err(backend_error)?;
    let before = counts_before(&rows)?;
    Ok(refusal(sorted.iter().copied(), |key| before.get(key).copied(), now))
}

/// What each counted row held before the attempt: one failure fewer, the same window (a window
/// that started over, or a new row, holds no failure before, which refuses nothing whatever
/// its window), and the failure before this one.
fn counts_before(rows: &[AnyRow]) -> Result<HashMap<String, EventCount>, StoreError> {
    rows.iter()
        .map(|row| {
            let count = EventCount {
                failures: row.try_get::<i64, _>("failures").map_err(backend_error)? - 1,
                window_start: row.try_get("window_start").map_err(backend_error)?,
                last_failure: row.try_get("previous_failure").map_err(backend_error)?,
            };
            Ok((row.try_get::<String, _>("key").map_err(backend_error)?, count))
        })
        .collect()
}

/// A success's keys in one statement (a login settles six). A cleared row is set to what a
/// missing one counts as (no failures, its window over), and pruned with the others.
///
/// Written as an upsert, as [`claim_in`] counts, so that no plan is chosen: PostgreSQL finds
/// each row through the primary key (the conflict's arbiter) and locks the rows in the order
/// of the list, the key order every claim locks in, so a settle and a claim never wait for
/// each other in a circle. As `UPDATE ... WHERE key IN (SELECT ... FOR UPDATE)` it was planned
/// once per connection, while the table was small or not yet analysed, as sequential scans of
/// the whole table, which then grew by two rows a login: on a fresh server most of a login's
/// PostgreSQL time (issue 12, thirteenth pass). A key whose row is gone (pruned since its
/// claim) gets the row a missing key stands for. SQLite has one writer and no row locks.
pub(super) fn settle_statement(cleared: &[String], released: &[String]) -> Option<Statement> {
    let mut keys: Vec<(&String, bool)> = cleared.iter().map(|k| (k, true)).chain(released.iter().map(|k| (k, false))).collect();
    // In byte order, as claims lock; a key both cleared and released is cleared.
    keys.sort_by(|a, b| a.0.cmp(b.0).then(b.1.cmp(&a.1)));
    keys.dedup_by(|a, b| a.0 == b.0);
    if keys.is_empty() {
        return None;
    }
    // `$k` is the k-th key; the cleared ones are named again in a list (never empty in SQL: a
    // key no row has stands in).
    let cleared_list: Vec<String> = keys.iter().enumerate().filter(|(_, (_, c))| *c).map(|(i, _)| format!("${}", i + 1)).collect();
    let cleared_list = if cleared_list.is_empty() { "''".to_owned() } else { cleared_list.join(", ") };
    let statement = format!(
        "INSERT INTO rate_counters (key, failures, window_start, last_failure, previous_failure) VALUES {} \
         ON CONFLICT (key) DO UPDATE SET \
           failures = CASE WHEN rate_counters.key IN ({cleared_list}) OR rate_counters.failures <= 0 THEN 0 ELSE rate_counters.failures - 1 END, \
           window_start = CASE WHEN rate_counters.key IN ({cleared_list}) THEN 0 ELSE rate_counters.window_start END, \
           last_failure = CASE WHEN rate_counters.key IN ({cleared_list}) THEN 0 ELSE rate_counters.last_failure END",
        (1..=keys.len()).map(|k| format!("(${k}, 0, 0, 0, 0)")).collect::<Vec<_>>().join(", ")
    );
    Some(keys.iter().fold(Statement::new(statement), |s, (key, _)| s.text(key.as_str())))
}

/// Claims in `tx` and ends it: committed when the attempt is let through; rolled back when it
/// is refused, since a refusal wrote nothing worth keeping, so no commit is waited for.
async fn claim_and_end(
    mut tx: sqlx::Transaction<'static, sqlx::Any>,
    keys: &[ThrottleKey],
    now: i64,
) -> Result<Option<Refusal>, StoreError> {
    let refused = claim_in(&mut tx, keys, now).await?;
    if refused.is_none() {
        tx.commit().await.map_err(backend_error)?;
    } else {
        tx.rollback().await.map_err(backend_error)?;
    }
    Ok(refused)
}

#[async_trait]
impl ThrottleStore for SqlStore {
    async fn claim_attempt(&self, keys: &[ThrottleKey], now: i64) -> Result<Option<Refusal>, StoreError> {
        claim_and_end(self.begin_write().await?, keys, now).await
    }

    async fn claim_attempt_answered_after_a_write(&self, keys: &[ThrottleKey], now: i64) -> Result<Option<Refusal>, StoreError> {
        claim_and_end(self.begin_write_flushed_later().await?, keys, now).await
    }

    async fn count_attempt(&self, key: &ThrottleKey, now: i64) -> Result<i64, StoreError> {
        let row = sqlx::query(concat!(count_one!(), " RETURNING failures"))
            .bind(&key.key)
            .bind(now)
            .bind(now - key.window())
            .bind(hour_of(now))
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
        self.run_together(settle_statement(cleared, released).into_iter().collect()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_settle_names_each_key_once_in_the_order_claims_lock_in() {
        let cleared = ["login:ann".to_owned(), "ip+login:10.0.0.1:ann".to_owned(), "account:7".to_owned()];
        let released = ["subnet:10.0.0.0/24".to_owned(), "ip:10.0.0.1".to_owned(), "account:7".to_owned()];
        let settle = settle_statement(&cleared, &released).expect("keys to settle");
        // Byte order, as `lock_order` sorts a claim's keys ('+' before ':'), each key once.
        assert_eq!(settle.texts(), ["account:7", "ip+login:10.0.0.1:ann", "ip:10.0.0.1", "login:ann", "subnet:10.0.0.0/24"].map(Some));
        // Found through the key's index, whatever the table's statistics: an upsert, not a scan.
        assert!(settle.sql().starts_with("INSERT INTO rate_counters") && settle.sql().contains("ON CONFLICT (key) DO UPDATE"));
        // A key that is both cleared and released is cleared: $1 (account:7), $2 and $4.
        assert!(settle.sql().contains("rate_counters.key IN ($1, $2, $4)"), "{}", settle.sql());
        assert!(settle_statement(&[], &[]).is_none());
        assert!(settle_statement(&[], &released).unwrap().sql().contains("rate_counters.key IN ('')"));
    }
}
