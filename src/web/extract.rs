//! Extractors: what a handler needs from a request, already parsed and checked.

use crate::web::error::{ApiError, PageError};
use crate::web::security::forbidden_form;
use crate::web::state::AppState;
use crate::web::step_up::{return_to, to_step_up};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, OriginalUri, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use doorman_core::Account;
use doorman_core::audit::RequestContext;
use doorman_core::input::{self, ParseFailure};
use doorman_core::session::{SessionRecord, SessionStage, SessionToken};
use doorman_core::step_up::SteppedUp;
use doorman_core::support::Agent;
use doorman_core::two_step::TwoStepError;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::sync::OnceCell;

/// Who is asking: client address (from the TCP peer, or a trusted proxy header when one is
/// configured), user agent and request id.
pub struct Client(pub RequestContext);

impl FromRequestParts<AppState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()).unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let ip = state
            .web
            .client_ip_header
            .as_ref()
            // The last header line is the one the proxy added; earlier ones came from the client.
            .and_then(|name| parts.headers.get_all(name).iter().next_back())
            .and_then(|v| v.to_str().ok())
            // A proxy appends the address it saw: the last entry is the one it vouches for.
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse::<IpAddr>().ok())
            .unwrap_or(peer);
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let country = crate::web::content::proxy_country(state, &parts.headers);
        Ok(Self(RequestContext { ip, user_agent: header("user-agent"), request_id: header("x-request-id"), country }))
    }
}

/// A live session, when the request carries one.
pub struct CurrentSession {
    pub token: SessionToken,
    pub record: SessionRecord,
    pub account: Account,
}

/// The session cookie, read and checked; `None` for no cookie, a malformed one, or a
/// session that has ended.
pub struct MaybeSession(pub Option<CurrentSession>);

/// The session a request carries, looked up once per request: every extractor that asks
/// after the first gets the same answer, and a layer that placed the slot in the request
/// (the page layout, which renders error pages after the handler) sees whom the handler saw.
#[derive(Clone, Default)]
pub struct SessionSlot(Arc<OnceCell<Option<(SessionRecord, Account)>>>);

impl SessionSlot {
    /// The slot this request carries, placing one when there is none yet.
    pub fn of(parts: &mut Parts) -> Self {
        parts.extensions.get_or_insert_default::<Self>().clone()
    }

    /// The session behind the cookie, whatever its stage; `None` for no cookie, a malformed
    /// one, or a session that has ended.
    pub async fn resolve(&self, state: &AppState, headers: &HeaderMap) -> Result<Option<CurrentSession>, ApiError> {
        let jar = CookieJar::from_headers(headers);
        let Some(token) = jar.get(state.web.session_cookie).and_then(|c| SessionToken::from_cookie(c.value())) else {
            return Ok(None);
        };
        let found = self.0.get_or_try_init(|| async { state.auth.authenticate(&token).await }).await?;
        Ok(found.clone().map(|(record, account)| CurrentSession { token, record, account }))
    }

    /// The fully signed-in account, when this request carries one.
    pub async fn signed_in(&self, state: &AppState, headers: &HeaderMap) -> Option<Account> {
        let session = self.resolve(state, headers).await.ok().flatten()?;
        (session.record.stage == SessionStage::Full).then_some(session.account)
    }
}

/// The session behind the cookie, whatever its stage.
async fn read_session(parts: &mut Parts, state: &AppState) -> Result<Option<CurrentSession>, ApiError> {
    SessionSlot::of(parts).resolve(state, &parts.headers).await
}

impl FromRequestParts<AppState> for MaybeSession {
    type Rejection = ApiError;

    /// Only a fully signed-in session counts: a half-signed-in one (password done, second
    /// step pending) reaches nothing but the second step (S5.9).
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self(read_session(parts, state).await?.filter(|s| s.record.stage == SessionStage::Full)))
    }
}

/// A half-signed-in session waiting for its second step.
pub struct PendingSession(pub Option<CurrentSession>);

impl FromRequestParts<AppState> for PendingSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self(read_session(parts, state).await?.filter(|s| s.record.stage == SessionStage::SecondFactor)))
    }
}

/// A signed-in API caller; otherwise 401.
pub struct ApiSession(pub CurrentSession);

