//! The web layer: thin handlers that parse input, call one domain operation and answer
//! with a page or JSON.

pub mod api;
pub mod content;
pub mod error;
pub mod extract;
pub mod pages;
pub mod security;
pub mod step_up;

use crate::config::Config;
use axum::extract::Request;
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use axum_extra::extract::cookie::{Cookie, SameSite};
use axum_extra::extract::CookieJar;
use doorman_core::audit::RequestContext;
use doorman_core::auth::{Auth, AuthError, SignedIn};
use doorman_core::clock::Clock;
use doorman_core::content::Content;
use doorman_core::deps::Deps;
use doorman_core::email_change::EmailChange;
use doorman_core::input::Deferred;
use doorman_core::keys::ServerKey;
use doorman_core::password_change::PasswordChange;
use doorman_core::payments::Payments;
use doorman_core::recovery::Recovery;
use doorman_core::recovery::{ResetGrant, SecondFactorProof};
use doorman_core::roles::Roles;
use doorman_core::services::Services;
use doorman_core::session::SessionToken;
use doorman_core::trusted_device::{DeviceToken, NewDevice, DEVICE_TTL_SECONDS};
use doorman_core::two_step::TwoStep;
use doorman_core::{LoginIdentifier, Password, PasswordAttempt};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

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

/// What handlers reach: one service per feature (no store: every storage step goes through
/// a domain operation), the shared key and clock, and the web settings.
#[derive(Clone)]
pub struct AppState {
    pub auth: Auth,
    pub recovery: Recovery,
    pub two_step: TwoStep,
    pub password_change: PasswordChange,
    pub email_change: EmailChange,
    pub payments: Payments,
    pub content: Content,
    pub roles: Roles,
    /// Signs CSRF tokens and keys visitor ids.
    pub key: ServerKey,
    pub clock: Arc<dyn Clock>,
    /// Readiness: whether storage answers.
    pub health: Health,
    pub web: Arc<WebSettings>,
    pub anonymous_writes: Arc<AddressLimiter>,
}

impl AppState {
    pub fn new(services: &Services, web: WebSettings) -> Self {
        // 20 at once, then one every 6 seconds, per address.
        let quota = governor::Quota::per_minute(std::num::NonZeroU32::MIN.saturating_add(9))
            .allow_burst(std::num::NonZeroU32::MIN.saturating_add(19));
        Self {
            auth: services.auth.clone(),
            recovery: services.recovery.clone(),
            two_step: services.two_step.clone(),
            password_change: services.password_change.clone(),
            email_change: services.email_change.clone(),
            payments: services.payments.clone(),
            content: services.content.clone(),
            roles: services.roles.clone(),
            key: services.deps.key.clone(),
            clock: services.deps.clock.clone(),
            health: Health(services.deps.clone()),
            web: Arc::new(web),
            anonymous_writes: Arc::new(governor::RateLimiter::keyed(quota)),
        }
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

pub fn router(state: AppState) -> Router {
    let api = api::router().layer(axum::middleware::from_fn_with_state(state.clone(), security::api_guard));
    let trace = TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
        let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
        // The path only: query strings may carry tokens and never reach a log (S1.8).
        tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %request_id)
    });
    Router::new()
        .merge(pages::router())
        .nest("/api/v1", api)
        .route("/healthz", get(api::health::healthz))
        .route("/readyz", get(api::health::readyz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), pages::layout))
        .layer(
            ServiceBuilder::new()
                // The request id is ours: one sent by the client is dropped, so the ids in logs
                // and audit rows cannot be chosen from outside.
                .layer(axum::middleware::map_request(|mut request: Request| async move {
                    request.headers_mut().remove("x-request-id");
                    request
                }))
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(trace)
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(CatchPanicLayer::custom(|_| error::ApiError::internal(&PanicCaught).into_response()))
                .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, Duration::from_secs(30)))
                .layer(axum::middleware::from_fn_with_state(state.clone(), security::security_headers))
                .layer(axum::extract::DefaultBodyLimit::max(state.web.max_body_bytes)),
        )
        .with_state(state)
}

