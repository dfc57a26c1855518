//! The optional Pwned Passwords check of new passwords (checklist S4.4): the offline SHA-1
//! file, and the k-anonymity range API against a real HTTP server started in the test
//! (axum on 127.0.0.1, port 0) that records what it was asked.

use crate::helpers::{Backend, TestApp, test_config};
use crate::on_both_backends;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use doorman::Config;
use doorman_core::audit::RequestContext;
use doorman_core::auth::{AuthError, NewAccountRequest};
use doorman_core::breached::PWNED_PASSWORDS_CHECK;
use doorman_core::password::WeakPassword;
use doorman_core::{Country, EmailAddress, Password, UserType, Username};
use serde_json::json;
use sha1::{Digest, Sha1};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

on_both_backends!(
    s4_4_a_password_in_the_offline_pwned_file_is_refused,
    s4_4_the_range_api_is_sent_only_a_five_character_prefix,
    s4_4_an_unreachable_range_api_fails_open,
    s4_4_a_slow_range_api_fails_open_after_its_timeout,
);

/// Passes every other rule (length, shipped list, personal information) for "maria".
const BREACHED: &str = "correct horse battery staple 42";
const CLEAN: &str = "violet canyon drumbeat";

fn sha1_hex(text: &str) -> String {
    hex::encode_upper(Sha1::digest(text.as_bytes()))
}

/// The refusal of a breached password, as the API says it.
async fn assert_refused_as_breached(app: &TestApp, token: &str) {
    let response = app.reset(json!({ "token": token, "new_password": BREACHED })).await;
    assert_eq!((response.status, response.error_code().as_str()), (422, "weak_password"));
    let message = response.json()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("data breach"), "the refusal says why: {message}");
}

/// `create_account` consults the check too (used by `doorman user add` and the demo).
async fn assert_account_creation_refuses_breached(app: &TestApp) {
    let result = app
        .services
        .auth
        .create_account(
            NewAccountRequest {
                username: Username::parse("joseph").unwrap(),
                email: EmailAddress::parse("joseph@example.com").unwrap(),
                user_type: UserType::Client,
                country: Country::parse("PH").unwrap(),
                password: Password::new(BREACHED).unwrap(),
            },
            &RequestContext::cli(),
        )
        .await;
    assert!(matches!(result, Err(AuthError::WeakPassword(WeakPassword::Breached))), "{result:?}");
}

/// S4.4 with the offline file: a few hundred sorted `HASH:COUNT` lines (CRLF, as HIBP ships
/// it) holding the breached password's SHA-1.
async fn s4_4_a_password_in_the_offline_pwned_file_is_refused(backend: Backend) {
    let config = test_config(backend).await;
    let path = config.secret_key_file.parent().unwrap().join("pwned-passwords-sha1-ordered-by-hash.txt");
    let mut lines: Vec<String> = (0..400).map(|i| format!("{}:{}", sha1_hex(&format!("leaked {i}")), i + 1)).collect();
    lines.push(format!("{}:52", sha1_hex(BREACHED)));
    lines.sort();
    std::fs::write(&path, lines.join("\r\n") + "\r\n").unwrap();
    let app = TestApp::spawn_with(Config { pwned_passwords_file: Some(path), ..config }).await;

    app.create_account("maria", "maria@example.com").await;
    assert_account_creation_refuses_breached(&app).await;
    let token = app.reset_mail("maria").await.token("reset-password");
    assert_refused_as_breached(&app, &token).await;
    let reset = app.reset(json!({ "token": token, "new_password": CLEAN })).await;
    assert_eq!(reset.status, 200, "another long password is accepted, and the link was kept: {}", reset.text);
    assert_eq!(app.login("maria", CLEAN).await.status, 200);
}

/// One request as the range API received it.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone, Default)]
struct RangeState {
    seen: Arc<Mutex<Vec<Seen>>>,
    delay: Duration,
}

/// An HTTP server standing for api.pwnedpasswords.com; stops with the test's runtime.
struct RangeServer {
    address: SocketAddr,
    state: RangeState,
}

impl RangeServer {
    async fn start(delay: Duration) -> Self {
        let state = RangeState { delay, ..RangeState::default() };
        let app = axum::Router::new().fallback(range).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { address, state }
    }

    fn url(&self) -> url::Url {
        url::Url::parse(&format!("http://{}", self.address)).unwrap()
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }
}

/// Answers as the real API does with `Add-Padding: true`: every suffix under the prefix, plus
/// fake ones of count 0. The breached password is listed; the clean one appears only as
/// padding (count 0), which must not count.
async fn range(State(state): State<RangeState>, uri: Uri, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    state.seen.lock().unwrap().push(Seen { path: uri.path().to_owned(), query: uri.query().map(str::to_owned), headers, body });
    tokio::time::sleep(state.delay).await;
    let Some(prefix) = uri.path().strip_prefix("/range/") else { return (StatusCode::NOT_FOUND, String::new()) };
    let mut lines: Vec<String> =
        (0..60).map(|i| format!("{}:{}", &sha1_hex(&format!("other {prefix} {i}"))[5..], if i % 3 == 0 { 0 } else { i * 7 })).collect();
    for (password, count) in [(BREACHED, 3_730_471), (CLEAN, 0)] {
        let hash = sha1_hex(password);
        if hash.starts_with(prefix) {
            lines.push(format!("{}:{count}", &hash[5..]));
        }
    }
    lines.sort();
    (StatusCode::OK, lines.join("\r\n"))
}

