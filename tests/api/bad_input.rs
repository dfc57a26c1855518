use crate::help::{add_article, admin, form_csrf, post_form};
use crate::helpers::{Backend, PASSWORD, Response, TestApp, csrf_of};
use crate::on_both_backends;
use doorman_core::audit::AuditEvent;
use serde_json::json;

on_both_backends!(
    bad_json_bodies_get_clear_4xx_answers,
    malformed_cookies_are_treated_as_signed_out,
    unknown_routes_and_methods_answer_in_kind,
    control_characters_are_refused_at_the_edge,
    tabs_and_line_breaks_only_in_free_text_fields,
    every_error_answers_in_our_shape,
    domain_values_are_refused_at_the_edge_with_the_domains_answer,
    guesses_are_never_refused_at_the_edge,
    forms_show_a_refused_value_on_the_form,
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

/// Typed edges: a request body deserializes into the domain's types, so a value one refuses is
/// answered before any handler runs, with the code and words the domain gives it, and nothing
/// happens. Where the handler would first have asked for something else (a step-up, another
/// method), the refused value's answer now comes first: no handler ran.
async fn domain_values_are_refused_at_the_edge_with_the_domains_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let account = app.create_account("maria", "maria@example.com").await;
    let store = &app.services.store;
    let client = TestApp::new_client();
    assert_eq!(app.login_as(&client, "192.0.2.10", "maria", PASSWORD).await.status, 200);
    let other = TestApp::new_client();
    assert_eq!(app.login_as(&other, "192.0.2.11", "maria", PASSWORD).await.status, 200);
    app.deliver().await; // the second browser's new-device alert (issue 11 §5)
    let anonymous = TestApp::new_client();

    // A phone number that cannot be a mobile number, whatever the account's country.
    for (phone, message) in [
        ("+63 2 8123 4567", "That number cannot receive text messages (a landline). Enter a mobile number."),
        ("+63 917 123", "That phone number does not exist. Check the digits and the country code."),
        ("maria", "That is not a phone number. Enter it with its country code, such as +63 917 123 4567."),
        ("   ", "Enter a mobile phone number."),
    ] {
        let refused = post(&app, &client, "/api/v1/account/two-step/sms", json!({ "phone": phone })).await;
        assert_eq!((refused.status, refused.error_code().as_str()), (400, "invalid_phone"), "{phone:?}: {}", refused.text);
        assert_eq!(refused.json()["message"], message, "{phone:?}");
    }
    // A security answer anyone could guess: answered before the handler asks for another
    // method first (409), and before the answer is compared with the password.
    let trivial =
        post(&app, &client, "/api/v1/account/two-step/security-question", json!({ "question_id": "first_concert", "answer": "none" }))
            .await;
    assert_eq!((trivial.status, trivial.error_code().as_str()), (422, "weak_answer"), "{}", trivial.text);
    let alone = post(
        &app,
        &client,
        "/api/v1/account/two-step/security-question",
        json!({ "question_id": "first_concert", "answer": "Pink Floyd" }),
    )
    .await;
    assert_eq!((alone.status, alone.error_code().as_str()), (409, "method_required"), "the handler's own first answer");
    // An email address that is none.
    let email = post(&app, &client, "/api/v1/account/email", json!({ "new_email": "maria@" })).await;
    assert_eq!((email.status, email.error_code().as_str()), (400, "invalid_email"), "{}", email.text);
    assert_eq!(email.json()["message"], "That is not a valid email address.");
    // Tokens that cannot be tokens, each with its own link's words.
    let confirm = post(&app, &anonymous, "/api/v1/account/email/confirm", json!({ "token": "short" })).await;
    assert_eq!((confirm.status, confirm.error_code().as_str()), (400, "invalid_token"));
    assert!(confirm.json()["message"].as_str().unwrap().starts_with("This confirmation link is not valid"), "{}", confirm.text);
    let reset = app.reset(json!({ "token": "short", "new_password": "a brand new passphrase" })).await;
    assert_eq!((reset.status, reset.error_code().as_str()), (400, "invalid_token"));
    assert!(reset.json()["message"].as_str().unwrap().starts_with("This reset link is not valid"), "{}", reset.text);

    // A new password too long to accept: with the right current password, and without one
    // past the step-up window, where the handler would have asked for a step-up first.
    let too_long = "x".repeat(1025);
    let change = json!({ "current_password": PASSWORD, "new_password": too_long });
    let weak = post(&app, &client, "/api/v1/account/password", change).await;
    assert_eq!((weak.status, weak.error_code().as_str()), (422, "weak_password"), "{}", weak.text);
    assert_eq!(weak.json()["message"], "Use at most 1024 characters.");
    app.clock.advance(11 * 60);
    let first = post(&app, &client, "/api/v1/account/password", json!({ "new_password": too_long })).await;
    assert_eq!((first.status, first.error_code().as_str()), (422, "weak_password"), "{}", first.text);
    let asked = post(&app, &client, "/api/v1/account/password", json!({ "new_password": "violet canyon drumbeat" })).await;
    assert_eq!((asked.status, asked.error_code().as_str()), (403, "step_up_required"), "the handler's own first answer");

    // Nothing happened: no method stored, nothing texted or emailed, nothing audited, the
    // password and the other session unchanged.
    assert!(store.factors_of(&account.id).await.unwrap().is_empty(), "no method stored");
    assert!(app.deliver().await.is_empty(), "nothing texted or emailed");
    let audited: Vec<AuditEvent> = store.audit_of(&account.id, 50).await.unwrap().into_iter().map(|r| r.event).collect();
    for event in [AuditEvent::PasswordChanged, AuditEvent::PasswordChangeFailed, AuditEvent::FactorAdded, AuditEvent::EmailChangeRequested]
    {
        assert!(!audited.contains(&event), "{event:?} in {audited:?}");
    }
    assert_eq!(app.get(&other, "/api/v1/session").await.status, 200, "the other session goes on");
    assert_eq!(app.login("maria", PASSWORD).await.status, 200, "the password did not change");
}

