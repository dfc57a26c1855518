//! Forgot password and reset pages (checklist S1, S2). The reset link's token leaves the URL
//! at once: the first visit moves it into a short-lived cookie and redirects (S1.8).

use super::{render, Chrome};
use crate::web::error::{ApiError, PageError};
use crate::web::extract::{Client, PageForm, Query};
use crate::web::security::{no_referrer, Csrf};
use crate::web::shared::{request_reset, reset_password};
use crate::web::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::CookieJar;
use doorman_core::factors::{FactorCode, MethodView};
use doorman_core::input::Deferred;
use doorman_core::password::MAX_PASSWORD_CHARS;
use doorman_core::recovery::{RecoveryToken, ResetCodeAttempt, ResetError, ResetGrant, ResetProof, SecondFactorProof};
use doorman_core::{LoginIdentifier, Password};
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/forgot-password", get(forgot_form).post(forgot_submit))
        .route("/reset-password", get(reset_form).post(reset_submit))
        .route("/reset-password/send", post(reset_send))
        .route("/report-not-me", get(report_not_me))
}

#[derive(Template)]
#[template(path = "forgot_password.html")]
struct ForgotPage {
    chrome: Chrome,
    csrf: String,
    login: String,
    sent: bool,
}

fn forgot_page(chrome: Chrome, state: &AppState, jar: CookieJar, login: String, sent: bool) -> Response {
    let (jar, binding) = Csrf::pre_session(state, jar);
    let page = ForgotPage { chrome, csrf: Csrf::token(state, &binding), login, sent };
    (jar, render(StatusCode::OK, &page)).into_response()
}

/// `GET /forgot-password`
pub async fn forgot_form(chrome: Chrome, State(state): State<AppState>, jar: CookieJar) -> Response {
    forgot_page(chrome, &state, jar, String::new(), false)
}

#[derive(Deserialize)]
pub struct ForgotForm {
    login: LoginIdentifier,
    csrf: String,
}

/// `POST /forgot-password`: the same page for everyone (S2.1, S2.2), which also offers to
/// send again.
pub async fn forgot_submit(
    chrome: Chrome,
    State(state): State<AppState>,
    Client(ctx): Client,
    jar: CookieJar,
    PageForm(form): PageForm<ForgotForm>,
) -> Result<Response, PageError> {
    Csrf::check_anonymous(&state, &jar, &form.csrf)?;
    request_reset(&state, &form.login, &ctx).await?;
    Ok(forgot_page(chrome, &state, jar, form.login.as_typed().chars().take(320).collect(), true))
}

#[derive(Template)]
#[template(path = "reset_password.html")]
struct ResetPage {
    chrome: Chrome,
    csrf: String,
    /// The link's token is in the reset cookie and still valid.
    with_link: bool,
    /// The link in the cookie no longer works.
    link_expired: bool,
    login: String,
    code: String,
    error: Option<String>,
    /// The field the error is about (`code`, `factor_code`, `new_password`), which gets the
    /// focus; empty: the error is about the whole page.
    error_field: &'static str,
    notice: Option<String>,
    methods: Vec<MethodView>,
    min_chars: usize,
    max_chars: usize,
}

#[derive(Template)]
#[template(path = "reset_done.html")]
struct ResetDonePage {
    chrome: Chrome,
}

const RESET_COOKIE: &str = "doorman_reset";
const RESET_COOKIE_SECURE: &str = "__Host-doorman_reset";

fn reset_cookie_name(state: &AppState) -> &'static str {
    if state.web.secure_cookies {
        RESET_COOKIE_SECURE
    } else {
        RESET_COOKIE
    }
}

#[derive(Deserialize)]
pub struct ResetQuery {
    token: Option<String>,
    with: Option<String>,
}

#[derive(Default)]
struct ResetView {
    with_link: bool,
    link_expired: bool,
    login: String,
    /// The emailed code, kept when the page is shown again to ask for the second factor.
    code: String,
    error: Option<String>,
    error_field: &'static str,
    notice: Option<String>,
    /// With 2-step on, the methods to confirm with (S1.12).
    methods: Vec<MethodView>,
}

