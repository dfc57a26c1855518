//! Lock-outs an attacker cannot use against the owner (checklist S3.1, S3.3, S3.9): one
//! failure budget per account whatever alias is typed, trusted devices with their own
//! budget, and the owner told when the budget is spent.

use crate::helpers::{Backend, PASSWORD, TestApp};
use crate::on_both_backends;

on_both_backends!(
    s3_9_the_account_budget_is_shared_by_its_aliases_without_linking_them,
    s3_9_a_trusted_browser_signs_in_through_a_flood_of_guesses,
    s3_9_a_trusted_device_has_its_own_small_budget_then_counts_like_any_browser,
    s3_9_trusted_devices_end_with_a_reset_and_with_sign_out_everywhere,
);

const OWNER_AT_HOME: &str = "198.51.100.20";

/// 100 wrong passwords for `login`, each from its own subnet so no address budget applies.
async fn flood(app: &TestApp, login: &str) {
    let attacker = TestApp::new_client();
    for i in 0..100 {
        let ip = format!("10.{}.{}.1", i / 200, i % 200);
        assert_eq!(app.login_as(&attacker, &ip, login, "guess guess guess").await.status, 401, "failure {i}");
    }
}

/// S3.9, S3.1, S2.1: 100 failures by username spend the account's budget. The username then
/// answers 429; the email, another alias, answers like a wrong password even to the right
/// one, so the two are never linked by a 429; the attacker gets no extra guesses by typing
/// the other alias; and the owner is told once.
async fn s3_9_the_account_budget_is_shared_by_its_aliases_without_linking_them(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("northwind", "owner@example.com").await;
    flood(&app, "northwind").await;

    let by_name = app.login_as(&TestApp::new_client(), OWNER_AT_HOME, "NORTHWIND ", PASSWORD).await;
    assert_eq!(by_name.status, 429, "the typed login's own key: {}", by_name.text);
    let by_email = app.login_as(&TestApp::new_client(), OWNER_AT_HOME, "owner@example.com", PASSWORD).await;
    assert_eq!(by_email.status, 401, "no more guesses by the other alias, and no 429 that links them: {}", by_email.text);
    let unknown = app.login_as(&TestApp::new_client(), OWNER_AT_HOME, "nobody@example.com", "guess guess guess").await;
    assert_eq!((by_email.status, by_email.json()), (unknown.status, unknown.json()), "the same answer as an unknown account");

    let mails = app.deliver().await;
    let told: Vec<_> = mails.iter().filter(|m| m.kind == "logins_paused" && m.to == "owner@example.com").collect();
    assert_eq!(told.len(), 1, "{mails:?}");
    assert!(told[0].text.contains("Browsers you have signed in with before still work"), "{}", told[0].text);
    assert!(told[0].text.contains("http://doorman.test/forgot-password"), "{}", told[0].text);
    // More refusals the same day send nothing more.
    app.login_as(&TestApp::new_client(), OWNER_AT_HOME, "owner@example.com", PASSWORD).await;
    assert!(app.deliver().await.iter().all(|m| m.kind != "logins_paused"), "at most one a day");

    // A reset ends the lock on both aliases (S3.1).
    let mail = app.reset_mail("owner@example.com").await;
    let done = app.reset(serde_json::json!({ "token": mail.token("reset-password"), "new_password": "a brand new long passphrase" })).await;
    assert_eq!(done.status, 200, "{}", done.text);
    for login in ["northwind", "owner@example.com"] {
        let after = app.login_as(&TestApp::new_client(), OWNER_AT_HOME, login, "a brand new long passphrase").await;
        assert_eq!(after.status, 200, "{login}: {}", after.text);
    }
}

