//! Forgot password and reset pages (checklist S1, S2). The reset link's token leaves the URL
//! at once: the first visit moves it into a short-lived cookie and redirects (S1.8).

use super::{Chrome, render};
use crate::web::error::{ApiError, PageError};
use crate::web::extract::{Client, PageForm, Query};
use crate::web::routes::Routes;
use crate::web::security::{Csrf, no_referrer};
use crate::web::shared::{request_reset, reset_password};
use crate::web::state::AppState;
use crate::web::step_up::urlencode;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::CookieJar;
use doorman_core::factors::{FactorCode, FactorKind, MethodView};
use doorman_core::input::Deferred;
use doorman_core::password::MAX_PASSWORD_CHARS;
use doorman_core::recovery::{RecoveryToken, ResetCodeAttempt, ResetError, ResetGrant, ResetProof, SecondFactorProof};
use doorman_core::{LoginIdentifier, Password};
use serde::Deserialize;

pub fn router() -> Routes {
    Routes::new()
        .route("/forgot-password", get(forgot_form).post(forgot_submit))
        .route("/reset-password", get(reset_form).post(reset_submit))
        .route("/reset-password/code", post(code_submit))
        .route("/reset-password/send", post(reset_send))
}

#[derive(Template)]
#[template(path = "forgot_password.html")]
struct ForgotPage {
    chrome: Chrome,
    csrf: String,
    login: String,
    sent: bool,
    /// The field was left empty: said on the form, which keeps focus there.
    error: Option<String>,
}

fn forgot_page(chrome: Chrome, state: &AppState, jar: CookieJar, login: String, sent: bool) -> Response {
    forgot_page_with(chrome, state, jar, login, sent, None)
}

fn forgot_page_with(chrome: Chrome, state: &AppState, jar: CookieJar, login: String, sent: bool, error: Option<ApiError>) -> Response {
    let (jar, binding) = Csrf::pre_session(state, jar);
    let status = error.as_ref().map_or(StatusCode::OK, |e| e.status);
    let page = ForgotPage { chrome, csrf: Csrf::token(state, &binding), login, sent, error: error.map(|e| e.message) };
    (jar, render(status, &page)).into_response()
}

/// `GET /forgot-password`
pub async fn forgot_form(chrome: Chrome, State(state): State<AppState>, jar: CookieJar) -> Response {
    forgot_page(chrome, &state, jar, String::new(), false)
}

#[derive(Deserialize)]
pub struct ForgotForm {
    login: LoginIdentifier,
    csrf: String,
}

/// `POST /forgot-password`: the same page for everyone (S2.1, S2.2), which also offers to
/// send again.
pub async fn forgot_submit(
    chrome: Chrome,
    State(state): State<AppState>,
    Client(ctx): Client,
    jar: CookieJar,
    PageForm(form): PageForm<ForgotForm>,
) -> Result<Response, PageError> {
    Csrf::check_anonymous(&state, &jar, &form.csrf)?;
    let typed: String = form.login.as_typed().chars().take(320).collect();
    match request_reset(&state, &form.login, &ctx).await {
        Ok(()) => Ok(forgot_page(chrome, &state, jar, typed, true)),
        Err(error) if error.code == "invalid_login" => Ok(forgot_page_with(chrome, &state, jar, typed, false, Some(error))),
        Err(error) => Err(PageError(error)),
    }
}

/// The reset page, in steps that never redraw silently:
/// 1. (code route) "Enter the code": the login and the emailed code, checked and counted;
///    a right code is exchanged for a continuation kept in the reset cookie, as the link's
///    token is, so the code is never written back into a page;
/// 2. "Confirm it is you" (when 2-step is on: the methods with their masked hints, shown only
///    with a verified grant, S3.7) and "New password", in one form.
#[derive(Template)]
#[template(path = "reset_password.html")]
struct ResetPage {
    chrome: Chrome,
    csrf: String,
    step: Step,
    /// The reset came by the emailed code: the page says which step this is.
    by_code: bool,
    /// Step 1: the login as typed (a code is never written back).
    login: String,
    error: Option<String>,
    /// The field the error is about: it gets `aria-invalid`, `aria-describedby` and focus.
    error_field: Option<Field>,
    /// The code was tried too many times: the error comes with the ways forward.
    locked: bool,
    notice: Option<String>,
    /// With 2-step on, the methods to confirm with (S1.12), one of them selected.
    methods: Vec<ResetMethod>,
    /// 2-step is on but no method can be used here (issue 8).
    no_usable_method: Option<&'static str>,
    /// A lock only support lifts holds the account: the page says so instead of the form.
    support_only: bool,
    min_chars: usize,
    max_chars: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The login and the emailed code.
    Code,
    /// The 2-step method (if on) and the new password.
    NewPassword,
    /// The link (or the continued code) no longer works.
    Expired,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Login,
    Code,
    FactorCode,
    NewPassword,
}

