//! Admin pages under `/admin`: help articles (create, edit, helpfulness by week and the
//! "No" reasons) and banners (edit the document, schedule, preview as a country and user
//! type, end one now). Anonymous visitors are sent to the login page (303); signed-in
//! accounts without the `admin` role get 403. Every form carries the CSRF token (S8.1)
//! and every change is audited.

use super::{Chrome, render};
use crate::web::content::rfc3339;
use crate::web::error::{ApiError, PageError};
use crate::web::extract::{Client, CurrentSession, MaybeSession, PageForm, Path, Query};
use crate::web::routes::Routes;
use crate::web::security::{Csrf, forbidden_form};
use crate::web::state::AppState;
use askama::Template;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use doorman_core::banners::{Slot, Viewer, format_time};
use doorman_core::content::ContentError;
use doorman_core::help::{Article, ArticleFields, Slug};
use doorman_core::roles::Role;
use doorman_core::{Country, UserType};
use serde::Deserialize;

pub fn router() -> Routes {
    Routes::new()
        .route("/admin", get(index))
        .route("/admin/help/new", get(new_article).post(create_article))
        .route("/admin/help/{slug}", get(edit_article).post(update_article))
        .route("/admin/banners", get(banners).post(save_banners))
        .route("/admin/banners/end", post(end_banner))
}

/// A signed-in admin, with the page chrome; otherwise a redirect to the login page or a
/// 403 page.
pub struct AdminSession(pub CurrentSession, Chrome);

impl FromRequestParts<AppState> for AdminSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let session = match MaybeSession::from_request_parts(parts, state).await {
            Ok(MaybeSession(Some(session))) => session,
            Ok(MaybeSession(None)) => return Err(Redirect::to("/login").into_response()),
            Err(e) => return Err(PageError(e).into_response()),
        };
        match state.roles.has_role(&session.account.id, Role::Admin).await {
            Ok(true) => {
                let Ok(chrome) = Chrome::from_request_parts(parts, state).await;
                Ok(Self(session, chrome))
            }
            Ok(false) => Err(PageError(ApiError::forbidden("This page is for administrators only.")).into_response()),
            Err(e) => Err(PageError::from(e).into_response()),
        }
    }
}

impl AdminSession {
    fn chrome(&self) -> Chrome {
        self.1.clone()
    }
    fn csrf(&self, state: &AppState) -> String {
        Csrf::token(state, self.0.token.expose())
    }
    fn check(&self, state: &AppState, token: &str) -> Result<(), PageError> {
        if Csrf::check(state, self.0.token.expose(), token) { Ok(()) } else { Err(PageError(forbidden_form())) }
    }
}

pub struct ArticleRow {
    pub slug: String,
    pub title: String,
    pub category: String,
    pub updated: String,
    pub helpful: i64,
    pub total: i64,
}

#[derive(Template)]
#[template(path = "admin_index.html")]
struct IndexPage {
    chrome: Chrome,
    articles: Vec<ArticleRow>,
    live_banners: usize,
}

/// `GET /admin`
pub async fn index(State(state): State<AppState>, admin: AdminSession) -> Result<Response, PageError> {
    let library = state.content.help();
    let mut articles = Vec::new();
    for a in &library.articles {
        let tally = state.content.vote_tally(&a.article.slug).await?;
        articles.push(ArticleRow {
            slug: a.article.slug.to_string(),
            title: a.article.title.clone(),
            category: a.article.category.clone(),
            updated: rfc3339(a.article.updated_at),
            helpful: tally.helpful,
            total: tally.total,
        });
    }
    let now = state.clock.unix();
    let live_banners =
        state.content.banners().board.statuses(now).iter().filter(|(_, s)| *s == doorman_core::banners::BannerStatus::Live).count();
    Ok(render(StatusCode::OK, &IndexPage { chrome: admin.chrome(), articles, live_banners }))
}

pub struct WeekRow {
    pub week: String,
    pub helpful: i64,
    pub total: i64,
    pub percent: i64,
}

pub struct ReasonRow {
    pub when: String,
    pub choice: &'static str,
    pub comment: String,
}

#[derive(Template)]
#[template(path = "admin_article.html")]
struct ArticleEditPage {
    chrome: Chrome,
    csrf: String,
    /// `None` for a new article.
    existing: Option<String>,
    fields: ArticleFields,
    error: Option<String>,
    saved: bool,
    weeks: Vec<WeekRow>,
    reasons: Vec<ReasonRow>,
}

