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
use std::convert::Infallible;
use std::time::Duration;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
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
    let api = api::router().into_router().layer(axum::middleware::from_fn_with_state(state.clone(), security::api_guard));
    let trace = TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
        let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
        // The path only: query strings may carry tokens and never reach a log (S1.8).
        tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %request_id)
    });
    let routes = Router::new()
        .merge(pages::router().into_router())
        .nest(API_PREFIX, api)
        .merge(health_routes().into_router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone());
    ServiceBuilder::new()
        // The request id is ours: one sent by the client is dropped, so the ids in logs and
        // audit rows cannot be chosen from outside.
        .layer(axum::middleware::map_request(|mut request: Request| async move {
            request.headers_mut().remove("x-request-id");
            request
        }))
        .layer(SetRequestIdLayer::x_request_id(RequestIds::new()))
        .layer(trace)
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(CatchPanicLayer::custom(|_| error::ApiError::internal(&PanicCaught).into_response()))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, Duration::from_secs(30)))
        .layer(axum::middleware::from_fn(run_to_completion))
        .layer(axum::middleware::from_fn_with_state(state.clone(), security::security_headers))
        .layer(axum::extract::DefaultBodyLimit::max(state.web.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(state.clone(), pages::layout))
        .layer(axum::middleware::from_fn_with_state(state, breaker::database_breaker))
        .service(routes)
}

/// Every request that may change something runs to its end, in a task of its own, whether or
/// not anyone still waits for the answer: hyper drops a request's future when its client goes
/// away, and the timeout above drops it after 30 s. A login dropped half-way stopped between
/// two of its writes; one dropped while sqlx waited for the answer to `BEGIN` left its pooled
/// connection inside a transaction sqlx did not count, so the next requests' statements on it
/// were rolled back or committed late, and their row locks stalled other logins (found by the
/// load benchmark, issue 12; tests/api/abandoned.rs). Those who left just never read the answer.
/// GET and HEAD change nothing in a transaction (their bookkeeping, such as noting that a
/// session was seen, is one statement, safe to drop) and run inline: a task per request costs
/// the cheap pages a tenth of their rate.
async fn run_to_completion(request: Request, next: axum::middleware::Next) -> Response {
    use tracing::Instrument;
    if request.method().is_safe() {
        return next.run(request).await;
    }
    match tokio::spawn(next.run(request).instrument(tracing::Span::current())).await {
        Ok(response) => response,
        // The task panicked (the panic guard above cannot see into it), or the runtime is
        // shutting down.
        Err(_) => error::ApiError::internal(&PanicCaught).into_response(),
    }
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
        // Written digit by digit: `format!` was a tenth of the middleware's own time.
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut id = [0u8; 32];
        for (i, word) in [*prefix, keyed.hash_one(n)].into_iter().enumerate() {
            for j in 0..16 {
                id[i * 16 + j] = HEX[((word >> (60 - 4 * j)) & 0xf) as usize];
            }
        }
        axum::http::HeaderValue::from_bytes(&id).ok().map(RequestId::new)
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

#[cfg(test)]
mod tests {
    use super::RequestIds;
    use tower_http::request_id::MakeRequestId;

    #[test]
    fn request_ids_are_32_hex_digits_one_prefix_per_process_and_never_repeat() {
        let mut ids = RequestIds::new();
        let request = axum::http::Request::new(());
        let made: Vec<String> =
            (0..1000).map(|_| ids.make_request_id(&request).unwrap().into_header_value().to_str().unwrap().to_owned()).collect();
        for id in &made {
            assert_eq!(id.len(), 32, "{id}");
            assert!(id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{id}");
            assert_eq!(id[..16], made[0][..16], "one prefix per process");
        }
        let distinct: std::collections::HashSet<&String> = made.iter().collect();
        assert_eq!(distinct.len(), made.len());
        assert_ne!(made[0][16..], made[1][16..]);
    }
}
