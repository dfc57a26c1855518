//! The migrations each backend runs: `migrations/common/` (written once) merged with the
//! backend's own folder (src/store/migrations.rs).

use crate::helpers::{Backend, fresh_database, temp_dir};
use crate::on_both_backends;
use doorman::store::SqlStore;
use doorman::store::migrations::migrations;

on_both_backends!(
    every_migration_applies_and_is_recorded_with_its_checksum,
    a_database_from_before_the_method_history_gets_one_from_its_methods,
);

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

on_both_backends!(a_chain_sealed_before_seals_had_a_table_of_their_own_still_verifies);

/// 20261130000090 moves each audit event's seal from a column of the event (`chain_hash`) to a
/// row of `audit_seals` (issue 12, twelfth pass). A database sealed before it (two events
/// sealed, the newest not yet) verifies after it (S10.3), and the sealer goes on from the
/// newest seal it moved.
async fn a_chain_sealed_before_seals_had_a_table_of_their_own_still_verifies(backend: Backend) {
    use doorman_core::audit::{AuditEvent, AuditRecord, ChainedEvent};
    use doorman_core::audit_chain::{ChainReport, GENESIS, seal};
    use doorman_core::keyring::Keyring;
    use doorman_core::keys::ServerKey;

    let config = crate::helpers::test_config(backend).await;
    let store = SqlStore::connect(&config.database_url).await.unwrap();
    let before: Vec<_> = migrations(store.backend()).unwrap().into_iter().filter(|m| m.version < 20261130000090).collect();
    sqlx::migrate::Migrator::with_migrations(before).run(store.pool()).await.unwrap();

    let secret = "a test key of more than thirty-two bytes, for the seals";
    std::fs::write(&config.secret_key_file, secret).unwrap();
    let keys = Keyring::single(ServerKey::new(secret.as_bytes().to_vec()).unwrap());
    let at = time::OffsetDateTime::now_utc().unix_timestamp() - 3600;
    let mut previous = GENESIS.to_owned();
    for id in 1..=3_i64 {
        let record = AuditRecord {
            at,
            event: AuditEvent::LoginFailed,
            account_id: None,
            ip: "192.0.2.1".into(),
            user_agent: "test".into(),
            request_id: format!("r{id}"),
            detail: "wrong_password".into(),
        };
        sqlx::query("INSERT INTO audit_events (id, at, event, account_id, ip, user_agent, request_id, detail) VALUES ($1, $2, $3, NULL, $4, $5, $6, $7)")
            .bind(id)
            .bind(at)
            .bind(record.event.as_str())
            .bind(&record.ip)
            .bind(&record.user_agent)
            .bind(&record.request_id)
            .bind(&record.detail)
            .execute(store.pool())
            .await
            .unwrap();
        if id < 3 {
            previous = seal(&keys, &previous, &ChainedEvent { id, record, chain_hash: None });
            sqlx::query("UPDATE audit_events SET chain_hash = $1 WHERE id = $2")
                .bind(&previous)
                .bind(id)
                .execute(store.pool())
                .await
                .unwrap();
        }
    }
    if backend == Backend::Postgres {
        // Explicit ids leave the sequence behind: the app's next event must come after them.
        sqlx::query("SELECT setval('audit_events_id_seq', 3)").execute(store.pool()).await.unwrap();
    }
    store.pool().close().await;

    let app = crate::helpers::TestApp::spawn_with(config).await;
    assert_eq!(
        app.services.audit.verify_audit_chain().await.unwrap(),
        ChainReport::Intact { sealed: 2, unsealed: 1, pruned_through: None }
    );
    assert_eq!(app.services.audit.seal_audit_chain().await.unwrap(), 1, "the sealer goes on from the newest moved seal");
    assert_eq!(
        app.services.audit.verify_audit_chain().await.unwrap(),
        ChainReport::Intact { sealed: 3, unsealed: 0, pruned_through: None }
    );
}

/// S10.4 on an upgraded database: the methods it already had become the start of their
/// history (enrolments and removals in time order, by whom unknown); a method never confirmed
/// has none; new changes follow them.
async fn a_database_from_before_the_method_history_gets_one_from_its_methods(backend: Backend) {
    use doorman_core::account::AccountId;
    use doorman_core::factors::FactorStore;
    use doorman_core::factors::history::ChangedBy;

    let url = fresh_database(backend, &temp_dir()).await;
    let store = SqlStore::connect(&url).await.unwrap();
    let before: Vec<_> = migrations(store.backend()).unwrap().into_iter().filter(|m| m.version < 20261201000200).collect();
    sqlx::migrate::Migrator::with_migrations(before).run(store.pool()).await.unwrap();
    sqlx::query("INSERT INTO accounts (id, username, username_key, email, user_type, country, password_hash, created_at, updated_at) VALUES ('a1', 'maria', 'maria', 'maria@example.com', 'client', 'PH', 'x', 0, 0)")
        .execute(store.pool())
        .await
        .unwrap();
    // (id, kind, label, confirmed_at, removed_at)
    let methods = [
        ("f-app", "totp", "", Some(100), Some(400)),
        ("f-phone", "sms", "+63 *** *** 4521", Some(200), None),
        ("f-pending", "totp", "", None, Some(300)),
        ("f-codes", "recovery_code", "", Some(300), None),
    ];
    for (id, kind, label, confirmed_at, removed_at) in methods {
        sqlx::query("INSERT INTO second_factors (id, account_id, kind, label, secret, is_default, confirmed_at, created_at, removed_at) VALUES ($1, 'a1', $2, $3, '', 0, $4, 50, $5)")
            .bind(id)
            .bind(kind)
            .bind(label)
            .bind(confirmed_at)
            .bind(removed_at)
            .execute(store.pool())
            .await
            .unwrap();
    }
    store.migrate().await.unwrap();

    let account = AccountId::from_stored("a1".to_owned());
    assert!(store.remove_factor(&account, "f-phone", 500, ChangedBy::Owner).await.unwrap());
    let mut history = store.factor_history(&account, i64::MAX, 100).await.unwrap();
    history.reverse();
    let listed: Vec<(&str, &str, &str, &str, i64)> =
        history.iter().map(|e| (e.factor_id.as_str(), e.label.as_str(), e.change.as_str(), e.by.as_str(), e.at)).collect();
    assert_eq!(
        listed,
        [
            ("f-app", "", "added", "before_history", 100),
            ("f-phone", "+63 *** *** 4521", "added", "before_history", 200),
            ("f-codes", "", "added", "before_history", 300),
            ("f-app", "", "removed", "before_history", 400),
            ("f-phone", "+63 *** *** 4521", "removed", "owner", 500),
        ]
    );
}
