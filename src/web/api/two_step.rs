//! 2-step verification over JSON: the second step of login, the security settings and step-up
//! (checklist S5, S6, S7.2).

use crate::web::error::ApiError;
use crate::web::extract::{ApiJson, ApiSession, Client, CurrentSession, Path, PendingSession, Query, StepUp};
use crate::web::routes::Routes;
use crate::web::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum_extra::extract::CookieJar;
use doorman_core::PasswordAttempt;
use doorman_core::audit::RequestContext;
use doorman_core::factors::{FactorCode, SECURITY_QUESTIONS, SecurityAnswer};
use doorman_core::phone::PhoneInput;
use doorman_core::two_step::{Binding, StepUpProof, TwoStepError};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};

type Answer = Result<Json<Value>, ApiError>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodCode {
    method_id: String,
    code: FactorCode,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodOnly {
    method_id: String,
}

pub(super) fn pending(session: Option<CurrentSession>) -> Result<CurrentSession, ApiError> {
    session.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "not_authenticated",
            "Log in with your password first; the second step has expired or was not started.",
        )
    })
}

/// `POST /api/v1/login/second-factor`
pub async fn second_factor(
    State(state): State<AppState>,
    Client(ctx): Client,
    PendingSession(session): PendingSession,
    jar: CookieJar,
    ApiJson(body): ApiJson<MethodCode>,
) -> Result<(CookieJar, Json<Value>), ApiError> {
    let session = pending(session)?;
    let devices = crate::web::shared::presented_devices(&state, &jar);
    let (token, device) =
        state.two_step.complete_second_step(&session.record, &session.account, &body.method_id, &body.code, &devices, &ctx).await?;
    let jar = crate::web::shared::signed_in_cookies(&state, jar, &token, Some(device));
    Ok((jar, super::status("authenticated")))
}

/// `POST /api/v1/login/second-factor/send`
pub async fn second_factor_send(
    State(state): State<AppState>,
    Client(ctx): Client,
    PendingSession(session): PendingSession,
    ApiJson(body): ApiJson<MethodOnly>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let session = pending(session)?;
    let binding = Binding { key: &session.record.id_hash, purpose: "login" };
    super::send_code(&state, &session.account, &body.method_id, binding, &ctx).await
}

