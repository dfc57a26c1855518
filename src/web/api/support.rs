//! The support console's API (issue 11 §6), for automation; the same rules as the pages:
//! an agent with 2-step on who stepped up recently (`SupportAgent`).

use super::status;
use crate::web::content::rfc3339;
use crate::web::error::ApiError;
use crate::web::extract::{ApiJson, Client, Path, SupportAgent};
use crate::web::routes::Routes;
use crate::web::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use doorman_core::support::{CaseSummary, SupportError};
use doorman_core::support_actions::{ActionOutcome, CaseCheck, ProposedAction, SupportAction};
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
        "requester_wrote_last": case.requester_wrote_last,
    })
}

/// `GET /api/v1/support/cases`: 200 `{"cases":[{"id","kind","status","created_at","claimed_by"}]}`,
/// open cases and running 2-step resets, oldest first.
pub async fn cases(State(state): State<AppState>, SupportAgent(agent, _): SupportAgent) -> Answer {
    let queue = state.support.queue(&agent).await?;
    Ok(Json(json!({ "cases": queue.iter().map(case_json).collect::<Vec<_>>() })))
}

fn check_json(check: &CaseCheck) -> Value {
    json!({ "kind": check.kind.as_str(), "note": check.note, "agent": check.agent, "at": rfc3339(check.at), "counts": check.kind.counts() })
}

pub fn action_json(action: &ProposedAction, now: i64) -> Value {
    json!({
        "id": action.id,
        "action": action.action.as_str(),
        "target": action.target,
        "reason": action.reason,
        "status": action.status_at(now).as_str(),
        "proposed_by": action.proposer,
        "proposed_at": rfc3339(action.proposed_at),
        "expires_at": rfc3339(action.expires_at),
        "approved_by": action.approver,
        "effective_at": action.effective_at.map(rfc3339),
    })
}

