//! 2-step pages: the second step of login with "Try another method", step-up before
//! sensitive pages, and Security settings (checklist S5, S6, S7.2, S7.6).

use super::{Chrome, render};
use crate::web::error::{ApiError, PageError};
use crate::web::extract::{Client, CurrentSession, PageForm, PageSession, PendingSession, Query, StepUp};
use crate::web::routes::Routes;
use crate::web::security::{Csrf, forbidden_form};
use crate::web::state::AppState;
use crate::web::step_up::{to_step_up, urlencode};
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::CookieJar;
use doorman_core::PasswordAttempt;
use doorman_core::factors::history::FactorChange;
use doorman_core::factors::{FactorCode, FactorKind, MethodView, SECURITY_QUESTIONS, SecurityAnswer};
use doorman_core::input::Deferred;
use doorman_core::phone::PhoneInput;
use doorman_core::two_step::{Binding, StepUpProof, TotpEnrolment, TwoStepError};
use secrecy::ExposeSecret;
use serde::Deserialize;

pub fn router() -> Routes {
    Routes::new()
        .route("/login/verify", get(second_step).post(second_step_submit))
        .route("/login/verify/send", post(second_step_send))
        .route("/step-up", get(step_up).post(step_up_submit))
        .route("/step-up/send", post(step_up_send))
        .route("/account/security", get(security))
        .route("/account/security/totp", post(totp_start))
        .route("/account/security/totp/confirm", post(totp_confirm))
        .route("/account/security/recovery-codes", post(recovery_codes))
        .route("/account/security/question", post(question))
        .route("/account/security/email", post(email))
        .route("/account/security/sms", post(sms_start))
        .route("/account/security/sms/confirm", post(sms_confirm))
        .route("/account/security/remove", post(remove))
        .route("/account/security/default", post(make_default))
}

/// The page that asks for a method: login's second step, step-up, withdrawal approval.
#[derive(Template)]
#[template(path = "verify.html")]
pub struct VerifyPage {
    pub chrome: Chrome,
    pub heading: String,
    pub intro: Option<String>,
    pub error: Option<String>,
    pub notice: Option<String>,
    pub csrf: String,
    pub action: String,
    pub send_action: String,
    /// Prefix of the links that pick a method: "...?method=ID" or "...?choose=1".
    pub switch_base: String,
    pub methods: Vec<MethodView>,
    pub selected: Option<MethodView>,
    pub choosing: bool,
    pub hidden: Vec<(String, String)>,
    pub password_allowed: bool,
    /// 2-step is on but no method can be used here (a phone without an SMS provider): why,
    /// instead of a form (issue 8).
    pub no_usable_method: Option<&'static str>,
    /// A code sent to the selected method can still be used: the page asks for it ("Enter
    /// the code we texted to ...") instead of offering to send one.
    pub sent: bool,
    /// The code was sent just now (the page after "Text me a code").
    pub just_sent: bool,
    /// Where "Forgot your answer?" posts, on a prompt that may ask the security question
    /// (login's second step); `None` where the question is never asked (step-up, approvals).
    pub forgot_answer_action: Option<&'static str>,
}

#[derive(Deserialize, Default)]
pub struct Choice {
    method: Option<String>,
    choose: Option<String>,
    sent: Option<String>,
    next: Option<String>,
}

impl Choice {
    pub fn method(id: String) -> Self {
        Self { method: Some(id), ..Self::default() }
    }
}

impl VerifyPage {
    /// With 2-step on and nothing to offer, the page says why instead of sending the
    /// person to Security settings, which they cannot reach or change without a method.
    fn explain_if_stranded(mut self, two_step_enabled: bool) -> Self {
        if two_step_enabled && self.methods.is_empty() {
            self.no_usable_method = Some(doorman_core::two_step::NO_USABLE_METHOD);
        }
        self
    }

    /// Picks the method asked for, else the default (the first).
    pub fn choose(mut self, choice: &Choice) -> Self {
        self.choosing = choice.choose.is_some() && self.methods.len() > 1;
        self.selected = choice.method.as_ref().and_then(|id| self.methods.iter().find(|m| &m.id == id)).or(self.methods.first()).cloned();
        self.just_sent = choice.sent.is_some();
        self
    }

