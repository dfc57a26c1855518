//! "This wasn't me" (issue 11 §4): the report link's page with its confirm button (opening
//! the link changes nothing), and the public "Report a compromised account" form.

use super::{Chrome, render};
use crate::web::error::{ApiError, PageError};
use crate::web::extract::{Client, PageForm, Query};
use crate::web::routes::Routes;
use crate::web::security::{Csrf, no_referrer};
use crate::web::shared::{REPORT_DETAILS_CHARS, REPORT_LOGIN_CHARS, report_publicly};
use crate::web::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum_extra::extract::CookieJar;
use doorman_core::compromise::{CompromiseError, Locked};
use doorman_core::recovery::RecoveryToken;
use doorman_core::report_link::ReportedEvent;
use serde::Deserialize;

pub fn router() -> Routes {
    Routes::new()
        .route("/report-not-me", get(report_form).post(report_submit))
        .route("/report-compromise", get(public_form).post(public_submit))
}

/// The report link's token between its first visit and the button: in a cookie, so that it
/// leaves the address bar, the history and any referrer at once (S1.8).
const REPORT_COOKIE: &str = "doorman_report";
const REPORT_COOKIE_SECURE: &str = "__Host-doorman_report";
const REPORT_COOKIE_SECONDS: i64 = 30 * 60;

fn report_cookie_name(state: &AppState) -> &'static str {
    if state.web.secure_cookies { REPORT_COOKIE_SECURE } else { REPORT_COOKIE }
}

fn cookie_token(state: &AppState, jar: &CookieJar) -> Option<RecoveryToken> {
    jar.get(report_cookie_name(state)).and_then(|c| RecoveryToken::parse(c.value()))
}

#[derive(Template)]
#[template(path = "report_not_me.html")]
pub(super) struct ReportPage {
    pub(super) chrome: Chrome,
    pub(super) csrf: String,
    /// Where the button posts: the report link's page, or an activity entry's.
    pub(super) action: String,
    /// What the link reports, in words, when it still works: the page offers the button.
    pub(super) reported: Option<&'static str>,
    pub(super) locked: Option<Locked>,
    pub(super) error: Option<String>,
}

fn report_page(state: &AppState, jar: CookieJar, status: StatusCode, page: ReportPage) -> Response {
    let (jar, binding) = Csrf::pre_session(state, jar);
    let page = ReportPage { csrf: Csrf::token(state, &binding), ..page };
    no_referrer((jar, render(status, &page)).into_response())
}

fn in_words(event: &ReportedEvent) -> &'static str {
    match event {
        ReportedEvent::PasswordChanged => "Your password was changed.",
        ReportedEvent::MethodAdded { .. } => "A 2-step verification method was added.",
        ReportedEvent::MethodRemoved { .. } => "A 2-step verification method was removed.",
        ReportedEvent::EmailChanged { .. } => "The account's email address was changed.",
        ReportedEvent::TwoStepResetStarted => "A reset of 2-step verification was started.",
        ReportedEvent::NewDeviceSignIn => "Someone signed in from a new device.",
        ReportedEvent::SecurityChange => "A security setting of the account changed.",
    }
}

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

/// `GET /report-not-me[?token=...]`: the link of every security email. Opening it changes
/// nothing: the token moves into a short-lived cookie and the browser goes to the clean
/// address, where a button locks (mail scanners follow links; only the form locks).
pub async fn report_form(
    chrome: Chrome,
    State(state): State<AppState>,
    jar: CookieJar,
    Query(query): Query<TokenQuery>,
) -> Result<Response, PageError> {
    let name = report_cookie_name(&state);
    if let Some(raw) = query.token {
        let jar = match RecoveryToken::parse(&raw) {
            Some(token) => {
                let mut cookie = state.web.cookie(name, token.expose().to_owned());
                cookie.set_max_age(time::Duration::seconds(REPORT_COOKIE_SECONDS));
                jar.add(cookie)
            }
            None => jar.add(state.web.removal(name)),
        };
        return Ok(no_referrer((jar, Redirect::to("/report-not-me")).into_response()));
    }
    let reported = match cookie_token(&state, &jar) {
        Some(token) => match state.compromise.verify_report(&token).await {
            Ok(report) => Some(in_words(report.event())),
            Err(CompromiseError::InvalidToken) => None,
            Err(e) => return Err(PageError(ApiError::from(e))),
        },
        None => None,
    };
    let (status, error) = match reported {
        Some(_) => (StatusCode::OK, None),
        None => (StatusCode::BAD_REQUEST, Some(CompromiseError::InvalidToken.to_string())),
    };
    Ok(report_page(
        &state,
        jar,
        status,
        ReportPage { chrome, csrf: String::new(), action: "/report-not-me".to_owned(), reported, locked: None, error },
    ))
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    csrf: String,
}