fn reset_page(chrome: Chrome, state: &AppState, jar: CookieJar, status: StatusCode, view: ResetView) -> Response {
    let (jar, binding) = Csrf::pre_session(state, jar);
    let page = ResetPage {
        chrome,
        csrf: Csrf::token(state, &binding),
        with_link: view.with_link,
        link_expired: view.link_expired,
        login: view.login,
        code: view.code,
        error: view.error,
        error_field: view.error_field,
        notice: view.notice,
        methods: view.methods,
        min_chars: state.recovery.passwords().policy.min_chars,
        max_chars: MAX_PASSWORD_CHARS,
    };
    no_referrer((jar, render(status, &page)).into_response())
}

/// `GET /reset-password[?token=...]`. Opening the link changes nothing (S1.9): the token is
/// only moved into a cookie, and the page says whether it still works.
pub async fn reset_form(
    chrome: Chrome,
    State(state): State<AppState>,
    jar: CookieJar,
    Query(query): Query<ResetQuery>,
) -> Result<Response, PageError> {
    let cookie_name = reset_cookie_name(&state);
    if let Some(raw) = query.token {
        let (jar, to) = match RecoveryToken::parse(&raw) {
            Some(token) => {
                let mut cookie = state.web.cookie(cookie_name, token.expose().to_owned());
                cookie.set_max_age(time::Duration::seconds(state.recovery.reset_token_ttl_seconds()));
                (jar.add(cookie), "/reset-password")
            }
            None => (jar.add(state.web.removal(cookie_name)), "/reset-password?with=code"),
        };
        return Ok(no_referrer((jar, Redirect::to(to)).into_response()));
    }
    let wants_code = query.with.as_deref() == Some("code");
    let token = jar.get(cookie_name).and_then(|c| RecoveryToken::parse(c.value()));
    let view = match token {
        Some(token) if !wants_code => {
            let valid = state.recovery.reset_link_is_valid(&token).await.map_err(ApiError::from)?;
            let methods = if valid {
                let grant = state.recovery.open_reset(&ResetProof::Link(token)).await.map_err(ApiError::from)?;
                state.recovery.reset_methods(&grant).await.map_err(ApiError::from)?
            } else {
                Vec::new()
            };
            ResetView { with_link: valid, link_expired: !valid, methods, ..ResetView::default() }
        }
        _ => ResetView::default(),
    };
    Ok(reset_page(chrome, &state, jar, StatusCode::OK, view))
}

#[derive(Deserialize)]
pub struct ResetForm {
    csrf: String,
    /// Judged after the emailed proof, and on this form: a code is counted first (S3.7).
    new_password: Deferred<Password>,
    login: Option<LoginIdentifier>,
    /// As typed: a malformed code is counted and answered like a wrong one (S3.7).
    code: Option<ResetCodeAttempt>,
    /// The 2-step method and its code or answer, when 2-step is on.
    method_id: Option<String>,
    factor_code: Option<FactorCode>,
}

/// The proof a reset form carries: the login and emailed code, else the link's cookie.
fn form_proof(
    state: &AppState,
    jar: &CookieJar,
    login: Option<LoginIdentifier>,
    code: Option<ResetCodeAttempt>,
) -> Result<ResetProof, ResetError> {
    match code {
        Some(code) => Ok(ResetProof::Code { login: login.unwrap_or_else(|| LoginIdentifier::new("")), code }),
        None => jar
            .get(reset_cookie_name(state))
            .and_then(|c| RecoveryToken::parse(c.value()))
            .map(ResetProof::Link)
            .ok_or(ResetError::InvalidToken),
    }
}

/// The link's cookie, or the login and code, checked (a code counted) before anything else.
async fn open_grant(
    state: &AppState,
    jar: &CookieJar,
    login: Option<LoginIdentifier>,
    code: Option<ResetCodeAttempt>,
) -> Result<ResetGrant, ApiError> {
    let proof = form_proof(state, jar, login, code)?;
    Ok(state.recovery.open_reset(&proof).await?)
}

/// The login and code as typed, to show again (never a password).
fn typed(login: Option<&LoginIdentifier>, code: Option<&ResetCodeAttempt>) -> (String, String) {
    (login.map(|l| l.as_typed().to_owned()).unwrap_or_default(), code.map(|c| c.typed().to_owned()).unwrap_or_default())
}

/// What the person typed on the reset form: shown again after a refusal (never a password).
struct Entered {
    by_code: bool,
    login: String,
    code: String,
}

