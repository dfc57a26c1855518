//! SMS delivery through the outbox, against real HTTP servers started in the test process
//! (axum on 127.0.0.1, port 0): the signed webhook, the Twilio-compatible API, retries,
//! dead letters and the failures counted per country; and the dev outbox, listed on
//! `/dev/mailbox` in demo mode.

use crate::helpers::{Backend, OutboxRow, TestApp, eventually, temp_dir, test_config};
use crate::on_both_backends;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use doorman::Config;
use doorman_core::delivery_failures::{DAY_SECONDS, DeliveryFailures};
use doorman_core::outbox::{MessageContent, NewMessage, retry_delay};
use doorman_core::{AccountId, Clock};
use hmac::{Hmac, Mac};
use secrecy::SecretString;
use sha2::Sha256;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

on_both_backends!(
    the_webhook_receives_signed_json,
    a_failing_webhook_is_retried_until_it_takes_the_message,
    an_sms_the_webhook_refuses_ends_as_a_dead_letter,
    the_twilio_compatible_provider_gets_a_form_with_basic_auth,
    an_sms_whose_code_has_expired_is_not_sent,
    the_dev_outbox_shows_sms_on_the_demo_mailbox,
    the_dev_outbox_is_used_outside_demo_only_when_named,
    texts_sent_together_are_each_marked_once_and_counted_in_full,
    a_providers_refusal_with_control_characters_is_stored_without_them,
);

const NUMBER: &str = "+639171234521";
const CODE_TEXT: &str = "doorman code: 482915. It expires in 10 minutes. Never share it; we will never ask for it.";
const WEBHOOK_SECRET: &str = "webhook-secret-for-the-tests-0123456789";
const TWILIO_SID: &str = "AC0123456789abcdef0123456789abcdef";
const TWILIO_TOKEN: &str = "twilio-token-for-the-tests";
const TWILIO_FROM: &str = "+15005550006";

/// One request as the provider received it.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body).into_owned().collect()
    }
}

#[derive(Clone, Default)]
struct ProviderState {
    received: Arc<Mutex<Vec<Received>>>,
    /// The statuses to answer with, in turn; then 200.
    answers: Arc<Mutex<VecDeque<u16>>>,
    /// The `message` of a refusal, when not the usual one.
    refusal_message: Arc<Mutex<Option<String>>>,
    /// How long to keep a webhook's text to a number before answering, by number.
    holds: Arc<Mutex<HashMap<String, Duration>>>,
}

/// An HTTP server standing for an SMS provider; stops with the test's runtime.
struct Provider {
    address: SocketAddr,
    state: ProviderState,
}

impl Provider {
    async fn start(answers: &[u16]) -> Self {
        let state = ProviderState::default();
        state.answers.lock().unwrap().extend(answers);
        let app = axum::Router::new().fallback(record).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { address, state }
    }

    fn url(&self, path: &str) -> url::Url {
        url::Url::parse(&format!("http://{}{path}", self.address)).unwrap()
    }

    fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }
}

async fn record(State(state): State<ProviderState>, uri: Uri, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    let to = serde_json::from_slice::<serde_json::Value>(&body).ok().and_then(|json| json["to"].as_str().map(str::to_owned));
    state.received.lock().unwrap().push(Received { path: uri.path().to_owned(), headers, body });
    let hold = to.and_then(|to| state.holds.lock().unwrap().get(&to).copied());
    if let Some(hold) = hold {
        tokio::time::sleep(hold).await;
    }
    let status = state.answers.lock().unwrap().pop_front().unwrap_or(200);
    // Twilio's way of explaining a refusal; it names the number, never the text.
    let message = state.refusal_message.lock().unwrap().clone().unwrap_or_else(|| format!("The 'To' number {NUMBER} is not valid."));
    let body = if status == 200 {
        r#"{"sid": "SM0123", "status": "queued"}"#.to_owned()
    } else {
        serde_json::json!({"code": 21211, "message": message, "status": status}).to_string()
    };
    (StatusCode::from_u16(status).unwrap(), body)
}

async fn webhook_config(backend: Backend, provider: &Provider) -> Config {
    Config {
        sms_webhook_url: Some(provider.url("/sms")),
        sms_webhook_secret: Some(SecretString::from(WEBHOOK_SECRET)),
        mail_worker: true,
        // Chosen from the URL, as an operator would configure it.
        sms_provider: None,
        ..test_config(backend).await
    }
}

async fn twilio_config(backend: Backend, provider: &Provider) -> Config {
    Config {
        sms_twilio_base_url: provider.url("/"),
        sms_twilio_account_sid: Some(TWILIO_SID.into()),
        sms_twilio_auth_token: Some(SecretString::from(TWILIO_TOKEN)),
        sms_from: Some(TWILIO_FROM.into()),
        mail_worker: true,
        // Chosen from the settings, as an operator would configure it.
        sms_provider: None,
        ..test_config(backend).await
    }
}

