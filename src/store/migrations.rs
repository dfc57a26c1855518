//! The migrations of each backend, assembled from three folders:
//!
//! - `migrations/common/`: every migration whose SQL both databases accept, written once.
//!   This is where a new migration goes.
//! - `migrations/sqlite/` and `migrations/postgres/`: the migrations whose SQL differs, one
//!   file of the same version in each. They hold the seven first migrations, written per
//!   backend before `common/` existed; deployed databases have their checksums recorded, so
//!   those files are never edited, renamed or moved.
//!
//! Each backend runs `common/` and its own folder merged in version order. A version is in
//! `common/` or in both backend folders, never in both places (the tests check it), so the
//! differences between the databases are exactly what the two backend folders hold.

use super::Backend;
use sqlx::migrate::{MigrateError, Migration, Migrator};

static COMMON: Migrator = sqlx::migrate!("./migrations/common");
static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");

/// The migrations `backend` runs, in version order. Fails when a version is both in
/// `common/` and in the backend's folder.
pub fn migrations(backend: Backend) -> Result<Vec<Migration>, MigrateError> {
    let own = match backend {
        Backend::Sqlite => &SQLITE,
        Backend::Postgres => &POSTGRES,
    };
    if let Some(twice) = own.iter().find(|m| COMMON.iter().any(|c| c.version == m.version)) {
        return Err(MigrateError::Source(
            format!("migration {} is both in migrations/common and in the {backend:?} folder", twice.version).into(),
        ));
    }
    let mut all: Vec<Migration> = COMMON.iter().chain(own.iter()).cloned().collect();
    all.sort_by_key(|m| m.version);
    Ok(all)
}

/// The migrator of `backend`: [`migrations`] with sqlx's defaults (a lock on PostgreSQL,
/// checksums of applied migrations verified).
pub fn migrator(backend: Backend) -> Result<Migrator, MigrateError> {
    Ok(Migrator::with_migrations(migrations(backend)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The version and SHA-384 checksum of every migration deployed databases may have
    /// applied, as sqlx recorded them in `_sqlx_migrations`. A change here would stop them.
    const DEPLOYED_SQLITE: [(i64, &str); 8] = [
        (20261126000001, "dc989b5624b218afbadb8f0c3a927310f5d681febfed13fe52bf66ab1c665824c72278cee7c6e8f187408c3608d5b901"),
        (20261126000002, "11962398918bbb2b6eb136cd74ea388d3d435794b00ebd532577cf952e2a4ad1e38b4969f300d8db46e30b99e6cef814"),
        (20261126000003, "de37e90eba30ce2dd6e07af8943733040c09a52d212819f53f27e5846af220d1004f8947bc833b0fe3e7112f26bedfb3"),
        (20261126000004, "15776999cc6e8eefd04a452d416a37c2d13e1f14cb9e931556c4b889ead766f391180db79ac8ebd6729b0053821d6b67"),
        (20261126000005, "e6a1e56dcc0a89e4ea4dbba4507b598097dc9906a1f272fffa5c8a942ea2c7101c0829917844950f0d981f596fe2f83a"),
        (20261126000006, "3f749548757ea94cbd5e848e33e61acdf5dc024828c2fc6f0b8c63170c15d7e39ae7724cf2c260ffc0c1a8d97703f121"),
        (20261126000007, "f9a8250d73afc69e3a182c2dd93ffbbd44fbe5b2fa880d63e71b1072cd8ca22ad837eff4c9f4bb0e695579132ce99fe6"),
        (20261129000008, "387db110b854e6de0dada26cfae2f4a7cb3c74b52630d4ba3985c0f973d446abae7a1ec55519a66c3ec1aeb970d7ac84"),
    ];
    /// PostgreSQL's differ from SQLite's in the first migration only.
    fn deployed_postgres() -> Vec<(i64, &'static str)> {
        let mut deployed = DEPLOYED_SQLITE.to_vec();
        deployed[0].1 = "b86b036b4664353b44047766f607e6a77bbbc619e97b99299523eac092112b34b52ddf06807fd192f2c28efe25e32662";
        deployed
    }

    fn listed(backend: Backend) -> Vec<(i64, String)> {
        migrations(backend).unwrap().iter().map(|m| (m.version, hex::encode(&m.checksum))).collect()
    }

    #[test]
    fn each_backend_lists_the_deployed_migrations_unchanged_then_the_new_ones() {
        for (backend, deployed) in [(Backend::Sqlite, DEPLOYED_SQLITE.to_vec()), (Backend::Postgres, deployed_postgres())] {
            let listed = listed(backend);
            let deployed: Vec<(i64, String)> = deployed.iter().map(|(v, c)| (*v, (*c).to_owned())).collect();
            assert_eq!(listed[..deployed.len()], deployed[..], "{backend:?}");
            assert!(listed.windows(2).all(|w| w[0].0 < w[1].0), "{backend:?}: in version order, each once: {listed:?}");
        }
    }

    #[test]
    fn common_migrations_are_run_by_both_backends_and_the_rest_differ() {
        let sqlite = migrations(Backend::Sqlite).unwrap();
        let postgres = migrations(Backend::Postgres).unwrap();
        assert_eq!(
            sqlite.iter().map(|m| m.version).collect::<Vec<_>>(),
            postgres.iter().map(|m| m.version).collect::<Vec<_>>(),
            "a version differing between the backends is in both backend folders"
        );
        assert!(COMMON.iter().count() >= 1);
        for common in COMMON.iter() {
            for backend in [&sqlite, &postgres] {
                let m = backend.iter().find(|m| m.version == common.version).unwrap();
                assert_eq!((&m.sql, &m.checksum), (&common.sql, &common.checksum));
            }
            for own in [&SQLITE, &POSTGRES] {
                assert!(own.iter().all(|m| m.version != common.version), "{} is in common and a backend folder", common.version);
            }
        }
    }
}
