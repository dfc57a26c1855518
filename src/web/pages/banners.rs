//! Banners at the top of every page (checklist S12.2).
//!
//! [`page_scope`] wraps every page request: it records, for the length of the request, the
//! banner snapshot, the time, what is known of the viewer (the trusted proxy's country for
//! now) and the banners this visitor dismissed. When a handler reads the session
//! ([`note_account`], called by the session extractor), the viewer becomes the account.
//! [`crate::web::pages::Chrome`] then asks [`for_page`] for the banners to show, so every
//! page gets them without each handler passing the viewer along. A page that does not read
//! the session treats its visitor as anonymous, as its header does.
//!
//! Dismissing is a small form (no script: the CSP forbids inline script and the page must
//! work without JavaScript) that adds the banner's text id to a cookie; a banner whose text
//! changes has a new id and shows again.

use crate::web::extract::PageForm;
use crate::web::security::{forbidden_form, Csrf};
use crate::web::AppState;
use axum::extract::{Request, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use doorman_core::banners::{Icon, Viewer};
use doorman_core::content::BannerState;
use doorman_core::keys::random_token;
use doorman_core::Account;
use secrecy::ExposeSecret;
use serde::Deserialize;
use std::cell::RefCell;
use std::sync::Arc;

const DISMISSED_COOKIE: &str = "doorman_dismissed";
/// How many dismissals the cookie remembers (the oldest are forgotten first).
const MAX_DISMISSED: usize = 20;

struct PageViewer {
    banners: Arc<BannerState>,
    now: i64,
    viewer: Viewer,
    dismissed: Vec<String>,
    /// CSRF tokens for the dismiss form, bound like the page's own forms: to the session
    /// once a handler has found it live, else to the pre-session cookie. Empty: no binding.
    csrf_session: String,
    csrf_anonymous: String,
    signed_in: bool,
    back: String,
}

tokio::task_local! {
    static PAGE: RefCell<PageViewer>;
}

/// One banner as the layout shows it.
pub struct PageBanner {
    pub id: String,
    pub message: String,
    pub icon: &'static str,
    /// `status` for info and success, `alert` for warnings and errors.
    pub role: &'static str,
    pub label: &'static str,
}

/// The banners of one page, with what the dismiss forms need.
#[derive(Default)]
pub struct PageBanners {
    pub items: Vec<PageBanner>,
    pub csrf: String,
    pub back: String,
}

fn label(icon: Icon) -> &'static str {
    match icon {
        Icon::Info => "Information",
        Icon::Warning => "Warning",
        Icon::Error => "Problem",
        Icon::Success => "Resolved",
    }
}

/// The banners for the page being rendered (none outside a page request).
pub fn for_page() -> PageBanners {
    PAGE.try_with(|page| {
        let page = page.borrow();
        let items = page
            .banners
            .board
            .active(&page.viewer, page.now)
            .into_iter()
            .filter(|b| !page.dismissed.contains(&b.id))
            .map(|b| PageBanner { role: b.icon.aria_role(), icon: b.icon.as_str(), label: label(b.icon), id: b.id, message: b.message })
            .collect();
        let csrf = if page.signed_in { &page.csrf_session } else { &page.csrf_anonymous };
        PageBanners { items, csrf: csrf.clone(), back: page.back.clone() }
    })
    .unwrap_or_default()
}

/// The viewer of this page is this signed-in account.
pub fn note_account(account: &Account) {
    let _ = PAGE.try_with(|page| {
        let mut page = page.borrow_mut();
        page.viewer = Viewer { country: Some(account.country), user_type: Some(account.user_type) };
        page.signed_in = true;
    });
}

fn dismissed_of(jar: &CookieJar) -> Vec<String> {
    jar.get(DISMISSED_COOKIE).map(|c| c.value().split('.').filter(|id| is_banner_id(id)).map(str::to_owned).collect()).unwrap_or_default()
}

