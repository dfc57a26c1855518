use crate::helpers::{Backend, PASSWORD, TestApp, csrf_of};
use crate::on_both_backends;
use doorman_core::Password;
use doorman_core::audit::AuditEvent;
use doorman_core::password::PasswordHasher;

on_both_backends!(
    logs_in_with_username_or_email,
    wrong_password_and_unknown_account_get_the_same_answer,
    login_form_works_without_javascript,
    usernames_are_unique_whatever_their_case,
    outdated_password_hashes_are_upgraded_at_login,
    login_and_logout_are_audited,
    health_and_readiness,
);

async fn logs_in_with_username_or_email(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("Maria.Santos", "Maria@Example.com").await;
    for login in ["Maria.Santos", "maria.santos", "MARIA@example.COM", " maria@example.com "] {
        let client = TestApp::new_client();
        let response = app.login_as(&client, "192.0.2.1", login, PASSWORD).await;
        assert_eq!(response.status, 200, "{login}: {}", response.text);
        assert_eq!(response.json(), serde_json::json!({ "status": "authenticated" }));
        let session = app.get(&client, "/api/v1/session").await;
        assert_eq!(session.status, 200);
        assert_eq!(session.json()["account"]["username"], "Maria.Santos");
        assert_eq!(session.json()["account"]["email"], "maria@example.com");
        assert_eq!(session.json()["account"]["user_type"], "freelancer");
        assert_eq!(session.json()["account"]["country"], "PH");
    }
}

/// S2.1: same status, body and headers (request id and date aside) for a wrong password
/// and for an account that does not exist. S2.3's timing is measured in docs/BENCHMARKS.md.
async fn wrong_password_and_unknown_account_get_the_same_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let wrong = app.login("maria", "not the right password").await;
    let unknown = app.login("nobody-here", "not the right password").await;
    let malformed = app.login("<script>", "x").await;
    for response in [&wrong, &unknown, &malformed] {
        assert_eq!(response.status, 401);
        assert_eq!(response.error_code(), "invalid_credentials");
        assert_eq!(response.text, wrong.text);
        let mut names: Vec<_> =
            response.headers.keys().map(|k| k.as_str().to_owned()).filter(|k| k != "x-request-id" && k != "date").collect();
        names.sort();
        let mut expected: Vec<_> =
            wrong.headers.keys().map(|k| k.as_str().to_owned()).filter(|k| k != "x-request-id" && k != "date").collect();
        expected.sort();
        assert_eq!(names, expected);
        assert!(response.set_cookies().is_empty(), "a failed login sets no session cookie");
    }
}

async fn login_form_works_without_javascript(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let client = TestApp::new_client();
    let page = app.get(&client, "/login").await;
    assert_eq!(page.status, 200);
    let csrf = csrf_of(&page.text);

    let wrong =
        client.post(app.url("/login")).form(&[("login", "maria"), ("password", "nope nope nope"), ("csrf", &csrf)]).send().await.unwrap();
    let wrong = crate::helpers::Response::read(wrong).await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.text.contains("The username, email or password is not correct."));
    assert!(wrong.text.contains("value=\"maria\""), "the typed login is kept");

    let ok = client.post(app.url("/login")).form(&[("login", "maria"), ("password", PASSWORD), ("csrf", &csrf)]).send().await.unwrap();
    assert_eq!(ok.status(), 303);
    assert_eq!(ok.headers()["location"], "/account");
    let account = app.get(&client, "/account").await;
    assert_eq!(account.status, 200);
    assert!(account.text.contains("Signed in as <strong>maria</strong>"));

    let logout = client.post(app.url("/logout")).form(&[("csrf", csrf_of(&account.text))]).send().await.unwrap();
    assert_eq!(logout.status(), 303);
    assert_eq!(logout.headers()["location"], "/login?logged_out=1");
    let said = app.get(&client, "/login?logged_out=1").await;
    assert!(said.text.contains("You are logged out."), "{}", said.text);
    let after = app.get(&client, "/account").await;
    assert_eq!(after.status, 303);
    assert_eq!(after.header("location"), Some("/login"));
}

