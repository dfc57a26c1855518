//! "Forgot your answer?" pages (issue 11 §1) and the security activity page (§5). The
//! emailed link's token leaves the address bar at the first visit (a one-hour cookie,
//! `Referrer-Policy: no-referrer`, a redirect); only the submitted form spends it.

use super::{Chrome, render};
use crate::web::error::{ApiError, PageError};
use crate::web::extract::{Client, PageForm, PageSession, PendingSession, Query};
use crate::web::routes::Routes;
use crate::web::security::{Csrf, forbidden_form, no_referrer};
use crate::web::state::AppState;
use crate::web::step_up::urlencode;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::CookieJar;
use doorman_core::answer_reset::{ANSWER_RESET_TTL_SECONDS, AnswerResetError, AnswerResetGrant, AnswerResetOrigin, AnswerResetToken};
use doorman_core::factors::{AnswerError, FactorCode, FactorKind, MethodView, SECURITY_QUESTIONS, SecurityAnswer};
use doorman_core::two_step::TwoStepError;
use serde::Deserialize;

pub fn router() -> Routes {
    Routes::new()
        .route("/login/verify/forgot-answer", post(from_login))
        .route("/reset-password/forgot-answer", post(from_reset))
        .route("/answer-reset", get(show).post(submit))
        .route("/answer-reset/send", post(send))
        .route("/account/activity", get(activity))
}

#[derive(Template)]
#[template(path = "answer_sent.html")]
struct SentPage {
    chrome: Chrome,
    back: &'static str,
    back_label: &'static str,
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf: String,
}

/// `POST /login/verify/forgot-answer`: from the second step of login. The same page whether
/// or not an email was sent.
pub async fn from_login(
    chrome: Chrome,
    State(state): State<AppState>,
    Client(ctx): Client,
    PendingSession(session): PendingSession,
    PageForm(form): PageForm<CsrfOnly>,
) -> Result<Response, PageError> {
    let Some(session) = session else { return Ok(Redirect::to("/login").into_response()) };
    if !Csrf::check(&state, session.token.expose(), &form.csrf) {
        return Err(PageError(forbidden_form()));
    }
    state.answer_reset.request(&session.account, AnswerResetOrigin::Login, &ctx).await?;
    Ok(render(StatusCode::OK, &SentPage { chrome, back: "/login/verify", back_label: "Back to 2-step verification" }))
}

/// `POST /reset-password/forgot-answer`: from the second step of a reset (the reset cookie's
/// grant). The same page whether or not an email was sent.
pub async fn from_reset(
    chrome: Chrome,
    State(state): State<AppState>,
    Client(ctx): Client,
    jar: CookieJar,
    PageForm(form): PageForm<CsrfOnly>,
) -> Result<Response, PageError> {
    Csrf::check_anonymous(&state, &jar, &form.csrf)?;
    if let Ok(grant) = super::recovery::cookie_grant(&state, &jar).await? {
        state.answer_reset.request(grant.account(), AnswerResetOrigin::Reset, &ctx).await?;
    }
    let page = SentPage { chrome, back: "/reset-password", back_label: "Back to choosing a new password" };
    Ok(no_referrer(render(StatusCode::OK, &page)))
}

const COOKIE: &str = "doorman_answer_reset";
const COOKIE_SECURE: &str = "__Host-doorman_answer_reset";

fn cookie_name(state: &AppState) -> &'static str {
    if state.web.secure_cookies { COOKIE_SECURE } else { COOKIE }
}

/// The cookie holds the link's token and where it was asked from ("<origin>.<token>").
fn cookie_value(state: &AppState, jar: &CookieJar) -> Option<(AnswerResetOrigin, AnswerResetToken)> {
    let raw = jar.get(cookie_name(state))?.value().to_owned();
    let (origin, token) = raw.split_once('.')?;
    Some((AnswerResetOrigin::parse(origin)?, AnswerResetToken::parse(token)?))
}

#[derive(Template)]
#[template(path = "answer_reset.html")]
struct AnswerResetPage {
    chrome: Chrome,
    csrf: String,
    expired: bool,
    done: Option<String>,
    error: Option<String>,
    error_field: Option<&'static str>,
    notice: Option<String>,
    methods: Vec<Method>,
    questions: &'static [(&'static str, &'static str)],
    question_id: String,
    from_reset: bool,
}

struct Method {
    view: MethodView,
    selected: bool,
    sent: bool,
}

impl AnswerResetPage {
    fn invalid(&self, field: &str) -> bool {
        self.error_field == Some(field)
    }
}

fn blank(chrome: Chrome, origin: AnswerResetOrigin) -> AnswerResetPage {
    AnswerResetPage {
        chrome,
        csrf: String::new(),
        expired: false,
        done: None,
        error: None,
        error_field: None,
        notice: None,
        methods: Vec::new(),
        questions: &SECURITY_QUESTIONS,
        question_id: String::new(),
        from_reset: origin == AnswerResetOrigin::Reset,
    }
}

