//! Forgot password, over the API and the pages (checklist S1, S2, S3.3-S3.5).

use crate::helpers::{BASE_URL, Backend, PASSWORD, Response, TestApp, csrf_of};
use crate::on_both_backends;
use doorman_core::audit::AuditEvent;
use serde_json::json;

const NEW_PASSWORD: &str = "violet canyon drumbeat";

on_both_backends!(
    an_empty_forgot_password_field_is_named_not_answered_as_sent,
    reset_by_link_changes_the_password_and_ends_every_session,
    forgot_password_answers_the_same_for_everyone,
    of_concurrent_redemptions_exactly_one_succeeds,
    links_expire_after_thirty_minutes,
    a_newer_request_voids_the_older_link,
    tokens_work_only_for_their_purpose,
    weak_passwords_are_refused_with_the_reason_and_keep_the_link,
    the_emailed_code_works_on_another_device_and_has_its_own_attempt_limit,
    opening_the_link_changes_nothing_and_moves_the_token_out_of_the_url,
    links_are_built_from_the_base_url_not_the_host_header,
    reset_emails_are_capped_silently,
    only_keyed_hashes_of_tokens_are_stored,
    a_pending_email_is_sealed_in_the_outbox,
    a_reset_ends_a_lock_out,
    resets_are_audited,
);

/// S1.4, S1.10, S1.11, S9.1 (password changed): the whole flow by link.
async fn reset_by_link_changes_the_password_and_ends_every_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    assert_eq!(app.login("maria", PASSWORD).await.status, 200);

    let mail = app.reset_mail("maria@example.com").await;
    assert_eq!((mail.to.as_str(), mail.kind.as_str()), ("maria@example.com", "password_reset"));
    assert_eq!(mail.subject, "Reset your doorman password");
    let token = mail.token("reset-password");
    assert!(mail.html.contains(&format!("{BASE_URL}/reset-password?token={token}")), "the HTML part has the link too");
    assert!(mail.text.contains("30 minutes"));

    let reset = app.reset(json!({ "token": token, "new_password": NEW_PASSWORD })).await;
    assert_eq!((reset.status, reset.json()), (200, json!({ "status": "password_changed" })));
    assert!(reset.set_cookies().is_empty(), "no automatic login (S1.11)");

    assert_eq!(app.get(&app.client, "/api/v1/session").await.status, 401, "every session ended");
    assert_eq!(app.login("maria", PASSWORD).await.status, 401, "the old password is gone");
    assert_eq!(app.login("maria", NEW_PASSWORD).await.status, 200);

    let again = app.reset(json!({ "token": token, "new_password": "another fine passphrase" })).await;
    assert_eq!((again.status, again.error_code().as_str()), (400, "invalid_token"), "single use");

    // The reset revoked this browser's device cookie, so its sign-in afterwards is a new
    // device and gets its alert (issue 11 §5); the confirmation is the other email.
    let (confirmation, alerts): (Vec<_>, Vec<_>) = app.deliver().await.into_iter().partition(|m| m.kind != "new_device");
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(confirmation.len(), 1);
    assert_eq!(confirmation[0].subject, "Your doorman password was changed");
    assert!(confirmation[0].text.contains("192.0.2") || confirmation[0].text.contains("127.0.0.1"), "says from where");
    let report = confirmation[0].link(&format!("{BASE_URL}/report-not-me?token="));
    assert!(!confirmation[0].text.contains(NEW_PASSWORD), "no secret in a notification (S9.2)");
    // The report link's page opens (its token moves into a cookie; a button locks).
    let browser = TestApp::new_client();
    assert_eq!(app.get(&browser, &report.replace(BASE_URL, "")).await.status, 303);
    assert!(app.get(&browser, "/report-not-me").await.text.contains("Lock my account"));
}