async fn edit_page(
    state: &AppState,
    admin: &AdminSession,
    status: StatusCode,
    existing: Option<&Slug>,
    fields: ArticleFields,
    error: Option<String>,
    saved: bool,
) -> Result<Response, PageError> {
    let (mut weeks, mut reasons) = (Vec::new(), Vec::new());
    if let Some(slug) = existing {
        for w in state.content.weekly_votes(slug).await? {
            let percent = if w.total > 0 { w.helpful * 100 / w.total } else { 0 };
            weeks.push(WeekRow {
                week: rfc3339(w.week_start).get(..10).unwrap_or_default().to_owned(),
                helpful: w.helpful,
                total: w.total,
                percent,
            });
        }
        for r in state.content.no_reasons(slug, 200).await? {
            reasons.push(ReasonRow {
                when: rfc3339(r.at),
                choice: r.choice.map(|c| c.label()).unwrap_or("(no choice)"),
                comment: r.comment,
            });
        }
    }
    let page = ArticleEditPage {
        chrome: admin.chrome(),
        csrf: admin.csrf(state),
        existing: existing.map(|s| s.to_string()),
        fields,
        error,
        saved,
        weeks,
        reasons,
    };
    Ok(render(status, &page))
}

/// `GET /admin/help/new`
pub async fn new_article(State(state): State<AppState>, admin: AdminSession) -> Result<Response, PageError> {
    edit_page(&state, &admin, StatusCode::OK, None, ArticleFields::default(), None, false).await
}

/// `GET /admin/help/{slug}`
pub async fn edit_article(
    State(state): State<AppState>,
    admin: AdminSession,
    Path(slug): Path<String>,
    Query(query): Query<SavedQuery>,
) -> Result<Response, PageError> {
    let library = state.content.help();
    let found = library.get(&slug).ok_or(ContentError::NotFound)?;
    edit_page(&state, &admin, StatusCode::OK, Some(&found.article.slug), found.article.fields(), None, query.saved.is_some()).await
}

#[derive(Deserialize)]
pub struct SavedQuery {
    #[serde(default)]
    saved: Option<String>,
}

#[derive(Deserialize)]
pub struct ArticleForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    slug: String,
    title: String,
    category: String,
    body: String,
    #[serde(default)]
    related: String,
}

