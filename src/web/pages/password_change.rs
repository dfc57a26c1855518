//! `/account/password`: a new password with the current one (S4.6).

use super::{Chrome, render};
use crate::web::error::{ApiError, PageError};
use crate::web::extract::{Client, PageForm, PageSession};
use crate::web::routes::Routes;
use crate::web::security::{Csrf, forbidden_form};
use crate::web::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use doorman_core::auth::AuthError;
use doorman_core::input::Deferred;
use doorman_core::password::MAX_PASSWORD_CHARS;
use doorman_core::password_change::ChangeAllowedBy;
use doorman_core::{Password, PasswordAttempt};
use serde::Deserialize;

pub fn router() -> Routes {
    Routes::new().route("/account/password", get(form).post(submit))
}

#[derive(Template)]
#[template(path = "password_change.html")]
struct PasswordPage {
    chrome: Chrome,
    csrf: String,
    done: bool,
    error: Option<String>,
    /// The field the error is about, which gets the focus.
    error_field: &'static str,
    min_chars: usize,
    max_chars: usize,
}

fn page(
    chrome: Chrome,
    state: &AppState,
    session: &crate::web::extract::CurrentSession,
    status: StatusCode,
    done: bool,
    error: Option<(&'static str, String)>,
) -> Response {
    let (error_field, error) = error.map_or(("", None), |(field, message)| (field, Some(message)));
    let page = PasswordPage {
        chrome,
        csrf: Csrf::token(state, session.token.expose()),
        done,
        error,
        error_field,
        min_chars: state.password_change.passwords().policy.min_chars,
        max_chars: MAX_PASSWORD_CHARS,
    };
    render(status, &page)
}

/// `GET /account/password`
pub async fn form(chrome: Chrome, State(state): State<AppState>, PageSession(session): PageSession) -> Response {
    page(chrome, &state, &session, StatusCode::OK, false, None)
}

#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: String,
    /// Any length: one too long to be a password is a wrong one, not a bad form.
    current_password: PasswordAttempt,
    /// A refusal is shown on this form.
    new_password: Deferred<Password>,
}

/// `POST /account/password`
pub async fn submit(
    chrome: Chrome,
    State(state): State<AppState>,
    Client(ctx): Client,
    PageSession(session): PageSession,
    PageForm(form): PageForm<PasswordForm>,
) -> Result<Response, PageError> {
    if !Csrf::check(&state, session.token.expose(), &form.csrf) {
        return Err(PageError(forbidden_form()));
    }
    let result = match (form.current_password.password(), form.new_password.value()) {
        (Some(current), Ok(new)) => state
            .password_change
            .change_password(&session.record, &session.account, ChangeAllowedBy::CurrentPassword(current), new, &ctx)
            .await
            .map_err(ApiError::from),
        (None, _) => Err(ApiError::from(AuthError::InvalidCredentials)),
        (_, Err(refused)) => Err(ApiError::from(refused)),
    };
    match result {
        Ok(_) => Ok(page(chrome, &state, &session, StatusCode::OK, true, None)),
        Err(error) if error.code == "invalid_credentials" => Ok(page(
            chrome,
            &state,
            &session,
            StatusCode::UNAUTHORIZED,
            false,
            Some(("current_password", "Your current password is not correct.".into())),
        )),
        Err(error) => {
            if !error.status.is_client_error() {
                return Err(PageError(error));
            }
            Ok(page(chrome, &state, &session, error.status, false, Some(("new_password", error.message))))
        }
    }
}