    /// Whether a code for `binding` is on its way to the selected method; right after it
    /// was sent, a notice says where it went. Until then the page offers to send one.
    pub async fn with_sent_state(mut self, state: &AppState, binding: &Binding<'_>) -> Result<Self, ApiError> {
        self.sent = match self.selected.as_ref().filter(|m| m.kind.is_sent()) {
            Some(m) => state.two_step.code_sent(binding, &m.id).await?,
            None => false,
        };
        if let Some(m) = self.selected.as_ref().filter(|_| self.sent && self.just_sent && self.error.is_none()) {
            self.notice = Some(super::recovery::sent_notice(m));
        }
        Ok(self)
    }

    /// The code (or password) field takes the focus after an error, right after a code was
    /// sent, and whenever the chosen method needs no sending (an app, a recovery code, a
    /// question): the code is ready to type. A method that sends waits for its button.
    fn focus_code(&self) -> bool {
        self.error.is_some() || (self.sent && self.just_sent) || self.selected.as_ref().is_some_and(|m| !m.kind.is_sent())
    }
}

/// An error a person can act on is shown on the page; anything else is a server error.
fn shown(error: ApiError) -> Result<(StatusCode, String), PageError> {
    if error.status.is_client_error() { Ok((error.status, error.message)) } else { Err(PageError(error)) }
}

/// A local path to return to; anything else becomes the account page.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        // Printable ASCII only, no backslash: browsers drop tabs and newlines, which would
        // turn "/\t/evil.example" into "//evil.example".
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && path.len() < 200
                && path.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') =>
        {
            path.to_owned()
        }
        _ => "/account".to_owned(),
    }
}

fn check_csrf(state: &AppState, session: &CurrentSession, token: &str) -> Result<(), PageError> {
    if Csrf::check(state, session.token.expose(), token) { Ok(()) } else { Err(PageError(forbidden_form())) }
}

// ---- The second step of login ----

fn second_step_page(chrome: Chrome, state: &AppState, session: &CurrentSession, methods: Vec<MethodView>) -> VerifyPage {
    VerifyPage {
        chrome,
        heading: "2-step verification".into(),
        intro: Some("Your password was right. Now confirm it is you.".into()),
        error: None,
        notice: None,
        csrf: Csrf::token(state, session.token.expose()),
        action: "/login/verify".into(),
        send_action: "/login/verify/send".into(),
        switch_base: "/login/verify?".into(),
        methods,
        selected: None,
        choosing: false,
        hidden: Vec::new(),
        password_allowed: false,
        // A half-signed-in session always has 2-step on: no method means none usable here.
        no_usable_method: None,
        sent: false,
        just_sent: false,
        forgot_answer_action: Some("/login/verify/forgot-answer"),
    }
    .explain_if_stranded(true)
}

/// `GET /login/verify`
pub async fn second_step(
    chrome: Chrome,
    State(state): State<AppState>,
    PendingSession(session): PendingSession,
    Query(choice): Query<Choice>,
) -> Result<Response, PageError> {
    let Some(session) = session else { return Ok(Redirect::to("/login").into_response()) };
    let methods = state.two_step.methods(&session.account).await?;
    let page =
        second_step_page(chrome, &state, &session, methods).choose(&choice).with_sent_state(&state, &login_binding(&session)).await?;
    Ok(render(StatusCode::OK, &page))
}

fn login_binding(session: &CurrentSession) -> Binding<'_> {
    Binding { key: &session.record.id_hash, purpose: "login" }
}

fn step_up_binding(session: &CurrentSession) -> Binding<'_> {
    Binding { key: &session.record.id_hash, purpose: "step_up" }
}

#[derive(Deserialize)]
pub struct CodeForm {
    csrf: String,
    method_id: Option<String>,
    code: Option<FactorCode>,
    /// Any length: one too long to be a password is a wrong one, not a bad form.
    password: Option<PasswordAttempt>,
    next: Option<String>,
}