/// What the reset cookie leads to: the link's grant, or (no cookie, or a dead link) only
/// where it came from, for the expired page.
enum Opened {
    Live(AnswerResetOrigin, AnswerResetGrant),
    Expired(AnswerResetOrigin),
}

async fn open_from_cookie(state: &AppState, jar: &CookieJar) -> Result<Opened, PageError> {
    let Some((origin, token)) = cookie_value(state, jar) else { return Ok(Opened::Expired(AnswerResetOrigin::Login)) };
    match state.answer_reset.open(&token).await {
        Ok(grant) => Ok(Opened::Live(origin, grant)),
        Err(AnswerResetError::InvalidToken) => Ok(Opened::Expired(origin)),
        Err(e) => Err(PageError(ApiError::from(e))),
    }
}

/// The page for a link that no longer works.
fn expired(chrome: Chrome, state: &AppState, jar: CookieJar, status: StatusCode, origin: AnswerResetOrigin) -> Response {
    respond(state, jar, status, AnswerResetPage { expired: true, ..blank(chrome, origin) })
}

fn respond(state: &AppState, jar: CookieJar, status: StatusCode, mut page: AnswerResetPage) -> Response {
    let (jar, binding) = Csrf::pre_session(state, jar);
    page.csrf = Csrf::token(state, &binding);
    no_referrer((jar, render(status, &page)).into_response())
}

async fn with_methods(
    state: &AppState,
    grant: &AnswerResetGrant,
    mut page: AnswerResetPage,
    selected: Option<&str>,
) -> Result<AnswerResetPage, ApiError> {
    let views = state.answer_reset.methods(grant).await?;
    let chosen = selected.filter(|id| views.iter().any(|m| m.id == *id)).or(views.first().map(|m| m.id.as_str())).map(str::to_owned);
    for view in views {
        let sent = view.kind.is_sent() && state.answer_reset.code_sent(grant, &view.id).await?;
        let selected = chosen.as_deref() == Some(view.id.as_str());
        page.methods.push(Method { view, selected, sent });
    }
    Ok(page)
}

#[derive(Deserialize)]
pub struct ShowQuery {
    token: Option<String>,
    from: Option<String>,
    method: Option<String>,
    sent: Option<String>,
}

/// `GET /answer-reset[?token=...&from=login|reset]`: opening the link changes nothing; the
/// token moves into a cookie and the page redirects to a clean address.
pub async fn show(
    chrome: Chrome,
    State(state): State<AppState>,
    jar: CookieJar,
    Query(query): Query<ShowQuery>,
) -> Result<Response, PageError> {
    if let Some(raw) = query.token {
        let origin = query.from.as_deref().and_then(AnswerResetOrigin::parse).unwrap_or(AnswerResetOrigin::Login);
        let jar = match AnswerResetToken::parse(&raw) {
            Some(token) => {
                let mut cookie = state.web.cookie(cookie_name(&state), format!("{}.{}", origin.as_str(), token.expose()));
                cookie.set_max_age(time::Duration::seconds(ANSWER_RESET_TTL_SECONDS));
                jar.add(cookie)
            }
            None => jar.add(state.web.removal(cookie_name(&state))),
        };
        return Ok(no_referrer((jar, Redirect::to("/answer-reset")).into_response()));
    }
    let (origin, grant) = match open_from_cookie(&state, &jar).await? {
        Opened::Live(origin, grant) => (origin, grant),
        Opened::Expired(origin) => return Ok(expired(chrome, &state, jar, StatusCode::OK, origin)),
    };
    let mut page = with_methods(&state, &grant, blank(chrome, origin), query.method.as_deref()).await?;
    if query.sent.is_some() && page.methods.iter().any(|m| m.selected && m.sent) {
        page.notice = page.methods.iter().find(|m| m.selected).map(|m| super::recovery::sent_notice(&m.view));
    }
    Ok(respond(&state, jar, StatusCode::OK, page))
}

#[derive(Deserialize)]
pub struct SubmitForm {
    csrf: String,
    method_id: Option<String>,
    code: Option<FactorCode>,
    question_id: Option<String>,
    answer: Option<String>,
}

/// The field a refusal is about.
fn field_of(error: &AnswerResetError) -> &'static str {
    match error {
        AnswerResetError::TwoStep(TwoStepError::Answer(AnswerError::UnknownQuestion)) => "question_id",
        AnswerResetError::TwoStep(TwoStepError::Answer(_)) => "answer",
        _ => "code",
    }
}