impl FromRequestParts<AppState> for ApiSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        MaybeSession::from_request_parts(parts, state).await?.0.map(Self).ok_or_else(ApiError::not_authenticated)
    }
}

/// A signed-in session that verified recently (S7.6), with the proof every sensitive core
/// operation takes: the one way a handler gets a [`SteppedUp`]. Without a recent verification
/// the API answers 403 `step_up_required` with the methods to step up with, and a page sends
/// the visitor to step up and back; without a session, 401 or the login page.
pub struct StepUp(pub SteppedUp, pub CurrentSession);

impl FromRequestParts<AppState> for StepUp {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let api = for_api(parts);
        let session = match MaybeSession::from_request_parts(parts, state).await {
            Ok(MaybeSession(Some(session))) => session,
            Ok(MaybeSession(None)) if api => return Err(ApiError::not_authenticated().into_response()),
            Ok(MaybeSession(None)) => return Err(Redirect::to("/login").into_response()),
            Err(e) => return Err(answer(parts, e)),
        };
        match state.two_step.check_step_up(&session.record, &session.account).await {
            Ok(proof) => Ok(Self(proof, session)),
            Err(TwoStepError::StepUpRequired(_)) if !api => Err(to_step_up(return_to(original_path(parts)))),
            Err(e) => Err(answer(parts, ApiError::from(e))),
        }
    }
}

/// A support agent (issue 11 §6) who stepped up recently, with the console's proof. In
/// order: no session answers 401 `not_authenticated` (the login page for pages); an account
/// without the `support` or `admin` role 403 `forbidden`, one without 2-step 403
/// `two_step_required`, both before any step-up is asked for; then the step-up, as [`StepUp`]
/// (a page comes back to the same page after a GET, to the queue after a form).
pub struct SupportAgent(pub Agent, pub CurrentSession);

impl FromRequestParts<AppState> for SupportAgent {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let api = for_api(parts);
        let session = match MaybeSession::from_request_parts(parts, state).await {
            Ok(MaybeSession(Some(session))) => session,
            Ok(MaybeSession(None)) if api => return Err(ApiError::not_authenticated().into_response()),
            Ok(MaybeSession(None)) => return Err(Redirect::to("/login").into_response()),
            Err(e) => return Err(answer(parts, e)),
        };
        if let Err(e) = state.support.admit(&session.account.id).await {
            return Err(answer(parts, ApiError::from(e)));
        }
        let proof = match state.two_step.check_step_up(&session.record, &session.account).await {
            Ok(proof) => proof,
            Err(TwoStepError::StepUpRequired(_)) if !api => {
                let next = if parts.method == axum::http::Method::GET { original_path(parts) } else { "/support" };
                return Err(to_step_up(next));
            }
            Err(e) => return Err(answer(parts, ApiError::from(e))),
        };
        match state.support.agent(&proof).await {
            Ok(agent) => Ok(Self(agent, session)),
            Err(e) => Err(answer(parts, ApiError::from(e))),
        }
    }
}

/// A signed-in visitor of a page; otherwise a redirect to the login page.
pub struct PageSession(pub CurrentSession);

impl FromRequestParts<AppState> for PageSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match MaybeSession::from_request_parts(parts, state).await {
            Ok(MaybeSession(Some(session))) => Ok(Self(session)),
            Ok(MaybeSession(None)) => Err(Redirect::to("/login").into_response()),
            Err(e) => Err(PageError(e).into_response()),
        }
    }
}

/// The request fields that hold free text over several lines, in every JSON body and form:
/// the only ones where TAB, LF and CR are accepted. Every other field, path segment and
/// query value refuses every control character (checklist item 4 of issue 8: PostgreSQL
/// refuses NUL in text, and nothing we store needs a control character).
///
/// - `reason`: why a help article did not help (`POST /api/v1/help/articles/{slug}/vote`,
///   `POST /help/{slug}/vote`);
/// - `body`: a help article's Markdown (`POST /admin/help/...`);
/// - `document`: the banner document (`POST /admin/banners`);
/// - `details`, `message`: what a recovery request tells support (`POST /api/v1/recovery-requests`);
/// - `comment`: a support agent's note on a case (`POST /api/v1/support/cases/{id}/comments`);
///   `message` is also a support agent's reply to a requester (`.../replies`).
pub const MULTI_LINE_FIELDS: [&str; 6] = ["reason", "body", "document", "details", "message", "comment"];