fn content() -> MessageContent {
    MessageContent { subject: "doorman code".into(), text: CODE_TEXT.into(), html: String::new() }
}

async fn enqueue_sms(app: &TestApp, account: Option<AccountId>, created_at: i64) -> String {
    let message = NewMessage::sms(NUMBER, "verification_code", account, content(), created_at);
    app.services.store.enqueue_message(&message).await.unwrap();
    message.id
}

/// The failures counted since yesterday, by day, channel and country.
async fn failures(app: &TestApp) -> Vec<DeliveryFailures> {
    app.services.store.delivery_failures_since(app.clock.unix() - DAY_SECONDS).await.unwrap()
}

/// Waits for the worker to count its last attempt (it does so after marking the row).
async fn counted(app: &TestApp, done: impl Fn(&[DeliveryFailures]) -> bool) -> Vec<DeliveryFailures> {
    eventually("the attempts counted", 10, async || Some(failures(app).await).filter(|rows| done(rows))).await
}

fn country_of(row: &DeliveryFailures) -> String {
    row.country.map(|c| c.as_str().to_owned()).unwrap_or_default()
}

fn verify_signature(request: &Received) {
    let timestamp = request.header("x-doorman-timestamp");
    let signed = format!("{timestamp}.{}", String::from_utf8_lossy(&request.body));
    let mut mac = Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
    mac.update(signed.as_bytes());
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(request.header("x-doorman-signature"), expected, "the signature covers the timestamp and the raw body");
    let age = time::OffsetDateTime::now_utc().unix_timestamp() - timestamp.parse::<i64>().unwrap();
    assert!((0..60).contains(&age), "the timestamp is the time of sending: {timestamp}");
}

async fn the_webhook_receives_signed_json(backend: Backend) {
    let provider = Provider::start(&[]).await;
    let config = webhook_config(backend, &provider).await;
    let app = TestApp::spawn_with(config.clone()).await;
    let account = app.create_account("maria", "maria@example.com").await;

    let id = enqueue_sms(&app, Some(account.id.clone()), app.clock.unix()).await;

    let row = OutboxRow::wait(&config.database_url, &id, "the SMS marked sent", |r| r.status == "sent").await;
    assert_eq!((row.attempts, row.last_error), (1, None));
    assert_eq!(row.body_text, "", "the code is erased once sent");
    let received = provider.received();
    assert_eq!(received.len(), 1, "{received:?}");
    let request = &received[0];
    assert_eq!(request.path, "/sms");
    assert_eq!(request.header("content-type"), "application/json");
    assert_eq!(request.json(), serde_json::json!({ "to": NUMBER, "text": CODE_TEXT, "message_id": id }));
    verify_signature(request);

    let audit = app.services.store.audit_of(&account.id, 20).await.unwrap();
    let sent = audit.iter().find(|r| r.event.as_str() == "sms_sent").expect("an sms_sent audit record");
    assert_eq!(sent.detail, "verification_code");
    let counted = failures(&app).await;
    assert!(counted.is_empty(), "no failure: {counted:?}");
}

async fn a_failing_webhook_is_retried_until_it_takes_the_message(backend: Backend) {
    let provider = Provider::start(&[500]).await;
    let config = webhook_config(backend, &provider).await;
    let app = TestApp::spawn_with(config.clone()).await;

    let id = enqueue_sms(&app, None, app.clock.unix()).await;
    let row = OutboxRow::wait(&config.database_url, &id, "a failed first attempt", |r| r.last_error.is_some()).await;
    assert_eq!((row.status.as_str(), row.attempts), ("pending", 1));
    let error = row.last_error.unwrap();
    assert!(error.contains("500"), "{error}");
    assert!(!error.contains("482915"), "no code in the error: {error}");
    // Kept for the retry, sealed under the server key while it waits (S1.2).
    assert!(row.body_text.starts_with("sealed:v1:") && !row.body_text.contains("482915"), "{}", row.body_text);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(provider.received().len(), 1, "no retry before the backoff has passed");

    app.clock.advance(retry_delay(1).unwrap());
    let row = OutboxRow::wait(&config.database_url, &id, "the SMS marked sent", |r| r.status == "sent").await;
    assert_eq!((row.attempts, row.last_error), (2, None));
    let received = provider.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].json(), received[1].json(), "the retry carries the same message_id, so a receiver can drop a copy");
    verify_signature(&received[1]);

    let counted = counted(&app, |rows| rows.first().is_some_and(|r| r.sent == 1)).await;
    assert_eq!(counted.len(), 1, "{counted:?}");
    let ph = &counted[0];
    assert_eq!((ph.channel.as_str(), country_of(ph).as_str()), ("sms", "PH"));
    assert_eq!((ph.failures, ph.dead, ph.sent), (1, 0, 1));
    assert!(ph.last_error.as_deref().unwrap_or_default().contains("500"), "{ph:?}");
}

