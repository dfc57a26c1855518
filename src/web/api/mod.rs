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
use axum::routing::{get, post};
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/session", get(auth::session))
        .route("/account/sessions", get(auth::sessions))
        .route("/account/sessions/{id}", axum::routing::delete(auth::revoke_session))
        .route("/password/forgot", post(recovery::forgot))
        .route("/password/reset", post(recovery::reset))
        .route("/password/reset/send", post(recovery::send_code))
        .route("/login/second-factor", post(two_step::second_factor))
        .route("/login/second-factor/send", post(two_step::second_factor_send))
        .route("/account/two-step", get(two_step::list))
        .route("/account/two-step/totp", post(two_step::start_totp))
        .route("/account/two-step/totp/confirm", post(two_step::confirm_totp))
        .route("/account/two-step/recovery-codes", post(two_step::recovery_codes))
        .route("/account/two-step/email", post(two_step::add_email))
        .route("/account/two-step/sms", post(two_step::start_sms))
        .route("/account/two-step/sms/confirm", post(two_step::confirm_sms))
        .route("/account/two-step/security-question", post(two_step::set_question))
        .route("/account/two-step/default", post(two_step::set_default))
        .route("/account/two-step/{method_id}", axum::routing::delete(two_step::remove))
        .route("/account/email", post(account::change_email))
        .route("/account/password", post(account::change_password))
        .route("/account/email/confirm", post(account::confirm_email))
        .route("/step-up", post(two_step::step_up))
        .route("/step-up/send", post(two_step::step_up_send))
        .route("/payments", get(payments::payments))
        .route("/payments/withdrawals", post(payments::withdraw))
        .route("/payments/withdrawals/approve", post(payments::approve))
        .route("/payments/withdrawals/approve/send", post(payments::approve_send))
        .route("/help/articles", get(help::list))
        .route("/help/articles/{slug}", get(help::show))
        .route("/help/articles/{slug}/vote", post(help::vote))
        .route("/banners", get(banners::document))
        .route("/banners/active", get(banners::active))
}
