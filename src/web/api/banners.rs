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
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use doorman_core::account::{Country, UserType};
use doorman_core::content::etag_of;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// How long a client or cache may reuse an answer: short, so changes show within seconds.
macro_rules! max_age {
    () => {
        "max-age=5"
    };
}

/// The answers of `GET /banners/active` made in the current second, by the viewer's country
/// and type: the most requested answer is built (JSON, SHA-256 ETag) once a second per kind
/// of viewer instead of on every request (issue 12). An answer depends only on the banner
/// document, the viewer's country and type, and the time, to the second.
#[derive(Default)]
pub struct ActiveAnswers(Mutex<AnswerMemo>);

#[derive(Default)]
struct AnswerMemo {
    /// The ETag of the banner document the answers were made from.
    document: String,
    second: i64,
    by_viewer: HashMap<(Option<Country>, Option<UserType>), Arc<Answer>>,
}

struct Answer {
    body: Bytes,
    etag: String,
}

impl ActiveAnswers {
    fn get_or_make(
        &self,
        document: &str,
        second: i64,
        viewer: (Option<Country>, Option<UserType>),
        make: impl FnOnce() -> Answer,
    ) -> Arc<Answer> {
        {
            let memo = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            if memo.second == second
                && memo.document == document
                && let Some(answer) = memo.by_viewer.get(&viewer)
            {
                return answer.clone();
            }
        }
        let answer = Arc::new(make());
        let mut memo = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if memo.second != second || memo.document != document {
            // A new second or a new document: every older answer may be out of date.
            *memo = AnswerMemo { document: document.to_owned(), second, by_viewer: HashMap::new() };
        }
        memo.by_viewer.insert(viewer, answer.clone());
        answer
    }
}

fn cached_json(request: &HeaderMap, body: impl Into<Bytes>, etag: &str, cache_control: &'static str, vary: Option<String>) -> Response {
    let matches = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim().trim_start_matches("W/") == etag || tag.trim() == "*"));
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/json")], body.into()).into_response()
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache_control));
    if let Some(value) = vary.and_then(|v| HeaderValue::from_str(&v).ok()) {
        headers.insert(header::VARY, value);
    }
    response
}

/// `GET /api/v1/banners`
pub async fn document(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let banners = state.content.banners();
    cached_json(&headers, banners.json.clone(), &banners.etag, concat!("public, ", max_age!()), None)
}

/// `GET /api/v1/banners/active`
pub async fn active(State(state): State<AppState>, MaybeSession(session): MaybeSession, headers: HeaderMap) -> Response {
    let viewer = viewer_of(&state, &headers, session.as_ref().map(|s| &s.account));
    let banners = state.content.banners();
    let now = state.clock.unix();
    let answer = state.banner_answers.get_or_make(&banners.etag, now, (viewer.country, viewer.user_type), || {
        let body = json!({
            "banners": banners.board.active(&viewer, now),
            "viewer": {
                "country": viewer.country.map(|c| c.as_str().to_owned()),
                "usertype": viewer.user_type.map(|t| t.as_str()),
            },
        })
        .to_string();
        Answer { etag: etag_of(body.as_bytes()), body: Bytes::from(body) }
    });
    let mut vary = String::from("Cookie");
    if let Some(name) = &state.web.country_header {
        vary.push_str(", ");
        vary.push_str(name.as_str());
    }
    cached_json(&headers, answer.body.clone(), &answer.etag, concat!("private, ", max_age!()), Some(vary))
}

/// This module's routes, under `/api/v1`.
pub fn router() -> Routes {
    Routes::new().route("/banners", get(document)).route("/banners/active", get(active))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(text: &str) -> Answer {
        Answer { body: Bytes::from(text.to_owned()), etag: etag_of(text.as_bytes()) }
    }

    #[test]
    fn an_answer_is_reused_only_for_the_same_document_second_and_viewer() {
        let answers = ActiveAnswers::default();
        let visitor = (None, None);
        let first = answers.get_or_make("\"doc1\"", 100, visitor, || answer("one"));
        let again = answers.get_or_make("\"doc1\"", 100, visitor, || answer("not built"));
        assert_eq!(again.body, first.body);
        let next_second = answers.get_or_make("\"doc1\"", 101, visitor, || answer("two"));
        assert_eq!(next_second.body, Bytes::from("two"), "a banner may start or end at any second");
        let edited = answers.get_or_make("\"doc2\"", 101, visitor, || answer("three"));
        assert_eq!(edited.body, Bytes::from("three"), "an edited document is answered at once");
        let other = (Country::try_from("FR".to_owned()).ok(), Some(UserType::Client));
        let theirs = answers.get_or_make("\"doc2\"", 101, other, || answer("four"));
        assert_eq!(theirs.body, Bytes::from("four"), "another kind of viewer gets its own answer");
    }
}
