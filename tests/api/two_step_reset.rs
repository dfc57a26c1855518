//! The 2-step reset after a waiting period (issue 11 §2) over the JSON API.

use crate::helpers::{Backend, Mail, PASSWORD, Response, TestApp, csrf_of, test_config};
use crate::on_both_backends;
use crate::two_step::{current_code, enrol_totp};
use doorman_core::factors::TotpSecret;
use serde_json::json;

on_both_backends!(
    a_two_step_reset_removes_every_method_after_the_wait_and_everyone_is_told,
    the_finish_link_is_refused_before_ready_at_and_needs_the_password,
    a_login_with_a_second_step_cancels_the_wait_and_a_new_request_waits_seven_days,
    the_cancel_link_ends_the_wait_once_and_the_owner_is_told,
    while_waiting_sensitive_changes_are_refused_whatever_the_proof,
    only_a_half_signed_in_session_starts_one_request_at_a_time,
    s1_9_s8_1_opening_a_link_changes_nothing_and_its_button_needs_the_form_token,
    s9_reporting_the_started_reset_locks_the_account_and_cancels_the_reset,
    s9_the_cancel_and_completion_emails_carry_their_own_report_link,
    a_lock_from_any_report_voids_a_requested_resets_confirm_link,
    the_reset_page_sends_a_visitor_to_log_in_and_the_login_comes_back_to_it,
    s3_8_parallel_requests_leave_one_reset_running_and_a_sign_in_cancels_it,
    a_link_that_does_not_work_shows_the_ways_on,
);

const WAIT_SECONDS: i64 = 4320 * 60;

/// maria, signed in (the returned client is her full session), with an authenticator app,
/// a confirmed phone and recovery codes.
async fn maria_with_methods(app: &TestApp) -> (reqwest::Client, TotpSecret, String) {
    app.create_account("maria", "maria@example.com").await;
    let full = TestApp::new_client();
    assert_eq!(app.login_as(&full, "192.0.2.10", "maria", PASSWORD).await.status, 200);
    let (secret, method_id) = enrol_totp(app, &full).await;
    let phone = app.post_json(&full, "/api/v1/account/two-step/sms", json!({ "phone": "0917 123 4521" })).await;
    let phone_id = phone.json()["method_id"].as_str().unwrap().to_owned();
    let texted = app.deliver().await.into_iter().find(|m| m.to.starts_with('+')).unwrap();
    let code = texted.text.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).unwrap().to_owned();
    let confirmed = app.post_json(&full, "/api/v1/account/two-step/sms/confirm", json!({ "method_id": phone_id, "code": code })).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    assert_eq!(app.post_json(&full, "/api/v1/account/two-step/recovery-codes", json!({})).await.status, 200);
    app.deliver().await;
    (full, secret, method_id)
}

/// A browser that just gave maria's password: half-signed-in.
async fn half_signed_in(app: &TestApp) -> reqwest::Client {
    let client = TestApp::new_client();
    let login = app.login_as(&client, "192.0.2.20", "maria", PASSWORD).await;
    assert_eq!(login.json()["status"], "second_factor_required");
    client
}

fn only(mails: &[Mail], kind: &str) -> Mail {
    let found: Vec<&Mail> = mails.iter().filter(|m| m.kind == kind).collect();
    assert_eq!(found.len(), 1, "one {kind}: {mails:?}");
    found[0].clone()
}

/// Requests and confirms a reset from a new half-signed-in browser; returns the mails the
/// confirmation sent and the confirm answer.
async fn start_wait(app: &TestApp) -> (Vec<Mail>, Response) {
    let half = half_signed_in(app).await;
    let asked = app.post_json(&half, "/api/v1/recovery/two-step-reset", json!({})).await;
    assert_eq!((asked.status, asked.json()), (202, json!({ "status": "email_sent" })), "{}", asked.text);
    let confirm = only(&app.deliver().await, "two_step_reset_confirm");
    assert_eq!(confirm.to, "maria@example.com");
    let token = confirm.token("two-step-reset/confirm");
    let confirmed = app.post_json(&TestApp::new_client(), "/api/v1/recovery/two-step-reset/confirm", json!({ "token": token })).await;
    (app.deliver().await, confirmed)
}

fn error_of(response: &Response) -> (u16, String) {
    (response.status, response.error_code())
}

