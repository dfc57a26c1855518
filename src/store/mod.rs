//! Storage: the domain's store traits implemented with sqlx on SQLite and PostgreSQL.
//!
//! One implementation serves both backends through sqlx's `Any` driver: the SQL is written
//! once in the dialect both accept (`$1` placeholders, `ON CONFLICT`, `RETURNING`, times as
//! BIGINT Unix seconds), checked at run time, and the same behaviour tests run against
//! both. Statement text is written in the source: column lists that several statements
//! share are macros joined with `concat!`, and where the dialects differ (row locks)
//! [`Backend::pick`] chooses between two literals. Only numbered placeholders are ever
//! added at run time (lists of keys, several rows, several writes joined into one PostgreSQL
//! statement by [`batch`]); every value is bound. Migrations are
//! written once in `migrations/common/` when both databases accept the SQL, and per
//! backend only where it differs (see [`migrations`]).

mod accounts;
mod activity;
mod approvals;
mod audit;
mod batch;
mod compromise;
mod content;
mod delivery_failures;
mod devices;
mod email_change;
mod factors;
mod keyring;
pub mod migrations;
mod outbox;
mod recovery;
mod recovery_requests;
mod retention;
mod sessions;
mod sqlite_waits;
mod support;
mod support_actions;
mod throttle;
mod two_step_reset;

use async_trait::async_trait;
use doorman_core::store::{SharedStore, StoreError};
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::{Connection, Executor};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The statement written for this backend, where the two dialects differ.
    pub(crate) fn pick(self, sqlite: &'static str, postgres: &'static str) -> &'static str {
        match self {
            Backend::Sqlite => sqlite,
            Backend::Postgres => postgres,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
    /// Seals message bodies in the outbox (they hold links and codes until sent, S1.2).
    sealer: Option<doorman_core::keyring::Keyring>,
}

pub(crate) fn backend_error(e: sqlx::Error) -> StoreError {
    pool_health::failed();
    StoreError::Backend(Box::new(e))
}

/// When a pooled connection is checked before use. sqlx's default pings every idle
/// connection before handing it out: one more round trip per statement on PostgreSQL, and
/// one more hand-off to the connection's thread and back on SQLite, which in the load
/// benchmark was a large share of a login's database time (issue 12). A connection is
/// checked here only when it has been idle a while, or when any statement failed in the
/// last minute (a restarted server leaves every pooled connection broken: those are then
/// found and replaced before a request meets them, as before, issue 13).
mod pool_health {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    /// A connection idle this long is checked before use.
    pub const IDLE_CHECK: Duration = Duration::from_secs(10);
    /// After a failed statement, every connection is checked before use for this long.
    const SUSPECT_FOR_MS: u64 = 60_000;

    /// Unix milliseconds of the last failed statement in this process (0: none).
    static LAST_FAILURE_MS: AtomicU64 = AtomicU64::new(0);

    fn now_ms() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
    }

    pub fn failed() {
        LAST_FAILURE_MS.store(now_ms(), Ordering::Relaxed);
    }

    /// Whether a connection idle for `idle_for` should be pinged before use.
    pub fn check_before_use(idle_for: Duration) -> bool {
        should_check(idle_for, LAST_FAILURE_MS.load(Ordering::Relaxed), now_ms())
    }

    fn should_check(idle_for: Duration, last_failure_ms: u64, now_ms: u64) -> bool {
        idle_for >= IDLE_CHECK || (last_failure_ms != 0 && now_ms.saturating_sub(last_failure_ms) < SUSPECT_FOR_MS)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn connections_are_checked_when_idle_long_or_after_a_failure() {
            let now = 1_800_000_000_000;
            let busy = Duration::from_millis(3);
            assert!(!should_check(busy, 0, now), "a busy pool with no failure is not pinged");
            assert!(should_check(IDLE_CHECK, 0, now), "a connection idle 10 s is");
            assert!(should_check(busy, now - 59_000, now), "a failure a minute ago makes every use checked");
            assert!(!should_check(busy, now - 61_000, now), "and no longer after that");
        }
    }
}

