use crate::helpers::{BASE_URL, Backend, PASSWORD, Response, TestApp, csrf_of};
use crate::on_both_backends;
use serde_json::json;

on_both_backends!(
    login_form_needs_a_csrf_token_bound_to_the_visitor,
    logout_form_needs_the_sessions_csrf_token,
    json_api_refuses_cross_site_requests,
    every_response_carries_the_security_headers,
);

/// S8.1: the login form needs a token bound to the visitor's pre-login session.
async fn login_form_needs_a_csrf_token_bound_to_the_visitor(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let visitor = TestApp::new_client();
    let page = app.get(&visitor, "/login").await;
    let csrf = csrf_of(&page.text);

    let missing = visitor.post(app.url("/login")).form(&[("login", "maria"), ("password", PASSWORD)]).send().await.unwrap();
    assert_eq!(missing.status(), 403, "a form without its csrf field is refused like a wrong token");
    let forged =
        visitor.post(app.url("/login")).form(&[("login", "maria"), ("password", PASSWORD), ("csrf", "forged")]).send().await.unwrap();
    assert_eq!(forged.status(), 403);
    assert!(forged.text().await.unwrap().contains("This form has expired"));

    // Another visitor's valid token does not work for this one.
    let other = TestApp::new_client();
    let other_csrf = csrf_of(&app.get(&other, "/login").await.text);
    assert_ne!(other_csrf, csrf);
    let stolen =
        visitor.post(app.url("/login")).form(&[("login", "maria"), ("password", PASSWORD), ("csrf", &other_csrf)]).send().await.unwrap();
    assert_eq!(stolen.status(), 403);
    // Without any cookie (a cross-site form post with no pre-session), refused too.
    let cookieless = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let blind =
        cookieless.post(app.url("/login")).form(&[("login", "maria"), ("password", PASSWORD), ("csrf", &csrf)]).send().await.unwrap();
    assert_eq!(blind.status(), 403);

    let ok = visitor.post(app.url("/login")).form(&[("login", "maria"), ("password", PASSWORD), ("csrf", &csrf)]).send().await.unwrap();
    assert_eq!(ok.status(), 303);
}

/// S8.1: signed-in forms carry a token bound to the session.
async fn logout_form_needs_the_sessions_csrf_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    app.login("maria", PASSWORD).await;
    let forged = app.client.post(app.url("/logout")).form(&[("csrf", "forged")]).send().await.unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(app.get(&app.client, "/api/v1/session").await.status, 200, "still signed in");
    // GET never changes state (S8.2).
    let get = app.get(&app.client, "/logout").await;
    assert_eq!(get.status, 405);
    assert_eq!(app.get(&app.client, "/api/v1/session").await.status, 200);
}

/// S8.2: the JSON API needs a JSON content type and refuses cross-site requests.
async fn json_api_refuses_cross_site_requests(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let body = json!({ "login": "maria", "password": PASSWORD });
    let send = |builder: reqwest::RequestBuilder| async move { Response::read(builder.send().await.unwrap()).await };

    let evil_origin = send(app.client.post(app.url("/api/v1/login")).header("origin", "https://evil.example").json(&body)).await;
    assert_eq!((evil_origin.status, evil_origin.error_code().as_str()), (403, "forbidden"));
    let cross_site = send(app.client.post(app.url("/api/v1/login")).header("sec-fetch-site", "cross-site").json(&body)).await;
    assert_eq!(cross_site.status, 403);
    let same_site = send(app.client.post(app.url("/api/v1/login")).header("sec-fetch-site", "same-site").json(&body)).await;
    assert_eq!(same_site.status, 403, "a sibling subdomain is another site's page");
    let form =
        send(app.client.post(app.url("/api/v1/login")).header("content-type", "application/x-www-form-urlencoded").body("login=maria"))
            .await;
    assert_eq!((form.status, form.error_code().as_str()), (415, "unsupported_media_type"));
    let text = send(app.client.post(app.url("/api/v1/logout")).header("content-type", "text/plain").body("{}")).await;
    assert_eq!(text.status, 415);

    let same_origin =
        send(app.client.post(app.url("/api/v1/login")).header("origin", BASE_URL).header("sec-fetch-site", "same-origin").json(&body))
            .await;
    assert_eq!(same_origin.status, 200);
}

/// S8.3, S7.9: CSP without inline script and with frame-ancestors 'none', nosniff,
/// a Referrer-Policy, and no-store, on pages, API answers and errors alike.
async fn every_response_carries_the_security_headers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    app.login("maria", PASSWORD).await;
    for path in ["/login", "/account", "/api/v1/session", "/api/v1/nothing", "/nothing", "/healthz"] {
        let response = app.get(&app.client, path).await;
        let csp = response.header("content-security-policy").unwrap_or_else(|| panic!("{path}: no CSP"));
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
        assert_eq!(response.header("x-content-type-options"), Some("nosniff"), "{path}");
        assert_eq!(response.header("x-frame-options"), Some("DENY"), "{path}");
        assert!(response.header("referrer-policy").is_some(), "{path}");
        assert_eq!(response.header("cache-control"), Some("no-store"), "{path}");
        assert!(response.header("x-request-id").is_some_and(|id| id.len() >= 32), "{path}");
        assert!(response.header("strict-transport-security").is_none(), "no HSTS over plain http");
    }
    // Pages hold no inline script: every <script> loads a file from this origin.
    let page = app.get(&TestApp::new_client(), "/login").await;
    for chunk in page.text.split("<script").skip(1) {
        assert!(chunk.trim_start().starts_with("src=\"/static/"), "inline script in /login: {chunk}");
    }
}
