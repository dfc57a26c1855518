//! How one message leaves: over SMTP, or, when no SMTP server is configured, as an RFC 5322
//! `.eml` file in the dev outbox. Both send the same message, built by lettre from typed
//! addresses, so no header can be injected through a recipient or a subject. SMS are handed
//! to the SMS provider ([`super::sms`]).

use super::capture::Captured;
use super::dev_outbox::{dev_outbox_stem, write_atomically};
use super::send::{SEND_DEADLINE, SEND_TIMEOUT, SendError};
use super::sms::SmsTransport;
use crate::settings::{MailSettings, Query, SmsSettings, redacted};
use anyhow::Context;
use doorman_core::outbox::{Channel, ClaimedMessage};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{Address, AsyncTransport, Message, Tokio1Executor};
use std::path::{Path, PathBuf};

/// Where messages go, and the `From` they carry.
#[derive(Clone)]
pub struct Transport {
    from: Mailbox,
    route: Route,
    /// How SMS leave; `None` fails them permanently.
    sms: Option<SmsTransport>,
}

#[derive(Clone)]
enum Route {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        endpoint: String,
    },
    DevOutbox {
        dir: PathBuf,
    },
    /// In memory (see [`super::capture`]).
    Capture(Captured),
}

// By hand: the SMTP transport's own Debug would print its credentials.
impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport").field("from", &self.from.to_string()).field("route", &self.describe()).finish()
    }
}

impl Transport {
    /// SMTP when `smtp_url` is set, else the dev outbox in `mail_dir`; SMS by the provider
    /// `sms` names, or by nothing (see [`SmsTransport::for_server`]). Fails on an SMTP URL
    /// lettre cannot use; connects to nothing yet.
    ///
    /// Email without SMTP still goes to the dev outbox outside demo mode, with a warning at
    /// every start: email is every account's way back in, so refusing to start would turn a
    /// missing setting into an outage, and there is no other method to fall back to.
    pub fn new(mail: &MailSettings, sms: Option<SmsSettings>, demo: bool) -> anyhow::Result<Self> {
        let from = mail.from.clone();
        let sms = SmsTransport::for_server(sms, demo, &from)?;
        let transport = match &mail.smtp_url {
            Some(url) => Self::smtp(url, from)?,
            None => {
                if !demo {
                    tracing::warn!(dir = %mail.mail_dir.display(), "no smtp_url is configured: emails, reset links included, are WRITTEN TO FILES in mail_dir and never sent; for development only, set smtp_url in production");
                }
                Self::dev_outbox(mail.mail_dir.clone(), from)
            }
        };
        Ok(Self { sms, ..transport })
    }

    /// Whether SMS can leave: without a provider they are not offered at all.
    pub fn sends_sms(&self) -> bool {
        self.sms.is_some()
    }