async fn an_sms_the_webhook_refuses_ends_as_a_dead_letter(backend: Backend) {
    let provider = Provider::start(&[400]).await;
    let config = webhook_config(backend, &provider).await;
    let app = TestApp::spawn_with(config.clone()).await;
    let account = app.create_account("maria", "maria@example.com").await;

    let id = enqueue_sms(&app, Some(account.id.clone()), app.clock.unix()).await;
    let row = OutboxRow::wait(&config.database_url, &id, "a dead letter", |r| r.status == "dead").await;
    assert_eq!(row.attempts, 1, "refused for good: not retried");
    assert_eq!(row.body_text, "", "dead letters keep no text");
    assert!(row.last_error.as_deref().unwrap_or_default().contains("400"), "{row:?}");
    app.clock.advance(3600);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(provider.received().len(), 1);

    let counted = counted(&app, |rows| !rows.is_empty()).await;
    assert_eq!(counted.len(), 1, "{counted:?}");
    assert_eq!((counted[0].channel.as_str(), country_of(&counted[0]).as_str()), ("sms", "PH"));
    assert_eq!((counted[0].failures, counted[0].dead, counted[0].sent), (1, 1, 0));
    let audit = app.services.store.audit_of(&account.id, 20).await.unwrap();
    let failed = audit.iter().find(|r| r.event.as_str() == "sms_failed").expect("an sms_failed audit record");
    assert!(failed.detail.contains("dead letter") && !failed.detail.contains("482915"), "{}", failed.detail);

    // Operators see the failures per country with `doorman mail status`.
    let stdout = crate::helpers::mail_status(&config.database_url);
    assert!(stdout.contains("dead    1"), "{stdout}");
    let line = stdout.lines().find(|l| l.contains("failed attempts")).unwrap_or_else(|| panic!("a failure line in {stdout}"));
    assert!(line.contains("sms") && line.contains("PH") && line.contains("failed attempts 1") && line.contains("dead 1"), "{line}");
    assert!(stdout.contains("answered 400"), "{stdout}");
    assert!(!stdout.contains("482915"), "no code in the status output: {stdout}");
}

/// The worker sends four messages at a time and writes the outcomes that end together in one
/// commit (issue 12): every message still ends in its own state, once, with its own audit
/// event, and the day's counts add up whatever the grouping.
async fn texts_sent_together_are_each_marked_once_and_counted_in_full(backend: Backend) {
    let provider = Provider::start(&[400, 200, 400, 200, 200, 400]).await;
    let config = webhook_config(backend, &provider).await;
    let app = TestApp::spawn_with(config.clone()).await;
    let account = app.create_account("maria", "maria@example.com").await;
    // Twenty texts to twenty Philippine numbers (one recipient's texts go out one at a time).
    let now = app.clock.unix();
    let mut ids = Vec::new();
    for n in 0..20 {
        let message = NewMessage::sms(&format!("+6391712345{n:02}"), "verification_code", Some(account.id.clone()), content(), now);
        app.services.store.enqueue_message(&message).await.unwrap();
        ids.push(message.id);
    }

    let counted = counted(&app, |rows| rows.iter().map(|r| r.sent + r.failures).sum::<i64>() >= 20).await;
    assert_eq!(counted.len(), 1, "{counted:?}");
    assert_eq!((counted[0].channel.as_str(), country_of(&counted[0]).as_str()), ("sms", "PH"));
    assert_eq!((counted[0].sent, counted[0].failures, counted[0].dead), (17, 3, 3), "{counted:?}");
    let mut states = Vec::new();
    for id in &ids {
        let row = OutboxRow::read(&config.database_url, id).await;
        assert!(!row.leased && row.attempts == 1 && row.body_text.is_empty(), "{row:?}");
        states.push(row.status);
    }
    assert_eq!(states.iter().filter(|s| *s == "sent").count(), 17, "{states:?}");
    assert_eq!(states.iter().filter(|s| *s == "dead").count(), 3, "{states:?}");
    assert_eq!(provider.received().len(), 20, "each text sent once");
    let audit = app.services.store.audit_of(&account.id, 100).await.unwrap();
    let events = |name: &str| audit.iter().filter(|r| r.event.as_str() == name).count();
    assert_eq!((events("sms_sent"), events("sms_failed")), (17, 3));
}

