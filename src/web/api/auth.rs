use crate::web::error::ApiError;
use crate::web::extract::{ApiJson, ApiSession, Client, MaybeSession, Path};
use crate::web::routes::Routes;
use crate::web::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::routing::{delete, get, post};
use axum_extra::extract::CookieJar;
use doorman_core::{LoginIdentifier, PasswordAttempt};
use serde::Deserialize;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    login: LoginIdentifier,
    /// Any length: one too long to be a password is a wrong one (S2.1), not a bad body.
    password: PasswordAttempt,
}

/// `POST /api/v1/login`
pub async fn login(
    State(state): State<AppState>,
    Client(ctx): Client,
    MaybeSession(current): MaybeSession,
    jar: CookieJar,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<(CookieJar, Json<Value>), ApiError> {
    let (jar, signed_in) = crate::web::shared::sign_in(&state, current, jar, &body.login, &body.password, &ctx).await?;
    if signed_in.second_step {
        let methods = state.two_step.methods(&signed_in.account).await?;
        let mut body = json!({ "status": "second_factor_required", "methods": methods });
        if methods.is_empty() {
            // 2-step is on, but its only method cannot be used here: say so (issue 8).
            body["message"] = json!(doorman_core::two_step::NO_USABLE_METHOD);
        }
        return Ok((jar, Json(body)));
    }
    Ok((jar, super::status("authenticated")))
}

/// `POST /api/v1/logout`
pub async fn logout(
    State(state): State<AppState>,
    Client(ctx): Client,
    ApiSession(session): ApiSession,
    jar: CookieJar,
) -> Result<(CookieJar, Json<Value>), ApiError> {
    state.auth.logout(&session.record, &ctx).await?;
    Ok((jar.add(state.web.removal(state.web.session_cookie)), super::status("logged_out")))
}

/// `GET /api/v1/session`
pub async fn session(State(state): State<AppState>, ApiSession(session): ApiSession) -> Json<Value> {
    let account = &session.account;
    let time = |t: i64| time::OffsetDateTime::from_unix_timestamp(t).ok().and_then(|t| t.format(&Rfc3339).ok());
    let policy = state.auth.session_policy();
    Json(json!({
        "account": {
            "id": account.id,
            "username": account.username,
            "email": account.email,
            "user_type": account.user_type,
            "country": account.country,
            "created_at": account.created_at.format(&Rfc3339).ok(),
        },
        "session": {
            "created_at": time(session.record.created_at),
            "expires_at": time(session.record.created_at + policy.absolute_timeout_seconds),
            "idle_timeout_seconds": policy.idle_timeout_seconds,
        }
    }))
}

fn unix_to_rfc3339(t: i64) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp(t).ok().and_then(|t| t.format(&Rfc3339).ok())
}

/// `GET /api/v1/account/sessions`: where the account is signed in (S7.8).
pub async fn sessions(State(state): State<AppState>, ApiSession(session): ApiSession) -> Result<Json<Value>, ApiError> {
    let live = state.auth.live_sessions(&session.account.id).await?;
    let listed: Vec<Value> = live
        .iter()
        .map(|s| {
            json!({
                "id": s.id_hash,
                "created_at": unix_to_rfc3339(s.created_at),
                "last_seen_at": unix_to_rfc3339(s.last_seen_at),
                "ip": s.ip,
                // A browser and system from a fixed list, never the raw header (S9.2).
                "device": doorman_core::device::Device::from_user_agent(&s.user_agent).describe(),
                "current": s.id_hash == session.record.id_hash,
            })
        })
        .collect();
    Ok(Json(json!({ "sessions": listed })))
}

/// `DELETE /api/v1/account/sessions/{id}`, or `{id}` = `others` for every other session.
pub async fn revoke_session(
    State(state): State<AppState>,
    Client(ctx): Client,
    ApiSession(session): ApiSession,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let only = (id != "others").then_some(id.as_str());
    let ended = state.auth.revoke_sessions(&session.record, only, &ctx).await?;
    if only.is_some() && ended == 0 {
        return Err(ApiError::new(axum::http::StatusCode::NOT_FOUND, "not_found", "No such session on your account."));
    }
    Ok(Json(json!({ "status": "revoked", "ended": ended })))
}

/// This module's routes, under `/api/v1`.
pub fn router() -> Routes {
    Routes::new()
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/session", get(session))
        .route("/account/sessions", get(sessions))
        .route("/account/sessions/{id}", delete(revoke_session))
}
