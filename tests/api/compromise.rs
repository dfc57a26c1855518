//! "This wasn't me" locks the account (issue 11 §4; checklist S7.7, S9, S2.1).

use crate::helpers::{BASE_URL, Backend, Mail, PASSWORD, Response, TestApp, csrf_of};
use crate::on_both_backends;
use crate::two_step::{current_code, enrol_totp};
use doorman_core::audit::AuditEvent;
use serde_json::{Value, json};

on_both_backends!(
    s9_every_security_email_reports_its_own_event_and_newer_emails_never_void_the_owners_link,
    s7_7_a_lock_revokes_every_session_and_token_and_refuses_password_login_after_the_right_password_only,
    a_reported_email_change_is_reverted_and_a_lock_that_took_every_method_waits_for_support,
    a_lock_on_an_account_without_two_step_is_lifted_by_a_reset,
    a_reported_method_is_removed_and_only_a_method_from_before_unlocks,
    the_report_page_asks_before_it_locks,
    s2_1_the_public_form_opens_a_case_without_locking_and_answers_the_same_for_everyone,
    s2_1_the_public_report_api_opens_a_case_and_answers_the_same_for_everyone,
    s3_6_public_reports_cannot_bury_the_support_queue,
    s1_12_a_lock_from_the_activity_page_that_takes_every_method_needs_a_step_up,
    s9_an_email_change_reported_from_the_activity_page_moves_the_account_back,
    s9_a_method_removal_reported_from_the_activity_page_puts_the_method_back,
    s7_7_a_session_that_outlives_its_accounts_lock_is_refused,
);

const NEW_PASSWORD: &str = "violet canyon drumbeat";
const DAY: i64 = 24 * 3600;

async fn signed_in(app: &TestApp, ip: &str) -> reqwest::Client {
    let client = TestApp::new_client();
    assert_eq!(app.login_as(&client, ip, "maria", PASSWORD).await.status, 200);
    client
}

fn report_token(mail: &Mail) -> String {
    mail.token("report-not-me")
}

async fn report(app: &TestApp, token: &str) -> Response {
    app.post_json(&TestApp::new_client(), "/api/v1/report-compromise", json!({ "token": token })).await
}

fn assert_locked(answer: &Response) -> String {
    assert_eq!(answer.status, 200, "{}", answer.text);
    let body = answer.json();
    assert_eq!(body["status"], "locked");
    let case = body["case"].as_str().expect("a case number").to_owned();
    assert!(case.starts_with("C-") && case.len() == 12, "{case}");
    case
}

/// Each security email carries a link tied to its event, valid for 30 days; the attacker's
/// later emails (a method added, then removed) never void the owner's older link.
async fn s9_every_security_email_reports_its_own_event_and_newer_emails_never_void_the_owners_link(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let owner = signed_in(&app, "192.0.2.10").await;
    let changed =
        app.post_json(&owner, "/api/v1/account/password", json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD })).await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    let mails = app.deliver().await;
    let owners_link = report_token(mails.iter().find(|m| m.kind == "password_changed").expect("the password-changed email"));

    // The attacker, who set that password, causes newer security emails.
    let attacker = TestApp::new_client();
    assert_eq!(app.login_as(&attacker, "198.51.100.7", "maria", NEW_PASSWORD).await.status, 200);
    let (_, totp_id) = enrol_totp(&app, &attacker).await;
    let removed =
        Response::read(attacker.delete(app.url(&format!("/api/v1/account/two-step/{totp_id}"))).json(&json!({})).send().await.unwrap())
            .await;
    assert_eq!(removed.status, 200);
    let newer = app.deliver().await;
    let links: Vec<String> = newer.iter().map(report_token).collect();
    assert_eq!(links.len(), 3, "the new-device sign-in, the method added and the method removed each carry a link: {newer:?}");
    assert!(newer.iter().all(|m| m.text.contains("works for 30 days")));
    assert!(!links.contains(&owners_link), "each email its own link");
    // Nor does a completed reset, whose own "password changed" email carries a newer link
    // (S1.5's cap is for reset links).
    let reset = app.reset_mail("maria").await.token("reset-password");
    assert_eq!(app.reset(json!({ "token": reset, "new_password": "another fine passphrase" })).await.status, 200);
    assert_eq!(report_token(&app.deliver().await[0]).len(), 43);

    app.clock.advance(29 * DAY);
    let case = assert_locked(&report(&app, &owners_link).await);
    let again = report(&app, &owners_link).await;
    assert_eq!((again.status, again.error_code().as_str()), (400, "invalid_token"), "single use");
    let notice = app.deliver().await;
    assert!(notice.iter().any(|m| m.to == "maria@example.com" && m.kind == "account_locked" && m.text.contains(&case)), "{notice:?}");

    // The other links live 30 days and then expire.
    app.clock.advance(2 * DAY);
    let expired = report(&app, &links[0]).await;
    assert_eq!((expired.status, expired.error_code().as_str()), (400, "invalid_token"));
    let junk = report(&app, "not-a-token").await;
    assert_eq!((junk.status, junk.error_code().as_str()), (400, "invalid_token"));
    assert!(junk.json()["message"].as_str().unwrap().starts_with("This link is not valid any more"), "{}", junk.text);
    let unknown = report(&app, &"A".repeat(43)).await;
    assert_eq!((unknown.status, unknown.error_code().as_str()), (400, "invalid_token"));
}

