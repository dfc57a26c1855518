use super::{Chrome, render};
use crate::web::error::{ApiError, PageError};
use crate::web::extract::{Client, MaybeSession, PageForm, Query};
use crate::web::routes::Routes;
use crate::web::security::Csrf;
use crate::web::shared::sign_in;
use crate::web::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum_extra::extract::CookieJar;
use doorman_core::{LoginIdentifier, PasswordAttempt};
use serde::Deserialize;

pub fn router() -> Routes {
    Routes::new().route("/login", get(show).post(submit))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    csrf: String,
    login: String,
    said: Said,
    then: Option<Then>,
}

/// Where a login goes once the password is right, besides the usual: one of a fixed few
/// pages, never an address from the request (no open redirect).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// The reset of 2-step verification after a waiting period, which starts after the
    /// password without the second step (the person lost every method).
    TwoStepReset,
}

impl Then {
    pub fn parse(raw: Option<&str>) -> Option<Self> {
        (raw? == "two-step-reset").then_some(Self::TwoStepReset)
    }
    pub fn as_str(self) -> &'static str {
        "two-step-reset"
    }
    /// The login page that comes back here.
    pub fn login_path(self) -> &'static str {
        "/login?then=two-step-reset"
    }
    fn path(self) -> &'static str {
        "/login/two-step-reset"
    }
}

/// What the page says above the form.
#[derive(Default)]
struct Said {
    error: Option<String>,
    /// Locked for a while after failed attempts: a reset is the way round.
    throttled: bool,
    /// Locked from a "this wasn't me" link (said only after the right password).
    locked: bool,
    locked_for_support: bool,
    logged_out: bool,
}

fn login_page(
    chrome: Chrome,
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    login: String,
    said: Said,
    then: Option<Then>,
) -> Response {
    let (jar, binding) = Csrf::pre_session(state, jar);
    let page = LoginPage { chrome, csrf: Csrf::token(state, &binding), login, said, then };
    (jar, render(status, &page)).into_response()
}

#[derive(Deserialize)]
pub struct LoginQuery {
    /// Set by the log-out redirect.
    logged_out: Option<String>,
    /// Where to go after the password ([`Then`]); anything else is ignored.
    then: Option<String>,
}

/// `GET /login`
pub async fn show(
    chrome: Chrome,
    State(state): State<AppState>,
    MaybeSession(session): MaybeSession,
    jar: CookieJar,
    Query(query): Query<LoginQuery>,
) -> Response {
    // Signed in already: the account, whatever `then` says (the 2-step reset takes only a
    // half-signed-in session, which would send a full one back here).
    if session.is_some() {
        return Redirect::to("/account").into_response();
    }
    let then = Then::parse(query.then.as_deref());
    let said = Said { logged_out: query.logged_out.is_some(), ..Said::default() };
    login_page(chrome, &state, jar, StatusCode::OK, String::new(), said, then)
}

#[derive(Deserialize)]
pub struct LoginForm {
    login: LoginIdentifier,
    /// Any length: one too long to be a password is a wrong one, not a bad form.
    password: PasswordAttempt,
    csrf: String,
    #[serde(default)]
    then: Option<String>,
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
    let then = Then::parse(form.then.as_deref());
    match sign_in(&state, current, jar.clone(), &form.login, &form.password, &ctx).await {
        Ok((jar, signed_in)) => {
            // A browser holding a 2-step reset's finish link goes back to finish it.
            let next = match (signed_in.second_step, then) {
                (true, _) if super::two_step_reset::holds_finish_link(&state, &jar) => "/two-step-reset/finish",
                (true, Some(then)) => then.path(),
                (true, None) => "/login/verify",
                (false, _) => "/account",
            };
            Ok((jar, Redirect::to(next)).into_response())
        }
        Err(ApiError { status, code, message, retry_after, .. }) if status.is_client_error() => {
            let said = Said {
                error: Some(message),
                throttled: code == "too_many_attempts",
                locked: code == "account_locked",
                locked_for_support: code == "account_locked_for_support",
                logged_out: false,
            };
            let mut response = login_page(chrome, &state, jar, status, form.login.as_typed().to_owned(), said, then);
            crate::web::error::set_retry_after(&mut response, retry_after);
            Ok(response)
        }
        Err(other) => Err(PageError(other)),
    }
}
