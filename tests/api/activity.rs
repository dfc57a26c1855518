//! New-device sign-in alerts and the security activity page (issue 11 §5, checklist S9).

use crate::helpers::{test_config, Backend, TestApp, PASSWORD};
use crate::on_both_backends;
use doorman_core::audit::{AuditEvent, RequestContext};
use serde_json::json;

on_both_backends!(
    s9_a_new_device_gets_one_alert_and_a_known_device_none,
    s9_the_activity_page_lists_sign_ins_and_changes_with_this_wasnt_me,
    the_activity_page_needs_a_session,
);

const FIREFOX: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0";

async fn login_from(app: &TestApp, client: &reqwest::Client, country: &str) -> u16 {
    client
        .post(app.url("/api/v1/login"))
        .header("X-Real-IP", "198.51.100.7")
        .header("CF-IPCountry", country)
        .header("User-Agent", FIREFOX)
        .json(&json!({ "login": "maria", "password": PASSWORD }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn s9_a_new_device_gets_one_alert_and_a_known_device_none(backend: Backend) {
    let mut config = test_config(backend).await;
    config.country_header = Some("CF-IPCountry".into());
    let app = TestApp::spawn_with(config).await;
    app.create_account("maria", "maria@example.com").await;

    // The very first sign-in of an account is no surprise: no alert.
    let laptop = TestApp::new_client();
    assert_eq!(login_from(&app, &laptop, "PH").await, 200);
    assert!(app.deliver().await.iter().all(|m| m.kind != "new_device"), "no alert at the first sign-in");

    // Another browser: one alert, with time, place, device, address and "this wasn't me".
    let phone = TestApp::new_client();
    assert_eq!(login_from(&app, &phone, "PH").await, 200);
    let alerts: Vec<_> = app.deliver().await.into_iter().filter(|m| m.kind == "new_device").collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let alert = &alerts[0];
    assert_eq!(alert.to, "maria@example.com");
    for shown in ["Firefox on Windows", "PH", "198.51.100.7", "+0000", "http://doorman.test/report-not-me?token="] {
        assert!(alert.text.contains(shown), "{shown} in {}", alert.text);
    }

    // Known browsers sign in again without an alert.
    assert_eq!(login_from(&app, &phone, "PH").await, 200);
    assert_eq!(login_from(&app, &laptop, "PH").await, 200);
    assert!(app.deliver().await.iter().all(|m| m.kind != "new_device"), "known devices: no alert");

    // A client that names a country itself is believed only through the configured header.
    let unconfigured = TestApp::spawn(backend).await;
    unconfigured.create_account("maria", "maria@example.com").await;
    assert_eq!(login_from(&unconfigured, &TestApp::new_client(), "PH").await, 200);
    assert_eq!(login_from(&unconfigured, &TestApp::new_client(), "PH").await, 200);
    let alert = unconfigured.deliver().await.into_iter().find(|m| m.kind == "new_device").expect("an alert");
    assert!(alert.text.contains("Where:  not known"), "{}", alert.text);
}

async fn s9_the_activity_page_lists_sign_ins_and_changes_with_this_wasnt_me(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let account = app.create_account("maria", "maria@example.com").await;
    let client = TestApp::new_client();
    assert_eq!(app.login_as(&client, "192.0.2.10", "maria", PASSWORD).await.status, 200);
    crate::two_step::enrol_totp(&app, &client).await;

    let listed = app.get(&client, "/api/v1/account/activity").await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let body = listed.json();
    let events: Vec<&str> = body["events"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(events, vec!["factor_added", "login_succeeded"], "newest first, only sign-ins and changes");
    assert!(body["events"][0]["report_url"].as_str().unwrap().starts_with("/report-not-me"));
    assert_eq!(body["next_before"], serde_json::Value::Null);

    let page = app.get(&client, "/account/activity").await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("2-step method added") && page.text.contains("Signed in"), "{}", page.text);
    assert_eq!(page.text.matches("This wasn't me").count(), 2, "one report link per line");

    // Paged: 20 a page, newest first, and the cursor leads to the older ones.
    for _ in 0..25 {
        app.services.deps.audit(AuditEvent::LoginSucceeded, Some(&account.id), &RequestContext::cli(), "password").await.unwrap();
    }
    let first = app.get(&client, "/api/v1/account/activity").await.json();
    assert_eq!(first["events"].as_array().unwrap().len(), 20);
    let before = first["next_before"].as_i64().expect("a next page");
    let second = app.get(&client, &format!("/api/v1/account/activity?before={before}")).await.json();
    let rest: Vec<&str> = second["events"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(rest.len(), 7, "{rest:?}");
    assert_eq!(rest.last(), Some(&"login_succeeded"));
    let older = app.get(&client, &format!("/account/activity?before={before}")).await;
    assert!(older.text.contains("Newest activity"), "{}", older.text);
    assert!(app.get(&client, "/account/activity").await.text.contains(&format!("/account/activity?before={before}")));
}

async fn the_activity_page_needs_a_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let anonymous = TestApp::new_client();
    let page = app.get(&anonymous, "/account/activity").await;
    assert_eq!((page.status, page.header("location")), (303, Some("/login")));
    let api = app.get(&anonymous, "/api/v1/account/activity").await;
    assert_eq!((api.status, api.error_code().as_str()), (401, "not_authenticated"));
}