/// Password sign-in shared by the login page and the API. A session the browser already
/// had is ended, so that the signed-in session always has a new id (S7.2).
pub async fn sign_in(
    state: &AppState,
    current: Option<extract::CurrentSession>,
    jar: CookieJar,
    login: &LoginIdentifier,
    password: &PasswordAttempt,
    ctx: &RequestContext,
) -> Result<(CookieJar, SignedIn), error::ApiError> {
    // A password longer than any we accept cannot be right: it gets the same answer.
    let password = password.password().ok_or(AuthError::InvalidCredentials)?;
    let devices = presented_devices(state, &jar);
    let previous = current.as_ref().map(|session| &session.record);
    let mut signed_in = state.auth.login(login, password, &devices, previous, ctx).await?;
    let jar = signed_in_cookies(state, jar, &signed_in.token, signed_in.device.take());
    Ok((jar, signed_in))
}

/// The trusted-device cookies this browser holds, one per account it signed in to (S3.9).
pub fn presented_devices(state: &AppState, jar: &CookieJar) -> Vec<DeviceToken> {
    let prefix = state.web.device_cookie_prefix;
    jar.iter().filter(|c| c.name().starts_with(prefix)).filter_map(|c| DeviceToken::parse(c.value())).take(16).collect()
}

/// The cookies of a new session, and of the browser's new trusted-device token after a full
/// sign-in (rotated each time, kept for as long as the device stays trusted).
pub fn signed_in_cookies(state: &AppState, jar: CookieJar, session: &SessionToken, device: Option<NewDevice>) -> CookieJar {
    let jar = jar.add(state.web.cookie(state.web.session_cookie, session.expose().to_owned()));
    let Some(device) = device else { return jar };
    let name = format!("{}{}", state.web.device_cookie_prefix, device.cookie_tag);
    let cookie = Cookie::build((name, device.token.expose().to_owned()))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(state.web.secure_cookies)
        .max_age(time::Duration::seconds(DEVICE_TTL_SECONDS))
        .build();
    jar.add(cookie)
}

/// "Forgot password", shared by the page and the API: records the intent, unless this
/// address has asked too often, in which case it silently does nothing (S3.6). Either way
/// the caller answers the same.
pub async fn request_reset(state: &AppState, login: &LoginIdentifier, ctx: &RequestContext) -> Result<(), error::ApiError> {
    if state.anonymous_writes.check_key(&ctx.ip).is_err() {
        tracing::info!("forgot-password request dropped by the per-address limit");
        return Ok(());
    }
    state.recovery.request_password_reset(login, ctx).await?;
    Ok(())
}

/// Setting a new password with a link or a code, shared by the page and the API.
/// The emailed proof is checked (and a code counted) first, whatever else the request
/// holds: nothing after it may depend on an unverified code (S3.7). So the new password's
/// refusal waits for the grant ([`Deferred`]): a code guessed beside a password too long to
/// accept is still counted.
pub async fn reset_password(
    state: &AppState,
    grant: &ResetGrant,
    new_password: &Deferred<Password>,
    second: Option<SecondFactorProof<'_>>,
    ctx: &RequestContext,
) -> Result<(), error::ApiError> {
    state.recovery.reset_password(grant, new_password.value()?, second, ctx).await?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
#[error("a request handler panicked")]
struct PanicCaught;

fn wants_json(request: &Request) -> bool {
    request.uri().path().starts_with("/api/")
}

async fn not_found(request: Request) -> Response {
    let error = error::ApiError::new(StatusCode::NOT_FOUND, "not_found", "There is nothing at this address.");
    if wants_json(&request) {
        error.into_response()
    } else {
        error::PageError(error).into_response()
    }
}

async fn method_not_allowed(request: Request) -> Response {
    let error = error::ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "This address does not accept that method.");
    if wants_json(&request) {
        error.into_response()
    } else {
        error::PageError(error).into_response()
    }
}