/// S4.4 by the k-anonymity API: each request names only the first 5 hex characters of the
/// SHA-1 (no suffix, no password, no body), asks for padding, and the answer decides.
async fn s4_4_the_range_api_is_sent_only_a_five_character_prefix(backend: Backend) {
    let server = RangeServer::start(Duration::ZERO).await;
    let app = TestApp::spawn_with(Config { pwned_passwords_api: Some(server.url()), ..test_config(backend).await }).await;

    app.create_account("maria", "maria@example.com").await;
    assert_account_creation_refuses_breached(&app).await;
    let token = app.reset_mail("maria").await.token("reset-password");
    assert_refused_as_breached(&app, &token).await;
    let reset = app.reset(json!({ "token": token, "new_password": CLEAN })).await;
    assert_eq!(reset.status, 200, "a password listed only as padding is accepted: {}", reset.text);

    let seen = server.seen();
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    for password in [BREACHED, CLEAN] {
        let path = format!("/range/{}", &sha1_hex(password)[..5]);
        assert!(paths.contains(&path.as_str()), "{path} asked: {paths:?}");
    }
    for request in &seen {
        let prefix = request.path.strip_prefix("/range/").unwrap_or_else(|| panic!("unexpected path {}", request.path));
        assert!(prefix.len() == 5 && prefix.bytes().all(|b| b.is_ascii_hexdigit()), "only 5 hex characters: {}", request.path);
        assert_eq!((request.query.as_deref(), request.body.len()), (None, 0));
        assert_eq!(request.headers.get("add-padding").and_then(|v| v.to_str().ok()), Some("true"));
        let everything = format!("{} {:?}", request.path, request.headers);
        for password in [BREACHED, CLEAN] {
            let hash = sha1_hex(password);
            assert!(!everything.contains(&hash[5..]) && !everything.contains(password), "nothing but the prefix leaves");
        }
    }
    assert_eq!(app.services.store.fail_open_since(0).await.unwrap(), vec![], "a check that answered did not fail open");
}

/// Fail open: with the API down the check cannot be made, so the reset goes through (the
/// password passed every other rule) rather than locking the owner out.
async fn s4_4_an_unreachable_range_api_fails_open(backend: Backend) {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let api = url::Url::parse(&format!("http://{closed}")).unwrap();
    let config = Config { pwned_passwords_api: Some(api), ..test_config(backend).await };
    let url = config.database_url.clone();
    let app = TestApp::spawn_with(config).await;
    app.create_account("maria", "maria@example.com").await;
    let token = app.reset_mail("maria").await.token("reset-password");
    let reset = app.reset(json!({ "token": token, "new_password": BREACHED })).await;
    assert_eq!(reset.status, 200, "{}", reset.text);
    assert_eq!(app.login("maria", BREACHED).await.status, 200);

    // Each fail-open is counted (the account's creation and the reset) for operators.
    let counts = app.services.store.fail_open_since(0).await.unwrap();
    assert_eq!(counts.len(), 1, "{counts:?}");
    assert_eq!((counts[0].check.as_str(), counts[0].failures), (PWNED_PASSWORDS_CHECK, 2), "{counts:?}");
    assert!(counts[0].last_error.as_deref().is_some_and(|e| e.contains("127.0.0.1")), "says what failed: {counts:?}");
    let stdout = crate::helpers::mail_status(&url);
    assert!(stdout.contains("Checks that failed open in the last 7 days: 2"), "{stdout}");
    assert!(stdout.lines().any(|l| l.contains("pwned_passwords") && l.contains("failed open 2")), "{stdout}");
}

/// Fail open, slowly: an API that does not answer is given up after 3 seconds.
async fn s4_4_a_slow_range_api_fails_open_after_its_timeout(backend: Backend) {
    let server = RangeServer::start(Duration::from_secs(60)).await;
    let app = TestApp::spawn_with(Config { pwned_passwords_api: Some(server.url()), ..test_config(backend).await }).await;
    app.create_account("maria", "maria@example.com").await;
    let token = app.reset_mail("maria").await.token("reset-password");
    let started = Instant::now();
    let reset = app.reset(json!({ "token": token, "new_password": BREACHED })).await;
    assert_eq!(reset.status, 200, "{}", reset.text);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(3) && waited < Duration::from_secs(20), "given up after the timeout: {waited:?}");
    assert!(server.seen().iter().any(|s| s.path == format!("/range/{}", &sha1_hex(BREACHED)[..5])));
}
