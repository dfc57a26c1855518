//! Every test starts the real application on a random port with a database of its own,
//! on SQLite or PostgreSQL, and drives it over HTTP as a client would.

use doorman::Config;
use doorman::app::{Application, Options};
use doorman::delivery::{Captured, Progress, Transport, Worker};
use doorman_core::audit::RequestContext;
use doorman_core::auth::NewAccountRequest;
use doorman_core::services::Services;
use doorman_core::{Account, Country, EmailAddress, ManualClock, Password, UserType, Username};
use reqwest::header::HeaderMap;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named test once per backend: `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() { super::$name($crate::helpers::Backend::Sqlite).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { super::$name($crate::helpers::Backend::Postgres).await }
        }
    )*};
}

pub const PASSWORD: &str = "sunny harbour lantern";
pub const BASE_URL: &str = "http://doorman.test";

/// The PostgreSQL server the tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("DOORMAN_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh, empty database URL for one test.
pub async fn fresh_database(backend: Backend, dir: &std::path::Path) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}/doorman.db?mode=rwc", dir.display()),
        Backend::Postgres => {
            use sqlx::Connection;
            let admin = postgres_admin_url();
            let name = format!("doorman_test_{}", uuid::Uuid::new_v4().simple());
            let mut conn = sqlx::PgConnection::connect(&admin).await.expect("PostgreSQL must run on 127.0.0.1:5432 (see README)");
            sqlx::Executor::execute(&mut conn, sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.expect("create test database");
            let mut url = url::Url::parse(&admin).expect("admin url");
            url.set_path(&name);
            url.to_string()
        }
    }
}

pub fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("doorman-test-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

pub async fn test_config(backend: Backend) -> Config {
    let dir = temp_dir();
    let database_url = fresh_database(backend, &dir).await;
    config_in(&dir, database_url)
}

/// The tests' configuration for a database that already exists, with its files in `dir`.
pub fn config_in(dir: &std::path::Path, database_url: String) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        database_url,
        base_url: url::Url::parse(BASE_URL).expect("url"),
        mail_dir: dir.join("mail"),
        secret_key_file: dir.join("secret.key"),
        // Tests stand in for clients at many addresses through this header.
        client_ip_header: Some("X-Real-IP".into()),
        // Tests drive the job queue and read the outbox themselves (see `deliver`); the
        // delivery tests turn the worker on.
        mail_worker: false,
        // Texts stay in the outbox, where tests read them; a plain `serve` without this
        // offers no SMS at all (tests/api/sms.rs `no_provider::...`).
        sms_provider: Some(doorman::settings::SmsProvider::DevOutbox),
        // The recovery request form's proof of work costs nothing in tests (one test raises it).
        proof_of_work_bits: 0,
        ..Config::default()
    }
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub services: Services,
    /// The real worker, sending through an in-process transport (see `deliver`); the app's
    /// own worker is off unless a test turns `mail_worker` on.
    pub worker: Worker,
    captured: Captured,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(test_config(backend).await).await
    }

    pub async fn spawn_with(config: Config) -> Self {
        Self::spawn_with_options(config, false).await
    }

    /// In demo mode (`serve --demo`): `/dev/mailbox` lists the dev outbox.
    pub async fn spawn_demo(config: Config) -> Self {
        Self::spawn_with_options(config, true).await
    }

    async fn spawn_with_options(config: Config, demo: bool) -> Self {
        let clock = Arc::new(ManualClock::default());
        let app = Application::build(&config, Options { demo, clock: clock.clone() }).await.expect("build app");
        let address = format!("http://{}", app.address());
        let services = app.services().clone();
        tokio::spawn(app.run_until_stopped());
        let (transport, captured) = Transport::capture(config.mail().expect("mail settings").from);
        let worker = Worker::new(services.clone(), transport);
        Self { address, client: Self::new_client(), clock, services, worker, captured }
    }

    /// A browser-like client with its own cookie jar that does not follow redirects.
    pub fn new_client() -> reqwest::Client {
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().expect("client")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn create_account(&self, username: &str, email: &str) -> Account {
        self.services
            .auth
            .create_account(
                NewAccountRequest {
                    username: Username::parse(username).expect("username"),
                    email: EmailAddress::parse(email).expect("email"),
                    user_type: UserType::Freelancer,
                    country: Country::parse("PH").expect("country"),
                    password: Password::new(PASSWORD).expect("password"),
                },
                &RequestContext::cli(),
            )
            .await
            .expect("create account")
    }

    pub async fn login_as(&self, client: &reqwest::Client, ip: &str, login: &str, password: &str) -> Response {
        let response = client
            .post(self.url("/api/v1/login"))
            .header("X-Real-IP", ip)
            .json(&serde_json::json!({ "login": login, "password": password }))
            .send()
            .await
            .expect("request");
        Response::read(response).await
    }

    pub async fn login(&self, login: &str, password: &str) -> Response {
        self.login_as(&self.client, "192.0.2.10", login, password).await
    }

    pub async fn get(&self, client: &reqwest::Client, path: &str) -> Response {
        Response::read(client.get(self.url(path)).send().await.expect("request")).await
    }

    pub async fn post_json(&self, client: &reqwest::Client, path: &str, body: Value) -> Response {
        Response::read(client.post(self.url(path)).json(&body).send().await.expect("request")).await
    }
}

/// A message as the outbox held it before delivery.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub kind: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Mail {
    /// The first link in the text part that starts with `prefix`.
    pub fn link(&self, prefix: &str) -> String {
        self.text
            .split_whitespace()
            .find(|w| w.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} link in {}", self.text))
            .to_owned()
    }
    pub fn token(&self, path: &str) -> String {
        let link = self.link(&format!("{BASE_URL}/{path}?token="));
        link.split("token=").nth(1).unwrap().to_owned()
    }
    /// The 8-digit code, written "1234 5678".
    pub fn code(&self) -> String {
        let words: Vec<&str> = self.text.split_whitespace().collect();
        words
            .windows(2)
            .find(|w| w[0].len() == 4 && w[1].len() == 4 && (w[0].to_owned() + w[1]).bytes().all(|b| b.is_ascii_digit()))
            .map(|w| format!("{}{}", w[0], w[1]))
            .unwrap_or_else(|| panic!("no code in {}", self.text))
    }
}

impl TestApp {
    /// Runs the real worker until nothing is due: the queued jobs, then every message due in
    /// the outbox, sent through the in-process transport, so tests see exactly what would
    /// be sent. Every job and message must succeed.
    pub async fn deliver(&self) -> Vec<Mail> {
        loop {
            let progress = self.worker.run_once().await.expect("a worker round");
            assert_eq!(progress.failures, 0, "a job or a message failed (see the log): {progress:?}");
            if progress == Progress::default() {
                break;
            }
        }
        self.captured
            .take()
            .into_iter()
            .map(|m| Mail { to: m.recipient, kind: m.kind, subject: m.content.subject, text: m.content.text, html: m.content.html })
            .collect()
    }

    pub async fn forgot(&self, login: &str) -> Response {
        self.post_json(&TestApp::new_client(), "/api/v1/password/forgot", serde_json::json!({ "login": login })).await
    }

    /// Asks for a reset and returns the one email it produced.
    pub async fn reset_mail(&self, login: &str) -> Mail {
        assert_eq!(self.forgot(login).await.status, 202);
        let mut mails = self.deliver().await;
        assert_eq!(mails.len(), 1, "one reset email: {mails:?}");
        mails.remove(0)
    }

    pub async fn reset(&self, body: serde_json::Value) -> Response {
        self.post_json(&TestApp::new_client(), "/api/v1/password/reset", body).await
    }
}

/// A response read to the end, so tests can look at status, headers and body together.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Response {
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        Self { status, headers, text }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|_| panic!("expected JSON, got: {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The Set-Cookie line of the session cookie (others, such as the trusted-device
    /// cookie, may come in any order).
    pub fn session_cookie(&self) -> String {
        self.set_cookies()
            .into_iter()
            .find(|c| c.starts_with("doorman_session=") || c.starts_with("__Host-doorman_session="))
            .unwrap_or_else(|| panic!("no session cookie in {:?}", self.set_cookies()))
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect()
    }

    /// Asserts the shared JSON error shape and returns the code.
    pub fn error_code(&self) -> String {
        let body = self.json();
        let message = body["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "every error carries a message a person understands: {body}");
        body["error"].as_str().unwrap_or_else(|| panic!("no error code in {body}")).to_owned()
    }
}

/// The value of the hidden `csrf` input of a page.
pub fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).map(|i| i + marker.len()).expect("a csrf field");
    html[start..].split('"').next().unwrap_or_default().to_owned()
}

/// Polls `check` until it gives a value, for at most `seconds`. Every test that waits for
/// something to happen waits through this (or [`eventually_within`]).
pub async fn eventually<T>(what: &str, seconds: u64, check: impl AsyncFnMut() -> Option<T>) -> T {
    eventually_within(what, Duration::from_secs(seconds), check).await
}

/// [`eventually`] with a deadline `within` from now.
pub async fn eventually_within<T>(what: &str, within: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One outbox row, read directly.
#[derive(Debug)]
pub struct OutboxRow {
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub leased: bool,
    pub body_text: String,
    pub body_html: String,
}

impl OutboxRow {
    pub async fn read(database_url: &str, id: &str) -> Self {
        use sqlx::Row;
        let store = doorman::store::SqlStore::connect(database_url).await.unwrap();
        let row = sqlx::query("SELECT status, attempts, last_error, lease_owner, body_text, body_html FROM outbox WHERE id = $1")
            .bind(id)
            .fetch_one(store.pool())
            .await
            .unwrap();
        let result = Self {
            status: row.get("status"),
            attempts: row.get("attempts"),
            last_error: row.get("last_error"),
            leased: row.get::<Option<String>, _>("lease_owner").is_some(),
            body_text: row.get("body_text"),
            body_html: row.get("body_html"),
        };
        store.pool().close().await;
        result
    }

    /// Waits until no worker holds the row and `done` says it is what the test waits for.
    pub async fn wait(database_url: &str, id: &str, what: &str, done: impl Fn(&Self) -> bool) -> Self {
        eventually(what, 20, async || Some(Self::read(database_url, id).await).filter(|row| !row.leased && done(row))).await
    }
}

/// `doorman mail status` on the database at `database_url`, as an operator runs it (from a
/// folder of its own, so no configuration file is read): its output, once it has succeeded.
pub fn mail_status(database_url: &str) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_doorman"))
        .args(["mail", "status"])
        .current_dir(temp_dir())
        .env("DOORMAN_DATABASE_URL", database_url)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    stdout
}