/// The whole path: ask from the second step, confirm by email, wait, finish with the emailed
/// link and the password; every method, recovery code and session goes; everyone is told.
async fn a_two_step_reset_removes_every_method_after_the_wait_and_everyone_is_told(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (full, _, _) = maria_with_methods(&app).await;
    let half = half_signed_in(&app).await;
    assert_eq!(app.get(&half, "/api/v1/recovery/two-step-reset").await.json()["status"], "none");
    assert_eq!(app.post_json(&half, "/api/v1/recovery/two-step-reset", json!({})).await.status, 202);
    assert_eq!(app.get(&half, "/api/v1/recovery/two-step-reset").await.json()["status"], "email_sent");
    let confirm = only(&app.deliver().await, "two_step_reset_confirm");
    let token = confirm.token("two-step-reset/confirm");

    let bad = app.post_json(&half, "/api/v1/recovery/two-step-reset/confirm", json!({ "token": "not-a-token" })).await;
    assert_eq!(error_of(&bad), (400, "invalid_token".into()));
    let other = app.post_json(&half, "/api/v1/recovery/two-step-reset/confirm", json!({ "token": "A".repeat(43) })).await;
    assert_eq!(error_of(&other), (400, "invalid_token".into()));
    // Email access alone starts a wait, never more: the confirm link works from any browser.
    let confirmed = app.post_json(&TestApp::new_client(), "/api/v1/recovery/two-step-reset/confirm", json!({ "token": token })).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    assert_eq!(confirmed.json()["status"], "waiting");
    let ready_at = confirmed.json()["ready_at"].as_str().unwrap().to_owned();
    let expected = time::OffsetDateTime::from_unix_timestamp(doorman_core::Clock::unix(&*app.clock) + WAIT_SECONDS).unwrap();
    assert_eq!(time::OffsetDateTime::parse(&ready_at, &time::format_description::well_known::Rfc3339).unwrap(), expected);
    let used = app.post_json(&half, "/api/v1/recovery/two-step-reset/confirm", json!({ "token": token })).await;
    assert_eq!(error_of(&used), (400, "invalid_token".into()), "a confirm link works once");

    // Announced at once on every channel: the email with the time and a cancel link, the
    // phone with no link at all.
    let told = app.deliver().await;
    let email = only(&told, "two_step_reset_started");
    assert!(email.text.contains(&doorman_core::clock::rfc2822(expected.unix_timestamp())), "{}", email.text);
    assert!(email.link("http://doorman.test/two-step-reset/cancel?token=").len() > 50);
    let text = told.iter().find(|m| m.to == "+639171234521").expect("the phone is told");
    assert!(text.text.contains("Sign in to cancel") && !text.text.contains("http"), "{}", text.text);
    assert!(told.iter().all(|m| m.kind != "two_step_reset_ready"), "the finish link waits for the wait");

    let status = app.get(&half, "/api/v1/recovery/two-step-reset").await.json();
    assert_eq!((status["status"].as_str(), status["ready_at"].as_str()), (Some("waiting"), Some(ready_at.as_str())));
    assert_eq!(status["remaining_seconds"], WAIT_SECONDS);

    app.clock.advance(WAIT_SECONDS - 60);
    assert!(app.deliver().await.is_empty(), "nothing before the wait ends");
    app.clock.advance(61);
    let finish = only(&app.deliver().await, "two_step_reset_ready");
    let finish_token = finish.token("two-step-reset/finish");
    let fresh = half_signed_in(&app).await;
    assert_eq!(app.get(&fresh, "/api/v1/recovery/two-step-reset").await.json()["status"], "ready");
    let done = app.post_json(&fresh, "/api/v1/recovery/two-step-reset/complete", json!({ "token": finish_token })).await;
    assert_eq!((done.status, done.json()), (200, json!({ "status": "authenticated", "two_step": "removed" })), "{}", done.text);

    // Signed in, with no method left: straight on to set up a new one.
    let listed = app.get(&fresh, "/api/v1/account/two-step").await.json();
    assert_eq!((listed["enabled"].as_bool(), listed["methods"].as_array().map(Vec::len)), (Some(false), Some(0)), "{listed}");
    assert_eq!(app.get(&full, "/api/v1/session").await.status, 401, "every other session ended");
    assert_eq!(app.get(&half, "/api/v1/recovery/two-step-reset").await.status, 401);
    let again = app.post_json(&fresh, "/api/v1/recovery/two-step-reset/complete", json!({ "token": finish_token })).await;
    assert_eq!(again.status, 401, "a full session has nothing to finish");
    let later = half_signed_in_or_full(&app).await;
    assert_eq!(later, "authenticated", "the password alone now signs in: 2-step is off until a new method is set up");
    let told = app.deliver().await;
    let email = only(&told, "two_step_reset_completed");
    assert!(email.text.contains("was removed"), "{}", email.text);
    assert!(told.iter().any(|m| m.to == "+639171234521" && !m.text.contains("http")), "the phone is told: {told:?}");
}