/// `POST /answer-reset`: the method, then the new question; the only step that spends the link.
pub async fn submit(
    chrome: Chrome,
    State(state): State<AppState>,
    Client(ctx): Client,
    jar: CookieJar,
    PageForm(form): PageForm<SubmitForm>,
) -> Result<Response, PageError> {
    Csrf::check_anonymous(&state, &jar, &form.csrf)?;
    let (origin, grant) = match open_from_cookie(&state, &jar).await? {
        Opened::Live(origin, grant) => (origin, grant),
        Opened::Expired(origin) => return Ok(expired(chrome, &state, jar, StatusCode::BAD_REQUEST, origin)),
    };
    let method_id = form.method_id.unwrap_or_default();
    let question_id = form.question_id.unwrap_or_default();
    let code = form.code.unwrap_or_else(|| FactorCode::new(""));
    let result = match SecurityAnswer::new(form.answer.as_deref().unwrap_or_default()) {
        Err(refused) => Err(AnswerResetError::TwoStep(TwoStepError::Answer(refused))),
        Ok(_) if code.expose().trim().is_empty() => Err(AnswerResetError::TwoStep(TwoStepError::Invalid)),
        Ok(answer) => state.answer_reset.complete(&grant, &method_id, &code, &question_id, &answer, &ctx).await,
    };
    match result {
        Ok(()) => {
            let jar = jar.add(state.web.removal(cookie_name(&state)));
            let done = "Your new security question is set. We have emailed you a confirmation. It will be asked at your next sign-in.";
            Ok(respond(&state, jar, StatusCode::OK, AnswerResetPage { done: Some(done.into()), ..blank(chrome, origin) }))
        }
        Err(AnswerResetError::InvalidToken) => Ok(expired(chrome, &state, jar, StatusCode::BAD_REQUEST, origin)),
        Err(e) => {
            let field = field_of(&e);
            let error = ApiError::from(e);
            if !error.status.is_client_error() {
                return Err(PageError(error));
            }
            let page = AnswerResetPage { error: Some(error.message), error_field: Some(field), question_id, ..blank(chrome, origin) };
            let page = with_methods(&state, &grant, page, Some(&method_id)).await?;
            Ok(respond(&state, jar, error.status, page))
        }
    }
}

#[derive(Deserialize)]
pub struct SendForm {
    csrf: String,
    method_id: String,
}

/// `POST /answer-reset/send`: an SMS or email code bound to the link.
pub async fn send(
    chrome: Chrome,
    State(state): State<AppState>,
    Client(ctx): Client,
    jar: CookieJar,
    PageForm(form): PageForm<SendForm>,
) -> Result<Response, PageError> {
    Csrf::check_anonymous(&state, &jar, &form.csrf)?;
    let (origin, grant) = match open_from_cookie(&state, &jar).await? {
        Opened::Live(origin, grant) => (origin, grant),
        Opened::Expired(origin) => return Ok(expired(chrome, &state, jar, StatusCode::BAD_REQUEST, origin)),
    };
    match state.answer_reset.send_code(&grant, &form.method_id, &ctx).await {
        Ok(()) => Ok(no_referrer(Redirect::to(&format!("/answer-reset?method={}&sent=1", urlencode(&form.method_id))).into_response())),
        Err(e) => {
            let error = ApiError::from(e);
            if !error.status.is_client_error() {
                return Err(PageError(error));
            }
            let page = AnswerResetPage { error: Some(error.message), error_field: Some("code"), ..blank(chrome, origin) };
            let page = with_methods(&state, &grant, page, Some(&form.method_id)).await?;
            Ok(respond(&state, jar, error.status, page))
        }
    }
}

#[derive(Template)]
#[template(path = "activity.html")]
struct ActivityPage {
    chrome: Chrome,
    items: Vec<ActivityRow>,
    next_before: Option<i64>,
    older_page: bool,
    csrf: String,
    /// Approved support changes not yet in effect, each with a cancel button.
    pending: Vec<PendingRow>,
    support_cancelled: bool,
}

struct PendingRow {
    id: String,
    change: String,
    effective: String,
}

struct ActivityRow {
    title: &'static str,
    when: String,
    device: String,
    ip: String,
    report_url: String,
}

#[derive(Deserialize)]
pub struct ActivityQuery {
    before: Option<i64>,
    support_cancelled: Option<u8>,
}

/// `GET /account/activity[?before=ID]`: recent sign-ins and security changes, each with
/// "This wasn't me", a page at a time.
pub async fn activity(
    chrome: Chrome,
    State(state): State<AppState>,
    PageSession(session): PageSession,
    Query(query): Query<ActivityQuery>,
) -> Result<Response, PageError> {
    let page = state.activity.page(&session.account.id, query.before).await.map_err(|e| PageError(ApiError::from(e)))?;
    let items = page
        .items
        .into_iter()
        .map(|i| ActivityRow {
            title: i.title,
            when: super::account::when(i.at),
            device: i.device,
            ip: i.ip,
            report_url: crate::web::shared::report_url(i.id),
        })
        .collect();
    let pending = state
        .support
        .pending_for_owner(&session.account.id)
        .await
        .map_err(|e| PageError(ApiError::from(e)))?
        .into_iter()
        .map(|a| PendingRow {
            change: a.describe(),
            effective: a.effective_at.map(doorman_core::clock::rfc2822).unwrap_or_default(),
            id: a.id,
        })
        .collect();
    let view = ActivityPage {
        chrome,
        items,
        next_before: page.next_before,
        older_page: query.before.is_some(),
        csrf: crate::web::security::Csrf::token(&state, session.token.expose()),
        pending,
        support_cancelled: query.support_cancelled.is_some(),
    };
    Ok(render(StatusCode::OK, &view))
}
