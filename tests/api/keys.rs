//! Keys that can be rotated (issue 13): `doorman key rotate` adds a key that signs everything
//! new once every replica has loaded it, while what the old key made keeps working (sessions,
//! links, codes, CSRF tokens, TOTP secrets, the audit chain) and no attempt counter starts
//! again; `doorman key retire` is refused while anything still needs the old key.

use crate::helpers::{Backend, PASSWORD, Response, TestApp, csrf_of, test_config};
use crate::on_both_backends;
use crate::two_step::{current_code, enrol_totp};
use doorman::Config;
use serde_json::json;
use std::process::{Command, Output};
use std::time::Duration;

on_both_backends!(key_rotation_keeps_sessions_links_codes_and_the_audit_chain);

const NEW_PASSWORD: &str = "violet canyon drumbeat";

/// `doorman key ...` (or any command) on the test's database and key, as an operator runs it.
pub fn doorman(config: &Config, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_doorman"))
        .args(args)
        .env("DOORMAN_DATABASE_URL", &config.database_url)
        .env("DOORMAN_SECRET_KEY_FILE", &config.secret_key_file)
        .env("DOORMAN_KEYRING_RELOAD_SECONDS", "1")
        .env("DOORMAN_LOG", "warn")
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Rotates with the shortest activation the CLI allows at a 1 s reload (6 s); returns the
/// new key's id and the Unix time it signs from.
pub fn rotate(config: &Config) -> (String, i64) {
    let rotated = doorman(config, &["key", "rotate", "--activate-in", "6"]);
    assert!(rotated.status.success(), "{rotated:?}");
    let text = stdout(&rotated);
    let id = text.strip_prefix("added key ").and_then(|t| t.split(':').next()).unwrap().to_owned();
    assert_eq!(id.len(), 8, "{text}");
    let list = stdout(&doorman(config, &["key", "list"]));
    assert!(list.contains(&id) && list.contains("[original (the secret key), signing]"), "not signing yet: {list}");
    (id, time::OffsetDateTime::now_utc().unix_timestamp() + 6)
}

/// Waits (real time) until a key active from `at` signs on every process's system clock.
pub async fn wait_until(at: i64) {
    while time::OffsetDateTime::now_utc().unix_timestamp() <= at {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn session_value(response: &Response) -> String {
    let cookie = response.session_cookie();
    cookie.split(';').next().unwrap().split_once('=').unwrap().1.to_owned()
}

async fn second_factor(app: &TestApp, client: &reqwest::Client, method_id: &str, code: &str) -> Response {
    app.post_json(client, "/api/v1/login/second-factor", json!({ "method_id": method_id, "code": code })).await
}

fn method_id(body: &serde_json::Value, kind: &str) -> String {
    body["methods"].as_array().unwrap().iter().find(|m| m["kind"] == kind).unwrap()["id"].as_str().unwrap().to_owned()
}

/// The authenticator secret as stored (sealed).
pub async fn totp_secret_row(database_url: &str) -> String {
    let store = doorman::store::SqlStore::connect(database_url).await.unwrap();
    let row: (String,) = sqlx::query_as("SELECT secret FROM second_factors WHERE kind = 'totp' AND removed_at IS NULL")
        .fetch_one(store.pool())
        .await
        .unwrap();
    row.0
}

async fn key_rotation_keeps_sessions_links_codes_and_the_audit_chain(backend: Backend) {
    let config = Config { keyring_reload_seconds: 1, ..test_config(backend).await };
    let app = TestApp::spawn_with(config.clone()).await;
    app.create_account("maria", "maria@example.com").await;
    app.create_account("jordan", "jordan@example.com").await;
    let original = app.services.keys.keyring().original_id().to_string();

    // Before the rotation: maria signs in and turns on an authenticator app and recovery
    // codes; jordan asks for a reset link; a visitor opens the login form (its CSRF token);
    // someone types wrong reset codes for a login (a counter named under the key).
    let maria = TestApp::new_client();
    assert_eq!(app.login_as(&maria, "192.0.2.10", "maria", PASSWORD).await.status, 200);
    let (secret, _) = enrol_totp(&app, &maria).await;
    let codes = app.post_json(&maria, "/api/v1/account/two-step/recovery-codes", json!({})).await.json()["codes"].clone();
    let codes: Vec<String> = codes.as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    app.deliver().await;
    let old_totp = totp_secret_row(&config.database_url).await;
    let link = app.reset_mail("jordan").await.token("reset-password");
    assert!(!link.contains('.'), "made under the original key: no key id, as before key ids existed");
    let visitor = TestApp::new_client();
    let old_csrf = csrf_of(&app.get(&visitor, "/login").await.text);
    for _ in 0..5 {
        let wrong = app.reset(json!({ "login": "nobody", "code": "12345678", "new_password": NEW_PASSWORD })).await;
        assert_eq!((wrong.status, wrong.error_code().as_str()), (400, "invalid_code"));
    }

    let (new_key, active_from) = rotate(&config);
    wait_until(active_from).await;
    // The app's clock (a test clock) moves past the activation too, and a minute more so the
    // audit events made so far can be sealed.
    use doorman_core::Clock;
    app.clock.advance((active_from - app.clock.unix()).max(0) + 70);
    // Every replica reloads the keyring each second: this one has too, well before activation.
    assert_eq!(app.services.keys.keyring().signing_id().as_str(), new_key);

    // Nobody is signed out, and no link or code stops working.
    assert_eq!(app.get(&maria, "/api/v1/session").await.status, 200, "the old session still works");
    let form = Response::read(
        visitor.post(app.url("/login")).form(&[("login", "jordan"), ("password", PASSWORD), ("csrf", &old_csrf)]).send().await.unwrap(),
    )
    .await;
    assert_eq!(form.status, 303, "a CSRF token issued before the rotation still passes: {}", form.text);
    let reset = app.reset(json!({ "token": link, "new_password": NEW_PASSWORD })).await;
    assert_eq!(reset.status, 200, "the old reset link still resets: {}", reset.text);
    let counted = app.reset(json!({ "login": "nobody", "code": "12345678", "new_password": NEW_PASSWORD })).await;
    assert_eq!(
        (counted.status, counted.error_code().as_str()),
        (429, "too_many_attempts"),
        "the rotation did not reset the attempt counter (a sixth wrong code)"
    );
    let phone = TestApp::new_client();
    let half = app.login_as(&phone, "192.0.2.11", "maria", PASSWORD).await;
    assert_eq!(half.status, 200);
    let totp = second_factor(&app, &phone, &method_id(&half.json(), "totp"), &current_code(&app, &secret, 0)).await;
    assert_eq!(totp.status, 200, "the authenticator sealed under the old key still verifies: {}", totp.text);
    let new_session = session_value(&totp);
    assert!(new_session.starts_with(&format!("{new_key}.")), "a new session names the new key: {new_session}");
    assert_eq!(app.get(&phone, "/api/v1/session").await.status, 200);
    let laptop = TestApp::new_client();
    let half = app.login_as(&laptop, "192.0.2.12", "maria", PASSWORD).await;
    let recovered = second_factor(&app, &laptop, &method_id(&half.json(), "recovery_code"), &codes[0]).await;
    assert_eq!(recovered.status, 200, "a recovery code made before the rotation still works: {}", recovered.text);
    app.deliver().await;
    let new_link = app.reset_mail("jordan").await.token("reset-password");
    assert!(new_link.starts_with(&format!("{new_key}.")), "a new link names the new key: {new_link}");

    // The audit chain: links before the rotation under the original key, after it under the
    // new one; `doorman audit verify` checks each with its own.
    app.clock.advance(61);
    assert!(app.services.audit.seal_audit_chain().await.unwrap() > 0);
    let verified = doorman(&config, &["audit", "verify"]);
    assert!(verified.status.success() && stdout(&verified).contains("audit chain intact"), "{verified:?}");

    // Retiring the old key: refused while the authenticator secret and the waiting messages
    // are sealed under it, until the re-seal pass moved them.
    assert!(!old_totp.contains('.'), "sealed under the original key: {old_totp}");
    let refused = doorman(&config, &["key", "retire", &original]);
    assert!(!refused.status.success(), "{refused:?}");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("authenticator secrets"), "{refused:?}");
    let resealed = doorman(&config, &["key", "reseal"]);
    assert!(resealed.status.success(), "{resealed:?}");
    let moved = totp_secret_row(&config.database_url).await;
    assert!(moved.starts_with(&format!("{new_key}.")), "re-sealed under the new key: {moved}");
    // Still refused without --force: maria's old session and the links and codes made under
    // the old key still work, and would stop.
    let refused = doorman(&config, &["key", "retire", &original]);
    let said = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(!refused.status.success() && said.contains("sessions") && said.contains("--force"), "{refused:?}");
    assert!(!said.contains("authenticator secrets"), "{said}");
    // The authenticator still works after the re-seal.
    let tablet = TestApp::new_client();
    let half = app.login_as(&tablet, "192.0.2.13", "maria", PASSWORD).await;
    app.clock.advance(30);
    let totp = second_factor(&app, &tablet, &method_id(&half.json(), "totp"), &current_code(&app, &secret, 0)).await;
    assert_eq!(totp.status, 200, "{}", totp.text);

    let retired = doorman(&config, &["key", "retire", &original, "--force"]);
    assert!(retired.status.success(), "{retired:?}");
    let list = stdout(&doorman(&config, &["key", "list"]));
    assert!(
        list.lines().any(|l| l.starts_with(&original) && l.matches(&format!("{}-", time::OffsetDateTime::now_utc().year())).count() == 2),
        "{list}"
    );
    // Within a reload, the retired key's values stop working; the new key's keep working.
    crate::helpers::eventually("the old session to end after --force", 10, async || {
        (app.get(&maria, "/api/v1/session").await.status == 401).then_some(())
    })
    .await;
    assert_eq!(app.get(&phone, "/api/v1/session").await.status, 200, "a session under the new key is unaffected");
    let verified = doorman(&config, &["audit", "verify"]);
    assert!(verified.status.success(), "the chain still verifies with the old key retired: {verified:?}");
    let again = doorman(&config, &["key", "retire", &new_key]);
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("signing key"), "{again:?}");
}