    /// `smtp://host[:port]` (plain), `smtp://host[:port]?tls=required` (STARTTLS; `tls=starttls`
    /// is accepted too), `smtps://host[:port]` (TLS from the start), each with optional
    /// `user:password@`. TLS uses rustls with the bundled Mozilla roots.
    pub fn smtp(url: &str, from: Mailbox) -> anyhow::Result<Self> {
        let url = normalise_smtp_url(url).context("smtp_url is not a URL")?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.as_str())
            .map_err(|e| anyhow::anyhow!("smtp_url {}: {e}", redacted(&url, Query::Keep)))?
            .timeout(Some(SEND_TIMEOUT))
            .build();
        Ok(Self { from, route: Route::Smtp { transport, endpoint: redacted(&url, Query::Keep) }, sms: None })
    }

    /// Email and SMS as files in `dir` (SMS in `dir/sms`, with an `.eml` copy in `dir`).
    pub fn dev_outbox(dir: PathBuf, from: Mailbox) -> Self {
        let sms = SmsTransport::dev_outbox(dir.clone(), &from);
        Self { from, route: Route::DevOutbox { dir }, sms: Some(sms) }
    }

    /// Email and SMS built and checked as by the other routes, then kept in memory: the
    /// handle returned reads them (see [`super::capture`]).
    pub fn capture(from: Mailbox) -> (Self, Captured) {
        let captured = Captured::default();
        let sms = SmsTransport::capture(captured.clone());
        (Self { from, route: Route::Capture(captured.clone()), sms: Some(sms) }, captured)
    }

    /// For the start-up log line: the SMTP URL without its password, or the outbox folder,
    /// and where SMS go.
    pub fn describe(&self) -> String {
        let email = match &self.route {
            Route::Smtp { endpoint, .. } => endpoint.clone(),
            Route::DevOutbox { dir } => format!("dev outbox {}", dir.display()),
            Route::Capture(_) => "in-process capture".to_owned(),
        };
        let sms = self.sms.as_ref().map(SmsTransport::describe).unwrap_or_else(|| "none".into());
        format!("{email}; SMS: {sms}")
    }

    /// Sends one message: email by SMTP or the dev outbox, SMS by the SMS provider.
    pub async fn send(&self, message: &ClaimedMessage) -> Result<(), SendError> {
        if message.channel == Channel::Sms {
            return match &self.sms {
                Some(sms) => sms.send(message).await,
                None => Err(SendError::Permanent("no SMS provider is configured".into())),
            };
        }
        let email = compose(&self.from, message)?;
        match &self.route {
            Route::Smtp { transport, .. } => match tokio::time::timeout(SEND_DEADLINE, transport.send(email)).await {
                Ok(Ok(_response)) => Ok(()),
                Ok(Err(e)) => Err(classify(&e)),
                Err(_) => Err(SendError::Transient(format!("the SMTP server did not finish within {} seconds", SEND_DEADLINE.as_secs()))),
            },
            Route::DevOutbox { dir } => write_eml(dir, message, &email.formatted())
                .await
                .map_err(|e| SendError::Transient(format!("writing to the dev outbox {}: {e}", dir.display()))),
            Route::Capture(captured) => {
                captured.push(message);
                Ok(())
            }
        }
    }
}

/// The RFC 5322 message for an outbox row: `multipart/alternative` with a plain-text and an
/// HTML part, and a `Message-ID` made from the outbox id, so that the copy a retry may send
/// after a crash carries the same id as the first and receivers can drop it.
pub fn compose(from: &Mailbox, message: &ClaimedMessage) -> Result<Message, SendError> {
    let address: Address =
        message.recipient.trim().parse().map_err(|e| SendError::Permanent(format!("the recipient is not a valid email address ({e})")))?;
    Message::builder()
        .from(from.clone())
        .to(Mailbox::new(None, address))
        .subject(message.content.subject.as_str())
        .message_id(Some(format!("<{}@{}>", message.id, from.email.domain())))
        .multipart(MultiPart::alternative_plain_html(message.content.text.clone(), message.content.html.clone()))
        .map_err(|e| SendError::Permanent(format!("the message could not be built: {e}")))
}

/// A 5xx reply is permanent (the server refuses this message or recipient), except the
/// authentication replies, which an operator fixes in the configuration: those, 4xx
/// replies, network errors and timeouts are retried.
fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    let text = error_chain(e);
    let code = e.status().map(u16::from);
    let authentication = matches!(code, Some(530 | 534 | 535 | 538));
    if e.is_permanent() && !authentication { SendError::Permanent(text) } else { SendError::Transient(text) }
}

fn error_chain(e: &lettre::transport::smtp::Error) -> String {
    use std::error::Error as _;
    // lettre's Display already ends with its direct source; add what lies below it.
    let mut text = e.to_string();
    let mut cause = e.source().and_then(|s| s.source());
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    text
}