/// The worker writes the outcomes of texts that end together in one statement; when the
/// database refuses one of them, the others are written one by one, so they are not sent again
/// at their lease's end. PostgreSQL only: the test holds one outcome's write open (`pg_sleep` in
/// a trigger) so that the next three end meanwhile and are written as one group, and SQLite has
/// no way to wait inside a statement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_written_together_are_each_written_alone_when_the_database_refuses_one() {
    let provider = Provider::start(&[]).await;
    let config = webhook_config(Backend::Postgres, &provider).await;
    let app = TestApp::spawn_with(config.clone()).await;
    let account = app.create_account("maria", "maria@example.com").await;
    let [first, second, third, refused] = ["+639171234600", "+639171234601", "+639171234602", "+639171234603"];
    // The first text's outcome takes half a second to write; the others end 150 ms after it,
    // while that write runs, and the database refuses the last one's.
    let store = doorman::store::SqlStore::connect(&config.database_url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE FUNCTION slow_or_refused() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
           IF NEW.status = 'sent' AND OLD.status <> 'sent' THEN \
             IF NEW.recipient = '{first}' THEN PERFORM pg_sleep(0.5); END IF; \
             IF NEW.recipient = '{refused}' THEN RAISE EXCEPTION 'refused by the test'; END IF; \
           END IF; RETURN NEW; END $$; \
         CREATE TRIGGER slow_or_refused BEFORE UPDATE ON outbox FOR EACH ROW EXECUTE FUNCTION slow_or_refused();"
    )))
    .execute(store.pool())
    .await
    .unwrap();
    store.pool().close().await;
    for number in [second, third, refused] {
        provider.state.holds.lock().unwrap().insert(number.to_owned(), Duration::from_millis(150));
    }
    let now = app.clock.unix();
    let mut ids = Vec::new();
    for number in [first, second, third, refused] {
        let message = NewMessage::sms(number, "verification_code", Some(account.id.clone()), content(), now);
        app.services.store.enqueue_message(&message).await.unwrap();
        ids.push(message.id);
    }

    for id in &ids[..3] {
        let row = OutboxRow::wait(&config.database_url, id, "the SMS marked sent", |r| r.status == "sent").await;
        assert_eq!((row.attempts, row.body_text.as_str()), (1, ""), "{row:?}");
    }
    let row = OutboxRow::read(&config.database_url, &ids[3]).await;
    assert!(row.status == "pending" && row.leased && row.attempts == 1, "sent, not marked, held until its lease ends: {row:?}");
    let mut numbers: Vec<String> = provider.received().iter().map(|r| r.json()["to"].as_str().unwrap().to_owned()).collect();
    numbers.sort();
    assert_eq!(numbers, [first, second, third, refused], "each text sent once");
    let audit = app.services.store.audit_of(&account.id, 100).await.unwrap();
    assert_eq!(audit.iter().filter(|r| r.event.as_str() == "sms_sent").count(), 3);
}

async fn the_twilio_compatible_provider_gets_a_form_with_basic_auth(backend: Backend) {
    let provider = Provider::start(&[201, 400]).await;
    let config = twilio_config(backend, &provider).await;
    let app = TestApp::spawn_with(config.clone()).await;

    let sent = enqueue_sms(&app, None, app.clock.unix()).await;
    OutboxRow::wait(&config.database_url, &sent, "the SMS marked sent", |r| r.status == "sent").await;
    let received = provider.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.path, format!("/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"));
    use base64::Engine as _;
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{TWILIO_SID}:{TWILIO_TOKEN}"));
    assert_eq!(request.header("authorization"), format!("Basic {credentials}"));
    assert_eq!(request.header("content-type"), "application/x-www-form-urlencoded");
    let mut form = request.form();
    form.sort();
    let mut expected = vec![("Body", CODE_TEXT), ("From", TWILIO_FROM), ("To", NUMBER)];
    expected.sort();
    assert_eq!(form, expected.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect::<Vec<_>>());

    // A refusal is a dead letter that says why, in Twilio's words.
    let refused = enqueue_sms(&app, None, app.clock.unix()).await;
    let row = OutboxRow::wait(&config.database_url, &refused, "a dead letter", |r| r.status == "dead").await;
    let error = row.last_error.unwrap_or_default();
    assert!(error.contains("400") && error.contains("21211"), "{error}");
    let counted = counted(&app, |rows| !rows.is_empty()).await;
    assert_eq!(counted.len(), 1, "{counted:?}");
    assert_eq!((country_of(&counted[0]).as_str(), counted[0].failures, counted[0].dead, counted[0].sent), ("PH", 1, 1, 1));
}

