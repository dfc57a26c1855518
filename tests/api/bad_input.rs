use crate::helpers::{Backend, Response, TestApp, PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    bad_json_bodies_get_clear_4xx_answers,
    malformed_cookies_are_treated_as_signed_out,
    unknown_routes_and_methods_answer_in_kind,
);

async fn bad_json_bodies_get_clear_4xx_answers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let post = |body: Vec<u8>| {
        let request = app.client.post(app.url("/api/v1/login")).header("content-type", "application/json").body(body);
        async move { Response::read(request.send().await.unwrap()).await }
    };
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("not JSON", b"{login".to_vec(), 400, "invalid_body"),
        ("invalid UTF-8", b"{\"login\": \"\xff\xfe\", \"password\": \"x\"}".to_vec(), 400, "invalid_body"),
        ("missing field", br#"{"login": "maria"}"#.to_vec(), 400, "invalid_body"),
        ("wrong type", br#"{"login": 5, "password": "x"}"#.to_vec(), 400, "invalid_body"),
        ("unknown field", br#"{"login": "maria", "password": "x", "admin": true}"#.to_vec(), 400, "invalid_body"),
        ("empty", Vec::new(), 400, "invalid_body"),
        ("oversized", format!("{{\"login\": \"maria\", \"password\": \"{}\"}}", "x".repeat(70_000)).into_bytes(), 413, "body_too_large"),
    ];
    for (name, body, status, code) in cases {
        let response = post(body).await;
        assert_eq!(response.status, status, "{name}: {}", response.text);
        assert_eq!(response.error_code(), code, "{name}");
    }
    let missing = post(br#"{"login": "maria"}"#.to_vec()).await;
    assert!(missing.json()["message"].as_str().unwrap().contains("password"), "says which field: {}", missing.text);
    // A password longer than any accepted is just wrong, and costs no hashing (S4.8).
    let huge = app.login("maria", &"x".repeat(5000)).await;
    assert_eq!(huge.status, 401);
    // The account is untouched by all of it.
    assert_eq!(app.login("maria", PASSWORD).await.status, 200);
}

async fn malformed_cookies_are_treated_as_signed_out(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for cookie in [
        "doorman_session=",
        "doorman_session=%%%",
        "doorman_session=a;b;c",
        "doorman_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "garbage",
        "doorman_session=\u{7f}",
    ] {
        let response = reqwest::Client::new().get(app.url("/api/v1/session")).header("cookie", cookie).send().await;
        let Ok(response) = response else { continue };
        let response = Response::read(response).await;
        assert_eq!(response.status, 401, "{cookie:?}");
        assert_eq!(response.error_code(), "not_authenticated");
        let page = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let account = page.get(app.url("/account")).header("cookie", cookie).send().await.unwrap();
        assert_eq!(account.status(), 303, "{cookie:?}");
    }
}

async fn unknown_routes_and_methods_answer_in_kind(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = app.get(&app.client, "/api/v1/does-not-exist").await;
    assert_eq!((api.status, api.error_code().as_str()), (404, "not_found"));
    let page = app.get(&app.client, "/does-not-exist").await;
    assert_eq!(page.status, 404);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    assert!(page.text.contains("There is nothing at this address."));
    let method = app.get(&app.client, "/api/v1/login").await;
    assert_eq!((method.status, method.error_code().as_str()), (405, "method_not_allowed"));
}
