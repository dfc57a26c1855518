//! The web layer: thin handlers that parse input, call one domain operation and answer
//! with a page or JSON.

pub mod api;
pub mod breaker;
pub mod content;
pub mod error;
pub mod extract;
mod middleware;
pub mod pages;
pub mod routes;
pub mod security;
pub mod shared;
pub mod state;
pub mod step_up;

use crate::web::state::AppState;
use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use middleware::{Only, REQUEST_ID, RequestIds, RunToCompletion};
use std::convert::Infallible;
use std::time::Duration;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::PropagateRequestIdLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// The whole application as one service: the routes, and around them, once, the middleware.
/// The middleware wraps the router rather than each route (`Router::layer` does that): a
/// middleware clones what it wraps on every request, and a route's stack holds boxed
/// services that each clone allocates, where a router clones as one `Arc` (issue 12: the
/// clones were a tenth of a cheap request's time).
pub fn router(
    state: AppState,
) -> impl tower::Service<Request, Response = Response, Error = Infallible, Future: Send + 'static> + Clone + Send + Sync + 'static {
    let trace = TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
        let request_id = request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or_default();
        // The path only: query strings may carry tokens and never reach a log (S1.8).
        tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %request_id)
    });
    let routes = Router::new()
        .merge(pages::router().into_router())
        .nest(API_PREFIX, api::router().into_router())
        .merge(health_routes().into_router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone());
    // Plain tower layers wherever a middleware needs no `await` of its own, and the others only
    // around the requests they act on (web::middleware says why).
    let secure = state.web.secure_cookies;
    ServiceBuilder::new()
        // Back to axum's body type, which the trace and timeout layers below wrap.
        .map_response(IntoResponse::into_response)
        .map_request(RequestIds::new().assigner())
        .layer(trace)
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(CatchPanicLayer::custom(|_| error::ApiError::internal(&PanicCaught).into_response()))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, Duration::from_secs(30)))
        .layer(tower::layer::layer_fn(RunToCompletion))
        .map_response(move |response| security::with_security_headers(response, secure))
        .layer(axum::extract::DefaultBodyLimit::max(state.web.max_body_bytes))
        .layer(Only::for_requests(security::is_an_api_write, from_fn_with_state(state.clone(), security::api_guard)))
        .layer(Only::for_requests(pages::wears_the_layout, from_fn_with_state(state.clone(), pages::layout)))
        .layer(Only::for_requests(breaker::may_need_the_database, from_fn_with_state(state, breaker::database_breaker)))
        .service(routes)
}

/// Where the JSON API is nested.
pub const API_PREFIX: &str = "/api/v1";

/// The health checks, outside both the pages and the API.
pub fn health_routes() -> routes::Routes {
    routes::Routes::new().route("/healthz", get(api::health::healthz)).route("/readyz", get(api::health::readyz))
}

#[derive(Debug, thiserror::Error)]
#[error("a request handler panicked")]
pub(crate) struct PanicCaught;

fn wants_json(request: &Request) -> bool {
    request.uri().path().starts_with("/api/")
}

async fn not_found(request: Request) -> Response {
    let error = error::ApiError::new(StatusCode::NOT_FOUND, "not_found", "There is nothing at this address.");
    if wants_json(&request) { error.into_response() } else { error::PageError(error).into_response() }
}

async fn method_not_allowed(request: Request) -> Response {
    let error = error::ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "This address does not accept that method.");
    if wants_json(&request) { error.into_response() } else { error::PageError(error).into_response() }
}
