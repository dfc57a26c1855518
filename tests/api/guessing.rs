//! Count, then compare (checklist S3.4, S3.7, S3.8, S6.1): every guess at a secret is counted
//! before it is compared, on every path (error pages and "send a code" helpers included),
//! and the limits hold when several replicas share one database.

use crate::helpers::{Backend, PASSWORD, Response, TestApp, csrf_of, test_config};
use crate::on_both_backends;
use crate::two_step::{current_code, enrol_totp};
use serde_json::json;

on_both_backends!(
    s3_7_reset_code_guesses_count_on_every_path_including_errors,
    s3_7_the_reset_page_shows_nothing_that_depends_on_an_unverified_code,
    s6_1_a_security_question_alone_never_passes_step_up,
    s3_8_limits_hold_across_two_replicas_on_one_database,
);

/// Another 8-digit code than `right`.
fn wrong(right: &str, nth: u64) -> String {
    let n: u64 = right.parse().unwrap();
    format!("{:08}", (n + 1 + nth) % 100_000_000)
}

/// The reset page's CSRF token for a fresh browser, which keeps the pre-session cookie.
async fn reset_page_csrf(app: &TestApp, browser: &reqwest::Client) -> String {
    let page = app.get(browser, "/reset-password?with=code").await;
    assert_eq!(page.status, 200);
    csrf_of(&page.text)
}

/// S3.7, S3.4: five wrong codes on any path use up the email's code, so that even the right
/// code is refused afterwards, and says so (429 `too_many_attempts`). The paths: the reset
/// page's code step, the API's reset with a password too long to accept (the error page
/// once compared without counting), and the API's "send me a code" helper. The page's
/// later steps take no code at all: a login and code posted to them compare nothing.
async fn s3_7_reset_code_guesses_count_on_every_path_including_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let too_long = "x".repeat(1100);
    for (i, path) in ["page code step", "api reset", "api send"].into_iter().enumerate() {
        let login = format!("maria{i}");
        app.create_account(&login, &format!("{login}@example.com")).await;
        let right = app.reset_mail(&login).await.code();
        let browser = TestApp::new_client();
        for nth in 0..5 {
            let code = wrong(&right, nth);
            let refused = match path {
                "page code step" => {
                    let csrf = reset_page_csrf(&app, &browser).await;
                    let form = [("csrf", csrf.as_str()), ("login", &login), ("code", &code)];
                    Response::read(browser.post(app.url("/reset-password/code")).form(&form).send().await.unwrap()).await
                }
                "api reset" => app.reset(json!({ "login": login, "code": code, "new_password": too_long })).await,
                _ => {
                    app.post_json(&browser, "/api/v1/password/reset/send", json!({ "login": login, "code": code, "method_id": "x" })).await
                }
            };
            assert_eq!(refused.status, 400, "{path}, guess {nth}: {}", refused.text);
        }
        let late = app.reset(json!({ "login": login, "code": right, "new_password": "a brand new long passphrase" })).await;
        assert_eq!((late.status, late.error_code().as_str()), (429, "too_many_attempts"), "{path}: the right code after five guesses");
        assert!(late.json()["message"].as_str().unwrap().starts_with("Too many tries for this code."), "{}", late.text);
        assert_eq!(app.login(&login, PASSWORD).await.status, 200, "{path}: the password did not change");
    }

    // The steps after the code take none: a login and code posted there are not compared
    // (and so not counted), and nothing happens.
    app.create_account("jordan", "jordan@example.com").await;
    let right = app.reset_mail("jordan").await.code();
    let browser = TestApp::new_client();
    for (target, nth) in [("/reset-password", 0), ("/reset-password/send", 1)] {
        let csrf = reset_page_csrf(&app, &browser).await;
        let code = wrong(&right, nth);
        let form = [("csrf", csrf.as_str()), ("login", "jordan"), ("code", &code), ("new_password", too_long.as_str()), ("method_id", "x")];
        let answer = Response::read(browser.post(app.url(target)).form(&form).send().await.unwrap()).await;
        assert_eq!(answer.status, 400, "{target}: {}", answer.text);
        assert!(answer.text.contains("id=\"new-email-link\""), "{target}: the ways forward: {}", answer.text);
    }
    let done = app.reset(json!({ "login": "jordan", "code": right, "new_password": "a brand new long passphrase" })).await;
    assert_eq!(done.status, 200, "nothing was counted: {}", done.text);
}