/// A provider's words are stored, shown by `doorman mail status` and audited: a NUL in them
/// (which PostgreSQL refuses in text) left the outcome unwritten, so the text was sent again at
/// every lease's end; a terminal escape would have reached an operator's terminal.
async fn a_providers_refusal_with_control_characters_is_stored_without_them(backend: Backend) {
    let provider = Provider::start(&[400]).await;
    *provider.state.refusal_message.lock().unwrap() = Some("bad\u{0}number \u{1b}[31mred\u{1b}[0m".into());
    let config = twilio_config(backend, &provider).await;
    let app = TestApp::spawn_with(config.clone()).await;
    let account = app.create_account("maria", "maria@example.com").await;

    let refused = enqueue_sms(&app, Some(account.id.clone()), app.clock.unix()).await;
    let row = OutboxRow::wait(&config.database_url, &refused, "a dead letter", |r| r.status == "dead").await;
    let error = row.last_error.unwrap_or_default();
    assert!(error.contains("21211") && error.contains("badnumber [31mred[0m"), "{error:?}");
    assert_eq!(provider.received().len(), 1, "refused for good, sent once");
    let audit = app.services.store.audit_of(&account.id, 20).await.unwrap();
    let failed = audit.iter().find(|r| r.event.as_str() == "sms_failed").expect("an sms_failed audit record");
    assert!(!failed.detail.chars().any(char::is_control), "{:?}", failed.detail);
    let counted = counted(&app, |rows| !rows.is_empty()).await;
    assert!(!counted[0].last_error.as_deref().unwrap_or_default().chars().any(char::is_control), "{counted:?}");
}

async fn an_sms_whose_code_has_expired_is_not_sent(backend: Backend) {
    let provider = Provider::start(&[]).await;
    let config = webhook_config(backend, &provider).await;
    let app = TestApp::spawn_with(config.clone()).await;

    // Written eleven minutes ago (the worker was down, say): its code has expired.
    let id = enqueue_sms(&app, None, app.clock.unix() - 11 * 60).await;
    let row = OutboxRow::wait(&config.database_url, &id, "a dead letter", |r| r.status == "dead").await;
    assert!(row.last_error.as_deref().unwrap_or_default().contains("expired"), "{row:?}");
    assert!(provider.received().is_empty(), "nothing was sent");
}

/// Issue 8: `serve --demo` with no provider configured uses the dev outbox by itself.
async fn the_dev_outbox_shows_sms_on_the_demo_mailbox(backend: Backend) {
    let config = Config { mail_worker: true, sms_provider: None, ..test_config(backend).await };
    let app = TestApp::spawn_demo(config.clone()).await;

    let id = enqueue_sms(&app, None, app.clock.unix()).await;
    let file: PathBuf = eventually("the SMS file in mail_dir/sms", 15, async || {
        let entries = std::fs::read_dir(config.mail_dir.join("sms")).ok()?;
        entries.map(|e| e.unwrap().path()).find(|p| p.extension().is_some_and(|x| x == "json"))
    })
    .await;
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.ends_with(&format!("-{id}.json")) && name.starts_with(|c: char| c.is_ascii_digit()), "{name} sorts by time");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!((json["to"].as_str(), json["text"].as_str()), (Some(NUMBER), Some(CODE_TEXT)));
    OutboxRow::wait(&config.database_url, &id, "the SMS marked sent", |r| r.status == "sent").await;

    let page = app.get(&app.client, "/dev/mailbox").await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("SMS to +63 *** *** 4521"), "{}", page.text);
    assert!(page.text.contains("482915"), "the demo mailbox shows the code: {}", page.text);
    assert!(page.text.contains(NUMBER), "{}", page.text);

    // Email failures are counted too, with no country.
    let email = NewMessage::email("not an address", "password_reset", None, content(), app.clock.unix());
    app.services.store.enqueue_message(&email).await.unwrap();
    let counted = counted(&app, |rows| !rows.is_empty()).await;
    assert_eq!(counted.len(), 1, "{counted:?}");
    assert_eq!((counted[0].channel.as_str(), counted[0].country, counted[0].failures, counted[0].dead), ("email", None, 1, 1));
}

/// Issue 8: outside demo mode the dev outbox writes codes to files only when the operator
/// names it (`sms_provider = "dev_outbox"`); `/dev/mailbox` stays closed.
async fn the_dev_outbox_is_used_outside_demo_only_when_named(backend: Backend) {
    let config = Config { mail_worker: true, sms_provider: Some(doorman::settings::SmsProvider::DevOutbox), ..test_config(backend).await };
    let app = TestApp::spawn_with(config.clone()).await;
    let id = enqueue_sms(&app, None, app.clock.unix()).await;
    OutboxRow::wait(&config.database_url, &id, "the SMS marked sent", |r| r.status == "sent").await;
    let files: Vec<PathBuf> = std::fs::read_dir(config.mail_dir.join("sms")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].to_string_lossy().ends_with(&format!("-{id}.json")), "{files:?}");
    assert_eq!(app.get(&app.client, "/dev/mailbox").await.status, 404, "the mailbox page is for demo mode only");
}

/// Issue 8 (S5.5): a server that cannot send a text offers no SMS method. Phones enrolled
/// before the provider was removed stay listed as unavailable, and other methods take over.
mod no_provider {
    use super::*;
    use crate::helpers::{PASSWORD, Response, csrf_of};
    use crate::two_step::{current_code, enrol_totp};
    use doorman_core::two_step::NO_USABLE_METHOD;
    use serde_json::{Value, json};

