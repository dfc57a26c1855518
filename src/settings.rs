//! The typed settings the parts of doorman take, parsed from the configuration by
//! `config.rs`: how mail leaves ([`MailSettings`]), how SMS leave ([`SmsSettings`]) and
//! how new passwords are checked against breaches ([`BreachedSettings`]). A value of these
//! types has been checked already; delivery and the breach check take them and never see the
//! `Config`. This module depends on no other part of doorman, so configuration, delivery and
//! the breach check all depend on it and not on each other.

use lettre::message::Mailbox;
use secrecy::SecretString;
use serde::Deserialize;
use std::path::PathBuf;

/// The default base URL of the Twilio-compatible provider.
pub const TWILIO_BASE_URL: &str = "https://api.twilio.com";

/// How email leaves: by SMTP when `smtp_url` is set, else as files in the dev outbox.
#[derive(Clone)]
pub struct MailSettings {
    /// The `From` of every email (and of the dev outbox's SMS copies).
    pub from: Mailbox,
    /// `smtp://`, `smtps://` or `smtp://...?tls=starttls`, possibly with a password; read by
    /// the transport, which knows which URLs its SMTP client takes.
    pub smtp_url: Option<String>,
    /// The dev outbox, used when there is no SMTP URL.
    pub mail_dir: PathBuf,
}

// By hand: the SMTP URL may hold a password.
impl std::fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field("from", &self.from.to_string())
            .field("smtp", &self.smtp_url.is_some())
            .field("mail_dir", &self.mail_dir)
            .finish()
    }
}

/// Which provider sends SMS (`sms_provider`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmsProvider {
    DevOutbox,
    Webhook,
    Twilio,
}

impl SmsProvider {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::DevOutbox => "dev_outbox",
            Self::Webhook => "webhook",
            Self::Twilio => "twilio",
        }
    }
}

/// The SMS provider and everything it needs, resolved and checked.
#[derive(Clone)]
pub enum SmsSettings {
    DevOutbox { mail_dir: PathBuf },
    Webhook { url: url::Url, secret: SecretString },
    Twilio { base_url: url::Url, account_sid: String, auth_token: SecretString, from: String },
}

impl SmsSettings {
    pub fn provider(&self) -> SmsProvider {
        match self {
            Self::DevOutbox { .. } => SmsProvider::DevOutbox,
            Self::Webhook { .. } => SmsProvider::Webhook,
            Self::Twilio { .. } => SmsProvider::Twilio,
        }
    }
}

// By hand: only the provider, no URL (its query may hold a key) and no secret.
impl std::fmt::Debug for SmsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SmsSettings").field(&self.provider()).finish()
    }
}

/// The Pwned Passwords check of new passwords (S4.4): one way, or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreachedSettings {
    /// Only the shipped list of common passwords.
    Off,
    /// HIBP's SHA-1 "ordered by hash" file.
    File(PathBuf),
    /// The k-anonymity range API at this base URL.
    Api(url::Url),
}

/// Whether [`redacted`] keeps a URL's query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    Keep,
    /// For URLs whose query may hold a key (SMS webhooks and providers).
    Hide,
}

/// A URL as logs and `doorman config check` may show it: its password replaced by `***`,
/// and with [`Query::Hide`] its query too. The one place a URL is redacted.
pub fn redacted(url: &url::Url, query: Query) -> String {
    let mut url = url.clone();
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    if query == Query::Hide && url.query().is_some() {
        url.set_query(Some("***"));
    }
    url.to_string()
}

/// [`redacted`] for a URL kept as text (its query kept): text with no password, a URL or
/// not, is shown exactly as written.
pub fn redacted_text(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(url) if url.password().is_some() => redacted(&url, Query::Keep),
        _ => raw.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_passwords_and_keys() {
        let url = url::Url::parse("https://user:pw@sms.example.com/hook?key=abc").unwrap();
        assert_eq!(redacted(&url, Query::Hide), "https://user:***@sms.example.com/hook?***");
        assert_eq!(redacted(&url, Query::Keep), "https://user:***@sms.example.com/hook?key=abc");
        let plain = url::Url::parse("https://api.pwnedpasswords.com/").unwrap();
        assert_eq!(redacted(&plain, Query::Hide), "https://api.pwnedpasswords.com/");
        assert_eq!(redacted_text("postgres://doorman:s3cret@db:5432/doorman"), "postgres://doorman:***@db:5432/doorman");
        assert_eq!(redacted_text("sqlite://doorman.db?mode=rwc"), "sqlite://doorman.db?mode=rwc");
        assert_eq!(redacted_text("not a url"), "not a url");
    }
}