impl SqlStore {
    /// Connects, creating the SQLite file's folder when needed.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with_pool(url, None).await
    }

    /// [`SqlStore::connect`] with at most `pool` connections (`DOORMAN_DATABASE_POOL`), or
    /// [`default_pool_size`] when `None`.
    pub async fn connect_with_pool(url: &str, pool: Option<u32>) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        sqlite_waits::register();
        let backend = if url.starts_with("sqlite:") { Backend::Sqlite } else { Backend::Postgres };
        if backend == Backend::Sqlite
            && let Some(parent) = sqlite_path(url).and_then(|p| p.parent().map(|p| p.to_path_buf()))
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(&parent).map_err(|e| StoreError::Backend(Box::new(e)))?;
        }
        let pool = AnyPoolOptions::new()
            .max_connections(pool.unwrap_or_else(|| default_pool_size(url)))
            // While the database is down, a request waits this long for a connection, then
            // answers 503 `unavailable` (issue 13): long enough for a burst, short enough that
            // clients and balancers see the outage instead of a hang.
            .acquire_timeout(Duration::from_secs(5))
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if pool_health::check_before_use(meta.idle_for) {
                        // A broken connection is closed and another one taken.
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers and one writer work at once; the busy timeout makes
                        // concurrent writers wait instead of failing, and the short busy waits
                        // (which replace it where they could be registered) wait less.
                        conn.execute("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;").await?;
                        if let Err(e) = conn.execute(sqlite_waits::INSTALL).await {
                            tracing::warn!(error = %e, "SQLite's short busy waits are not installed; writers wait with the busy timeout");
                        }
                    }
                    Ok(())
                })
            })
            // A SQLite connection that comes back still inside a transaction, by sqlx's count,
            // is closed rather than reused. That happens when the disk is full (issue 13):
            // SQLite rolls a failed COMMIT back by itself, sqlx's ROLLBACK then fails, and its
            // count stays at one, so the connection's next transaction would open with a
            // SAVEPOINT that a rollback leaves open, holding the write lock for good (every
            // other writer then waits its busy timeout and fails). The ping first runs any
            // rollback still queued by a dropped transaction.
            .after_release(move |conn, _meta| {
                Box::pin(async move {
                    // The count is read without a round trip; only a connection that still
                    // counts a transaction is pinged (which runs a queued rollback) and read again.
                    if backend != Backend::Sqlite || !conn.is_in_transaction() {
                        return Ok(true);
                    }
                    conn.ping().await?;
                    let sound = !conn.is_in_transaction();
                    if !sound {
                        tracing::warn!("closing a database connection left inside a transaction (after a failed commit?)");
                    }
                    Ok(sound)
                })
            })
            .connect(url)
            .await
            .map_err(backend_error)?;
        Ok(Self { pool, backend, sealer: None })
    }

    /// Message bodies written from now on are encrypted under the keyring's signing key
    /// until they are sent, and opened under the key they name.
    pub fn with_sealing_key(mut self, key: doorman_core::keyring::Keyring) -> Self {
        self.sealer = Some(key);
        self
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Begins a transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`, waiting in the busy handler like any writer): a transaction that
    /// read first and wrote later would otherwise fail at once with `SQLITE_BUSY` whenever
    /// another connection had written in between, which the worker's jobs, now run side by
    /// side (issue 12), made likely.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
        .map_err(backend_error)
    }

    /// [`SqlStore::begin_write`] whose commit does not wait for the disk: on PostgreSQL,
    /// `synchronous_commit` is off for this transaction only (sent with its `BEGIN`, no round
    /// trip more); the next commit that waits writes it to disk too. SQLite, with
    /// `synchronous = NORMAL` in WAL mode, waits for no disk at commit anyway. Only for writes
    /// whose caller commits another write before it answers.
    pub(crate) async fn begin_write_flushed_later(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        match self.backend {
            Backend::Sqlite => return self.begin_write().await,
            Backend::Postgres => self.pool.begin_with("BEGIN; SET LOCAL synchronous_commit = off").await,
        }
        .map_err(backend_error)
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Applies the backend's migrations ([`migrations::migrator`]); safe to run on every
    /// start and from several replicas at once (sqlx takes a lock on PostgreSQL).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = migrations::migrator(self.backend).map_err(|e| StoreError::Backend(Box::new(e)))?;
        migrator.run(&self.pool).await.map_err(|e| StoreError::Backend(Box::new(e)))
    }
}

/// Connections a process keeps at most when `DOORMAN_DATABASE_POOL` is unset: 8 on SQLite
/// (one writer at a time; more connections only take turns), 16 on PostgreSQL.
pub fn default_pool_size(url: &str) -> u32 {
    if url.starts_with("sqlite:") { 8 } else { 16 }
}

fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
}

#[async_trait]
impl SharedStore for SqlStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ()).map_err(backend_error)
    }
}

#[cfg(test)]
mod tests {
    use super::sqlite_path;

    #[test]
    fn sqlite_paths_are_read_from_urls() {
        assert_eq!(sqlite_path("sqlite://doorman-data/doorman.db?mode=rwc"), Some("doorman-data/doorman.db".into()));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
    }
}