/// Where a rule forbids answering a bad value at the edge, it is not refused there: a password
/// typed to be checked, whatever its length, is a wrong password (S2.1); a malformed reset code
/// or 2-step code is a guess, counted and answered like a wrong one (S3.7).
async fn guesses_are_never_refused_at_the_edge(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let wrong = app.login("maria", "not the password at all").await;
    let huge = app.login("maria", &"x".repeat(5000)).await;
    assert_eq!((huge.status, &huge.text), (wrong.status, &wrong.text), "the same answer as a wrong password");
    assert_eq!(huge.error_code(), "invalid_credentials");

    // Five malformed reset codes use up the email's tries, as five wrong ones do.
    let right = app.reset_mail("maria").await.code();
    for malformed in ["abcdefgh", "1234", "123456789", "12-34-56-7x", ""] {
        let refused = app.reset(json!({ "login": "maria", "code": malformed, "new_password": "a brand new passphrase" })).await;
        assert_eq!((refused.status, refused.error_code().as_str()), (400, "invalid_code"), "{malformed:?}: {}", refused.text);
    }
    let late = app.reset(json!({ "login": "maria", "code": right, "new_password": "a brand new passphrase" })).await;
    assert_eq!((late.status, late.error_code().as_str()), (429, "too_many_attempts"), "the right code after five guesses");
    assert!(late.json()["message"].as_str().unwrap().contains("Too many tries for this code"), "{}", late.text);

    // A step-up password too long to be the password is a wrong one.
    let client = TestApp::new_client();
    assert_eq!(app.login_as(&client, "192.0.2.12", "maria", PASSWORD).await.status, 200);
    let step_up = post(&app, &client, "/api/v1/step-up", json!({ "password": "x".repeat(5000) })).await;
    assert_eq!((step_up.status, step_up.error_code().as_str()), (401, "invalid_code"), "{}", step_up.text);

    // A 2-step code of no method's shape is a wrong code, counted toward the method's limit.
    let (_, method_id) = crate::two_step::enrol_totp(&app, &client).await;
    let second = TestApp::new_client();
    assert_eq!(app.login_as(&second, "192.0.2.13", "maria", PASSWORD).await.status, 200);
    for malformed in ["", "not a code", "12345", "1234567"] {
        let guess = post(&app, &second, "/api/v1/login/second-factor", json!({ "method_id": method_id, "code": malformed })).await;
        assert_eq!((guess.status, guess.error_code().as_str()), (401, "invalid_code"), "{malformed:?}: {}", guess.text);
    }
    let fifth = post(&app, &second, "/api/v1/login/second-factor", json!({ "method_id": method_id, "code": "x" })).await;
    assert_eq!(fifth.status, 401);
    let sixth = post(&app, &second, "/api/v1/login/second-factor", json!({ "method_id": method_id, "code": "y" })).await;
    assert_eq!((sixth.status, sixth.error_code().as_str()), (429, "too_many_attempts"), "five guesses counted: {}", sixth.text);
}