async fn half_signed_in_or_full(app: &TestApp) -> String {
    let client = TestApp::new_client();
    app.login_as(&client, "192.0.2.30", "maria", PASSWORD).await.json()["status"].as_str().unwrap().to_owned()
}

/// Finishing needs the link, the password (a half-signed-in session) and the end of the
/// wait; a clock behind ready_at (a replica lagging) gets 409 with ready_at.
async fn the_finish_link_is_refused_before_ready_at_and_needs_the_password(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    maria_with_methods(&app).await;
    let (_, confirmed) = start_wait(&app).await;
    let ready_at = confirmed.json()["ready_at"].as_str().unwrap().to_owned();
    app.clock.advance(WAIT_SECONDS);
    let finish = only(&app.deliver().await, "two_step_reset_ready").token("two-step-reset/finish");

    let anonymous = app.post_json(&TestApp::new_client(), "/api/v1/recovery/two-step-reset/complete", json!({ "token": finish })).await;
    assert_eq!(error_of(&anonymous), (401, "not_authenticated".into()), "the link alone is not enough");
    let half = half_signed_in(&app).await;
    let wrong = app.post_json(&half, "/api/v1/recovery/two-step-reset/complete", json!({ "token": "B".repeat(43) })).await;
    assert_eq!(error_of(&wrong), (400, "invalid_token".into()));
    app.clock.advance(-30);
    let early = app.post_json(&half, "/api/v1/recovery/two-step-reset/complete", json!({ "token": finish })).await;
    assert_eq!(error_of(&early), (409, "not_ready".into()));
    assert_eq!(early.json()["ready_at"].as_str(), Some(ready_at.as_str()));
    assert!(early.json()["message"].as_str().unwrap().contains("not over"));
    app.clock.advance(30);
    let done = app.post_json(&half, "/api/v1/recovery/two-step-reset/complete", json!({ "token": finish })).await;
    assert_eq!(done.status, 200, "{}", done.text);
    let other = half_signed_in_or_full(&app).await;
    assert_eq!(other, "authenticated");
}

/// A login that passes a second step proves the owner still has a method: the wait ends,
/// the owner is told, no finish link ever goes, and a new request is refused for 7 days.
async fn a_login_with_a_second_step_cancels_the_wait_and_a_new_request_waits_seven_days(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, secret, method_id) = maria_with_methods(&app).await;
    let (_, confirmed) = start_wait(&app).await;
    assert_eq!(confirmed.status, 200);

    app.clock.advance(60);
    let owner = half_signed_in(&app).await;
    let passed = app
        .post_json(&owner, "/api/v1/login/second-factor", json!({ "method_id": method_id, "code": current_code(&app, &secret, 0) }))
        .await;
    assert_eq!(passed.status, 200, "{}", passed.text);
    let told = only(&app.deliver().await, "two_step_reset_cancelled");
    assert!(told.text.contains("you signed in with a 2-step verification method"), "{}", told.text);

    app.clock.advance(WAIT_SECONDS);
    assert!(app.deliver().await.iter().all(|m| m.kind != "two_step_reset_ready"), "no finish link after a cancel");
    let half = half_signed_in(&app).await;
    let status = app.get(&half, "/api/v1/recovery/two-step-reset").await.json();
    assert_eq!(status["status"], "cancelled", "{status}");
    assert!(status["new_request_after"].is_string());
    let refused = app.post_json(&half, "/api/v1/recovery/two-step-reset", json!({})).await;
    assert_eq!(error_of(&refused), (409, "recently_cancelled".into()));
    assert!(refused.json()["message"].as_str().unwrap().contains("ask support at /recovery-request"), "{}", refused.text);
    assert!(refused.json()["new_request_after"].is_string());
    assert!(app.deliver().await.is_empty(), "no email for a refused request");

    app.clock.advance(7 * 86_400 - WAIT_SECONDS);
    let half = half_signed_in(&app).await;
    assert_eq!(app.post_json(&half, "/api/v1/recovery/two-step-reset", json!({})).await.status, 202, "after 7 days, a new request");
}

/// The cancel link from the announcement: once, and the owner is told.
async fn the_cancel_link_ends_the_wait_once_and_the_owner_is_told(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    maria_with_methods(&app).await;
    let (told, _) = start_wait(&app).await;
    let cancel = only(&told, "two_step_reset_started").token("two-step-reset/cancel");
    let wrong = app.post_json(&TestApp::new_client(), "/api/v1/recovery/two-step-reset/cancel", json!({ "token": "C".repeat(43) })).await;
    assert_eq!(error_of(&wrong), (400, "invalid_token".into()));
    let done = app.post_json(&TestApp::new_client(), "/api/v1/recovery/two-step-reset/cancel", json!({ "token": cancel })).await;
    assert_eq!((done.status, done.json()), (200, json!({ "status": "cancelled" })));
    let again = app.post_json(&TestApp::new_client(), "/api/v1/recovery/two-step-reset/cancel", json!({ "token": cancel })).await;
    assert_eq!(error_of(&again), (400, "invalid_token".into()), "used");
    only(&app.deliver().await, "two_step_reset_cancelled");
    app.clock.advance(WAIT_SECONDS);
    assert!(app.deliver().await.is_empty(), "the finish email never goes");
}

