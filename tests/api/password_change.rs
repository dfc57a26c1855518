//! Changing the password while signed in (checklist S4.6, S1.6, S7.7, S9.1).

use crate::helpers::{Backend, PASSWORD, Response, TestApp, csrf_of};
use crate::on_both_backends;
use serde_json::json;

const NEW: &str = "violet canyon drumbeat";

on_both_backends!(s4_6_a_password_change_needs_the_current_password_or_a_fresh_step_up);

async fn s4_6_a_password_change_needs_the_current_password_or_a_fresh_step_up(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let laptop = TestApp::new_client();
    let phone = TestApp::new_client();
    app.login_as(&laptop, "198.51.100.1", "maria", PASSWORD).await;
    app.login_as(&phone, "198.51.100.2", "maria", PASSWORD).await;
    // The phone is a second browser: its new-device alert (issue 11 §5) goes first.
    assert_eq!(app.deliver().await.iter().map(|m| m.kind.as_str()).collect::<Vec<_>>(), vec!["new_device"]);
    let reset_link = app.reset_mail("maria").await.token("reset-password");

    let wrong =
        app.post_json(&laptop, "/api/v1/account/password", json!({ "current_password": "not it at all", "new_password": NEW })).await;
    assert_eq!((wrong.status, wrong.error_code().as_str()), (401, "invalid_credentials"));
    let weak =
        app.post_json(&laptop, "/api/v1/account/password", json!({ "current_password": PASSWORD, "new_password": "password1234" })).await;
    assert_eq!((weak.status, weak.error_code().as_str()), (422, "weak_password"));
    app.clock.advance(11 * 60);
    let no_current = app.post_json(&laptop, "/api/v1/account/password", json!({ "new_password": NEW })).await;
    assert_eq!((no_current.status, no_current.error_code().as_str()), (403, "step_up_required"), "without the current password, a step-up");

    let changed = app.post_json(&laptop, "/api/v1/account/password", json!({ "current_password": PASSWORD, "new_password": NEW })).await;
    assert_eq!((changed.status, changed.json()["other_sessions_ended"].as_i64()), (200, Some(1)), "{}", changed.text);
    assert_eq!(app.get(&laptop, "/api/v1/session").await.status, 200, "this session stays");
    assert_eq!(app.get(&phone, "/api/v1/session").await.status, 401, "the others end (S7.7)");
    assert_eq!(
        app.reset(json!({ "token": reset_link, "new_password": "another fine passphrase" })).await.status,
        400,
        "reset links die (S1.6)"
    );
    assert!(
        app.deliver().await.iter().any(|m| m.kind == "password_changed" && m.text.contains("Your password was changed")),
        "the owner is told (S9.1)"
    );
    assert_eq!(app.login("maria", PASSWORD).await.status, 401);
    assert_eq!(app.login("maria", NEW).await.status, 200);

    // The page, without JavaScript.
    let page = app.get(&laptop, "/account/password").await;
    let csrf = csrf_of(&page.text);
    let form = [("csrf", csrf.as_str()), ("current_password", NEW), ("new_password", "summer lake whistle")];
    let done = Response::read(laptop.post(app.url("/account/password")).form(&form).send().await.unwrap()).await;
    assert_eq!(done.status, 200);
    assert!(done.text.contains("Your password was changed"));
    let forged = laptop
        .post(app.url("/account/password"))
        .form(&[("csrf", "x"), ("current_password", "a"), ("new_password", "b")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
}