/// Pages take the same types, but a refused value is still shown on the page's own form,
/// with the reason and what was typed, as before values were typed at the edge.
async fn forms_show_a_refused_value_on_the_form(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let client = TestApp::new_client();
    assert_eq!(app.login_as(&client, "192.0.2.10", "maria", PASSWORD).await.status, 200);
    let csrf = csrf_of(&app.get(&client, "/account/security").await.text);
    let form = async |path: &str, fields: &[(&str, &str)]| {
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        Response::read(client.post(app.url(path)).form(&form).send().await.unwrap()).await
    };

    let phone = form("/account/security/sms", &[("phone", "+63 2 8123 4567")]).await;
    assert_eq!(phone.status, 400, "{}", phone.text);
    assert!(phone.text.contains("(a landline). Enter a mobile number.") && phone.text.contains("action=\"/account/security/sms\""));
    let answer = form("/account/security/question", &[("question_id", "first_concert"), ("answer", "none")]).await;
    assert_eq!(answer.status, 422, "{}", answer.text);
    assert!(answer.text.contains("That answer is too easy to guess") && answer.text.contains("action=\"/account/security/question\""));
    // The chosen question stays chosen (it went back to the first one), the answer field has focus.
    assert!(answer.text.contains("<option value=\"first_concert\" selected>"), "{}", answer.text);
    assert!(
        answer.text.contains("id=\"question-error\"") && answer.text.contains("aria-describedby=\"question-error\""),
        "{}",
        answer.text
    );
    let email = form("/account/email", &[("new_email", "maria@")]).await;
    assert_eq!(email.status, 400, "{}", email.text);
    assert!(email.text.contains("That is not a valid email address.") && email.text.contains("value=\"maria@\""), "{}", email.text);
    let too_long = "x".repeat(1025);
    let password = form("/account/password", &[("current_password", PASSWORD), ("new_password", &too_long)]).await;
    assert_eq!(password.status, 422, "{}", password.text);
    assert!(password.text.contains("Use at most 1024 characters.") && password.text.contains("action=\"/account/password\""));

    // The reset form's code step: a malformed code is a wrong code; the login is shown again
    // as typed, the code never (issue 10: no code is echoed into the page).
    let visitor = TestApp::new_client();
    let csrf = csrf_of(&app.get(&visitor, "/reset-password?with=code").await.text);
    let fields = [("csrf", csrf.as_str()), ("login", "Maria"), ("code", "12ab 5678")];
    let reset = Response::read(visitor.post(app.url("/reset-password/code")).form(&fields).send().await.unwrap()).await;
    assert_eq!(reset.status, 400, "{}", reset.text);
    assert!(reset.text.contains("That code is not right"), "{}", reset.text);
    assert!(reset.text.contains("value=\"Maria\"") && !reset.text.contains("12ab 5678"), "login kept, code not: {}", reset.text);
    assert_eq!(app.login("maria", PASSWORD).await.status, 200, "nothing changed");
}
