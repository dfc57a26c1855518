//! JSON API, version 1. Every error answers `{"error": "<code>", "message": "<text>"}`.

pub mod auth;
pub mod health;
pub mod recovery;

use crate::web::AppState;
use axum::routing::{get, post};
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/session", get(auth::session))
        .route("/password/forgot", post(recovery::forgot))
        .route("/password/reset", post(recovery::reset))
}
