//! Steps the pages and the JSON API share: signing in, asking for a reset, setting the new
//! password. Each answers in the web layer's one error type; each caller shapes the answer.

use crate::web::error::ApiError;
use crate::web::extract::CurrentSession;
use crate::web::state::AppState;
use axum::http::StatusCode;
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use doorman_core::audit::RequestContext;
use doorman_core::auth::{AuthError, SignedIn};
use doorman_core::input::Deferred;
use doorman_core::recovery::{ResetGrant, SecondFactorProof};
use doorman_core::session::SessionToken;
use doorman_core::step_up::SteppedUp;
use doorman_core::trusted_device::{DEVICE_TTL_SECONDS, DeviceToken, NewDevice};
use doorman_core::two_step::TwoStepError;
use doorman_core::{LoginIdentifier, Password, PasswordAttempt};

/// Password sign-in shared by the login page and the API. A session the browser already
/// had is ended, so that the signed-in session always has a new id (S7.2).
pub async fn sign_in(
    state: &AppState,
    current: Option<CurrentSession>,
    jar: CookieJar,
    login: &LoginIdentifier,
    password: &PasswordAttempt,
    ctx: &RequestContext,
) -> Result<(CookieJar, SignedIn), ApiError> {
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
pub async fn request_reset(state: &AppState, login: &LoginIdentifier, ctx: &RequestContext) -> Result<(), ApiError> {
    // An empty field names nobody: saying so reveals nothing, and "check your email" would
    // leave the person waiting for an email that never comes.
    if login.key().is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_login", "Enter your username or the email address of your account."));
    }
    if state.anonymous_writes.check_key(&ctx.ip).is_err() {
        tracing::info!("forgot-password request dropped by the per-address limit");
        return Ok(());
    }
    state.recovery.request_password_reset(login, ctx).await?;
    Ok(())
}

/// The session's step-up proof if it verified recently (S7.6), for an operation that needs
/// one only in some cases; `None` when it did not.
pub async fn recent_step_up(state: &AppState, session: &CurrentSession) -> Result<Option<SteppedUp>, ApiError> {
    match state.two_step.check_step_up(&session.record, &session.account).await {
        Ok(proof) => Ok(Some(proof)),
        Err(TwoStepError::StepUpRequired(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Longest login and account of what was noticed the public report form takes.
pub const REPORT_LOGIN_CHARS: usize = 320;
pub const REPORT_DETAILS_CHARS: usize = 2000;

/// The public "report a compromised account" form, shared by the page and the API (issue 11
/// §4): opens a case for support and locks nothing, since anyone can send it; answered the
/// same whether or not the login names an account; limited per address (in this process,
/// then the stored limit).
pub async fn report_publicly(state: &AppState, login: &str, details: &str, ctx: &RequestContext) -> Result<(), ApiError> {
    let typed = login.trim();
    if typed.is_empty() || typed.chars().count() > REPORT_LOGIN_CHARS {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_login", "Enter the username or email address of the account.")
            .with("field", serde_json::json!("login")));
    }
    if details.chars().count() > REPORT_DETAILS_CHARS {
        let message = format!("Write at most {REPORT_DETAILS_CHARS} characters about what you noticed.");
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_details", message).with("field", serde_json::json!("details")));
    }
    if state.anonymous_writes.check_key(&ctx.ip).is_err() {
        return Err(doorman_core::compromise::CompromiseError::TooMany(60).into());
    }
    state.compromise.report_publicly(&LoginIdentifier::new(typed), details, ctx).await?;
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
) -> Result<(), ApiError> {
    state.recovery.reset_password(grant, new_password.value()?, second, ctx).await?;
    Ok(())
}

/// Where an activity line's "this wasn't me" leads: a confirmation page whose button (a
/// CSRF-checked POST to the same address) locks the account; the API posts there too
/// (`POST /api/v1/account/activity/{id}/report`).
pub fn report_url(event_id: i64) -> String {
    format!("/account/activity/{event_id}/report")
}
