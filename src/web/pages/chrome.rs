//! What the layout around every page shows (product name, who is signed in, the demo note,
//! the banners), and the layer that every page request passes through: it reads what
//! banners depend on once, and turns the web layer's error answers into error pages with
//! the same layout.

use super::banners::{BannerContext, PageBanners};
use super::render;
use crate::web::error::{ErrorPageMessage, NextStep};
use crate::web::extract::SessionSlot;
use crate::web::state::AppState;
use askama::Template;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::SET_COOKIE;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use doorman_core::Account;
use std::sync::Arc;

/// What the layout around every page shows. Handlers take it as an extractor: it is built
/// from the request's banner context and the session the request carries (read once per
/// request, shared with the handler's own session extractor).
#[derive(Clone)]
pub struct Chrome {
    pub product_name: String,
    pub signed_in_as: Option<String>,
    pub demo: bool,
    /// The status banners that apply to this viewer now.
    pub banners: PageBanners,
    /// The CSRF token of the layout's own forms (log out, dismiss a banner).
    pub csrf: String,
}

impl Chrome {
    fn build(state: &AppState, context: Option<&BannerContext>, account: Option<&Account>) -> Self {
        let banners = context.map(|c| c.for_viewer(account)).unwrap_or_default();
        Self {
            product_name: state.web.product_name.clone(),
            signed_in_as: account.map(|a| a.username.as_str().to_owned()),
            demo: state.web.demo,
            csrf: banners.csrf.clone(),
            banners,
        }
    }
}

impl FromRequestParts<AppState> for Chrome {
    type Rejection = std::convert::Infallible;

    /// A session that cannot be read (storage down) shows as signed out: the handler's own
    /// session extractor reports that failure.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let account = SessionSlot::of(parts).signed_in(state, &parts.headers).await;
        let context = parts.extensions.get::<Arc<BannerContext>>().cloned();
        Ok(Self::build(state, context.as_deref(), account.as_ref()))
    }
}

/// Whether [`layout`] wraps this request: pages, not the API, assets or health checks.
pub fn wears_the_layout(request: &Request) -> bool {
    let path = request.uri().path();
    !(path.starts_with("/api/") || path.starts_with("/static/") || path == "/healthz" || path == "/readyz")
}

/// Wraps every page request ([`wears_the_layout`]): reads the banner
/// context and places it and the request's session slot in the request; afterwards an
/// error answer ([`ErrorPageMessage`]) is rendered as an error page in the same layout.
pub async fn layout(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let (context, issued) = BannerContext::read(&state, &mut request);
    let context = Arc::new(context);
    let slot = SessionSlot::default();
    let headers = request.headers().clone();
    request.extensions_mut().insert(context.clone());
    request.extensions_mut().insert(slot.clone());

    let mut response = next.run(request).await;
    if let Some(error) = response.extensions_mut().remove::<ErrorPageMessage>() {
        // With the database out of reach, the page is drawn for a visitor: looking the session
        // up would wait out the pool's timeout the breaker just spared the request.
        let unreachable = response.extensions().get::<crate::web::error::DatabaseUnreachable>().is_some();
        let account = if unreachable { None } else { slot.signed_in(&state, &headers).await };
        let chrome = Chrome::build(&state, Some(&context), account.as_ref());
        let page = error_page(chrome, response.status(), &error);
        let (parts, _) = response.into_parts();
        let (page_parts, body) = page.into_parts();
        // Keep what the handler set (cookies, Retry-After); take the page's body and type. The
        // handler's length was its own body's: hyper counts the page's.
        let mut parts = parts;
        parts.headers.remove(axum::http::header::CONTENT_LENGTH);
        response = Response::from_parts(parts, body);
        for (name, value) in page_parts.headers.iter() {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }
    if let Some(cookie) = issued.and_then(|c| HeaderValue::from_str(&c.to_string()).ok()) {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    response
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    chrome: Chrome,
    heading: &'a str,
    message: &'a str,
    next: Option<NextStep>,
    /// The help article for this kind of dead end.
    help: (&'static str, &'static str),
    /// Too many attempts: a reset is the way round a password lock.
    throttled: bool,
}

fn error_page(chrome: Chrome, status: StatusCode, error: &ErrorPageMessage) -> Response {
    let heading = match status {
        StatusCode::NOT_FOUND => "Page not found",
        StatusCode::GONE => "This link has expired",
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
        s if s.is_server_error() => "Something went wrong",
        _ => "That did not work",
    };
    let help = match (status, error.code) {
        (StatusCode::TOO_MANY_REQUESTS, _) => ("Why am I blocked?", "/help/too-many-attempts"),
        (_, "invalid_token" | "invalid_code") => ("The reset email did not arrive", "/help/reset-email-not-arriving"),
        _ => ("Visit the help center", "/help"),
    };
    let throttled = error.code == "too_many_attempts";
    render(status, &ErrorPage { chrome, heading, message: &error.message, next: error.next.as_deref().copied(), help, throttled })
}
