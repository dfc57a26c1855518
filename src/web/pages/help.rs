//! The help center's pages: the index with search, each article with "Was this article
//! helpful?", and the vote form, which works without JavaScript (POST, then back to the
//! article). Votes: one per visitor or account and article, changeable, CSRF-protected and
//! rate limited per address (S12.1, S3.6, S8.1).

use super::{Chrome, render};
use crate::web::content::{check_address_limit, existing_visitor, rfc3339, voter};
use crate::web::error::{ApiError, PageError};
use crate::web::extract::{Client, MaybeSession, PageForm, Path, Query};
use crate::web::routes::Routes;
use crate::web::security::{Csrf, forbidden_form};
use crate::web::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::CookieJar;
use doorman_core::content::{ContentError, LibraryArticle};
use doorman_core::help::{Ballot, MAX_REASON_CHARS, MyVote, NoChoice, Tally};
use serde::Deserialize;

pub fn router() -> Routes {
    Routes::new().route("/help", get(index)).route("/help/{slug}", get(article)).route("/help/{slug}/vote", post(vote))
}

pub struct ArticleLink {
    pub slug: String,
    pub title: String,
    pub category: String,
}

impl ArticleLink {
    fn of(a: &LibraryArticle) -> Self {
        Self { slug: a.article.slug.to_string(), title: a.article.title.clone(), category: a.article.category.clone() }
    }
}

pub struct Category {
    pub name: String,
    pub articles: Vec<ArticleLink>,
}

#[derive(Template)]
#[template(path = "help_index.html")]
struct IndexPage {
    chrome: Chrome,
    query: String,
    results: Vec<ArticleLink>,
    categories: Vec<Category>,
}

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// `GET /help` and `GET /help?q=...`
pub async fn index(chrome: Chrome, State(state): State<AppState>, Query(query): Query<SearchQuery>) -> Response {
    let library = state.content.help();
    let query_text: String = query.q.trim().chars().take(200).collect();
    let results = if query_text.is_empty() { Vec::new() } else { library.search(&query_text).into_iter().map(ArticleLink::of).collect() };
    let categories = library
        .by_category()
        .into_iter()
        .map(|(name, list)| Category { name: name.to_owned(), articles: list.into_iter().map(ArticleLink::of).collect() })
        .collect();
    render(StatusCode::OK, &IndexPage { chrome, query: query_text, results, categories })
}

pub struct ChoiceOption {
    pub value: &'static str,
    pub label: &'static str,
}

#[derive(Template)]
#[template(path = "help_article.html")]
struct ArticlePage {
    chrome: Chrome,
    slug: String,
    title: String,
    category: String,
    updated: String,
    html: String,
    related: Vec<ArticleLink>,
    csrf: String,
    tally: Tally,
    /// This visitor's answer, if they voted.
    my_vote: Option<MyVote>,
    /// The "what was wrong?" form: not shown again once a "No" came with a reason, and
    /// open after a "No" without one.
    ask_reason: bool,
    reason_open: bool,
    choices: Vec<ChoiceOption>,
    max_reason: usize,
}

/// `GET /help/{slug}`
pub async fn article(
    chrome: Chrome,
    State(state): State<AppState>,
    MaybeSession(session): MaybeSession,
    jar: CookieJar,
    Path(slug): Path<String>,
) -> Result<Response, PageError> {
    let library = state.content.help();
    let found = library.get(&slug).ok_or(ContentError::NotFound)?;
    let article = &found.article;
    let voter = match &session {
        Some(s) => Some(doorman_core::help::Voter::Account(s.account.id.clone())),
        None => existing_visitor(&state, &jar),
    };
    let my_vote = match &voter {
        Some(v) => state.content.vote_of(&article.slug, v).await?,
        None => None,
    };
    let tally = state.content.vote_tally(&article.slug).await?;
    let (jar, csrf) = match &session {
        Some(s) => (jar, Csrf::token(&state, s.token.expose())),
        None => {
            let (jar, binding) = Csrf::pre_session(&state, jar);
            (jar, Csrf::token(&state, &binding))
        }
    };
    let page = ArticlePage {
        chrome,
        slug: article.slug.to_string(),
        title: article.title.clone(),
        category: article.category.clone(),
        updated: rfc3339(article.updated_at).get(..10).unwrap_or_default().to_owned(),
        html: found.html.clone(),
        related: library.related(article).into_iter().map(ArticleLink::of).collect(),
        csrf,
        tally,
        ask_reason: !my_vote.is_some_and(|v| v.explained),
        reason_open: my_vote.is_some_and(|v| !v.helpful && !v.explained),
        my_vote,
        choices: NoChoice::ALL.iter().map(|c| ChoiceOption { value: c.as_str(), label: c.label() }).collect(),
        max_reason: MAX_REASON_CHARS,
    };
    Ok((jar, render(StatusCode::OK, &page)).into_response())
}

#[derive(Deserialize)]
pub struct VoteForm {
    /// Missing or wrong: 403 (S8.1).
    #[serde(default)]
    csrf: String,
    /// "yes" or "no".
    helpful: String,
    #[serde(default)]
    choice: Option<String>,
    #[serde(default)]
    reason: String,
}

/// `POST /help/{slug}/vote`: records the vote, then back to the article's feedback box.
pub async fn vote(
    State(state): State<AppState>,
    Client(ctx): Client,
    MaybeSession(session): MaybeSession,
    jar: CookieJar,
    Path(slug): Path<String>,
    PageForm(form): PageForm<VoteForm>,
) -> Result<Response, PageError> {
    let binding = match &session {
        Some(s) => s.token.expose().to_owned(),
        None => jar.get(state.web.pre_session_cookie).map(|c| c.value().to_owned()).unwrap_or_default(),
    };
    if binding.is_empty() || !Csrf::check(&state, &binding, &form.csrf) {
        return Err(PageError(forbidden_form()));
    }
    let helpful = match form.helpful.as_str() {
        "yes" => true,
        "no" => false,
        _ => return Err(PageError(ApiError::new(StatusCode::BAD_REQUEST, "invalid_vote", "Answer Yes or No."))),
    };
    let ballot = Ballot::new(helpful, form.choice.as_deref(), &form.reason).map_err(ContentError::from)?;
    if state.content.help().get(&slug).is_none() {
        return Err(ContentError::NotFound.into());
    }
    check_address_limit(&state, &ctx.ip)?;
    let (jar, voter) = voter(&state, jar, session.as_ref().map(|s| &s.account));
    state.content.vote(&slug, &voter, &ballot, &ctx).await?;
    Ok((jar, Redirect::to(&format!("/help/{slug}#feedback"))).into_response())
}
