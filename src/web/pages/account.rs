use super::{Chrome, render};
use crate::web::error::PageError;
use crate::web::extract::{Client, PageForm, PageSession};
use crate::web::routes::Routes;
use crate::web::security::{Csrf, forbidden_form};
use crate::web::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::CookieJar;
use serde::Deserialize;

pub fn router() -> Routes {
    Routes::new()
        .route("/account", get(show))
        .route("/account/sessions", get(sessions))
        .route("/account/sessions/revoke", post(revoke))
        .route("/logout", post(logout))
}

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
pub async fn show(State(state): State<AppState>, chrome: Chrome, PageSession(session): PageSession) -> Response {
    let account = &session.account;
    let page = AccountPage {
        chrome,
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
    state.auth.logout(&session.record, &ctx).await?;
    Ok((jar.add(state.web.removal(state.web.session_cookie)), Redirect::to("/login?logged_out=1")).into_response())
}

pub struct SessionRow {
    pub id: String,
    pub started: String,
    pub last_seen: String,
    pub ip: String,
    pub device: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "sessions.html")]
struct SessionsPage {
    chrome: Chrome,
    csrf: String,
    sessions: Vec<SessionRow>,
}

pub(super) fn when(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| t.format(&time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC")).ok())
        .unwrap_or_default()
}

/// `GET /account/sessions`: where you are signed in, each revocable (S7.8).
pub async fn sessions(State(state): State<AppState>, chrome: Chrome, PageSession(session): PageSession) -> Result<Response, PageError> {
    let live = state.auth.live_sessions(&session.account.id).await?;
    let rows = live
        .into_iter()
        .map(|s| SessionRow {
            current: s.id_hash == session.record.id_hash,
            id: s.id_hash,
            started: when(s.created_at),
            last_seen: when(s.last_seen_at),
            ip: s.ip,
            // Never the raw header: the client wrote it (S9.2).
            device: doorman_core::device::Device::from_user_agent(&s.user_agent).title(),
        })
        .collect();
    let page = SessionsPage { chrome, csrf: Csrf::token(&state, session.token.expose()), sessions: rows };
    Ok(render(StatusCode::OK, &page))
}

#[derive(Deserialize)]
pub struct RevokeForm {
    csrf: String,
    /// A session's id, or absent for every other session.
    id: Option<String>,
}

/// `POST /account/sessions/revoke`
pub async fn revoke(
    State(state): State<AppState>,
    Client(ctx): Client,
    PageSession(session): PageSession,
    PageForm(form): PageForm<RevokeForm>,
) -> Result<Response, PageError> {
    if !Csrf::check(&state, session.token.expose(), &form.csrf) {
        return Err(PageError(forbidden_form()));
    }
    state.auth.revoke_sessions(&session.record, form.id.as_deref(), &ctx).await?;
    Ok(Redirect::to("/account/sessions").into_response())
}