struct ResetMethod {
    view: MethodView,
    selected: bool,
    /// A code sent for this reset to this method can still be used.
    sent: bool,
}

impl ResetPage {
    /// The reset may ask the security question: "Forgot your answer?" is offered.
    fn has_question(&self) -> bool {
        self.methods.iter().any(|m| m.view.kind == FactorKind::SecurityQuestion)
    }

    fn invalid(&self, field: &str) -> bool {
        self.error_field.is_some_and(|f| f.name() == field)
    }

    /// The field that gets the focus: the one in error, else, right after a code was sent,
    /// the field to type it in.
    fn focus(&self, field: &str) -> bool {
        match self.error_field {
            Some(f) => f.name() == field,
            None => field == "factor_code" && self.notice.is_some(),
        }
    }
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Code => "code",
            Self::FactorCode => "factor_code",
            Self::NewPassword => "new_password",
        }
    }
}

#[derive(Template)]
#[template(path = "reset_done.html")]
struct ResetDonePage {
    chrome: Chrome,
}

const RESET_COOKIE: &str = "doorman_reset";
const RESET_COOKIE_SECURE: &str = "__Host-doorman_reset";

fn reset_cookie_name(state: &AppState) -> &'static str {
    if state.web.secure_cookies { RESET_COOKIE_SECURE } else { RESET_COOKIE }
}

/// The reset cookie, holding a link's token or a verified code's continuation.
fn reset_cookie(state: &AppState, value: String) -> axum_extra::extract::cookie::Cookie<'static> {
    let mut cookie = state.web.cookie(reset_cookie_name(state), value);
    cookie.set_max_age(time::Duration::seconds(state.recovery.reset_token_ttl_seconds()));
    cookie
}

/// What the reset cookie proves, if it holds anything of the right shape.
fn cookie_proof(state: &AppState, jar: &CookieJar) -> Option<ResetProof> {
    jar.get(reset_cookie_name(state)).and_then(|c| ResetProof::from_cookie(c.value()))
}

#[derive(Deserialize)]
pub struct ResetQuery {
    token: Option<String>,
    with: Option<String>,
    /// The method to show selected (after a code was sent to it).
    method: Option<String>,
    /// A code was just sent to `method`.
    sent: Option<String>,
}

/// A page of the reset flow, before the methods are filled in.
fn blank(chrome: Chrome, step: Step) -> ResetPage {
    ResetPage {
        chrome,
        csrf: String::new(),
        step,
        by_code: false,
        login: String::new(),
        error: None,
        error_field: None,
        locked: false,
        notice: None,
        methods: Vec::new(),
        no_usable_method: None,
        support_only: false,
        min_chars: 0,
        max_chars: MAX_PASSWORD_CHARS,
    }
}

fn reset_page(state: &AppState, jar: CookieJar, status: StatusCode, mut page: ResetPage) -> Response {
    let (jar, binding) = Csrf::pre_session(state, jar);
    page.csrf = Csrf::token(state, &binding);
    page.min_chars = state.recovery.passwords().policy.min_chars;
    no_referrer((jar, render(status, &page)).into_response())
}

/// Step 2 for a verified grant: the methods (one selected, each sent method saying whether
/// its code is on the way) and the new password.
async fn new_password_page(
    chrome: Chrome,
    state: &AppState,
    grant: &ResetGrant,
    selected: Option<&str>,
    just_sent: bool,
) -> Result<ResetPage, ApiError> {
    let views = state.recovery.reset_methods(grant).await?;
    let chosen = selected.filter(|id| views.iter().any(|m| m.id == *id)).or(views.first().map(|m| m.id.as_str())).map(str::to_owned);
    let mut methods = Vec::with_capacity(views.len());
    for view in views {
        let sent = view.kind.is_sent() && state.recovery.reset_code_sent(grant, &view.id).await?;
        let selected = chosen.as_deref() == Some(view.id.as_str());
        methods.push(ResetMethod { view, selected, sent });
    }
    let notice = methods.iter().find(|m| m.selected && m.sent && just_sent).map(|m| sent_notice(&m.view));
    let stranded = methods.is_empty() && state.two_step.two_step_enabled(grant.account()).await?;
    let support_only = match state.recovery.refuse_support_only_lock(grant.account()).await {
        Ok(()) => false,
        Err(ResetError::SupportUnlockRequired) => true,
        Err(other) => return Err(other.into()),
    };
    Ok(ResetPage {
        support_only,
        by_code: grant.by_code(),
        notice,
        methods,
        no_usable_method: stranded.then_some(doorman_core::two_step::NO_USABLE_METHOD),
        ..blank(chrome, Step::NewPassword)
    })
}