/// S2.1, S2.2, S1.9: known, unknown, malformed: one status, one body, one set of headers;
/// nothing changes on the account. (An empty field names nobody and is refused as such:
/// `an_empty_forgot_password_field_is_named_not_answered_as_sent`.)
async fn forgot_password_answers_the_same_for_everyone(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let answers: Vec<Response> = futures::future::join_all(
        ["maria", "maria@example.com", "nobody", "nobody@example.com", "<b>", &"x".repeat(400)].map(|l| app.forgot(l)),
    )
    .await;
    for answer in &answers {
        assert_eq!((answer.status, answer.text.as_str()), (202, r#"{"status":"accepted"}"#));
        let mut names: Vec<_> = answer.headers.keys().map(|k| k.as_str()).filter(|k| *k != "x-request-id" && *k != "date").collect();
        names.sort();
        assert_eq!(
            names,
            vec![
                "cache-control",
                "content-length",
                "content-security-policy",
                "content-type",
                "referrer-policy",
                "x-content-type-options",
                "x-frame-options"
            ]
        );
    }
    let mails = app.deliver().await;
    assert_eq!(mails.len(), 1, "one email, for the real account only; the second request is inside the resend wait");
    assert_eq!(app.login("maria", PASSWORD).await.status, 200, "asking changes nothing (S1.9)");

    // The page says the same for everyone, conditionally (S2.2).
    for login in ["maria", "nobody"] {
        let client = TestApp::new_client();
        let csrf = csrf_of(&app.get(&client, "/forgot-password").await.text);
        let page =
            Response::read(client.post(app.url("/forgot-password")).form(&[("login", login), ("csrf", &csrf)]).send().await.unwrap()).await;
        assert_eq!(page.status, 200);
        assert!(page.text.contains("If an account matches, we have sent an email with the next steps."));
        assert!(page.text.contains("spam"));
    }
}

/// S1.4: many simultaneous redemptions of one link, exactly one success.
async fn of_concurrent_redemptions_exactly_one_succeeds(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let token = app.reset_mail("maria").await.token("reset-password");
    let attempts = (0..8).map(|i| app.reset(json!({ "token": token, "new_password": format!("{NEW_PASSWORD} {i}") })));
    let results: Vec<u16> = futures::future::join_all(attempts).await.iter().map(|r| r.status).collect();
    assert_eq!(results.iter().filter(|s| **s == 200).count(), 1, "{results:?}");
    assert_eq!(results.iter().filter(|s| **s == 400).count(), 7, "{results:?}");
}

/// S1.5: 30 minutes by default, decided by the server.
async fn links_expire_after_thirty_minutes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let mail = app.reset_mail("maria").await;
    app.clock.advance(30 * 60 + 1);
    let late = app.reset(json!({ "token": mail.token("reset-password"), "new_password": NEW_PASSWORD })).await;
    assert_eq!((late.status, late.error_code().as_str()), (400, "invalid_token"));
    let late_code = app.reset(json!({ "login": "maria", "code": mail.code(), "new_password": NEW_PASSWORD })).await;
    assert_eq!((late_code.status, late_code.error_code().as_str()), (400, "invalid_code"));
    assert_eq!(app.login("maria", PASSWORD).await.status, 200);
}

/// S1.6: a newer email voids the older link and code.
async fn a_newer_request_voids_the_older_link(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let first = app.reset_mail("maria").await;
    app.clock.advance(61);
    let second = app.reset_mail("maria").await;
    assert_ne!(first.token("reset-password"), second.token("reset-password"));
    let old = app.reset(json!({ "token": first.token("reset-password"), "new_password": NEW_PASSWORD })).await;
    assert_eq!(old.status, 400);
    let old_code = app.reset(json!({ "login": "maria", "code": first.code(), "new_password": NEW_PASSWORD })).await;
    assert_eq!(old_code.status, 400);
    assert_eq!(app.reset(json!({ "token": second.token("reset-password"), "new_password": NEW_PASSWORD })).await.status, 200);
}

/// S1.3: the "this wasn't me" token cannot reset a password; tokens of one account are theirs.
async fn tokens_work_only_for_their_purpose(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    app.create_account("jordan", "jordan@example.com").await;
    let token = app.reset_mail("maria").await.token("reset-password");
    assert_eq!(app.reset(json!({ "token": token, "new_password": NEW_PASSWORD })).await.status, 200);
    let report = app.deliver().await[0].token("report-not-me");
    let misuse = app.reset(json!({ "token": report, "new_password": "yet another passphrase" })).await;
    assert_eq!((misuse.status, misuse.error_code().as_str()), (400, "invalid_token"));

    // Maria's code does not work for Jordan.
    app.clock.advance(61);
    let maria = app.reset_mail("maria").await;
    let jordan_try = app.reset(json!({ "login": "jordan", "code": maria.code(), "new_password": NEW_PASSWORD })).await;
    assert_eq!(jordan_try.status, 400);
    let bad_shape = app.reset(json!({ "token": "short", "new_password": NEW_PASSWORD })).await;
    assert_eq!((bad_shape.status, bad_shape.error_code().as_str()), (400, "invalid_token"));
    let neither = app.reset(json!({ "new_password": NEW_PASSWORD })).await;
    assert_eq!((neither.status, neither.error_code().as_str()), (400, "invalid_body"));
}

/// S1.10, S4.1, S4.4: refused with the reason; the link still works afterwards.
async fn weak_passwords_are_refused_with_the_reason_and_keep_the_link(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let token = app.reset_mail("maria").await.token("reset-password");
    let cases = [
        ("short pass", "at least 12 characters"),
        ("1qaz2wsx3edc", "too common"),
        ("i am maria and proud", "must not contain your username"),
        ("doorman doorman doorman", "product name"),
    ];
    for (password, reason) in cases {
        let response = app.reset(json!({ "token": token, "new_password": password })).await;
        assert_eq!((response.status, response.error_code().as_str()), (422, "weak_password"), "{password}");
        assert!(response.json()["message"].as_str().unwrap().contains(reason), "{password}: {}", response.text);
    }
    let emoji = "🔑🌋🦜🎻 🍋🧭🪁🦔🌵🛶🧊";
    assert_eq!(
        app.reset(json!({ "token": token, "new_password": emoji })).await.status,
        200,
        "any characters, counted as code points (S4.2)"
    );
    assert_eq!(app.login("maria", emoji).await.status, 200);
}

/// The code for reading the email on another device; S3.4: five wrong tries kill it.
async fn the_emailed_code_works_on_another_device_and_has_its_own_attempt_limit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let mail = app.reset_mail("maria").await;
    let code = mail.code();
    assert_eq!(code.len(), 8);
    let grouped = format!("{} {}", &code[..4], &code[4..]);
    assert_eq!(app.reset(json!({ "login": "MARIA@example.com", "code": grouped, "new_password": NEW_PASSWORD })).await.status, 200);
    assert_eq!(app.login("maria", NEW_PASSWORD).await.status, 200);
    assert_eq!(app.deliver().await[0].kind, "password_changed");

    app.clock.advance(61);
    let mail = app.reset_mail("maria").await;
    let right = mail.code();
    let wrong = if right == "00000000" { "11111111" } else { "00000000" };
    for _ in 0..5 {
        let r = app.reset(json!({ "login": "maria", "code": wrong, "new_password": "summer lake whistle" })).await;
        assert_eq!((r.status, r.error_code().as_str()), (400, "invalid_code"));
    }
    let dead = app.reset(json!({ "login": "maria", "code": right, "new_password": "summer lake whistle" })).await;
    assert_eq!((dead.status, dead.error_code().as_str()), (429, "too_many_attempts"), "the code died after five wrong tries");
    assert_eq!(
        app.reset(json!({ "token": mail.token("reset-password"), "new_password": "summer lake whistle" })).await.status,
        200,
        "the link still works"
    );
    let unknown = app.reset(json!({ "login": "nobody", "code": right, "new_password": "summer lake whistle" })).await;
    assert_eq!((unknown.status, unknown.error_code().as_str()), (400, "invalid_code"));
}

