//! The job queue: what the worker does with a job that fails.

use crate::helpers::{test_config, Backend, TestApp};
use crate::on_both_backends;
use doorman::delivery::Worker;
use doorman_core::recovery::JOB_PASSWORD_RESET_REQUESTED;
use serde_json::json;

on_both_backends!(jobs_that_can_never_run_are_dead_lettered);

/// Issue 8 item 4: a job whose payload can never run (an unknown kind, a payload that does not
/// parse, a login with a NUL in it, which PostgreSQL refuses) is failed at once, not retried.
async fn jobs_that_can_never_run_are_dead_lettered(backend: Backend) {
    let config = test_config(backend).await;
    let app = TestApp::spawn_with(config.clone()).await;
    app.create_account("maria", "maria@example.com").await;
    let store = &app.services.store;
    let now = app.services.clock.unix();
    let nul = json!({ "login": "ma\u{0}ria", "ip": "192.0.2.1", "user_agent": "test", "request_id": "r" }).to_string();
    store.enqueue_job("no_such_job", "{}", now).await.unwrap();
    store.enqueue_job(JOB_PASSWORD_RESET_REQUESTED, "{not json", now).await.unwrap();
    store.enqueue_job(JOB_PASSWORD_RESET_REQUESTED, &nul, now).await.unwrap();
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