/// While a reset waits, the domain refuses withdrawals and changes of email, password,
/// phone and methods, whatever proof is offered: the current password, a fresh step-up.
async fn while_waiting_sensitive_changes_are_refused_whatever_the_proof(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (full, secret, method_id) = maria_with_methods(&app).await;
    // A withdrawal approved before the wait started.
    let asked = app.post_json(&full, "/api/v1/payments/withdrawals", json!({ "amount": "10", "destination": "gcash" })).await;
    let approval = asked.json()["approval_id"].as_str().unwrap().to_owned();
    app.clock.advance(30);
    let approve = json!({ "approval_id": approval, "method_id": method_id, "code": current_code(&app, &secret, 0) });
    assert_eq!(app.post_json(&full, "/api/v1/payments/withdrawals/approve", approve).await.status, 200);
    let (_, confirmed) = start_wait(&app).await;
    assert_eq!(confirmed.status, 200);
    // A fresh step-up with the app does not cancel the wait (only a login does) and is no
    // way round it.
    app.clock.advance(30);
    let stepped = app.post_json(&full, "/api/v1/step-up", json!({ "method_id": method_id, "code": current_code(&app, &secret, 0) })).await;
    assert_eq!(stepped.status, 200, "{}", stepped.text);

    let refused = [
        ("/api/v1/account/password", json!({ "current_password": PASSWORD, "new_password": "a brand new passphrase here" })),
        ("/api/v1/account/password", json!({ "new_password": "a brand new passphrase here" })),
        ("/api/v1/account/email", json!({ "new_email": "maria.new@example.com" })),
        ("/api/v1/account/two-step/totp", json!({})),
        ("/api/v1/account/two-step/sms", json!({ "phone": "0917 765 4321" })),
        ("/api/v1/account/two-step/recovery-codes", json!({})),
        ("/api/v1/account/two-step/default", json!({ "method_id": method_id })),
        ("/api/v1/payments/withdrawals", json!({ "amount": "10", "destination": "gcash", "approval_id": approval })),
    ];
    for (path, body) in refused {
        let answer = app.post_json(&full, path, body).await;
        assert_eq!(error_of(&answer), (409, "two_step_reset_pending".into()), "{path}: {}", answer.text);
        assert!(answer.json()["message"].as_str().unwrap().contains("2-step reset is under way"));
    }
    let removed = full.delete(app.url(&format!("/api/v1/account/two-step/{method_id}"))).json(&json!({})).send().await.unwrap();
    assert_eq!(removed.status(), 409);
    // A reset by email link is a password change too.
    let mail = app.reset_mail("maria").await;
    app.clock.advance(30);
    let reset = app
        .reset(json!({ "token": mail.token("reset-password"), "new_password": "a brand new passphrase here",
                       "second_factor": { "method_id": method_id, "code": current_code(&app, &secret, 0) } }))
        .await;
    assert_eq!(error_of(&reset), (409, "two_step_reset_pending".into()), "{}", reset.text);
    let listed = app.get(&full, "/api/v1/account/two-step").await.json();
    assert_eq!(listed["methods"].as_array().unwrap().len(), 3, "nothing changed: {listed}");
    assert_eq!(app.login("maria", PASSWORD).await.json()["status"], "second_factor_required", "the password is the same");
}