/// "We texted a code to +63 *** *** 4521. It works for 10 minutes."
pub fn sent_notice(method: &MethodView) -> String {
    let verb = if method.kind == FactorKind::Sms { "texted" } else { "emailed" };
    format!("We {verb} a code to {}. It works for 10 minutes.", method.hint)
}

/// The page for a reset that no longer works, with the ways forward: 200 when it is only
/// looked at, 400 when a form was sent to it.
fn expired_page(chrome: Chrome, state: &AppState, jar: CookieJar, status: StatusCode, by_code: bool) -> Response {
    let jar = jar.add(state.web.removal(reset_cookie_name(state)));
    reset_page(state, jar, status, ResetPage { by_code, ..blank(chrome, Step::Expired) })
}

/// The error of a step, shown on its page when a person can act on it.
fn shown(error: ApiError) -> Result<ApiError, PageError> {
    if error.status.is_client_error() { Ok(error) } else { Err(PageError(error)) }
}

/// `GET /reset-password[?token=...|?with=code]`. Opening the link changes nothing (S1.9):
/// the token is only moved into a cookie, and the page says whether it still works.
pub async fn reset_form(
    chrome: Chrome,
    State(state): State<AppState>,
    jar: CookieJar,
    Query(query): Query<ResetQuery>,
) -> Result<Response, PageError> {
    if let Some(raw) = query.token {
        let (jar, to) = match RecoveryToken::parse(&raw) {
            Some(token) => (jar.add(reset_cookie(&state, token.expose().to_owned())), "/reset-password"),
            None => (jar.add(state.web.removal(reset_cookie_name(&state))), "/reset-password?with=code"),
        };
        return Ok(no_referrer((jar, Redirect::to(to)).into_response()));
    }
    let proof = if query.with.as_deref() == Some("code") { None } else { cookie_proof(&state, &jar) };
    let Some(proof) = proof else {
        return Ok(reset_page(&state, jar, StatusCode::OK, ResetPage { by_code: true, ..blank(chrome, Step::Code) }));
    };
    let by_code = matches!(proof, ResetProof::Continued(_));
    match state.recovery.open_reset(&proof).await {
        Ok(grant) => {
            let page = new_password_page(chrome, &state, &grant, query.method.as_deref(), query.sent.is_some()).await?;
            Ok(reset_page(&state, jar, StatusCode::OK, page))
        }
        Err(ResetError::InvalidToken) => Ok(expired_page(chrome, &state, jar, StatusCode::OK, by_code)),
        Err(e) => Err(PageError(ApiError::from(e))),
    }
}

#[derive(Deserialize)]
pub struct CodeForm {
    csrf: String,
    login: String,
    code: String,
}

/// `POST /reset-password/code`: step 1 of the code route. The code is counted, then
/// compared (S3.7); only a right one goes on, exchanged for a continuation in the reset
/// cookie, to step 2. A refusal shows step 1 again with the login as typed, never the code.
pub async fn code_submit(
    chrome: Chrome,
    State(state): State<AppState>,
    jar: CookieJar,
    PageForm(form): PageForm<CodeForm>,
) -> Result<Response, PageError> {
    Csrf::check_anonymous(&state, &jar, &form.csrf)?;
    let login: String = form.login.trim().chars().take(320).collect();
    let again = |chrome, jar, error: ApiError, field, locked| {
        let page = ResetPage {
            by_code: true,
            login: login.clone(),
            error: Some(error.message),
            error_field: Some(field),
            locked,
            ..blank(chrome, Step::Code)
        };
        reset_page(&state, jar, error.status, page)
    };
    if login.is_empty() {
        let error = ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", "Enter the username or email address of your account.");
        return Ok(again(chrome, jar, error, Field::Login, false));
    }
    if form.code.trim().is_empty() {
        // Nothing typed is no try: nothing to compare, nothing to count.
        let error = ApiError::new(StatusCode::BAD_REQUEST, "invalid_code", "Enter the 8-digit code from the email.");
        return Ok(again(chrome, jar, error, Field::Code, false));
    }
    // Any other text is a guess, counted before it is compared, malformed or not (S3.7).
    let proof = ResetProof::Code { login: LoginIdentifier::new(&login), code: ResetCodeAttempt::new(&form.code) };
    match state.recovery.open_reset(&proof).await {
        Ok(grant) => {
            let jar = jar.add(reset_cookie(&state, state.recovery.continuation(&grant).encode()));
            Ok(no_referrer((jar, Redirect::to("/reset-password")).into_response()))
        }
        Err(e) => {
            let locked = matches!(e, ResetError::TooManyTries);
            let error = shown(ApiError::from(e))?;
            Ok(again(chrome, jar, error, Field::Code, locked))
        }
    }
}

