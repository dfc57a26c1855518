use crate::helpers::{Backend, PASSWORD, TestApp};
use crate::on_both_backends;

on_both_backends!(
    failures_from_one_address_are_slowed_down,
    an_attacker_elsewhere_cannot_lock_the_owner_out,
    throttled_answers_do_not_reveal_whether_an_account_exists,
    an_account_refuses_password_checks_after_100_failures_until_a_cool_down,
    one_address_spraying_many_accounts_is_stopped,
    a_claim_refuses_and_counts_as_the_rules_say,
    a_throttled_address_does_not_crowd_other_logins_out_of_the_hashing_queue,
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

/// S3.1-S3.3, S3.7: a claim on the limits compares what the database holds with the rules
/// (`ThrottleRule::blocked_until`) and counts in SQL of its own (a new window where the old one
/// is over). For every rule a login uses, and counts on both sides of each boundary (the
/// window's end, the free failures, the delay), the claim refuses exactly when the rule says
/// so and counts nothing then; otherwise it counts one.
async fn a_claim_refuses_and_counts_as_the_rules_say(backend: Backend) {
    use doorman_core::store::ThrottleStore;
    use doorman_core::throttle::{EventCount, ThrottleKey, account_cap, device_cap, login_keys};
    let dir = crate::helpers::temp_dir();
    let url = crate::helpers::fresh_database(backend, &dir).await;
    let store = doorman::store::SqlStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let now: i64 = 2_000_000_000;
    let mut rules: Vec<ThrottleKey> = login_keys("maria", "203.0.113.9".parse().unwrap());
    rules.push(account_cap(&doorman_core::account::AccountId::from_stored("acct".into())));
    rules.push(device_cap("dev"));
    let mut cases = 0;
    for (r, rule) in rules.iter().enumerate() {
        let window = rule.window();
        let (free, delays) = match rule.rule {
            doorman_core::throttle::ThrottleRule::GrowingDelay { free, max_delay, .. } => {
                (free, vec![0, 1, 2, 3, 4, 7, 8, 15, 16, 63, 64, max_delay - 1, max_delay, max_delay + 1])
            }
            doorman_core::throttle::ThrottleRule::Budget { limit, cooldown, .. } => {
                (limit, vec![0, 1, cooldown - 1, cooldown, cooldown + 1])
            }
        };
        for failures in [0, free - 1, free, free + 1, free + 2, free + 6, free + 30] {
            for window_start in [now - window - 1, now - window, now - window + 1, now - 5] {
                for since_last in &delays {
                    let count = EventCount { failures, window_start, last_failure: (now - since_last).max(window_start) };
                    let key = ThrottleKey { key: format!("agree:{r}:{cases}"), rule: rule.rule };
                    cases += 1;
                    sqlx::query("INSERT INTO rate_counters (key, failures, window_start, last_failure) VALUES ($1, $2, $3, $4)")
                        .bind(&key.key)
                        .bind(count.failures)
                        .bind(count.window_start)
                        .bind(count.last_failure)
                        .execute(store.pool())
                        .await
                        .unwrap();
                    let refused = store.claim_attempt(std::slice::from_ref(&key), now).await.unwrap();
                    let expected = rule.rule.blocked_until(&count, now);
                    assert_eq!(refused.as_ref().map(|r| r.until), expected, "{key:?} at {count:?}");
                    let after: (i64, i64, i64) =
                        sqlx::query_as("SELECT failures, window_start, last_failure FROM rate_counters WHERE key = $1")
                            .bind(&key.key)
                            .fetch_one(store.pool())
                            .await
                            .unwrap();
                    let counted = if expected.is_some() {
                        (count.failures, count.window_start, count.last_failure)
                    } else if now - count.window_start >= window {
                        (1, now, now)
                    } else {
                        (count.failures + 1, count.window_start, now)
                    };
                    assert_eq!(after, counted, "{key:?} at {count:?}");
                }
            }
        }
    }
    assert!(cases > 500, "{cases} cases");
    store.pool().close().await;
}

/// Admission control and throttling together (issue 12, S3.2): an address the limits already
/// refuse is answered 429 before its attempts take a place in the hashing queue, so a flood of
/// its guesses cannot fill the queue in front of the owner's login (a 503 for the owner would
/// let an attacker lock people out with refusals alone).
async fn a_throttled_address_does_not_crowd_other_logins_out_of_the_hashing_queue(backend: Backend) {
    let mut config = crate::helpers::test_config(backend).await;
    config.hash_queue = Some(0); // only as many places as hashing threads
    let app = TestApp::spawn_with(config).await;
    app.create_account("maria", "maria@example.com").await;
    for _ in 0..5 {
        assert_eq!(app.login_as(&app.client, ATTACKER, "maria", "guess guess guess").await.status, 401);
    }
    assert_eq!(app.login_as(&app.client, ATTACKER, "maria", "guess guess guess").await.status, 429);
    for round in 0..3 {
        let flood = (0..60).map(|_| {
            let app = &app;
            async move { app.login_as(&TestApp::new_client(), ATTACKER, "maria", "guess guess guess").await }
        });
        let owner_client = TestApp::new_client();
        let owner = app.login_as(&owner_client, OWNER, "maria", PASSWORD);
        let (flood, owner) = futures::future::join(futures::future::join_all(flood), owner).await;
        assert_eq!(owner.status, 200, "round {round}: the owner signs in during the flood: {}", owner.text);
        let statuses: Vec<u16> = flood.iter().map(|a| a.status).filter(|s| *s != 429).collect();
        assert!(statuses.is_empty(), "round {round}: every throttled guess is answered 429: {statuses:?}");
    }
}
