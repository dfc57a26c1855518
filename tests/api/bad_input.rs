use crate::help::{add_article, admin, form_csrf, post_form};
use crate::helpers::{csrf_of, Backend, Response, TestApp, PASSWORD};
use crate::on_both_backends;
use serde_json::json;

on_both_backends!(
    bad_json_bodies_get_clear_4xx_answers,
    malformed_cookies_are_treated_as_signed_out,
    unknown_routes_and_methods_answer_in_kind,
    control_characters_are_refused_at_the_edge,
    tabs_and_line_breaks_only_in_free_text_fields,
    every_error_answers_in_our_shape,
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

/// Sends `body` as JSON with `client` and reads the answer.
async fn post(app: &TestApp, client: &reqwest::Client, path: &str, body: serde_json::Value) -> Response {
    app.post_json(client, path, body).await
}

/// An error page's text with the quotes askama escapes put back.
fn unescaped(html: &str) -> String {
    html.replace("&#39;", "'").replace("&#x27;", "'")
}

/// Asserts a 400 in the JSON error shape whose message names the problem.
fn assert_refused(response: &Response, code: &str, what: &str) {
    assert_eq!(response.status, 400, "{what}: {}", response.text);
    assert_eq!(response.error_code(), code, "{what}");
    assert!(response.json()["message"].as_str().unwrap().contains("control character"), "{what}: {}", response.text);
}

/// Issue 8 item 4: a control character in any field, path segment or query value is refused
/// at the edge with 400 in the usual shape. On PostgreSQL a NUL used to reach the database
/// and answer 500 (text columns cannot hold it).
async fn control_characters_are_refused_at_the_edge(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let anonymous = TestApp::new_client();

    // JSON bodies: NUL, another C0 control, DEL, and TAB/LF in a one-line field.
    for login in ["ma\u{0}ria", "ma\u{1}ria", "maria\u{7f}", "ma\tria", "maria\n", "ma\u{85}ria"] {
        let refused = post(&app, &anonymous, "/api/v1/login", json!({ "login": login, "password": PASSWORD })).await;
        assert_refused(&refused, "invalid_body", &format!("login {login:?}"));
        assert!(refused.json()["message"].as_str().unwrap().contains("'login'"), "names the field: {}", refused.text);
    }
    let key = post(&app, &anonymous, "/api/v1/login", json!({ "login": "maria", "password": PASSWORD, "x\u{0}": 1 })).await;
    assert_refused(&key, "invalid_body", "a key");
    let forgot = post(&app, &anonymous, "/api/v1/password/forgot", json!({ "login": "\u{0}maria" })).await;
    assert_refused(&forgot, "invalid_body", "forgot");
    assert!(app.deliver().await.is_empty(), "nothing queued");
    let reset = json!({ "login": "maria\u{0}", "code": "12345678", "new_password": "violet canyon drumbeat" });
    assert_refused(&post(&app, &anonymous, "/api/v1/password/reset", reset).await, "invalid_body", "reset");
    let nested = json!({ "token": "x", "new_password": "violet canyon drumbeat", "second_factor": { "method_id": "\u{0}", "code": "1" } });
    let nested = post(&app, &anonymous, "/api/v1/password/reset", nested).await;
    assert_refused(&nested, "invalid_body", "a nested field");
    assert!(nested.json()["message"].as_str().unwrap().contains("'method_id'"), "{}", nested.text);
    let send = post(&app, &anonymous, "/api/v1/password/reset/send", json!({ "login": "\u{0}", "code": "1", "method_id": "m" })).await;
    assert_refused(&send, "invalid_body", "reset/send");

    // Signed in: a NUL id in a path or a body.
    let client = TestApp::new_client();
    assert_eq!(app.login_as(&client, "192.0.2.10", "maria", PASSWORD).await.status, 200);
    let revoke = Response::read(
        client.delete(app.url("/api/v1/account/sessions/%00")).header("content-type", "application/json").send().await.unwrap(),
    )
    .await;
    assert_refused(&revoke, "invalid_path", "DELETE sessions/%00");
    let remove = Response::read(
        client.delete(app.url("/api/v1/account/two-step/a%01b")).header("content-type", "application/json").send().await.unwrap(),
    )
    .await;
    assert_refused(&remove, "invalid_path", "DELETE two-step/%01");
    let default = post(&app, &client, "/api/v1/account/two-step/default", json!({ "method_id": "\u{0}" })).await;
    assert_refused(&default, "invalid_body", "two-step/default");
    let approve =
        post(&app, &client, "/api/v1/payments/withdrawals/approve", json!({ "approval_id": "\u{0}", "method_id": "\u{0}" })).await;
    assert_refused(&approve, "invalid_body", "withdrawals/approve");

    // Query strings, in the shape of where they were sent.
    let api = app.get(&anonymous, "/api/v1/help/articles?q=%00").await;
    assert_refused(&api, "invalid_query", "API query");
    let page = app.get(&anonymous, "/help?q=a%0Ab").await;
    assert_eq!(page.status, 400, "{}", page.text);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    assert!(unescaped(&page.text).contains("The query parameter 'q' contains a control character."), "{}", page.text);

    // Forms: the login and reset pages, with a valid token, answer with the error page.
    let visitor = TestApp::new_client();
    let csrf = csrf_of(&app.get(&visitor, "/login").await.text);
    let login = Response::read(
        visitor.post(app.url("/login")).form(&[("login", "ma\u{0}ria"), ("password", PASSWORD), ("csrf", &csrf)]).send().await.unwrap(),
    )
    .await;
    assert_eq!(login.status, 400, "{}", login.text);
    assert!(login.header("content-type").unwrap().starts_with("text/html"));
    assert!(unescaped(&login.text).contains("The field 'login' contains a control character."), "{}", login.text);
    let csrf = csrf_of(&app.get(&visitor, "/reset-password?with=code").await.text);
    let form = [("csrf", csrf.as_str()), ("login", "\u{0}"), ("code", "12345678"), ("new_password", "violet canyon drumbeat")];
    let reset = Response::read(visitor.post(app.url("/reset-password")).form(&form).send().await.unwrap()).await;
    assert_eq!(reset.status, 400, "{}", reset.text);
    assert!(reset.text.contains("control character"));

    // None of it touched the account.
    assert_eq!(app.login("maria", PASSWORD).await.status, 200);
}

/// Issue 8 item 4: TAB, LF and CR are accepted in the fields that hold free text over several
/// lines (`MULTI_LINE_FIELDS`: a vote's reason, an article's body, the banner document), and
/// nowhere else; NUL nowhere.
async fn tabs_and_line_breaks_only_in_free_text_fields(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    add_article(&app, "log-in", "Logging in", "Signing in", "Use your username.", "").await;
    let voter = TestApp::new_client();
    let vote = |reason: &'static str| {
        let request = voter.post(app.url("/api/v1/help/articles/log-in/vote")).header("X-Real-IP", "192.0.2.70");
        async move { Response::read(request.json(&json!({ "helpful": false, "reason": reason })).send().await.unwrap()).await }
    };
    assert_eq!(vote("Too short.\r\nIt did not say\twhere.").await.status, 200);
    let nul = vote("Too short.\u{0}").await;
    assert_refused(&nul, "invalid_body", "NUL in a reason");
    assert!(nul.json()["message"].as_str().unwrap().contains("only tabs and line breaks"), "{}", nul.text);

    let admin = admin(&app).await;
    let page = app.get(&admin, "/admin/help/new").await;
    let csrf = form_csrf(&page.text, "/admin/help/new");
    let article = |title: &'static str, body: &'static str| {
        [("csrf", csrf.clone()), ("slug", "two-lines".into()), ("title", title.into()), ("category", "Help".into()), ("body", body.into())]
    };
    let post = async |form: [(&str, String); 5]| {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        post_form(&app, &admin, "/admin/help/new", &form).await
    };
    let title = post(article("Two\nlines", "Line one.")).await;
    assert_eq!(title.status, 400, "a title is one line");
    assert!(unescaped(&title.text).contains("The field 'title' contains a control character."), "{}", title.text);
    let nul = post(article("Two lines", "Line one.\u{0}")).await;
    assert_eq!(nul.status, 400, "NUL is refused even in a body");
    let saved = post(article("Two lines", "Line one.\r\n\r\n\tLine two.")).await;
    assert_eq!(saved.status, 303, "{}", saved.text);
}