/// S7.7: a lock ends every session (the trusted browser's too), voids every reset link and
/// device cookie; a right password then gets 403 `account_locked` with what to do next,
/// and a wrong one the same 401 as an unknown account: the lock reveals nothing.
async fn s7_7_a_lock_revokes_every_session_and_token_and_refuses_password_login_after_the_right_password_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let account = app.create_account("maria", "maria@example.com").await;
    let phone = signed_in(&app, "192.0.2.10").await;
    let laptop = signed_in(&app, "192.0.2.11").await;
    let changed =
        app.post_json(&laptop, "/api/v1/account/password", json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD })).await;
    assert_eq!(changed.status, 200);
    let link = report_token(&app.deliver().await.into_iter().find(|m| m.kind == "password_changed").unwrap());
    let reset_link = app.reset_mail("maria").await.token("reset-password");
    assert_eq!(app.get(&laptop, "/api/v1/session").await.status, 200);

    let case = assert_locked(&report(&app, &link).await);

    assert_eq!(app.get(&phone, "/api/v1/session").await.status, 401, "every session ends");
    assert_eq!(app.get(&laptop, "/api/v1/session").await.status, 401);
    let dead = app.reset(json!({ "token": reset_link, "new_password": "another fine passphrase" })).await;
    assert_eq!((dead.status, dead.error_code().as_str()), (400, "invalid_token"), "reset links are voided");

    // The laptop was a trusted browser: its cookie no longer helps.
    let right = app.login_as(&laptop, "192.0.2.11", "maria", NEW_PASSWORD).await;
    assert_eq!((right.status, right.error_code().as_str()), (403, "account_locked"), "{}", right.text);
    assert!(right.json()["message"].as_str().unwrap().contains("reset your password"), "says what to do next");
    assert!(right.set_cookies().is_empty(), "no session for a locked account");
    let by_email = app.login_as(&TestApp::new_client(), "192.0.2.12", "maria@example.com", NEW_PASSWORD).await;
    assert_eq!(by_email.status, 403);

    let wrong = app.login_as(&TestApp::new_client(), "192.0.2.13", "maria", "not the password at all").await;
    let nobody = app.login_as(&TestApp::new_client(), "192.0.2.14", "nobody", "not the password at all").await;
    assert_eq!((wrong.status, wrong.error_code().as_str()), (401, "invalid_credentials"));
    assert_eq!((wrong.status, wrong.json()), (nobody.status, nobody.json()), "a wrong password learns nothing of the lock");
    let old = app.login_as(&TestApp::new_client(), "192.0.2.15", "maria", PASSWORD).await;
    assert_eq!(old.status, 401, "the replaced password is just wrong");

    // Audited: the lock (with its case) and the refused login.
    let events = app.services.store.audit_of(&account.id, 100).await.unwrap();
    let locked = events.iter().find(|e| e.event == AuditEvent::AccountLocked).expect("the lock is audited");
    assert!(locked.detail.contains(&case) && locked.detail.contains("password_changed"), "{}", locked.detail);
    assert_eq!(events.iter().filter(|e| e.event == AuditEvent::LoginRefusedLocked).count(), 2);

    // The login page says it too, only after the right password.
    let browser = TestApp::new_client();
    let form = app.get(&browser, "/login").await;
    let page = Response::read(
        browser
            .post(app.url("/login"))
            .form(&[("csrf", csrf_of(&form.text)), ("login", "maria".into()), ("password", NEW_PASSWORD.into())])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, 403);
    assert!(page.text.contains("This account is locked") && page.text.contains("id=\"locked-reset-link\""), "{}", page.text);
}

