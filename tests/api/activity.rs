//! New-device sign-in alerts and the security activity page (issue 11 §5, checklist S9).

use crate::helpers::{Backend, PASSWORD, Response, TestApp, csrf_of, test_config};
use crate::on_both_backends;
use doorman_core::audit::{AuditEvent, RequestContext};
use serde_json::json;

on_both_backends!(
    s9_a_new_device_gets_one_alert_and_a_known_device_none,
    s9_the_activity_page_lists_sign_ins_and_changes_with_this_wasnt_me,
    the_activity_page_needs_a_session,
    s9_this_wasnt_me_on_the_activity_page_asks_then_locks_with_the_sessions_form_token,
    s9_the_api_locks_from_an_own_activity_entry_only,
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
    let id = body["events"][0]["id"].as_i64().unwrap();
    assert_eq!(body["events"][0]["report_url"].as_str(), Some(format!("/account/activity/{id}/report").as_str()));
    assert_eq!(body["next_before"], serde_json::Value::Null);

    let page = app.get(&client, "/account/activity").await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("Authenticator app added") && page.text.contains("Signed in"), "{}", page.text);
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

/// "This wasn't me" beside an entry opens a page that asks (a GET changes nothing); only its
/// button, with the session's form token, locks: every session ends, this one too, and the
/// right password then meets `account_locked`.
async fn s9_this_wasnt_me_on_the_activity_page_asks_then_locks_with_the_sessions_form_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let client = TestApp::new_client();
    assert_eq!(app.login_as(&client, "192.0.2.10", "maria", PASSWORD).await.status, 200);
    let other = TestApp::new_client();
    assert_eq!(app.login_as(&other, "192.0.2.11", "maria", PASSWORD).await.status, 200);

    let page = app.get(&client, "/account/activity").await;
    let href = page.text.split("href=\"/account/activity/").nth(1).expect("a report link").split('"').next().unwrap().to_owned();
    let url = format!("/account/activity/{href}");
    assert!(url.ends_with("/report"), "{url}");
    let asked = app.get(&client, &url).await;
    assert_eq!(asked.status, 200, "{}", asked.text);
    assert!(asked.text.contains("Signed in") && asked.text.contains("Lock my account"), "{}", asked.text);
    assert!(asked.text.contains(&format!("action=\"{url}\"")), "the button posts to the same address: {}", asked.text);
    assert_eq!(app.get(&client, "/api/v1/session").await.status, 200, "opening the page changes nothing");

    let forged = Response::read(client.post(app.url(&url)).form(&[("csrf", "forged")]).send().await.unwrap()).await;
    assert_eq!(forged.status, 403);
    let foreign = Response::read(other.post(app.url(&url)).form(&[("csrf", csrf_of(&asked.text))]).send().await.unwrap()).await;
    assert_eq!(foreign.status, 403, "another session's form token does not lock");
    assert_eq!(app.get(&client, "/api/v1/session").await.status, 200, "nothing locked yet");

    let done = Response::read(client.post(app.url(&url)).form(&[("csrf", csrf_of(&asked.text))]).send().await.unwrap()).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert!(done.text.contains("Your account is locked") && done.text.contains("C-"), "{}", done.text);
    assert_eq!(app.get(&client, "/api/v1/session").await.status, 401, "this session ended");
    assert_eq!(app.get(&other, "/api/v1/session").await.status, 401, "every session ended");
    let login = app.login_as(&TestApp::new_client(), "192.0.2.12", "maria", PASSWORD).await;
    assert_eq!((login.status, login.error_code().as_str()), (403, "account_locked"));
    let locked = app.deliver().await.into_iter().find(|m| m.kind == "account_locked").expect("the owner is told");
    assert_eq!(locked.to, "maria@example.com");
    let again = app.get(&client, &url).await;
    assert_eq!((again.status, again.header("location")), (303, Some("/login")), "signed out");
}

/// The API: only the owner's own listed entries lock (another account's or an unknown id is
/// 404), never without a session, and never from an entry older than a report link lives.
async fn s9_the_api_locks_from_an_own_activity_entry_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    app.create_account("joseph", "joseph@example.com").await;
    let joseph = TestApp::new_client();
    assert_eq!(app.login_as(&joseph, "192.0.2.20", "joseph", PASSWORD).await.status, 200);
    let his = app.get(&joseph, "/api/v1/account/activity").await.json()["events"][0]["id"].as_i64().unwrap();
    let maria = TestApp::new_client();
    assert_eq!(app.login_as(&maria, "192.0.2.21", "maria", PASSWORD).await.status, 200);
    let old = app.get(&maria, "/api/v1/account/activity").await.json()["events"][0]["id"].as_i64().unwrap();

    let anonymous = app.post_json(&TestApp::new_client(), &format!("/api/v1/account/activity/{old}/report"), json!({})).await;
    assert_eq!((anonymous.status, anonymous.error_code().as_str()), (401, "not_authenticated"));
    for id in [his, old + 1000] {
        let refused = app.post_json(&maria, &format!("/api/v1/account/activity/{id}/report"), json!({})).await;
        assert_eq!((refused.status, refused.error_code().as_str()), (404, "not_found"), "{}", refused.text);
    }
    app.clock.advance(31 * 86_400);
    let fresh = TestApp::new_client();
    assert_eq!(app.login_as(&fresh, "192.0.2.21", "maria", PASSWORD).await.status, 200);
    let too_old = app.post_json(&fresh, &format!("/api/v1/account/activity/{old}/report"), json!({})).await;
    assert_eq!((too_old.status, too_old.error_code().as_str()), (400, "report_too_old"), "{}", too_old.text);
    assert!(too_old.json()["message"].as_str().unwrap().contains("/report-compromise"));
    assert_eq!(app.get(&fresh, "/api/v1/session").await.status, 200, "nothing locked");

    let recent = app.get(&fresh, "/api/v1/account/activity").await.json()["events"][0]["id"].as_i64().unwrap();
    let done = app.post_json(&fresh, &format!("/api/v1/account/activity/{recent}/report"), json!({})).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.json()["status"], "locked");
    assert!(done.json()["case"].as_str().unwrap().starts_with("C-"));
    assert_eq!(app.get(&fresh, "/api/v1/session").await.status, 401);
    let his_login = app.login_as(&TestApp::new_client(), "192.0.2.20", "joseph", PASSWORD).await;
    assert_eq!(his_login.status, 200, "only maria's account is locked");
}
