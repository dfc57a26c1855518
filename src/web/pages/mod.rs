//! HTML pages: askama templates (escaped by default), forms that work without JavaScript.

mod account;
mod activity_report;
mod admin;
mod answer_reset;
pub mod banners;
mod chrome;
mod compromise;
mod email_change;
mod help;
pub(crate) mod login;
mod mailbox;
mod password_change;
mod payments;
mod recovery;
mod recovery_request;
mod support;
mod support_actions;
pub mod two_step;
mod two_step_reset;

pub use chrome::{Chrome, layout, wears_the_layout};

use crate::web::extract::MaybeSession;
use crate::web::routes::Routes;
use askama::Template;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;

pub fn router() -> Routes {
    Routes::new()
        .route("/", get(home))
        .merge(login::router())
        .merge(account::router())
        .merge(password_change::router())
        .merge(email_change::router())
        .merge(recovery::router())
        .merge(compromise::router())
        .merge(activity_report::router())
        .merge(recovery_request::router())
        .merge(two_step::router())
        .merge(two_step_reset::router())
        .merge(answer_reset::router())
        .merge(payments::router())
        .merge(help::router())
        .merge(banners::router())
        .merge(admin::router())
        .merge(support::router())
        .merge(support_actions::router())
        .merge(mailbox::router())
        .route("/static/app.css", get(|| async { asset("text/css; charset=utf-8", include_str!("../../../static/app.css")) }))
        .route("/static/app.js", get(|| async { asset("text/javascript; charset=utf-8", include_str!("../../../static/app.js")) }))
}

async fn home(MaybeSession(session): MaybeSession) -> Redirect {
    Redirect::to(if session.is_some() { "/account" } else { "/login" })
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=3600")], body).into_response()
}

/// Renders a template; a template that fails to render is our bug, reported as a 500.
pub fn render(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => crate::web::error::ApiError::internal(&e).into_response(),
    }
}
