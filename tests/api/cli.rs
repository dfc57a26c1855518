//! The `doorman` binary, run as an operator would.

use crate::helpers::{Backend, PASSWORD, eventually, fresh_database, temp_dir};
use crate::on_both_backends;
use std::io::Write;
use std::process::{Command, Stdio};

on_both_backends!(operators_add_accounts_from_the_command_line, serve_starts_and_answers, logs_never_contain_secrets);

/// A `doorman serve` process, killed when dropped, so that a failing test leaves none behind.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

fn doorman(database_url: &str, dir: &std::path::Path, args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_doorman"))
        .args(args)
        .current_dir(dir)
        .env("DOORMAN_DATABASE_URL", database_url)
        .env("DOORMAN_SECRET_KEY_FILE", dir.join("secret.key"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run doorman");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

async fn operators_add_accounts_from_the_command_line(backend: Backend) {
    let dir = temp_dir();
    let db = fresh_database(backend, &dir).await;
    let migrate = doorman(&db, &dir, &["migrate"], "");
    assert!(migrate.status.success(), "{}", String::from_utf8_lossy(&migrate.stderr));

    let add = |username: &str, email: &str, country: &str, password: &str| {
        doorman(
            &db,
            &dir,
            &["user", "add", "--username", username, "--email", email, "--user-type", "agency", "--country", country, "--password-stdin"],
            &format!("{password}\n"),
        )
    };
    let ok = add("northwind", "team@northwind.example", "gb", PASSWORD);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("created account northwind"));

    let cases = [
        (add("NorthWind", "other@northwind.example", "GB", PASSWORD), "That username is already taken."),
        (add("other", "TEAM@northwind.example", "GB", PASSWORD), "That email address is already in use."),
        (add("other", "other@northwind.example", "XX", PASSWORD), "two-letter ISO 3166-1 code"),
        (add("other", "not-an-email", "GB", PASSWORD), "not a valid email address"),
        (add("other", "other@northwind.example", "GB", "short"), "at least 12 characters"),
    ];
    for (output, message) in cases {
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "expected {message:?} in {stderr}");
    }
    // Nothing half-written: the refused accounts do not exist, the good one logs in.
    let check = doorman(
        &db,
        &dir,
        &[
            "user",
            "add",
            "--username",
            "other",
            "--email",
            "other@northwind.example",
            "--user-type",
            "client",
            "--country",
            "US",
            "--password-stdin",
        ],
        "tulip garden seventy two\n",
    );
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));

    let missing_stdin_flag =
        doorman(&db, &dir, &["user", "add", "--username", "x1x", "--email", "x@y.example", "--user-type", "client", "--country", "US"], "");
    assert!(!missing_stdin_flag.status.success(), "passwords are never taken from arguments");
}

/// The account both server tests log in to, made with `doorman user add`.
fn add_jordan(db: &str, dir: &std::path::Path) {
    let args = [
        "user",
        "add",
        "--username",
        "jordan",
        "--email",
        "jordan@example.com",
        "--user-type",
        "client",
        "--country",
        "US",
        "--password-stdin",
    ];
    let add = doorman(db, dir, &args, &format!("{PASSWORD}\n"));
    assert!(add.status.success(), "{}", String::from_utf8_lossy(&add.stderr));
}

async fn serve_starts_and_answers(backend: Backend) {
    let dir = temp_dir();
    let db = fresh_database(backend, &dir).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    add_jordan(&db, &dir);
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_doorman"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .current_dir(&dir)
            .env("DOORMAN_DATABASE_URL", &db)
            .env("DOORMAN_SECRET_KEY_FILE", dir.join("secret.key"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let ready = eventually("doorman serve to answer", 15, async || client.get(format!("{base}/readyz")).send().await.ok()).await;
    assert_eq!(ready.status(), 200, "doorman serve became ready");
    let login = client
        .post(format!("{base}/api/v1/login"))
        .json(&serde_json::json!({"login": "jordan@example.com", "password": PASSWORD}))
        .send()
        .await;
    drop(server);
    assert_eq!(login.unwrap().status(), 200);
}

/// S10.2: a full run at debug level (failed and good logins, a reset by email with its link
/// and code, the new password) leaves no password, token, code or session id in the logs.
async fn logs_never_contain_secrets(backend: Backend) {
    let dir = temp_dir();
    let db = fresh_database(backend, &dir).await;
    add_jordan(&db, &dir);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log_path = dir.join("doorman.log");
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_doorman"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .current_dir(&dir)
            .env("DOORMAN_DATABASE_URL", &db)
            .env("DOORMAN_SECRET_KEY_FILE", dir.join("secret.key"))
            .env("DOORMAN_BASE_URL", format!("http://127.0.0.1:{port}"))
            .env("DOORMAN_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder().cookie_store(true).build().unwrap();
    eventually("doorman serve to answer", 15, async || client.get(format!("{base}/readyz")).send().await.ok()).await;
    let post = |path: &str, body: serde_json::Value| client.post(format!("{base}{path}")).json(&body).send();
    let wrong = "not my password at all";
    assert_eq!(post("/api/v1/login", serde_json::json!({"login": "jordan", "password": wrong})).await.unwrap().status(), 401);
    let ok = post("/api/v1/login", serde_json::json!({"login": "jordan", "password": PASSWORD})).await.unwrap();
    let session = ok.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().split_once('=').unwrap().1.to_owned();
    assert_eq!(post("/api/v1/password/forgot", serde_json::json!({"login": "jordan"})).await.unwrap().status(), 202);

    // The worker delivers to the dev outbox: read the email as a person would.
    let mail_dir = dir.join("doorman-data/mail");
    let raw = eventually("the reset email in the dev outbox", 15, async || {
        // Only finished files: the outbox writes a temporary name first, then renames it.
        std::fs::read_dir(&mail_dir)
            .ok()
            .and_then(|d| d.filter_map(Result::ok).find(|e| e.path().extension().is_some_and(|x| x == "eml")))
            .and_then(|e| std::fs::read(e.path()).ok())
    })
    .await;
    let text = mail_parser::MessageParser::default().parse(&raw).unwrap().body_text(0).unwrap().into_owned();
    let token = text.split("token=").nth(1).expect("a reset link in the email").split_whitespace().next().unwrap().to_owned();
    let words: Vec<&str> = text.split_whitespace().collect();
    let code = words
        .windows(2)
        .find(|w| w[0].len() == 4 && w[1].len() == 4 && w[0].bytes().chain(w[1].bytes()).all(|b| b.is_ascii_digit()))
        .map(|w| format!("{}{}", w[0], w[1]))
        .expect("a code");
    let new_password = "violet canyon drumbeat";
    let reset = post("/api/v1/password/reset", serde_json::json!({"token": token, "new_password": new_password})).await.unwrap();
    assert_eq!(reset.status(), 200);
    assert_eq!(post("/api/v1/login", serde_json::json!({"login": "jordan", "password": new_password})).await.unwrap().status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    drop(server);

    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("doorman is listening") && log.contains("/api/v1/password/reset"), "the log was captured: {log}");
    for secret in [PASSWORD, wrong, new_password, token.as_str(), code.as_str(), session.as_str()] {
        assert!(!log.contains(secret), "a secret reached the log");
    }
}
