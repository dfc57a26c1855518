//! Extractors: what a handler needs from a request, already parsed and checked.

use crate::web::error::{ApiError, PageError};
use crate::web::AppState;
use axum::extract::rejection::{FormRejection, JsonRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use doorman_core::audit::RequestContext;
use doorman_core::session::{SessionRecord, SessionStage, SessionToken};
use doorman_core::Account;
use std::net::{IpAddr, SocketAddr};

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
        Ok(Self(RequestContext { ip, user_agent: header("user-agent"), request_id: header("x-request-id") }))
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

/// The session behind the cookie, whatever its stage.
async fn read_session(parts: &Parts, state: &AppState) -> Result<Option<CurrentSession>, ApiError> {
    let jar = CookieJar::from_headers(&parts.headers);
    let Some(token) = jar.get(state.web.session_cookie).and_then(|c| SessionToken::from_cookie(c.value())) else {
        return Ok(None);
    };
    let found = state.services.authenticate(&token).await?;
    Ok(found.map(|(record, account)| CurrentSession { token, record, account }))
}

impl FromRequestParts<AppState> for MaybeSession {
    type Rejection = ApiError;

    /// Only a fully signed-in session counts: a half-signed-in one (password done, second
    /// step pending) reaches nothing but the second step (S5.9).
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let session = read_session(parts, state).await?.filter(|s| s.record.stage == SessionStage::Full);
        if let Some(session) = &session {
            crate::web::pages::banners::note_account(&session.account);
        }
        Ok(Self(session))
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

fn body_error(status: StatusCode, what: &str, detail: String) -> ApiError {
    let (code, message) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ("body_too_large", "The request body is too large.".to_owned()),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", format!("Send the request body as {what}.")),
        _ => ("invalid_body", format!("The request body could not be read: {detail}")),
    };
    let status = if status == StatusCode::UNPROCESSABLE_ENTITY { StatusCode::BAD_REQUEST } else { status };
    ApiError::new(status, code, message)
}

/// `Json<T>` whose failures answer in our error shape.
pub struct ApiJson<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let detail = match &rejection {
        JsonRejection::JsonDataError(e) => e.body_text().replace("Failed to deserialize the JSON body into the target type: ", ""),
        JsonRejection::JsonSyntaxError(_) => "it is not valid JSON.".to_owned(),
        other => other.body_text(),
    };
    body_error(rejection.status(), "JSON (Content-Type: application/json)", detail)
}

/// `Form<T>` whose failures answer with an error page.
pub struct PageForm<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for PageForm<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(value)) => Ok(Self(value)),
            Err(rejection) => Err(PageError(form_rejection(rejection))),
        }
    }
}

fn form_rejection(rejection: FormRejection) -> ApiError {
    let detail = match &rejection {
        FormRejection::FailedToDeserializeForm(_) | FormRejection::FailedToDeserializeFormBody(_) => {
            "a field is missing or invalid.".to_owned()
        }
        other => other.body_text(),
    };
    body_error(rejection.status(), "a form (application/x-www-form-urlencoded)", detail)
}
