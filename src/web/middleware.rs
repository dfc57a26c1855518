//! The tower pieces `web::router` puts around every request. Each is a plain, synchronous
//! layer where it can be: an `axum::middleware::from_fn` clones what it wraps and boxes it
//! and two futures on every request, and five of them were a sixth of a banner request's
//! time (issue 12, docs/BENCHMARKS.md).

use crate::web::error;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use futures::future::{BoxFuture, Either};
use std::convert::Infallible;
use std::task::{Context, Poll};
use tower::{Layer, Service};

pub const REQUEST_ID: &str = "x-request-id";

/// Every request that may change something runs to its end, in a task of its own, whether or
/// not anyone still waits for the answer: hyper drops a request's future when its client goes
/// away, and the request timeout (`web::router`) drops it after 30 s. A login dropped half-way stopped between
/// two of its writes; one dropped while sqlx waited for the answer to `BEGIN` left its pooled
/// connection inside a transaction sqlx did not count, so the next requests' statements on it
/// were rolled back or committed late, and their row locks stalled other logins (found by the
/// load benchmark, issue 12; tests/api/abandoned.rs). Those who left just never read the answer.
/// GET and HEAD change nothing in a transaction (their bookkeeping, such as noting that a
/// session was seen, is one statement, safe to drop) and run inline: a task per request costs
/// the cheap pages a tenth of their rate.
#[derive(Clone)]
pub struct RunToCompletion<S>(pub S);

impl<S> Service<Request> for RunToCompletion<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<S::Future, BoxFuture<'static, Result<Response, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        use futures::FutureExt;
        use tracing::Instrument;
        if request.method().is_safe() {
            return Either::Left(self.0.call(request));
        }
        let task = tokio::spawn(self.0.call(request).instrument(tracing::Span::current()));
        Either::Right(
            async move {
                Ok(match task.await {
                    Ok(Ok(response)) => response,
                    // The task panicked (the panic guard in `web::router` cannot see into it), or the
                    // runtime is shutting down.
                    Ok(Err(never)) => match never {},
                    Err(_) => error::ApiError::internal(&crate::web::PanicCaught).into_response(),
                })
            }
            .boxed(),
        )
    }
}

/// A middleware for the requests `applies` picks only; the others go straight to the service
/// it wraps, so that a banner read does not pay for the page layout's middleware.
#[derive(Clone)]
pub struct Only<L> {
    applies: fn(&Request) -> bool,
    layer: L,
}

impl<L> Only<L> {
    pub fn for_requests(applies: fn(&Request) -> bool, layer: L) -> Self {
        Self { applies, layer }
    }
}

impl<L: Layer<S>, S: Clone> Layer<S> for Only<L> {
    type Service = Selective<S, L::Service>;

    fn layer(&self, inner: S) -> Self::Service {
        Selective { applies: self.applies, direct: inner.clone(), wrapped: self.layer.layer(inner) }
    }
}

#[derive(Clone)]
pub struct Selective<S, W> {
    applies: fn(&Request) -> bool,
    direct: S,
    wrapped: W,
}

impl<S, W> Service<Request> for Selective<S, W>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    W: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<S::Future, W::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Both must be ready: which one a request needs is known only when it comes.
        match (self.direct.poll_ready(cx), self.wrapped.poll_ready(cx)) {
            (Poll::Ready(Ok(())), Poll::Ready(Ok(()))) => Poll::Ready(Ok(())),
            _ => Poll::Pending,
        }
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if (self.applies)(&request) { Either::Right(self.wrapped.call(request)) } else { Either::Left(self.direct.call(request)) }
    }
}

/// Request ids (logs, audit rows, the `x-request-id` answer header): 32 hex digits, a random
/// prefix per process and a keyed hash of a counter, so unique across replicas and saying
/// nothing about how many requests a server has had. A v4 UUID asked the OS for randomness
/// on every request, a system call on the path of every cheap page (issue 12).
#[derive(Clone)]
pub struct RequestIds(std::sync::Arc<(u64, std::hash::RandomState, std::sync::atomic::AtomicU64)>);

impl RequestIds {
    pub fn new() -> Self {
        use std::hash::BuildHasher;
        let prefix = std::hash::RandomState::new().hash_one(std::process::id());
        Self(std::sync::Arc::new((prefix, std::hash::RandomState::new(), std::sync::atomic::AtomicU64::new(0))))
    }

    /// What every request goes through first: ours replaces any request id the client sent
    /// (`insert` drops every earlier value), so the ids in logs and audit rows cannot be chosen
    /// from outside.
    pub fn assigner(self) -> impl FnMut(Request) -> Request + Clone {
        move |mut request: Request| {
            request.headers_mut().insert(REQUEST_ID, self.next_id());
            request
        }
    }

    fn next_id(&self) -> HeaderValue {
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
        // Hex digits are always a valid header value.
        HeaderValue::from_bytes(&id).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
    }
}

#[cfg(test)]
mod tests {
    use super::{Only, RequestIds};
    use axum::extract::Request;
    use axum::response::Response;
    use std::convert::Infallible;
    use tower::{Layer, ServiceExt};

    #[tokio::test]
    async fn only_the_picked_requests_go_through_the_middleware() {
        let marks = tower::util::MapResponseLayer::new(|mut response: Response| {
            response.headers_mut().insert("x-wrapped", axum::http::HeaderValue::from_static("yes"));
            response
        });
        let app = Only::for_requests(|request| request.uri().path() == "/picked", marks)
            .layer(tower::service_fn(|_: Request| async { Ok::<_, Infallible>(Response::new(axum::body::Body::empty())) }));
        let wrapped = |path: &'static str| {
            let app = app.clone();
            async move {
                let response = app.oneshot(Request::get(path).body(axum::body::Body::empty()).unwrap()).await.unwrap();
                response.headers().contains_key("x-wrapped")
            }
        };
        assert!(wrapped("/picked").await);
        assert!(!wrapped("/other").await);
    }

    #[test]
    fn request_ids_are_32_hex_digits_one_prefix_per_process_and_never_repeat() {
        let ids = RequestIds::new();
        let made: Vec<String> = (0..1000).map(|_| ids.next_id().to_str().unwrap().to_owned()).collect();
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