/// An address change reported from the old address: the account moves back to it, both
/// addresses are told, and a reset to the old address (2-step off) unlocks it.
async fn a_reported_email_change_is_reverted_and_a_lock_that_took_every_method_waits_for_support(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let account = app.create_account("maria", "maria@example.com").await;
    let attacker = signed_in(&app, "198.51.100.7").await;
    let asked = app.post_json(&attacker, "/api/v1/account/email", json!({ "new_email": "mallory@evil.example" })).await;
    assert_eq!(asked.status, 202, "{}", asked.text);
    let confirm = app.deliver().await.into_iter().find(|m| m.kind == "email_change").unwrap();
    let token = confirm.token("account/email/confirm");
    assert_eq!(app.post_json(&attacker, "/api/v1/account/email/confirm", json!({ "token": token })).await.status, 200);
    let told = app.deliver().await;
    let old_address_mail = told.iter().find(|m| m.to == "maria@example.com").expect("the old address is told");
    let owners_link = report_token(old_address_mail);
    // Newer emails to the attacker's address do not void the owner's link.
    enrol_totp(&app, &attacker).await;
    let later = app.deliver().await;
    assert!(later.iter().all(|m| m.to == "mallory@evil.example"));

    let case = assert_locked(&report(&app, &owners_link).await);
    // A second report on a locked account opens its own case and keeps the lock.
    let second = assert_locked(&report(&app, &report_token(&later[0])).await);
    assert_ne!(case, second);
    let notices = app.deliver().await;
    let to: Vec<&str> = notices.iter().filter(|m| m.kind == "account_locked").map(|m| m.to.as_str()).collect();
    assert!(to.contains(&"maria@example.com") && to.contains(&"mallory@evil.example"), "{to:?}");
    // The account answers to its old address again (and to the new one not at all).
    assert_eq!(app.login_as(&TestApp::new_client(), "192.0.2.10", "maria@example.com", PASSWORD).await.status, 403);
    assert_eq!(app.login_as(&TestApp::new_client(), "192.0.2.10", "mallory@evil.example", PASSWORD).await.status, 401);

    // The reset goes to the restored address. The attacker's app was added after the
    // reported event, so the lock removed it, and with it every method the account had: a
    // reset by email does not unlock, since whoever reads the old mailbox could report the
    // same way to strip an owner's newer methods (S1.12); support does
    // (`support_actions::s1_12_a_report_that_takes_every_method_away_is_lifted_by_support_only`).
    let reset = app.reset_mail("maria").await;
    assert_eq!(reset.to, "maria@example.com");
    let refused = app.reset(json!({ "token": reset.token("reset-password"), "new_password": NEW_PASSWORD })).await;
    assert_eq!((refused.status, refused.error_code().as_str()), (409, "support_unlock_required"), "{}", refused.text);
    assert_eq!(app.login_as(&TestApp::new_client(), "192.0.2.10", "maria", NEW_PASSWORD).await.status, 401);
    assert!(app.services.compromise.lock_of(&account.id).await.unwrap().is_some_and(|lock| lock.support_only));
}

/// The other side of S1.12: a lock on an account that had no 2-step method is lifted by a
/// reset by email, as before (nothing was taken away that the email alone could not do).
async fn a_lock_on_an_account_without_two_step_is_lifted_by_a_reset(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let account = app.create_account("maria", "maria@example.com").await;
    signed_in(&app, "192.0.2.10").await;
    app.deliver().await;
    signed_in(&app, "198.51.100.7").await;
    let sign_in = app.deliver().await.into_iter().find(|m| m.text.contains("report-not-me")).expect("a security email");
    assert_locked(&report(&app, &report_token(&sign_in)).await);
    app.deliver().await;
    let reset = app.reset_mail("maria").await;
    let done = app.reset(json!({ "token": reset.token("reset-password"), "new_password": NEW_PASSWORD })).await;
    assert_eq!(done.status, 200, "{}", done.text);
    let back = app.login_as(&TestApp::new_client(), "192.0.2.10", "maria", NEW_PASSWORD).await;
    assert_eq!((back.status, back.json()["status"].clone()), (200, json!("authenticated")), "unlocked, with a new password");
    let events = app.services.store.audit_of(&account.id, 100).await.unwrap();
    assert!(events.iter().any(|e| e.event == AuditEvent::AccountUnlocked && e.detail == "password reset"));
}

