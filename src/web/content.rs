//! What the help center and banner handlers share: who the viewer is (S12.2), the
//! anonymous visitor cookie that votes are counted by (S12.1), the per-address vote limit
//! (S3.6), and how content errors answer.

use crate::web::error::ApiError;
use crate::web::state::AppState;
use axum::http::{HeaderMap, StatusCode};
use axum_extra::extract::CookieJar;
use doorman_core::banners::Viewer;
use doorman_core::content::ContentError;
use doorman_core::help::{BallotError, Voter};
use doorman_core::keys::random_token;
use doorman_core::{Account, Country};
use secrecy::ExposeSecret;

const VISITOR_COOKIE: &str = "doorman_visitor";
const VISITOR_COOKIE_SECURE: &str = "__Host-doorman_visitor";
const VISITOR_COOKIE_DAYS: i64 = 365;

impl From<ContentError> for ApiError {
    fn from(e: ContentError) -> Self {
        let message = e.to_string();
        match e {
            ContentError::NotFound => Self::new(StatusCode::NOT_FOUND, "not_found", message),
            ContentError::Article(_) => Self::new(StatusCode::BAD_REQUEST, "invalid_article", message),
            ContentError::SlugTaken => Self::new(StatusCode::CONFLICT, "slug_taken", message),
            ContentError::Ballot(BallotError::ReasonTooLong) => Self::new(StatusCode::BAD_REQUEST, "reason_too_long", message),
            ContentError::Ballot(BallotError::UnknownChoice) => Self::new(StatusCode::BAD_REQUEST, "invalid_choice", message),
            ContentError::Banners(_) => Self::new(StatusCode::BAD_REQUEST, "invalid_banners", message),
            ContentError::RateLimited { retry_after_seconds } => Self {
                retry_after: Some(retry_after_seconds.max(1)),
                ..Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_votes", message)
            },
            ContentError::Store(inner) => Self::from(inner),
        }
    }
}

/// The country a trusted proxy vouches for, only when its header is configured: a client
/// that sets the header itself is ignored otherwise (S12.2).
pub fn proxy_country(state: &AppState, headers: &HeaderMap) -> Option<Country> {
    let name = state.web.country_header.as_ref()?;
    let value = headers.get(name)?.to_str().ok()?;
    Country::parse(value).ok()
}

/// Who is looking, as far as banners go: the account's country and type when signed in;
/// otherwise the proxy's country, if trusted, and no user type (only `all` banners).
pub fn viewer_of(state: &AppState, headers: &HeaderMap, account: Option<&Account>) -> Viewer {
    match account {
        Some(account) => Viewer::account(account),
        None => Viewer { country: proxy_country(state, headers), user_type: None },
    }
}

fn visitor_cookie_name(state: &AppState) -> &'static str {
    if state.web.secure_cookies { VISITOR_COOKIE_SECURE } else { VISITOR_COOKIE }
}

fn visitor_from_value(state: &AppState, value: &str) -> Voter {
    // Only a keyed hash of the cookie is stored, never the cookie itself.
    Voter::Visitor(state.keys.stable_hash("help-visitor", value.as_bytes()))
}

fn plausible(value: &str) -> bool {
    value.len() == 43 && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The anonymous visitor the request's cookie names, if it has one.
pub fn existing_visitor(state: &AppState, jar: &CookieJar) -> Option<Voter> {
    let value = jar.get(visitor_cookie_name(state)).map(|c| c.value().to_owned()).filter(|v| plausible(v))?;
    Some(visitor_from_value(state, &value))
}

/// The voter: the account when signed in; otherwise the visitor cookie, given a new one
/// (random, HttpOnly, SameSite=Lax, a year) when missing.
pub fn voter(state: &AppState, jar: CookieJar, account: Option<&Account>) -> (CookieJar, Voter) {
    if let Some(account) = account {
        return (jar, Voter::Account(account.id.clone()));
    }
    if let Some(voter) = existing_visitor(state, &jar) {
        return (jar, voter);
    }
    let value = random_token(32).expose_secret().to_owned();
    let voter = visitor_from_value(state, &value);
    let mut cookie = state.web.cookie(visitor_cookie_name(state), value);
    cookie.set_max_age(time::Duration::days(VISITOR_COOKIE_DAYS));
    (jar.add(cookie), voter)
}

/// The in-process per-address limit shared by anonymous writes (S3.6), a first line in
/// front of the vote budget kept in the database for every replica.
pub fn check_address_limit(state: &AppState, ip: &std::net::IpAddr) -> Result<(), ApiError> {
    use governor::clock::{Clock, DefaultClock};
    match state.anonymous_writes.check_key(ip) {
        Ok(()) => Ok(()),
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now()).as_secs() as i64 + 1;
            Err(ApiError::from(ContentError::RateLimited { retry_after_seconds: wait }))
        }
    }
}

/// Unix seconds as RFC 3339 UTC.
pub fn rfc3339(unix: i64) -> String {
    doorman_core::banners::format_time(unix)
}