/// lettre knows `tls=required` and `tls=opportunistic`; `tls=starttls` is what people write.
fn normalise_smtp_url(raw: &str) -> Result<url::Url, url::ParseError> {
    let mut url = url::Url::parse(raw.trim())?;
    let pairs: Vec<(String, String)> = url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    if pairs.iter().any(|(k, v)| k == "tls" && v.eq_ignore_ascii_case("starttls")) {
        let mut query = url.query_pairs_mut();
        query.clear();
        for (k, v) in &pairs {
            let v = if k == "tls" && v.eq_ignore_ascii_case("starttls") { "required" } else { v.as_str() };
            query.append_pair(k, v);
        }
    }
    Ok(url)
}

/// Writes `{created_at}-{id}.eml` (names sort by time). A retry overwrites the same file.
async fn write_eml(dir: &Path, message: &ClaimedMessage, bytes: &[u8]) -> std::io::Result<()> {
    write_atomically(dir, &format!("{}.eml", dev_outbox_stem(message)), bytes).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use doorman_core::outbox::MessageContent;

    fn message(recipient: &str) -> ClaimedMessage {
        ClaimedMessage {
            id: "0b6f3d4e-1111-4222-8333-444455556666".into(),
            channel: Channel::Email,
            recipient: recipient.into(),
            kind: "password_reset".into(),
            account_id: None,
            content: MessageContent {
                subject: "Reset your doorman password\r\nBcc: victim@example.com".into(),
                text: "Hello, maria.".into(),
                html: "<p>Hello, <b>maria</b>.</p>".into(),
            },
            attempts: 1,
            created_at: 1_790_000_000,
        }
    }

    fn from() -> Mailbox {
        "doorman <no-reply@doorman.test>".parse().unwrap()
    }

    #[test]
    fn messages_are_multipart_alternative_with_a_stable_message_id() {
        let email = compose(&from(), &message("maria@example.com")).unwrap();
        let raw = String::from_utf8(email.formatted()).unwrap();
        assert!(raw.contains("Message-ID: <0b6f3d4e-1111-4222-8333-444455556666@doorman.test>"), "{raw}");
        assert!(raw.contains("To: maria@example.com"), "{raw}");
        assert!(raw.contains("From: doorman <no-reply@doorman.test>"), "{raw}");
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(raw.contains("text/plain") && raw.contains("text/html"), "{raw}");
        // A line break in a subject cannot start a header of its own.
        assert!(!raw.lines().any(|line| line.starts_with("Bcc:")), "{raw}");
    }

    #[test]
    fn a_recipient_that_is_not_an_address_fails_permanently() {
        for bad in ["not an address", "maria@example.com\r\nBcc: x@example.com", "", "a@b@c"] {
            let err = compose(&from(), &message(bad)).unwrap_err();
            assert!(err.is_permanent(), "{bad:?}");
        }
    }

    #[test]
    fn starttls_is_spelt_the_way_lettre_wants_it() {
        let url = normalise_smtp_url("smtp://user:secret@mail.example.com:587?tls=starttls").unwrap();
        assert_eq!(url.as_str(), "smtp://user:secret@mail.example.com:587?tls=required");
        assert_eq!(redacted(&url, Query::Keep), "smtp://user:***@mail.example.com:587?tls=required");
        assert!(Transport::smtp("smtps://mail.example.com", from()).is_ok());
        assert!(Transport::smtp("smtp://mail.example.com:2525?tls=required", from()).is_ok());
        assert!(Transport::smtp("http://mail.example.com", from()).is_err());
    }

    #[tokio::test]
    async fn the_dev_outbox_writes_one_eml_file_per_message() {
        let dir = std::env::temp_dir().join(format!("doorman-outbox-{}", uuid::Uuid::new_v4().simple()));
        let transport = Transport::dev_outbox(dir.clone(), from());
        let m = message("maria@example.com");
        transport.send(&m).await.unwrap();
        transport.send(&m).await.unwrap();
        let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert_eq!(files, vec![format!("1790000000-{}.eml", m.id)]);
        std::fs::remove_dir_all(dir).ok();
    }
}
