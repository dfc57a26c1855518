//! The 2-step reset after a waiting period on pages (issue 11 §2): "I can't use any of
//! these" at the second step of login leads here. Opening an emailed link changes nothing:
//! its token moves into a short-lived cookie and a button does the rest (S1.8, S1.9).

use super::login::Then;
use super::{Chrome, render};
use crate::web::api::two_step_reset::limit;
use crate::web::error::{ApiError, PageError};
use crate::web::extract::{Client, CurrentSession, PageForm, PendingSession, Query};
use crate::web::routes::Routes;
use crate::web::security::{Csrf, forbidden_form, no_referrer};
use crate::web::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum_extra::extract::CookieJar;
use doorman_core::clock::{in_words, rfc2822};
use doorman_core::recovery::RecoveryToken;
use doorman_core::two_step_reset::{TwoStepResetError, TwoStepResetToken};
use serde::Deserialize;

pub fn router() -> Routes {
    Routes::new()
        .route("/login/two-step-reset", get(status_page).post(request))
        .route("/two-step-reset/confirm", get(confirm_page).post(confirm))
        .route("/two-step-reset/cancel", get(cancel_page).post(cancel))
        .route("/two-step-reset/finish", get(finish_page).post(finish))
}

#[derive(Template)]
#[template(path = "two_step_reset.html")]
struct ResetPage {
    chrome: Chrome,
    heading: String,
    csrf: String,
    error: Option<String>,
    notice: Option<String>,
    paragraphs: Vec<String>,
    /// The one button: where it posts and what it says.
    form: Option<(&'static str, &'static str)>,
    links: Vec<(&'static str, &'static str)>,
}

impl ResetPage {
    fn new(chrome: Chrome, heading: &str) -> Self {
        Self {
            chrome,
            heading: heading.to_owned(),
            csrf: String::new(),
            error: None,
            notice: None,
            paragraphs: Vec::new(),
            form: None,
            links: Vec::new(),
        }
    }
}

#[derive(Deserialize)]
pub struct ButtonForm {
    csrf: String,
}

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

/// Each emailed link's cookie (plain, and `__Host-` over https).
#[derive(Clone, Copy)]
enum Link {
    Confirm,
    Cancel,
    Finish,
}

impl Link {
    fn cookie(self, state: &AppState) -> &'static str {
        match (self, state.web.secure_cookies) {
            (Self::Confirm, false) => "doorman_two_step_reset_confirm",
            (Self::Confirm, true) => "__Host-doorman_two_step_reset_confirm",
            (Self::Cancel, false) => "doorman_two_step_reset_cancel",
            (Self::Cancel, true) => "__Host-doorman_two_step_reset_cancel",
            (Self::Finish, false) => "doorman_two_step_reset_finish",
            (Self::Finish, true) => "__Host-doorman_two_step_reset_finish",
        }
    }
    fn path(self) -> &'static str {
        match self {
            Self::Confirm => "/two-step-reset/confirm",
            Self::Cancel => "/two-step-reset/cancel",
            Self::Finish => "/two-step-reset/finish",
        }
    }
}

/// The finish link's cookie is there: the login page sends a half-signed-in browser back to
/// the finish page instead of the second step.
pub fn holds_finish_link(state: &AppState, jar: &CookieJar) -> bool {
    link_token(state, jar, Link::Finish).is_some()
}

fn link_token(state: &AppState, jar: &CookieJar, link: Link) -> Option<TwoStepResetToken> {
    jar.get(link.cookie(state)).and_then(|c| RecoveryToken::parse(c.value())).map(TwoStepResetToken::new)
}

/// `GET <link>?token=...`: the token moves into a cookie (the finish link's lives as long as
/// a login takes; the others 30 minutes), then the clean address.
fn take_link(state: &AppState, jar: CookieJar, link: Link, raw: &str) -> Response {
    let name = link.cookie(state);
    let jar = match RecoveryToken::parse(raw) {
        Some(token) => {
            let mut cookie = state.web.cookie(name, token.expose().to_owned());
            cookie.set_max_age(time::Duration::seconds(30 * 60));
            jar.add(cookie)
        }
        None => jar.add(state.web.removal(name)),
    };
    no_referrer((jar, Redirect::to(link.path())).into_response())
}

