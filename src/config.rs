//! Configuration, layered: defaults, then `doorman.toml` (or the file named by `--config`),
//! then `DOORMAN_*` environment variables. Unknown keys are refused, so a misspelt
//! setting fails loudly instead of being ignored.
//!
//! A `Config` is the flat list of settings as an operator writes them; the parts of doorman
//! that need a group of them take it parsed and checked, as a type of [`crate::settings`]
//! ([`Config::mail`], [`Config::sms`], [`Config::breached`]).

use crate::settings::{BreachedSettings, MailSettings, Query, SmsProvider, SmsSettings, redacted, redacted_text};
use doorman_core::retention::{RETAIN_DAYS_RANGE, RetentionPolicy};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use lettre::message::Mailbox;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// `sqlite://PATH?mode=rwc` or `postgres://USER@HOST:PORT/DB`.
    pub database_url: String,
    /// The public URL of this server; every emailed link is built from it, never from the
    /// request's Host header. `https://` turns on Secure and `__Host-` cookies and HSTS.
    pub base_url: url::Url,
    /// Where the dev mail outbox writes `.eml` files when no SMTP server is configured.
    pub mail_dir: PathBuf,
    /// `smtp://`, `smtps://` or `smtp://...?tls=starttls`; unset: the dev outbox in `mail_dir`.
    pub smtp_url: Option<String>,
    /// The server secret (at least 32 bytes) that keys stored hashes of sessions and tokens.
    /// Every replica must share it.
    pub secret_key: Option<SecretString>,
    /// A file holding the secret key; created with a random key when missing.
    pub secret_key_file: PathBuf,
    pub session_idle_timeout_minutes: i64,
    pub session_absolute_timeout_hours: i64,
    /// Minimum password length in characters (8 to 64).
    pub password_min_length: usize,
    /// Shown in pages and emails, and refused inside passwords.
    pub product_name: String,
    /// A header set by a trusted reverse proxy that carries the client address
    /// (e.g. `X-Real-IP`). Unset: the TCP peer address is the client.
    pub client_ip_header: Option<String>,
    /// A header set by a trusted reverse proxy or CDN that carries the visitor's country as
    /// an ISO 3166-1 alpha-2 code (e.g. `CF-IPCountry`), used to target banners at anonymous
    /// visitors. Unset: anonymous visitors have no country, and no client header is read.
    pub country_header: Option<String>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// How long a connection has to send a whole request head (request line and headers),
    /// from its start or its previous answer, in seconds (1 to 300); then it is closed.
    pub header_read_timeout_seconds: u64,
    /// Connections open at once from one TCP peer address (an IPv6 one by its /64); more are
    /// closed at once. 0: no cap. Behind a reverse proxy every connection comes from the proxy.
    pub max_connections_per_address: usize,
    /// Password checks that may wait for a hashing thread (one thread per CPU) before more
    /// are refused at once with 503 `overloaded`. Unset: 4 per CPU.
    pub hash_queue: Option<usize>,
    /// Database connections this process keeps open at most (2 to 1000). Unset: 8 on SQLite,
    /// 16 on PostgreSQL. Every replica keeps its own, and on PostgreSQL their sum must stay
    /// under the server's `max_connections` (100 by default).
    pub database_pool: Option<u32>,
    /// How long a password-reset link and code stay valid, in minutes (1 to 60).
    pub reset_token_ttl_minutes: i64,
    /// The From of every email, e.g. `doorman <no-reply@example.com>`.
    pub mail_from: String,
    /// Whether this process runs the delivery and job workers (turn off on replicas that
    /// should only serve requests; at least one process must run them).
    pub mail_worker: bool,
    /// Offer email codes as a 2-step method (the weakest; off by default).
    pub email_codes_enabled: bool,
    /// How recent a verification must be before security settings and payments, in minutes.
    pub step_up_window_minutes: i64,
    /// How long a confirmed 2-step reset waits before it can be finished, in minutes (1 to
    /// 20160, default 4320: 72 hours).
    pub two_step_reset_wait_minutes: i64,
    /// How long an approved two-person support action waits before it applies (issue 11 §6).
    pub support_change_delay_minutes: i64,
    /// The proof of work of the recovery request form (issue 11 §3), in leading zero bits of
    /// SHA-256 (0 to 28, default 16: about a second in a browser; each bit doubles it; 0
    /// turns it off, for tests).
    pub proof_of_work_bits: u8,
    /// How SMS leave: `dev_outbox` (files in `mail_dir`), `webhook` or `twilio`. Unset: the
    /// webhook when `sms_webhook_url` is set, Twilio when `sms_twilio_account_sid` is, else
    /// the dev outbox. See `delivery::sms`.
    pub sms_provider: Option<SmsProvider>,
    /// The URL SMS are POSTed to as signed JSON (`webhook` provider).
    pub sms_webhook_url: Option<url::Url>,
    /// The key of the webhook's HMAC-SHA256 signature (16+ characters).
    pub sms_webhook_secret: Option<SecretString>,
    /// The Twilio-compatible API's base URL.
    pub sms_twilio_base_url: url::Url,
    pub sms_twilio_account_sid: Option<String>,
    pub sms_twilio_auth_token: Option<SecretString>,
    /// The sending number or sender id (`twilio` provider).
    pub sms_from: Option<String>,
    /// The HIBP "ordered by hash" SHA-1 file: new passwords found in it are refused (S4.4).
    pub pwned_passwords_file: Option<PathBuf>,
    /// The Pwned Passwords range API (e.g. `https://api.pwnedpasswords.com`): only the first 5
    /// hex characters of a new password's SHA-1 are sent (k-anonymity). Not with the file.
    pub pwned_passwords_api: Option<url::Url>,
    /// Days finished jobs and sent or dead-lettered messages are kept (1 to 36500, default 7).
    pub retain_finished_days: i64,
    /// Days audit events are kept (1 to 36500, default 365); the chain still verifies.
    pub retain_audit_days: i64,
    /// Days a resolved support case keeps its personal data (1 to 36500, default 180).
    pub retain_cases_days: i64,
    /// Seconds between two reloads of the keyring on every replica (1 to 3600, default 30).
    /// `doorman key rotate` activates a new key no sooner than this plus a margin, so every
    /// replica knows a key before anything is made with it. All replicas must share it.
    pub keyring_reload_seconds: i64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: "sqlite://doorman-data/doorman.db?mode=rwc".into(),
            base_url: url::Url::parse("http://127.0.0.1:8080/").unwrap_or_else(|_| unreachable_url()),
            mail_dir: PathBuf::from("doorman-data/mail"),
            smtp_url: None,
            secret_key: None,
            secret_key_file: PathBuf::from("doorman-data/secret.key"),
            session_idle_timeout_minutes: 30,
            session_absolute_timeout_hours: 12,
            password_min_length: 12,
            product_name: "doorman".into(),
            client_ip_header: None,
            country_header: None,
            max_body_bytes: 64 * 1024,
            header_read_timeout_seconds: 10,
            max_connections_per_address: 64,
            hash_queue: None,
            database_pool: None,
            reset_token_ttl_minutes: 30,
            mail_from: "doorman <no-reply@localhost>".into(),
            mail_worker: true,
            email_codes_enabled: false,
            step_up_window_minutes: 10,
            two_step_reset_wait_minutes: 4320,
            support_change_delay_minutes: 1440,
            proof_of_work_bits: 16,
            sms_provider: None,
            sms_webhook_url: None,
            sms_webhook_secret: None,
            sms_twilio_base_url: url::Url::parse(crate::settings::TWILIO_BASE_URL).unwrap_or_else(|_| unreachable_url()),
            sms_twilio_account_sid: None,
            sms_twilio_auth_token: None,
            sms_from: None,
            pwned_passwords_file: None,
            pwned_passwords_api: None,
            retain_finished_days: RetentionPolicy::default().finished_days,
            retain_audit_days: RetentionPolicy::default().audit_days,
            retain_cases_days: RetentionPolicy::default().cases_days,
            keyring_reload_seconds: 30,
        }
    }
}

