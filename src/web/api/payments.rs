//! The demo payments over JSON: history, withdrawals and their approvals
//! (transaction-bound step-up, checklist S7.6).

use crate::web::error::ApiError;
use crate::web::extract::{ApiJson, ApiSession, Client, StepUp};
use crate::web::routes::Routes;
use crate::web::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use doorman_core::factors::FactorCode;
use doorman_core::payments::{PAYOUT_DESTINATIONS, Withdrawal};
use doorman_core::two_step::Binding;
use serde::Deserialize;
use serde_json::{Value, json};

type Answer = Result<Json<Value>, ApiError>;

/// `GET /api/v1/payments`: payment details need a recent verification.
pub async fn payments(State(state): State<AppState>, StepUp(proof, _): StepUp) -> Answer {
    let history = state.payments.history(&proof).await?;
    Ok(Json(json!({
        "payout_methods": PAYOUT_DESTINATIONS.iter().map(|(id, label)| json!({ "id": id, "label": label })).collect::<Vec<_>>(),
        "withdrawals": history.iter().map(|w| json!({ "amount": w.amount.to_string(), "destination": w.destination_label(), "created_at": w.created_at })).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WithdrawBody {
    amount: String,
    destination: String,
    approval_id: Option<String>,
}

/// `POST /api/v1/payments/withdrawals`: without an approval, answers 403 `step_up_required`
/// with a new approval bound to this amount and destination; with an approved one for
/// exactly this withdrawal, submits it (transaction-bound step-up).
pub async fn withdraw(
    State(state): State<AppState>,
    Client(ctx): Client,
    ApiSession(session): ApiSession,
    ApiJson(body): ApiJson<WithdrawBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let withdrawal = Withdrawal::parse(&body.amount, &body.destination)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_withdrawal", e.to_string()))?;
    match body.approval_id {
        None => {
            let approval = state.payments.request_withdrawal(&session.record, &withdrawal).await?;
            let methods = state.two_step.strong_methods(&session.account).await?;
            let mut error = ApiError::step_up_required(&methods)
                .with("approval_id", json!(approval.id))
                .with("amount", json!(withdrawal.amount.to_string()))
                .with("destination", json!(withdrawal.destination_label()));
            if methods.is_empty() {
                error.message = "Add a 2-step verification method before making withdrawals.".into();
            }
            Err(error)
        }
        Some(approval_id) => {
            state.payments.submit_withdrawal(&session.account, &approval_id, &withdrawal, &ctx).await?;
            Ok((
                StatusCode::CREATED,
                Json(
                    json!({ "status": "withdrawal_submitted", "amount": withdrawal.amount.to_string(), "destination": withdrawal.destination_label() }),
                ),
            ))
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    approval_id: String,
    method_id: String,
    code: Option<FactorCode>,
}

/// `POST /api/v1/payments/withdrawals/approve` `{approval_id, method_id, code}`
pub async fn approve(
    State(state): State<AppState>,
    Client(ctx): Client,
    ApiSession(session): ApiSession,
    ApiJson(body): ApiJson<ApproveBody>,
) -> Answer {
    let Some(code) = body.code else {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", "Send the code or answer for the method."));
    };
    state.two_step.approve(&session.account, &body.approval_id, &body.method_id, &code, &ctx).await?;
    Ok(super::status("approved"))
}

/// `POST /api/v1/payments/withdrawals/approve/send` `{approval_id, method_id}`
pub async fn approve_send(
    State(state): State<AppState>,
    Client(ctx): Client,
    ApiSession(session): ApiSession,
    ApiJson(body): ApiJson<ApproveBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if state.two_step.live_approval(&session.account, &body.approval_id).await?.is_none() {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "This withdrawal request does not exist or has expired."));
    }
    let key = format!("approval:{}", body.approval_id);
    super::send_code(&state, &session.account, &body.method_id, Binding { key: &key, purpose: "withdrawal" }, &ctx).await
}

/// This module's routes, under `/api/v1`.
pub fn router() -> Routes {
    Routes::new()
        .route("/payments", get(payments))
        .route("/payments/withdrawals", post(withdraw))
        .route("/payments/withdrawals/approve", post(approve))
        .route("/payments/withdrawals/approve/send", post(approve_send))
}
