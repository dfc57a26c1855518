//! The web layer: thin handlers that parse input, call one domain operation and answer
//! with a page or JSON.

pub mod api;
pub mod breaker;
pub mod content;
pub mod error;
pub mod extract;
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
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::time::Duration;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub fn router(state: AppState) -> Router {
    let api = api::router().into_router().layer(axum::middleware::from_fn_with_state(state.clone(), security::api_guard));
    let trace = TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
        let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
        // The path only: query strings may carry tokens and never reach a log (S1.8).
        tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %request_id)
    });
    Router::new()
        .merge(pages::router().into_router())
        .nest(API_PREFIX, api)
        .merge(health_routes().into_router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), breaker::database_breaker))
        .layer(axum::middleware::from_fn_with_state(state.clone(), pages::layout))
        .layer(
            ServiceBuilder::new()
                // The request id is ours: one sent by the client is dropped, so the ids in logs
                // and audit rows cannot be chosen from outside.
                .layer(axum::middleware::map_request(|mut request: Request| async move {
                    request.headers_mut().remove("x-request-id");
                    request
                }))
                .layer(SetRequestIdLayer::x_request_id(RequestIds::new()))
                .layer(trace)
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(CatchPanicLayer::custom(|_| error::ApiError::internal(&PanicCaught).into_response()))
                .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, Duration::from_secs(30)))
                .layer(axum::middleware::from_fn_with_state(state.clone(), security::security_headers))
                .layer(axum::extract::DefaultBodyLimit::max(state.web.max_body_bytes)),
        )
        .with_state(state)
}

/// Where the JSON API is nested.
pub const API_PREFIX: &str = "/api/v1";

/// The health checks, outside both the pages and the API.
pub fn health_routes() -> routes::Routes {
    routes::Routes::new().route("/healthz", get(api::health::healthz)).route("/readyz", get(api::health::readyz))
}

/// Request ids (logs, audit rows, the `x-request-id` answer header): 32 hex digits, a random
/// prefix per process and a keyed hash of a counter, so unique across replicas and saying
/// nothing about how many requests a server has had. A v4 UUID asked the OS for randomness
/// on every request, a system call on the path of every cheap page (issue 12).
#[derive(Clone)]
struct RequestIds(std::sync::Arc<(u64, std::hash::RandomState, std::sync::atomic::AtomicU64)>);

impl RequestIds {
    fn new() -> Self {
        use std::hash::BuildHasher;
        let prefix = std::hash::RandomState::new().hash_one(std::process::id());
        Self(std::sync::Arc::new((prefix, std::hash::RandomState::new(), std::sync::atomic::AtomicU64::new(0))))
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        use std::hash::BuildHasher;
        let (prefix, keyed, counter) = &*self.0;
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        axum::http::HeaderValue::from_str(&format!("{prefix:016x}{:016x}", keyed.hash_one(n))).ok().map(RequestId::new)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("a request handler panicked")]
struct PanicCaught;

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
