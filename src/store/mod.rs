//! Storage: the domain's store traits implemented with sqlx on SQLite and PostgreSQL.
//!
//! One implementation serves both backends through sqlx's `Any` driver: the SQL is written
//! once in the dialect both accept (`$1` placeholders, `ON CONFLICT`, `RETURNING`, times as
//! BIGINT Unix seconds), checked at run time, and the same behaviour tests run against
//! both. Every statement is a `&'static str`, never assembled at run time: column lists
//! that several statements share are macros joined with `concat!`, and where the dialects
//! differ (row locks) [`Backend::pick`] chooses between two literals. Migrations are
//! written once in `migrations/common/` when both databases accept the SQL, and per
//! backend only where it differs (see [`migrations`]).

mod accounts;
mod activity;
mod approvals;
mod audit;
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
    StoreError::Backend(Box::new(e))
}

impl SqlStore {
    /// Connects, creating the SQLite file's folder when needed.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") { Backend::Sqlite } else { Backend::Postgres };
        if backend == Backend::Sqlite
            && let Some(parent) = sqlite_path(url).and_then(|p| p.parent().map(|p| p.to_path_buf()))
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(&parent).map_err(|e| StoreError::Backend(Box::new(e)))?;
        }
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            // While the database is down, a request waits this long for a connection, then
            // answers 503 `unavailable` (issue 13): long enough for a burst, short enough that
            // clients and balancers see the outage instead of a hang.
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers and one writer work at once; the busy timeout makes
                        // concurrent writers wait instead of failing.
                        conn.execute("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;").await?;
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
                    if backend != Backend::Sqlite {
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