/// `POST /login/verify`: success replaces the half session with a full one (S7.2).
pub async fn second_step_submit(
    chrome: Chrome,
    State(state): State<AppState>,
    Client(ctx): Client,
    PendingSession(session): PendingSession,
    jar: CookieJar,
    PageForm(form): PageForm<CodeForm>,
) -> Result<Response, PageError> {
    let Some(session) = session else { return Ok(Redirect::to("/login").into_response()) };
    check_csrf(&state, &session, &form.csrf)?;
    let method_id = form.method_id.unwrap_or_default();
    let devices = crate::web::shared::presented_devices(&state, &jar);
    let code = form.code.unwrap_or_else(|| FactorCode::new(""));
    let result = state.two_step.complete_second_step(&session.record, &session.account, &method_id, &code, &devices, &ctx).await;
    match result {
        Ok((token, device)) => {
            Ok((crate::web::shared::signed_in_cookies(&state, jar, &token, Some(device)), Redirect::to("/account")).into_response())
        }
        Err(e) => {
            let (status, message) = shown(ApiError::from(e))?;
            let methods = state.two_step.methods(&session.account).await?;
            let choice = Choice::method(method_id);
            let page = VerifyPage { error: Some(message), ..second_step_page(chrome, &state, &session, methods).choose(&choice) };
            Ok(render(status, &page.with_sent_state(&state, &login_binding(&session)).await?))
        }
    }
}

#[derive(Deserialize)]
pub struct SendForm {
    csrf: String,
    method_id: String,
    next: Option<String>,
}

/// `POST /login/verify/send`
pub async fn second_step_send(
    chrome: Chrome,
    State(state): State<AppState>,
    Client(ctx): Client,
    PendingSession(session): PendingSession,
    PageForm(form): PageForm<SendForm>,
) -> Result<Response, PageError> {
    let Some(session) = session else { return Ok(Redirect::to("/login").into_response()) };
    check_csrf(&state, &session, &form.csrf)?;
    let binding = login_binding(&session);
    match state.two_step.send_code(&session.account, &form.method_id, &binding, &ctx).await {
        Ok(()) => Ok(Redirect::to(&format!("/login/verify?method={}&sent=1", urlencode(&form.method_id))).into_response()),
        Err(e) => {
            let (status, message) = shown(ApiError::from(e))?;
            let methods = state.two_step.methods(&session.account).await?;
            let choice = Choice::method(form.method_id);
            let page = VerifyPage { error: Some(message), ..second_step_page(chrome, &state, &session, methods).choose(&choice) };
            Ok(render(status, &page.with_sent_state(&state, &binding).await?))
        }
    }
}

// ---- Step-up ----

async fn step_up_page(chrome: Chrome, state: &AppState, session: &CurrentSession, next: &str) -> Result<VerifyPage, ApiError> {
    let offer = state.two_step.step_up_offer(&session.account).await?;
    let (enabled, methods) = (offer.two_step_enabled, offer.methods);
    Ok(VerifyPage {
        chrome,
        heading: "Confirm it is you".into(),
        intro: Some(if enabled {
            "This page changes your security or your money. Verify with one of your methods to continue.".into()
        } else {
            "This page changes your security or your money. Enter your password to continue.".into()
        }),
        error: None,
        notice: None,
        csrf: Csrf::token(state, session.token.expose()),
        action: "/step-up".into(),
        send_action: "/step-up/send".into(),
        switch_base: format!("/step-up?next={}&", urlencode(next)),
        methods,
        selected: None,
        choosing: false,
        hidden: vec![("next".into(), next.to_owned())],
        password_allowed: !enabled,
        no_usable_method: None,
        sent: false,
        just_sent: false,
        forgot_answer_action: None,
    }
    .explain_if_stranded(enabled))
}

/// `GET /step-up?next=/account/security`
pub async fn step_up(
    chrome: Chrome,
    State(state): State<AppState>,
    PageSession(session): PageSession,
    Query(choice): Query<Choice>,
) -> Result<Response, PageError> {
    let next = safe_next(choice.next.as_deref());
    let page = step_up_page(chrome, &state, &session, &next).await?.choose(&choice);
    Ok(render(StatusCode::OK, &page.with_sent_state(&state, &step_up_binding(&session)).await?))
}

