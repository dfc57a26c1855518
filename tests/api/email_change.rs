//! Changing the email address (checklist S7.6, S9.1, S9.3, S2.1).

use crate::helpers::{BASE_URL, Backend, PASSWORD, Response, TestApp, csrf_of};
use crate::on_both_backends;
use serde_json::json;

on_both_backends!(
    a_new_email_needs_step_up_and_a_confirmed_link_and_the_old_address_is_told,
    an_address_in_use_is_not_revealed_to_the_requester,
    s1_11_a_new_password_voids_an_email_change_an_earlier_session_asked_for
);

/// S7.6: step-up first; the link goes to the new address; opening it changes nothing; the
/// confirmation moves the account, voids reset links and tells the old address (S9.1).
async fn a_new_email_needs_step_up_and_a_confirmed_link_and_the_old_address_is_told(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let client = TestApp::new_client();
    app.login_as(&client, "192.0.2.10", "maria", PASSWORD).await;
    let reset_link = app.reset_mail("maria").await.token("reset-password");

    app.clock.advance(11 * 60);
    let refused = app.post_json(&client, "/api/v1/account/email", json!({ "new_email": "maria.new@example.org" })).await;
    assert_eq!((refused.status, refused.error_code().as_str()), (403, "step_up_required"));
    assert_eq!(app.post_json(&client, "/api/v1/step-up", json!({ "password": PASSWORD })).await.status, 200);
    let bad = app.post_json(&client, "/api/v1/account/email", json!({ "new_email": "not an address" })).await;
    assert_eq!((bad.status, bad.error_code().as_str()), (400, "invalid_email"));
    let asked = app.post_json(&client, "/api/v1/account/email", json!({ "new_email": "Maria.New@Example.org" })).await;
    assert_eq!((asked.status, asked.json()), (202, json!({ "status": "confirmation_sent" })));
    assert_eq!(
        app.get(&client, "/api/v1/session").await.json()["account"]["email"],
        "maria@example.com",
        "nothing changes before the link"
    );

    let mail = app.deliver().await.into_iter().find(|m| m.kind == "email_change").unwrap();
    assert_eq!(mail.to, "maria.new@example.org");
    let link = mail.link(&format!("{BASE_URL}/account/email/confirm?token="));
    let token = link.split("token=").nth(1).unwrap().to_owned();

    // Opening the link (a mail scanner) changes nothing: the token moves into a short-lived
    // cookie and leaves the address bar at once (S1.8, like the reset link); the page's
    // button redeems it.
    let browser = TestApp::new_client();
    let opened = app.get(&browser, &format!("/account/email/confirm?token={token}")).await;
    assert_eq!(opened.status, 303);
    assert_eq!(opened.header("location"), Some("/account/email/confirm"), "the clean address");
    assert_eq!(opened.header("referrer-policy"), Some("no-referrer"));
    let cookie = opened.set_cookies().into_iter().find(|c| c.starts_with("doorman_email_change=")).unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("Max-Age=1800"), "{cookie}");
    let page = app.get(&browser, "/account/email/confirm").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    assert!(!page.text.contains(&token), "the token is not in the page either");
    assert_eq!(app.get(&client, "/api/v1/session").await.json()["account"]["email"], "maria@example.com");
    // Another browser, without the cookie, has no button to press.
    let elsewhere = TestApp::new_client();
    let bare = app.get(&elsewhere, "/account/email/confirm").await;
    assert!(bare.text.contains("needs the link from the confirmation email"), "{}", bare.text);
    let blind = Response::read(
        elsewhere
            .post(app.url("/account/email/confirm"))
            .form(&[("csrf", csrf_of(&app.get(&elsewhere, "/login").await.text))])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(blind.status, 400, "no cookie, no token: {}", blind.text);
    let form = [("csrf", csrf_of(&page.text))];
    let done = Response::read(browser.post(app.url("/account/email/confirm")).form(&form).send().await.unwrap()).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert!(done.text.contains("Your email address is now maria.new@example.org"));
    assert!(done.set_cookies().iter().any(|c| c.starts_with("doorman_email_change=;")), "the cookie goes");
    assert_eq!(app.get(&client, "/api/v1/session").await.json()["account"]["email"], "maria.new@example.org");

    let again = app.post_json(&browser, "/api/v1/account/email/confirm", json!({ "token": token })).await;
    assert_eq!((again.status, again.error_code().as_str()), (400, "invalid_token"), "single use");
    let told = app.deliver().await;
    assert!(
        told.iter().any(|m| m.to == "maria@example.com" && m.text.contains("changed from maria@example.com to maria.new@example.org")),
        "{told:?}"
    );
    let old_link = app.reset(json!({ "token": reset_link, "new_password": "violet canyon drumbeat" })).await;
    assert_eq!(old_link.status, 400, "reset links sent to the old inbox stop working");
    assert_eq!(app.login("maria.new@example.org", PASSWORD).await.status, 200);
}