#[derive(Deserialize)]
pub struct ResetForm {
    csrf: String,
    /// Judged after the emailed proof, and on this form.
    new_password: Deferred<Password>,
    /// The 2-step method and its code or answer, when 2-step is on.
    method_id: Option<String>,
    factor_code: Option<FactorCode>,
}

/// The grant of the reset cookie: a link's token, or a verified code's continuation.
pub(super) async fn cookie_grant(state: &AppState, jar: &CookieJar) -> Result<Result<ResetGrant, bool>, PageError> {
    let Some(proof) = cookie_proof(state, jar) else { return Ok(Err(false)) };
    let by_code = matches!(proof, ResetProof::Continued(_));
    match state.recovery.open_reset(&proof).await {
        Ok(grant) => Ok(Ok(grant)),
        Err(ResetError::InvalidToken) => Ok(Err(by_code)),
        Err(e) => Err(PageError(ApiError::from(e))),
    }
}

/// The field a refusal at step 2 is about.
fn step_two_field(error: &ApiError) -> Field {
    if error.code == "weak_password" { Field::NewPassword } else { Field::FactorCode }
}

/// `POST /reset-password`: the only step that redeems (S1.9). No login follows (S1.11).
pub async fn reset_submit(
    chrome: Chrome,
    State(state): State<AppState>,
    Client(ctx): Client,
    jar: CookieJar,
    PageForm(form): PageForm<ResetForm>,
) -> Result<Response, PageError> {
    Csrf::check_anonymous(&state, &jar, &form.csrf)?;
    let grant = match cookie_grant(&state, &jar).await? {
        Ok(grant) => grant,
        Err(by_code) => return Ok(expired_page(chrome, &state, jar, StatusCode::BAD_REQUEST, by_code)),
    };
    // An empty field is no try at a method: nothing is compared, nothing counted.
    let second = match (&form.method_id, &form.factor_code) {
        (Some(method_id), Some(code)) if !code.expose().trim().is_empty() => Some(SecondFactorProof { method_id, code }),
        _ => None,
    };
    match reset_password(&state, &grant, &form.new_password, second, &ctx).await {
        Ok(()) => {
            let jar = jar.add(state.web.removal(reset_cookie_name(&state)));
            Ok(no_referrer((jar, render(StatusCode::OK, &ResetDonePage { chrome })).into_response()))
        }
        Err(error) if error.code == "invalid_token" => Ok(expired_page(chrome, &state, jar, error.status, grant.by_code())),
        Err(error) => {
            let error = shown(error)?;
            let page = new_password_page(chrome, &state, &grant, form.method_id.as_deref(), false).await?;
            let field = step_two_field(&error);
            // 2-step is on and no method was chosen: the methods are the answer, shown as such.
            let message = if error.code == "second_factor_required" && !page.methods.is_empty() {
                "Enter the code or answer of the method you chose, to confirm it is you.".to_owned()
            } else {
                error.message
            };
            let page = ResetPage { error: Some(message), error_field: Some(field), ..page };
            Ok(reset_page(&state, jar, error.status, page))
        }
    }
}

#[derive(Deserialize)]
pub struct ResetSendForm {
    csrf: String,
    method_id: String,
}

/// `POST /reset-password/send`: an SMS or email code for the reset's second step; then the
/// page again with that method selected and its code field next to the button.
pub async fn reset_send(
    chrome: Chrome,
    State(state): State<AppState>,
    Client(ctx): Client,
    jar: CookieJar,
    PageForm(form): PageForm<ResetSendForm>,
) -> Result<Response, PageError> {
    Csrf::check_anonymous(&state, &jar, &form.csrf)?;
    let grant = match cookie_grant(&state, &jar).await? {
        Ok(grant) => grant,
        Err(by_code) => return Ok(expired_page(chrome, &state, jar, StatusCode::BAD_REQUEST, by_code)),
    };
    match state.recovery.send_reset_code(&grant, &form.method_id, &ctx).await {
        Ok(()) => {
            let to = format!("/reset-password?method={}&sent=1", urlencode(&form.method_id));
            Ok(no_referrer((jar, Redirect::to(&to)).into_response()))
        }
        Err(e) => {
            let error = shown(ApiError::from(e))?;
            let page = new_password_page(chrome, &state, &grant, Some(&form.method_id), false).await?;
            let page = ResetPage { error: Some(error.message), error_field: Some(Field::FactorCode), ..page };
            Ok(reset_page(&state, jar, error.status, page))
        }
    }
}