/// `POST /step-up`: a new session id on success (S7.2), then back where the user was going.
pub async fn step_up_submit(
    chrome: Chrome,
    State(state): State<AppState>,
    Client(ctx): Client,
    PageSession(session): PageSession,
    jar: CookieJar,
    PageForm(form): PageForm<CodeForm>,
) -> Result<Response, PageError> {
    check_csrf(&state, &session, &form.csrf)?;
    let next = safe_next(form.next.as_deref());
    let proof = match (&form.method_id, &form.code, &form.password) {
        (Some(method_id), Some(code), _) => StepUpProof::Method { method_id, code },
        (_, _, Some(attempt)) => StepUpProof::Password(attempt.password().ok_or_else(|| ApiError::from(TwoStepError::Invalid))?),
        _ => return Err(PageError(ApiError::from(TwoStepError::Invalid))),
    };
    match state.two_step.step_up(&session.record, &session.account, proof, &ctx).await {
        Ok(token) => {
            Ok((jar.add(state.web.cookie(state.web.session_cookie, token.expose().to_owned())), Redirect::to(&next)).into_response())
        }
        Err(e) => {
            let (status, message) = shown(ApiError::from(e))?;
            let choice = Choice { method: form.method_id.clone(), ..Choice::default() };
            let page = VerifyPage { error: Some(message), ..step_up_page(chrome, &state, &session, &next).await?.choose(&choice) };
            Ok(render(status, &page.with_sent_state(&state, &step_up_binding(&session)).await?))
        }
    }
}

/// `POST /step-up/send`
pub async fn step_up_send(
    chrome: Chrome,
    State(state): State<AppState>,
    Client(ctx): Client,
    PageSession(session): PageSession,
    PageForm(form): PageForm<SendForm>,
) -> Result<Response, PageError> {
    check_csrf(&state, &session, &form.csrf)?;
    let next = safe_next(form.next.as_deref());
    let binding = step_up_binding(&session);
    match state.two_step.send_code(&session.account, &form.method_id, &binding, &ctx).await {
        Ok(()) => {
            Ok(Redirect::to(&format!("/step-up?next={}&method={}&sent=1", urlencode(&next), urlencode(&form.method_id))).into_response())
        }
        Err(e) => {
            let (status, message) = shown(ApiError::from(e))?;
            let choice = Choice::method(form.method_id);
            let page = VerifyPage { error: Some(message), ..step_up_page(chrome, &state, &session, &next).await?.choose(&choice) };
            Ok(render(status, &page.with_sent_state(&state, &binding).await?))
        }
    }
}

// ---- Security settings ----

#[derive(Template)]
#[template(path = "security.html")]
struct SecurityPage {
    chrome: Chrome,
    csrf: String,
    /// Every enrolled method; those this server cannot use are marked unavailable.
    methods: Vec<MethodView>,
    enabled: bool,
    email_codes_enabled: bool,
    /// Without an SMS provider no phone can be added (issue 8).
    sms_available: bool,
    questions: Vec<(&'static str, &'static str)>,
    /// The question chosen in a refused form, kept selected (found walking the pages on a
    /// phone: the form went back to the first question), and why it was refused, by the form.
    question_id: String,
    question_error: Option<String>,
    notice: Option<String>,
    error: Option<String>,
    /// 2-step is on and no recovery code is left: the page asks for a set first.
    needs_recovery_codes: bool,
    /// A page of the method history, newest change first (S10.4).
    history: Vec<HistoryRow>,
    history_next: Option<i64>,
    /// An older page of the history is shown (a link back to the newest).
    history_older_page: bool,
}

/// One change to a method, in words.
struct HistoryRow {
    method: String,
    change: &'static str,
    by: &'static str,
    when: String,
}

#[derive(Deserialize, Default)]
pub struct Done {
    done: Option<String>,
    history_before: Option<i64>,
}

