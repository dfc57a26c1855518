//! The job queue: what the worker does with a job that fails.

use crate::helpers::{BASE_URL, Backend, TestApp, test_config};
use crate::on_both_backends;
use doorman::delivery::Worker;
use doorman_core::audit::AuditEvent;
use doorman_core::jobs::PASSWORD_RESET_REQUESTED;
use serde_json::json;

on_both_backends!(jobs_that_can_never_run_are_dead_lettered, jobs_queued_by_the_previous_release_still_run);

/// Issue 8 item 4: a job whose payload can never run (an unknown kind, a payload that does not
/// parse, a login with a NUL in it, which PostgreSQL refuses) is failed at once, not retried.
async fn jobs_that_can_never_run_are_dead_lettered(backend: Backend) {
    let config = test_config(backend).await;
    let app = TestApp::spawn_with(config.clone()).await;
    app.create_account("maria", "maria@example.com").await;
    let store = &app.services.store;
    let now = app.services.deps.clock.unix();
    let nul = json!({ "login": "ma\u{0}ria", "ip": "192.0.2.1", "user_agent": "test", "request_id": "r" }).to_string();
    store.enqueue_job("no_such_job", "{}", now).await.unwrap();
    store.enqueue_job(PASSWORD_RESET_REQUESTED, "{not json", now).await.unwrap();
    store.enqueue_job(PASSWORD_RESET_REQUESTED, &nul, now).await.unwrap();
    assert_eq!(app.forgot("maria").await.status, 202, "and one job that works");

    let worker = Worker::new(app.services.clone(), doorman::app::transport(&config, false).unwrap());
    assert_eq!(worker.run_once().await.unwrap().jobs, 4);

    let store = doorman::store::SqlStore::connect(&config.database_url).await.unwrap();
    let rows: Vec<(String, String, String, i64, Option<String>)> =
        sqlx::query_as("SELECT kind, payload, status, attempts, last_error FROM jobs").fetch_all(store.pool()).await.unwrap();
    let row = |payload: &str| rows.iter().find(|r| r.1 == payload).unwrap_or_else(|| panic!("{payload} in {rows:?}"));
    let unknown = row("{}");
    assert_eq!((unknown.2.as_str(), unknown.3), ("failed", 1), "an unknown kind is dead at once: {rows:?}");
    assert!(unknown.4.as_deref().unwrap().contains("unknown job kind"));
    assert_eq!(row("{not json").2, "failed", "{rows:?}");
    assert_eq!(row(&nul).2, "failed", "{rows:?}");
    let good = rows.iter().find(|r| r.1 != "{}" && r.1 != "{not json" && r.1 != nul).unwrap();
    assert_eq!(good.2, "done", "{rows:?}");

    // Nothing is left to retry, however late it gets.
    app.clock.advance(24 * 3600);
    assert_eq!(worker.run_once().await.unwrap().jobs, 0);
    store.pool().close().await;
}

/// Issue 9: during a rolling deploy, replicas of the previous release keep queueing jobs
/// as they always did (a kind and a JSON payload with the address as text). A row written
/// exactly that way, straight into the table, is run by this release's worker.
async fn jobs_queued_by_the_previous_release_still_run(backend: Backend) {
    let config = test_config(backend).await;
    let app = TestApp::spawn_with(config.clone()).await;
    let maria = app.create_account("maria", "maria@example.com").await;
    let store = doorman::store::SqlStore::connect(&config.database_url).await.unwrap();
    let payload = r#"{"login":"maria@example.com","ip":"2001:db8::7","user_agent":"Mozilla/5.0 (previous release)","request_id":"r-old"}"#;
    sqlx::query("INSERT INTO jobs (id, kind, payload, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $4)")
        .bind("00000000-0000-4000-8000-000000000001")
        .bind("password_reset_requested")
        .bind(payload)
        .bind(doorman_core::Clock::unix(&*app.clock))
        .execute(store.pool())
        .await
        .unwrap();

    let mails = app.deliver().await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!((mails[0].to.as_str(), mails[0].kind.as_str()), ("maria@example.com", "password_reset"));
    mails[0].link(&format!("{BASE_URL}/reset-password?token="));
    let (status, last_error): (String, Option<String>) = sqlx::query_as("SELECT status, last_error FROM jobs WHERE id = $1")
        .bind("00000000-0000-4000-8000-000000000001")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!((status.as_str(), last_error), ("done", None));

    // The address came through as an address, not as the old 0.0.0.0 fallback.
    let events = app.services.store.audit_of(&maria.id, 20).await.unwrap();
    let requested = events.iter().find(|e| e.event == AuditEvent::PasswordResetRequested).expect("the request is audited");
    assert_eq!(
        (requested.ip.as_str(), requested.request_id.as_str(), requested.detail.as_str()),
        ("2001:db8::7", "r-old", "account_matched; email_queued")
    );
    store.pool().close().await;
}
