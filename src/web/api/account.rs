//! Account changes over JSON: email change and password change.

use crate::web::error::ApiError;
use crate::web::extract::{ApiJson, ApiSession, Client, StepUp};
use crate::web::routes::Routes;
use crate::web::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use doorman_core::auth::AuthError;
use doorman_core::email_change::EmailChangeToken;
use doorman_core::password_change::ChangeAllowedBy;
use doorman_core::{EmailAddress, Password, PasswordAttempt};
use serde::Deserialize;
use serde_json::{Value, json};

type Answer = Result<Json<Value>, ApiError>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailBody {
    new_email: EmailAddress,
}

/// `POST /api/v1/account/email` `{new_email}`: after a step-up, a confirmation link goes to the
/// new address. The answer is the same whether or not that address has an account.
pub async fn change_email(
    State(state): State<AppState>,
    Client(ctx): Client,
    StepUp(proof, session): StepUp,
    ApiJson(body): ApiJson<EmailBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    state.email_change.request_email_change(&proof, &session.account, &body.new_email, &ctx).await?;
    Ok(super::accepted("confirmation_sent"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    token: EmailChangeToken,
}

/// `POST /api/v1/account/email/confirm` `{token}`: the link's token; the old address is told.
pub async fn confirm_email(State(state): State<AppState>, Client(ctx): Client, ApiJson(body): ApiJson<TokenBody>) -> Answer {
    let account = state.email_change.confirm_email_change(body.token.token(), &ctx).await?;
    Ok(Json(json!({ "status": "email_changed", "email": account.email })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    /// Any length: one too long to be a password is a wrong one, not a bad body.
    current_password: Option<PasswordAttempt>,
    new_password: Password,
}

/// `POST /api/v1/account/password` `{current_password, new_password}`, or `{new_password}`
/// within a fresh step-up (S4.6). Every other session ends.
pub async fn change_password(
    State(state): State<AppState>,
    Client(ctx): Client,
    ApiSession(session): ApiSession,
    ApiJson(body): ApiJson<PasswordBody>,
) -> Answer {
    // Without the current password, a recent step-up (S4.6), checked by core as for any change.
    let current = body.current_password.as_ref().map(|attempt| attempt.password().ok_or(AuthError::InvalidCredentials)).transpose()?;
    let proof;
    let allowed_by = match current {
        Some(current) => ChangeAllowedBy::CurrentPassword(current),
        None => {
            proof = state.two_step.check_step_up(&session.record, &session.account).await?;
            ChangeAllowedBy::SteppedUp(&proof)
        }
    };
    let ended = state.password_change.change_password(&session.record, &session.account, allowed_by, &body.new_password, &ctx).await?;
    Ok(Json(json!({ "status": "password_changed", "other_sessions_ended": ended })))
}

/// This module's routes, under `/api/v1`.
pub fn router() -> Routes {
    Routes::new()
        .route("/account/email", post(change_email))
        .route("/account/password", post(change_password))
        .route("/account/email/confirm", post(confirm_email))
}
