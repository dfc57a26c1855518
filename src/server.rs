//! The HTTP/1.1 accept loop, in place of `axum::serve`, for what that one does not offer:
//!
//! - a header-read timeout: a connection that has not sent a whole request head within
//!   `header_read_timeout_seconds` of connecting (or of its previous answer) is closed, so
//!   a client trickling headers (slowloris) cannot hold it open;
//! - a cap on the connections open at once from one TCP peer address (an IPv6 peer by its
//!   /64), past which new connections are closed at once.
//!
//! Handlers still see the peer as `ConnectInfo<SocketAddr>`. Stopping closes the listener,
//! lets every connection finish the request under way, then returns.

use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

#[derive(Debug, Clone, Copy)]
pub struct ServeSettings {
    /// How long a connection has to send a whole request head.
    pub header_read_timeout: Duration,
    /// Connections open at once per peer address; 0 for no cap.
    pub max_connections_per_address: usize,
}

impl ServeSettings {
    pub fn from_config(config: &crate::Config) -> Self {
        Self {
            header_read_timeout: Duration::from_secs(config.header_read_timeout_seconds),
            max_connections_per_address: config.max_connections_per_address,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then drains the connections.
pub async fn serve<App>(
    listener: TcpListener,
    app: App,
    settings: ServeSettings,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()>
where
    App: tower::Service<Request, Response = Response, Error = Infallible, Future: Send + 'static> + Clone + Send + Sync + 'static,
{
    let open = OpenConnections::default();
    // `true` tells the connections to finish; the sender sees every receiver gone once they have.
    let (stop, stopping) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors, for instance: wait rather than spin.
                    tracing::error!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = open.enter(peer, settings.max_connections_per_address) else {
            tracing::debug!(peer = %peer.ip(), "connection refused: too many open from this address");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(axum::body::Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request)
        });
        let mut builder = http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(settings.header_read_timeout);
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let mut connection = pin!(builder.serve_connection(TokioIo::new(stream), service));
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = async { let _ = stopping.wait_for(|stop| *stop).await; } => {
                    connection.as_mut().graceful_shutdown();
                    connection.as_mut().await
                }
            };
            if let Err(e) = result {
                // Timeouts, resets and malformed requests: the client's business.
                tracing::debug!(peer = %peer.ip(), error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    stop.send_replace(true);
    drop(stopping);
    stop.closed().await;
    Ok(())
}

/// Errors of one connection that leave the listener fine (as `axum::serve` judges them).
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(e.kind(), ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset)
}

/// Open connections per peer address key.
#[derive(Clone, Default)]
struct OpenConnections(Arc<Mutex<HashMap<String, usize>>>);

/// One open connection, counted until dropped.
struct Slot {
    open: OpenConnections,
    key: String,
}

impl OpenConnections {
    /// A slot for a new connection from `peer`, unless `limit` are open from its address.
    fn enter(&self, peer: SocketAddr, limit: usize) -> Option<Slot> {
        let key = doorman_core::throttle::address_key(peer.ip().to_canonical());
        let mut counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(key.clone()).or_insert(0);
        if limit > 0 && *count >= limit {
            return None;
        }
        *count += 1;
        Some(Slot { open: self.clone(), key })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.open.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_counts_open_connections_per_address() {
        let open = OpenConnections::default();
        let one: SocketAddr = "192.0.2.1:1000".parse().unwrap();
        let first = open.enter(one, 2).unwrap();
        let _second = open.enter(one, 2).unwrap();
        assert!(open.enter(one, 2).is_none(), "a third from the same address is refused");
        assert!(open.enter("192.0.2.2:1000".parse().unwrap(), 2).is_some(), "another address is not");
        drop(first);
        assert!(open.enter(one, 2).is_some(), "a closed connection frees its slot");
        // One IPv6 subscriber is one /64; an IPv4-mapped address is the IPv4 one.
        let _a = open.enter("[2001:db8::1]:1".parse().unwrap(), 1).unwrap();
        assert!(open.enter("[2001:db8::2]:1".parse().unwrap(), 1).is_none());
        let _b = open.enter("[::ffff:198.51.100.7]:1".parse().unwrap(), 1).unwrap();
        assert!(open.enter("198.51.100.7:2".parse().unwrap(), 1).is_none());
        assert!(open.enter("198.51.100.8:2".parse().unwrap(), 0).is_some(), "0: no cap");
    }
}
