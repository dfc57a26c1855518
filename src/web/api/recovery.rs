use crate::web::error::ApiError;
use crate::web::extract::{ApiJson, Client};
use crate::web::{request_reset, reset_password, AppState};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use doorman_core::recovery::{RecoveryToken, ResetCode, ResetError, ResetProof};
use doorman_core::LoginIdentifier;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForgotBody {
    login: String,
}

/// `POST /api/v1/password/forgot`: the same 202 for every input (S2.1, S2.2).
pub async fn forgot(State(state): State<AppState>, Client(ctx): Client, ApiJson(body): ApiJson<ForgotBody>) -> Result<(StatusCode, Json<Value>), ApiError> {
    request_reset(&state, &body.login, &ctx).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "status": "accepted" }))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    token: Option<String>,
    login: Option<String>,
    code: Option<String>,
    new_password: String,
}

/// `POST /api/v1/password/reset` with `{token, new_password}` or `{login, code, new_password}`.
pub async fn reset(State(state): State<AppState>, Client(ctx): Client, ApiJson(body): ApiJson<ResetBody>) -> Result<Json<Value>, ApiError> {
    let proof = match (body.token, body.login, body.code) {
        (Some(token), None, None) => ResetProof::Link(RecoveryToken::parse(&token).ok_or(ResetError::InvalidToken)?),
        (None, Some(login), Some(code)) => {
            ResetProof::Code { login: LoginIdentifier::new(&login), code: ResetCode::parse(&code).ok_or(ResetError::InvalidCode)? }
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                "Send either the token from the reset link, or your login and the code from the email, with new_password.",
            ))
        }
    };
    reset_password(&state, proof, &body.new_password, &ctx).await?;
    Ok(Json(json!({ "status": "password_changed" })))
}