/// `POST /admin/help/new` and `POST /admin/help/{slug}`: save, or show the form again with
/// what was typed and what is wrong.
async fn save(
    state: AppState,
    ctx: doorman_core::audit::RequestContext,
    admin: AdminSession,
    existing: Option<Slug>,
    form: ArticleForm,
) -> Result<Response, PageError> {
    admin.check(&state, &form.csrf)?;
    let fields = ArticleFields {
        slug: existing.as_ref().map(|s| s.to_string()).unwrap_or(form.slug),
        title: form.title,
        category: form.category,
        body: form.body,
        related: form.related,
    };
    let outcome = match Article::parse(&fields, state.clock.unix()) {
        Ok(article) => state.content.save_article(&article, existing.is_none(), Some(&admin.0.account.id), &ctx).await.map(|()| article),
        Err(e) => Err(e.into()),
    };
    match outcome {
        Ok(article) => Ok(Redirect::to(&format!("/admin/help/{}?saved=1", article.slug)).into_response()),
        Err(e @ (ContentError::Article(_) | ContentError::SlugTaken)) => {
            let status = if matches!(e, ContentError::SlugTaken) { StatusCode::CONFLICT } else { StatusCode::BAD_REQUEST };
            edit_page(&state, &admin, status, existing.as_ref(), fields, Some(e.to_string()), false).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /admin/help/new`
pub async fn create_article(
    State(state): State<AppState>,
    Client(ctx): Client,
    admin: AdminSession,
    PageForm(form): PageForm<ArticleForm>,
) -> Result<Response, PageError> {
    save(state, ctx, admin, None, form).await
}

/// `POST /admin/help/{slug}`
pub async fn update_article(
    State(state): State<AppState>,
    Client(ctx): Client,
    admin: AdminSession,
    Path(slug): Path<String>,
    PageForm(form): PageForm<ArticleForm>,
) -> Result<Response, PageError> {
    let library = state.content.help();
    let existing = library.get(&slug).ok_or(ContentError::NotFound)?.article.slug.clone();
    save(state, ctx, admin, Some(existing), form).await
}

pub struct BannerRow {
    pub slot: String,
    pub name: String,
    pub message: String,
    pub country: String,
    pub usertype: String,
    pub icon: String,
    pub start: String,
    pub end: String,
    pub status: &'static str,
    pub can_end: bool,
}

pub struct PreviewBanner {
    pub message: String,
    pub icon: &'static str,
}

#[derive(Template)]
#[template(path = "admin_banners.html")]
struct BannersPage {
    chrome: Chrome,
    csrf: String,
    document: String,
    error: Option<String>,
    saved: bool,
    now: String,
    rows: Vec<BannerRow>,
    preview_country: String,
    preview_usertype: String,
    preview_error: Option<String>,
    preview: Option<Vec<PreviewBanner>>,
}

#[derive(Deserialize, Default)]
pub struct BannersQuery {
    #[serde(default)]
    country: Option<String>,
    #[serde(default)]
    usertype: Option<String>,
    #[serde(default)]
    saved: Option<String>,
}

fn banners_page(
    state: &AppState,
    admin: &AdminSession,
    status: StatusCode,
    document: Option<String>,
    error: Option<String>,
    query: BannersQuery,
) -> Response {
    let banners = state.content.banners();
    let now = state.clock.unix();
    let doc = banners.board.document();
    let statuses = banners.board.statuses(now);
    let status_of = |slot: Slot| statuses.iter().find(|(s, _)| *s == slot).map(|(_, st)| *st);
    let mut rows = Vec::new();
    let mut push = |slot: Slot, message: &str, country: &str, usertype: &str, icon: &str, start: &str, end: &str| {
        let st = status_of(slot);
        rows.push(BannerRow {
            slot: slot.form_value(),
            name: slot.name(),
            message: message.to_owned(),
            country: if country.is_empty() { "(all)".into() } else { country.to_owned() },
            usertype: usertype.to_owned(),
            icon: icon.to_owned(),
            start: if start.is_empty() { "(now)".into() } else { start.to_owned() },
            end: if end.is_empty() { "(no end)".into() } else { end.to_owned() },
            status: st.map(|s| s.as_str()).unwrap_or("?"),
            can_end: matches!(st, Some(doorman_core::banners::BannerStatus::Live | doorman_core::banners::BannerStatus::Scheduled)),
        });
    };
    let g = &doc.global;
    push(Slot::Global, &g.message, "All", "all", &g.icon, &g.start, &g.end);
    for (i, b) in doc.responsive.iter().enumerate() {
        push(Slot::Responsive(i), &b.message, &b.country, &b.usertype, &b.icon, &b.start, &b.end);
    }
    // The preview: what a signed-in account of that country and type sees now.
    let (mut preview, mut preview_error) = (None, None);
    let country = query.country.clone().unwrap_or_default();
    let usertype = query.usertype.clone().unwrap_or_default();
    if query.country.is_some() || query.usertype.is_some() {
        let viewer_country = match country.trim() {
            "" => Ok(None),
            c => Country::parse(c).map(Some).map_err(|e| e.to_string()),
        };
        let viewer_type = match usertype.trim() {
            "" | "anonymous" => Ok(None),
            t => UserType::parse(t).map(Some).map_err(|e| e.to_string()),
        };
        match (viewer_country, viewer_type) {
            (Ok(country), Ok(user_type)) => {
                let viewer = Viewer { country, user_type };
                preview = Some(
                    banners
                        .board
                        .active(&viewer, now)
                        .into_iter()
                        .map(|b| PreviewBanner { message: b.message, icon: b.icon.as_str() })
                        .collect(),
                );
            }
            (Err(e), _) | (_, Err(e)) => preview_error = Some(e),
        }
    }
    let page = BannersPage {
        chrome: admin.chrome(),
        csrf: admin.csrf(state),
        document: document.unwrap_or_else(|| pretty(&banners.json)),
        error,
        saved: query.saved.is_some(),
        now: format_time(now),
        rows,
        preview_country: country,
        preview_usertype: usertype,
        preview_error,
        preview,
    };
    render(status, &page)
}

/// The stored JSON, indented for editing (the keys keep their order).
fn pretty(json: &str) -> String {
    serde_json::from_str::<doorman_core::banners::BannerDocument>(json)
        .ok()
        .and_then(|doc| serde_json::to_string_pretty(&doc).ok())
        .unwrap_or_else(|| json.to_owned())
}

/// `GET /admin/banners`
pub async fn banners(State(state): State<AppState>, admin: AdminSession, Query(query): Query<BannersQuery>) -> Response {
    banners_page(&state, &admin, StatusCode::OK, None, None, query)
}

#[derive(Deserialize)]
pub struct BannersForm {
    #[serde(default)]
    csrf: String,
    document: String,
}

/// `POST /admin/banners`: replaces the document after checking it.
pub async fn save_banners(
    State(state): State<AppState>,
    Client(ctx): Client,
    admin: AdminSession,
    PageForm(form): PageForm<BannersForm>,
) -> Result<Response, PageError> {
    admin.check(&state, &form.csrf)?;
    match state.content.import_banners(&form.document, Some(&admin.0.account.id), &ctx).await {
        Ok(_) => Ok(Redirect::to("/admin/banners?saved=1").into_response()),
        Err(ContentError::Banners(e)) => {
            Ok(banners_page(&state, &admin, StatusCode::BAD_REQUEST, Some(form.document), Some(e.to_string()), BannersQuery::default()))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct EndForm {
    #[serde(default)]
    csrf: String,
    slot: String,
}

/// `POST /admin/banners/end`: ends one banner now.
pub async fn end_banner(
    State(state): State<AppState>,
    Client(ctx): Client,
    admin: AdminSession,
    PageForm(form): PageForm<EndForm>,
) -> Result<Response, PageError> {
    admin.check(&state, &form.csrf)?;
    let slot = Slot::parse(&form.slot)
        .ok_or_else(|| ContentError::Banners(doorman_core::banners::BannerError::NoSuchBanner(form.slot.clone())))?;
    state.content.end_banner(slot, Some(&admin.0.account.id), &ctx).await?;
    Ok(Redirect::to("/admin/banners?saved=1").into_response())
}
