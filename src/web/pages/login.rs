use super::{render, Chrome};
use crate::web::error::{ApiError, PageError};
use crate::web::extract::{Client, MaybeSession, PageForm};
use crate::web::security::Csrf;
use crate::web::{sign_in, AppState};
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use doorman_core::{LoginIdentifier, PasswordAttempt};
use serde::Deserialize;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    csrf: String,
    login: String,
    error: Option<String>,
}

fn login_page(state: &AppState, jar: CookieJar, status: StatusCode, login: String, error: Option<String>) -> Response {
    let (jar, binding) = Csrf::pre_session(state, jar);
    let page = LoginPage { chrome: Chrome::new(state, None), csrf: Csrf::token(state, &binding), login, error };
    (jar, render(status, &page)).into_response()
}

/// `GET /login`
pub async fn show(State(state): State<AppState>, MaybeSession(session): MaybeSession, jar: CookieJar) -> Response {
    if session.is_some() {
        return Redirect::to("/account").into_response();
    }
    login_page(&state, jar, StatusCode::OK, String::new(), None)
}

#[derive(Deserialize)]
pub struct LoginForm {
    login: LoginIdentifier,
    /// Any length: one too long to be a password is a wrong one, not a bad form.
    password: PasswordAttempt,
    csrf: String,
}

/// `POST /login`
pub async fn submit(
    State(state): State<AppState>,
    Client(ctx): Client,
    MaybeSession(current): MaybeSession,
    jar: CookieJar,
    PageForm(form): PageForm<LoginForm>,
) -> Result<Response, PageError> {
    Csrf::check_anonymous(&state, &jar, &form.csrf)?;
    match sign_in(&state, current, jar.clone(), &form.login, &form.password, &ctx).await {
        Ok((jar, signed_in)) => {
            let next = if signed_in.second_step { "/login/verify" } else { "/account" };
            Ok((jar, Redirect::to(next)).into_response())
        }
        Err(ApiError { status, message, retry_after, .. }) if status.is_client_error() => {
            let mut response = login_page(&state, jar, status, form.login.as_typed().to_owned(), Some(message));
            crate::web::error::set_retry_after(&mut response, retry_after);
            Ok(response)
        }
        Err(other) => Err(PageError(other)),
    }
}