async fn security_page(
    chrome: Chrome,
    state: &AppState,
    session: &CurrentSession,
    notice: Option<String>,
    error: Option<String>,
    history_before: Option<i64>,
) -> Result<SecurityPage, ApiError> {
    let methods = state.two_step.enrolled_methods(&session.account).await?;
    let enabled = state.two_step.two_step_enabled(&session.account).await?;
    let history = state.two_step.method_history(&session.account.id, history_before).await?;
    Ok(SecurityPage {
        history: history
            .entries
            .iter()
            .map(|e| HistoryRow {
                method: e.method(),
                change: match e.change {
                    FactorChange::Added => "added",
                    FactorChange::Removed => "removed",
                    FactorChange::Restored => "restored",
                    FactorChange::Renewed => "renewed (a new set of codes)",
                },
                by: e.by.describe(),
                when: super::account::when(e.at),
            })
            .collect(),
        history_next: history.next_before,
        question_id: String::new(),
        question_error: None,
        history_older_page: history_before.is_some_and(|b| b > 0),
        chrome,
        csrf: Csrf::token(state, session.token.expose()),
        needs_recovery_codes: enabled && !methods.iter().any(|m| m.kind == FactorKind::RecoveryCode),
        methods,
        enabled,
        email_codes_enabled: state.two_step.settings().email_codes_enabled,
        sms_available: state.two_step.settings().sms_available,
        questions: SECURITY_QUESTIONS.to_vec(),
        notice,
        error,
    })
}

/// `GET /account/security`
pub async fn security(
    chrome: Chrome,
    State(state): State<AppState>,
    PageSession(session): PageSession,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let notice = done.done.map(|what| match what.as_str() {
        "totp" => "Authenticator app added.".to_owned(),
        "question" => "Security question saved.".to_owned(),
        "email" => "Email codes added.".to_owned(),
        "sms" => "Phone number added for text-message codes.".to_owned(),
        "removed" => "Method removed.".to_owned(),
        "default" => "Default method changed.".to_owned(),
        _ => "Saved.".to_owned(),
    });
    Ok(render(StatusCode::OK, &security_page(chrome, &state, &session, notice, None, done.history_before).await?))
}

/// A failed change: back to the settings page with the reason.
async fn settings_error(chrome: Chrome, state: &AppState, session: &CurrentSession, e: impl Into<ApiError>) -> Result<Response, PageError> {
    let (status, message) = shown(e.into())?;
    Ok(render(status, &security_page(chrome, state, session, None, Some(message), None).await?))
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf: String,
}

#[derive(Template)]
#[template(path = "totp_enrol.html")]
struct TotpPage {
    chrome: Chrome,
    csrf: String,
    method_id: String,
    secret: String,
    qr_svg_base64: String,
    error: Option<String>,
}

fn qr_data(uri: &str) -> String {
    use base64::Engine;
    match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(code) => {
            let svg = code.render::<qrcode::render::svg::Color>().min_dimensions(220, 220).quiet_zone(true).build();
            base64::engine::general_purpose::STANDARD.encode(svg)
        }
        Err(_) => String::new(),
    }
}

/// `POST /account/security/totp`: a new secret as a QR code and as text (S5.1).
pub async fn totp_start(
    chrome: Chrome,
    State(state): State<AppState>,
    StepUp(proof, session): StepUp,
    PageForm(form): PageForm<CsrfOnly>,
) -> Result<Response, PageError> {
    check_csrf(&state, &session, &form.csrf)?;
    let enrolment = state.two_step.start_totp(&proof, &session.account).await.map_err(ApiError::from)?;
    Ok(totp_page(chrome, &state, &session, &enrolment, StatusCode::OK, None))
}

fn totp_page(
    chrome: Chrome,
    state: &AppState,
    session: &CurrentSession,
    enrolment: &TotpEnrolment,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let secret = enrolment.secret.expose_secret();
    let page = TotpPage {
        chrome,
        csrf: Csrf::token(state, session.token.expose()),
        method_id: enrolment.method_id.clone(),
        qr_svg_base64: qr_data(&enrolment.otpauth_uri),
        secret: secret.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(" "),
        error,
    };
    render(status, &page)
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    csrf: String,
    method_id: String,
    code: FactorCode,
}

