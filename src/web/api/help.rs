//! The help center in JSON: the articles, one article, and votes (S12.1, S3.6). Votes need
//! no form token: the API's guard already refuses non-JSON and cross-site requests (S8.2).

use crate::web::content::{check_address_limit, rfc3339, voter};
use crate::web::error::ApiError;
use crate::web::extract::{ApiJson, Client, MaybeSession, Path, Query};
use crate::web::routes::Routes;
use crate::web::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::routing::{get, post};
use axum_extra::extract::CookieJar;
use doorman_core::content::{ContentError, LibraryArticle};
use doorman_core::help::Ballot;
use serde::Deserialize;
use serde_json::{Value, json};

fn summary(a: &LibraryArticle) -> Value {
    json!({
        "slug": a.article.slug,
        "title": a.article.title,
        "category": a.article.category,
        "updated_at": rfc3339(a.article.updated_at),
        "url": format!("/help/{}", a.article.slug),
    })
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: Option<String>,
}

/// `GET /api/v1/help/articles` (every article by category) and `?q=...` (search, best first).
pub async fn list(State(state): State<AppState>, Query(query): Query<ListQuery>) -> Json<Value> {
    let library = state.content.help();
    let articles: Vec<Value> = match query.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        Some(q) => library.search(&q.chars().take(200).collect::<String>()).into_iter().map(summary).collect(),
        None => library.articles.iter().map(summary).collect(),
    };
    Json(json!({ "articles": articles }))
}

/// `GET /api/v1/help/articles/{slug}`
pub async fn show(State(state): State<AppState>, Path(slug): Path<String>) -> Result<Json<Value>, ApiError> {
    let library = state.content.help();
    let found = library.get(&slug).ok_or(ContentError::NotFound)?;
    let tally = state.content.vote_tally(&found.article.slug).await?;
    let mut body = summary(found);
    body["body_markdown"] = json!(found.article.body);
    body["body_html"] = json!(found.html);
    body["related"] = library.related(&found.article).into_iter().map(summary).collect();
    body["votes"] = json!({ "helpful": tally.helpful, "total": tally.total });
    Ok(Json(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoteBody {
    helpful: bool,
    /// Free text with a "No", at most 500 characters.
    #[serde(default)]
    reason: String,
    /// One of the offered reasons, with a "No".
    #[serde(default)]
    choice: Option<String>,
}

/// `POST /api/v1/help/articles/{slug}/vote` `{"helpful": bool, "reason": "...", "choice": "..."}`
/// answers `{"helpful": N, "total": M}`. One vote per account (signed in) or visitor cookie
/// (given one when missing) and article; voting again replaces the vote.
pub async fn vote(
    State(state): State<AppState>,
    Client(ctx): Client,
    MaybeSession(session): MaybeSession,
    jar: CookieJar,
    Path(slug): Path<String>,
    ApiJson(body): ApiJson<VoteBody>,
) -> Result<(CookieJar, Json<Value>), ApiError> {
    let ballot = Ballot::new(body.helpful, body.choice.as_deref(), &body.reason).map_err(ContentError::from)?;
    if state.content.help().get(&slug).is_none() {
        return Err(ContentError::NotFound.into());
    }
    check_address_limit(&state, &ctx.ip)?;
    let (jar, voter) = voter(&state, jar, session.as_ref().map(|s| &s.account));
    let tally = state.content.vote(&slug, &voter, &ballot, &ctx).await?;
    Ok((jar, Json(json!({ "helpful": tally.helpful, "total": tally.total }))))
}

/// This module's routes, under `/api/v1`.
pub fn router() -> Routes {
    Routes::new()
        .route("/help/articles", get(list))
        .route("/help/articles/{slug}", get(show))
        .route("/help/articles/{slug}/vote", post(vote))
}
