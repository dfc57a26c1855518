//! "This wasn't me" on the security activity page (issue 11 §4 × §5): a signed-in owner
//! reports one of their own entries. The link opens a confirmation page (a GET changes
//! nothing); its button, CSRF-checked against the session, locks the account. The proof the
//! lock takes is minted in the domain (`Compromise::lock_from_activity`).

use super::compromise::ReportPage;
use super::{Chrome, render};
use crate::web::error::{ApiError, PageError};
use crate::web::extract::{Client, PageForm, PageSession, Path};
use crate::web::routes::Routes;
use crate::web::security::{Csrf, forbidden_form};
use crate::web::state::AppState;
use crate::web::step_up::to_step_up;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum_extra::extract::CookieJar;
use doorman_core::compromise::CompromiseError;
use serde::Deserialize;

pub fn router() -> Routes {
    Routes::new().route("/account/activity/{id}/report", get(confirm_page).post(lock))
}

fn action(id: i64) -> String {
    crate::web::shared::report_url(id)
}

/// `GET /account/activity/{id}/report`: what locking does, and the button.
pub async fn confirm_page(
    chrome: Chrome,
    State(state): State<AppState>,
    PageSession(session): PageSession,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    let item = state.compromise.activity_entry(&session.account.id, id).await.map_err(|e| PageError(ApiError::from(e)))?;
    let page = ReportPage {
        chrome,
        csrf: Csrf::token(&state, session.token.expose()),
        action: action(id),
        reported: Some(item.title),
        locked: None,
        error: None,
    };
    Ok(render(StatusCode::OK, &page))
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    csrf: String,
}

/// `POST /account/activity/{id}/report`: locks the account at once. Every session ends, this
/// one too, so the answer is drawn signed out and the session cookie goes.
pub async fn lock(
    mut chrome: Chrome,
    State(state): State<AppState>,
    PageSession(session): PageSession,
    Client(ctx): Client,
    jar: CookieJar,
    Path(id): Path<i64>,
    PageForm(form): PageForm<ConfirmForm>,
) -> Result<Response, PageError> {
    if !Csrf::check(&state, session.token.expose(), &form.csrf) {
        return Err(PageError(forbidden_form()));
    }
    let proof = crate::web::shared::recent_step_up(&state, &session).await?;
    let locked = match state.compromise.lock_from_activity(&session.record, id, proof.as_ref(), &ctx).await {
        Ok(locked) => locked,
        // Back to this page after verifying, to press the button again.
        Err(CompromiseError::StepUpRequired) => return Ok(to_step_up(&action(id))),
        Err(e) => return Err(PageError(ApiError::from(e))),
    };
    chrome.signed_in_as = None;
    let page = ReportPage { chrome, csrf: String::new(), action: action(id), reported: None, locked: Some(locked), error: None };
    let jar = jar.add(state.web.removal(state.web.session_cookie));
    Ok((jar, render(StatusCode::OK, &page)).into_response())
}
