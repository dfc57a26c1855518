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
use doorman_core::support::CaseSummary;
use serde::Deserialize;
use serde_json::{json, Value};

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

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/support/cases", get(cases))
        .route("/support/cases/{id}", get(case))
        .route("/support/cases/{id}/claim", post(claim))
        .route("/support/cases/{id}/comments", post(comment))
        .route("/support/cases/{id}/resolve", post(resolve))
}