/// `POST /report-not-me`: locks the account with the link's token; the cookie goes whatever
/// the outcome.
pub async fn report_submit(
    chrome: Chrome,
    State(state): State<AppState>,
    Client(ctx): Client,
    jar: CookieJar,
    PageForm(form): PageForm<ConfirmForm>,
) -> Result<Response, PageError> {
    Csrf::check_anonymous(&state, &jar, &form.csrf)?;
    let result = match cookie_token(&state, &jar) {
        Some(token) => match state.compromise.verify_report(&token).await {
            Ok(report) => state.compromise.lock(report, &ctx).await,
            Err(e) => Err(e),
        },
        None => Err(CompromiseError::InvalidToken),
    };
    let jar = jar.add(state.web.removal(report_cookie_name(&state)));
    let blank = ReportPage { chrome, csrf: String::new(), action: "/report-not-me".to_owned(), reported: None, locked: None, error: None };
    match result {
        Ok(locked) => Ok(report_page(&state, jar, StatusCode::OK, ReportPage { locked: Some(locked), ..blank })),
        Err(e) => {
            let error = ApiError::from(e);
            if !error.status.is_client_error() {
                return Err(PageError(error));
            }
            Ok(report_page(&state, jar, error.status, ReportPage { error: Some(error.message), ..blank }))
        }
    }
}

#[derive(Template)]
#[template(path = "report_compromise.html")]
struct PublicPage {
    chrome: Chrome,
    csrf: String,
    login: String,
    details: String,
    sent: bool,
    error: Option<String>,
    /// The error is about the login field.
    login_invalid: bool,
}

fn public_page(state: &AppState, jar: CookieJar, status: StatusCode, page: PublicPage) -> Response {
    let (jar, binding) = Csrf::pre_session(state, jar);
    let page = PublicPage { csrf: Csrf::token(state, &binding), ..page };
    (jar, render(status, &page)).into_response()
}

/// `GET /report-compromise`: the public form.
pub async fn public_form(chrome: Chrome, State(state): State<AppState>, jar: CookieJar) -> Response {
    let page = PublicPage {
        chrome,
        csrf: String::new(),
        login: String::new(),
        details: String::new(),
        sent: false,
        error: None,
        login_invalid: false,
    };
    public_page(&state, jar, StatusCode::OK, page)
}

#[derive(Deserialize)]
pub struct PublicForm {
    csrf: String,
    login: String,
    #[serde(default)]
    details: String,
}

/// `POST /report-compromise`: opens a case without locking (anyone can fill it in); the
/// same answer whether or not the login names an account. Limited per address.
pub async fn public_submit(
    chrome: Chrome,
    State(state): State<AppState>,
    Client(ctx): Client,
    jar: CookieJar,
    PageForm(form): PageForm<PublicForm>,
) -> Result<Response, PageError> {
    Csrf::check_anonymous(&state, &jar, &form.csrf)?;
    // The fields' `maxlength`: a longer value (only from a tool) is cut, not refused.
    let typed: String = form.login.trim().chars().take(REPORT_LOGIN_CHARS).collect();
    let details: String = form.details.chars().take(REPORT_DETAILS_CHARS).collect();
    let blank = PublicPage {
        chrome,
        csrf: String::new(),
        login: typed.clone(),
        details: details.clone(),
        sent: false,
        error: None,
        login_invalid: false,
    };
    match report_publicly(&state, &typed, &details, &ctx).await {
        Ok(()) => {
            Ok(public_page(&state, jar, StatusCode::OK, PublicPage { sent: true, login: String::new(), details: String::new(), ..blank }))
        }
        Err(error) if error.status.is_client_error() => {
            let page = PublicPage { login_invalid: error.code == "invalid_login", error: Some(error.message), ..blank };
            Ok(public_page(&state, jar, error.status, page))
        }
        Err(error) => Err(PageError(error)),
    }
}