/// Whether `text` holds a control character not allowed here: NUL, the other C0 controls,
/// DEL and the C1 controls everywhere; TAB, LF and CR everywhere but in multi-line fields.
fn has_refused_control(text: &str, multi_line: bool) -> bool {
    text.chars().any(|c| c.is_control() && !(multi_line && matches!(c, '\t' | '\n' | '\r')))
}

/// A field name as it may be shown back: short, and only when it is plain text.
fn shown_name(name: &str) -> String {
    if has_refused_control(name, false) {
        return "(a field name)".to_owned();
    }
    let mut shown: String = name.chars().take(40).collect();
    if shown.len() < name.len() {
        shown.push('…');
    }
    shown
}

/// The 400 for a refused control character in a named field.
fn control_error(code: &'static str, what: &str, field: &str) -> ApiError {
    let message = if MULTI_LINE_FIELDS.contains(&field) {
        format!("The {what} '{}' contains a control character (only tabs and line breaks are allowed there).", shown_name(field))
    } else {
        format!("The {what} '{}' contains a control character.", shown_name(field))
    };
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

/// Walks a JSON body: every key and every string, at any depth. A string's field is the
/// nearest key above it (the elements of an array belong to the array's key).
fn check_json(value: &serde_json::Value, field: &str) -> Result<(), ApiError> {
    match value {
        serde_json::Value::String(text) if has_refused_control(text, MULTI_LINE_FIELDS.contains(&field)) => {
            Err(control_error("invalid_body", "field", field))
        }
        serde_json::Value::Array(items) => items.iter().try_for_each(|item| check_json(item, field)),
        serde_json::Value::Object(map) => map.iter().try_for_each(|(key, item)| {
            if has_refused_control(key, false) {
                return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", "A field name contains a control character."));
            }
            check_json(item, key)
        }),
        _ => Ok(()),
    }
}

/// Checks the pairs of a form or query string.
/// `multi_line`: whether [`MULTI_LINE_FIELDS`] may hold line breaks here (in a form, not in
/// a query string).
fn check_pairs(code: &'static str, what: &str, multi_line: bool, pairs: &[(String, String)]) -> Result<(), ApiError> {
    for (key, value) in pairs {
        if has_refused_control(key, false) {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, code, format!("A {what} name contains a control character.")));
        }
        if has_refused_control(value, multi_line && MULTI_LINE_FIELDS.contains(&key.as_str())) {
            return Err(control_error(code, what, key));
        }
    }
    Ok(())
}

fn pairs_of(encoded: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(encoded).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

fn content_type(headers: &axum::http::HeaderMap) -> Option<String> {
    let value = headers.get(axum::http::header::CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
}

fn body_error(status: StatusCode, what: &str, detail: String) -> ApiError {
    let (code, message) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ("body_too_large", "The request body is too large.".to_owned()),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", format!("Send the request body as {what}.")),
        _ => ("invalid_body", format!("The request body could not be read: {detail}")),
    };
    let status = if status == StatusCode::UNPROCESSABLE_ENTITY { StatusCode::BAD_REQUEST } else { status };
    ApiError::new(status, code, message)
}

const JSON: &str = "JSON (Content-Type: application/json)";

/// Deserializes a request's values into `T`, whose fields are domain types parsed by their
/// constructors: a value one refuses gets the answer the domain gives it anywhere
/// (`weak_password`, `invalid_phone`, ...), before any handler runs; any other failure
/// (a missing, unknown or mistyped field) is `malformed`'s answer.
fn typed<T, E: std::fmt::Display>(parse: impl FnOnce() -> Result<T, E>, malformed: impl FnOnce(E) -> ApiError) -> Result<T, ApiError> {
    input::parse(parse).map_err(|failure| match failure {
        ParseFailure::Refused(refused) => ApiError::from(refused),
        ParseFailure::Malformed(error) => malformed(error),
    })
}

/// A JSON request body, parsed at the edge: it must be a JSON object, no string or key in it
/// holds a refused control character (see [`MULTI_LINE_FIELDS`]), and it deserializes into
/// `T` (see [`typed`]). Every failure answers 4xx in our error shape.
pub struct ApiJson<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = content_type(req.headers()).is_some_and(|t| t == "application/json" || t.ends_with("+json"));
        if !is_json {
            return Err(body_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, JSON, String::new()));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| body_error(e.status(), JSON, e.body_text()))?;
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|_| body_error(StatusCode::BAD_REQUEST, JSON, "it is not valid JSON.".into()))?;
        if !value.is_object() {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", "The request body must be a JSON object."));
        }
        check_json(&value, "")?;
        // From the bytes rather than the value, so that duplicate keys are refused as before
        // and messages keep their line and column.
        typed(|| serde_json::from_slice(&bytes), |e| body_error(StatusCode::BAD_REQUEST, JSON, e.to_string())).map(Self)
    }
}

