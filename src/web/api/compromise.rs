//! "This wasn't me" (issue 11 §4): `POST /api/v1/report-compromise` locks the account.

use crate::web::error::ApiError;
use crate::web::extract::{ApiJson, Client};
use crate::web::state::AppState;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use doorman_core::compromise::CompromiseError;
use doorman_core::recovery::RecoveryToken;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportBody {
    /// Read as text so that a token of the wrong shape gets this link's own words, not a
    /// reset link's (256 bits are not guessed: nothing to count).
    token: String,
}

/// 200 `{"status":"locked","case"}`; 400 `invalid_token` for a used, expired or unknown link.
pub async fn report(
    State(state): State<AppState>,
    Client(ctx): Client,
    ApiJson(body): ApiJson<ReportBody>,
) -> Result<Json<Value>, ApiError> {
    let token = RecoveryToken::parse(&body.token).ok_or(CompromiseError::InvalidToken)?;
    let report = state.compromise.verify_report(&token).await?;
    let locked = state.compromise.lock(report, &ctx).await?;
    Ok(Json(json!({ "status": "locked", "case": locked.case_id })))
}

pub fn router() -> Router<AppState> {
    Router::new().route("/report-compromise", post(report))
}