/// A method the attacker added is removed by the lock; recovery codes made after the event
/// stop working; the reset that unlocks accepts only a method from before the event.
async fn a_reported_method_is_removed_and_only_a_method_from_before_unlocks(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let owner = signed_in(&app, "192.0.2.10").await;
    let (secret, totp_id) = enrol_totp(&app, &owner).await;
    app.deliver().await;

    app.clock.advance(3600);
    let attacker = TestApp::new_client();
    assert_eq!(app.login_as(&attacker, "198.51.100.7", "maria", PASSWORD).await.json()["status"], "second_factor_required");
    let second = app
        .post_json(&attacker, "/api/v1/login/second-factor", json!({ "method_id": totp_id, "code": current_code(&app, &secret, 0) }))
        .await;
    assert_eq!(second.status, 200, "(a stolen code) {}", second.text);
    let question = app
        .post_json(&attacker, "/api/v1/account/two-step/security-question", json!({ "question_id": "first_album", "answer": "Rumours" }))
        .await;
    assert_eq!(question.status, 200, "{}", question.text);
    let question_id = question.json()["method_id"].as_str().unwrap().to_owned();
    let codes = app.post_json(&attacker, "/api/v1/account/two-step/recovery-codes", json!({})).await.json()["codes"].clone();
    let added = app.deliver().await.into_iter().find(|m| m.text.contains("was added")).expect("the method-added email");

    app.clock.advance(60);
    assert_locked(&report(&app, &report_token(&added)).await);
    app.deliver().await;
    // S10.4: the history shows what the attacker added, and that the report took it away.
    let account = app.services.store.find_for_login("maria").await.unwrap().unwrap().0.id;
    assert_eq!(
        crate::two_step::stored_history(&app, &account).await,
        [
            ("totp", "added", "owner"),
            ("security_question", "added", "owner"),
            ("recovery_code", "added", "owner"),
            ("security_question", "removed", "report"),
            ("recovery_code", "removed", "report"),
        ]
    );

    let reset = app.reset_mail("maria").await.token("reset-password");
    let needs = app.reset(json!({ "token": reset, "new_password": NEW_PASSWORD })).await;
    assert_eq!((needs.status, needs.error_code().as_str()), (403, "second_factor_required"));
    let offered: Vec<Value> = needs.json()["methods"].as_array().unwrap().clone();
    assert_eq!(offered.len(), 1, "only the app from before the event: {offered:?}");
    assert_eq!(offered[0]["id"], totp_id.as_str());
    let by_question = app
        .reset(json!({ "token": reset, "new_password": NEW_PASSWORD, "second_factor": { "method_id": question_id, "code": "Rumours" } }))
        .await;
    assert_eq!(by_question.status, 401, "the added question is gone: {}", by_question.text);
    let recovery_id = "recovery-codes-made-after-the-event";
    let by_code = app
        .reset(json!({ "token": reset, "new_password": NEW_PASSWORD, "second_factor": { "method_id": recovery_id, "code": codes[0] } }))
        .await;
    assert_eq!(by_code.status, 401);
    app.clock.advance(30);
    let by_app = app
        .reset(json!({ "token": reset, "new_password": NEW_PASSWORD, "second_factor": { "method_id": totp_id, "code": current_code(&app, &secret, 0) } }))
        .await;
    assert_eq!(by_app.status, 200, "{}", by_app.text);

    let back = app.login_as(&TestApp::new_client(), "192.0.2.10", "maria", NEW_PASSWORD).await;
    assert_eq!(back.json()["status"], "second_factor_required", "unlocked; 2-step still on");
    let methods = back.json()["methods"].as_array().unwrap().clone();
    let kinds: Vec<&str> = methods.iter().map(|m| m["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["totp"], "neither the question nor the attacker's recovery codes are left");
}

/// Opening the link changes nothing (the token leaves the address bar); the button locks.
async fn the_report_page_asks_before_it_locks(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let session = signed_in(&app, "192.0.2.10").await;
    enrol_totp(&app, &session).await;
    let token = report_token(&app.deliver().await[0]);

    let browser = TestApp::new_client();
    let opened = app.get(&browser, &format!("/report-not-me?token={token}")).await;
    assert_eq!((opened.status, opened.header("location")), (303, Some("/report-not-me")));
    assert_eq!(opened.header("referrer-policy"), Some("no-referrer"));
    let page = app.get(&browser, "/report-not-me").await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("A 2-step verification method was added.") && page.text.contains("Lock my account"), "{}", page.text);
    assert!(!page.text.contains(&token));
    assert_eq!(app.get(&session, "/api/v1/session").await.status, 200, "opening the link changes nothing");

    let forged = Response::read(browser.post(app.url("/report-not-me")).form(&[("csrf", "forged")]).send().await.unwrap()).await;
    assert_eq!(forged.status, 403);
    let done = Response::read(browser.post(app.url("/report-not-me")).form(&[("csrf", csrf_of(&page.text))]).send().await.unwrap()).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert!(done.text.contains("Your account is locked") && done.text.contains("The change you reported was undone"), "{}", done.text);
    // What to do next: the app was the only method and came after nothing, so the lock took
    // it, and support, not a reset by email, unlocks (S1.12).
    assert!(done.text.contains("id=\"support-unlock\"") && done.text.contains("href=\"/recovery-request\""), "says what to do next");
    assert_eq!(app.get(&session, "/api/v1/session").await.status, 401);

    let stale = app.get(&browser, "/report-not-me").await;
    assert_eq!(stale.status, 400);
    assert!(stale.text.contains("not valid any more"));
}

/// The public form: a case, no lock, and one answer whether or not the account exists;
/// limited per address. Linked from the login page.
async fn s2_1_the_public_form_opens_a_case_without_locking_and_answers_the_same_for_everyone(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    assert!(app.get(&TestApp::new_client(), "/login").await.text.contains("href=\"/report-compromise\""));
    assert!(app.get(&TestApp::new_client(), "/help").await.text.contains("href=\"/report-compromise\""), "linked from the help center");
    let app = &app;
    let send = |login: &'static str| async move {
        let browser = TestApp::new_client();
        let form = app.get(&browser, "/report-compromise").await;
        assert_eq!(form.status, 200);
        let fields = [("csrf", csrf_of(&form.text)), ("login", login.to_owned()), ("details", "Strange sign-ins.\r\nNot me.".to_owned())];
        Response::read(browser.post(app.url("/report-compromise")).form(&fields).send().await.unwrap()).await
    };
    let real = send("maria").await;
    let unknown = send("nobody@example.com").await;
    assert_eq!(real.status, 200, "{}", real.text);
    assert_eq!((real.status, &real.text), (unknown.status, &unknown.text), "the same answer");
    assert!(real.text.contains("We have opened a case"));
    // The owner who cannot sign in is sent where support can write back to them.
    assert!(real.text.contains("href=\"/recovery-request\">Ask support to help you back in"), "{}", real.text);
    assert_eq!(app.login("maria", PASSWORD).await.status, 200, "nothing is locked");

    let empty = send("").await;
    assert_eq!(empty.status, 400);
    assert!(empty.text.contains("aria-invalid=\"true\" aria-describedby=\"report-form-error\""), "{}", empty.text);
    for _ in 0..3 {
        assert_eq!(send("maria").await.status, 200);
    }
    let limited = send("maria").await;
    assert_eq!(limited.status, 429, "five an hour per address");
    assert!(limited.text.contains("Too many reports"));
    assert_eq!(app.post_json(&TestApp::new_client(), "/api/v1/report-compromise", json!({ "token": BASE_URL })).await.status, 400);
}

