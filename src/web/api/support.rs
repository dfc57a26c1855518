//! The support console's API (issue 11 §6), for automation; the same rules as the pages:
//! an agent with 2-step on who stepped up recently (`SupportAgent`).

use super::status;
use crate::web::content::rfc3339;
use crate::web::error::ApiError;
use crate::web::extract::{ApiJson, Client, Path, SupportAgent};
use crate::web::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use doorman_core::support::{CaseSummary, SupportError};
use doorman_core::support_view::MaskedField;
use serde::Deserialize;
use serde_json::{Value, json};

type Answer = Result<Json<Value>, ApiError>;

fn case_json(case: &CaseSummary) -> Value {
    json!({
        "id": case.id,
        "kind": case.kind,
        "status": case.status,
        "created_at": rfc3339(case.created_at),
        "claimed_by": case.claimed_by,
    })
}

/// `GET /api/v1/support/cases`: 200 `{"cases":[{"id","kind","status","created_at","claimed_by"}]}`,
/// open cases and running 2-step resets, oldest first.
pub async fn cases(State(state): State<AppState>, SupportAgent(agent, _): SupportAgent) -> Answer {
    let queue = state.support.queue(&agent).await?;
    Ok(Json(json!({ "cases": queue.iter().map(case_json).collect::<Vec<_>>() })))
}

/// `GET /api/v1/support/cases/{id}`: the case with its details and notes; 404 `not_found`.
pub async fn case(State(state): State<AppState>, SupportAgent(agent, _): SupportAgent, Path(id): Path<String>) -> Answer {
    let case = state.support.case(&agent, &id).await?;
    let mut body = case_json(&case.summary);
    body["details"] = json!(case.details);
    body["notes"] =
        case.notes.iter().map(|n| json!({ "at": rfc3339(n.at), "agent": n.agent, "comment": n.body })).collect::<Vec<_>>().into();
    Ok(Json(body))
}

/// `POST /api/v1/support/cases/{id}/claim` `{}`: 200 `{"status":"claimed"}`; 404 `not_found`;
/// 409 `claimed_by_other` or `case_resolved`.
pub async fn claim(
    State(state): State<AppState>,
    SupportAgent(agent, _): SupportAgent,
    Client(ctx): Client,
    Path(id): Path<String>,
    ApiJson(_): ApiJson<Value>,
) -> Answer {
    state.support.claim(&agent, &id, &ctx).await?;
    Ok(status("claimed"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    comment: String,
}

/// `POST /api/v1/support/cases/{id}/comments` `{"comment"}`: 201 `{"status":"commented"}`;
/// 400 `invalid_comment` (empty or too long); 409 `case_resolved`.
pub async fn comment(
    State(state): State<AppState>,
    SupportAgent(agent, _): SupportAgent,
    Client(ctx): Client,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CommentBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    state.support.comment(&agent, &id, &body.comment, &ctx).await?;
    Ok((StatusCode::CREATED, status("commented")))
}

/// `POST /api/v1/support/cases/{id}/resolve` `{}`: 200 `{"status":"resolved"}`; 409
/// `case_resolved` or `claimed_by_other`.
pub async fn resolve(
    State(state): State<AppState>,
    SupportAgent(agent, _): SupportAgent,
    Client(ctx): Client,
    Path(id): Path<String>,
    ApiJson(_): ApiJson<Value>,
) -> Answer {
    state.support.resolve(&agent, &id, &ctx).await?;
    Ok(status("resolved"))
}

/// `GET /api/v1/support/cases/{id}/account`: the account the case names, its username and
/// email masked; 404 `not_found` or `no_account`.
pub async fn account(State(state): State<AppState>, SupportAgent(agent, _): SupportAgent, Path(id): Path<String>) -> Answer {
    let view = state.support.account_view(&agent, &id).await?;
    Ok(Json(json!({
        "username": view.username,
        "email": view.email,
        "country": view.country,
        "user_type": view.user_type,
        "created_at": rfc3339(view.created_at),
        "locked": view.locked,
        "two_step_methods": view.methods.iter().map(|m| json!({ "kind": m.kind, "label": m.label, "confirmed": m.confirmed, "created_at": rfc3339(m.created_at) })).collect::<Vec<_>>(),
        "sessions": view.sessions.iter().map(|s| json!({ "created_at": rfc3339(s.created_at), "last_seen_at": rfc3339(s.last_seen_at), "ip": s.ip })).collect::<Vec<_>>(),
        "events": view.events.iter().map(|e| json!({ "at": rfc3339(e.at), "event": e.event.as_str(), "ip": e.ip })).collect::<Vec<_>>(),
        "cases": view.cases.iter().map(case_json).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevealBody {
    field: String,
}

/// `POST /api/v1/support/cases/{id}/account/reveal` `{"field":"username"|"email"}`: 200
/// `{"field","value"}`, audited; 400 `invalid_field`.
pub async fn reveal(
    State(state): State<AppState>,
    SupportAgent(agent, _): SupportAgent,
    Client(ctx): Client,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RevealBody>,
) -> Answer {
    let field = MaskedField::parse(&body.field).ok_or(SupportError::InvalidField)?;
    let value = state.support.reveal(&agent, &id, field, &ctx).await?;
    Ok(Json(json!({ "field": field.as_str(), "value": value })))
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/support/cases", get(cases))
        .route("/support/cases/{id}", get(case))
        .route("/support/cases/{id}/claim", post(claim))
        .route("/support/cases/{id}/comments", post(comment))
        .route("/support/cases/{id}/resolve", post(resolve))
        .route("/support/cases/{id}/account", get(account))
        .route("/support/cases/{id}/account/reveal", post(reveal))
}
