//! JSON API, version 1. Every error answers `{"error": "<code>", "message": "<text>"}`.

pub mod account;
pub mod auth;
pub mod banners;
pub mod health;
pub mod help;
pub mod payments;
pub mod recovery;
pub mod two_step;

use crate::web::AppState;
use axum::Router;

/// Every API v1 route: each feature module brings its own `router()`.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(auth::router())
        .merge(recovery::router())
        .merge(two_step::router())
        .merge(account::router())
        .merge(payments::router())
        .merge(help::router())
        .merge(banners::router())
}