async fn usernames_are_unique_whatever_their_case(backend: Backend) {
    use doorman_core::audit::RequestContext;
    use doorman_core::auth::{AuthError, NewAccountRequest};
    use doorman_core::{Country, EmailAddress, UserType, Username};
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let attempt = |username: &str, email: &str| NewAccountRequest {
        username: Username::parse(username).unwrap(),
        email: EmailAddress::parse(email).unwrap(),
        user_type: UserType::Client,
        country: Country::parse("US").unwrap(),
        password: Password::new(PASSWORD).unwrap(),
    };
    let taken = app.services.auth.create_account(attempt("MARIA", "other@example.com"), &RequestContext::cli()).await;
    assert!(matches!(taken, Err(AuthError::UsernameTaken)), "{taken:?}");
    let taken = app.services.auth.create_account(attempt("maria2", "MARIA@EXAMPLE.COM"), &RequestContext::cli()).await;
    assert!(matches!(taken, Err(AuthError::EmailTaken)), "{taken:?}");
}

/// S4.7: argon2id at OWASP's parameters; a hash made with weaker ones is replaced at login.
async fn outdated_password_hashes_are_upgraded_at_login(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let account = app.create_account("maria", "maria@example.com").await;
    let (_, stored) = app.services.store.find_for_login("maria").await.unwrap().unwrap();
    assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");

    let weak = PasswordHasher::new(4096, 1, 1, 1).unwrap().hash(&Password::new(PASSWORD).unwrap()).await.unwrap();
    app.services.store.set_password_hash(&account.id, &weak, 0).await.unwrap();
    assert_eq!(app.login("maria", PASSWORD).await.status, 200);
    let (_, upgraded) = app.services.store.find_for_login("maria").await.unwrap().unwrap();
    assert!(upgraded.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{upgraded}");
    assert_eq!(
        TestApp::new_client()
            .post(app.url("/api/v1/login"))
            .json(&serde_json::json!({"login": "maria", "password": PASSWORD}))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// S10.1 (part): account creation, login success and failure, and logout are recorded
/// with time, account, IP, user agent and request id; S10.2: never the password.
async fn login_and_logout_are_audited(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let account = app.create_account("maria", "maria@example.com").await;
    let client = TestApp::new_client();
    app.login_as(&client, "198.51.100.7", "maria", "wrong password here").await;
    let ok = app.login_as(&client, "198.51.100.7", "maria", PASSWORD).await;
    assert_eq!(ok.status, 200);
    let logout =
        client.post(app.url("/api/v1/logout")).header("X-Real-IP", "198.51.100.7").json(&serde_json::json!({})).send().await.unwrap();
    assert_eq!(logout.status(), 200);

    let events = app.services.store.audit_of(&account.id, 50).await.unwrap();
    let kinds: Vec<AuditEvent> = events.iter().rev().map(|e| e.event).collect();
    assert_eq!(kinds, vec![AuditEvent::AccountCreated, AuditEvent::LoginFailed, AuditEvent::LoginSucceeded, AuditEvent::Logout]);
    let failed = events.iter().find(|e| e.event == AuditEvent::LoginFailed).unwrap();
    assert_eq!(failed.ip, "198.51.100.7");
    assert!(failed.user_agent.is_empty() || !failed.user_agent.contains("wrong"));
    assert!(!failed.request_id.is_empty(), "the request id ties the event to the logs");
    // A client cannot choose the request id stored in the audit log.
    let chosen = client
        .post(app.url("/api/v1/login"))
        .header("x-request-id", "chosen-by-client")
        .json(&serde_json::json!({"login": "maria", "password": "nope nope"}))
        .send()
        .await
        .unwrap();
    assert_ne!(chosen.headers()["x-request-id"], "chosen-by-client");
    assert!(events.iter().all(|e| !e.detail.contains("wrong password") && !e.detail.contains(PASSWORD)));
    assert!(events.iter().all(|e| e.at > 1_700_000_000));
}

async fn health_and_readiness(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let health = app.get(&app.client, "/healthz").await;
    assert_eq!((health.status, health.json()["status"].as_str()), (200, Some("ok")));
    let ready = app.get(&app.client, "/readyz").await;
    assert_eq!((ready.status, ready.json()["status"].as_str()), (200, Some("ready")));
}
