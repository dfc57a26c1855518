//! How one text message leaves: through a generic HTTPS webhook or a Twilio-compatible REST
//! API; or the dev outbox (files in `mail_dir`, listed on `/dev/mailbox` in demo mode), only
//! under `serve --demo` or when `sms_provider = "dev_outbox"` is set explicitly.
//!
//! **No provider, no SMS.** A plain `serve` with no provider configured offers no SMS
//! method at all: enrolment is refused (`sms_unavailable`), phones already enrolled are
//! listed as unavailable and never offered, so codes are never written to a disk in
//! production where nobody would receive them (issue 8, S5.5).
//!
//! An SMS carries a verification code, so its text is never logged, never put in an error
//! and never kept once sent (the outbox erases it). Errors name the provider and its answer.
//!
//! **Webhook.** `POST {sms_webhook_url}` with `Content-Type: application/json` and the body
//! `{"to": "+639171234521", "text": "...", "message_id": "..."}`, signed:
//! `X-Doorman-Timestamp: <Unix seconds>` and
//! `X-Doorman-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" under sms_webhook_secret>`,
//! where `<body>` is the raw request body, byte for byte. A receiver recomputes the HMAC,
//! compares in constant time, refuses timestamps more than a few minutes old (replays), and
//! may use `message_id` to drop the copy a retry can send after a crash.
//!
//! **Answers.** 2xx: sent. 408, 429, 5xx, redirects, timeouts and network errors: retried
//! with backoff. 401 and 403 are retried too: a wrong secret or credential is the operator's
//! to fix, as SMTP authentication failures are. Any other 4xx: the message is refused for
//! good (dead letter).

use super::capture::Captured;
use super::dev_outbox::{dev_outbox_stem, safe_id, write_atomically};
use super::send::{SEND_DEADLINE, SEND_TIMEOUT, SendError};
use crate::settings::{Query, SmsSettings, redacted};
use doorman_core::outbox::{Channel, ClaimedMessage};
use doorman_core::phone::PhoneNumber;
use hmac::{Hmac, Mac};
use lettre::message::Mailbox;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Sha256;
use std::path::{Path, PathBuf};

/// The header carrying the signature, `sha256=<hex>`.
pub const SIGNATURE_HEADER: &str = "X-Doorman-Signature";
/// The header carrying the Unix time the signature was made, part of what is signed.
pub const TIMESTAMP_HEADER: &str = "X-Doorman-Timestamp";
/// Longer texts are refused (Twilio's own limit is 1600 characters).
const MAX_TEXT_CHARS: usize = 1600;
/// An SMS this old is not sent any more: it carries a verification code, and the code has
/// expired by then (a code lives `OTP_TTL_SECONDS`), so sending it would only cost money and
/// confuse its reader.
pub const SMS_MAX_AGE_SECONDS: i64 = doorman_core::two_step::OTP_TTL_SECONDS;

/// Where SMS go.
#[derive(Clone)]
pub struct SmsTransport {
    route: SmsRoute,
}

#[derive(Clone)]
enum SmsRoute {
    DevOutbox {
        mail_dir: PathBuf,
        from: Mailbox,
    },
    Webhook {
        client: reqwest::Client,
        url: url::Url,
        secret: SecretString,
    },
    Twilio {
        client: reqwest::Client,
        messages_url: String,
        account_sid: String,
        auth_token: SecretString,
        from: String,
        base_url: url::Url,
    },
    /// In memory (see [`super::capture`]).
    Capture(Captured),
}

impl std::fmt::Debug for SmsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsTransport").field("route", &self.describe()).finish()
    }
}