/// One running request per account, only from a half-signed-in session.
async fn only_a_half_signed_in_session_starts_one_request_at_a_time(backend: Backend) {
    let app = TestApp::spawn_with(test_config(backend).await).await;
    let (full, _, _) = maria_with_methods(&app).await;
    let anonymous = app.post_json(&TestApp::new_client(), "/api/v1/recovery/two-step-reset", json!({})).await;
    assert_eq!(error_of(&anonymous), (401, "not_authenticated".into()));
    assert_eq!(app.post_json(&full, "/api/v1/recovery/two-step-reset", json!({})).await.status, 401, "a full session has its methods");
    assert_eq!(app.get(&TestApp::new_client(), "/api/v1/recovery/two-step-reset").await.status, 401);
    let extra = app.post_json(&half_signed_in(&app).await, "/api/v1/recovery/two-step-reset", json!({ "login": "maria" })).await;
    assert_eq!(extra.status, 400, "{}", extra.text);
    assert!(app.deliver().await.is_empty());

    // A newer request voids the older link.
    let half = half_signed_in(&app).await;
    assert_eq!(app.post_json(&half, "/api/v1/recovery/two-step-reset", json!({})).await.status, 202);
    let first = only(&app.deliver().await, "two_step_reset_confirm").token("two-step-reset/confirm");
    assert_eq!(app.post_json(&half, "/api/v1/recovery/two-step-reset", json!({})).await.status, 202);
    let second = only(&app.deliver().await, "two_step_reset_confirm").token("two-step-reset/confirm");
    let old = app.post_json(&half, "/api/v1/recovery/two-step-reset/confirm", json!({ "token": first })).await;
    assert_eq!(error_of(&old), (400, "invalid_token".into()));
    assert_eq!(app.post_json(&half, "/api/v1/recovery/two-step-reset/confirm", json!({ "token": second })).await.status, 200);
    let running = app.post_json(&half_signed_in(&app).await, "/api/v1/recovery/two-step-reset", json!({})).await;
    assert_eq!(error_of(&running), (409, "already_running".into()));
}

/// S1.9, S8.1: on pages, opening the confirm or cancel link changes nothing (the token moves
/// into a cookie and out of the address bar); only the button, with its form token, acts.
/// The second step of login offers the way in, and the reset's "Confirm it is you" says
/// there is none by email alone.
async fn s1_9_s8_1_opening_a_link_changes_nothing_and_its_button_needs_the_form_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    maria_with_methods(&app).await;
    let half = half_signed_in(&app).await;
    assert!(app.get(&half, "/login/verify").await.text.contains("href=\"/login/two-step-reset\""), "I can't use any of these");
    let page = app.get(&half, "/login/two-step-reset").await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("Email me a link to start"));
    assert!(app.deliver().await.is_empty(), "showing the page sends nothing");
    let started =
        Response::read(half.post(app.url("/login/two-step-reset")).form(&[("csrf", csrf_of(&page.text))]).send().await.unwrap()).await;
    assert!(started.text.contains("We emailed a link"), "{}", started.text);
    let token = only(&app.deliver().await, "two_step_reset_confirm").token("two-step-reset/confirm");

    let browser = TestApp::new_client();
    let opened = app.get(&browser, &format!("/two-step-reset/confirm?token={token}")).await;
    assert_eq!((opened.status, opened.header("location")), (303, Some("/two-step-reset/confirm")));
    assert_eq!(opened.header("referrer-policy"), Some("no-referrer"));
    let page = app.get(&browser, "/two-step-reset/confirm").await;
    assert!(page.text.contains("Start the waiting period") && !page.text.contains(&token), "the token is never written back");
    assert_eq!(app.get(&half, "/api/v1/recovery/two-step-reset").await.json()["status"], "email_sent", "opening changed nothing");
    let forged = Response::read(browser.post(app.url("/two-step-reset/confirm")).form(&[("csrf", "forged")]).send().await.unwrap()).await;
    assert_eq!(forged.status, 403);
    let done =
        Response::read(browser.post(app.url("/two-step-reset/confirm")).form(&[("csrf", csrf_of(&page.text))]).send().await.unwrap()).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert!(done.text.contains("The waiting period has started"));
    assert_eq!(app.get(&half, "/api/v1/recovery/two-step-reset").await.json()["status"], "waiting");

    let cancel = only(&app.deliver().await, "two_step_reset_started").token("two-step-reset/cancel");
    app.get(&browser, &format!("/two-step-reset/cancel?token={cancel}")).await;
    let page = app.get(&browser, "/two-step-reset/cancel").await;
    assert_eq!(app.get(&half, "/api/v1/recovery/two-step-reset").await.json()["status"], "waiting", "opening changed nothing");
    let done =
        Response::read(browser.post(app.url("/two-step-reset/cancel")).form(&[("csrf", csrf_of(&page.text))]).send().await.unwrap()).await;
    assert!(done.text.contains("The 2-step reset was cancelled"), "{}", done.text);
    assert_eq!(app.get(&half, "/api/v1/recovery/two-step-reset").await.json()["status"], "cancelled");
    let again =
        Response::read(browser.post(app.url("/two-step-reset/cancel")).form(&[("csrf", csrf_of(&page.text))]).send().await.unwrap()).await;
    assert_eq!(again.status, 400, "the link's cookie went with its use");
    only(&app.deliver().await, "two_step_reset_cancelled");

    // Forgot the password too: the reset says there is no way by email alone.
    let reset = app.reset_mail("maria").await;
    let reset_page = TestApp::new_client();
    app.get(&reset_page, &format!("/reset-password?token={}", reset.token("reset-password"))).await;
    let shown = app.get(&reset_page, "/reset-password").await.text;
    assert!(shown.contains("id=\"no-method-left\"") && shown.contains("no way back by email alone"), "{shown}");
}