/// `POST /account/security/totp/confirm`
pub async fn totp_confirm(
    chrome: Chrome,
    State(state): State<AppState>,
    Client(ctx): Client,
    PageSession(session): PageSession,
    PageForm(form): PageForm<ConfirmForm>,
) -> Result<Response, PageError> {
    check_csrf(&state, &session, &form.csrf)?;
    // Finishing an enrolment started after a step-up needs no second one (core checks).
    let proof = state.two_step.recent_step_up(&session.record);
    match state.two_step.confirm_totp(proof.as_ref(), &session.account, &form.method_id, &form.code, &ctx).await {
        Ok(()) => Ok(Redirect::to("/account/security?done=totp").into_response()),
        // A wrong first code: the same page again, so the app need not be set up twice.
        Err(e @ (TwoStepError::InvalidTotp | TwoStepError::Throttled(_))) => {
            let (status, message) = shown(ApiError::from(e))?;
            let enrolment = state.two_step.pending_totp(proof.as_ref(), &session.account, &form.method_id).await.map_err(ApiError::from)?;
            Ok(totp_page(chrome, &state, &session, &enrolment, status, Some(message)))
        }
        Err(TwoStepError::StepUpRequired(_)) => Ok(to_step_up("/account/security")),
        Err(e) => settings_error(chrome, &state, &session, e).await,
    }
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
struct CodesPage {
    chrome: Chrome,
    codes: Vec<String>,
    download: String,
}

/// `POST /account/security/recovery-codes`: shown once, downloadable as text (S5.8).
pub async fn recovery_codes(
    chrome: Chrome,
    State(state): State<AppState>,
    Client(ctx): Client,
    StepUp(proof, session): StepUp,
    PageForm(form): PageForm<CsrfOnly>,
) -> Result<Response, PageError> {
    check_csrf(&state, &session, &form.csrf)?;
    let codes: Vec<String> = state
        .two_step
        .regenerate_recovery_codes(&proof, &session.account, &ctx)
        .await
        .map_err(ApiError::from)?
        .iter()
        .map(|c| c.expose_secret().to_owned())
        .collect();
    let text = format!(
        "{} recovery codes for {}\nEach code works once. Keep them somewhere safe, away from your phone.\n\n{}\n",
        state.web.product_name,
        session.account.username.as_str(),
        codes.join("\n")
    );
    let download = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(text)
    };
    Ok(render(StatusCode::OK, &CodesPage { chrome, codes, download }))
}

#[derive(Template)]
#[template(path = "sms_confirm.html")]
struct SmsConfirmPage {
    chrome: Chrome,
    csrf: String,
    method_id: String,
    hint: String,
    error: Option<String>,
}

fn sms_page(
    chrome: Chrome,
    state: &AppState,
    session: &CurrentSession,
    method_id: String,
    hint: String,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let page = SmsConfirmPage { chrome, csrf: Csrf::token(state, session.token.expose()), method_id, hint, error };
    render(status, &page)
}

#[derive(Deserialize)]
pub struct PhoneForm {
    csrf: String,
    /// A refusal is shown on the settings page.
    phone: Deferred<PhoneInput>,
}

/// `POST /account/security/sms`: texts a code to the new number (S5.6).
pub async fn sms_start(
    chrome: Chrome,
    State(state): State<AppState>,
    Client(ctx): Client,
    StepUp(proof, session): StepUp,
    PageForm(form): PageForm<PhoneForm>,
) -> Result<Response, PageError> {
    check_csrf(&state, &session, &form.csrf)?;
    let started = match form.phone.value() {
        Ok(phone) => state.two_step.start_sms(&proof, &session.account, phone, &ctx).await.map_err(ApiError::from),
        Err(refused) => Err(ApiError::from(refused)),
    };
    match started {
        Ok((method_id, hint)) => Ok(sms_page(chrome, &state, &session, method_id, hint, StatusCode::OK, None)),
        Err(e) => settings_error(chrome, &state, &session, e).await,
    }
}

