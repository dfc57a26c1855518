//! "No access to this email?" (issue 11 §3): the recovery request form, its code step, and
//! the case's status page, reached by the link sent to the contact address (the token moves
//! into a short-lived cookie at once; the page can add to the case).

use super::{Chrome, render};
use crate::web::api::recovery_requests::input_of;
use crate::web::error::{ApiError, PageError};
use crate::web::extract::{Client, PageForm, Query};
use crate::web::routes::Routes;
use crate::web::security::{Csrf, no_referrer};
use crate::web::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::CookieJar;
use doorman_core::account::EmailAddress;
use doorman_core::proof_of_work::PowSolution;
use doorman_core::recovery::ResetCodeAttempt;
use doorman_core::recovery_request::{CaseStatus, Hints, RequestError, StatusLink};
use serde::Deserialize;

pub fn router() -> Routes {
    Routes::new()
        .route("/recovery-request", get(form).post(submit))
        .route("/recovery-request/confirm", post(confirm))
        .route("/recovery-request/status", get(status).post(add_note))
}

/// Which step the form page shows.
#[derive(PartialEq, Eq)]
enum Step {
    Form,
    Code,
    Opened,
}

#[derive(Template)]
#[template(path = "recovery_request.html")]
struct RequestPage {
    chrome: Chrome,
    csrf: String,
    step: Step,
    challenge: String,
    bits: u8,
    login: String,
    contact_email: String,
    message: String,
    last_sign_in: String,
    country: String,
    payout_type: String,
    payout_bank: String,
    case_id: String,
    error: Option<String>,
    /// The field the error is about ("login", "contact_email", "message", "code").
    field: String,
}

impl RequestPage {
    fn blank(chrome: Chrome) -> Self {
        Self {
            chrome,
            csrf: String::new(),
            step: Step::Form,
            challenge: String::new(),
            bits: 0,
            login: String::new(),
            contact_email: String::new(),
            message: String::new(),
            last_sign_in: String::new(),
            country: String::new(),
            payout_type: String::new(),
            payout_bank: String::new(),
            case_id: String::new(),
            error: None,
            field: String::new(),
        }
    }
}

fn request_page(state: &AppState, jar: CookieJar, status: StatusCode, page: RequestPage) -> Response {
    let (jar, binding) = Csrf::pre_session(state, jar);
    let challenge = state.recovery_requests.proof_of_work().challenge();
    let page = RequestPage { csrf: Csrf::token(state, &binding), challenge: challenge.challenge, bits: challenge.bits, ..page };
    (jar, render(status, &page)).into_response()
}

/// `GET /recovery-request`: the form (a fresh proof-of-work challenge; stores nothing).
pub async fn form(chrome: Chrome, State(state): State<AppState>, jar: CookieJar) -> Response {
    request_page(&state, jar, StatusCode::OK, RequestPage::blank(chrome))
}

#[derive(Deserialize)]
pub struct RequestForm {
    csrf: String,
    #[serde(default)]
    login: String,
    #[serde(default)]
    contact_email: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    last_sign_in: String,
    #[serde(default)]
    country: String,
    #[serde(default)]
    payout_type: String,
    #[serde(default)]
    payout_bank: String,
    #[serde(default)]
    pow_challenge: String,
    #[serde(default)]
    pow_nonce: String,
}

/// An error the page shows next to its field; a server fault stays a server fault.
fn shown(error: ApiError) -> Result<(StatusCode, String, String), PageError> {
    if !error.status.is_client_error() {
        return Err(PageError(error));
    }
    let field = error.extra.as_ref().and_then(|e| e.get("field")).and_then(|f| f.as_str()).unwrap_or_default().to_owned();
    Ok((error.status, error.message, field))
}

/// `POST /recovery-request`: sends the code, then asks for it; the same whether or not an
/// account matches.
pub async fn submit(
    chrome: Chrome,
    State(state): State<AppState>,
    Client(ctx): Client,
    jar: CookieJar,
    PageForm(f): PageForm<RequestForm>,
) -> Result<Response, PageError> {
    Csrf::check_anonymous(&state, &jar, &f.csrf)?;
    let hints = Hints {
        last_sign_in: f.last_sign_in.clone(),
        country: f.country.clone(),
        payout_type: f.payout_type.clone(),
        payout_bank: f.payout_bank.clone(),
    };
    let page = RequestPage {
        login: f.login.trim().chars().take(320).collect(),
        contact_email: f.contact_email.trim().chars().take(320).collect(),
        message: f.message.chars().take(4000).collect(),
        last_sign_in: f.last_sign_in.chars().take(200).collect(),
        country: f.country.chars().take(200).collect(),
        payout_type: f.payout_type.chars().take(200).collect(),
        payout_bank: f.payout_bank.chars().take(200).collect(),
        ..RequestPage::blank(chrome)
    };
    let proof = PowSolution { challenge: f.pow_challenge, nonce: f.pow_nonce };
    let result = match input_of(&f.login, &f.contact_email, &f.message, hints, proof) {
        Ok(input) => state.recovery_requests.request(input, &ctx).await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(request_page(&state, jar, StatusCode::OK, RequestPage { step: Step::Code, ..page })),
        Err(e) => {
            let (status, message, field) = shown(e)?;
            Ok(request_page(&state, jar, status, RequestPage { error: Some(message), field, ..page }))
        }
    }
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    csrf: String,
    #[serde(default)]
    contact_email: String,
    #[serde(default)]
    code: String,
}