fn report_token(mail: &Mail) -> String {
    mail.token("report-not-me")
}

async fn report(app: &TestApp, token: &str) -> Response {
    app.post_json(&TestApp::new_client(), "/api/v1/report-compromise", json!({ "token": token })).await
}

/// The start announcement carries "this wasn't me" (the texts never a link); reporting it
/// locks the account and cancels the reset: its cancel link dies, its finish email never
/// goes, and the owner keeps every method.
async fn s9_reporting_the_started_reset_locks_the_account_and_cancels_the_reset(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (full, secret, method_id) = maria_with_methods(&app).await;
    app.clock.advance(3600);
    let (told, confirmed) = start_wait(&app).await;
    assert_eq!(confirmed.status, 200);
    let started = only(&told, "two_step_reset_started");
    let token = report_token(&started);
    assert!(told.iter().filter(|m| m.to.starts_with('+')).all(|m| !m.text.contains("http")), "texts carry no link: {told:?}");
    let cancel = started.token("two-step-reset/cancel");

    let locked = report(&app, &token).await;
    assert_eq!((locked.status, locked.json()["status"].as_str()), (200, Some("locked")), "{}", locked.text);
    assert_eq!(app.get(&full, "/api/v1/session").await.status, 401);
    let used = app.post_json(&TestApp::new_client(), "/api/v1/recovery/two-step-reset/cancel", json!({ "token": cancel })).await;
    assert_eq!(error_of(&used), (400, "invalid_token".into()), "the reset's links died with it");
    app.clock.advance(WAIT_SECONDS + 60);
    let later = app.deliver().await;
    assert!(later.iter().all(|m| m.kind != "two_step_reset_ready"), "no finish link after the lock: {later:?}");

    // Unlocking (a reset with a method from before) finds every method still there.
    let reset = app.reset_mail("maria").await.token("reset-password");
    let second_factor = json!({ "method_id": method_id, "code": current_code(&app, &secret, 0) });
    let done = app.reset(json!({ "token": reset, "new_password": "violet canyon drumbeat", "second_factor": second_factor })).await;
    assert_eq!(done.status, 200, "{}", done.text);
    let client = TestApp::new_client();
    let login = app.login_as(&client, "192.0.2.40", "maria", "violet canyon drumbeat").await;
    assert_eq!(login.json()["status"], "second_factor_required", "2-step stays on: {}", login.text);
}

/// The cancel notice and the completion notice each carry their own working report link.
async fn s9_the_cancel_and_completion_emails_carry_their_own_report_link(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    maria_with_methods(&app).await;
    let (told, _) = start_wait(&app).await;
    let cancel = only(&told, "two_step_reset_started").token("two-step-reset/cancel");
    let done = app.post_json(&TestApp::new_client(), "/api/v1/recovery/two-step-reset/cancel", json!({ "token": cancel })).await;
    assert_eq!(done.status, 200);
    let cancelled = only(&app.deliver().await, "two_step_reset_cancelled");
    let cancelled_report = report_token(&cancelled);

    // A second account runs a reset to its end.
    app.clock.advance(7 * 86_400);
    let (_, confirmed) = start_wait(&app).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    app.clock.advance(WAIT_SECONDS);
    let finish = only(&app.deliver().await, "two_step_reset_ready").token("two-step-reset/finish");
    let half = half_signed_in(&app).await;
    let completed = app.post_json(&half, "/api/v1/recovery/two-step-reset/complete", json!({ "token": finish })).await;
    assert_eq!(completed.status, 200, "{}", completed.text);
    let completion = only(&app.deliver().await, "two_step_reset_completed");
    let completion_report = report_token(&completion);
    assert_ne!(completion_report, cancelled_report, "each email its own link");

    let maria = app.services.store.find_for_login("maria").await.unwrap().unwrap().0.id;
    assert!(app.services.store.factors_of(&maria).await.unwrap().is_empty(), "the reset removed every method");
    let locked = report(&app, &completion_report).await;
    assert_eq!((locked.status, locked.json()["status"].as_str()), (200, Some("locked")), "{}", locked.text);
    assert_eq!(app.get(&half, "/api/v1/session").await.status, 401, "whoever finished it is signed out");
    // The methods the reset removed come back, so the owner can unlock with one of them.
    let back = app.services.store.factors_of(&maria).await.unwrap();
    assert!(back.iter().any(|f| f.kind == doorman_core::factors::FactorKind::Totp), "{back:?}");
    // S10.4: the history keeps both: what the reset removed and what the report gave back
    // (not the spent recovery codes).
    // (Methods changed by one statement are written in no particular order among themselves.)
    let history = crate::two_step::stored_history(&app, &maria).await;
    let sorted = |mut part: Vec<_>| {
        part.sort();
        part
    };
    assert_eq!(history.len(), 8, "{history:?}");
    assert_eq!(
        sorted(history[3..6].to_vec()),
        [("recovery_code", "removed", "two_step_reset"), ("sms", "removed", "two_step_reset"), ("totp", "removed", "two_step_reset")]
    );
    assert_eq!(sorted(history[6..].to_vec()), [("sms", "restored", "report"), ("totp", "restored", "report")]);
    let second = report(&app, &cancelled_report).await;
    assert_eq!(second.status, 200, "the older link still works (its own case): {}", second.text);
}

