//! Faults (issue 13): PostgreSQL going away under a running app, and clocks that disagree
//! between replicas.

use crate::helpers::{Backend, PASSWORD, TestApp, eventually, test_config};
use crate::two_step::{current_code, enrol_totp};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

/// A TCP hop between doorman and PostgreSQL that a test can cut and restore, as a database
/// restart or a network partition would: cutting closes the listener and every connection.
struct Hop {
    address: SocketAddr,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Hop {
    async fn open(address: SocketAddr) -> Self {
        let hop = Self { address, tasks: Arc::new(Mutex::new(Vec::new())) };
        hop.start().await;
        hop
    }

    async fn start(&self) {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket.bind(self.address).unwrap();
        let listener: TcpListener = socket.listen(64).unwrap();
        let tasks = self.tasks.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { return };
                let relay = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect("127.0.0.1:5432").await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                tasks.lock().await.push(relay);
            }
        });
        self.tasks.lock().await.push(accept);
    }

    async fn cut(&self) {
        for task in self.tasks.lock().await.drain(..) {
            task.abort();
        }
        // Let the aborted tasks drop their sockets.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// PostgreSQL goes away under a running app: requests that need it answer 503 `unavailable`
/// in the usual error shape with `Retry-After`, not 500 and not a hang; `/readyz` says so; and
/// once it is back the same requests work again, with no restart.
#[tokio::test]
async fn when_postgres_goes_away_requests_answer_503_and_service_resumes_by_itself() {
    let mut config = test_config(Backend::Postgres).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let hop = Hop::open(SocketAddr::from(([127, 0, 0, 1], port))).await;
    let mut url = url::Url::parse(&config.database_url).unwrap();
    url.set_port(Some(port)).unwrap();
    config.database_url = url.to_string();
    let app = TestApp::spawn_with(config).await;
    app.create_account("maria", "maria@example.com").await;
    assert_eq!(app.login("maria", PASSWORD).await.status, 200);

    hop.cut().await;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    for _ in 0..3 {
        let login = client
            .post(app.url("/api/v1/login"))
            .header("X-Real-IP", "192.0.2.50")
            .json(&json!({ "login": "maria", "password": PASSWORD }))
            .send()
            .await
            .expect("an answer, not a hang");
        assert_eq!(login.status(), 503);
        assert_eq!(login.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("5"));
        let body: serde_json::Value = login.json().await.unwrap();
        assert_eq!(body["error"], "unavailable", "{body}");
        assert!(body["message"].as_str().is_some_and(|m| m.contains("database")), "{body}");
    }
    let ready = client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let page = client.post(app.url("/forgot-password")).form(&[("login", "maria")]).send().await.unwrap();
    assert_ne!(page.status(), 500, "a page answers without a 500 too");

    hop.start().await;
    eventually("the app to reach the database again", 30, async || {
        let ready = client.get(app.url("/readyz")).send().await.ok()?;
        (ready.status() == 200).then_some(())
    })
    .await;
    let login = app.login("maria", PASSWORD).await;
    assert_eq!(login.status, 200, "{}", login.text);
}

/// Two replicas whose clocks disagree by 5 seconds either way (issue 13): a session, a reset
/// link and an authenticator code made on one work on the other.
#[tokio::test]
async fn replicas_five_seconds_apart_agree_on_sessions_links_and_codes() {
    for skew in [5, -5] {
        let config = test_config(Backend::Postgres).await;
        let first = TestApp::spawn_with(config.clone()).await;
        let second = TestApp::spawn_with(config).await;
        if skew > 0 {
            second.clock.advance(skew);
        } else {
            first.clock.advance(-skew);
        }
        first.create_account("maria", "maria@example.com").await;

        // An authenticator enrolled on one replica, its code given on the other.
        let browser = TestApp::new_client();
        assert_eq!(first.login_as(&browser, "192.0.2.51", "maria", PASSWORD).await.status, 200);
        let (secret, method_id) = enrol_totp(&first, &browser).await;
        let half = TestApp::new_client();
        let login = second.login_as(&half, "192.0.2.52", "maria", PASSWORD).await;
        assert_eq!(login.json()["status"], "second_factor_required", "skew {skew}: {}", login.text);
        // The next step on the first replica's clock: the enrolment's code is spent.
        first.clock.advance(30);
        second.clock.advance(30);
        let code = current_code(&first, &secret, 0);
        let passed = second.post_json(&half, "/api/v1/login/second-factor", json!({ "method_id": method_id, "code": code })).await;
        assert_eq!(passed.status, 200, "skew {skew}: {}", passed.text);
        // The session made on the second replica works on the first.
        assert_eq!(first.get(&half, "/api/v1/session").await.status, 200, "skew {skew}");

        // A reset link asked for on one replica and used on the other.
        assert_eq!(first.forgot("maria").await.status, 202);
        let mail = first.deliver().await.into_iter().find(|m| m.kind == "password_reset").expect("a reset email");
        let token = mail.token("reset-password");
        // A minute on: the code below is always of a later step than the one the login spent,
        // whatever the second of the half-minute the test started at (30 s was not enough
        // when the skew put both in one step, and the code was refused as replayed).
        first.clock.advance(60);
        second.clock.advance(60);
        let second_factor = json!({ "method_id": method_id, "code": current_code(&second, &secret, 0) });
        let done = second.reset(json!({ "token": token, "new_password": "tidal lantern orchard", "second_factor": second_factor })).await;
        assert_eq!(done.status, 200, "skew {skew}: {}", done.text);
    }
}