fn anonymous_page(state: &AppState, jar: CookieJar, status: StatusCode, page: ResetPage) -> Response {
    let (jar, binding) = Csrf::pre_session(state, jar);
    let page = ResetPage { csrf: Csrf::token(state, &binding), ..page };
    no_referrer((jar, render(status, &page)).into_response())
}

fn missing_link() -> String {
    "This link does not work: it may be cut short, already used, or expired. Open the newest link from our email, or see where your 2-step reset stands.".into()
}

/// The ways on from a link that does not work (found walking the pages on a phone: such a
/// card had none, and someone who fears a hijack could not tell whether the reset still ran).
fn ways_on() -> Vec<(&'static str, &'static str)> {
    vec![("/login/two-step-reset", "See where your 2-step reset stands"), ("/help/two-step-verification", "Help with 2-step verification")]
}

/// A refusal on the page, or the error page for anything else.
fn refusal(e: TwoStepResetError) -> Result<(StatusCode, String), PageError> {
    let error = ApiError::from(e);
    if error.status.is_client_error() { Ok((error.status, error.message)) } else { Err(PageError(error)) }
}

fn session_csrf(state: &AppState, session: &CurrentSession, token: &str) -> Result<(), PageError> {
    if Csrf::check(state, session.token.expose(), token) { Ok(()) } else { Err(PageError(forbidden_form())) }
}

// ---- "I can't use any of these": what happens, the request and its status ----

async fn status_view(chrome: Chrome, state: &AppState, session: &CurrentSession) -> Result<ResetPage, PageError> {
    let status = state.two_step_reset.status(&session.account).await?;
    let wait = in_words(state.two_step_reset.wait_seconds());
    let mut page = ResetPage {
        csrf: Csrf::token(state, session.token.expose()),
        links: vec![("/login/verify", "Back to 2-step verification"), ("/help/two-step-verification", "Help with 2-step verification")],
        ..ResetPage::new(chrome, "Reset 2-step verification")
    };
    match status.status {
        "waiting" | "ready" => {
            let ready_at = status.ready_at.unwrap_or_default();
            page.notice = Some(if status.status == "ready" {
                "The waiting period is over. Open the \"Finish your 2-step reset\" link we emailed you, in this browser.".into()
            } else {
                format!(
                    "Your 2-step reset is waiting. It can be finished after {} ({} from now). We will email you a link then.",
                    rfc2822(ready_at),
                    in_words(status.remaining_seconds.unwrap_or_default().max(1))
                )
            });
            page.paragraphs = vec!["Signing in with any of your 2-step methods meanwhile cancels it.".into()];
        }
        "email_sent" => {
            page.notice = Some("We emailed a link to your account's address. Open it to start the waiting period.".into());
            page.form = Some(("/login/two-step-reset", "Send the email again"));
        }
        "cancelled" => {
            page.notice = Some(format!(
                "Your last 2-step reset was cancelled, so a new one cannot start before {}. If you still cannot sign in, contact support.",
                rfc2822(status.new_request_after.unwrap_or_default())
            ));
            page.links.insert(0, ("/recovery-request", "Ask support for help"));
        }
        _ => {
            page.paragraphs = vec![
                "If you lost your phone, your authenticator app and your recovery codes, you can remove 2-step verification from your account after a waiting period. Here is what happens:".into(),
                "1. We email a link to your account's address. Opening it and confirming starts the wait.".into(),
                format!("2. The wait takes {wait}. We tell you at once by email and by text on every phone on file. Anyone who can still sign in with a method, or who has our email, can cancel it. Meanwhile your email, password, phone, methods and withdrawals cannot change."),
                "3. When the wait ends we email a link to finish. Open it in this browser and give your password: every 2-step method and recovery code is removed, every session is signed out, and you set up a new method straight away.".into(),
            ];
            page.form = Some(("/login/two-step-reset", "Email me a link to start"));
        }
    }
    Ok(page)
}

/// `GET /login/two-step-reset` (half-signed-in)
pub async fn status_page(
    chrome: Chrome,
    State(state): State<AppState>,
    PendingSession(session): PendingSession,
) -> Result<Response, PageError> {
    let Some(session) = session else { return Ok(Redirect::to(Then::TwoStepReset.login_path()).into_response()) };
    Ok(render(StatusCode::OK, &status_view(chrome, &state, &session).await?))
}