/// The page again after a refusal, keeping what the person typed (but never a password).
/// The 2-step methods are shown only with a verified grant: nothing on the page depends on
/// an unverified code (S3.7).
async fn reset_page_again(
    chrome: Chrome,
    state: &AppState,
    jar: CookieJar,
    error: ApiError,
    grant: Option<&ResetGrant>,
    entered: Entered,
) -> Result<Response, PageError> {
    let Entered { by_code, login, code } = entered;
    if !error.status.is_client_error() {
        return Err(PageError(error));
    }
    let link_expired = error.code == "invalid_token";
    let methods = match grant {
        Some(grant) => state.recovery.reset_methods(grant).await.unwrap_or_default(),
        None => Vec::new(),
    };
    let message = if error.code == "second_factor_required" && !methods.is_empty() { None } else { Some(error.message) };
    // Before the grant the emailed proof was refused; after it, the password or the second step.
    let error_field = match (grant.is_some(), error.code) {
        (false, _) if by_code => "code",
        (true, "weak_password") => "new_password",
        (true, _) if !methods.is_empty() => "factor_code",
        _ => "",
    };
    let view =
        ResetView { with_link: !by_code && !link_expired, link_expired, login, code, error: message, error_field, notice: None, methods };
    Ok(reset_page(chrome, state, jar, error.status, view))
}

/// `POST /reset-password`: the only step that redeems (S1.9). No login follows (S1.11).
pub async fn reset_submit(
    chrome: Chrome,
    State(state): State<AppState>,
    Client(ctx): Client,
    jar: CookieJar,
    PageForm(form): PageForm<ResetForm>,
) -> Result<Response, PageError> {
    Csrf::check_anonymous(&state, &jar, &form.csrf)?;
    let second = match (&form.method_id, &form.factor_code) {
        (Some(method_id), Some(code)) => Some(SecondFactorProof { method_id, code }),
        _ => None,
    };
    let by_code = form.code.is_some();
    let (login, code) = typed(form.login.as_ref(), form.code.as_ref());
    let entered = Entered { by_code, login, code };
    let grant = match open_grant(&state, &jar, form.login, form.code).await {
        Ok(grant) => grant,
        Err(error) => return reset_page_again(chrome, &state, jar, error, None, entered).await,
    };
    match reset_password(&state, &grant, &form.new_password, second, &ctx).await {
        Ok(()) => {
            let jar = jar.add(state.web.removal(reset_cookie_name(&state)));
            Ok(no_referrer((jar, render(StatusCode::OK, &ResetDonePage { chrome })).into_response()))
        }
        Err(error) => reset_page_again(chrome, &state, jar, error, Some(&grant), entered).await,
    }
}

#[derive(Deserialize)]
pub struct ResetSendForm {
    csrf: String,
    method_id: String,
    login: Option<LoginIdentifier>,
    code: Option<ResetCodeAttempt>,
}

/// `POST /reset-password/send`: an SMS or email code for the reset's second step.
pub async fn reset_send(
    chrome: Chrome,
    State(state): State<AppState>,
    Client(ctx): Client,
    jar: CookieJar,
    PageForm(form): PageForm<ResetSendForm>,
) -> Result<Response, PageError> {
    Csrf::check_anonymous(&state, &jar, &form.csrf)?;
    let by_code = form.code.is_some();
    let (login, code) = typed(form.login.as_ref(), form.code.as_ref());
    let entered = Entered { by_code, login, code };
    let grant = match open_grant(&state, &jar, form.login, form.code).await {
        Ok(grant) => grant,
        Err(error) => return reset_page_again(chrome, &state, jar, error, None, entered).await,
    };
    if let Err(e) = state.recovery.send_reset_code(&grant, &form.method_id, &ctx).await {
        return reset_page_again(chrome, &state, jar, ApiError::from(e), Some(&grant), entered).await;
    }
    let Entered { by_code, login, code } = entered;
    let methods = state.recovery.reset_methods(&grant).await.map_err(ApiError::from)?;
    let notice = Some("We sent you a code. It works for 10 minutes.".to_owned());
    let view = ResetView { with_link: !by_code, login, code, notice, methods, ..ResetView::default() };
    Ok(reset_page(chrome, &state, jar, StatusCode::OK, view))
}

#[derive(Template)]
#[template(path = "report_not_me.html")]
struct ReportPage {
    chrome: Chrome,
}

/// `GET /report-not-me?token=...`: the link in "your password was changed". Locking the
/// account from it is the support issue's work; until then the page says what to do.
pub async fn report_not_me(chrome: Chrome) -> Response {
    no_referrer(render(StatusCode::OK, &ReportPage { chrome }))
}
