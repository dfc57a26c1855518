//! Changing the account's email address: after a step-up, a link to the new address;
//! confirming it on a page (opening the link changes nothing).

use super::two_step::to_step_up;
use super::{render, Chrome};
use crate::web::error::{ApiError, PageError};
use crate::web::extract::{Client, PageForm, PageSession};
use crate::web::security::{forbidden_form, no_referrer, Csrf};
use crate::web::AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use doorman_core::email_change::EmailChangeError;
use doorman_core::recovery::RecoveryToken;
use doorman_core::EmailAddress;
use serde::Deserialize;

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
pub async fn form(State(state): State<AppState>, PageSession(session): PageSession) -> Response {
    let page = ChangePage {
        chrome: Chrome::new(&state, Some(session.account.username.as_str())),
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
    new_email: String,
}

/// `POST /account/email`: needs a recent step-up (S7.6).
pub async fn submit(
    State(state): State<AppState>,
    Client(ctx): Client,
    PageSession(session): PageSession,
    PageForm(form): PageForm<ChangeForm>,
) -> Result<Response, PageError> {
    if !Csrf::check(&state, session.token.expose(), &form.csrf) {
        return Err(PageError(forbidden_form()));
    }
    if !state.services.recently_verified(&session.record) {
        return Ok(to_step_up("/account/email"));
    }
    let result = match EmailAddress::parse(&form.new_email) {
        Ok(email) => state.services.request_email_change(&session.account, &email, &ctx).await.map_err(ApiError::from),
        Err(e) => Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_email", e.to_string())),
    };
    let (status, sent, error) = match result {
        Ok(()) => (StatusCode::OK, true, None),
        Err(e) if e.status.is_client_error() => (e.status, false, Some(e.message)),
        Err(e) => return Err(PageError(e)),
    };
    let page = ChangePage {
        chrome: Chrome::new(&state, Some(session.account.username.as_str())),
        csrf: Csrf::token(&state, session.token.expose()),
        current: session.account.email.as_str().to_owned(),
        new_email: form.new_email.chars().take(254).collect(),
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
    token: String,
    done: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

fn confirm_page(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    token: String,
    done: Option<String>,
    error: Option<String>,
) -> Response {
    let (jar, binding) = Csrf::pre_session(state, jar);
    let page = ConfirmPage { chrome: Chrome::new(state, None), csrf: Csrf::token(state, &binding), token, done, error };
    no_referrer((jar, render(status, &page)).into_response())
}

/// `GET /account/email/confirm?token=...`: shows a button; nothing changes until it is pressed.
pub async fn confirm_form(State(state): State<AppState>, jar: CookieJar, Query(query): Query<TokenQuery>) -> Response {
    confirm_page(&state, jar, StatusCode::OK, query.token.unwrap_or_default(), None, None)
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    csrf: String,
    token: String,
}

/// `POST /account/email/confirm`
pub async fn confirm_submit(
    State(state): State<AppState>,
    Client(ctx): Client,
    jar: CookieJar,
    PageForm(form): PageForm<ConfirmForm>,
) -> Result<Response, PageError> {
    Csrf::check_anonymous(&state, &jar, &form.csrf)?;
    let result = match RecoveryToken::parse(&form.token) {
        Some(token) => state.services.confirm_email_change(&token, &ctx).await,
        None => Err(EmailChangeError::InvalidToken),
    };
    match result {
        Ok(account) => Ok(confirm_page(&state, jar, StatusCode::OK, String::new(), Some(account.email.as_str().to_owned()), None)),
        Err(e) => {
            let error = ApiError::from(e);
            if !error.status.is_client_error() {
                return Err(PageError(error));
            }
            Ok(confirm_page(&state, jar, error.status, String::new(), None, Some(error.message)))
        }
    }
}