/// `POST /login/two-step-reset`: the confirm link goes out.
pub async fn request(
    chrome: Chrome,
    State(state): State<AppState>,
    Client(ctx): Client,
    PendingSession(session): PendingSession,
    PageForm(form): PageForm<ButtonForm>,
) -> Result<Response, PageError> {
    let Some(session) = session else { return Ok(Redirect::to(Then::TwoStepReset.login_path()).into_response()) };
    session_csrf(&state, &session, &form.csrf)?;
    let outcome = state.two_step_reset.request(&session.record, &session.account, &ctx).await;
    let mut page = status_view(chrome, &state, &session).await?;
    match outcome {
        Ok(()) => Ok(render(StatusCode::OK, &page)),
        Err(e) => {
            let (status, message) = refusal(e)?;
            page.error = Some(message);
            Ok(render(status, &page))
        }
    }
}

// ---- The emailed links ----

fn confirm_view(chrome: Chrome) -> ResetPage {
    ResetPage {
        paragraphs: vec![
            "Confirm to start the waiting period. We will tell you on every channel on file, and you can cancel during the wait.".into(),
        ],
        form: Some(("/two-step-reset/confirm", "Start the waiting period")),
        ..ResetPage::new(chrome, "Start your 2-step reset")
    }
}

/// `GET /two-step-reset/confirm[?token=...]`
pub async fn confirm_page(chrome: Chrome, State(state): State<AppState>, jar: CookieJar, Query(query): Query<TokenQuery>) -> Response {
    if let Some(raw) = query.token {
        return take_link(&state, jar, Link::Confirm, &raw);
    }
    link_page(chrome, &state, jar, Link::Confirm, confirm_view)
}

fn link_page(chrome: Chrome, state: &AppState, jar: CookieJar, link: Link, view: fn(Chrome) -> ResetPage) -> Response {
    if link_token(state, &jar, link).is_some() {
        anonymous_page(state, jar, StatusCode::OK, view(chrome))
    } else {
        let page = ResetPage { form: None, paragraphs: Vec::new(), error: Some(missing_link()), links: ways_on(), ..view(chrome) };
        anonymous_page(state, jar, StatusCode::BAD_REQUEST, page)
    }
}

/// `POST /two-step-reset/confirm`: the wait starts; the cookie goes whatever the outcome.
pub async fn confirm(
    chrome: Chrome,
    State(state): State<AppState>,
    Client(ctx): Client,
    jar: CookieJar,
    PageForm(form): PageForm<ButtonForm>,
) -> Result<Response, PageError> {
    Csrf::check_anonymous(&state, &jar, &form.csrf)?;
    limit(&state, &ctx)?;
    let result = match link_token(&state, &jar, Link::Confirm) {
        Some(token) => state.two_step_reset.confirm(&token, &ctx).await,
        None => Err(TwoStepResetError::InvalidToken),
    };
    let jar = jar.add(state.web.removal(Link::Confirm.cookie(&state)));
    let base = ResetPage { form: None, paragraphs: Vec::new(), ..confirm_view(chrome) };
    match result {
        Ok(ready_at) => {
            let page = ResetPage {
                notice: Some(format!("The waiting period has started. Your 2-step reset can be finished after {}.", rfc2822(ready_at))),
                paragraphs: vec![
                    "We will email you a link to finish then. Until then, signing in with any of your methods cancels the reset.".into(),
                ],
                ..base
            };
            Ok(anonymous_page(&state, jar, StatusCode::OK, page))
        }
        Err(e) => {
            let (status, message) = refusal(e)?;
            Ok(anonymous_page(&state, jar, status, ResetPage { error: Some(message), links: ways_on(), ..base }))
        }
    }
}

fn cancel_view(chrome: Chrome) -> ResetPage {
    ResetPage {
        paragraphs: vec!["If you did not ask to reset 2-step verification, cancel it: your methods stay as they are.".into()],
        form: Some(("/two-step-reset/cancel", "Cancel the 2-step reset")),
        ..ResetPage::new(chrome, "Cancel the 2-step reset")
    }
}

/// `GET /two-step-reset/cancel[?token=...]`
pub async fn cancel_page(chrome: Chrome, State(state): State<AppState>, jar: CookieJar, Query(query): Query<TokenQuery>) -> Response {
    if let Some(raw) = query.token {
        return take_link(&state, jar, Link::Cancel, &raw);
    }
    link_page(chrome, &state, jar, Link::Cancel, cancel_view)
}