/// S7.7: a lock ends every session. A login that wrote its session while the lock was being
/// committed (its checks read before the lock, its session written after the lock's revocation)
/// would leave one behind; the session is refused as soon as it is used, and deleted.
async fn s7_7_a_session_that_outlives_its_accounts_lock_is_refused(backend: Backend) {
    let config = crate::helpers::test_config(backend).await;
    let app = TestApp::spawn_with(config.clone()).await;
    let account = app.create_account("maria", "maria@example.com").await;
    let client = signed_in(&app, "198.51.100.20").await;
    assert_eq!(app.get(&client, "/api/v1/session").await.status, 200);
    // The race's outcome, written directly: the lock's row, the session still there.
    let store = doorman::store::SqlStore::connect(&config.database_url).await.unwrap();
    sqlx::query("INSERT INTO account_locks (account_id, locked_at, event_at, case_id) VALUES ($1, 1, 1, 'case')")
        .bind(account.id.as_str())
        .execute(store.pool())
        .await
        .unwrap();
    let refused = app.get(&client, "/api/v1/session").await;
    assert_eq!(refused.status, 401, "{}", refused.text);
    let (sessions,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM sessions WHERE account_id = $1")
        .bind(account.id.as_str())
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(sessions, 0, "the session is deleted");
    store.pool().close().await;
}

/// The public form's API (`POST /api/v1/compromise-reports`): one answer whether or not an
/// account matches, a case for support, no lock; bad input named by field and nothing opened;
/// five an hour per address, as the page.
async fn s2_1_the_public_report_api_opens_a_case_and_answers_the_same_for_everyone(backend: Backend) {
    use crate::recovery_requests::post_from;
    let app = TestApp::spawn(backend).await;
    let maria = app.create_account("maria", "maria@example.com").await.id;
    let report = |ip: &'static str, body: Value| {
        let app = &app;
        async move { post_from(app, ip, "/api/v1/compromise-reports", body).await }
    };
    let real = report("192.0.2.30", json!({ "login": " Maria ", "details": "Payout method changed.\nNot me." })).await;
    let unknown = report("192.0.2.31", json!({ "login": "nobody@example.com" })).await;
    assert_eq!((real.status, real.json()), (202, json!({ "status": "received" })), "{}", real.text);
    assert_eq!((real.status, &real.text), (unknown.status, &unknown.text), "the same answer");
    let cases = app.services.store.open_cases(200).await.unwrap();
    assert_eq!(cases.iter().filter(|c| c.kind == "compromise_form").count(), 2, "{cases:?}");
    let mut named = Vec::new();
    for case in &cases {
        let detail = app.services.store.case_detail(&case.id).await.unwrap().unwrap();
        named.push((detail.account_id.clone(), detail.details.contains("Payout method changed.\nNot me.")));
    }
    assert!(named.contains(&(Some(maria), true)) && named.contains(&(None, false)), "{named:?}");
    assert_eq!(app.login("maria", PASSWORD).await.status, 200, "nothing is locked");

    for (body, code, field) in [
        (json!({ "login": "  " }), "invalid_login", "login"),
        (json!({ "login": "m".repeat(321) }), "invalid_login", "login"),
        (json!({ "login": "maria", "details": "x".repeat(2001) }), "invalid_details", "details"),
    ] {
        let refused = report("192.0.2.32", body).await;
        assert_eq!((refused.status, refused.error_code().as_str()), (400, code), "{}", refused.text);
        assert_eq!(refused.json()["field"], field);
    }
    assert_eq!(report("192.0.2.32", json!({ "login": "maria", "lock": true })).await.status, 400, "unknown fields");
    for body in [json!({ "login": "ma\u{0}ria" }), json!({ "login": "maria", "details": "a\u{0}b" })] {
        let refused = report("192.0.2.32", body).await;
        assert_eq!((refused.status, refused.error_code().as_str()), (400, "invalid_body"), "NUL: {}", refused.text);
    }
    assert_eq!(app.services.store.open_cases(200).await.unwrap().len(), 2, "nothing opened by bad input");

    for _ in 0..4 {
        assert_eq!(report("192.0.2.30", json!({ "login": "maria" })).await.status, 202);
    }
    let limited = report("192.0.2.30", json!({ "login": "maria" })).await;
    assert_eq!((limited.status, limited.error_code().as_str()), (429, "too_many_requests"), "{}", limited.text);
    assert!(limited.header("retry-after").is_some());
    assert_eq!(report("192.0.2.33", json!({ "login": "maria" })).await.status, 202, "another address is not limited");
}

