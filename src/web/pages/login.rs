use super::{render, Chrome};
use crate::web::error::{ApiError, PageError};
use crate::web::extract::{Client, MaybeSession, PageForm};
use crate::web::security::Csrf;
use crate::web::{sign_in, AppState};
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use axum_extra::extract::CookieJar;
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new().route("/login", get(show).post(submit))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    csrf: String,
    login: String,
    error: Option<String>,
    /// Too many attempts (429): the way out, "Reset your password", is a link.
    throttled: bool,
}

fn login_page(chrome: Chrome, state: &AppState, jar: CookieJar, status: StatusCode, login: String, error: Option<String>) -> Response {
    let (jar, binding) = Csrf::pre_session(state, jar);
    let throttled = status == StatusCode::TOO_MANY_REQUESTS;
    let page = LoginPage { chrome, csrf: Csrf::token(state, &binding), login, error, throttled };
    (jar, render(status, &page)).into_response()
}

/// `GET /login`
pub async fn show(chrome: Chrome, State(state): State<AppState>, MaybeSession(session): MaybeSession, jar: CookieJar) -> Response {
    if session.is_some() {
        return Redirect::to("/account").into_response();
    }
    login_page(chrome, &state, jar, StatusCode::OK, String::new(), None)
}

#[derive(Deserialize)]
pub struct LoginForm {
    login: String,
    password: String,
    csrf: String,
}

/// `POST /login`
pub async fn submit(
    chrome: Chrome,
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
            let mut response = login_page(chrome, &state, jar, status, form.login, Some(message));
            crate::web::error::set_retry_after(&mut response, retry_after);
            Ok(response)
        }
        Err(other) => Err(PageError(other)),
    }
}
