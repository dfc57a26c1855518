//! S10.3: the audit log is append-only and tamper-evident, with a verifier.

use crate::helpers::{Backend, PASSWORD, TestApp, test_config};
use crate::on_both_backends;
use doorman_core::audit_chain::{AnchorCheck, ChainAnchor, ChainReport};
use doorman_core::clock::Clock;
use std::process::Command;

on_both_backends!(s10_3_an_edited_or_removed_audit_event_breaks_the_chain, s10_3_an_anchor_kept_elsewhere_shows_a_rewritten_or_cut_tail,);

async fn s10_3_an_edited_or_removed_audit_event_breaks_the_chain(backend: Backend) {
    let config = test_config(backend).await;
    let (url, key_file) = (config.database_url.clone(), config.secret_key_file.clone());
    let app = TestApp::spawn_with(config).await;
    app.create_account("maria", "maria@example.com").await;
    for _ in 0..3 {
        app.login("maria", "not the password").await;
    }
    app.login("maria", PASSWORD).await;

    assert_eq!(app.services.audit.seal_audit_chain().await.unwrap(), 0, "events younger than a minute wait");
    app.clock.advance(61);
    assert_eq!(app.services.audit.seal_audit_chain().await.unwrap(), 5);
    assert_eq!(
        app.services.audit.verify_audit_chain().await.unwrap(),
        ChainReport::Intact { sealed: 5, unsealed: 0, pruned_through: None }
    );
    // Sealing again, as a second replica would, changes nothing.
    assert_eq!(app.services.audit.seal_audit_chain().await.unwrap(), 0);

    let verify = || {
        Command::new(env!("CARGO_BIN_EXE_doorman"))
            .args(["audit", "verify"])
            .env("DOORMAN_DATABASE_URL", &url)
            .env("DOORMAN_SECRET_KEY_FILE", &key_file)
            .current_dir(std::env::temp_dir())
            .output()
            .unwrap()
    };
    let ok = verify();
    assert!(ok.status.success() && String::from_utf8_lossy(&ok.stdout).contains("audit chain intact: 5 events sealed"), "{ok:?}");

    // Someone with database access rewrites history: the failure becomes a success.
    let store = doorman::store::SqlStore::connect(&url).await.unwrap();
    let edited = sqlx::query("UPDATE audit_events SET event = 'login_succeeded', detail = 'password' WHERE id = 3")
        .execute(store.pool())
        .await
        .unwrap();
    assert_eq!(edited.rows_affected(), 1);
    assert_eq!(app.services.audit.verify_audit_chain().await.unwrap(), ChainReport::Broken { at_id: 3, sealed_before: 2 });
    let broken = verify();
    assert!(!broken.status.success() && String::from_utf8_lossy(&broken.stderr).contains("BROKEN at event 3"), "{broken:?}");

    // Removing an event breaks the chain at the next one.
    sqlx::query("DELETE FROM audit_events WHERE id = 3").execute(store.pool()).await.unwrap();
    assert_eq!(app.services.audit.verify_audit_chain().await.unwrap(), ChainReport::Broken { at_id: 4, sealed_before: 2 });

    // Removing a seal (seals are rows of their own) leaves a sealed event after an unsealed one.
    sqlx::query("DELETE FROM audit_seals WHERE event_id = 1").execute(store.pool()).await.unwrap();
    assert_eq!(app.services.audit.verify_audit_chain().await.unwrap(), ChainReport::Broken { at_id: 2, sealed_before: 0 });
}