/// S3.6: the public report form writes to the support queue, where lost-email requests wait,
/// so a flood of it must not hide them. Before, one sender with a block of addresses could
/// open five cases an hour from each (an IPv6 /48 holds 65,536 /64s), every one about a login
/// support can do nothing with, and the queue shows its oldest 200. Now: 30 a day per network;
/// reports that name no account are listed after every other case; later reports about an
/// account with an open case are notes on it, 20 a day per case; the answer stays the same.
async fn s3_6_public_reports_cannot_bury_the_support_queue(backend: Backend) {
    use crate::recovery_requests::post_from;
    use doorman_core::compromise::{PUBLIC_REPORTS_PER_CASE_PER_DAY, PUBLIC_REPORTS_PER_NETWORK_PER_DAY};
    let app = TestApp::spawn(backend).await;
    let maria = app.create_account("maria", "maria@example.com").await.id;
    let report = |ip: String, login: &'static str, details: String| {
        let app = &app;
        async move { post_from(app, &ip, "/api/v1/compromise-reports", json!({ "login": login, "details": details })).await }
    };
    let received = report("192.0.2.1".into(), "nobody-at-all", String::new()).await;
    assert_eq!(received.status, 202, "{}", received.text);

    // The flood: five an hour from each address of one /24, until the network's day is spent.
    for n in 0..PUBLIC_REPORTS_PER_NETWORK_PER_DAY {
        let answer = report(format!("198.51.100.{}", n / 5 + 1), "nobody-at-all", format!("flood {n}")).await;
        assert_eq!((answer.status, &answer.text), (received.status, &received.text), "report {n}");
    }
    let refused = report("198.51.100.200".into(), "nobody-at-all", "one more".into()).await;
    assert_eq!((refused.status, refused.error_code().as_str()), (429, "too_many_requests"), "{}", refused.text);
    assert!(refused.header("retry-after").is_some());
    let v6 = |n: u16| format!("2001:db8:7:{n:x}::1");
    for n in 0..PUBLIC_REPORTS_PER_NETWORK_PER_DAY as u16 {
        assert_eq!(report(v6(n), "nobody-at-all", String::new()).await.status, 202, "a /64 of its own, report {n}");
    }
    assert_eq!(report(v6(999), "nobody-at-all", String::new()).await.status, 429, "the /48 is one network");
    let flood = app.services.store.open_cases(500).await.unwrap();
    assert_eq!(flood.len(), 1 + 2 * PUBLIC_REPORTS_PER_NETWORK_PER_DAY as usize, "every accepted report named no account");

    // Real cases, opened after the flood, come first, even on a page of two.
    app.clock.advance(60);
    let (lost_email, _) = crate::support::recovery_case(&app, "maria.new@example.net").await;
    let first = report("203.0.113.1".into(), "maria", "My payout method changed.".into()).await;
    assert_eq!((first.status, &first.text), (received.status, &received.text));
    let top: Vec<String> = app.services.store.open_cases(2).await.unwrap().into_iter().map(|c| c.id).collect();
    assert!(top.contains(&lost_email), "the lost-email case is on the first page: {top:?}");
    let public = top.iter().find(|id| **id != lost_email).unwrap().clone();
    let detail = app.services.store.case_detail(&public).await.unwrap().unwrap();
    assert_eq!((detail.summary.kind.as_str(), detail.account_id.as_ref()), ("compromise_form", Some(&maria)));

    // Later reports about maria are notes on her one case, up to 20 reports a day in all.
    let reporter_notes = || {
        let (app, case) = (&app, public.clone());
        async move {
            let detail = app.services.store.case_detail(&case).await.unwrap().unwrap();
            detail.notes.iter().filter(|n| n.agent.as_deref() == Some("reporter")).map(|n| n.body.clone()).collect::<Vec<_>>()
        }
    };
    let again = report("203.0.113.2".into(), "maria@example.com", "Also my email.".into()).await;
    assert_eq!((again.status, &again.text), (received.status, &received.text), "the same answer");
    let notes = reporter_notes().await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("maria@example.com") && notes[0].contains("Also my email."), "{notes:?}");
    for n in 2..PUBLIC_REPORTS_PER_CASE_PER_DAY + 3 {
        let answer = report(format!("203.0.113.{}", n / 5 + 10), "maria", format!("report {n}")).await;
        assert_eq!((answer.status, &answer.text), (received.status, &received.text), "report {n}");
    }
    let notes = reporter_notes().await;
    assert_eq!(notes.len() as i64, PUBLIC_REPORTS_PER_CASE_PER_DAY - 1, "the first report and 19 notes");
    let open = app.services.store.open_cases(500).await.unwrap();
    assert_eq!(open.iter().filter(|c| c.kind == "compromise_form").count(), flood.len() + 1, "no second case for maria");
    app.clock.advance(24 * 3600);
    assert_eq!(report("203.0.113.250".into(), "maria", "next day".into()).await.status, 202);
    assert_eq!(reporter_notes().await.len() as i64, PUBLIC_REPORTS_PER_CASE_PER_DAY, "a new day's report is written");
    assert_eq!(app.login("maria", PASSWORD).await.status, 200, "reports lock nothing");
}

