//! The 2-step reset after a waiting period over JSON (issue 11 §2).

use crate::web::error::ApiError;
use crate::web::extract::{ApiJson, Client, CurrentSession, PendingSession};
use crate::web::routes::Routes;
use crate::web::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum_extra::extract::CookieJar;
use doorman_core::audit::RequestContext;
use doorman_core::clock::rfc3339;
use doorman_core::two_step_reset::{ResetStatus, TwoStepResetToken};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    token: TwoStepResetToken,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// The half-signed-in session these steps need (the password given, the second step not).
pub fn half_signed_in(session: Option<CurrentSession>) -> Result<CurrentSession, ApiError> {
    session.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "not_authenticated",
            "Log in with your password first (in this browser): a 2-step reset starts and finishes after the password.",
        )
    })
}

/// Links carry 256-bit tokens, yet a flood from one address is still cut (S3.6).
pub fn limit(state: &AppState, ctx: &RequestContext) -> Result<(), ApiError> {
    if state.anonymous_writes.check_key(&ctx.ip).is_err() {
        return Err(ApiError {
            retry_after: Some(6),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "Too many requests from this address. Try again in a few seconds.",
            )
        });
    }
    Ok(())
}

/// The status as the API and the page show it.
pub fn status_json(status: &ResetStatus) -> Value {
    let mut body = json!({ "status": status.status });
    if let Some(ready_at) = status.ready_at {
        body["ready_at"] = json!(rfc3339(ready_at));
    }
    if let Some(remaining) = status.remaining_seconds {
        body["remaining_seconds"] = json!(remaining);
    }
    if let Some(after) = status.new_request_after {
        body["new_request_after"] = json!(rfc3339(after));
    }
    body
}

/// `GET /api/v1/recovery/two-step-reset` (half-signed-in)
pub async fn status(State(state): State<AppState>, PendingSession(session): PendingSession) -> Result<Json<Value>, ApiError> {
    let session = half_signed_in(session)?;
    Ok(Json(status_json(&state.two_step_reset.status(&session.account).await?)))
}

/// `POST /api/v1/recovery/two-step-reset` `{}` (half-signed-in): the confirm link goes out.
pub async fn request(
    State(state): State<AppState>,
    Client(ctx): Client,
    PendingSession(session): PendingSession,
    ApiJson(_): ApiJson<Empty>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let session = half_signed_in(session)?;
    state.two_step_reset.request(&session.record, &session.account, &ctx).await?;
    Ok(super::accepted("email_sent"))
}

/// `POST /api/v1/recovery/two-step-reset/confirm` `{"token"}`: the wait starts.
pub async fn confirm(
    State(state): State<AppState>,
    Client(ctx): Client,
    ApiJson(body): ApiJson<TokenBody>,
) -> Result<Json<Value>, ApiError> {
    limit(&state, &ctx)?;
    let ready_at = state.two_step_reset.confirm(&body.token, &ctx).await?;
    Ok(Json(json!({ "status": "waiting", "ready_at": rfc3339(ready_at) })))
}

/// `POST /api/v1/recovery/two-step-reset/cancel` `{"token"}`
pub async fn cancel(
    State(state): State<AppState>,
    Client(ctx): Client,
    ApiJson(body): ApiJson<TokenBody>,
) -> Result<Json<Value>, ApiError> {
    limit(&state, &ctx)?;
    state.two_step_reset.cancel(&body.token, &ctx).await?;
    Ok(super::status("cancelled"))
}

/// `POST /api/v1/recovery/two-step-reset/complete` `{"token"}` (half-signed-in, after the
/// wait): every method goes, and this browser is signed in to set up a new one.
pub async fn complete(
    State(state): State<AppState>,
    Client(ctx): Client,
    PendingSession(session): PendingSession,
    jar: CookieJar,
    ApiJson(body): ApiJson<TokenBody>,
) -> Result<(CookieJar, Json<Value>), ApiError> {
    let session = half_signed_in(session)?;
    let token = state.two_step_reset.complete(&session.record, &session.account, &body.token, &ctx).await?;
    let jar = crate::web::shared::signed_in_cookies(&state, jar, &token, None);
    Ok((jar, Json(json!({ "status": "authenticated", "two_step": "removed" }))))
}

/// This module's routes, under `/api/v1`.
pub fn router() -> Routes {
    Routes::new()
        .route("/recovery/two-step-reset", get(status).post(request))
        .route("/recovery/two-step-reset/confirm", post(confirm))
        .route("/recovery/two-step-reset/cancel", post(cancel))
        .route("/recovery/two-step-reset/complete", post(complete))
}
