//! Issue 12: forgot-password intents are merged at intake, at most one job per login per
//! minute, the same way for existing and unknown logins, so a flood of repeats costs the
//! worker nothing and the merge reveals nothing (S2.1, S2.3).

use crate::helpers::{Backend, TestApp, test_config};
use crate::on_both_backends;

on_both_backends!(repeated_forgot_requests_within_a_minute_make_one_job_and_one_email,);

async fn repeated_forgot_requests_within_a_minute_make_one_job_and_one_email(backend: Backend) {
    let config = test_config(backend).await;
    let app = TestApp::spawn_with(config.clone()).await;
    app.create_account("maria", "maria@example.com").await;
    let forgot_from = async |ip: &str, login: &str| {
        let response = TestApp::new_client()
            .post(app.url("/api/v1/password/forgot"))
            .header("X-Real-IP", ip)
            .json(&serde_json::json!({ "login": login }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
    };
    // Each from its own address, so that no per-address limit drops any: only the merge can.
    for i in 1..=5 {
        forgot_from(&format!("198.51.100.{i}"), if i % 2 == 0 { "MARIA" } else { "maria" }).await;
        forgot_from(&format!("203.0.113.{i}"), "nobody-here").await;
    }
    let store = doorman::store::SqlStore::connect(&config.database_url).await.unwrap();
    let jobs = async || -> Vec<String> {
        sqlx::query_scalar("SELECT payload FROM jobs ORDER BY created_at").fetch_all(store.pool()).await.unwrap()
    };
    let queued = jobs().await;
    assert_eq!(queued.len(), 2, "one job per login, existing or not: {queued:?}");
    assert_eq!(queued.iter().filter(|p| p.contains("\"login\":\"maria\"")).count(), 1, "{queued:?}");
    assert_eq!(queued.iter().filter(|p| p.contains("\"login\":\"nobody-here\"")).count(), 1, "{queued:?}");

    let mails = app.deliver().await;
    assert_eq!(mails.len(), 1, "ten requests, one email: {mails:?}");
    assert_eq!(mails[0].to, "maria@example.com");

    // A minute later, the login may ask again: a new job and, past the resend cooldown, a new email.
    app.clock.advance(61);
    forgot_from("198.51.100.99", "maria").await;
    assert_eq!(jobs().await.len(), 3);
    let mails = app.deliver().await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    store.pool().close().await;
}

on_both_backends!(jobs_for_one_account_run_side_by_side_send_one_email,);

/// The worker runs a batch's jobs side by side (issue 12). Jobs that name one account by
/// different logins (its username, its email, in any case) are not merged at intake, so
/// they can run at the same moment; the resend cooldown is checked inside the transaction
/// that writes the link, once the account's limit row is held, so they still send one email.
async fn jobs_for_one_account_run_side_by_side_send_one_email(backend: Backend) {
    let app = TestApp::spawn_with(test_config(backend).await).await;
    app.create_account("maria", "maria@example.com").await;
    app.create_account("joao", "joao@example.com").await;
    let logins = ["maria", "maria@example.com", "joao", "JOAO@example.com", "joao@EXAMPLE.com"];
    for (i, login) in logins.iter().enumerate() {
        let response = TestApp::new_client()
            .post(app.url("/api/v1/password/forgot"))
            .header("X-Real-IP", format!("198.51.100.{}", i + 1))
            .json(&serde_json::json!({ "login": login }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
    }
    let mut mails = app.deliver().await;
    mails.sort_by(|a, b| a.to.cmp(&b.to));
    let to: Vec<&str> = mails.iter().map(|m| m.to.as_str()).collect();
    assert_eq!(to, ["joao@example.com", "maria@example.com"], "one email per account, not one per login: {mails:?}");
}