/// The id of the newest activity entry of `event`, as the owner's page lists it.
async fn activity_entry(app: &TestApp, client: &reqwest::Client, event: &str) -> i64 {
    let listed = app.get(client, "/api/v1/account/activity").await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let body = listed.json();
    let entry = body["events"].as_array().unwrap().iter().find(|e| e["event"] == event).cloned();
    entry.unwrap_or_else(|| panic!("no {event} in {body}"))["id"].as_i64().unwrap()
}

/// S9 from the activity page: the owner, still signed in on their laptop, reports the address
/// change an attacker made. As the emailed link does, the lock moves the account back to the
/// old address, so the reset that unlocks goes to the owner and never to the attacker (before,
/// the attacker's address stayed on file, and with 2-step off a reset to it unlocked). That
/// roll-back decides who gets back in, so it needs a fresh verification (S7.6), not the
/// session alone: a stolen session cannot move an account to an address of its past.
async fn s9_an_email_change_reported_from_the_activity_page_moves_the_account_back(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let owner = signed_in(&app, "192.0.2.10").await;
    let attacker = signed_in(&app, "198.51.100.7").await;
    assert_eq!(app.post_json(&attacker, "/api/v1/account/email", json!({ "new_email": "mallory@evil.example" })).await.status, 202);
    let confirm = app.deliver().await.into_iter().find(|m| m.kind == "email_change").unwrap();
    let token = confirm.token("account/email/confirm");
    assert_eq!(app.post_json(&attacker, "/api/v1/account/email/confirm", json!({ "token": token })).await.status, 200);
    app.deliver().await;

    let entry = activity_entry(&app, &owner, "email_changed").await;
    app.clock.advance(11 * 60);
    let unverified = app.post_json(&owner, &format!("/api/v1/account/activity/{entry}/report"), json!({})).await;
    assert_eq!((unverified.status, unverified.error_code().as_str()), (403, "step_up_required"), "{}", unverified.text);
    assert!(
        app.services.compromise.lock_of(&app.services.store.find_for_login("maria").await.unwrap().unwrap().0.id).await.unwrap().is_none()
    );
    let page = app.get(&owner, &format!("/account/activity/{entry}/report")).await;
    let button = [("csrf", csrf_of(&page.text))];
    let sent = Response::read(owner.post(app.url(&format!("/account/activity/{entry}/report"))).form(&button).send().await.unwrap()).await;
    let back = format!("/step-up?next=/account/activity/{entry}/report");
    assert_eq!((sent.status, sent.header("location")), (303, Some(back.as_str())), "the page asks to verify, then comes back");
    assert_eq!(app.post_json(&owner, "/api/v1/step-up", json!({ "password": PASSWORD })).await.status, 200);
    assert_locked(&app.post_json(&owner, &format!("/api/v1/account/activity/{entry}/report"), json!({})).await);
    let notices = app.deliver().await;
    let to: Vec<&str> = notices.iter().filter(|m| m.kind == "account_locked").map(|m| m.to.as_str()).collect();
    assert!(to.contains(&"maria@example.com"), "the owner's address is told: {to:?}");
    assert_eq!(app.login_as(&TestApp::new_client(), "192.0.2.11", "maria@example.com", PASSWORD).await.status, 403);
    assert_eq!(app.login_as(&TestApp::new_client(), "192.0.2.11", "mallory@evil.example", PASSWORD).await.status, 401);

    // "Forgot password" for the attacker's address sends nothing; the owner's reset unlocks.
    assert_eq!(app.forgot("mallory@evil.example").await.status, 202);
    let reset = app.reset_mail("maria").await;
    assert_eq!(reset.to, "maria@example.com", "the reset goes to the restored address");
    let done = app.reset(json!({ "token": reset.token("reset-password"), "new_password": NEW_PASSWORD })).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(app.login_as(&TestApp::new_client(), "192.0.2.11", "maria", NEW_PASSWORD).await.status, 200);
}