/// A lock cancels a reset that was only requested too: its confirm link no longer starts a
/// wait.
async fn a_lock_from_any_report_voids_a_requested_resets_confirm_link(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (full, _, _) = maria_with_methods(&app).await;
    let half = half_signed_in(&app).await;
    assert_eq!(app.post_json(&half, "/api/v1/recovery/two-step-reset", json!({})).await.status, 202);
    let confirm = only(&app.deliver().await, "two_step_reset_confirm").token("two-step-reset/confirm");
    let entry = app.get(&full, "/api/v1/account/activity").await.json()["events"][0]["id"].as_i64().unwrap();
    let locked = app.post_json(&full, &format!("/api/v1/account/activity/{entry}/report"), json!({})).await;
    assert_eq!(locked.status, 200, "{}", locked.text);
    let late = app.post_json(&TestApp::new_client(), "/api/v1/recovery/two-step-reset/confirm", json!({ "token": confirm })).await;
    assert_eq!(error_of(&late), (400, "invalid_token".into()));
    assert!(app.deliver().await.iter().all(|m| m.kind != "two_step_reset_started"));
}

/// A person who lost every method opens the reset page (from the help center, say) without a
/// session: the login page says why it asks for the password, and once it is right comes
/// straight back to the reset, not to the second step they cannot pass. Only that fixed page:
/// any other `then` is ignored (no open redirect).
async fn the_reset_page_sends_a_visitor_to_log_in_and_the_login_comes_back_to_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    maria_with_methods(&app).await;
    app.create_account("bruno", "bruno@example.com").await;
    let login = |client: reqwest::Client, who: &'static str, then: &'static str| {
        let app = &app;
        async move {
            let page = app.get(&client, &format!("/login?then={then}")).await;
            assert_eq!(page.status, 200);
            let form =
                [("csrf", csrf_of(&page.text)), ("login", who.to_owned()), ("password", PASSWORD.to_owned()), ("then", then.to_owned())];
            Response::read(client.post(app.url("/login")).form(&form).send().await.unwrap()).await
        }
    };

    let browser = TestApp::new_client();
    let sent = app.get(&browser, "/login/two-step-reset").await;
    assert_eq!((sent.status, sent.header("location")), (303, Some("/login?then=two-step-reset")));
    let page = app.get(&browser, "/login?then=two-step-reset").await;
    assert!(page.text.contains("You will not be asked for a code") && page.text.contains("name=\"then\" value=\"two-step-reset\""));
    let back = login(browser.clone(), "maria", "two-step-reset").await;
    assert_eq!((back.status, back.header("location")), (303, Some("/login/two-step-reset")), "{}", back.text);
    let reset_page = app.get(&browser, "/login/two-step-reset").await;
    assert_eq!(reset_page.status, 200, "{}", reset_page.text);

    // A wrong password keeps the way back on the form.
    let wrong = {
        let client = TestApp::new_client();
        let page = app.get(&client, "/login?then=two-step-reset").await;
        let form = [
            ("csrf", csrf_of(&page.text)),
            ("login", "maria".to_owned()),
            ("password", "not it".to_owned()),
            ("then", "two-step-reset".to_owned()),
        ];
        Response::read(client.post(app.url("/login")).form(&form).send().await.unwrap()).await
    };
    assert_eq!(wrong.status, 401);
    assert!(wrong.text.contains("name=\"then\" value=\"two-step-reset\""), "{}", wrong.text);

    // Without 2-step there is nothing to reset: the account page, as any login; and a browser
    // signed in already ends there too (not sent back and forth between the two pages).
    let plain = TestApp::new_client();
    let signed_in = login(plain.clone(), "bruno", "two-step-reset").await;
    assert_eq!(signed_in.header("location"), Some("/account"));
    let first = app.get(&plain, "/login/two-step-reset").await;
    assert_eq!(first.header("location"), Some("/login?then=two-step-reset"));
    let second = app.get(&plain, "/login?then=two-step-reset").await;
    assert_eq!((second.status, second.header("location")), (303, Some("/account")));
    // Anything else is ignored: the second step as usual.
    for then in ["https://evil.example/", "//evil.example", "/account/security"] {
        let other = login(TestApp::new_client(), "maria", then).await;
        assert_eq!(other.header("location"), Some("/login/verify"), "{then}");
    }
}

