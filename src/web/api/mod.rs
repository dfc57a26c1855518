//! JSON API, version 1. Every error answers `{"error": "<code>", "message": "<text>"}`.

pub mod account;
pub mod answer_reset;
pub mod auth;
pub mod banners;
pub mod compromise;
pub mod health;
pub mod help;
pub mod payments;
pub mod recovery;
pub mod recovery_requests;
pub mod support;
pub mod two_step;
pub mod two_step_reset;

use crate::web::error::ApiError;
use crate::web::routes::Routes;
use crate::web::state::AppState;
use axum::Json;
use axum::http::StatusCode;
use doorman_core::Account;
use doorman_core::audit::RequestContext;
use doorman_core::two_step::Binding;
use serde_json::{Value, json};

/// Every API v1 route: each feature module brings its own `router()`.
pub fn router() -> Routes {
    Routes::new()
        .merge(auth::router())
        .merge(recovery::router())
        .merge(two_step::router())
        .merge(two_step_reset::router())
        .merge(account::router())
        .merge(payments::router())
        .merge(help::router())
        .merge(banners::router())
        .merge(compromise::router())
        .merge(answer_reset::router())
        .merge(recovery_requests::router())
        .merge(support::router())
        .merge(support::owner::router())
}

/// `{"status": ...}`: what a change that needs no more words answers.
fn status(name: &str) -> Json<Value> {
    Json(json!({ "status": name }))
}

/// 202 `{"status": ...}`: accepted, and carried out out of band (an email or a text sent).
fn accepted(name: &str) -> (StatusCode, Json<Value>) {
    (StatusCode::ACCEPTED, status(name))
}

/// Every "send me a code" of the API (the second step of login, step-up, a payment
/// approval): a code for one of the account's methods, bound to where it will be checked.
async fn send_code(
    state: &AppState,
    account: &Account,
    method_id: &str,
    binding: Binding<'_>,
    ctx: &RequestContext,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    state.two_step.send_code(account, method_id, &binding, ctx).await?;
    Ok(accepted("sent"))
}