impl SmsTransport {
    /// The server's SMS provider (`Config::sms_for_server`); `None` when SMS cannot be
    /// sent, which is logged. Connects to nothing. `from` is the sender of the dev outbox's
    /// `.eml` copies. The dev outbox is logged loudly outside demo mode: nobody receives its
    /// codes.
    pub fn for_server(settings: Option<SmsSettings>, demo: bool, from: &Mailbox) -> anyhow::Result<Option<Self>> {
        let Some(settings) = settings else {
            tracing::warn!(
                "no SMS provider is configured: text-message codes are not offered, and phones already enrolled are unavailable until one is (see sms_provider); accounts whose only 2-step method is a phone can sign in only with a recovery code"
            );
            return Ok(None);
        };
        if let SmsSettings::DevOutbox { mail_dir } = &settings {
            if demo {
                tracing::info!(dir = %mail_dir.join("sms").display(), "demo mode: text messages go to the dev outbox");
            } else {
                tracing::warn!(dir = %mail_dir.join("sms").display(), "sms_provider = dev_outbox: text-message codes are WRITTEN TO FILES and never sent; for development only, never in production");
            }
        }
        Self::new(settings, from).map(Some)
    }

    pub fn new(settings: SmsSettings, from: &Mailbox) -> anyhow::Result<Self> {
        let route = match settings {
            SmsSettings::DevOutbox { mail_dir } => SmsRoute::DevOutbox { mail_dir, from: from.clone() },
            SmsSettings::Webhook { url, secret } => {
                warn_if_plain_http("sms_webhook_url", &url);
                SmsRoute::Webhook { client: http_client()?, url, secret }
            }
            SmsSettings::Twilio { base_url, account_sid, auth_token, from } => {
                warn_if_plain_http("sms_twilio_base_url", &base_url);
                let messages_url = format!("{}/2010-04-01/Accounts/{account_sid}/Messages.json", base_url.as_str().trim_end_matches('/'));
                SmsRoute::Twilio { client: http_client()?, messages_url, account_sid, auth_token, from, base_url }
            }
        };
        Ok(Self { route })
    }

    /// The dev outbox in `mail_dir` (SMS files in `mail_dir/sms`).
    pub fn dev_outbox(mail_dir: PathBuf, from: &Mailbox) -> Self {
        Self { route: SmsRoute::DevOutbox { mail_dir, from: from.clone() } }
    }

    /// Checked as by the other routes, then kept in memory.
    pub(super) fn capture(captured: Captured) -> Self {
        Self { route: SmsRoute::Capture(captured) }
    }

    /// For the start-up log line: where SMS go, no secret.
    pub fn describe(&self) -> String {
        match &self.route {
            SmsRoute::DevOutbox { mail_dir, .. } => format!("dev outbox {}", mail_dir.join("sms").display()),
            SmsRoute::Webhook { url, .. } => format!("webhook {}", redacted(url, Query::Hide)),
            SmsRoute::Twilio { base_url, account_sid, from, .. } => {
                format!("twilio-compatible {} account {account_sid} from {from}", redacted(base_url, Query::Hide))
            }
            SmsRoute::Capture(_) => "in-process capture".to_owned(),
        }
    }

    /// Sends one SMS. The recipient must be an E.164 mobile number; the text is
    /// `content.text`.
    pub async fn send(&self, message: &ClaimedMessage) -> Result<(), SendError> {
        if message.channel != Channel::Sms {
            return Err(SendError::Permanent(format!("the SMS provider does not carry {} messages", message.channel.as_str())));
        }
        let to = PhoneNumber::parse(&message.recipient, None)
            .map_err(|e| SendError::Permanent(format!("the recipient is not a mobile number in E.164 form: {e}")))?;
        let text = message.content.text.trim();
        if text.is_empty() {
            return Err(SendError::Permanent("the message has no text".into()));
        }
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(SendError::Permanent(format!("the text is longer than {MAX_TEXT_CHARS} characters")));
        }
        match &self.route {
            SmsRoute::DevOutbox { mail_dir, from } => write_dev_outbox(mail_dir, from, message, &to, text)
                .await
                .map_err(|e| SendError::Transient(format!("writing to the dev outbox {}: {e}", mail_dir.display()))),
            SmsRoute::Webhook { client, url, secret } => send_webhook(client, url, secret, message, &to, text).await,
            SmsRoute::Twilio { client, messages_url, account_sid, auth_token, from, .. } => {
                send_twilio(client, messages_url, account_sid, auth_token, from, &to, text).await
            }
            SmsRoute::Capture(captured) => {
                captured.push(message);
                Ok(())
            }
        }
    }
}