/// `GET /api/v1/support/cases/{id}`: the case with its details, notes, identity checklist and
/// two-person actions; 404 `not_found`.
pub async fn case(State(state): State<AppState>, SupportAgent(agent, _): SupportAgent, Path(id): Path<String>) -> Answer {
    let case = state.support.case(&agent, &id).await?;
    let now = state.clock.unix();
    let mut body = case_json(&case.summary);
    body["details"] = json!(case.details);
    body["contact_email"] = json!(case.contact);
    body["notes"] = case
        .notes
        .iter()
        .map(|n| json!({ "at": rfc3339(n.at), "agent": n.agent, "comment": n.body, "to_requester": n.to_requester }))
        .collect::<Vec<_>>()
        .into();
    body["checks"] = state.support.checks(&agent, &id).await?.iter().map(check_json).collect::<Vec<_>>().into();
    body["actions"] = state.support.actions(&agent, &id).await?.iter().map(|a| action_json(a, now)).collect::<Vec<_>>().into();
    Ok(Json(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckBody {
    kind: String,
    note: String,
}

/// `POST /api/v1/support/cases/{id}/checks` `{"kind","note"}`: 201 `{"status":"recorded"}`; 400
/// `invalid_kind` (`contact_verified` is doorman's own) or `invalid_note`; 409 `case_resolved`.
pub async fn check(
    State(state): State<AppState>,
    SupportAgent(agent, _): SupportAgent,
    Client(ctx): Client,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CheckBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    state.support.record_check(&agent, &id, &body.kind, &body.note, &ctx).await?;
    Ok((StatusCode::CREATED, status("recorded")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    action: String,
    reason: String,
}

/// `POST /api/v1/support/cases/{id}/actions` `{"action","reason"}`: 200 `{"status":"done"}`, or
/// 202 `{"status":"awaiting_approval","action_id"}` for `reset_two_step` and `change_email`;
/// 400 `invalid_action` or `invalid_reason`; 403 `own_account`; 409 `checks_missing`,
/// `action_waiting`, `no_contact`, `same_email`, `not_locked` or `case_resolved`.
pub async fn act(
    State(state): State<AppState>,
    SupportAgent(agent, _): SupportAgent,
    Client(ctx): Client,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ActionBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let action = SupportAction::parse(&body.action).ok_or(SupportError::InvalidAction)?;
    Ok(match state.support.act(&agent, &id, action, &body.reason, &ctx).await? {
        ActionOutcome::Done => (StatusCode::OK, status("done")),
        ActionOutcome::AwaitingApproval { action_id } => {
            (StatusCode::ACCEPTED, Json(json!({ "status": "awaiting_approval", "action_id": action_id })))
        }
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    reason: String,
}

/// `POST /api/v1/support/actions/{action_id}/approve` `{"reason"}`: 200
/// `{"status":"approved","effective_at"}`; 403 `same_agent` (the proposer) or `own_account`;
/// 404 `not_found`; 409 `action_expired`, `not_awaiting_approval` or `target_changed`.
pub async fn approve(
    State(state): State<AppState>,
    SupportAgent(agent, _): SupportAgent,
    Client(ctx): Client,
    Path(action_id): Path<String>,
    ApiJson(body): ApiJson<ApproveBody>,
) -> Answer {
    let effective_at = state.support.approve(&agent, &action_id, &body.reason, &ctx).await?;
    Ok(Json(json!({ "status": "approved", "effective_at": rfc3339(effective_at) })))
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyBody {
    message: String,
}

/// `POST /api/v1/support/cases/{id}/replies` `{"message"}`: 201 `{"status":"sent"}`, shown on
/// the requester's status page and emailed to the case's contact address; 400
/// `invalid_reply`; 409 `no_contact`, `case_resolved` or `claimed_by_other`; 429
/// `too_many_replies`.
pub async fn reply(
    State(state): State<AppState>,
    SupportAgent(agent, _): SupportAgent,
    Client(ctx): Client,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReplyBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    state.support.reply(&agent, &id, &body.message, &ctx).await?;
    Ok((StatusCode::CREATED, status("sent")))
}

/// `POST /api/v1/support/cases/{id}/resolve` `{}`: 200 `{"status":"resolved"}` (a case with a
/// contact address emails its requester); 409 `case_resolved` or `claimed_by_other`.
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
        "two_step_history": view.method_history.iter().map(|h| json!({ "kind": h.kind, "label": h.label, "change": h.change, "by": h.by, "at": rfc3339(h.at) })).collect::<Vec<_>>(),
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

pub fn router() -> Routes {
    Routes::new()
        .route("/support/cases", get(cases))
        .route("/support/cases/{id}", get(case))
        .route("/support/cases/{id}/claim", post(claim))
        .route("/support/cases/{id}/comments", post(comment))
        .route("/support/cases/{id}/replies", post(reply))
        .route("/support/cases/{id}/resolve", post(resolve))
        .route("/support/cases/{id}/account", get(account))
        .route("/support/cases/{id}/account/reveal", post(reveal))
        .route("/support/cases/{id}/checks", post(check))
        .route("/support/cases/{id}/actions", post(act))
        .route("/support/actions/{action_id}/approve", post(approve))
}

/// The owner's side of support actions: pending changes on their own account, cancelled from
/// a signed-in session or with the link the old address got.
pub mod owner {
    use super::{Answer, action_json, status};
    use crate::web::error::ApiError;
    use crate::web::extract::{ApiJson, ApiSession, Client, Path};
    use crate::web::routes::Routes;
    use crate::web::state::AppState;
    use axum::Json;
    use axum::extract::State;
    use axum::routing::{get, post};
    use doorman_core::support::SupportError;
    use doorman_core::support_actions::SupportCancelToken;
    use serde::Deserialize;
    use serde_json::{Value, json};

    /// `GET /api/v1/account/support-actions`: `{"actions":[...]}`, approved support changes of
    /// the signed-in account that have not taken effect yet.
    pub async fn pending(State(state): State<AppState>, ApiSession(session): ApiSession) -> Answer {
        let now = state.clock.unix();
        let pending = state.support.pending_for_owner(&session.account.id).await?;
        Ok(Json(json!({ "actions": pending.iter().map(|a| action_json(a, now)).collect::<Vec<_>>() })))
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct EmptyBody {}

    /// `POST /api/v1/account/support-actions/{id}/cancel` `{}`: 200 `{"status":"cancelled"}`; 404
    /// `not_found` (not this account's); 409 `not_awaiting_approval`.
    pub async fn cancel(
        State(state): State<AppState>,
        ApiSession(session): ApiSession,
        Client(ctx): Client,
        Path(id): Path<String>,
        ApiJson(_): ApiJson<EmptyBody>,
    ) -> Answer {
        state.support.cancel_by_owner(&session.account.id, &id, &ctx).await?;
        Ok(status("cancelled"))
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct TokenBody {
        token: String,
    }

    /// `POST /api/v1/support-actions/cancel` `{"token"}`: the link the old address got. 200
    /// `{"status":"cancelled"}`; 400 `invalid_token`.
    pub async fn cancel_by_link(
        State(state): State<AppState>,
        Client(ctx): Client,
        ApiJson(body): ApiJson<TokenBody>,
    ) -> Result<Json<Value>, ApiError> {
        let token = SupportCancelToken::parse(&body.token).ok_or(SupportError::InvalidToken)?;
        state.support.cancel_by_link(&token, &ctx).await?;
        Ok(status("cancelled"))
    }

    pub fn router() -> Routes {
        Routes::new()
            .route("/account/support-actions", get(pending))
            .route("/account/support-actions/{id}/cancel", post(cancel))
            .route("/support-actions/cancel", post(cancel_by_link))
    }
}