/// S9 from the activity page: a removed 2-step method the owner reports is put back by the
/// lock (as the emailed link does), with its history saying so, and a reset that unlocks may
/// pass it. The entry names the report token of its own email, so of two removals in the same
/// second the reported one comes back. Within the step-up window (the removal itself was one).
async fn s9_a_method_removal_reported_from_the_activity_page_puts_the_method_back(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let account = app.create_account("maria", "maria@example.com").await;
    let owner = signed_in(&app, "192.0.2.10").await;
    let (secret, totp_id) = enrol_totp(&app, &owner).await;
    let question = json!({ "question_id": "first_album", "answer": "Rumours" });
    let question_id = app.post_json(&owner, "/api/v1/account/two-step/security-question", question).await.json()["method_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.clock.advance(60);
    // The question first, then the app, in the same second of the clock.
    for id in [&question_id, &totp_id] {
        let gone = owner.delete(app.url(&format!("/api/v1/account/two-step/{id}"))).json(&json!({})).send().await.unwrap();
        assert_eq!(gone.status(), 200, "the removal (by whoever held the session)");
    }
    assert!(!crate::two_step::method_history(&app, &owner).await.is_empty());
    app.deliver().await;

    let entry = activity_entry(&app, &owner, "factor_removed").await;
    assert_locked(&app.post_json(&owner, &format!("/api/v1/account/activity/{entry}/report"), json!({})).await);
    let factors = app.services.store.factors_of(&account.id).await.unwrap();
    let totp = factors.iter().find(|f| f.id == totp_id).expect("the method is put back");
    assert!(totp.confirmed_at.is_some());
    assert!(factors.iter().all(|f| f.id != question_id), "only the reported removal is undone");
    let history = crate::two_step::stored_history(&app, &account.id).await;
    assert_eq!(history.last(), Some(&("totp", "restored", "report")), "{history:?}");
    assert!(app.deliver().await.iter().any(|m| m.kind == "account_locked"));

    // The reset that unlocks asks for the method that was put back, and takes it.
    let reset = app.reset_mail("maria").await;
    let token = reset.token("reset-password");
    let second = json!({ "method_id": totp_id, "code": current_code(&app, &secret, 0) });
    let body = json!({ "token": token, "new_password": NEW_PASSWORD, "second_factor": second });
    let done = app.reset(body).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(app.login_as(&TestApp::new_client(), "192.0.2.11", "maria", NEW_PASSWORD).await.json()["status"], "second_factor_required");
}

/// S1.12 from the activity page (found reviewing the support-only lock): reporting a sign-in
/// from before every method the owner has would take them all away, a lock only two agents
/// lift, so a session alone (a stolen one) cannot do it; a fresh verification can, and a
/// second report of the same account still says support unlocks it.
async fn s1_12_a_lock_from_the_activity_page_that_takes_every_method_needs_a_step_up(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let account = app.create_account("maria", "maria@example.com").await;
    let owner = signed_in(&app, "192.0.2.10").await;
    let entry = activity_entry(&app, &owner, "login_succeeded").await;
    app.clock.advance(60);
    let (secret, app_id) = enrol_totp(&app, &owner).await;
    let added = app.deliver().await.into_iter().find(|m| m.text.contains("was added")).expect("the method-added email");
    app.clock.advance(11 * 60);
    let unverified = app.post_json(&owner, &format!("/api/v1/account/activity/{entry}/report"), json!({})).await;
    assert_eq!((unverified.status, unverified.error_code().as_str()), (403, "step_up_required"), "{}", unverified.text);
    assert!(app.services.compromise.lock_of(&account.id).await.unwrap().is_none(), "nothing locked");

    let code = current_code(&app, &secret, 0);
    let stepped = app.post_json(&owner, "/api/v1/step-up", json!({ "method_id": app_id, "code": code })).await;
    assert_eq!(stepped.status, 200, "{}", stepped.text);
    let locked = app.post_json(&owner, &format!("/api/v1/account/activity/{entry}/report"), json!({})).await;
    assert_locked(&locked);
    assert_eq!(locked.json()["unlock"], "support", "{}", locked.text);
    let again = report(&app, &report_token(&added)).await;
    assert_locked(&again);
    assert_eq!(again.json()["unlock"], "support", "a second report finds the first's mark: {}", again.text);
}