/// What the chain alone cannot show, an anchor can: someone who can write the database
/// deletes the newest seals, edits those events and lets the sealer seal them again, or cuts
/// the newest events off; the chain still verifies, and the newest seal printed (or logged)
/// before, kept elsewhere, no longer holds.
async fn s10_3_an_anchor_kept_elsewhere_shows_a_rewritten_or_cut_tail(backend: Backend) {
    let config = test_config(backend).await;
    let (url, key_file) = (config.database_url.clone(), config.secret_key_file.clone());
    let app = TestApp::spawn_with(config).await;
    app.create_account("maria", "maria@example.com").await;
    for _ in 0..3 {
        app.login("maria", "not the password").await;
    }
    app.login("maria", PASSWORD).await;
    app.clock.advance(61);
    assert_eq!(app.services.audit.seal_audit_chain().await.unwrap(), 5);
    let audit = &app.services.audit;
    let head = audit.chain_head().await.unwrap().expect("a newest seal");
    assert_eq!(head.event_id, 5);
    let third = app.services.store.audit_event(3).await.unwrap().unwrap();
    let third = ChainAnchor { event_id: 3, seal: third.chain_hash.unwrap() };

    let verify = |anchors: &[&ChainAnchor]| {
        let mut args = vec!["audit".to_owned(), "verify".to_owned()];
        for anchor in anchors {
            args.extend(["--anchor".to_owned(), anchor.to_string()]);
        }
        Command::new(env!("CARGO_BIN_EXE_doorman"))
            .args(args)
            .env("DOORMAN_DATABASE_URL", &url)
            .env("DOORMAN_SECRET_KEY_FILE", &key_file)
            .current_dir(std::env::temp_dir())
            .output()
            .unwrap()
    };
    let ok = verify(&[&head, &third]);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{ok:?}");
    assert!(stdout.contains("anchor 5: holds") && stdout.contains("anchor 3: holds"), "{stdout}");
    assert!(stdout.contains(&format!("newest seal (keep it elsewhere; `--anchor` checks it later): {head}")), "{stdout}");
    assert!(verify(&[]).status.success(), "without anchors, as before");
    let malformed = Command::new(env!("CARGO_BIN_EXE_doorman")).args(["audit", "verify", "--anchor", "5"]).output().unwrap();
    assert!(
        !malformed.status.success() && String::from_utf8_lossy(&malformed.stderr).contains("an anchor is <event id>:<seal>"),
        "{malformed:?}"
    );

    // The tail rewritten: the last two events' seals deleted, the success (event 5) made a
    // failure, both sealed again as they now read. The chain verifies; the anchor does not.
    let store = doorman::store::SqlStore::connect(&url).await.unwrap();
    sqlx::query("UPDATE audit_events SET event = 'login_failed', detail = 'wrong_password' WHERE id = 5")
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query("DELETE FROM audit_seals WHERE event_id >= 4").execute(store.pool()).await.unwrap();
    assert_eq!(audit.seal_audit_chain().await.unwrap(), 2);
    assert_eq!(audit.verify_audit_chain().await.unwrap(), ChainReport::Intact { sealed: 5, unsealed: 0, pruned_through: None });
    assert_eq!(audit.check_anchor(&head).await.unwrap(), AnchorCheck::Differs);
    assert_eq!(audit.check_anchor(&third).await.unwrap(), AnchorCheck::Holds, "nothing up to event 3 changed");
    let rewritten = verify(&[&third, &head]);
    let stderr = String::from_utf8_lossy(&rewritten.stderr);
    assert!(
        !rewritten.status.success() && stderr.contains("REWRITTEN") && stderr.contains("anchor 5: event 5 no longer carries"),
        "{rewritten:?}"
    );

    // The tail cut off: no seal to recompute, so only the anchor shows it.
    let new_head = audit.chain_head().await.unwrap().unwrap();
    sqlx::query("DELETE FROM audit_seals WHERE event_id = 5").execute(store.pool()).await.unwrap();
    sqlx::query("DELETE FROM audit_events WHERE id = 5").execute(store.pool()).await.unwrap();
    assert_eq!(audit.verify_audit_chain().await.unwrap(), ChainReport::Intact { sealed: 4, unsealed: 0, pruned_through: None });
    assert_eq!(audit.check_anchor(&new_head).await.unwrap(), AnchorCheck::Missing);
    let cut = verify(&[&new_head]);
    assert!(!cut.status.success() && String::from_utf8_lossy(&cut.stderr).contains("event 5 is gone"), "{cut:?}");
}

on_both_backends!(s10_3_a_backlog_larger_than_one_batch_is_sealed_event_by_event);

/// The sealer writes each batch of 500 in one statement (issue 12): a backlog of 1,201 events
/// (three batches, the last of one event) is sealed whole, every event with its own seal, and
/// the chain verifies across the batches' edges.
async fn s10_3_a_backlog_larger_than_one_batch_is_sealed_event_by_event(backend: Backend) {
    let config = test_config(backend).await;
    let url = config.database_url.clone();
    let app = TestApp::spawn_with(config).await;
    let store = doorman::store::SqlStore::connect(&url).await.unwrap();
    let at = app.clock.unix();
    for batch in 0..13 {
        let rows: Vec<String> =
            (0..100).map(|i| format!("({at}, 'login_failed', NULL, '192.0.2.1', 'test', 'r{batch}-{i}', 'wrong_password')")).collect();
        let sql = format!(
            "INSERT INTO audit_events (at, event, account_id, ip, user_agent, request_id, detail) VALUES {}",
            rows[..if batch == 12 { 1 } else { 100 }].join(", ")
        );
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(store.pool()).await.unwrap();
    }
    app.clock.advance(61);
    assert_eq!(app.services.audit.seal_audit_chain().await.unwrap(), 1_201);
    let distinct: i64 = sqlx::query_scalar("SELECT COUNT(DISTINCT chain_hash) FROM audit_seals").fetch_one(store.pool()).await.unwrap();
    assert_eq!(distinct, 1_201, "every event has a seal of its own");
    assert_eq!(
        app.services.audit.verify_audit_chain().await.unwrap(),
        ChainReport::Intact { sealed: 1_201, unsealed: 0, pruned_through: None }
    );
}