/// S3.9, S3.3: a browser that signed in before keeps its own budget: a flood of guesses
/// from elsewhere, by username and by email, does not lock it out, and it is exempt from
/// the address budgets (carrier NAT).
async fn s3_9_a_trusted_browser_signs_in_through_a_flood_of_guesses(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("northwind", "owner@example.com").await;
    let owners_browser = TestApp::new_client();
    let first = app.login_as(&owners_browser, OWNER_AT_HOME, "northwind", PASSWORD).await;
    assert_eq!(first.status, 200);
    let device_cookie = first.set_cookies().into_iter().find(|c| c.starts_with("doorman_device_")).expect("a device cookie");
    assert!(device_cookie.contains("HttpOnly") && device_cookie.contains("Max-Age="), "{device_cookie}");
    app.post_json(&owners_browser, "/api/v1/logout", serde_json::json!({})).await;

    flood(&app, "northwind").await;
    flood(&app, "owner@example.com").await;
    assert_eq!(app.login_as(&TestApp::new_client(), OWNER_AT_HOME, "northwind", PASSWORD).await.status, 429);
    // The owner's browser, even from an address that spent its own budget.
    let shared_address = "203.0.113.9";
    let stranger = TestApp::new_client();
    for i in 0..50 {
        app.login_as(&stranger, shared_address, &format!("someone{i}"), "guess guess guess").await;
    }
    assert_eq!(app.login_as(&TestApp::new_client(), shared_address, "someone", "x").await.status, 429, "the address is spent");
    let back = app.login_as(&owners_browser, shared_address, "owner@example.com", PASSWORD).await;
    assert_eq!(back.status, 200, "{}", back.text);
    let rotated = back.set_cookies().into_iter().find(|c| c.starts_with("doorman_device_")).expect("rotated at each sign-in");
    assert_ne!(rotated, device_cookie);
}

/// S3.9: ten wrong passwords from a trusted browser spend its own budget; after that it
/// counts like any other browser (and the old device cookie, once rotated, is worthless).
async fn s3_9_a_trusted_device_has_its_own_small_budget_then_counts_like_any_browser(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("northwind", "owner@example.com").await;
    let browser = TestApp::new_client();
    assert_eq!(app.login_as(&browser, OWNER_AT_HOME, "northwind", PASSWORD).await.status, 200);
    app.post_json(&browser, "/api/v1/logout", serde_json::json!({})).await;
    // Ten failures, each from a new address: the device's budget alone counts them.
    for i in 0..10 {
        let ip = format!("10.9.{i}.1");
        assert_eq!(app.login_as(&browser, &ip, "northwind", "guess guess guess").await.status, 401);
    }
    assert_eq!(failures(&app, "wrong_password; trusted device").await, 10);
    // The eleventh is counted like any browser's: still a plain wrong password, the
    // address and login budgets now apply.
    assert_eq!(app.login_as(&browser, "10.9.99.1", "northwind", "guess guess guess").await.status, 401);
    assert_eq!(failures(&app, "wrong_password").await, 1);
}

/// How many of northwind's audited login failures carry this detail.
async fn failures(app: &TestApp, detail: &str) -> usize {
    let store = &app.services.store;
    let account = store.find_for_login("northwind").await.unwrap().unwrap().0;
    store.audit_of(&account.id, 50).await.unwrap().iter().filter(|r| r.detail == detail).count()
}

/// S3.9: a password reset and "sign out everywhere" revoke every trusted device.
async fn s3_9_trusted_devices_end_with_a_reset_and_with_sign_out_everywhere(backend: Backend) {
    for revoke in ["reset", "sign out everywhere"] {
        let app = TestApp::spawn(backend).await;
        app.create_account("northwind", "owner@example.com").await;
        let browser = TestApp::new_client();
        assert_eq!(app.login_as(&browser, OWNER_AT_HOME, "northwind", PASSWORD).await.status, 200);
        let mut password = PASSWORD.to_owned();
        if revoke == "reset" {
            app.post_json(&browser, "/api/v1/logout", serde_json::json!({})).await;
            let mail = app.reset_mail("northwind").await;
            password = "a brand new long passphrase".into();
            let done = app.reset(serde_json::json!({ "token": mail.token("reset-password"), "new_password": password })).await;
            assert_eq!(done.status, 200);
        } else {
            let other = TestApp::new_client();
            assert_eq!(app.login_as(&other, OWNER_AT_HOME, "northwind", PASSWORD).await.status, 200);
            let revoked = app.client_delete(&other, "/api/v1/account/sessions/others").await;
            assert_eq!(revoked, 200);
            app.post_json(&other, "/api/v1/logout", serde_json::json!({})).await;
        }
        flood(&app, "northwind").await;
        let locked = app.login_as(&browser, OWNER_AT_HOME, "northwind", &password).await;
        assert_eq!(locked.status, 429, "{revoke}: the device is no longer trusted: {}", locked.text);
    }
}

impl TestApp {
    async fn client_delete(&self, client: &reqwest::Client, path: &str) -> u16 {
        client.delete(self.url(path)).json(&serde_json::json!({})).send().await.unwrap().status().as_u16()
    }
}