/// S3.7: a right code and a wrong one give pages that differ only in what the verified code
/// allows; the page for a wrong code never lists the account's methods. The right code is
/// exchanged for a continuation in the reset cookie, so the later steps (the page asking for
/// a method, a wrong app code, then the right one) neither need it again nor count.
async fn s3_7_the_reset_page_shows_nothing_that_depends_on_an_unverified_code(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let client = TestApp::new_client();
    assert_eq!(app.login_as(&client, "192.0.2.10", "maria", PASSWORD).await.status, 200);
    let (secret, totp_id) = enrol_totp(&app, &client).await;
    app.deliver().await;
    let right = app.reset_mail("maria").await.code();

    let browser = TestApp::new_client();
    let code_step = async |code: &str| {
        let csrf = reset_page_csrf(&app, &browser).await;
        let form = [("csrf", csrf.as_str()), ("login", "maria"), ("code", code)];
        Response::read(browser.post(app.url("/reset-password/code")).form(&form).send().await.unwrap()).await
    };
    let guessed = code_step(&wrong(&right, 0)).await;
    assert_eq!(guessed.status, 400);
    assert!(
        !guessed.text.contains("method_id") && !guessed.text.contains(&totp_id) && !guessed.text.contains("Authenticator app"),
        "a wrong code reveals nothing: {}",
        guessed.text
    );
    let unknown = {
        let csrf = reset_page_csrf(&app, &browser).await;
        let form = [("csrf", csrf.as_str()), ("login", "nobody"), ("code", &wrong(&right, 1))];
        Response::read(browser.post(app.url("/reset-password/code")).form(&form).send().await.unwrap()).await
    };
    let shape = |page: &Response, login: &str| page.text.replace(&csrf_of(&page.text), "CSRF").replace(login, "LOGIN");
    assert_eq!(
        (unknown.status, shape(&unknown, "nobody")),
        (guessed.status, shape(&guessed, "maria")),
        "the same page for an unknown login"
    );

    let passed = code_step(&right).await;
    assert_eq!((passed.status, passed.header("location")), (303, Some("/reset-password")), "{}", passed.text);
    let continuation = passed.set_cookies().into_iter().find(|c| c.starts_with("doorman_reset=c1.") && c.contains("HttpOnly"));
    let continuation = continuation.unwrap_or_else(|| panic!("{:?}", passed.set_cookies())).split(';').next().unwrap().to_owned();
    let asked = app.get(&browser, "/reset-password").await;
    assert!(asked.text.contains(&totp_id) && asked.text.contains("Authenticator app"), "a verified code shows the methods: {}", asked.text);
    assert!(
        !asked.text.contains(&right) && !asked.text.contains(&format!("{} {}", &right[..4], &right[4..])),
        "the code is not in the page"
    );

    let post = async |extra: &[(&str, &str)]| {
        let csrf = csrf_of(&app.get(&browser, "/reset-password").await.text);
        let mut form = vec![("csrf", csrf.as_str()), ("new_password", "a brand new long passphrase")];
        form.extend_from_slice(extra);
        Response::read(browser.post(app.url("/reset-password")).form(&form).send().await.unwrap()).await
    };
    let wrong_app = crate::two_step::wrong_code(&app, &secret, 0);
    let refused = post(&[("method_id", &totp_id), ("factor_code", &wrong_app)]).await;
    assert_eq!(refused.status, 401, "{}", refused.text);
    app.clock.advance(30); // the enrolment used this step's code (S5.3)
    let code = current_code(&app, &secret, 0);
    let done = post(&[("method_id", &totp_id), ("factor_code", &code)]).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(app.login("maria", "a brand new long passphrase").await.status, 200);
    let stale =
        Response::read(reqwest::Client::new().get(app.url("/reset-password")).header("cookie", continuation).send().await.unwrap()).await;
    assert_eq!(stale.status, 200, "{}", stale.text);
    assert!(stale.text.contains("This reset is not valid any more"), "the continuation died with its token: {}", stale.text);
}

