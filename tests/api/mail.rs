//! Mail delivery through the outbox, against a real SMTP server (Python's aiosmtpd, started
//! per test on a port of its own): delivery, retries with backoff, dead letters, the dev
//! outbox, a crash between commit and delivery, and several workers on one database.

use crate::helpers::{Backend, OutboxRow, PASSWORD, TestApp, eventually, temp_dir, test_config};
use crate::on_both_backends;
use doorman::Config;
use doorman::store::SqlStore;
use doorman_core::outbox::{MessageContent, NewMessage, OutboxSummary, retry_delay};
use doorman_core::{AccountId, Clock};
use mail_parser::{MimeHeaders, PartType};
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

on_both_backends!(
    messages_are_delivered_over_smtp,
    delivery_waits_for_the_smtp_server_to_come_back,
    undeliverable_messages_end_as_dead_letters,
    the_dev_outbox_writes_eml_files,
    a_crash_between_commit_and_delivery_loses_nothing,
    two_workers_never_send_a_message_twice,
    a_long_smtp_outage_delivers_every_message_once_in_order_per_recipient,
);

const FROM: &str = "doorman <no-reply@doorman.test>";

/// An SMTP server that saves what it accepts; killed when dropped.
struct SmtpSink {
    child: Child,
    _stdin: ChildStdin,
    dir: PathBuf,
}

impl SmtpSink {
    fn start(port: u16) -> Self {
        let dir = temp_dir().join("received");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 must be installed (scripts/test installs aiosmtpd)");
        let stdin = child.stdin.take().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the SMTP sink did not start (is aiosmtpd installed? `pip install aiosmtpd`)");
        Self { child, _stdin: stdin, dir }
    }

    fn received(&self) -> Vec<Received> {
        let mut mails = self.received_in_order();
        mails.sort_by(|a, b| a.message_id.cmp(&b.message_id));
        mails
    }