/// S1.8, S1.9: GET on the link sets a cookie and redirects to a clean URL, with no referrer;
/// only the submitted form redeems. The page flow works without JavaScript.
async fn opening_the_link_changes_nothing_and_moves_the_token_out_of_the_url(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let token = app.reset_mail("maria").await.token("reset-password");
    let path = format!("/reset-password?token={token}");
    for _ in 0..3 {
        // A mail scanner following the link, with no cookies kept.
        let scanner = app.get(&reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(), &path).await;
        assert_eq!(scanner.status, 303);
    }
    let browser = TestApp::new_client();
    let first = app.get(&browser, &path).await;
    assert_eq!((first.status, first.header("location")), (303, Some("/reset-password")));
    assert_eq!(first.header("referrer-policy"), Some("no-referrer"));
    assert!(first.set_cookies().iter().any(|c| c.starts_with("doorman_reset=") && c.contains("HttpOnly")));

    let page = app.get(&browser, "/reset-password").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    assert!(!page.text.contains(&token), "the token is not in the page");
    assert!(page.text.contains("id=\"new_password\""));
    assert!(!page.text.contains("http://") && !page.text.contains("https://"), "nothing loaded from elsewhere");

    let csrf = csrf_of(&page.text);
    let weak = Response::read(
        browser.post(app.url("/reset-password")).form(&[("csrf", csrf.as_str()), ("new_password", "short")]).send().await.unwrap(),
    )
    .await;
    assert_eq!(weak.status, 422);
    assert!(weak.text.contains("Use at least 12 characters"));
    let done = Response::read(
        browser.post(app.url("/reset-password")).form(&[("csrf", csrf.as_str()), ("new_password", NEW_PASSWORD)]).send().await.unwrap(),
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert!(done.text.contains("Password changed"));
    assert_eq!(app.login("maria", NEW_PASSWORD).await.status, 200);

    // Back on the link later: it says the link no longer works.
    let expired = app.get(&browser, &path).await;
    assert_eq!(expired.status, 303);
    assert!(app.get(&browser, "/reset-password").await.text.contains("This reset link is not valid any more"));
    // Without the CSRF token, nothing happens (S8.1).
    let forged = browser.post(app.url("/reset-password")).form(&[("csrf", "x"), ("new_password", NEW_PASSWORD)]).send().await.unwrap();
    assert_eq!(forged.status(), 403);
}

/// S1.7: a forged Host or X-Forwarded-Host cannot change the emailed link.
async fn links_are_built_from_the_base_url_not_the_host_header(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let response = reqwest::Client::new()
        .post(app.url("/api/v1/password/forgot"))
        .header("host", "evil.example")
        .header("x-forwarded-host", "evil.example")
        .json(&json!({ "login": "maria" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let mail = &app.deliver().await[0];
    assert!(!mail.text.contains("evil.example") && !mail.html.contains("evil.example"));
    mail.link(&format!("{BASE_URL}/reset-password?token="));
}

/// S3.5: at most one email a minute and five an hour per account; the answer never changes.
async fn reset_emails_are_capped_silently(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let mut sent = 0;
    for _ in 0..3 {
        assert_eq!(app.forgot("maria").await.status, 202);
    }
    sent += app.deliver().await.len();
    assert_eq!(sent, 1, "one email inside the resend wait");
    for _ in 0..6 {
        app.clock.advance(61);
        assert_eq!(app.forgot("maria").await.status, 202);
        sent += app.deliver().await.len();
    }
    assert_eq!(sent, 5, "five an hour");
    app.clock.advance(3600);
    assert_eq!(app.forgot("maria").await.status, 202);
    assert_eq!(app.deliver().await.len(), 1, "the budget comes back");
}

/// S1.2: the database holds HMACs of tokens and codes, never the values.
async fn only_keyed_hashes_of_tokens_are_stored(backend: Backend) {
    use sqlx::Row;
    let config = crate::helpers::test_config(backend).await;
    let url = config.database_url.clone();
    let app = TestApp::spawn_with(config).await;
    app.create_account("maria", "maria@example.com").await;
    let mail = app.reset_mail("maria").await;
    let store = doorman::store::SqlStore::connect(&url).await.unwrap();
    let rows = sqlx::query("SELECT token_hash, code_hash FROM recovery_tokens").fetch_all(store.pool()).await.unwrap();
    assert_eq!(rows.len(), 1);
    let token_hash: String = rows[0].get("token_hash");
    let code_hash: Option<String> = rows[0].get("code_hash");
    assert_eq!(token_hash.len(), 64);
    assert_ne!(token_hash, mail.token("reset-password"));
    assert!(code_hash.is_some_and(|c| c.len() == 64 && !c.contains(&mail.code())));
    // Once sent, the outbox keeps no copy of the link.
    let bodies = sqlx::query("SELECT body_text, body_html FROM outbox").fetch_all(store.pool()).await.unwrap();
    assert!(bodies.iter().all(|r| r.get::<String, _>("body_text").is_empty() && r.get::<String, _>("body_html").is_empty()));
}

/// S3.1, S3.3: forgot password works on a locked-out account, and a reset ends the lock-out.
async fn a_reset_ends_a_lock_out(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    for i in 0..100 {
        app.login_as(&app.client, &format!("10.{}.{}.9", i / 200, i % 200), "maria", "guess guess guess").await;
    }
    assert_eq!(app.login("maria", PASSWORD).await.status, 429);
    // The owner heard of it (S3.9).
    assert!(app.deliver().await.iter().any(|m| m.kind == "logins_paused"));
    let token = app.reset_mail("maria").await.token("reset-password");
    assert_eq!(app.reset(json!({ "token": token, "new_password": NEW_PASSWORD })).await.status, 200);
    assert_eq!(app.login("maria", NEW_PASSWORD).await.status, 200);
}

/// S10.1: requests (with whether an account matched, for operators), completion and the
/// sessions it ended.
async fn resets_are_audited(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let account = app.create_account("maria", "maria@example.com").await;
    app.login("maria", PASSWORD).await;
    let token = app.reset_mail("maria").await.token("reset-password");
    app.reset(json!({ "token": token, "new_password": NEW_PASSWORD })).await;
    let events = app.services.store.audit_of(&account.id, 20).await.unwrap();
    let find = |e: AuditEvent| events.iter().find(|r| r.event == e).unwrap_or_else(|| panic!("no {e:?} in {events:?}"));
    assert!(find(AuditEvent::PasswordResetRequested).detail.contains("account_matched"));
    assert_eq!(find(AuditEvent::PasswordResetCompleted).detail, "link");
    assert!(find(AuditEvent::SessionsRevoked).detail.starts_with("1 "));
    assert!(events.iter().all(|e| !e.detail.contains(&token)));
}

/// S1.2: while an email waits in the outbox, its body (with the link and code) is sealed
/// under the server key, so a copy of the database alone cannot redeem it.
async fn a_pending_email_is_sealed_in_the_outbox(backend: Backend) {
    use sqlx::Row;
    let config = crate::helpers::test_config(backend).await;
    let url = config.database_url.clone();
    let app = TestApp::spawn_with(config.clone()).await;
    app.create_account("maria", "maria@example.com").await;
    assert_eq!(app.forgot("maria").await.status, 202);
    let done = app.worker.run_jobs().await.unwrap();
    assert_eq!((done.jobs, done.failures), (1, 0));
    let raw = doorman::store::SqlStore::connect(&url).await.unwrap();
    let rows = sqlx::query("SELECT body_text, body_html FROM outbox WHERE status = 'pending'").fetch_all(raw.pool()).await.unwrap();
    assert_eq!(rows.len(), 1);
    for column in ["body_text", "body_html"] {
        let body: String = rows[0].get(column);
        assert!(body.starts_with("sealed:v1:") && !body.contains("token=") && !body.contains("maria"), "{column}: {body}");
    }
    // The worker opens it: the email as sent has its link.
    let mail = app.deliver().await.remove(0);
    mail.link(&format!("{BASE_URL}/reset-password?token="));
}

/// A stressed person taps "Email me a reset link" with the field empty. Found walking the
/// pages on a phone: the answer was "Check your email", for an email that never comes. An
/// empty field names nobody, so saying so reveals nothing (S2.1 holds for every real login).
async fn an_empty_forgot_password_field_is_named_not_answered_as_sent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    for login in ["", "   "] {
        let api = app.post_json(&TestApp::new_client(), "/api/v1/password/forgot", json!({ "login": login })).await;
        assert_eq!((api.status, api.error_code().as_str()), (400, "invalid_login"), "{}", api.text);
        let client = TestApp::new_client();
        let csrf = csrf_of(&app.get(&client, "/forgot-password").await.text);
        let page =
            Response::read(client.post(app.url("/forgot-password")).form(&[("login", login), ("csrf", &csrf)]).send().await.unwrap()).await;
        assert_eq!(page.status, 400);
        assert!(page.text.contains("id=\"forgot-error\"") && page.text.contains("Enter your username"), "{}", page.text);
        assert!(page.text.contains("aria-invalid=\"true\"") && !page.text.contains("Check your email"), "{}", page.text);
    }
    assert!(app.deliver().await.is_empty());
}