/// S6.1: step-up is a single proof, so a security question cannot be it: refused on the API,
/// not offered on the page or in a `step_up_required` answer, and so no password change
/// without the current password follows from it.
async fn s6_1_a_security_question_alone_never_passes_step_up(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let client = TestApp::new_client();
    assert_eq!(app.login_as(&client, "192.0.2.10", "maria", PASSWORD).await.status, 200);
    enrol_totp(&app, &client).await;
    let question = app
        .post_json(&client, "/api/v1/account/two-step/security-question", json!({ "question_id": "first_concert", "answer": "Pink Floyd" }))
        .await;
    assert_eq!(question.status, 200, "{}", question.text);
    let question_id = question.json()["method_id"].as_str().unwrap().to_owned();
    app.clock.advance(11 * 60);

    let change = app.post_json(&client, "/api/v1/account/password", json!({ "new_password": "a brand new long passphrase" })).await;
    assert_eq!(change.status, 403, "{}", change.text);
    assert!(!change.text.contains(&question_id), "the question is not offered for step-up: {}", change.text);
    let step_up = app.post_json(&client, "/api/v1/step-up", json!({ "method_id": question_id, "code": "Pink Floyd" })).await;
    assert_eq!((step_up.status, step_up.error_code().as_str()), (400, "method_not_enough"), "{}", step_up.text);
    let change = app.post_json(&client, "/api/v1/account/password", json!({ "new_password": "a brand new long passphrase" })).await;
    assert_eq!(change.status, 403, "still no step-up: {}", change.text);
    let page = app.get(&client, "/step-up?next=/account/security&choose=1").await;
    assert!(!page.text.contains(&question_id) && !page.text.contains("first concert"), "not on the page: {}", page.text);
    assert_eq!(app.login("maria", PASSWORD).await.status, 200, "the password did not change");
}

/// S3.8: two replicas on one database. A burst of parallel guesses spread over both is
/// admitted exactly up to the limit: for the address-and-login delay (5 free failures), 5
/// wrong passwords are compared and every other guess is refused before hashing; and a
/// burst of wrong reset codes uses up the email's code on both.
async fn s3_8_limits_hold_across_two_replicas_on_one_database(backend: Backend) {
    let config = test_config(backend).await;
    let first = TestApp::spawn_with(config.clone()).await;
    let second = TestApp::spawn_with(config).await;
    first.create_account("maria", "maria@example.com").await;

    let guesses = (0..24).map(|i| {
        let app = if i % 2 == 0 { &first } else { &second };
        async move { app.login_as(&TestApp::new_client(), "203.0.113.5", "maria", "guess guess guess").await.status }
    });
    let statuses = futures::future::join_all(guesses).await;
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 5, "exactly five compared: {statuses:?}");
    // The others are refused before hashing: 429, or 503 for those of the burst that found
    // their replica's hashing queue full (a place is taken before the claim; both count nothing).
    assert!(statuses.iter().all(|s| [401, 429, 503].contains(s)), "{statuses:?}");
    assert!(statuses.iter().filter(|s| **s == 429).count() >= 9, "most are told to wait: {statuses:?}");
    let late = first.login_as(&TestApp::new_client(), "203.0.113.5", "maria", "guess guess guess").await;
    assert_eq!(late.status, 429, "{}", late.text);

    let right = first.reset_mail("maria").await.code();
    let codes = (0..16).map(|i| {
        let app = if i % 2 == 0 { &first } else { &second };
        let code = wrong(&right, i);
        async move { app.reset(json!({ "login": "maria", "code": code, "new_password": "a brand new long passphrase" })).await.status }
    });
    let statuses = futures::future::join_all(codes).await;
    assert_eq!(statuses.iter().filter(|s| **s == 400).count(), 5, "five compared as wrong: {statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 11, "the rest told the code is used up: {statuses:?}");
    for app in [&first, &second] {
        let late = app.reset(json!({ "login": "maria", "code": right, "new_password": "a brand new long passphrase" })).await;
        assert_eq!(late.status, 429, "the code is used up on every replica: {}", late.text);
    }
}
