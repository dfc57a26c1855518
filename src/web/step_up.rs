//! Where a page sends a visitor whose session must step up first (S7.6), and back.

use axum::response::{IntoResponse, Redirect, Response};

/// Percent-encodes a path for the `next` query parameter.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"/-_.".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// Sends the visitor to step up, then back to `next`.
pub fn to_step_up(next: &str) -> Response {
    Redirect::to(&format!("/step-up?next={}", urlencode(next))).into_response()
}

/// The page to come back to after stepping up for a request to `path`: the page whose form
/// made it (a change in Security settings returns to Security settings), else the path.
pub fn return_to(path: &str) -> &str {
    if path.starts_with("/account/security") { "/account/security" } else { path }
}
