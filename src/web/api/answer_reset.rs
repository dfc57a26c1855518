//! "Forgot your answer?" and the security activity over JSON (issue 11 §1, §5).

use crate::web::error::ApiError;
use crate::web::extract::{ApiJson, ApiSession, Client, PendingSession, Query};
use crate::web::routes::Routes;
use crate::web::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use doorman_core::LoginIdentifier;
use doorman_core::answer_reset::{AnswerResetOrigin, AnswerResetToken};
use doorman_core::factors::{FactorCode, SECURITY_QUESTIONS, SecurityAnswer};
use doorman_core::recovery::{RecoveryToken, ResetCodeAttempt};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// `POST /api/v1/login/forgot-answer` `{}`: from the half-signed-in session (the password was
/// right). The same 202 whether or not an email was sent.
pub async fn from_login(
    State(state): State<AppState>,
    Client(ctx): Client,
    PendingSession(session): PendingSession,
    ApiJson(_): ApiJson<Empty>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let session = super::two_step::pending(session)?;
    state.answer_reset.request(&session.account, AnswerResetOrigin::Login, &ctx).await?;
    Ok(super::accepted("email_sent"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetProofBody {
    token: Option<RecoveryToken>,
    login: Option<LoginIdentifier>,
    code: Option<ResetCodeAttempt>,
}

/// `POST /api/v1/password/reset/forgot-answer` with the reset's proof (`{token}` or `{login,
/// code}`): the same 202 whether or not an email was sent.
pub async fn from_reset(
    State(state): State<AppState>,
    Client(ctx): Client,
    ApiJson(body): ApiJson<ResetProofBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let grant = state.recovery.open_reset(&super::recovery::proof_of(body.token, body.login, body.code)?).await?;
    state.answer_reset.request(grant.account(), AnswerResetOrigin::Reset, &ctx).await?;
    Ok(super::accepted("email_sent"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    token: AnswerResetToken,
}

/// `POST /api/v1/answer-reset/open` `{token}`: what the link's page shows; spends nothing.
pub async fn open(State(state): State<AppState>, ApiJson(body): ApiJson<TokenBody>) -> Result<Json<Value>, ApiError> {
    let grant = state.answer_reset.open(&body.token).await?;
    let methods = state.answer_reset.methods(&grant).await?;
    Ok(Json(json!({
        "methods": methods.iter().map(|m| json!({ "id": m.id, "kind": m.kind, "hint": m.hint })).collect::<Vec<_>>(),
        "security_questions": SECURITY_QUESTIONS.iter().map(|(id, text)| json!({ "id": id, "text": text })).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendBody {
    token: AnswerResetToken,
    method_id: String,
}

/// `POST /api/v1/answer-reset/send` `{token, method_id}`: an SMS or email code bound to the link.
pub async fn send(
    State(state): State<AppState>,
    Client(ctx): Client,
    ApiJson(body): ApiJson<SendBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let grant = state.answer_reset.open(&body.token).await?;
    state.answer_reset.send_code(&grant, &body.method_id, &ctx).await?;
    Ok(super::accepted("sent"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompleteBody {
    token: AnswerResetToken,
    method_id: String,
    code: FactorCode,
    question_id: String,
    answer: SecurityAnswer,
}

/// `POST /api/v1/answer-reset` `{token, method_id, code, question_id, answer}`.
pub async fn complete(
    State(state): State<AppState>,
    Client(ctx): Client,
    ApiJson(body): ApiJson<CompleteBody>,
) -> Result<Json<Value>, ApiError> {
    let grant = state.answer_reset.open(&body.token).await?;
    state.answer_reset.complete(&grant, &body.method_id, &body.code, &body.question_id, &body.answer, &ctx).await?;
    Ok(super::status("question_changed"))
}

#[derive(Deserialize)]
pub struct ActivityQuery {
    before: Option<i64>,
}

/// `GET /api/v1/account/activity[?before=ID]`: recent sign-ins and security changes.
pub async fn activity(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
    Query(query): Query<ActivityQuery>,
) -> Result<Json<Value>, ApiError> {
    let page = state.activity.page(&session.account.id, query.before).await?;
    let events: Vec<Value> = page
        .items
        .iter()
        .map(|i| {
            json!({
                "id": i.id,
                "at": time::OffsetDateTime::from_unix_timestamp(i.at).ok().and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()),
                "event": i.event.as_str(),
                "title": i.title,
                "ip": i.ip,
                "device": i.device,
                "report_url": crate::web::shared::report_url(i.id),
            })
        })
        .collect();
    Ok(Json(json!({ "events": events, "next_before": page.next_before })))
}

/// This module's routes, under `/api/v1`.
pub fn router() -> Routes {
    Routes::new()
        .route("/login/forgot-answer", post(from_login))
        .route("/password/reset/forgot-answer", post(from_reset))
        .route("/answer-reset/open", post(open))
        .route("/answer-reset/send", post(send))
        .route("/answer-reset", post(complete))
        .route("/account/activity", get(activity))
}