/// A posted form, parsed at the edge. Every form we take changes state and carries a
/// `csrf` field: a post whose body is not a form, or that has no `csrf`, is refused with the
/// CSRF error (403, S8.1) before anything else; the handler then checks the token itself.
/// Refused control characters (see [`MULTI_LINE_FIELDS`]) and fields that do not fit `T`
/// answer 400, a value a domain type refuses as the domain does (see [`typed`]; forms that
/// show such a refusal on the form itself take [`doorman_core::input::Deferred`] fields).
/// Every failure answers with the error page.
pub struct PageForm<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for PageForm<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        const FORM: &str = "a form (application/x-www-form-urlencoded)";
        if content_type(req.headers()).as_deref() != Some("application/x-www-form-urlencoded") {
            return Err(PageError(forbidden_form()));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| PageError(body_error(e.status(), FORM, e.body_text())))?;
        let pairs = pairs_of(&bytes);
        if !pairs.iter().any(|(key, value)| key == "csrf" && !value.is_empty()) {
            return Err(PageError(forbidden_form()));
        }
        check_pairs("invalid_body", "field", true, &pairs).map_err(PageError)?;
        typed(
            || serde_urlencoded::from_bytes(&bytes),
            |_| body_error(StatusCode::BAD_REQUEST, FORM, "a field is missing or invalid.".into()),
        )
        .map(Self)
        .map_err(PageError)
    }
}

/// Whether the request is for the JSON API (its errors are JSON) or a page (an error page).
/// Nested routers see their own part of the path; the original one tells.
fn for_api(parts: &Parts) -> bool {
    original_path(parts).starts_with("/api/")
}

fn original_path(parts: &Parts) -> &str {
    parts.extensions.get::<OriginalUri>().map(|u| u.0.path()).unwrap_or_else(|| parts.uri.path())
}

fn answer(parts: &Parts, error: ApiError) -> Response {
    if for_api(parts) { error.into_response() } else { PageError(error).into_response() }
}

/// Path parameters, parsed at the edge: not valid UTF-8 once decoded, a control character
/// in any parameter, or a value that does not fit `T` answers 400 in our error shape (JSON
/// under /api/, an error page elsewhere), never the framework's plain text.
pub struct Path<T>(pub T);

impl<T: serde::de::DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let invalid = |message: &str| ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", message);
        let raw = match RawPathParams::from_request_parts(parts, state).await {
            Ok(raw) => raw,
            Err(_) => return Err(answer(parts, invalid("The address contains characters that are not valid text."))),
        };
        if raw.iter().any(|(_, value)| has_refused_control(value, false)) {
            return Err(answer(parts, invalid("The address contains a control character.")));
        }
        #[allow(clippy::disallowed_types)]
        let parsed = axum::extract::Path::<T>::from_request_parts(parts, state).await;
        match parsed {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(_) => Err(answer(parts, invalid("The address could not be read."))),
        }
    }
}

/// The query string, parsed at the edge: a control character in any key or value, a repeated
/// field or a value that does not fit `T` answers 400 in our error shape (JSON under /api/,
/// an error page elsewhere), never the framework's plain text.
pub struct Query<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let raw = parts.uri.query().unwrap_or_default();
        if let Err(error) = check_pairs("invalid_query", "query parameter", false, &pairs_of(raw.as_bytes())) {
            return Err(answer(parts, error));
        }
        let malformed = |e: serde_urlencoded::de::Error| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", format!("The query string could not be read: {e}."))
        };
        typed(|| serde_urlencoded::from_str(raw), malformed).map(Self).map_err(|error| answer(parts, error))
    }
}
