//! Changing the account's email address: after a step-up, a link to the new address;
//! confirming it on a page (opening the link changes nothing).

use super::{Chrome, render};
use crate::web::error::{ApiError, PageError};
use crate::web::extract::{Client, PageForm, PageSession, Query, StepUp};
use crate::web::routes::Routes;
use crate::web::security::{Csrf, forbidden_form, no_referrer};
use crate::web::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum_extra::extract::CookieJar;
use doorman_core::EmailAddress;
use doorman_core::email_change::EmailChangeError;
use doorman_core::input::Deferred;
use doorman_core::recovery::RecoveryToken;
use serde::Deserialize;

pub fn router() -> Routes {
    Routes::new().route("/account/email", get(form).post(submit)).route("/account/email/confirm", get(confirm_form).post(confirm_submit))
}

#[derive(Template)]
#[template(path = "email_change.html")]
struct ChangePage {
    chrome: Chrome,
    csrf: String,
    current: String,
    new_email: String,
    sent: bool,
    error: Option<String>,
}

/// `GET /account/email`
pub async fn form(chrome: Chrome, State(state): State<AppState>, PageSession(session): PageSession) -> Response {
    let page = ChangePage {
        chrome,
        csrf: Csrf::token(&state, session.token.expose()),
        current: session.account.email.as_str().to_owned(),
        new_email: String::new(),
        sent: false,
        error: None,
    };
    render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub struct ChangeForm {
    csrf: String,
    /// A refusal is shown on this form, with what was typed.
    new_email: Deferred<EmailAddress>,
}

/// `POST /account/email`: needs a recent step-up (S7.6).
pub async fn submit(
    chrome: Chrome,
    State(state): State<AppState>,
    Client(ctx): Client,
    StepUp(proof, session): StepUp,
    PageForm(form): PageForm<ChangeForm>,
) -> Result<Response, PageError> {
    if !Csrf::check(&state, session.token.expose(), &form.csrf) {
        return Err(PageError(forbidden_form()));
    }
    let result = match form.new_email.value() {
        Ok(email) => state.email_change.request_email_change(&proof, &session.account, email, &ctx).await.map_err(ApiError::from),
        Err(refused) => Err(ApiError::from(refused)),
    };
    let (status, sent, error) = match result {
        Ok(()) => (StatusCode::OK, true, None),
        Err(e) if e.status.is_client_error() => (e.status, false, Some(e.message)),
        Err(e) => return Err(PageError(e)),
    };
    let page = ChangePage {
        chrome,
        csrf: Csrf::token(&state, session.token.expose()),
        current: session.account.email.as_str().to_owned(),
        new_email: form.new_email.typed().chars().take(254).collect(),
        sent,
        error,
    };
    Ok(render(status, &page))
}

#[derive(Template)]
#[template(path = "email_confirm.html")]
struct ConfirmPage {
    chrome: Chrome,
    csrf: String,
    /// The link's token is in its cookie: the page offers the button.
    has_link: bool,
    done: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

/// The confirmation link's token between its first visit and the button: in a cookie, so
/// that it leaves the address bar, the history and any referrer at once (S1.8).
const CONFIRM_COOKIE: &str = "doorman_email_change";
const CONFIRM_COOKIE_SECURE: &str = "__Host-doorman_email_change";
/// How long the cookie lives: time enough to press the button.
const CONFIRM_COOKIE_SECONDS: i64 = 30 * 60;

fn confirm_cookie_name(state: &AppState) -> &'static str {
    if state.web.secure_cookies { CONFIRM_COOKIE_SECURE } else { CONFIRM_COOKIE }
}

fn confirm_page(
    chrome: Chrome,
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    done: Option<String>,
    error: Option<String>,
) -> Response {
    let has_link = jar.get(confirm_cookie_name(state)).and_then(|c| RecoveryToken::parse(c.value())).is_some();
    let (jar, binding) = Csrf::pre_session(state, jar);
    let page = ConfirmPage { chrome, csrf: Csrf::token(state, &binding), has_link, done, error };
    no_referrer((jar, render(status, &page)).into_response())
}

/// `GET /account/email/confirm[?token=...]`. Opening the link changes nothing: the token is
/// only moved into a short-lived cookie and the browser sent to the clean address, where a
/// button confirms (mail scanners follow links; only the submitted form redeems).
pub async fn confirm_form(chrome: Chrome, State(state): State<AppState>, jar: CookieJar, Query(query): Query<TokenQuery>) -> Response {
    let name = confirm_cookie_name(&state);
    if let Some(raw) = query.token {
        let jar = match RecoveryToken::parse(&raw) {
            Some(token) => {
                let mut cookie = state.web.cookie(name, token.expose().to_owned());
                cookie.set_max_age(time::Duration::seconds(CONFIRM_COOKIE_SECONDS));
                jar.add(cookie)
            }
            None => jar.add(state.web.removal(name)),
        };
        return no_referrer((jar, Redirect::to("/account/email/confirm")).into_response());
    }
    let error = jar
        .get(name)
        .and_then(|c| RecoveryToken::parse(c.value()))
        .is_none()
        .then(|| "This page needs the link from the confirmation email. Open the link again; it works once.".to_owned());
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    confirm_page(chrome, &state, jar, status, None, error)
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    csrf: String,
}

/// `POST /account/email/confirm`: redeems the token from the link's cookie; the cookie goes
/// whatever the outcome.
pub async fn confirm_submit(
    chrome: Chrome,
    State(state): State<AppState>,
    Client(ctx): Client,
    jar: CookieJar,
    PageForm(form): PageForm<ConfirmForm>,
) -> Result<Response, PageError> {
    Csrf::check_anonymous(&state, &jar, &form.csrf)?;
    let name = confirm_cookie_name(&state);
    let result = match jar.get(name).and_then(|c| RecoveryToken::parse(c.value())) {
        Some(token) => state.email_change.confirm_email_change(&token, &ctx).await,
        None => Err(EmailChangeError::InvalidToken),
    };
    let jar = jar.add(state.web.removal(name));
    match result {
        Ok(account) => Ok(confirm_page(chrome, &state, jar, StatusCode::OK, Some(account.email.as_str().to_owned()), None)),
        Err(e) => {
            let error = ApiError::from(e);
            if !error.status.is_client_error() {
                return Err(PageError(error));
            }
            Ok(confirm_page(chrome, &state, jar, error.status, None, Some(error.message)))
        }
    }
}