/// TLS by rustls with the ring provider and the bundled Mozilla roots (reqwest's
/// `rustls-tls`); no redirects: a provider that redirects is misconfigured, and following
/// could carry the credentials and the code somewhere else.
fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(SEND_TIMEOUT)
        .timeout(SEND_DEADLINE)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("doorman/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| anyhow::anyhow!("building the SMS HTTP client: {}", error_chain(&e)))
}

async fn send_webhook(
    client: &reqwest::Client,
    url: &url::Url,
    secret: &SecretString,
    message: &ClaimedMessage,
    to: &PhoneNumber,
    text: &str,
) -> Result<(), SendError> {
    let body = serde_json::to_vec(&serde_json::json!({ "to": to.e164(), "text": text, "message_id": message.id }))
        .map_err(|e| SendError::Permanent(format!("the webhook body could not be built: {e}")))?;
    let timestamp = unix_now();
    let signature = sign(secret.expose_secret().trim().as_bytes(), timestamp, &body);
    let response = client
        .post(url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(TIMESTAMP_HEADER, timestamp.to_string())
        .header(SIGNATURE_HEADER, format!("sha256={signature}"))
        .body(body)
        .send()
        .await
        .map_err(|e| request_failed("the SMS webhook", &e))?;
    // The receiver's answer is not read: it could echo the text back.
    classify("the SMS webhook", response.status(), "")
}

async fn send_twilio(
    client: &reqwest::Client,
    messages_url: &str,
    account_sid: &str,
    auth_token: &SecretString,
    from: &str,
    to: &PhoneNumber,
    text: &str,
) -> Result<(), SendError> {
    let response = client
        .post(messages_url)
        .basic_auth(account_sid, Some(auth_token.expose_secret().trim()))
        .form(&[("To", to.e164()), ("From", from), ("Body", text)])
        .send()
        .await
        .map_err(|e| request_failed("the Twilio-compatible provider", &e))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    // Twilio explains refusals as `{"code": 21211, "message": "..."}`.
    let detail = match response.json::<TwilioError>().await {
        Ok(TwilioError { code, message }) => {
            let message: String = message.unwrap_or_default().replace(text, "<text>").chars().take(200).collect();
            match code {
                Some(code) => format!(" (error {code}: {message})"),
                None if !message.is_empty() => format!(" ({message})"),
                None => String::new(),
            }
        }
        Err(_) => String::new(),
    };
    classify("the Twilio-compatible provider", status, &detail)
}

#[derive(Deserialize)]
struct TwilioError {
    code: Option<i64>,
    message: Option<String>,
}

fn warn_if_plain_http(name: &str, url: &url::Url) {
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if url.scheme() == "http" && !loopback {
        tracing::warn!(setting = name, url = %redacted(url, Query::Hide), "SMS codes will travel unencrypted: use an https:// URL");
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default()
}

/// The webhook signature: hex HMAC-SHA256 of `"{timestamp}.{body}"` under the secret.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        // HMAC takes keys of any length; this branch cannot be reached.
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// 2xx sent; 408, 429, 401, 403, 3xx and 5xx retried; other 4xx refused for good.
fn classify(provider: &str, status: reqwest::StatusCode, detail: &str) -> Result<(), SendError> {
    if status.is_success() {
        return Ok(());
    }
    let text = format!("{provider} answered {status}{detail}");
    match status.as_u16() {
        408 | 429 => Err(SendError::Transient(text)),
        401 | 403 => Err(SendError::Transient(format!("{text}: check its credentials in the configuration"))),
        400..=499 => Err(SendError::Permanent(text)),
        _ => Err(SendError::Transient(text)),
    }
}

/// A request that got no answer: never permanent. The URL is left out (its query may
/// hold a key).
fn request_failed(provider: &str, e: &reqwest::Error) -> SendError {
    let what = if e.is_timeout() {
        format!("{provider} did not answer within {} seconds", SEND_DEADLINE.as_secs())
    } else if e.is_connect() {
        format!("could not connect to {provider}")
    } else {
        format!("the request to {provider} failed")
    };
    SendError::Transient(format!("{what}: {}", error_chain(e)))
}

fn error_chain(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    // reqwest's own text may name the URL; keep only the scheme and host.
    match e.url() {
        Some(url) => text.replace(url.as_str(), &format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default())),
        None => text,
    }
}

/// Not sent any more when older than [`SMS_MAX_AGE_SECONDS`]: the code in it has expired.
pub fn too_old(message: &ClaimedMessage, now: i64) -> Option<SendError> {
    (message.channel == Channel::Sms && now - message.created_at > SMS_MAX_AGE_SECONDS).then(|| {
        SendError::Permanent(format!("not sent: the SMS is {} minutes old and the code in it has expired", (now - message.created_at) / 60))
    })
}

/// Writes `{mail_dir}/sms/{created_at}-{id}.json` (`{"to", "text", "message_id", "kind",
/// "created_at"}`), and a copy as `{mail_dir}/{created_at}-{id}.eml` with the subject
/// "SMS to +63 *** *** 4521", which `/dev/mailbox` lists with the emails. Both through a
/// temporary file, so a reader never sees half of one; a retry overwrites them.
async fn write_dev_outbox(mail_dir: &Path, from: &Mailbox, message: &ClaimedMessage, to: &PhoneNumber, text: &str) -> std::io::Result<()> {
    let stem = dev_outbox_stem(message);
    let json = serde_json::to_vec_pretty(&serde_json::json!({
        "to": to.e164(),
        "text": text,
        "message_id": message.id,
        "kind": message.kind,
        "created_at": message.created_at,
    }))
    .map_err(std::io::Error::other)?;
    write_atomically(&mail_dir.join("sms"), &format!("{stem}.json"), &json).await?;
    write_atomically(mail_dir, &format!("{stem}.eml"), &eml(from, message, &safe_id(message), to, text)).await
}

/// A plain-text RFC 5322 message standing for the SMS. Every header is built from values
/// checked already (a parsed phone number, a filtered id, a parsed mailbox, a number); the
/// text goes in base64, so nothing in it can start a header.
fn eml(from: &Mailbox, message: &ClaimedMessage, id: &str, to: &PhoneNumber, text: &str) -> Vec<u8> {
    use base64::Engine as _;
    let date = doorman_core::clock::rfc2822(message.created_at);
    let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    let mut body = String::new();
    for line in encoded.as_bytes().chunks(76) {
        body.push_str(&String::from_utf8_lossy(line));
        body.push_str("\r\n");
    }
    let domain = from.email.domain();
    format!(
        "From: {from}\r\nTo: <{to}>\r\nSubject: SMS to {masked}\r\nDate: {date}\r\nMessage-ID: <{id}@{domain}>\r\nX-Doorman-Channel: sms\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{body}",
        from = from,
        to = to.e164(),
        masked = to.masked(),
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use doorman_core::outbox::MessageContent;

    fn message(recipient: &str, text: &str) -> ClaimedMessage {
        ClaimedMessage {
            id: "0b6f3d4e-1111-4222-8333-444455556666".into(),
            channel: Channel::Sms,
            recipient: recipient.into(),
            kind: "verification_code".into(),
            account_id: None,
            content: MessageContent { subject: "doorman code".into(), text: text.into(), html: String::new() },
            attempts: 1,
            created_at: 1_790_000_000,
        }
    }

    fn from() -> Mailbox {
        "doorman <no-reply@doorman.test>".parse().unwrap()
    }

    fn temp() -> PathBuf {
        std::env::temp_dir().join(format!("doorman-sms-{}", uuid::Uuid::new_v4().simple()))
    }

    #[test]
    fn the_signature_covers_the_timestamp_and_the_body() {
        // Computed independently: printf '1790000000.{"a":1}' | openssl dgst -sha256 -hmac secret
        assert_eq!(sign(b"secret", 1_790_000_000, br#"{"a":1}"#), "da8fe498621aaab99d5b11c51346b13d1a2bf2914b865b8d3edd3531cab25a3e");
        assert_ne!(sign(b"secret", 1_790_000_000, b"{}"), sign(b"secret", 1_790_000_001, b"{}"));
        assert_ne!(sign(b"secret", 1_790_000_000, b"{}"), sign(b"secreT", 1_790_000_000, b"{}"));
        assert_eq!(sign(b"secret", 1, b"{}").len(), 64);
    }

    #[test]
    fn answers_are_sorted_into_sent_retried_and_refused() {
        use reqwest::StatusCode;
        assert!(classify("p", StatusCode::OK, "").is_ok());
        assert!(classify("p", StatusCode::CREATED, "").is_ok());
        for transient in [301, 408, 429, 401, 403, 500, 502, 503] {
            let err = classify("p", StatusCode::from_u16(transient).unwrap(), "").unwrap_err();
            assert!(!err.is_permanent(), "{transient}");
        }
        for permanent in [400, 404, 410, 422] {
            let err = classify("p", StatusCode::from_u16(permanent).unwrap(), " (error 21211: bad To)").unwrap_err();
            assert!(err.is_permanent(), "{permanent}");
            assert!(err.to_string().contains("21211"), "{err}");
        }
    }

    #[tokio::test]
    async fn the_dev_outbox_writes_a_json_file_and_an_eml_copy_for_the_mailbox() {
        let dir = temp();
        let transport = SmsTransport::dev_outbox(dir.clone(), &from());
        let m = message("+639171234521", "doorman code: 123456. It expires in 10 minutes.");
        transport.send(&m).await.unwrap();
        transport.send(&m).await.unwrap();

        let json = std::fs::read(dir.join("sms").join(format!("1790000000-{}.json", m.id))).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(json["to"], "+639171234521");
        assert_eq!(json["text"], "doorman code: 123456. It expires in 10 minutes.");
        assert_eq!(json["message_id"], m.id.as_str());

        let mut names: Vec<String> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names, vec![format!("1790000000-{}.eml", m.id), "sms".to_owned()], "one copy, no leftovers");

        let raw = std::fs::read(dir.join(format!("1790000000-{}.eml", m.id))).unwrap();
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert_eq!(parsed.subject(), Some("SMS to +63 *** *** 4521"));
        assert_eq!(parsed.body_text(0).unwrap().trim(), "doorman code: 123456. It expires in 10 minutes.");
        assert!(parsed.date().is_some());
        let to = parsed.to().and_then(|a| a.first()).and_then(|a| a.address());
        assert_eq!(to, Some("+639171234521"), "the mailbox page shows it as the recipient");
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn recipients_that_are_not_mobile_numbers_fail_for_good() {
        let transport = SmsTransport::dev_outbox(temp(), &from());
        for bad in ["maria@example.com", "+63 2 8123 4567", "", "+639171234521\r\nBcc: x"] {
            let err = transport.send(&message(bad, "code 123456")).await.unwrap_err();
            assert!(err.is_permanent(), "{bad:?}");
        }
        let err = transport.send(&message("+639171234521", "  ")).await.unwrap_err();
        assert!(err.is_permanent());
        let err = transport.send(&message("+639171234521", &"x".repeat(1601))).await.unwrap_err();
        assert!(err.is_permanent());
    }

    #[test]
    fn stale_codes_are_not_sent() {
        let m = message("+639171234521", "code");
        assert!(too_old(&m, m.created_at + SMS_MAX_AGE_SECONDS).is_none());
        let err = too_old(&m, m.created_at + SMS_MAX_AGE_SECONDS + 1).unwrap();
        assert!(err.is_permanent() && err.to_string().contains("expired"), "{err}");
        let email = ClaimedMessage { channel: Channel::Email, ..m };
        assert!(too_old(&email, email.created_at + 86_400).is_none());
    }
}
