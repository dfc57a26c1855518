//! "This wasn't me" (issue 11 §4): `POST /api/v1/report-compromise` locks the account;
//! `POST /api/v1/compromise-reports`, the public form's, opens a case for support.

use crate::web::error::ApiError;
use crate::web::extract::{ApiJson, ApiSession, Client, Path};
use crate::web::routes::Routes;
use crate::web::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use doorman_core::compromise::CompromiseError;
use doorman_core::recovery::RecoveryToken;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportBody {
    /// Read as text so that a token of the wrong shape gets this link's own words, not a
    /// reset link's (256 bits are not guessed: nothing to count).
    token: String,
}

/// 200 `{"status":"locked","case","unlock"}`; 400 `invalid_token` for a used, expired or unknown link.
pub async fn report(
    State(state): State<AppState>,
    Client(ctx): Client,
    ApiJson(body): ApiJson<ReportBody>,
) -> Result<Json<Value>, ApiError> {
    let token = RecoveryToken::parse(&body.token).ok_or(CompromiseError::InvalidToken)?;
    let report = state.compromise.verify_report(&token).await?;
    let locked = state.compromise.lock(report, &ctx).await?;
    Ok(Json(locked_answer(&locked)))
}

/// `POST /api/v1/account/activity/{id}/report` `{}`: the signed-in owner reports one of their
/// own activity entries; locks at once (every session ends, this one too). 200
/// `{"status":"locked","case"}`; 404 `not_found`; 400 `report_too_old`; 403
/// `step_up_required` for an address change or a removed method (the lock moves the account
/// back or restores the method: a fresh verification first).
pub async fn report_activity(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
    Client(ctx): Client,
    Path(id): Path<i64>,
    ApiJson(_): ApiJson<EmptyBody>,
) -> Result<Json<Value>, ApiError> {
    let proof = crate::web::shared::recent_step_up(&state, &session).await?;
    let locked = state.compromise.lock_from_activity(&session.record, id, proof.as_ref(), &ctx).await?;
    Ok(Json(locked_answer(&locked)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmptyBody {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicReportBody {
    login: String,
    #[serde(default)]
    details: String,
}

/// `POST /api/v1/compromise-reports` `{"login","details"?}`: 202 `{"status":"received"}`, the
/// same whether or not an account matches; opens a case for support and locks nothing. 400
/// `invalid_login` (empty or over 320 characters), `invalid_details` (over 2000); 429
/// `too_many_requests`.
pub async fn report_publicly(
    State(state): State<AppState>,
    Client(ctx): Client,
    ApiJson(body): ApiJson<PublicReportBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    crate::web::shared::report_publicly(&state, &body.login, &body.details, &ctx).await?;
    Ok(super::accepted("received"))
}

pub fn router() -> Routes {
    Routes::new()
        .route("/report-compromise", post(report))
        .route("/compromise-reports", post(report_publicly))
        .route("/account/activity/{id}/report", post(report_activity))
}

/// A lock's answer: its case, and what lifts it: a reset, or support when the lock took away
/// every 2-step method (S1.12).
fn locked_answer(locked: &doorman_core::compromise::Locked) -> Value {
    json!({ "status": "locked", "case": locked.case_id, "unlock": if locked.support_only { "support" } else { "reset" } })
}
