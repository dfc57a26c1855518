//! Admission control (issue 12): password checks wait in a bounded queue in front of the
//! hashing threads. When it is full, a login is refused at once with 503 `overloaded` and
//! `Retry-After`, never a 500, and counts nothing against the account; the server serves
//! again as soon as the burst is over.

use crate::helpers::{Backend, PASSWORD, TestApp, test_config};
use crate::on_both_backends;

on_both_backends!(a_burst_of_logins_beyond_the_queue_is_refused_fast_and_counts_nothing,);

async fn a_burst_of_logins_beyond_the_queue_is_refused_fast_and_counts_nothing(backend: Backend) {
    let mut config = test_config(backend).await;
    config.hash_queue = Some(0); // only as many checks as hashing threads, none waiting
    let app = TestApp::spawn_with(config).await;
    app.create_account("maria", "maria@example.com").await;

    let burst = (0..40).map(|i| {
        let app = &app;
        async move { app.login_as(&TestApp::new_client(), &format!("198.51.{}.{}", i / 200, i % 200 + 1), "maria", PASSWORD).await }
    });
    let answers = futures::future::join_all(burst).await;
    let refused: Vec<_> = answers.iter().filter(|a| a.status == 503).collect();
    let others: Vec<_> = answers.iter().filter(|a| a.status != 200 && a.status != 503).map(|a| (a.status, &a.text)).collect();
    assert!(others.is_empty(), "only successes and refusals: {others:?}");
    assert!(answers.iter().any(|a| a.status == 200), "the hashing threads kept working");
    assert!(!refused.is_empty(), "40 logins at once with no waiting room: some must be refused");
    for answer in &refused {
        assert_eq!(answer.error_code(), "overloaded", "{}", answer.text);
        assert!(answer.json()["message"].as_str().unwrap().contains("try again"), "{}", answer.text);
        assert_eq!(answer.header("retry-after"), Some("1"));
    }

    // The same for a wrong password: refused before anything is counted, so a burst of
    // refusals never locks the account (S3.1 counts guesses, not refusals).
    let wrong = (0..40).map(|i| {
        let app = &app;
        async move { app.login_as(&TestApp::new_client(), &format!("203.0.{}.{}", i / 200, i % 200 + 1), "maria", "not it at all").await }
    });
    let wrong = futures::future::join_all(wrong).await;
    let counted = wrong.iter().filter(|a| a.status == 401).count();
    let others: Vec<_> = wrong.iter().filter(|a| a.status != 401 && a.status != 503).map(|a| (a.status, &a.text)).collect();
    assert!(others.is_empty(), "only wrong-password answers and refusals: {others:?}");
    assert!(counted < 40, "some were refused for overload");

    // Over: the next login is served as usual.
    assert_eq!(app.login("maria", PASSWORD).await.status, 200);
}

/// A login refused for overload is answered without a database read (issue 12): each login
/// takes its place in the hashing queue before its first read. Before, logins only checked for
/// room, read, and then found the places gone: under overload on PostgreSQL those refusals
/// waited for a pool connection and a statement (p99 60-130 ms in the bench's paced run). Here
/// the accounts table is held by another transaction, so every read of it waits: the logins
/// that hold the places wait, and one more is still refused at once. PostgreSQL only: SQLite's
/// readers never wait for a lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_refused_for_overload_waits_for_no_database_read() {
    use sqlx::{Connection, Executor};
    let mut config = test_config(Backend::Postgres).await;
    config.hash_queue = Some(0); // one place per hashing thread, none waiting
    let database_url = config.database_url.clone();
    let app = TestApp::spawn_with(config).await;
    app.create_account("maria", "maria@example.com").await;
    let places = std::thread::available_parallelism().map_or(2, |n| n.get());

    let mut holder = sqlx::PgConnection::connect(&database_url).await.expect("connect");
    holder.execute("BEGIN; LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE").await.expect("hold the accounts table");
    let holding = futures::future::join_all((0..places).map(|i| {
        let app = &app;
        async move { app.login_as(&TestApp::new_client(), &format!("198.51.100.{}", i + 1), "maria", PASSWORD).await }
    }));
    let refusal = async {
        let mut watcher = sqlx::PgConnection::connect(&database_url).await.expect("connect");
        // Every place is taken once that many logins wait for the table.
        crate::helpers::eventually("the logins holding the places to wait for the table", 10, async || {
            let waiting: i64 =
                sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
                    .fetch_one(&mut watcher)
                    .await
                    .expect("read pg_stat_activity");
            (waiting >= places as i64).then_some(())
        })
        .await;
        let refused = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            app.login_as(&TestApp::new_client(), "203.0.113.9", "maria", PASSWORD),
        )
        .await;
        holder.execute("COMMIT").await.expect("let the table go");
        refused.expect("the refusal is answered while the database holds every read")
    };
    let (held, refused) = futures::future::join(holding, refusal).await;
    assert_eq!(refused.status, 503, "{}", refused.text);
    assert_eq!(refused.error_code(), "overloaded");
    for answer in held {
        assert_eq!(answer.status, 200, "the logins that held the places are served once the table is free: {}", answer.text);
    }
}
