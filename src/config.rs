//! Configuration, layered: defaults, then `doorman.toml` (or the file named by `--config`),
//! then `DOORMAN_*` environment variables. Unknown keys are refused, so a misspelt
//! setting fails loudly instead of being ignored.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use secrecy::SecretString;
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
    /// How SMS leave: `dev_outbox` (files in `mail_dir`), `webhook` or `twilio`. Unset: the
    /// webhook when `sms_webhook_url` is set, Twilio when `sms_twilio_account_sid` is, else
    /// the dev outbox. See `delivery::sms`.
    pub sms_provider: Option<crate::delivery::SmsProvider>,
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
            reset_token_ttl_minutes: 30,
            mail_from: "doorman <no-reply@localhost>".into(),
            mail_worker: true,
            email_codes_enabled: false,
            step_up_window_minutes: 10,
            sms_provider: None,
            sms_webhook_url: None,
            sms_webhook_secret: None,
            sms_twilio_base_url: url::Url::parse(crate::delivery::TWILIO_BASE_URL).unwrap_or_else(|_| unreachable_url()),
            sms_twilio_account_sid: None,
            sms_twilio_auth_token: None,
            sms_from: None,
            pwned_passwords_file: None,
            pwned_passwords_api: None,
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
        let mut figment =
            Figment::new().merge(Toml::file(path)).merge(Env::prefixed("DOORMAN_").ignore(&["config", "log", "test_postgres_url"]));
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
        crate::delivery::SmsSettings::from_config(self).map_err(ConfigError::Invalid)?;
        crate::breached::validate_config(self).map_err(ConfigError::Invalid)?;
        if !(1..=300).contains(&self.header_read_timeout_seconds) {
            return Err(ConfigError::Invalid("header_read_timeout_seconds must be between 1 and 300".into()));
        }
        if self.session_idle_timeout_minutes < 1 || self.session_absolute_timeout_hours < 1 {
            return Err(ConfigError::Invalid("session timeouts must be positive".into()));
        }
        if !(self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid("database_url must be a sqlite: or postgres:// URL".into()));
        }
        Ok(())
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
            "listen = {}\ndatabase_url = {}\nbase_url = {}\nmail_dir = {}\nsmtp_url = {}\nsecret_key = {}\nsecret_key_file = {}\nsession_idle_timeout_minutes = {}\nsession_absolute_timeout_hours = {}\nreset_token_ttl_minutes = {}\nmail_from = {}\nmail_worker = {}\nemail_codes_enabled = {}\nstep_up_window_minutes = {}\npassword_min_length = {}\nproduct_name = {}\nclient_ip_header = {}\ncountry_header = {}\nmax_body_bytes = {}\nheader_read_timeout_seconds = {}\nmax_connections_per_address = {}\n{}{}",
            self.listen,
            redact_url(&self.database_url),
            self.base_url,
            self.mail_dir.display(),
            self.smtp_url.as_deref().map(redact_url).unwrap_or_else(|| "(none: dev outbox)".into()),
            if self.secret_key.is_some() { "(set)" } else { "(not set: read from secret_key_file)" },
            self.secret_key_file.display(),
            self.session_idle_timeout_minutes,
            self.session_absolute_timeout_hours,
            self.reset_token_ttl_minutes,
            self.mail_from,
            self.mail_worker,
            self.email_codes_enabled,
            self.step_up_window_minutes,
            self.password_min_length,
            self.product_name,
            self.client_ip_header.as_deref().unwrap_or("(none: TCP peer address)"),
            self.country_header.as_deref().unwrap_or("(none: anonymous visitors have no country)"),
            self.max_body_bytes,
            self.header_read_timeout_seconds,
            if self.max_connections_per_address == 0 { "0 (no cap)".to_owned() } else { self.max_connections_per_address.to_string() },
            crate::delivery::sms::describe_config(self),
            crate::breached::describe_config(self),
        )
    }
}

/// Hides a password in a URL before it is printed.
fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => raw.to_owned(),
    }
}