    on_both_backends!(
        s5_5_plain_serve_without_a_provider_refuses_sms_enrolment_and_writes_nothing,
        s5_5_a_phone_whose_provider_was_removed_is_listed_unavailable_and_other_methods_take_over,
        s5_5_an_account_left_with_only_an_unavailable_phone_is_told_and_never_let_in_by_password_alone,
    );

    /// The configuration of a plain `doorman serve` with no SMS setting at all.
    fn without_provider(config: Config) -> Config {
        Config { sms_provider: None, sms_webhook_url: None, sms_twilio_account_sid: None, ..config }
    }

    async fn signed_in(app: &TestApp, username: &str) -> reqwest::Client {
        let client = TestApp::new_client();
        assert_eq!(app.login_as(&client, "192.0.2.10", username, PASSWORD).await.status, 200);
        client
    }

    fn code_in(text: &str) -> String {
        text.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).unwrap().to_owned()
    }

    /// Enrols a phone on a server that can text; returns its method id.
    async fn enrol_phone(app: &TestApp, client: &reqwest::Client, phone: &str) -> String {
        let started = app.post_json(client, "/api/v1/account/two-step/sms", json!({ "phone": phone })).await;
        assert_eq!(started.status, 200, "{}", started.text);
        let method_id = started.json()["method_id"].as_str().unwrap().to_owned();
        let text = app.deliver().await.into_iter().find(|m| m.to.starts_with('+')).unwrap().text;
        let body = json!({ "method_id": method_id, "code": code_in(&text) });
        let confirmed = app.post_json(client, "/api/v1/account/two-step/sms/confirm", body).await;
        assert_eq!(confirmed.status, 200, "{}", confirmed.text);
        app.deliver().await;
        method_id
    }

    fn kinds(methods: &Value) -> Vec<String> {
        methods.as_array().unwrap().iter().map(|m| m["kind"].as_str().unwrap().to_owned()).collect()
    }

    async fn s5_5_plain_serve_without_a_provider_refuses_sms_enrolment_and_writes_nothing(backend: Backend) {
        let config = without_provider(test_config(backend).await);
        let app = TestApp::spawn_with(config.clone()).await;
        let account = app.create_account("maria", "maria@example.com").await;
        let client = signed_in(&app, "maria").await;

        let refused = app.post_json(&client, "/api/v1/account/two-step/sms", json!({ "phone": "0917 123 4521" })).await;
        assert_eq!((refused.status, refused.error_code().as_str()), (400, "sms_unavailable"), "{}", refused.text);
        assert_eq!(app.get(&client, "/api/v1/account/two-step").await.json()["sms_available"], false);

        // The settings page says so and offers no phone form; a form posted anyway is refused.
        let page = app.get(&client, "/account/security").await;
        assert!(page.text.contains("id=\"sms-unavailable\""), "{}", page.text);
        assert!(!page.text.contains("action=\"/account/security/sms\""), "{}", page.text);
        let form = [("csrf", csrf_of(&page.text)), ("phone", "0917 123 4521".to_owned())];
        let posted = Response::read(client.post(app.url("/account/security/sms")).form(&form).send().await.unwrap()).await;
        assert_eq!(posted.status, 400, "{}", posted.text);
        assert!(posted.text.contains("Text-message codes are not available on this server"), "{}", posted.text);

        // Nothing was stored, queued or written.
        assert!(app.services.store.factors_of(&account.id).await.unwrap().is_empty());
        let queued = app.deliver().await;
        assert!(queued.iter().all(|m| !m.to.starts_with('+')), "no text queued: {queued:?}");
        assert!(!config.mail_dir.join("sms").exists(), "no code on disk");
    }

    async fn s5_5_a_phone_whose_provider_was_removed_is_listed_unavailable_and_other_methods_take_over(backend: Backend) {
        // Enrolled while the server could text: an app, then a phone made the default.
        let config = test_config(backend).await;
        let texting = TestApp::spawn_with(config.clone()).await;
        texting.create_account("maria", "maria@example.com").await;
        let client = signed_in(&texting, "maria").await;
        let (secret, app_id) = enrol_totp(&texting, &client).await;
        let phone_id = enrol_phone(&texting, &client, "0917 123 4521").await;
        let made_default = texting.post_json(&client, "/api/v1/account/two-step/default", json!({ "method_id": phone_id })).await;
        assert_eq!(made_default.status, 200, "{}", made_default.text);
        let before = texting.login_as(&TestApp::new_client(), "192.0.2.10", "maria", PASSWORD).await.json();
        assert_eq!(kinds(&before["methods"]), ["sms", "totp"], "the phone first while it works");

        // The same database, served without a provider.
        let app = TestApp::spawn_with(without_provider(config)).await;
        app.clock.advance(31); // past the step whose TOTP code enrolment used
        let login = TestApp::new_client();
        let answer = app.login_as(&login, "192.0.2.10", "maria", PASSWORD).await.json();
        assert_eq!(answer["status"], "second_factor_required");
        assert_eq!(kinds(&answer["methods"]), ["totp"], "the phone is not offered; the app comes first: {answer}");
        assert!(answer["message"].is_null(), "{answer}");

        // "Send a code" to the phone is refused, and no code for it is accepted.
        let send = app.post_json(&login, "/api/v1/login/second-factor/send", json!({ "method_id": phone_id })).await;
        assert_eq!((send.status, send.error_code().as_str()), (400, "sms_unavailable"), "{}", send.text);
        let guess = app.post_json(&login, "/api/v1/login/second-factor", json!({ "method_id": phone_id, "code": "123456" })).await;
        assert_eq!(guess.status, 401);
        let page = app.get(&login, "/login/verify").await;
        assert!(page.text.contains("authenticator app") && !page.text.contains("*** 4521"), "{}", page.text);
        let page = app.get(&login, &format!("/login/verify?method={phone_id}")).await;
        assert!(!page.text.contains("*** 4521") && !page.text.contains("send-code"), "asking for the phone gives the app: {}", page.text);

        // The app takes over.
        let code = current_code(&app, &secret, 0);
        let ok = app.post_json(&login, "/api/v1/login/second-factor", json!({ "method_id": app_id, "code": code })).await;
        assert_eq!(ok.status, 200, "{}", ok.text);

        // Settings still list the phone, marked unavailable.
        let listed = app.get(&login, "/api/v1/account/two-step").await.json();
        assert_eq!(listed["enabled"], true);
        let phone = listed["methods"].as_array().unwrap().iter().find(|m| m["id"] == phone_id.as_str()).unwrap().clone();
        assert_eq!((phone["available"].as_bool(), phone["hint"].as_str()), (Some(false), Some("+63 *** *** 4521")), "{listed}");
        let totp = listed["methods"].as_array().unwrap().iter().find(|m| m["id"] == app_id.as_str()).unwrap().clone();
        assert_eq!(totp["available"], true);
        let page = app.get(&login, "/account/security").await.text;
        assert!(
            page.contains("+63 *** *** 4521") && page.contains("badge unavailable") && page.contains("id=\"sms-unavailable\""),
            "{page}"
        );

        // Step-up offers the app only, and refuses to text the phone.
        app.clock.advance(11 * 60);
        let needs = app.post_json(&login, "/api/v1/account/two-step/recovery-codes", json!({})).await;
        assert_eq!((needs.status, needs.error_code().as_str()), (403, "step_up_required"));
        assert_eq!(kinds(&needs.json()["methods"]), ["totp"], "{}", needs.text);
        let send = app.post_json(&login, "/api/v1/step-up/send", json!({ "method_id": phone_id })).await;
        assert_eq!((send.status, send.error_code().as_str()), (400, "sms_unavailable"));
        let page = app.get(&login, "/step-up?next=/account/security").await.text;
        assert!(!page.contains("*** 4521") && page.contains("authenticator app"), "{page}");
        let code = current_code(&app, &secret, 0);
        let stepped = app.post_json(&login, "/api/v1/step-up", json!({ "method_id": app_id, "code": code })).await;
        assert_eq!(stepped.status, 200, "{}", stepped.text);
    }

    /// The decision (docs/SECURITY.md, S5.5): the password alone never replaces the second
    /// step. The owner is told why at login, step-up and reset; recovery codes still work.
    async fn s5_5_an_account_left_with_only_an_unavailable_phone_is_told_and_never_let_in_by_password_alone(backend: Backend) {
        let config = test_config(backend).await;
        let texting = TestApp::spawn_with(config.clone()).await;
        texting.create_account("jordan", "jordan@example.com").await;
        let client = signed_in(&texting, "jordan").await;
        enrol_phone(&texting, &client, "0917 765 4321").await;

        let app = TestApp::spawn_with(without_provider(config)).await;
        let login = TestApp::new_client();
        let answer = app.login_as(&login, "192.0.2.10", "jordan", PASSWORD).await.json();
        assert_eq!((answer["status"].as_str(), answer["message"].as_str()), (Some("second_factor_required"), Some(NO_USABLE_METHOD)));
        assert_eq!(kinds(&answer["methods"]), Vec::<String>::new());
        assert_eq!(app.get(&login, "/api/v1/session").await.status, 401, "the half session reaches nothing");
        let page = app.get(&login, "/login/verify").await.text;
        assert!(page.contains("id=\"no-usable-method\"") && !page.contains("id=\"no-methods\""), "{page}");

        // A reset link is not a way around it.
        let token = app.reset_mail("jordan").await.token("reset-password");
        let reset = app.reset(json!({ "token": token, "new_password": "violet canyon drumbeat" })).await;
        assert_eq!((reset.status, reset.error_code().as_str()), (403, "second_factor_required"));
        assert_eq!(reset.json()["message"], NO_USABLE_METHOD);

        // Recovery codes made while the phone worked still let the owner in.
        let codes = texting.post_json(&client, "/api/v1/account/two-step/recovery-codes", json!({})).await.json();
        let code = codes["codes"][0].as_str().unwrap().to_owned();
        let login = TestApp::new_client();
        let answer = app.login_as(&login, "192.0.2.10", "jordan", PASSWORD).await.json();
        assert_eq!(kinds(&answer["methods"]), ["recovery_code"], "{answer}");
        let recovery_id = answer["methods"][0]["id"].as_str().unwrap();
        let ok = app.post_json(&login, "/api/v1/login/second-factor", json!({ "method_id": recovery_id, "code": code })).await;
        assert_eq!(ok.status, 200, "{}", ok.text);
    }
}

