//! Response headers every answer carries (checklist S8.3, S7.9), the JSON API's
//! cross-site guard (S8.2), and the form CSRF tokens (S8.1).

use crate::web::error::ApiError;
use crate::web::state::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use doorman_core::keys::random_token;
use secrecy::ExposeSecret;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The headers every answer carries, unless its handler set its own.
pub fn with_security_headers(mut response: Response, secure_cookies: bool) -> Response {
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name: header::HeaderName, value: &'static str| {
        headers.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(headers, header::CONTENT_SECURITY_POLICY, CSP);
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "same-origin");
    // Pages and API answers can hold account data; only static assets say otherwise.
    set(headers, header::CACHE_CONTROL, "no-store");
    if secure_cookies {
        set(headers, header::STRICT_TRANSPORT_SECURITY, "max-age=63072000; includeSubDomains");
    }
    response
}

/// Whether [`api_guard`] sees this request: what may change something in the JSON API.
pub fn is_an_api_write(request: &Request) -> bool {
    request.uri().path().starts_with(crate::web::API_PREFIX) && !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The JSON API refuses state changes ([`is_an_api_write`]) that are not JSON, and those a
/// browser marks as cross-site: a page on another origin cannot make a signed-in user act.
pub async fn api_guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site")
        && !matches!(site, "same-origin" | "none")
    {
        return ApiError::forbidden("Cross-site requests are not allowed.").into_response();
    }
    if let Some(origin) = header("origin")
        && origin != state.web.origin
    {
        return ApiError::forbidden("Requests from another origin are not allowed.").into_response();
    }
    let is_json =
        header("content-type").and_then(|v| v.split(';').next()).is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send the request body as JSON (Content-Type: application/json).",
        )
        .into_response();
    }
    next.run(request).await
}

/// Anti-CSRF tokens for forms, bound to a session: the signed-in session, or before login a
/// random pre-session cookie. Stateless, so any replica can check them.
pub struct Csrf;

impl Csrf {
    pub fn token(state: &AppState, binding: &str) -> String {
        state.keys.sign("csrf", binding.as_bytes())
    }

    pub fn check(state: &AppState, binding: &str, token: &str) -> bool {
        state.keys.verify("csrf", binding.as_bytes(), token)
    }

    /// The pre-session value from the cookie jar, adding a new cookie when there is none.
    pub fn pre_session(state: &AppState, jar: CookieJar) -> (CookieJar, String) {
        if let Some(value) = jar.get(state.web.pre_session_cookie).map(|c| c.value().to_owned()) {
            return (jar, value);
        }
        let value = random_token(32).expose_secret().to_owned();
        let cookie = state.web.cookie(state.web.pre_session_cookie, value.clone());
        (jar.add(cookie), value)
    }

    /// Checks a form posted by a visitor who is not signed in, against their pre-session.
    pub fn check_anonymous(state: &AppState, jar: &CookieJar, token: &str) -> Result<(), crate::web::error::PageError> {
        let binding = jar.get(state.web.pre_session_cookie).map(|c| c.value().to_owned()).unwrap_or_default();
        if binding.is_empty() || !Self::check(state, &binding, token) {
            return Err(crate::web::error::PageError(forbidden_form()));
        }
        Ok(())
    }
}

/// Pages whose address holds or held a token: no referrer, so the address never leaks (S1.8).
pub fn no_referrer(mut response: Response) -> Response {
    response.headers_mut().insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

pub fn forbidden_form() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "csrf_failed",
        "This form has expired or did not come from this site. Go back, reload the page and try again.",
    )
}

impl crate::web::state::WebSettings {
    /// Every cookie we set: HttpOnly, SameSite=Lax, Path=/, no Domain, and Secure over https (S7.3).
    pub fn cookie(&self, name: &'static str, value: String) -> Cookie<'static> {
        Cookie::build((name, value)).http_only(true).same_site(SameSite::Lax).path("/").secure(self.secure_cookies).build()
    }

    pub fn removal(&self, name: &'static str) -> Cookie<'static> {
        let mut cookie = self.cookie(name, String::new());
        cookie.make_removal();
        cookie
    }
}
