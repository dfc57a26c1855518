//! Banners at the top of every page (checklist S12.2).
//!
//! The page layout (chrome.rs) reads, once per page request, what banners
//! depend on besides the viewer ([`BannerContext`]: the snapshot, the time, the proxy's
//! country, the banners this browser dismissed and the tokens of the dismiss form). Each
//! page's chrome then asks it for the banners of its viewer: the signed-in
//! account when there is one, otherwise an anonymous visitor.
//!
//! Dismissing is a small form (no script: the CSP forbids inline script and the page must
//! work without JavaScript) that adds the banner's text id to a cookie; a banner whose text
//! changes has a new id and shows again.

use crate::web::extract::PageForm;
use crate::web::routes::Routes;
use crate::web::security::{Csrf, forbidden_form};
use crate::web::state::AppState;
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::http::header::COOKIE;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::Cookie;
use doorman_core::Account;
use doorman_core::banners::{Icon, Viewer};
use doorman_core::content::BannerState;
use doorman_core::keys::random_token;
use secrecy::ExposeSecret;
use serde::Deserialize;
use std::sync::Arc;

const DISMISSED_COOKIE: &str = "doorman_dismissed";
/// How many dismissals the cookie remembers (the oldest are forgotten first).
const MAX_DISMISSED: usize = 20;

pub fn router() -> Routes {
    Routes::new().route("/banners/dismiss", post(dismiss))
}

/// What the banners of one page request depend on, apart from who is signed in.
pub struct BannerContext {
    banners: Arc<BannerState>,
    now: i64,
    /// An anonymous visitor: the trusted proxy's country, if any.
    anonymous: Viewer,
    dismissed: Vec<String>,
    /// CSRF tokens for the dismiss form, bound like the page's own forms: to the session
    /// when the viewer is signed in, else to the pre-session cookie. Empty: no binding.
    csrf_session: String,
    csrf_anonymous: String,
    back: String,
}

/// One banner as the layout shows it.
#[derive(Clone)]
pub struct PageBanner {
    pub id: String,
    pub message: String,
    pub icon: &'static str,
    /// `status` for info and success, `alert` for warnings and errors.
    pub role: &'static str,
    pub label: &'static str,
}

/// The banners of one page, with what the dismiss forms need.
#[derive(Clone, Default)]
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

impl BannerContext {
    /// Reads the request. A visitor without a pre-session cookie gets one when there are
    /// banners to dismiss (returned, for the response): it is added to the request too, so
    /// that a handler that also needs one (the login form) uses this one rather than
    /// making a second.
    pub fn read(state: &AppState, request: &mut Request) -> (Self, Option<Cookie<'static>>) {
        let path = request.uri().path();
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
        let token = |binding: Option<String>| binding.filter(|b| !b.is_empty()).map(|b| Csrf::token(state, &b)).unwrap_or_default();
        let context = Self {
            csrf_session: token(cookie_value(&jar, state.web.session_cookie)),
            csrf_anonymous: token(Some(pre_session)),
            now: state.clock.unix(),
            anonymous: crate::web::content::viewer_of(state, request.headers(), None),
            dismissed: dismissed_of(&jar),
            banners,
            back,
        };
        (context, issued)
    }

    /// The banners this viewer sees now: those for the account when signed in.
    pub fn for_viewer(&self, account: Option<&Account>) -> PageBanners {
        let viewer = account.map(Viewer::account).unwrap_or(self.anonymous);
        let items = self
            .banners
            .board
            .active(&viewer, self.now)
            .into_iter()
            .filter(|b| !self.dismissed.contains(&b.id))
            .map(|b| PageBanner { role: b.icon.aria_role(), icon: b.icon.as_str(), label: label(b.icon), id: b.id, message: b.message })
            .collect();
        let csrf = if account.is_some() { &self.csrf_session } else { &self.csrf_anonymous };
        PageBanners { items, csrf: csrf.clone(), back: self.back.clone() }
    }
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
    if ok { back } else { "/" }
}

/// `POST /banners/dismiss`: hides one banner text for this browser (S8.1: needs the token).
async fn dismiss(State(state): State<AppState>, jar: CookieJar, PageForm(form): PageForm<DismissForm>) -> Response {
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