/// Issue 8 item 9: every refusal answers in our JSON shape under /api/, or as our error page.
async fn every_error_answers_in_our_shape(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let client = TestApp::new_client();

    let twice = app.get(&client, "/reset-password?token=a&token=b").await;
    assert_eq!(twice.status, 400, "{}", twice.text);
    assert!(twice.header("content-type").unwrap().starts_with("text/html"), "our error page");
    assert!(twice.text.contains("The query string could not be read"), "{}", twice.text);
    let not_text = app.get(&client, "/api/v1/help/articles/%ff%fe").await;
    assert_eq!((not_text.status, not_text.error_code().as_str()), (400, "invalid_path"));
    let page = app.get(&client, "/help/%ff%fe").await;
    assert_eq!(page.status, 400);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));

    // A JSON array has the fields of a login body in order; it is not one.
    let array = Response::read(client.post(app.url("/api/v1/login")).json(&json!(["maria", PASSWORD])).send().await.unwrap()).await;
    assert_eq!((array.status, array.error_code().as_str()), (400, "invalid_body"), "{}", array.text);
    assert!(array.text.contains("must be a JSON object"));
    for scalar in [json!("maria"), json!(null), json!(5)] {
        let refused = post(&app, &client, "/api/v1/password/forgot", scalar).await;
        assert_eq!((refused.status, refused.error_code().as_str()), (400, "invalid_body"));
    }

    // S8.1: a form post without its csrf field, or whose body is no form at all, gets the CSRF
    // error (403), not a 400 or 415: without a token nothing else about it matters.
    let visitor = TestApp::new_client();
    app.get(&visitor, "/login").await;
    let posts = [
        visitor.post(app.url("/login")).form(&[("login", "maria"), ("password", PASSWORD)]),
        visitor.post(app.url("/login")).form(&[("csrf", "")]),
        visitor.post(app.url("/login")),
        visitor.post(app.url("/login")).header("content-type", "text/plain").body("login=maria&password=x&csrf=x"),
        visitor.post(app.url("/forgot-password")).json(&json!({ "login": "maria" })),
        visitor.post(app.url("/reset-password")).form(&[("new_password", "violet canyon drumbeat")]),
    ];
    for (i, request) in posts.into_iter().enumerate() {
        let refused = Response::read(request.send().await.unwrap()).await;
        assert_eq!(refused.status, 403, "post {i}: {}", refused.text);
        assert!(refused.text.contains("This form has expired"), "post {i}");
    }
}
