use crate::helpers::{Backend, PASSWORD, TestApp};
use crate::on_both_backends;

on_both_backends!(
    failures_from_one_address_are_slowed_down,
    an_attacker_elsewhere_cannot_lock_the_owner_out,
    throttled_answers_do_not_reveal_whether_an_account_exists,
    an_account_refuses_password_checks_after_100_failures_until_a_cool_down,
    one_address_spraying_many_accounts_is_stopped,
);

const ATTACKER: &str = "203.0.113.66";
const OWNER: &str = "198.51.100.20";

/// S3.2: five free failures, then a 429 saying when to retry, with growing delays.
async fn failures_from_one_address_are_slowed_down(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    for _ in 0..5 {
        assert_eq!(app.login_as(&app.client, ATTACKER, "maria", "guess guess guess").await.status, 401);
    }
    let throttled = app.login_as(&app.client, ATTACKER, "maria", PASSWORD).await;
    assert_eq!(throttled.status, 429, "even the right password waits: {}", throttled.text);
    assert_eq!(throttled.error_code(), "too_many_attempts");
    assert!(throttled.json()["message"].as_str().unwrap().contains("Try again in 2 seconds"));
    let retry: i64 = throttled.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "retry-after {retry}");

    app.clock.advance(retry);
    assert_eq!(app.login_as(&app.client, ATTACKER, "maria", "guess guess guess").await.status, 401);
    let next = app.login_as(&app.client, ATTACKER, "maria", "guess guess guess").await;
    assert_eq!(next.status, 429);
    let longer: i64 = next.header("retry-after").unwrap().parse().unwrap();
    assert!(longer > retry, "delays grow: {longer} after {retry}");

    app.clock.advance(longer);
    assert_eq!(app.login_as(&app.client, ATTACKER, "maria", PASSWORD).await.status, 200);
    // Success clears the delay for that address.
    assert_eq!(app.login_as(&app.client, ATTACKER, "maria", "guess guess guess").await.status, 401);
}

/// S3.3: failures from an attacker's address do not stop the owner at theirs.
async fn an_attacker_elsewhere_cannot_lock_the_owner_out(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    for _ in 0..8 {
        app.login_as(&app.client, ATTACKER, "maria", "guess guess guess").await;
    }
    assert_eq!(app.login_as(&app.client, ATTACKER, "maria", "guess guess guess").await.status, 429);
    assert_eq!(app.login_as(&TestApp::new_client(), OWNER, "maria", PASSWORD).await.status, 200);
}

/// S2.1: a throttled unknown account answers exactly like a throttled real one.
async fn throttled_answers_do_not_reveal_whether_an_account_exists(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let mut last = Vec::new();
    for login in ["maria", "ghost"] {
        for _ in 0..5 {
            app.login_as(&app.client, ATTACKER, login, "guess guess guess").await;
        }
        let r = app.login_as(&app.client, ATTACKER, login, "guess guess guess").await;
        last.push((r.status, r.text.clone(), r.header("retry-after").map(str::to_owned)));
    }
    assert_eq!(last[0], last[1]);
    assert_eq!(last[0].0, 429);
}

/// S3.1: after 100 consecutive failures from anywhere, password checks are refused until a
/// one-hour cool-down, which ends by itself (S3.3).
async fn an_account_refuses_password_checks_after_100_failures_until_a_cool_down(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    // One failure from each of 100 addresses in different subnets: no per-address limit applies.
    for i in 0..100 {
        let ip = format!("10.{}.{}.1", i / 200, i % 200);
        assert_eq!(app.login_as(&app.client, &ip, "maria", "guess guess guess").await.status, 401, "failure {i}");
    }
    let locked = app.login_as(&TestApp::new_client(), OWNER, "maria", PASSWORD).await;
    assert_eq!(locked.status, 429);
    let retry: i64 = locked.header("retry-after").unwrap().parse().unwrap();
    assert!((3500..=3600).contains(&retry), "{retry}");
    app.clock.advance(3601);
    assert_eq!(app.login_as(&TestApp::new_client(), OWNER, "maria", PASSWORD).await.status, 200);
}

/// S3.2: one address trying one password on many accounts runs out of budget.
async fn one_address_spraying_many_accounts_is_stopped(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    for i in 0..50 {
        assert_eq!(app.login_as(&app.client, ATTACKER, &format!("user{i}"), "Password123!").await.status, 401);
    }
    assert_eq!(app.login_as(&app.client, ATTACKER, "maria", PASSWORD).await.status, 429);
    assert_eq!(app.login_as(&app.client, OWNER, "maria", PASSWORD).await.status, 200);
}
