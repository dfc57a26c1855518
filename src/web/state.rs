//! What every handler reaches: one service per feature, the shared key and clock, and the
//! settings fixed at start-up.

use crate::config::Config;
use axum::http::HeaderName;
use doorman_core::auth::Auth;
use doorman_core::clock::Clock;
use doorman_core::compromise::Compromise;
use doorman_core::content::Content;
use doorman_core::deps::Deps;
use doorman_core::email_change::EmailChange;
use doorman_core::keyring::Keyring;
use doorman_core::password_change::PasswordChange;
use doorman_core::payments::Payments;
use doorman_core::recovery::Recovery;
use doorman_core::recovery_request::RecoveryRequests;
use doorman_core::roles::Roles;
use doorman_core::services::Services;
use doorman_core::two_step::TwoStep;
use std::sync::Arc;

/// Settings the web layer reads on every request, fixed at start-up.
#[derive(Debug)]
pub struct WebSettings {
    pub origin: String,
    pub secure_cookies: bool,
    pub demo: bool,
    pub product_name: String,
    pub client_ip_header: Option<HeaderName>,
    /// The trusted proxy's country header (banner targeting of anonymous visitors, S12.2).
    pub country_header: Option<HeaderName>,
    pub session_cookie: &'static str,
    pub pre_session_cookie: &'static str,
    /// Trusted-device cookies are named this, then a tag of their account (S3.9).
    pub device_cookie_prefix: &'static str,
    pub max_body_bytes: usize,
    /// The dev outbox, listed at /dev/mailbox in demo mode.
    pub mail_dir: std::path::PathBuf,
}

impl WebSettings {
    pub fn from_config(config: &Config, demo: bool) -> Self {
        let secure = config.is_https();
        Self {
            origin: config.origin(),
            secure_cookies: secure,
            demo,
            product_name: config.product_name.clone(),
            client_ip_header: config.client_ip_header.as_deref().and_then(|h| HeaderName::try_from(h).ok()),
            country_header: config.country_header.as_deref().and_then(|h| HeaderName::try_from(h).ok()),
            // `__Host-` pins the cookie to this exact origin; browsers allow it only with Secure.
            session_cookie: if secure { "__Host-doorman_session" } else { "doorman_session" },
            pre_session_cookie: if secure { "__Host-doorman_pre" } else { "doorman_pre" },
            device_cookie_prefix: if secure { "__Host-doorman_device_" } else { "doorman_device_" },
            max_body_bytes: config.max_body_bytes,
            mail_dir: config.mail_dir.clone(),
        }
    }
}

/// In-process limit on writes anyone can make (forgot-password requests, help votes), per
/// client address, shared by those endpoints: a first line in front of the
/// limits kept in the database (which every replica shares).
pub type AddressLimiter = governor::DefaultKeyedRateLimiter<std::net::IpAddr>;

/// What handlers reach, behind one `Arc`: every extractor and middleware takes the state by
/// value, and cloning the services themselves (each with its own `Deps`, a few dozen reference
/// counts and strings) was the largest cost of a cheap request (issue 12, docs/BENCHMARKS.md).
#[derive(Clone)]
pub struct AppState(Arc<Handlers>);

impl std::ops::Deref for AppState {
    type Target = Handlers;
    fn deref(&self) -> &Handlers {
        &self.0
    }
}

/// One service per feature (no store: every storage step goes through a domain operation),
/// the shared key and clock, and the web settings.
pub struct Handlers {
    pub auth: Auth,
    pub recovery: Recovery,
    pub two_step: TwoStep,
    pub two_step_reset: doorman_core::two_step_reset::TwoStepReset,
    pub password_change: PasswordChange,
    pub email_change: EmailChange,
    pub payments: Payments,
    pub content: Content,
    pub roles: Roles,
    pub compromise: Compromise,
    pub recovery_requests: RecoveryRequests,
    pub answer_reset: doorman_core::answer_reset::AnswerReset,
    pub activity: doorman_core::activity::Activity,
    pub support: doorman_core::support::Support,
    /// Signs CSRF tokens and keys visitor ids.
    pub keys: Keyring,
    pub clock: Arc<dyn Clock>,
    /// Readiness: whether storage answers.
    pub health: Health,
    pub web: Arc<WebSettings>,
    pub anonymous_writes: Arc<AddressLimiter>,
    /// Answers at once while the database cannot be reached.
    pub database_breaker: crate::web::breaker::DatabaseBreaker,
    /// This second's answers of `GET /api/v1/banners/active`.
    pub banner_answers: crate::web::api::banners::ActiveAnswers,
}

impl AppState {
    pub fn new(services: &Services, web: WebSettings) -> Self {
        // 20 at once, then one every 6 seconds, per address.
        let quota = governor::Quota::per_minute(std::num::NonZeroU32::MIN.saturating_add(9))
            .allow_burst(std::num::NonZeroU32::MIN.saturating_add(19));
        Self(Arc::new(Handlers {
            auth: services.auth.clone(),
            recovery: services.recovery.clone(),
            two_step: services.two_step.clone(),
            two_step_reset: services.two_step_reset.clone(),
            password_change: services.password_change.clone(),
            email_change: services.email_change.clone(),
            payments: services.payments.clone(),
            content: services.content.clone(),
            roles: services.roles.clone(),
            compromise: services.compromise.clone(),
            recovery_requests: services.recovery_requests.clone(),
            answer_reset: services.answer_reset.clone(),
            activity: services.activity.clone(),
            support: services.support.clone(),
            keys: services.deps.keys.clone(),
            clock: services.deps.clock.clone(),
            health: Health(services.deps.clone()),
            web: Arc::new(web),
            anonymous_writes: Arc::new(governor::RateLimiter::keyed(quota)),
            database_breaker: crate::web::breaker::DatabaseBreaker::default(),
            banner_answers: Default::default(),
        }))
    }
}

/// The readiness check's one question to storage.
#[derive(Clone)]
pub struct Health(Deps);

impl Health {
    pub async fn ping(&self) -> Result<(), doorman_core::store::StoreError> {
        self.0.ping().await
    }
}
