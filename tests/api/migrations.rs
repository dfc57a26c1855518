//! The migrations each backend runs: `migrations/common/` (written once) merged with the
//! backend's own folder (src/store/migrations.rs).

use crate::helpers::{Backend, fresh_database, temp_dir};
use crate::on_both_backends;
use doorman::store::SqlStore;
use doorman::store::migrations::migrations;

on_both_backends!(every_migration_applies_and_is_recorded_with_its_checksum);

/// A fresh database gets every migration, common ones included, recorded with the checksum
/// the migrator lists (the unit tests pin those of the deployed migrations); starting again
/// checks them and applies nothing. The common migration's table works on both databases.
async fn every_migration_applies_and_is_recorded_with_its_checksum(backend: Backend) {
    let url = fresh_database(backend, &temp_dir()).await;
    let store = SqlStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    store.migrate().await.expect("a second start finds every checksum as recorded");

    let recorded: Vec<(i64, Vec<u8>)> = sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations WHERE success ORDER BY version")
        .fetch_all(store.pool())
        .await
        .unwrap();
    let expected: Vec<(i64, Vec<u8>)> = migrations(store.backend()).unwrap().iter().map(|m| (m.version, m.checksum.to_vec())).collect();
    assert_eq!(recorded, expected);
    assert!(recorded.iter().any(|(version, ..)| *version == 20261129000008), "the trusted-devices migration, now in common/");

    // 20261129000008 (common): the table, its foreign key and its cascade.
    sqlx::query("INSERT INTO accounts (id, username, username_key, email, user_type, country, password_hash, created_at, updated_at) VALUES ('a1', 'maria', 'maria', 'maria@example.com', 'client', 'PH', 'x', 0, 0)")
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query("INSERT INTO trusted_devices (id_hash, account_id, created_at, expires_at) VALUES ('d1', 'a1', 0, 10)")
        .execute(store.pool())
        .await
        .unwrap();
    let refused = sqlx::query("INSERT INTO trusted_devices (id_hash, account_id, created_at, expires_at) VALUES ('d2', 'nobody', 0, 10)")
        .execute(store.pool())
        .await;
    assert!(refused.is_err(), "the foreign key holds");
    sqlx::query("DELETE FROM accounts WHERE id = 'a1'").execute(store.pool()).await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM trusted_devices").fetch_one(store.pool()).await.unwrap();
    assert_eq!(left, 0, "deleting the account deletes its devices");
    store.pool().close().await;
}