/// `DOORMAN_SMS_FROM=+15005550006` stays text (not the integer 15005550006), secrets stay
/// hidden, and incomplete settings are refused with the missing one named.
#[test]
fn config_check_reads_the_sms_settings_from_the_environment() {
    let check = |vars: &[(&str, &str)]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_doorman"));
        command.args(["config", "check"]).current_dir(temp_dir());
        for (k, v) in vars {
            command.env(k, v);
        }
        let output = command.output().unwrap();
        (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr))
    };
    let (ok, text) = check(&[
        ("DOORMAN_SMS_TWILIO_ACCOUNT_SID", TWILIO_SID),
        ("DOORMAN_SMS_TWILIO_AUTH_TOKEN", "1234567890"),
        ("DOORMAN_SMS_FROM", TWILIO_FROM),
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("sms_provider = (unset: twilio)") && text.contains("sms_from = +15005550006"), "{text}");
    assert!(text.contains("sms_twilio_auth_token = (set)") && !text.contains("1234567890"), "{text}");

    let (ok, text) = check(&[("DOORMAN_SMS_PROVIDER", "webhook"), ("DOORMAN_SMS_WEBHOOK_URL", "https://sms.example.com/hook")]);
    assert!(!ok && text.contains("sms_webhook_secret"), "{text}");
}