/// `POST /two-step-reset/cancel`
pub async fn cancel(
    chrome: Chrome,
    State(state): State<AppState>,
    Client(ctx): Client,
    jar: CookieJar,
    PageForm(form): PageForm<ButtonForm>,
) -> Result<Response, PageError> {
    Csrf::check_anonymous(&state, &jar, &form.csrf)?;
    limit(&state, &ctx)?;
    let result = match link_token(&state, &jar, Link::Cancel) {
        Some(token) => state.two_step_reset.cancel(&token, &ctx).await,
        None => Err(TwoStepResetError::InvalidToken),
    };
    let jar = jar.add(state.web.removal(Link::Cancel.cookie(&state)));
    let base = ResetPage { form: None, paragraphs: Vec::new(), ..cancel_view(chrome) };
    match result {
        Ok(()) => {
            let page = ResetPage {
                notice: Some("The 2-step reset was cancelled. Your methods stay as they were.".into()),
                paragraphs: vec![
                    "If you did not ask for it, someone knows your password: sign in with one of your methods and change it.".into(),
                ],
                links: vec![("/login", "Log in")],
                ..base
            };
            Ok(anonymous_page(&state, jar, StatusCode::OK, page))
        }
        Err(e) => {
            let (status, message) = refusal(e)?;
            Ok(anonymous_page(&state, jar, status, ResetPage { error: Some(message), links: ways_on(), ..base }))
        }
    }
}

// ---- Finishing: the link plus the password, in the same browser ----

fn finish_view(chrome: Chrome, state: &AppState, session: Option<&CurrentSession>) -> ResetPage {
    let mut page = ResetPage::new(chrome, "Finish your 2-step reset");
    match session {
        Some(session) => {
            page.csrf = Csrf::token(state, session.token.expose());
            page.paragraphs = vec![
                "Finishing removes every 2-step method and recovery code of your account and signs out every session. You then set up a new method straight away.".into(),
            ];
            page.form = Some(("/two-step-reset/finish", "Remove 2-step and sign in"));
        }
        None => {
            page.paragraphs = vec!["Log in with your password in this browser first: you will come back here to finish.".into()];
            page.links = vec![("/login", "Log in")];
        }
    }
    page
}

/// `GET /two-step-reset/finish[?token=...]`
pub async fn finish_page(
    chrome: Chrome,
    State(state): State<AppState>,
    PendingSession(session): PendingSession,
    jar: CookieJar,
    Query(query): Query<TokenQuery>,
) -> Response {
    if let Some(raw) = query.token {
        return take_link(&state, jar, Link::Finish, &raw);
    }
    if link_token(&state, &jar, Link::Finish).is_none() {
        let page = ResetPage { error: Some(missing_link()), ..finish_view(chrome, &state, None) };
        let page = ResetPage { paragraphs: Vec::new(), links: ways_on(), ..page };
        return no_referrer(render(StatusCode::BAD_REQUEST, &page));
    }
    no_referrer(render(StatusCode::OK, &finish_view(chrome, &state, session.as_ref())))
}

/// `POST /two-step-reset/finish` (half-signed-in): on success, signed in and sent to set
/// up a new method.
pub async fn finish(
    chrome: Chrome,
    State(state): State<AppState>,
    Client(ctx): Client,
    PendingSession(session): PendingSession,
    jar: CookieJar,
    PageForm(form): PageForm<ButtonForm>,
) -> Result<Response, PageError> {
    let Some(session) = session else { return Ok(Redirect::to("/login").into_response()) };
    session_csrf(&state, &session, &form.csrf)?;
    let result = match link_token(&state, &jar, Link::Finish) {
        Some(token) => state.two_step_reset.complete(&session.record, &session.account, &token, &ctx).await,
        None => Err(TwoStepResetError::InvalidToken),
    };
    match result {
        Ok(token) => {
            let jar = jar.add(state.web.removal(Link::Finish.cookie(&state)));
            let jar = crate::web::shared::signed_in_cookies(&state, jar, &token, None);
            Ok((jar, Redirect::to("/account/security")).into_response())
        }
        Err(e) => {
            let not_ready = matches!(e, TwoStepResetError::NotReady(_));
            let (status, message) = refusal(e)?;
            // Too early, the link stays for later; a bad link goes.
            let jar = if not_ready { jar } else { jar.add(state.web.removal(Link::Finish.cookie(&state))) };
            let page = ResetPage { error: Some(message), form: None, ..finish_view(chrome, &state, Some(&session)) };
            Ok((jar, no_referrer(render(status, &page))).into_response())
        }
    }
}