/// Settings read from the environment as text, whatever they look like.
const TEXT_KEYS: [&str; 6] =
    ["sms_from", "sms_twilio_account_sid", "sms_twilio_auth_token", "sms_webhook_secret", "secret_key", "product_name"];

#[allow(clippy::panic)]
fn unreachable_url() -> url::Url {
    panic!("the default base URL is a valid URL")
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Invalid(String),
    #[error(transparent)]
    Figment(#[from] Box<figment::Error>),
}

impl Config {
    /// Defaults, then the TOML file (if it exists), then `DOORMAN_*` variables.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let default_file = PathBuf::from("doorman.toml");
        let path = file.unwrap_or(&default_file);
        if file.is_some() && !path.exists() {
            return Err(ConfigError::Invalid(format!("the configuration file {} does not exist", path.display())));
        }
        // `DOORMAN_TEST_*` are the test suite's knobs (README, "Run every test"), which the
        // `doorman` processes the tests start inherit.
        const NOT_SETTINGS: [&str; 5] = ["config", "log", "test_postgres_url", "test_kill_moments", "test_pg_bin"];
        let mut figment = Figment::new().merge(Toml::file(path)).merge(Env::prefixed("DOORMAN_").ignore(&NOT_SETTINGS));
        // Text even when it looks like a number: `DOORMAN_SMS_FROM=+15005550006` would
        // otherwise be read as the integer 15005550006.
        for (key, value) in Env::prefixed("DOORMAN_").only(&TEXT_KEYS).iter() {
            figment = figment.merge(Serialized::default(key.as_str(), value));
        }
        let config: Config = figment.extract().map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(8..=64).contains(&self.password_min_length) {
            return Err(ConfigError::Invalid("password_min_length must be between 8 and 64".into()));
        }
        if !matches!(self.base_url.scheme(), "http" | "https") {
            return Err(ConfigError::Invalid("base_url must start with http:// or https://".into()));
        }
        if !(1..=60).contains(&self.reset_token_ttl_minutes) {
            return Err(ConfigError::Invalid("reset_token_ttl_minutes must be between 1 and 60".into()));
        }
        if self.client_ip_header.as_deref().is_some_and(|h| http::HeaderName::try_from(h).is_err()) {
            return Err(ConfigError::Invalid("client_ip_header must be a valid HTTP header name".into()));
        }
        if self.country_header.as_deref().is_some_and(|h| http::HeaderName::try_from(h).is_err()) {
            return Err(ConfigError::Invalid("country_header must be a valid HTTP header name".into()));
        }
        if !(1..=60).contains(&self.step_up_window_minutes) {
            return Err(ConfigError::Invalid("step_up_window_minutes must be between 1 and 60".into()));
        }
        if self.proof_of_work_bits > doorman_core::proof_of_work::MAX_BITS {
            return Err(ConfigError::Invalid("proof_of_work_bits must be between 0 and 28".into()));
        }
        if !(1..=20160).contains(&self.two_step_reset_wait_minutes) {
            return Err(ConfigError::Invalid("two_step_reset_wait_minutes must be between 1 and 20160".into()));
        }
        if !(1..=10080).contains(&self.support_change_delay_minutes) {
            return Err(ConfigError::Invalid("support_change_delay_minutes must be between 1 and 10080".into()));
        }
        self.sms().map_err(ConfigError::Invalid)?;
        self.breached().map_err(ConfigError::Invalid)?;
        if !(1..=300).contains(&self.header_read_timeout_seconds) {
            return Err(ConfigError::Invalid("header_read_timeout_seconds must be between 1 and 300".into()));
        }
        if self.database_pool.is_some_and(|n| !(2..=1000).contains(&n)) {
            return Err(ConfigError::Invalid("database_pool must be between 2 and 1000 connections".into()));
        }
        if !(1..=3600).contains(&self.keyring_reload_seconds) {
            return Err(ConfigError::Invalid("keyring_reload_seconds must be between 1 and 3600".into()));
        }
        if self.session_idle_timeout_minutes < 1 || self.session_absolute_timeout_hours < 1 {
            return Err(ConfigError::Invalid("session timeouts must be positive".into()));
        }
        for (name, days) in [
            ("retain_finished_days", self.retain_finished_days),
            ("retain_audit_days", self.retain_audit_days),
            ("retain_cases_days", self.retain_cases_days),
        ] {
            if !RETAIN_DAYS_RANGE.contains(&days) {
                return Err(ConfigError::Invalid(format!(
                    "{name} must be between {} and {} days, not {days}",
                    RETAIN_DAYS_RANGE.start(),
                    RETAIN_DAYS_RANGE.end()
                )));
            }
        }
        if !(self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid("database_url must be a sqlite: or postgres:// URL".into()));
        }
        Ok(())
    }

    /// How long finished, expired and personal data are kept.
    pub fn retention(&self) -> RetentionPolicy {
        RetentionPolicy { finished_days: self.retain_finished_days, audit_days: self.retain_audit_days, cases_days: self.retain_cases_days }
    }

    pub fn is_https(&self) -> bool {
        self.base_url.scheme() == "https"
    }

    /// The base URL's origin (`scheme://host:port`), against which `Origin` headers are checked.
    pub fn origin(&self) -> String {
        self.base_url.origin().ascii_serialization()
    }

    /// The settings as `doorman config check` prints them, secrets hidden.
    pub fn describe(&self) -> String {
        format!(
            "listen = {}\ndatabase_url = {}\nbase_url = {}\nmail_dir = {}\nsmtp_url = {}\nsecret_key = {}\nsecret_key_file = {}\nsession_idle_timeout_minutes = {}\nsession_absolute_timeout_hours = {}\nreset_token_ttl_minutes = {}\nmail_from = {}\nmail_worker = {}\nemail_codes_enabled = {}\nstep_up_window_minutes = {}\ntwo_step_reset_wait_minutes = {}\nsupport_change_delay_minutes = {}\nproof_of_work_bits = {}\npassword_min_length = {}\nproduct_name = {}\nclient_ip_header = {}\ncountry_header = {}\nmax_body_bytes = {}\nheader_read_timeout_seconds = {}\nmax_connections_per_address = {}\nhash_queue = {}\ndatabase_pool = {}\nretain_finished_days = {}\nretain_audit_days = {}\nretain_cases_days = {}\nkeyring_reload_seconds = {}\n{}{}",
            self.listen,
            redacted_text(&self.database_url),
            self.base_url,
            self.mail_dir.display(),
            self.smtp_url.as_deref().map(redacted_text).unwrap_or_else(|| "(none: dev outbox)".into()),
            if self.secret_key.is_some() { "(set)" } else { "(not set: read from secret_key_file)" },
            self.secret_key_file.display(),
            self.session_idle_timeout_minutes,
            self.session_absolute_timeout_hours,
            self.reset_token_ttl_minutes,
            self.mail_from,
            self.mail_worker,
            self.email_codes_enabled,
            self.step_up_window_minutes,
            self.two_step_reset_wait_minutes,
            self.support_change_delay_minutes,
            self.proof_of_work_bits,
            self.password_min_length,
            self.product_name,
            self.client_ip_header.as_deref().unwrap_or("(none: TCP peer address)"),
            self.country_header.as_deref().unwrap_or("(none: anonymous visitors have no country)"),
            self.max_body_bytes,
            self.header_read_timeout_seconds,
            if self.max_connections_per_address == 0 { "0 (no cap)".to_owned() } else { self.max_connections_per_address.to_string() },
            self.hash_queue.map_or_else(
                || format!("{} (4 per CPU)", 4 * std::thread::available_parallelism().map_or(2, |n| n.get())),
                |q| q.to_string()
            ),
            self.database_pool.map_or_else(
                || format!(
                    "{} (the default for {})",
                    crate::store::default_pool_size(&self.database_url),
                    self.database_url.split(':').next().unwrap_or("")
                ),
                |n| n.to_string()
            ),
            self.retain_finished_days,
            self.retain_audit_days,
            self.retain_cases_days,
            self.keyring_reload_seconds,
            self.describe_sms(),
            self.describe_breached(),
        )
    }

    /// How email leaves. Fails on a `mail_from` that is not a mailbox (checked when the
    /// server starts, not by `config check`).
    pub fn mail(&self) -> anyhow::Result<MailSettings> {
        let from: Mailbox = self.mail_from.parse().map_err(|e| {
            anyhow::anyhow!("mail_from {:?} is not an address such as `doorman <no-reply@example.com>`: {e}", self.mail_from)
        })?;
        Ok(MailSettings { from, smtp_url: self.smtp_url.clone(), mail_dir: self.mail_dir.clone() })
    }

    /// The configured SMS provider: `sms_provider` when set; else the webhook when
    /// `sms_webhook_url` is set, Twilio when `sms_twilio_account_sid` is, and `None` when
    /// neither is: no provider, so no SMS (both set is an error: say which with
    /// `sms_provider`). Every setting the provider needs must be there. The dev outbox only
    /// when asked for by name.
    pub fn sms(&self) -> Result<Option<SmsSettings>, String> {
        let provider = match self.sms_provider {
            Some(provider) => provider,
            None => match (&self.sms_webhook_url, &self.sms_twilio_account_sid) {
                (Some(_), Some(_)) => {
                    return Err("both sms_webhook_url and sms_twilio_account_sid are set: choose one with sms_provider".into());
                }
                (Some(_), None) => SmsProvider::Webhook,
                (None, Some(_)) => SmsProvider::Twilio,
                (None, None) => return Ok(None),
            },
        };
        self.sms_for(provider).map(Some)
    }

    /// What a server sends SMS with: the configured provider; without one, the dev outbox
    /// under `serve --demo`, and nothing otherwise.
    pub fn sms_for_server(&self, demo: bool) -> Result<Option<SmsSettings>, String> {
        match self.sms()? {
            None if demo => Ok(Some(SmsSettings::DevOutbox { mail_dir: self.mail_dir.clone() })),
            settings => Ok(settings),
        }
    }

    fn sms_for(&self, provider: SmsProvider) -> Result<SmsSettings, String> {
        match provider {
            SmsProvider::DevOutbox => Ok(SmsSettings::DevOutbox { mail_dir: self.mail_dir.clone() }),
            SmsProvider::Webhook => {
                let url = self.sms_webhook_url.clone().ok_or("sms_provider webhook needs sms_webhook_url")?;
                check_http_url("sms_webhook_url", &url)?;
                let secret = self.sms_webhook_secret.clone().ok_or("sms_provider webhook needs sms_webhook_secret")?;
                if secret.expose_secret().trim().len() < MIN_WEBHOOK_SECRET_BYTES {
                    return Err(format!("sms_webhook_secret must be at least {MIN_WEBHOOK_SECRET_BYTES} characters"));
                }
                Ok(SmsSettings::Webhook { url, secret })
            }
            SmsProvider::Twilio => {
                let base_url = self.sms_twilio_base_url.clone();
                check_http_url("sms_twilio_base_url", &base_url)?;
                let account_sid = self.sms_twilio_account_sid.clone().unwrap_or_default().trim().to_owned();
                if account_sid.is_empty() {
                    return Err("sms_provider twilio needs sms_twilio_account_sid".into());
                }
                if !account_sid.chars().all(|c| c.is_ascii_alphanumeric()) {
                    return Err("sms_twilio_account_sid has letters and digits only (AC...)".into());
                }
                let auth_token = self.sms_twilio_auth_token.clone().ok_or("sms_provider twilio needs sms_twilio_auth_token")?;
                if auth_token.expose_secret().trim().is_empty() {
                    return Err("sms_twilio_auth_token is empty".into());
                }
                let from = self.sms_from.clone().unwrap_or_default().trim().to_owned();
                if from.is_empty() {
                    return Err("sms_provider twilio needs sms_from (the sending number, such as +15005550006)".into());
                }
                if from.chars().any(char::is_control) {
                    return Err("sms_from holds a control character".into());
                }
                Ok(SmsSettings::Twilio { base_url, account_sid, auth_token, from })
            }
        }
    }

    /// The SMS lines of `doorman config check`, secrets hidden.
    fn describe_sms(&self) -> String {
        let set = |s: &Option<SecretString>| if s.is_some() { "(set)" } else { "(not set)" };
        let provider = match self.sms() {
            Ok(None) => "(unset: none, so no SMS method is offered; `serve --demo` uses the dev outbox)".to_owned(),
            Ok(Some(settings)) if self.sms_provider.is_none() => format!("(unset: {})", settings.provider().as_str()),
            Ok(Some(SmsSettings::DevOutbox { .. })) => {
                "dev_outbox (codes are written to files in mail_dir, never sent: development only)".to_owned()
            }
            Ok(Some(settings)) => settings.provider().as_str().to_owned(),
            Err(e) => format!("(invalid: {e})"),
        };
        format!(
            "sms_provider = {provider}\nsms_webhook_url = {}\nsms_webhook_secret = {}\nsms_twilio_base_url = {}\nsms_twilio_account_sid = {}\nsms_twilio_auth_token = {}\nsms_from = {}\n",
            self.sms_webhook_url.as_ref().map(|u| redacted(u, Query::Hide)).unwrap_or_else(|| "(none)".into()),
            set(&self.sms_webhook_secret),
            redacted(&self.sms_twilio_base_url, Query::Hide),
            self.sms_twilio_account_sid.as_deref().unwrap_or("(none)"),
            set(&self.sms_twilio_auth_token),
            self.sms_from.as_deref().unwrap_or("(none)"),
        )
    }

    /// The Pwned Passwords check: the file or the range API, never both.
    pub fn breached(&self) -> Result<BreachedSettings, String> {
        match (&self.pwned_passwords_file, &self.pwned_passwords_api) {
            (Some(_), Some(_)) => Err("set pwned_passwords_file or pwned_passwords_api, not both".into()),
            (Some(file), None) => Ok(BreachedSettings::File(file.clone())),
            (None, Some(api)) => {
                if !matches!(api.scheme(), "http" | "https") || api.cannot_be_a_base() || api.query().is_some() {
                    return Err("pwned_passwords_api must be an http(s) base URL such as https://api.pwnedpasswords.com".into());
                }
                Ok(BreachedSettings::Api(api.clone()))
            }
            (None, None) => Ok(BreachedSettings::Off),
        }
    }

    /// The Pwned Passwords lines of `doorman config check`.
    fn describe_breached(&self) -> String {
        let file = self.pwned_passwords_file.as_ref().map(|p| p.display().to_string());
        let api = self.pwned_passwords_api.as_ref().map(|u| redacted(u, Query::Keep));
        let off = "(none: only the shipped common list)";
        format!("pwned_passwords_file = {}\npwned_passwords_api = {}\n", file.as_deref().unwrap_or(off), api.as_deref().unwrap_or(off))
    }
}

