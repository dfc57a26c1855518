//! Banners in JSON, the hottest path: both answers come from memory (no database read for
//! the banners), carry an ETag and honour `If-None-Match` with 304.
//!
//! - `GET /api/v1/banners`: the stored document, in the seed's shape; the same for everyone,
//!   so `Cache-Control: public`.
//! - `GET /api/v1/banners/active`: the banners that apply to this viewer now (S12.2): the
//!   account's country and type when signed in, else the trusted proxy's country (only when
//!   configured) and only `all` banners; `Cache-Control: private`, as it depends on the viewer.

use crate::web::content::viewer_of;
use crate::web::extract::MaybeSession;
use crate::web::routes::Routes;
use crate::web::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use doorman_core::content::etag_of;
use serde_json::json;

/// How long a client or cache may reuse an answer: short, so changes show within seconds.
const MAX_AGE_SECONDS: u32 = 5;

fn cached_json(request: &HeaderMap, body: String, etag: &str, cache_control: String, vary: Option<String>) -> Response {
    let matches = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim().trim_start_matches("W/") == etag || tag.trim() == "*"));
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/json")], body).into_response()
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    if let Ok(value) = HeaderValue::from_str(&cache_control) {
        headers.insert(header::CACHE_CONTROL, value);
    }
    if let Some(value) = vary.and_then(|v| HeaderValue::from_str(&v).ok()) {
        headers.insert(header::VARY, value);
    }
    response
}

/// `GET /api/v1/banners`
pub async fn document(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let banners = state.content.banners();
    cached_json(&headers, banners.json.clone(), &banners.etag, format!("public, max-age={MAX_AGE_SECONDS}"), None)
}

/// `GET /api/v1/banners/active`
pub async fn active(State(state): State<AppState>, MaybeSession(session): MaybeSession, headers: HeaderMap) -> Response {
    let viewer = viewer_of(&state, &headers, session.as_ref().map(|s| &s.account));
    let banners = state.content.banners();
    let active = banners.board.active(&viewer, state.clock.unix());
    let body = json!({
        "banners": active,
        "viewer": {
            "country": viewer.country.map(|c| c.as_str().to_owned()),
            "usertype": viewer.user_type.map(|t| t.as_str()),
        },
    })
    .to_string();
    let etag = etag_of(body.as_bytes());
    let mut vary = String::from("Cookie");
    if let Some(name) = &state.web.country_header {
        vary.push_str(", ");
        vary.push_str(name.as_str());
    }
    cached_json(&headers, body, &etag, format!("private, max-age={MAX_AGE_SECONDS}"), Some(vary))
}

/// This module's routes, under `/api/v1`.
pub fn router() -> Routes {
    Routes::new().route("/banners", get(document)).route("/banners/active", get(active))
}
