use crate::helpers::{Backend, PASSWORD, TestApp, test_config};
use crate::on_both_backends;
use serde_json::json;

on_both_backends!(
    logout_ends_the_session_on_the_server,
    every_login_gets_a_new_session_id,
    idle_and_absolute_timeouts_are_enforced_on_the_server,
    session_cookie_flags,
    https_deployments_use_host_prefixed_secure_cookies,
    only_a_keyed_hash_of_the_session_id_is_stored,
    users_list_their_sessions_and_revoke_any_of_them,
);

fn cookie_value(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().split_once('=').unwrap().1.to_owned()
}

/// S7.5: after logout the old cookie gets 401.
async fn logout_ends_the_session_on_the_server(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let login = app.login("maria", PASSWORD).await;
    let cookie = cookie_value(&login.session_cookie());
    assert_eq!(app.post_json(&app.client, "/api/v1/logout", json!({})).await.status, 200);

    let replay =
        reqwest::Client::new().get(app.url("/api/v1/session")).header("cookie", format!("doorman_session={cookie}")).send().await.unwrap();
    let replay = crate::helpers::Response::read(replay).await;
    assert_eq!(replay.status, 401);
    assert_eq!(replay.error_code(), "not_authenticated");
    let again = app.post_json(&app.client, "/api/v1/logout", json!({})).await;
    assert_eq!(again.status, 401);
}

/// S7.2: a new id at every login, and the session the browser had before is ended.
async fn every_login_gets_a_new_session_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let first = cookie_value(&app.login("maria", PASSWORD).await.session_cookie());
    let second = cookie_value(&app.login("maria", PASSWORD).await.session_cookie());
    assert_ne!(first, second);
    assert_eq!(first.len(), 43, "256 bits, base64url (S7.1)");
    let old =
        reqwest::Client::new().get(app.url("/api/v1/session")).header("cookie", format!("doorman_session={first}")).send().await.unwrap();
    assert_eq!(old.status(), 401);
    assert_eq!(app.get(&app.client, "/api/v1/session").await.status, 200);
}

/// S7.4: 30 minutes idle or 12 hours in all, decided by the server's clock.
async fn idle_and_absolute_timeouts_are_enforced_on_the_server(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    app.login("maria", PASSWORD).await;
    app.clock.advance(29 * 60);
    assert_eq!(app.get(&app.client, "/api/v1/session").await.status, 200, "activity within 30 minutes keeps it");
    app.clock.advance(29 * 60);
    assert_eq!(app.get(&app.client, "/api/v1/session").await.status, 200, "idle time counts from the last activity");
    app.clock.advance(31 * 60);
    assert_eq!(app.get(&app.client, "/api/v1/session").await.status, 401, "31 idle minutes end it");

    app.login("maria", PASSWORD).await;
    for _ in 0..(12 * 60 / 20) {
        app.clock.advance(20 * 60);
        let status = app.get(&app.client, "/api/v1/session").await.status;
        if status == 401 {
            return;
        }
    }
    panic!("an active session must still end after 12 hours");
}

/// S7.3: HttpOnly, SameSite=Lax, Path=/, no Domain; no Secure over plain http.
async fn session_cookie_flags(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let cookie = app.login("maria", PASSWORD).await.session_cookie();
    assert!(cookie.starts_with("doorman_session="));
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie} lacks {flag}");
    }
    assert!(!cookie.to_lowercase().contains("domain="), "{cookie}");
    assert!(!cookie.contains("Secure"), "{cookie}");
    // A session id in the URL is never accepted (S7.3).
    let token = cookie_value(&cookie);
    let by_url = reqwest::Client::new().get(app.url(&format!("/api/v1/session?doorman_session={token}"))).send().await.unwrap();
    assert_eq!(by_url.status(), 401);
}