/// Issue 8: `config check` says when no SMS method will be offered, and when codes would
/// only be written to files.
#[test]
fn config_check_says_when_texts_are_not_sent() {
    let check = |vars: &[(&str, &str)]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_doorman"));
        command.args(["config", "check"]).current_dir(temp_dir());
        for (k, v) in vars {
            command.env(k, v);
        }
        let output = command.output().unwrap();
        assert!(output.status.success());
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let text = check(&[]);
    assert!(text.contains("sms_provider = (unset: none, so no SMS method is offered"), "{text}");
    let text = check(&[("DOORMAN_SMS_PROVIDER", "dev_outbox")]);
    assert!(text.contains("sms_provider = dev_outbox (codes are written to files"), "{text}");
}

/// Issue 8: a plain `doorman serve` says at start that it offers no SMS, or, with the dev
/// outbox named, that codes are written to files; and without SMTP, that email is too.
#[test]
fn serve_warns_at_start_about_dev_transports() {
    use std::io::{BufRead, BufReader};
    let start = |vars: &[(&str, &str)]| {
        let dir = temp_dir();
        let mut command = Command::new(env!("CARGO_BIN_EXE_doorman"));
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .current_dir(&dir)
            .env("DOORMAN_DATABASE_URL", format!("sqlite://{}/doorman.db?mode=rwc", dir.display()))
            .env("DOORMAN_SECRET_KEY_FILE", dir.join("secret.key"))
            .env("DOORMAN_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        for (k, v) in vars {
            command.env(k, v);
        }
        let mut server = command.spawn().unwrap();
        let stderr = BufReader::new(server.stderr.take().unwrap());
        // The warnings come before the server listens: read up to that line (or the end).
        let mut log = String::new();
        for line in stderr.lines().map_while(Result::ok) {
            log.push_str(&line);
            log.push('\n');
            if line.contains("doorman is listening") {
                break;
            }
        }
        server.kill().ok();
        server.wait().ok();
        log
    };
    let log = start(&[]);
    assert!(log.contains("no SMS provider is configured"), "{log}");
    assert!(log.contains("no smtp_url is configured") && log.contains("WARN"), "{log}");
    let log = start(&[("DOORMAN_SMS_PROVIDER", "dev_outbox")]);
    assert!(log.contains("WRITTEN TO FILES and never sent") && log.contains("sms_provider = dev_outbox"), "{log}");
}