/// The shortest webhook secret accepted, in bytes.
const MIN_WEBHOOK_SECRET_BYTES: usize = 16;

fn check_http_url(name: &str, url: &url::Url) -> Result<(), String> {
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("{name} must be an https:// URL"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_provider_is_chosen_from_what_is_configured() {
        // Nothing configured: no SMS at all, except under `serve --demo` (issue 8).
        let base = Config::default();
        assert!(base.sms().unwrap().is_none());
        assert!(base.sms_for_server(false).unwrap().is_none());
        assert_eq!(base.sms_for_server(true).unwrap().unwrap().provider(), SmsProvider::DevOutbox);
        let explicit = Config { sms_provider: Some(SmsProvider::DevOutbox), ..Config::default() };
        assert_eq!(explicit.sms_for_server(false).unwrap().unwrap().provider(), SmsProvider::DevOutbox);
        let webhook = Config {
            sms_webhook_url: Some(url::Url::parse("https://sms.example.com/hook").unwrap()),
            sms_webhook_secret: Some(SecretString::from("0123456789abcdef-secret")),
            ..Config::default()
        };
        assert_eq!(webhook.sms().unwrap().unwrap().provider(), SmsProvider::Webhook);
        assert_eq!(webhook.sms_for_server(true).unwrap().unwrap().provider(), SmsProvider::Webhook, "demo keeps a real provider");
        let twilio = Config {
            sms_twilio_account_sid: Some("AC0123".into()),
            sms_twilio_auth_token: Some(SecretString::from("token-value")),
            sms_from: Some("+15005550006".into()),
            ..Config::default()
        };
        assert_eq!(twilio.sms().unwrap().unwrap().provider(), SmsProvider::Twilio);
        // Both: the operator must choose; then the other's settings are ignored.
        let both = Config { sms_webhook_url: webhook.sms_webhook_url.clone(), ..twilio.clone() };
        assert!(both.sms().unwrap_err().contains("sms_provider"));
        let chosen = Config { sms_provider: Some(SmsProvider::Twilio), ..both };
        assert_eq!(chosen.sms().unwrap().unwrap().provider(), SmsProvider::Twilio);

        for (broken, complaint) in [
            (Config { sms_webhook_secret: None, ..webhook.clone() }, "sms_webhook_secret"),
            (Config { sms_webhook_secret: Some(SecretString::from("short")), ..webhook.clone() }, "16 characters"),
            (Config { sms_webhook_url: Some(url::Url::parse("ftp://x.example/").unwrap()), ..webhook.clone() }, "https://"),
            (Config { sms_provider: Some(SmsProvider::Webhook), ..base.clone() }, "sms_webhook_url"),
            (Config { sms_from: None, ..twilio.clone() }, "sms_from"),
            (Config { sms_twilio_auth_token: None, ..twilio.clone() }, "sms_twilio_auth_token"),
            (Config { sms_twilio_account_sid: Some("AC/../x".into()), ..twilio.clone() }, "letters and digits"),
        ] {
            let error = broken.sms().err().unwrap_or_default();
            assert!(error.contains(complaint), "{complaint}: {error}");
            assert!(broken.validate().is_err(), "{complaint}: config check refuses it");
        }
    }

    #[test]
    fn config_check_hides_the_sms_secrets() {
        let config = Config {
            sms_webhook_url: Some(url::Url::parse("https://sms.example.com/hook?key=k3y").unwrap()),
            sms_webhook_secret: Some(SecretString::from("0123456789abcdef-s3cret")),
            sms_twilio_auth_token: Some(SecretString::from("t0ken")),
            ..Config::default()
        };
        let text = config.describe();
        assert!(text.contains("sms_provider = (unset: webhook)") && text.contains("sms_webhook_secret = (set)"), "{text}");
        for secret in ["k3y", "s3cret", "t0ken"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }

    #[test]
    fn retention_days_are_checked_at_start_up() {
        let config = Config::default();
        assert_eq!(config.retention(), RetentionPolicy { finished_days: 7, audit_days: 365, cases_days: 180 });
        assert!(config.describe().contains("retain_audit_days = 365"));
        for (broken, name) in [
            (Config { retain_finished_days: 0, ..Config::default() }, "retain_finished_days"),
            (Config { retain_audit_days: -1, ..Config::default() }, "retain_audit_days"),
            (Config { retain_cases_days: 36_501, ..Config::default() }, "retain_cases_days"),
        ] {
            let error = broken.validate().unwrap_err().to_string();
            assert!(error.contains(name) && error.contains("between 1 and 36500"), "{error}");
        }
        assert!(Config { retain_finished_days: 1, retain_cases_days: 36_500, ..Config::default() }.validate().is_ok());
    }

    #[test]
    fn the_breach_check_takes_one_way_or_none() {
        let mut config = Config::default();
        assert_eq!(config.breached(), Ok(BreachedSettings::Off));
        assert!(config.describe().contains("pwned_passwords_api = (none"));
        config.pwned_passwords_api = Some(url::Url::parse("https://api.pwnedpasswords.com").unwrap());
        assert!(matches!(config.breached(), Ok(BreachedSettings::Api(_))));
        config.pwned_passwords_file = Some(PathBuf::from("/data/pwned.txt"));
        assert!(config.breached().unwrap_err().contains("not both"));
        config.pwned_passwords_api = None;
        assert_eq!(config.breached(), Ok(BreachedSettings::File(PathBuf::from("/data/pwned.txt"))));
        config.pwned_passwords_file = None;
        config.pwned_passwords_api = Some(url::Url::parse("ftp://example.com").unwrap());
        assert!(config.breached().is_err());
        assert!(config.validate().is_err(), "config check refuses it");
    }

    /// Property tests of the configuration file parser (issue 13): whatever the file holds,
    /// loading it gives a checked configuration or an error, never a panic.
    mod properties {
        use super::*;
        use proptest::prelude::*;

        const KEYS: [&str; 16] = [
            "listen",
            "database_url",
            "base_url",
            "mail_dir",
            "smtp_url",
            "secret_key",
            "session_idle_timeout_minutes",
            "password_min_length",
            "client_ip_header",
            "max_body_bytes",
            "reset_token_ttl_minutes",
            "mail_from",
            "mail_worker",
            "proof_of_work_bits",
            "sms_provider",
            "pwned_passwords_api",
        ];

        /// A value as TOML writes it: numbers at and past their limits, booleans, and strings
        /// with control characters, quotes and look-alikes.
        fn value() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<i64>().prop_map(|n| n.to_string()),
                (0u64..100).prop_map(|n| n.to_string()),
                Just("true".to_owned()),
                Just("1e400".to_owned()),
                "[ -~\\u{0}-\\u{1f}а-я]{0,30}".prop_map(|s| format!("{s:?}")),
                Just("\"http://127.0.0.1:8080\"".to_owned()),
                Just("[1, 2]".to_owned()),
                Just("{ a = 1 }".to_owned()),
            ]
        }

        fn toml_file() -> impl Strategy<Value = String> {
            let line = (prop::sample::select(KEYS.to_vec()), value()).prop_map(|(key, value)| format!("{key} = {value}\n"));
            prop_oneof![prop::collection::vec(line, 0..6).prop_map(|lines| lines.concat()), any::<String>()]
        }

        proptest! {
            #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(64) })]

            #[test]
            fn any_configuration_file_loads_checked_or_is_refused(text in toml_file()) {
                let dir = std::env::temp_dir().join(format!("doorman-config-{}", uuid::Uuid::new_v4().simple()));
                std::fs::create_dir_all(&dir).unwrap();
                let path = dir.join("doorman.toml");
                std::fs::write(&path, &text).unwrap();
                let loaded = Config::load(Some(&path));
                std::fs::remove_dir_all(&dir).unwrap();
                if let Ok(config) = loaded {
                    prop_assert!(config.validate().is_ok());
                    let _ = config.describe();
                }
            }
        }
    }
}
