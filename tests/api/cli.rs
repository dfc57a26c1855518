//! The `doorman` binary, run as an operator would.

use crate::helpers::{fresh_database, temp_dir, Backend, PASSWORD};
use crate::on_both_backends;
use std::io::Write;
use std::process::{Command, Stdio};

on_both_backends!(operators_add_accounts_from_the_command_line, serve_starts_and_answers);

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

async fn serve_starts_and_answers(backend: Backend) {
    let dir = temp_dir();
    let db = fresh_database(backend, &dir).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let add = doorman(
        &db,
        &dir,
        &[
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
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(add.status.success(), "{}", String::from_utf8_lossy(&add.stderr));
    let mut server = Command::new(env!("CARGO_BIN_EXE_doorman"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(&dir)
        .env("DOORMAN_DATABASE_URL", &db)
        .env("DOORMAN_SECRET_KEY_FILE", dir.join("secret.key"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut ready = false;
    for _ in 0..100 {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
            ready = r.status() == 200;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let login = client
        .post(format!("{base}/api/v1/login"))
        .json(&serde_json::json!({"login": "jordan@example.com", "password": PASSWORD}))
        .send()
        .await;
    server.kill().ok();
    server.wait().ok();
    assert!(ready, "doorman serve became ready");
    assert_eq!(login.unwrap().status(), 200);
}