/// S3.8: one running 2-step reset per account, held by the database. Found by an outside
/// attack on PostgreSQL: six requests at once (counted, then inserted) left five running and
/// three of their confirm links started waits; the owner's sign-in with her app cancelled
/// one, and the attacker (her password and her mailbox) finished another and removed 2-step.
async fn s3_8_parallel_requests_leave_one_reset_running_and_a_sign_in_cancels_it(backend: Backend) {
    let config = test_config(backend).await;
    let url = config.database_url.clone();
    let app = TestApp::spawn_with(config).await;
    let (_, secret, method_id) = maria_with_methods(&app).await;
    // Five at once: the day's limit of requests per account.
    let mut halves = Vec::new();
    for _ in 0..5 {
        halves.push(half_signed_in(&app).await);
    }
    let asks = halves.iter().map(|half| app.post_json(half, "/api/v1/recovery/two-step-reset", json!({})));
    let answers: Vec<(u16, String)> =
        futures::future::join_all(asks).await.iter().map(|r| if r.status == 202 { (202, String::new()) } else { error_of(r) }).collect();
    assert!(answers.iter().all(|a| a.0 == 202 || *a == (409, "already_running".to_owned())), "{answers:?}");
    let links: Vec<String> =
        app.deliver().await.iter().filter(|m| m.kind == "two_step_reset_confirm").map(|m| m.token("two-step-reset/confirm")).collect();
    assert!(!links.is_empty(), "{answers:?}");
    let confirms =
        links.iter().map(|token| app.post_json(&halves[0], "/api/v1/recovery/two-step-reset/confirm", json!({ "token": token })));
    let confirmed = futures::future::join_all(confirms).await.iter().filter(|r| r.status == 200).count();
    assert_eq!(confirmed, 1, "one wait runs, whatever the links");
    app.deliver().await;
    // However the requests interleave, the database itself refuses a second running reset.
    let store = doorman::store::SqlStore::connect(&url).await.unwrap();
    let second = sqlx::query(
        "INSERT INTO two_step_resets (id, account_id, status, confirm_hash, created_at, confirm_expires_at) \
         SELECT 'a-second-one', account_id, 'requested', 'x', created_at, confirm_expires_at FROM two_step_resets WHERE status = 'waiting'",
    )
    .execute(store.pool())
    .await;
    assert!(second.is_err(), "a second running reset was stored: {second:?}");

    app.clock.advance(60);
    let owner = half_signed_in(&app).await;
    let passed = app
        .post_json(&owner, "/api/v1/login/second-factor", json!({ "method_id": method_id, "code": current_code(&app, &secret, 0) }))
        .await;
    assert_eq!(passed.status, 200, "{}", passed.text);
    only(&app.deliver().await, "two_step_reset_cancelled");
    app.clock.advance(WAIT_SECONDS);
    assert!(app.deliver().await.iter().all(|m| m.kind != "two_step_reset_ready"), "no finish link survives the owner's sign-in");
    let status = app.get(&half_signed_in(&app).await, "/api/v1/recovery/two-step-reset").await.json();
    assert_eq!(status["status"], "cancelled", "{status}");
}

/// Found walking the pages on a phone: a cut-short, used or expired confirm, cancel or finish
/// link ended on a card with no way on, and someone who fears a hijack could not tell whether
/// the reset still ran. Each now links the reset's status and help.
async fn a_link_that_does_not_work_shows_the_ways_on(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    for path in ["/two-step-reset/confirm", "/two-step-reset/cancel", "/two-step-reset/finish"] {
        let browser = TestApp::new_client();
        let opened = app.get(&browser, &format!("{path}?token=cut-sho")).await;
        assert_eq!(opened.status, 303, "{path}");
        let page = app.get(&browser, path).await;
        assert_eq!(page.status, 400, "{path}: {}", page.text);
        assert!(page.text.contains("This link does not work"), "{path}: {}", page.text);
        assert!(
            page.text.contains("href=\"/login/two-step-reset\"") && page.text.contains("href=\"/help/two-step-verification\""),
            "{path}: {}",
            page.text
        );
    }
}