/// `POST /account/security/sms/confirm`
pub async fn sms_confirm(
    chrome: Chrome,
    State(state): State<AppState>,
    Client(ctx): Client,
    PageSession(session): PageSession,
    PageForm(form): PageForm<ConfirmForm>,
) -> Result<Response, PageError> {
    check_csrf(&state, &session, &form.csrf)?;
    // Finishing an enrolment started after a step-up needs no second one (core checks).
    let proof = state.two_step.recent_step_up(&session.record);
    match state.two_step.confirm_sms(proof.as_ref(), &session.account, &form.method_id, &form.code, &ctx).await {
        Ok(()) => Ok(Redirect::to("/account/security?done=sms").into_response()),
        Err(e @ (TwoStepError::WrongEnrolmentCode | TwoStepError::Throttled(_))) => {
            let (status, message) = shown(ApiError::from(e))?;
            let hint = state.two_step.pending_phone_label(&session.account, &form.method_id).await.map_err(ApiError::from)?;
            Ok(sms_page(chrome, &state, &session, form.method_id, hint, status, Some(message)))
        }
        Err(TwoStepError::StepUpRequired(_)) => Ok(to_step_up("/account/security")),
        Err(e) => settings_error(chrome, &state, &session, e).await,
    }
}

#[derive(Deserialize)]
pub struct QuestionForm {
    csrf: String,
    question_id: String,
    /// A refusal is shown on the settings page.
    answer: Deferred<SecurityAnswer>,
}

/// `POST /account/security/question`
pub async fn question(
    chrome: Chrome,
    State(state): State<AppState>,
    Client(ctx): Client,
    StepUp(proof, session): StepUp,
    PageForm(form): PageForm<QuestionForm>,
) -> Result<Response, PageError> {
    check_csrf(&state, &session, &form.csrf)?;
    let saved = match form.answer.value() {
        Ok(answer) => {
            state.two_step.set_security_question(&proof, &session.account, &form.question_id, answer, &ctx).await.map_err(ApiError::from)
        }
        Err(refused) => Err(ApiError::from(refused)),
    };
    match saved {
        Ok(_) => Ok(Redirect::to("/account/security?done=question").into_response()),
        Err(e) => {
            let (status, message) = shown(e)?;
            let page = security_page(chrome, &state, &session, None, None, None).await?;
            Ok(render(status, &SecurityPage { question_id: form.question_id, question_error: Some(message), ..page }))
        }
    }
}

/// `POST /account/security/email`
pub async fn email(
    chrome: Chrome,
    State(state): State<AppState>,
    Client(ctx): Client,
    StepUp(proof, session): StepUp,
    PageForm(form): PageForm<CsrfOnly>,
) -> Result<Response, PageError> {
    check_csrf(&state, &session, &form.csrf)?;
    match state.two_step.add_email_codes(&proof, &session.account, &ctx).await {
        Ok(_) => Ok(Redirect::to("/account/security?done=email").into_response()),
        Err(e) => settings_error(chrome, &state, &session, e).await,
    }
}

#[derive(Deserialize)]
pub struct MethodForm {
    csrf: String,
    method_id: String,
}

/// `POST /account/security/remove`
pub async fn remove(
    chrome: Chrome,
    State(state): State<AppState>,
    Client(ctx): Client,
    StepUp(proof, session): StepUp,
    PageForm(form): PageForm<MethodForm>,
) -> Result<Response, PageError> {
    check_csrf(&state, &session, &form.csrf)?;
    match state.two_step.remove_method(&proof, &session.account, &form.method_id, &ctx).await {
        Ok(()) => Ok(Redirect::to("/account/security?done=removed").into_response()),
        Err(e) => settings_error(chrome, &state, &session, e).await,
    }
}

/// `POST /account/security/default`
pub async fn make_default(
    chrome: Chrome,
    State(state): State<AppState>,
    StepUp(proof, session): StepUp,
    PageForm(form): PageForm<MethodForm>,
) -> Result<Response, PageError> {
    check_csrf(&state, &session, &form.csrf)?;
    match state.two_step.set_default_method(&proof, &session.account, &form.method_id).await {
        Ok(()) => Ok(Redirect::to("/account/security?done=default").into_response()),
        Err(e) => settings_error(chrome, &state, &session, e).await,
    }
}