/// `POST /recovery-request/confirm`: the code from the contact address opens the case.
pub async fn confirm(
    chrome: Chrome,
    State(state): State<AppState>,
    Client(ctx): Client,
    jar: CookieJar,
    PageForm(f): PageForm<ConfirmForm>,
) -> Result<Response, PageError> {
    Csrf::check_anonymous(&state, &jar, &f.csrf)?;
    let contact = f.contact_email.trim().chars().take(320).collect::<String>();
    let page = RequestPage { step: Step::Code, contact_email: contact.clone(), ..RequestPage::blank(chrome) };
    let result = match EmailAddress::parse(&contact) {
        Ok(address) => state.recovery_requests.confirm(&address, &ResetCodeAttempt::new(&f.code), &ctx).await,
        Err(_) => Err(RequestError::InvalidCode),
    };
    match result {
        Ok(case_id) => Ok(request_page(&state, jar, StatusCode::OK, RequestPage { step: Step::Opened, case_id, ..page })),
        Err(e) => {
            let (status, message, _) = shown(ApiError::from(e))?;
            Ok(request_page(&state, jar, status, RequestPage { error: Some(message), field: "code".into(), ..page }))
        }
    }
}

/// The status link's token between the emailed link and the page: in a cookie, so that it
/// leaves the address bar, the history and any referrer at once (S1.8).
const STATUS_COOKIE: &str = "doorman_case";
const STATUS_COOKIE_SECURE: &str = "__Host-doorman_case";
const STATUS_COOKIE_SECONDS: i64 = 60 * 60;

fn cookie_name(state: &AppState) -> &'static str {
    if state.web.secure_cookies { STATUS_COOKIE_SECURE } else { STATUS_COOKIE }
}

fn cookie_link(state: &AppState, jar: &CookieJar) -> Option<StatusLink> {
    jar.get(cookie_name(state)).and_then(|c| StatusLink::parse(c.value()))
}

#[derive(Template)]
#[template(path = "recovery_case.html")]
struct CasePage {
    chrome: Chrome,
    csrf: String,
    case: Option<CaseStatus>,
    note: String,
    added: bool,
    error: Option<String>,
    /// The error is about the note field (otherwise it is about the link).
    note_invalid: bool,
}

impl CasePage {
    fn created(&self, at: &i64) -> String {
        doorman_core::clock::rfc2822(*at)
    }
}

fn case_page(state: &AppState, jar: CookieJar, status: StatusCode, page: CasePage) -> Response {
    let (jar, binding) = Csrf::pre_session(state, jar);
    let page = CasePage { csrf: Csrf::token(state, &binding), ..page };
    no_referrer((jar, render(status, &page)).into_response())
}

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

/// `GET /recovery-request/status[?token=...]`: the case. Opening it changes nothing.
pub async fn status(
    chrome: Chrome,
    State(state): State<AppState>,
    jar: CookieJar,
    Query(query): Query<TokenQuery>,
) -> Result<Response, PageError> {
    let name = cookie_name(&state);
    if let Some(raw) = query.token {
        let jar = match StatusLink::parse(&raw) {
            Some(link) => {
                let mut cookie = state.web.cookie(name, link.expose().to_owned());
                cookie.set_max_age(time::Duration::seconds(STATUS_COOKIE_SECONDS));
                jar.add(cookie)
            }
            None => jar.add(state.web.removal(name)),
        };
        return Ok(no_referrer((jar, Redirect::to("/recovery-request/status")).into_response()));
    }
    let blank = CasePage { chrome, csrf: String::new(), case: None, note: String::new(), added: false, error: None, note_invalid: false };
    let found = match cookie_link(&state, &jar) {
        Some(link) => state.recovery_requests.status(&link).await,
        None => Err(RequestError::InvalidLink),
    };
    match found {
        Ok(case) => Ok(case_page(&state, jar, StatusCode::OK, CasePage { case: Some(case), ..blank })),
        Err(e) => {
            let (status, message, _) = shown(ApiError::from(e))?;
            Ok(case_page(&state, jar, status, CasePage { error: Some(message), ..blank }))
        }
    }
}

#[derive(Deserialize)]
pub struct NoteForm {
    csrf: String,
    #[serde(default)]
    note: String,
}

/// `POST /recovery-request/status`: adds the requester's note to the case.
pub async fn add_note(
    chrome: Chrome,
    State(state): State<AppState>,
    Client(ctx): Client,
    jar: CookieJar,
    PageForm(f): PageForm<NoteForm>,
) -> Result<Response, PageError> {
    Csrf::check_anonymous(&state, &jar, &f.csrf)?;
    let blank = CasePage { chrome, csrf: String::new(), case: None, note: String::new(), added: false, error: None, note_invalid: false };
    let Some(link) = cookie_link(&state, &jar) else {
        let (status, message, _) = shown(ApiError::from(RequestError::InvalidLink))?;
        return Ok(case_page(&state, jar, status, CasePage { error: Some(message), ..blank }));
    };
    let note: String = f.note.chars().take(4000).collect();
    if note.trim().is_empty() {
        let case = state.recovery_requests.status(&link).await.ok();
        let error = Some("Write what you want to add to the case.".to_owned());
        return Ok(case_page(&state, jar, StatusCode::BAD_REQUEST, CasePage { case, error, note_invalid: true, ..blank }));
    }
    match state.recovery_requests.add_note(&link, &note, &ctx).await {
        Ok(case) => Ok(case_page(&state, jar, StatusCode::OK, CasePage { case: Some(case), added: true, ..blank })),
        Err(e) => {
            let case = state.recovery_requests.status(&link).await.ok();
            let invalid = case.is_some();
            let (status, message, _) = shown(ApiError::from(e))?;
            Ok(case_page(&state, jar, status, CasePage { case, note, error: Some(message), note_invalid: invalid, ..blank }))
        }
    }
}