/// `GET /api/v1/account/two-step`
pub async fn list(State(state): State<AppState>, ApiSession(session): ApiSession) -> Answer {
    // Every enrolled method; a phone this server cannot text is listed with `available: false`.
    let methods = state.two_step.enrolled_methods(&session.account).await?;
    let listed: Vec<Value> = methods
        .iter()
        .map(|m| json!({ "id": m.id, "kind": m.kind, "hint": m.hint, "default": m.is_default, "available": m.available }))
        .collect();
    Ok(Json(json!({
        "enabled": state.two_step.two_step_enabled(&session.account).await?,
        "methods": listed,
        "email_codes_enabled": state.two_step.settings().email_codes_enabled,
        "sms_available": state.two_step.settings().sms_available,
        "security_questions": SECURITY_QUESTIONS.iter().map(|(id, text)| json!({ "id": id, "text": text })).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
pub struct HistoryQuery {
    before: Option<i64>,
}

/// `GET /api/v1/account/two-step/history[?before=ID]`: every method the account has had,
/// newest change first, a page at a time (S10.4).
pub async fn history(State(state): State<AppState>, ApiSession(session): ApiSession, Query(query): Query<HistoryQuery>) -> Answer {
    let page = state.two_step.method_history(&session.account.id, query.before).await?;
    let entries: Vec<Value> = page
        .entries
        .iter()
        .map(|e| {
            json!({
                "id": e.id,
                "method_id": e.factor_id,
                "kind": e.kind,
                "method": e.method(),
                "change": e.change,
                "by": e.by,
                "at": doorman_core::clock::rfc3339(e.at),
            })
        })
        .collect();
    Ok(Json(json!({ "entries": entries, "next_before": page.next_before })))
}

/// `POST /api/v1/account/two-step/totp`: a new secret, shown once, off until confirmed.
pub async fn start_totp(State(state): State<AppState>, StepUp(proof, session): StepUp, ApiJson(_): ApiJson<Value>) -> Answer {
    let enrolment = state.two_step.start_totp(&proof, &session.account).await?;
    Ok(Json(json!({ "method_id": enrolment.method_id, "secret": enrolment.secret.expose_secret(), "otpauth_uri": enrolment.otpauth_uri })))
}

/// What enrolling a method answers once it is on.
fn enabled(method_id: &str) -> Answer {
    Ok(Json(json!({ "status": "enabled", "method_id": method_id })))
}

/// The methods whose enrolment waits for a first code: an app's, or one texted to a new number.
enum Enrolling {
    App,
    Phone,
}

/// Confirms an enrolment with its first code, `{method_id, code}`: the one shell of both
/// confirmations. Finishing an enrolment started after a step-up needs no second one (core
/// checks).
async fn confirm(what: Enrolling, state: &AppState, ctx: &RequestContext, session: &CurrentSession, body: &MethodCode) -> Answer {
    let proof = state.two_step.recent_step_up(&session.record);
    let (by, account) = (proof.as_ref(), &session.account);
    match what {
        Enrolling::App => state.two_step.confirm_totp(by, account, &body.method_id, &body.code, ctx).await?,
        Enrolling::Phone => state.two_step.confirm_sms(by, account, &body.method_id, &body.code, ctx).await?,
    }
    enabled(&body.method_id)
}

/// `POST /api/v1/account/two-step/totp/confirm` `{method_id, code}`
pub async fn confirm_totp(
    State(state): State<AppState>,
    Client(ctx): Client,
    ApiSession(session): ApiSession,
    ApiJson(body): ApiJson<MethodCode>,
) -> Answer {
    confirm(Enrolling::App, &state, &ctx, &session, &body).await
}

/// `POST /api/v1/account/two-step/recovery-codes`: ten new codes; the old ones stop working.
pub async fn recovery_codes(
    State(state): State<AppState>,
    Client(ctx): Client,
    StepUp(proof, session): StepUp,
    ApiJson(_): ApiJson<Value>,
) -> Answer {
    let codes = state.two_step.regenerate_recovery_codes(&proof, &session.account, &ctx).await?;
    Ok(Json(json!({ "codes": codes.iter().map(|c| c.expose_secret().to_owned()).collect::<Vec<_>>() })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneBody {
    /// Checked at the edge as far as it can be without the account's country.
    phone: PhoneInput,
}

/// `POST /api/v1/account/two-step/sms` `{phone}`: texts a code to the new number (S5.6).
pub async fn start_sms(
    State(state): State<AppState>,
    Client(ctx): Client,
    StepUp(proof, session): StepUp,
    ApiJson(body): ApiJson<PhoneBody>,
) -> Answer {
    let (method_id, hint) = state.two_step.start_sms(&proof, &session.account, &body.phone, &ctx).await?;
    Ok(Json(json!({ "method_id": method_id, "hint": hint, "status": "code_sent" })))
}

/// `POST /api/v1/account/two-step/sms/confirm` `{method_id, code}`
pub async fn confirm_sms(
    State(state): State<AppState>,
    Client(ctx): Client,
    ApiSession(session): ApiSession,
    ApiJson(body): ApiJson<MethodCode>,
) -> Answer {
    confirm(Enrolling::Phone, &state, &ctx, &session, &body).await
}

/// `POST /api/v1/account/two-step/email`
pub async fn add_email(
    State(state): State<AppState>,
    Client(ctx): Client,
    StepUp(proof, session): StepUp,
    ApiJson(_): ApiJson<Value>,
) -> Answer {
    let id = state.two_step.add_email_codes(&proof, &session.account, &ctx).await?;
    enabled(&id)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuestionBody {
    question_id: String,
    /// Too long or trivial is refused at the edge; personal, with the account.
    answer: SecurityAnswer,
}

/// `POST /api/v1/account/two-step/security-question`
pub async fn set_question(
    State(state): State<AppState>,
    Client(ctx): Client,
    StepUp(proof, session): StepUp,
    ApiJson(body): ApiJson<QuestionBody>,
) -> Answer {
    let id = state.two_step.set_security_question(&proof, &session.account, &body.question_id, &body.answer, &ctx).await?;
    enabled(&id)
}

/// `POST /api/v1/account/two-step/default`
pub async fn set_default(State(state): State<AppState>, StepUp(proof, session): StepUp, ApiJson(body): ApiJson<MethodOnly>) -> Answer {
    state.two_step.set_default_method(&proof, &session.account, &body.method_id).await?;
    Ok(super::status("default_set"))
}

/// `DELETE /api/v1/account/two-step/{method_id}`
pub async fn remove(
    State(state): State<AppState>,
    Client(ctx): Client,
    StepUp(proof, session): StepUp,
    Path(method_id): Path<String>,
) -> Answer {
    state.two_step.remove_method(&proof, &session.account, &method_id, &ctx).await?;
    Ok(super::status("removed"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepUpBody {
    method_id: Option<String>,
    code: Option<FactorCode>,
    /// Any length: one too long to be a password is a wrong one, not a bad body.
    password: Option<PasswordAttempt>,
}

/// `POST /api/v1/step-up` with `{method_id, code}`, or `{password}` without 2-step.
pub async fn step_up(
    State(state): State<AppState>,
    Client(ctx): Client,
    ApiSession(session): ApiSession,
    jar: CookieJar,
    ApiJson(body): ApiJson<StepUpBody>,
) -> Result<(CookieJar, Json<Value>), ApiError> {
    let proof = match (&body.method_id, &body.code, &body.password) {
        (Some(method_id), Some(code), None) => StepUpProof::Method { method_id, code },
        (None, None, Some(attempt)) => StepUpProof::Password(attempt.password().ok_or(TwoStepError::Invalid)?),
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                "Send {method_id, code}, or {password} when you have no 2-step method.",
            ));
        }
    };
    let token = state.two_step.step_up(&session.record, &session.account, proof, &ctx).await?;
    let jar = jar.add(state.web.cookie(state.web.session_cookie, token.expose().to_owned()));
    Ok((jar, super::status("verified")))
}

/// `POST /api/v1/step-up/send`
pub async fn step_up_send(
    State(state): State<AppState>,
    Client(ctx): Client,
    ApiSession(session): ApiSession,
    ApiJson(body): ApiJson<MethodOnly>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let binding = Binding { key: &session.record.id_hash, purpose: "step_up" };
    super::send_code(&state, &session.account, &body.method_id, binding, &ctx).await
}

/// This module's routes, under `/api/v1`.
pub fn router() -> Routes {
    Routes::new()
        .route("/login/second-factor", post(second_factor))
        .route("/login/second-factor/send", post(second_factor_send))
        .route("/account/two-step", get(list))
        .route("/account/two-step/history", get(history))
        .route("/account/two-step/totp", post(start_totp))
        .route("/account/two-step/totp/confirm", post(confirm_totp))
        .route("/account/two-step/recovery-codes", post(recovery_codes))
        .route("/account/two-step/email", post(add_email))
        .route("/account/two-step/sms", post(start_sms))
        .route("/account/two-step/sms/confirm", post(confirm_sms))
        .route("/account/two-step/security-question", post(set_question))
        .route("/account/two-step/default", post(set_default))
        .route("/account/two-step/{method_id}", delete(remove))
        .route("/step-up", post(step_up))
        .route("/step-up/send", post(step_up_send))
}
