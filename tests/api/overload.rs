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