/// S7.3, S8.3: over https, cookies are `__Host-` prefixed and Secure, and HSTS is sent.
async fn https_deployments_use_host_prefixed_secure_cookies(backend: Backend) {
    let mut config = test_config(backend).await;
    config.base_url = url::Url::parse("https://doorman.test").unwrap();
    let app = TestApp::spawn_with(config).await;
    app.create_account("maria", "maria@example.com").await;
    let response = app.login("maria", PASSWORD).await;
    let cookie = response.session_cookie();
    assert!(cookie.starts_with("__Host-doorman_session="), "{cookie}");
    assert!(response.set_cookies().iter().all(|c| c.starts_with("__Host-") && c.contains("Secure")), "the device cookie too");
    assert!(cookie.contains("Secure") && cookie.contains("Path=/") && !cookie.to_lowercase().contains("domain="));
    assert!(response.header("strict-transport-security").is_some_and(|v| v.contains("max-age=")));
    let page = app.get(&TestApp::new_client(), "/login").await;
    assert!(page.set_cookies().iter().all(|c| c.starts_with("__Host-") && c.contains("Secure")));
}

/// S7.1: the database holds a keyed hash of the session id, never the id itself.
async fn only_a_keyed_hash_of_the_session_id_is_stored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let account = app.create_account("maria", "maria@example.com").await;
    let token = cookie_value(&app.login("maria", PASSWORD).await.session_cookie());
    let sessions = app.services.store.sessions_of(&account.id).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_ne!(sessions[0].id_hash, token);
    assert!(!sessions[0].id_hash.contains(&token));
    assert_eq!(sessions[0].id_hash.len(), 64, "HMAC-SHA-256, hex");
    assert_eq!(sessions[0].ip, "192.0.2.10");
}

/// S7.8, S7.7: users see where they are signed in and end any session, or all others;
/// another account's sessions are out of reach.
async fn users_list_their_sessions_and_revoke_any_of_them(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    app.create_account("jordan", "jordan@example.com").await;
    let laptop = TestApp::new_client();
    let phone = TestApp::new_client();
    let tablet = TestApp::new_client();
    for (client, ip) in [(&laptop, "198.51.100.1"), (&phone, "198.51.100.2"), (&tablet, "198.51.100.3")] {
        assert_eq!(app.login_as(client, ip, "maria", PASSWORD).await.status, 200);
    }
    let jordan = TestApp::new_client();
    app.login_as(&jordan, "203.0.113.9", "jordan", PASSWORD).await;
    let jordans = app.get(&jordan, "/api/v1/account/sessions").await.json()["sessions"][0]["id"].as_str().unwrap().to_owned();

    let listed = app.get(&laptop, "/api/v1/account/sessions").await.json();
    let sessions = listed["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 3);
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    let phone_id = sessions.iter().find(|s| s["ip"] == "198.51.100.2").unwrap()["id"].as_str().unwrap().to_owned();

    let delete = |client: &reqwest::Client, id: &str| {
        let request = client.delete(app.url(&format!("/api/v1/account/sessions/{id}"))).json(&json!({}));
        async move { crate::helpers::Response::read(request.send().await.unwrap()).await }
    };
    assert_eq!(delete(&laptop, &jordans).await.status, 404, "not maria's");
    assert_eq!(app.get(&jordan, "/api/v1/session").await.status, 200);
    assert_eq!(delete(&laptop, &phone_id).await.status, 200);
    assert_eq!(app.get(&phone, "/api/v1/session").await.status, 401);
    assert_eq!(app.get(&tablet, "/api/v1/session").await.status, 200);

    // The page: sign out everywhere else.
    let page = app.get(&laptop, "/account/sessions").await;
    assert!(page.text.contains("198.51.100.3"));
    let csrf = crate::helpers::csrf_of(&page.text);
    let done = laptop.post(app.url("/account/sessions/revoke")).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
    assert_eq!(done.status(), 303);
    assert_eq!(app.get(&tablet, "/api/v1/session").await.status, 401);
    assert_eq!(app.get(&laptop, "/api/v1/session").await.status, 200, "this browser stays signed in");
}