fn is_banner_id(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

fn cookie_value(jar: &CookieJar, name: &str) -> Option<String> {
    jar.get(name).map(|c| c.value().to_owned()).filter(|v| !v.is_empty())
}

/// Wraps every page request (not the API, assets or health checks); see the module doc.
pub async fn page_scope(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path.starts_with("/api/") || path.starts_with("/static/") || path == "/healthz" || path == "/readyz" {
        return next.run(request).await;
    }
    // Back to this page after a dismissal: with its query, and only when it can be fetched
    // again (a page that answers a form post has no GET; home sends the visitor on).
    let back = if request.method() == axum::http::Method::GET {
        request.uri().path_and_query().map(|pq| pq.as_str().to_owned()).unwrap_or_else(|| path.to_owned())
    } else {
        "/".to_owned()
    };
    let banners = state.content.banners();
    let jar = CookieJar::from_headers(request.headers());
    let mut issued = None;
    let pre_session = match cookie_value(&jar, state.web.pre_session_cookie) {
        Some(value) => value,
        // A visitor without one gets a pre-session cookie when there are banners to dismiss.
        // It is added to the request too, so that a handler that also needs one (the login
        // form) uses this one rather than making a second.
        None if banners.board.has_messages() => {
            let value = random_token(32).expose_secret().to_owned();
            let cookie = state.web.cookie(state.web.pre_session_cookie, value.clone());
            if let Ok(header) = HeaderValue::from_str(&format!("{}={value}", state.web.pre_session_cookie)) {
                request.headers_mut().append(COOKIE, header);
                issued = Some(cookie);
            }
            value
        }
        None => String::new(),
    };
    let token = |binding: Option<String>| binding.filter(|b| !b.is_empty()).map(|b| Csrf::token(&state, &b)).unwrap_or_default();
    let page = PageViewer {
        csrf_session: token(cookie_value(&jar, state.web.session_cookie)),
        csrf_anonymous: token(Some(pre_session)),
        signed_in: false,
        now: state.clock.unix(),
        viewer: crate::web::content::viewer_of(&state, request.headers(), None),
        dismissed: dismissed_of(&jar),
        banners,
        back,
    };
    let mut response = PAGE.scope(RefCell::new(page), next.run(request)).await;
    if let Some(cookie) = issued.and_then(|c| HeaderValue::from_str(&c.to_string()).ok()) {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    response
}

#[derive(Deserialize)]
pub struct DismissForm {
    #[serde(default)]
    csrf: String,
    banner: String,
    #[serde(default)]
    back: String,
}

/// A path on this site to go back to; anything else goes to the start page.
fn local_path(back: &str) -> &str {
    let ok = back.starts_with('/') && !back.starts_with("//") && !back.contains('\\') && !back.chars().any(char::is_control);
    if ok {
        back
    } else {
        "/"
    }
}

/// `POST /banners/dismiss`: hides one banner text for this browser (S8.1: needs the token).
pub async fn dismiss(State(state): State<AppState>, jar: CookieJar, PageForm(form): PageForm<DismissForm>) -> Response {
    let bound = [state.web.session_cookie, state.web.pre_session_cookie]
        .into_iter()
        .filter_map(|name| cookie_value(&jar, name))
        .any(|binding| Csrf::check(&state, &binding, &form.csrf));
    if !bound {
        return crate::web::error::PageError(forbidden_form()).into_response();
    }
    let mut dismissed = dismissed_of(&jar);
    let id = form.banner.to_ascii_lowercase();
    if is_banner_id(&id) && !dismissed.contains(&id) {
        dismissed.push(id);
    }
    let keep = dismissed.len().saturating_sub(MAX_DISMISSED);
    let mut cookie = state.web.cookie(DISMISSED_COOKIE, dismissed[keep..].join("."));
    cookie.set_max_age(time::Duration::days(365));
    (jar.add(cookie), Redirect::to(local_path(&form.back))).into_response()
}