/// S2.1: asking to move to an address that has an account answers the same; that address
/// gets a note, and no link that works.
async fn an_address_in_use_is_not_revealed_to_the_requester(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    app.create_account("jordan", "jordan@example.com").await;
    let client = TestApp::new_client();
    app.login_as(&client, "192.0.2.10", "maria", PASSWORD).await;
    let taken = app.post_json(&client, "/api/v1/account/email", json!({ "new_email": "jordan@example.com" })).await;
    let free = app.post_json(&client, "/api/v1/account/email", json!({ "new_email": "free@example.com" })).await;
    assert_eq!((taken.status, taken.text.clone()), (free.status, free.text.clone()));
    let mails = app.deliver().await;
    let note = mails.iter().find(|m| m.to == "jordan@example.com").unwrap();
    assert!(note.text.contains("already belongs to a doorman account") && !note.text.contains("token="), "{}", note.text);
    assert!(!note.text.contains("maria"), "the requester is not named to the other address");
    let same = app.post_json(&client, "/api/v1/account/email", json!({ "new_email": "maria@example.com" })).await;
    assert_eq!((same.status, same.error_code().as_str()), (422, "same_email"));
}

/// S1.11: a new password ends every outstanding link of the account, email-change
/// confirmations included. Found by an outside attack: an attacker with a session asks to move
/// the account to their address; the owner resets the password, which ended the attacker's
/// session but not their link, which still moved the account (200), and a reset to the
/// attacker's address then took it back for good. The same held after a signed-in change.
async fn s1_11_a_new_password_voids_an_email_change_an_earlier_session_asked_for(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    // The attacker knows the password of the moment (a phished one, say).
    let ask_to_move = |password: &'static str, to: &'static str| {
        let app = &app;
        async move {
            let attacker = TestApp::new_client();
            assert_eq!(app.login_as(&attacker, "198.51.100.7", "maria", password).await.status, 200);
            let asked = app.post_json(&attacker, "/api/v1/account/email", json!({ "new_email": to })).await;
            assert_eq!(asked.status, 202, "{}", asked.text);
            app.deliver().await.into_iter().find(|m| m.kind == "email_change").expect("the confirmation").token("account/email/confirm")
        }
    };
    let confirm = |token: String| {
        let app = &app;
        async move { app.post_json(&TestApp::new_client(), "/api/v1/account/email/confirm", json!({ "token": token })).await }
    };

    // The owner resets the password by email.
    let link = ask_to_move(PASSWORD, "mallory@evil.example").await;
    let reset = app.reset_mail("maria").await.token("reset-password");
    let done = app.reset(json!({ "token": reset, "new_password": "violet canyon drumbeat" })).await;
    assert_eq!(done.status, 200, "{}", done.text);
    let refused = confirm(link).await;
    assert_eq!(refused.status, 400, "the attacker's link died with the reset: {}", refused.text);
    let owner = TestApp::new_client();
    assert_eq!(app.login_as(&owner, "192.0.2.10", "maria", "violet canyon drumbeat").await.status, 200);
    assert_eq!(app.get(&owner, "/api/v1/session").await.json()["account"]["email"], "maria@example.com");

    // The owner, signed in, changes the password.
    let later = ask_to_move("violet canyon drumbeat", "mallory@evil.example").await;
    let changed = app
        .post_json(
            &owner,
            "/api/v1/account/password",
            json!({ "current_password": "violet canyon drumbeat", "new_password": "amber lighthouse meadow" }),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(confirm(later).await.status, 400, "the link died with the change");
    assert_eq!(app.get(&owner, "/api/v1/session").await.json()["account"]["email"], "maria@example.com");
}