    /// In the order the server accepted them (its files are numbered).
    fn received_in_order(&self) -> Vec<Received> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        paths.sort();
        paths.into_iter().map(|p| Received::parse(&std::fs::read(p).unwrap())).collect()
    }

    /// Waits until `n` messages arrived, then a little longer to catch any extra copy.
    async fn expect_exactly(&self, n: usize) -> Vec<Received> {
        eventually(&format!("{n} messages at the SMTP server"), 30, async || (self.received().len() >= n).then_some(())).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let mails = self.received();
        assert_eq!(mails.len(), n, "exactly {n} messages, no copies: {mails:#?}");
        mails
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One received email, parsed.
#[derive(Debug)]
struct Received {
    to: String,
    from: String,
    subject: String,
    message_id: String,
    content_type: String,
    text_parts: Vec<String>,
    html_parts: Vec<String>,
    raw: String,
}

impl Received {
    fn parse(raw: &[u8]) -> Self {
        let message = mail_parser::MessageParser::default().parse(raw).expect("an RFC 5322 message");
        let address = |a: Option<&mail_parser::Address>| a.and_then(|a| a.first()).and_then(|a| a.address()).unwrap_or_default().to_owned();
        let content_type = message.content_type().map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or_default())).unwrap_or_default();
        let mut text_parts = Vec::new();
        let mut html_parts = Vec::new();
        for part in &message.parts {
            match &part.body {
                PartType::Text(text) => text_parts.push(text.to_string()),
                PartType::Html(html) => html_parts.push(html.to_string()),
                _ => {}
            }
        }
        Self {
            to: address(message.to()),
            from: address(message.from()),
            subject: message.subject().unwrap_or_default().to_owned(),
            message_id: message.message_id().unwrap_or_default().to_owned(),
            content_type,
            text_parts,
            html_parts,
            raw: String::from_utf8_lossy(raw).into_owned(),
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn mail_config(backend: Backend, smtp_port: Option<u16>) -> Config {
    Config {
        smtp_url: smtp_port.map(|port| format!("smtp://127.0.0.1:{port}")),
        mail_from: FROM.into(),
        mail_worker: true,
        ..test_config(backend).await
    }
}

fn content(n: usize) -> MessageContent {
    MessageContent {
        subject: format!("Reset your doorman password ({n})"),
        text: format!("Hello, maria.\n\nOpen http://doorman.test/reset-password?token=t0k3n{n} to choose a new password.\n"),
        html: format!(
            "<p>Hello, <b>maria</b>.</p><p><a href=\"http://doorman.test/reset-password?token=t0k3n{n}\">Choose a new password</a></p>"
        ),
    }
}

async fn enqueue(app: &TestApp, recipient: &str, account: Option<AccountId>, n: usize) -> String {
    let message = NewMessage::email(recipient, "password_reset", account, content(n), app.clock.unix());
    app.services.store.enqueue_message(&message).await.unwrap();
    message.id
}

async fn summary(app: &TestApp) -> OutboxSummary {
    app.services.store.outbox_summary(50).await.unwrap()
}

async fn messages_are_delivered_over_smtp(backend: Backend) {
    let port = free_port();
    let sink = SmtpSink::start(port);
    let config = mail_config(backend, Some(port)).await;
    let app = TestApp::spawn_with(config.clone()).await;
    let account = app.create_account("maria", "maria@example.com").await;

    let id = enqueue(&app, "maria@example.com", Some(account.id.clone()), 1).await;

    let mails = sink.expect_exactly(1).await;
    let mail = &mails[0];
    assert_eq!(mail.to, "maria@example.com");
    assert_eq!(mail.from, "no-reply@doorman.test");
    assert_eq!(mail.subject, "Reset your doorman password (1)");
    assert_eq!(mail.message_id, format!("{id}@doorman.test"), "the Message-ID comes from the outbox id");
    assert_eq!(mail.content_type, "multipart/alternative");
    assert_eq!(mail.text_parts.len(), 1, "{}", mail.raw);
    assert_eq!(mail.html_parts.len(), 1, "{}", mail.raw);
    assert!(mail.text_parts[0].contains("reset-password?token=t0k3n1"), "{}", mail.text_parts[0]);
    assert!(mail.html_parts[0].contains("<b>maria</b>"), "{}", mail.html_parts[0]);

    let row = OutboxRow::wait(&config.database_url, &id, "the row marked sent", |r| r.status == "sent").await;
    assert_eq!((row.attempts, row.last_error), (1, None));
    assert_eq!((row.body_text.as_str(), row.body_html.as_str()), ("", ""), "the body, with its link, is erased once sent");
    let summary = summary(&app).await;
    assert_eq!((summary.pending, summary.sent, summary.dead), (0, 1, 0));

    let audit = app.services.store.audit_of(&account.id, 20).await.unwrap();
    let sent = audit.iter().find(|r| r.event.as_str() == "email_sent").expect("an email_sent audit record");
    assert_eq!((sent.detail.as_str(), sent.user_agent.as_str(), sent.ip.as_str()), ("password_reset", "doorman-worker", "0.0.0.0"));
}

async fn delivery_waits_for_the_smtp_server_to_come_back(backend: Backend) {
    let port = free_port();
    let config = mail_config(backend, Some(port)).await;
    let app = TestApp::spawn_with(config.clone()).await;

    // Nothing listens on the port: the first attempt fails and is retried in 5 s (of the
    // test's clock, which stands still until the test moves it).
    let id = enqueue(&app, "maria@example.com", None, 1).await;
    let row = OutboxRow::wait(&config.database_url, &id, "a failed first attempt", |r| r.last_error.is_some()).await;
    assert_eq!((row.status.as_str(), row.attempts), ("pending", 1));
    assert!(row.last_error.as_deref().unwrap_or_default().contains("onnect"), "{row:?}");
    assert!(!row.body_text.is_empty(), "a message that will be retried keeps its body");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let summary_now = summary(&app).await;
    assert_eq!((summary_now.pending, summary_now.sent, summary_now.dead), (1, 0, 0), "no retry before the backoff has passed");
    assert_eq!(OutboxRow::read(&config.database_url, &id).await.attempts, 1);

    let sink = SmtpSink::start(port);
    app.clock.advance(retry_delay(1).unwrap());
    let mails = sink.expect_exactly(1).await;
    assert_eq!(mails[0].message_id, format!("{id}@doorman.test"));
    let row = OutboxRow::wait(&config.database_url, &id, "the row marked sent", |r| r.status == "sent").await;
    assert_eq!((row.attempts, row.last_error), (2, None));
}

async fn undeliverable_messages_end_as_dead_letters(backend: Backend) {
    let port = free_port();
    let sink = SmtpSink::start(port);
    let config = mail_config(backend, Some(port)).await;
    let app = TestApp::spawn_with(config.clone()).await;

    // Refused for good by the server, and not an address at all: dead at the first attempt.
    let refused = enqueue(&app, "bounce@example.com", None, 1).await;
    let malformed = enqueue(&app, "maria at example dot com", None, 2).await;
    // Refused for now, every time: retried with backoff until the attempts run out.
    let busy = enqueue(&app, "busy@example.com", None, 3).await;
    let mut attempts = 1;
    loop {
        let row = OutboxRow::wait(&config.database_url, &busy, &format!("attempt {attempts}"), |r| r.attempts == attempts).await;
        assert!(row.last_error.as_deref().unwrap_or_default().contains("451"), "{row:?}");
        match retry_delay(attempts) {
            Some(delay) => {
                assert_eq!(row.status, "pending", "attempt {attempts} is retried");
                app.clock.advance(delay);
                attempts += 1;
            }
            None => {
                assert_eq!(row.status, "dead", "after attempt {attempts} it gives up");
                break;
            }
        }
    }
    assert_eq!(attempts, 10);

    let summary = eventually("three dead letters", 10, async || Some(summary(&app).await).filter(|s| s.dead == 3)).await;
    assert_eq!((summary.pending, summary.sent), (0, 0));
    for id in [&refused, &malformed, &busy] {
        let row = OutboxRow::read(&config.database_url, id).await;
        assert_eq!(row.status, "dead");
        assert!(row.last_error.is_some_and(|e| !e.is_empty()));
        assert_eq!((row.body_text.as_str(), row.body_html.as_str()), ("", ""), "dead letters keep no body");
    }
    assert!(sink.received().is_empty());

    // Operators see them with `doorman mail status`.
    let stdout = crate::helpers::mail_status(&config.database_url);
    assert!(stdout.contains("pending 0") && stdout.contains("sent    0") && stdout.contains("dead    3"), "{stdout}");
    for (id, recipient, error) in [
        (&refused, "bounce@example.com", "550"),
        (&malformed, "maria at example dot com", "not a valid email address"),
        (&busy, "busy@example.com", "451"),
    ] {
        let lines: Vec<&str> = stdout.lines().collect();
        let at =
            lines.iter().position(|line| line.trim_start().starts_with(id.as_str())).unwrap_or_else(|| panic!("{id} listed in {stdout}"));
        let entry = format!("{}\n{}", lines[at], lines.get(at + 1).copied().unwrap_or_default());
        assert!(entry.contains(recipient) && entry.contains("password_reset") && entry.contains(error), "{entry}");
    }
    assert!(stdout.contains("attempts 10"), "{stdout}");
    assert!(!stdout.contains("t0k3n"), "no body reaches the status output: {stdout}");
}

async fn the_dev_outbox_writes_eml_files(backend: Backend) {
    let config = mail_config(backend, None).await;
    let app = TestApp::spawn_with(config.clone()).await;
    let id = enqueue(&app, "maria@example.com", None, 1).await;

    let path = eventually("an .eml file in the mail folder", 15, async || {
        let entries = std::fs::read_dir(&config.mail_dir).ok()?;
        let files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        files.into_iter().find(|p| p.extension().is_some_and(|x| x == "eml"))
    })
    .await;
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.ends_with(&format!("-{id}.eml")) && name.starts_with(|c: char| c.is_ascii_digit()), "{name} sorts by time");
    let mail = Received::parse(&std::fs::read(&path).unwrap());
    assert_eq!((mail.to.as_str(), mail.subject.as_str()), ("maria@example.com", "Reset your doorman password (1)"));
    assert_eq!(mail.content_type, "multipart/alternative");
    assert!(mail.text_parts.len() == 1 && mail.text_parts[0].contains("reset-password?token=t0k3n1"), "{}", mail.raw);
    assert!(mail.html_parts.len() == 1 && mail.html_parts[0].contains("<b>maria</b>"), "{}", mail.raw);
    eventually("the row marked sent", 10, async || Some(summary(&app).await).filter(|s| s.sent == 1)).await;
    assert_eq!(std::fs::read_dir(&config.mail_dir).unwrap().count(), 1, "one file, no leftovers");
}

/// `doorman serve` as an operator runs it, with its output kept in `dir/serve-N.log`.
fn serve(config: &Config, dir: &Path, port: u16, worker: bool, run: usize) -> Child {
    let log = std::fs::File::create(dir.join(format!("serve-{run}.log"))).unwrap();
    Command::new(env!("CARGO_BIN_EXE_doorman"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(dir)
        .env("DOORMAN_DATABASE_URL", &config.database_url)
        .env("DOORMAN_SECRET_KEY_FILE", &config.secret_key_file)
        .env("DOORMAN_SMTP_URL", config.smtp_url.as_deref().unwrap())
        .env("DOORMAN_MAIL_FROM", FROM)
        .env("DOORMAN_BASE_URL", crate::helpers::BASE_URL)
        .env("DOORMAN_MAIL_WORKER", worker.to_string())
        .env("DOORMAN_LOG", "info,sqlx=warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

async fn wait_ready(port: u16) {
    let client = reqwest::Client::new();
    eventually("doorman serve to be ready", 30, async || {
        let response = client.get(format!("http://127.0.0.1:{port}/readyz")).send().await.ok()?;
        (response.status() == 200).then_some(())
    })
    .await;
}

async fn a_crash_between_commit_and_delivery_loses_nothing(backend: Backend) {
    let smtp_port = free_port();
    let config = mail_config(backend, Some(smtp_port)).await;
    let dir = config.secret_key_file.parent().unwrap().to_path_buf();
    let add = Command::new(env!("CARGO_BIN_EXE_doorman"))
        .args(["user", "add", "--username", "jordan", "--email", "jordan@example.com", "--user-type", "client", "--country", "US"])
        .arg("--password-stdin")
        .current_dir(&dir)
        .env("DOORMAN_DATABASE_URL", &config.database_url)
        .env("DOORMAN_SECRET_KEY_FILE", &config.secret_key_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut add.stdin.as_ref().unwrap(), format!("{PASSWORD}\n").as_bytes()).unwrap();
    assert!(add.wait_with_output().unwrap().status.success());

    // A replica without the worker takes a forgot-password request (a job, committed) and a
    // message is committed to the outbox; then the process dies at once.
    let http_port = free_port();
    let mut server = serve(&config, &dir, http_port, false, 1);
    wait_ready(http_port).await;
    let forgot = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{http_port}/api/v1/password/forgot"))
        .json(&serde_json::json!({ "login": "jordan@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(forgot.status(), 202);
    let store = SqlStore::connect(&config.database_url).await.unwrap();
    let message =
        NewMessage::email("maria@example.com", "password_changed", None, content(1), time::OffsetDateTime::now_utc().unix_timestamp());
    doorman_core::store::OutboxStore::enqueue_message(&store, &message).await.unwrap();
    store.pool().close().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.kill().unwrap(); // SIGKILL: no shutdown of any kind
    server.wait().unwrap();

    // Restarted with the worker, and a mail server to talk to: both emails go out, once.
    let sink = SmtpSink::start(smtp_port);
    let http_port = free_port();
    let mut server = serve(&config, &dir, http_port, true, 2);
    wait_ready(http_port).await;
    let mails = sink.expect_exactly(2).await;
    server.kill().ok();
    server.wait().ok();
    let mut subjects: Vec<&str> = mails.iter().map(|m| m.subject.as_str()).collect();
    subjects.sort();
    assert_eq!(subjects, ["Reset your doorman password", "Reset your doorman password (1)"], "{mails:#?}");
    let reset = mails.iter().find(|m| m.to == "jordan@example.com").expect("the reset email");
    assert!(reset.text_parts.iter().any(|t| t.contains("http://doorman.test/reset-password?token=")), "{}", reset.raw);
    assert!(mails.iter().any(|m| m.message_id == format!("{}@doorman.test", message.id)));

    let log = std::fs::read_to_string(dir.join("serve-2.log")).unwrap();
    assert!(log.contains("email sent"), "{log}");
    assert!(!log.contains("token=") && !log.contains("t0k3n"), "no link or body in the log: {log}");
}

async fn two_workers_never_send_a_message_twice(backend: Backend) {
    let port = free_port();
    let sink = SmtpSink::start(port);
    let config = mail_config(backend, Some(port)).await;
    let first = TestApp::spawn_with(config.clone()).await;
    let second = TestApp::spawn_with(config.clone()).await;

    let mut ids = HashSet::new();
    // Written with the earlier of the two test clocks, so that both workers find them due.
    for n in 0..20 {
        ids.insert(format!("{}@doorman.test", enqueue(&first, &format!("user{n}@example.com"), None, n).await));
    }

    let mails = sink.expect_exactly(20).await;
    let received: HashSet<String> = mails.iter().map(|m| m.message_id.clone()).collect();
    assert_eq!(received.len(), 20, "no Message-ID twice");
    assert_eq!(received, ids);
    let summary = eventually("20 rows marked sent", 10, async || Some(summary(&second).await).filter(|s| s.sent == 20)).await;
    assert_eq!((summary.pending, summary.dead), (0, 0));
}

/// SMTP down for minutes, then back (issue 13): every message goes out once, and each
/// recipient gets theirs in the order they were written, although the oldest went through
/// many failed attempts and its retry delay grew while newer ones were written. Meanwhile
/// `doorman mail status` shows the backlog.
///
/// What is compressed: the app runs on the test's clock, which stands still until the test
/// moves it on by each retry delay, so seven failed attempts over five minutes of the app's
/// time (5 s, 10 s, 20 s ... 160 s apart) take a few seconds. The refusals are real: nothing
/// listens on the SMTP port until the sink starts on it.
async fn a_long_smtp_outage_delivers_every_message_once_in_order_per_recipient(backend: Backend) {
    let port = free_port();
    let config = mail_config(backend, Some(port)).await;
    let app = TestApp::spawn_with(config.clone()).await;
    // The outage began ten minutes ago by the app's clock, so the backlog is that old.
    app.clock.advance(-600);
    let mut accounts = Vec::new();
    for name in ["ana", "ben", "chen", "dara"] {
        accounts.push(app.create_account(name, &format!("{name}@example.com")).await);
    }
    const ROUNDS: usize = 4;
    const FAILED_ATTEMPTS: i64 = 7;
    // Message `round` of each account is written after the first one's `round`th failure.
    let mut written: Vec<Vec<String>> = vec![Vec::new(); accounts.len()];
    let mut subjects = std::collections::HashMap::new();
    for attempt in 1..=FAILED_ATTEMPTS {
        let round = (attempt - 1) as usize;
        if round < ROUNDS {
            for (a, account) in accounts.iter().enumerate() {
                let n = a * 10 + round;
                let id = enqueue(&app, account.email.as_str(), Some(account.id.clone()), n).await;
                subjects.insert(format!("{id}@doorman.test"), content(n).subject);
                written[a].push(id);
            }
        }
        for ids in &written {
            let row = OutboxRow::wait(&config.database_url, &ids[0], &format!("failed attempt {attempt}"), |r| r.attempts == attempt).await;
            assert_eq!(row.status, "pending");
            assert!(row.last_error.as_deref().unwrap_or_default().contains("onnect"), "{row:?}");
            for later in &ids[1..] {
                let row = OutboxRow::read(&config.database_url, later).await;
                assert_eq!((row.status.as_str(), row.attempts), ("pending", 0), "a later message waits for the earlier one");
            }
        }
        if attempt < FAILED_ATTEMPTS {
            app.clock.advance(retry_delay(attempt).unwrap());
        }
    }

    // Operators see the backlog: how many, since when, and that they are being retried.
    let stdout = crate::helpers::mail_status(&config.database_url);
    let pending = stdout.lines().next().unwrap_or_default();
    assert!(pending.starts_with("pending 16  (oldest written 1"), "{stdout}");
    assert!(pending.contains(" minutes ago, at ") && pending.ends_with("; 4 waiting to retry after a failed attempt)"), "{stdout}");
    assert!(stdout.contains("sent    0") && stdout.contains("dead    0"), "{stdout}");

    // The server comes back. The newer messages are due, but each waits for the oldest one to
    // its recipient, whose next try is 320 s away.
    let sink = SmtpSink::start(port);
    app.clock.advance(5);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(sink.received().is_empty(), "nothing goes out ahead of an older message to the same person");
    app.clock.advance(retry_delay(FAILED_ATTEMPTS).unwrap());
    let mails = sink.expect_exactly(ROUNDS * accounts.len()).await;
    let ids: HashSet<&str> = mails.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids.len(), mails.len(), "no Message-ID twice");
    let in_order = sink.received_in_order();
    for (a, account) in accounts.iter().enumerate() {
        let got: Vec<&str> = in_order.iter().filter(|m| m.to == account.email.as_str()).map(|m| m.subject.as_str()).collect();
        let expected: Vec<&str> = written[a].iter().map(|id| subjects[&format!("{id}@doorman.test")].as_str()).collect();
        assert_eq!(got, expected, "{}'s messages arrive once each, in the order they were written", account.email.as_str());
    }
    for ids in &written {
        let first = OutboxRow::wait(&config.database_url, &ids[0], "the first marked sent", |r| r.status == "sent").await;
        assert_eq!(first.attempts, FAILED_ATTEMPTS + 1);
        for later in &ids[1..] {
            let row = OutboxRow::wait(&config.database_url, later, "a later one marked sent", |r| r.status == "sent").await;
            assert_eq!(row.attempts, 1, "sent at its first try, once the earlier one was out");
        }
    }
    let summary = summary(&app).await;
    assert_eq!((summary.pending, summary.sent, summary.dead, summary.oldest_pending_at), (0, 16, 0, None));
}
