//! The pages a locked-out or stuck person meets (issue 10): every error page and refusal
//! offers the next step, logging out says so, enrolment messages point only where there is
//! somewhere to go, and a question once answered is not asked again.

use crate::help::{add_article, form_csrf, post_form, signed_in};
use crate::helpers::{Backend, PASSWORD, TestApp, csrf_of};
use crate::on_both_backends;
use crate::two_step::{current_code, enrol_totp, wrong_code};
use doorman_core::UserType;
use serde_json::json;

on_both_backends!(
    error_pages_link_to_help_and_back,
    a_throttled_login_links_to_a_reset,
    reopening_a_spent_withdrawal_approval_leads_back_to_payments,
    logging_out_from_the_header_says_so,
    a_wrong_enrolment_code_points_to_no_other_method,
    the_first_method_asks_for_recovery_codes,
    s6_3_a_three_letter_security_answer_is_refused,
    a_no_with_its_reason_is_not_asked_for_again,
);

async fn error_pages_link_to_help_and_back(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let page = app.get(&TestApp::new_client(), "/no/such/page").await;
    assert_eq!(page.status, 404);
    assert!(page.text.contains(r#"<a href="/help" id="error-help">"#), "{}", page.text);
    assert!(page.text.contains(r#"<a href="/login">Back to log in</a>"#), "{}", page.text);

    let maria = signed_in(&app, "maria", UserType::Freelancer, "PH").await;
    let page = app.get(&maria, "/no/such/page").await;
    assert!(page.text.contains(r#"<a href="/account">Back to your account</a>"#), "{}", page.text);
}

async fn a_throttled_login_links_to_a_reset(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let client = TestApp::new_client();
    let mut last = None;
    for _ in 0..8 {
        let csrf = csrf_of(&app.get(&client, "/login").await.text);
        let tried = post_form(&app, &client, "/login", &[("login", "maria"), ("password", "guess guess guess"), ("csrf", &csrf)]).await;
        if tried.status == 429 {
            last = Some(tried);
            break;
        }
        assert_eq!(tried.status, 401, "{}", tried.text);
        assert!(!tried.text.contains("throttled-next"), "no reset offer for a plain wrong password");
    }
    let throttled = last.expect("the login form pauses after repeated failures");
    assert!(throttled.header("retry-after").is_some());
    assert!(
        throttled.text.contains(r#"id="throttled-next"><a href="/forgot-password" id="throttled-reset-link">Reset your password</a>"#)
            && throttled.text.contains(r#"href="/help/too-many-attempts""#),
        "{}",
        throttled.text
    );
}

async fn reopening_a_spent_withdrawal_approval_leads_back_to_payments(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let client = TestApp::new_client();
    assert_eq!(app.login_as(&client, "192.0.2.10", "maria", PASSWORD).await.status, 200);
    let (secret, method_id) = enrol_totp(&app, &client).await;
    let asked = app.post_json(&client, "/api/v1/payments/withdrawals", json!({ "amount": "20", "destination": "gcash" })).await;
    let approval = asked.json()["approval_id"].as_str().unwrap().to_owned();
    app.clock.advance(30);
    let code = current_code(&app, &secret, 0);
    let approve = json!({ "approval_id": approval, "method_id": method_id, "code": code });
    assert_eq!(app.post_json(&client, "/api/v1/payments/withdrawals/approve", approve).await.status, 200);
    let submit = json!({ "amount": "20", "destination": "gcash", "approval_id": approval });
    assert_eq!(app.post_json(&client, "/api/v1/payments/withdrawals", submit).await.status, 201);

    let reopened = app.get(&client, &format!("/payments/confirm/{approval}")).await;
    assert_eq!(reopened.status, 410, "{}", reopened.text);
    assert!(reopened.text.contains("This link has expired") && reopened.text.contains("already used or has expired"), "{}", reopened.text);
    assert!(reopened.text.contains(r#"<a href="/payments" class="primary-link" id="next-step">Go to Payments</a>"#), "{}", reopened.text);
}

async fn logging_out_from_the_header_says_so(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let maria = signed_in(&app, "maria", UserType::Freelancer, "PH").await;
    add_article(&app, "log-in", "Logging in", "Signing in", "How to log in.", "").await;
    // Any page, not only the account page, carries the header's log-out form.
    let page = app.get(&maria, "/help/log-in").await;
    let csrf = form_csrf(&page.text, "/logout");
    let out = post_form(&app, &maria, "/logout", &[("csrf", &csrf)]).await;
    assert_eq!((out.status, out.header("location")), (303, Some("/login?logged_out=1")));
    let login = app.get(&maria, "/login?logged_out=1").await;
    assert!(login.text.contains("You are logged out.") && login.text.contains(">Log in</a>"), "{}", login.text);
    assert_eq!(app.get(&maria, "/account").await.header("location"), Some("/login"), "the session ended");
}

async fn a_wrong_enrolment_code_points_to_no_other_method(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let client = TestApp::new_client();
    assert_eq!(app.login_as(&client, "192.0.2.10", "maria", PASSWORD).await.status, 200);
    let started = app.post_json(&client, "/api/v1/account/two-step/totp", json!({})).await.json();
    let secret = doorman_core::factors::TotpSecret::from_base32(started["secret"].as_str().unwrap()).unwrap();
    let wrong = json!({ "method_id": started["method_id"], "code": wrong_code(&app, &secret, 0) });
    let refused = app.post_json(&client, "/api/v1/account/two-step/totp/confirm", wrong).await;
    assert_eq!((refused.status, refused.error_code().as_str()), (401, "invalid_code"));
    let message = refused.json()["message"].as_str().unwrap().to_owned();
    assert!(!message.contains("another method") && message.contains("wait for the next one"), "{message}");
}

async fn the_first_method_asks_for_recovery_codes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let client = TestApp::new_client();
    assert_eq!(app.login_as(&client, "192.0.2.10", "maria", PASSWORD).await.status, 200);
    let before = app.get(&client, "/account/security").await;
    assert!(!before.text.contains("recovery-codes-prompt"), "nothing to back up yet");
    enrol_totp(&app, &client).await;
    let after = app.get(&client, "/account/security").await;
    assert!(after.text.contains(r#"id="recovery-codes-prompt""#) && after.text.contains("Save recovery codes now"), "{}", after.text);
    assert_eq!(app.post_json(&client, "/api/v1/account/two-step/recovery-codes", json!({})).await.status, 200);
    let saved = app.get(&client, "/account/security").await;
    assert!(!saved.text.contains("recovery-codes-prompt"), "{}", saved.text);
}

async fn s6_3_a_three_letter_security_answer_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let client = TestApp::new_client();
    assert_eq!(app.login_as(&client, "192.0.2.10", "maria", PASSWORD).await.status, 200);
    enrol_totp(&app, &client).await;
    let path = "/api/v1/account/two-step/security-question";
    let cat = app.post_json(&client, path, json!({ "question_id": "first_album", "answer": "cat" })).await;
    assert_eq!((cat.status, cat.error_code().as_str()), (422, "weak_answer"), "{}", cat.text);
    let rex = app.post_json(&client, path, json!({ "question_id": "first_album", "answer": "Rex the second" })).await;
    assert_eq!(rex.status, 200, "{}", rex.text);
}

async fn a_no_with_its_reason_is_not_asked_for_again(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    add_article(&app, "log-in", "Logging in", "Signing in", "How to log in.", "").await;
    let visitor = TestApp::new_client();
    let csrf = form_csrf(&app.get(&visitor, "/help/log-in").await.text, "/help/log-in/vote");
    let bare_no = [("csrf", csrf.as_str()), ("helpful", "no"), ("reason", "")];
    assert_eq!(post_form(&app, &visitor, "/help/log-in/vote", &bare_no).await.status, 303);
    let page = app.get(&visitor, "/help/log-in").await;
    assert!(page.text.contains(r#"<details class="vote-reason" open>"#) && page.text.contains("What was wrong?"), "{}", page.text);

    let explained = [("csrf", csrf.as_str()), ("helpful", "no"), ("choice", "missing_information"), ("reason", "No word on SSO.")];
    assert_eq!(post_form(&app, &visitor, "/help/log-in/vote", &explained).await.status, 303);
    let page = app.get(&visitor, "/help/log-in").await;
    assert!(page.text.contains("and why: we read every answer"), "{}", page.text);
    assert!(!page.text.contains("What was wrong?") && !page.text.contains("vote-reason"), "not asked again: {}", page.text);
    assert!(page.text.contains(r#"id="vote-yes""#), "the answer can still be changed");
}
