use super::{render, Chrome};
use crate::web::error::PageError;
use crate::web::extract::{Client, PageForm, PageSession};
use crate::web::security::{forbidden_form, Csrf};
use crate::web::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    chrome: Chrome,
    csrf: String,
    username: String,
    email: String,
    user_type: &'static str,
    country: String,
    member_since: String,
}

/// `GET /account`
pub async fn show(State(state): State<AppState>, PageSession(session): PageSession) -> Response {
    let account = &session.account;
    let page = AccountPage {
        chrome: Chrome::new(&state, Some(account.username.as_str())),
        csrf: Csrf::token(&state, session.token.expose()),
        username: account.username.as_str().to_owned(),
        email: account.email.as_str().to_owned(),
        user_type: account.user_type.as_str(),
        country: account.country.as_str().to_owned(),
        member_since: account.created_at.date().to_string(),
    };
    render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub struct LogoutForm {
    csrf: String,
}

/// `POST /logout`
pub async fn logout(
    State(state): State<AppState>,
    Client(ctx): Client,
    PageSession(session): PageSession,
    jar: CookieJar,
    PageForm(form): PageForm<LogoutForm>,
) -> Result<Response, PageError> {
    if !Csrf::check(&state, session.token.expose(), &form.csrf) {
        return Err(PageError(forbidden_form()));
    }
    state.services.logout(&session.record, &ctx).await?;
    Ok((jar.add(state.web.removal(state.web.session_cookie)), Redirect::to("/login")).into_response())
}
