use crate::web::error::ApiError;
use crate::web::extract::{ApiJson, Client};
use crate::web::routes::Routes;
use crate::web::shared::{request_reset, reset_password};
use crate::web::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use doorman_core::factors::FactorCode;
use doorman_core::input::Deferred;
use doorman_core::recovery::{RecoveryToken, ResetCodeAttempt, ResetProof, SecondFactorProof};
use doorman_core::{LoginIdentifier, Password};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForgotBody {
    login: LoginIdentifier,
}

/// `POST /api/v1/password/forgot`: the same 202 for every input (S2.1, S2.2).
pub async fn forgot(
    State(state): State<AppState>,
    Client(ctx): Client,
    ApiJson(body): ApiJson<ForgotBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    request_reset(&state, &body.login, &ctx).await?;
    Ok(super::accepted("accepted"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    token: Option<RecoveryToken>,
    login: Option<LoginIdentifier>,
    code: Option<ResetCodeAttempt>,
    /// Judged after the emailed proof: a code is counted whatever else the body holds (S3.7).
    new_password: Deferred<Password>,
    /// Needed when the account has 2-step verification on (S1.12).
    second_factor: Option<SecondFactorBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecondFactorBody {
    method_id: String,
    code: FactorCode,
}

/// The link's token, or the login and emailed code, as a proof. A token that cannot be one
/// was refused at the edge (256 bits are not guessed, so not counted); a code never is: a
/// malformed one is counted and answered like a wrong one (S3.7).
pub(super) fn proof_of(
    token: Option<RecoveryToken>,
    login: Option<LoginIdentifier>,
    code: Option<ResetCodeAttempt>,
) -> Result<ResetProof, ApiError> {
    match (token, login, code) {
        (Some(token), None, None) => Ok(ResetProof::Link(token)),
        (None, Some(login), Some(code)) => Ok(ResetProof::Code { login, code }),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "Send either the token from the reset link, or your login and the code from the email.",
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetSendBody {
    token: Option<RecoveryToken>,
    login: Option<LoginIdentifier>,
    code: Option<ResetCodeAttempt>,
    method_id: String,
}

/// `POST /api/v1/password/reset/send`: an SMS or email code for the reset's second step.
pub async fn send_code(
    State(state): State<AppState>,
    Client(ctx): Client,
    ApiJson(body): ApiJson<ResetSendBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let grant = state.recovery.open_reset(&proof_of(body.token, body.login, body.code)?).await?;
    state.recovery.send_reset_code(&grant, &body.method_id, &ctx).await?;
    Ok(super::accepted("sent"))
}

/// `POST /api/v1/password/reset` with `{token, new_password}` or `{login, code, new_password}`.
pub async fn reset(State(state): State<AppState>, Client(ctx): Client, ApiJson(body): ApiJson<ResetBody>) -> Result<Json<Value>, ApiError> {
    // The emailed proof first (a code is counted before it is compared), then the rest.
    let grant = state.recovery.open_reset(&proof_of(body.token, body.login, body.code)?).await?;
    let second = body.second_factor.as_ref().map(|s| SecondFactorProof { method_id: &s.method_id, code: &s.code });
    reset_password(&state, &grant, &body.new_password, second, &ctx).await?;
    Ok(super::status("password_changed"))
}

/// This module's routes, under `/api/v1`.
pub fn router() -> Routes {
    Routes::new()
        .route("/password/forgot", post(forgot))
        .route("/password/reset", post(reset))
        .route("/password/reset/send", post(send_code))
}
