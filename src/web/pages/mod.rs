//! HTML pages: askama templates (escaped by default), forms that work without JavaScript.

mod account;
mod admin;
pub mod banners;
mod email_change;
mod help;
mod login;
mod mailbox;
mod password_change;
mod payments;
mod recovery;
pub mod two_step;

use crate::web::extract::MaybeSession;
use crate::web::AppState;
use askama::Template;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

/// What the layout around every page shows.
pub struct Chrome {
    pub product_name: String,
    pub signed_in_as: Option<String>,
    pub demo: bool,
    /// The status banners that apply to this viewer now (see `banners`).
    pub banners: banners::PageBanners,
}

impl Chrome {
    pub fn new(state: &AppState, signed_in_as: Option<&str>) -> Self {
        Self {
            product_name: state.web.product_name.clone(),
            signed_in_as: signed_in_as.map(str::to_owned),
            demo: state.web.demo,
            banners: banners::for_page(),
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login::show).post(login::submit))
        .route("/account", get(account::show))
        .route("/account/sessions", get(account::sessions))
        .route("/account/password", get(password_change::form).post(password_change::submit))
        .route("/account/email", get(email_change::form).post(email_change::submit))
        .route("/account/email/confirm", get(email_change::confirm_form).post(email_change::confirm_submit))
        .route("/account/sessions/revoke", axum::routing::post(account::revoke))
        .route("/logout", axum::routing::post(account::logout))
        .route("/forgot-password", get(recovery::forgot_form).post(recovery::forgot_submit))
        .route("/reset-password", get(recovery::reset_form).post(recovery::reset_submit))
        .route("/reset-password/send", axum::routing::post(recovery::reset_send))
        .route("/report-not-me", get(recovery::report_not_me))
        .route("/login/verify", get(two_step::second_step).post(two_step::second_step_submit))
        .route("/login/verify/send", axum::routing::post(two_step::second_step_send))
        .route("/step-up", get(two_step::step_up).post(two_step::step_up_submit))
        .route("/step-up/send", axum::routing::post(two_step::step_up_send))
        .route("/account/security", get(two_step::security))
        .route("/account/security/totp", axum::routing::post(two_step::totp_start))
        .route("/account/security/totp/confirm", axum::routing::post(two_step::totp_confirm))
        .route("/account/security/recovery-codes", axum::routing::post(two_step::recovery_codes))
        .route("/account/security/question", axum::routing::post(two_step::question))
        .route("/account/security/email", axum::routing::post(two_step::email))
        .route("/account/security/sms", axum::routing::post(two_step::sms_start))
        .route("/account/security/sms/confirm", axum::routing::post(two_step::sms_confirm))
        .route("/account/security/remove", axum::routing::post(two_step::remove))
        .route("/account/security/default", axum::routing::post(two_step::make_default))
        .route("/payments", get(payments::show))
        .route("/payments/withdraw", axum::routing::post(payments::withdraw))
        .route("/payments/confirm/{id}", get(payments::confirm).post(payments::confirm_submit))
        .route("/payments/confirm/{id}/send", axum::routing::post(payments::confirm_send))
        .route("/dev/mailbox", get(mailbox::list))
        .route("/help", get(help::index))
        .route("/help/{slug}", get(help::article))
        .route("/help/{slug}/vote", axum::routing::post(help::vote))
        .route("/banners/dismiss", axum::routing::post(banners::dismiss))
        .route("/admin", get(admin::index))
        .route("/admin/help/new", get(admin::new_article).post(admin::create_article))
        .route("/admin/help/{slug}", get(admin::edit_article).post(admin::update_article))
        .route("/admin/banners", get(admin::banners).post(admin::save_banners))
        .route("/admin/banners/end", axum::routing::post(admin::end_banner))
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

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    chrome: Chrome,
    heading: &'a str,
    message: &'a str,
}

pub fn error_page(status: StatusCode, message: &str) -> Response {
    let heading = match status {
        StatusCode::NOT_FOUND => "Page not found",
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
        s if s.is_server_error() => "Something went wrong",
        _ => "That did not work",
    };
    // Error pages are rendered without state: the layout shows the default product name.
    let chrome = Chrome { product_name: "doorman".into(), signed_in_as: None, demo: false, banners: banners::for_page() };
    render(status, &ErrorPage { chrome, heading, message })
}
