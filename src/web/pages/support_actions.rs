//! The support console's action forms on a case page (identity checklist, actions, approval),
//! and the owner's side: the cancel link's page (a button, never a bare GET) and cancel from
//! the security activity page. Every form carries the CSRF token (S8.1).

use super::support::{Shown, back_to, case_page, check_csrf};
use super::{Chrome, render};
use crate::web::error::{ApiError, PageError};
use crate::web::extract::{Client, PageForm, PageSession, Path, Query, SupportAgent};
use crate::web::routes::Routes;
use crate::web::security::{Csrf, no_referrer};
use crate::web::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::CookieJar;
use doorman_core::support::SupportError;
use doorman_core::support_actions::{ActionOutcome, SupportAction, SupportCancelToken};
use serde::Deserialize;

pub fn router() -> Routes {
    Routes::new()
        .route("/support/cases/{id}/checks", post(record_check))
        .route("/support/cases/{id}/actions", post(act))
        .route("/support/actions/{action_id}/approve", post(approve))
        .route("/support-action/cancel", get(cancel_page).post(cancel_submit))
        .route("/account/support-actions/{id}/cancel", post(owner_cancel))
}

/// A refusal a person can act on is shown on the case page; anything else is an error page.
async fn shown_or_error(
    state: &AppState,
    agent: &SupportAgent,
    chrome: Chrome,
    case_id: &str,
    outcome: Result<String, SupportError>,
) -> Result<Response, PageError> {
    match outcome {
        Ok(done) => case_page(state, agent, chrome, case_id, StatusCode::OK, Shown { action_done: Some(done), ..Shown::default() }).await,
        Err(e) => {
            let error = ApiError::from(e);
            if !error.status.is_client_error() || error.status == StatusCode::NOT_FOUND {
                return Err(PageError(error));
            }
            let shown = Shown { action_error: Some(error.message.clone()), ..Shown::default() };
            case_page(state, agent, chrome, case_id, error.status, shown).await
        }
    }
}

#[derive(Deserialize)]
pub struct CheckForm {
    csrf: String,
    kind: String,
    note: String,
}

/// `POST /support/cases/{id}/checks`: a line of the identity checklist.
pub async fn record_check(
    State(state): State<AppState>,
    agent: SupportAgent,
    chrome: Chrome,
    Client(ctx): Client,
    Path(id): Path<String>,
    PageForm(form): PageForm<CheckForm>,
) -> Result<Response, PageError> {
    check_csrf(&state, &agent, &form.csrf)?;
    let outcome =
        state.support.record_check(&agent.0, &id, &form.kind, &form.note, &ctx).await.map(|()| "The check was recorded.".to_owned());
    shown_or_error(&state, &agent, chrome, &id, outcome).await
}

#[derive(Deserialize)]
pub struct ActionForm {
    csrf: String,
    action: String,
    reason: String,
}

/// `POST /support/cases/{id}/actions`: done at once, or proposed for a second agent.
pub async fn act(
    State(state): State<AppState>,
    agent: SupportAgent,
    chrome: Chrome,
    Client(ctx): Client,
    Path(id): Path<String>,
    PageForm(form): PageForm<ActionForm>,
) -> Result<Response, PageError> {
    check_csrf(&state, &agent, &form.csrf)?;
    let outcome = match SupportAction::parse(&form.action) {
        None => Err(SupportError::InvalidAction),
        Some(action) => state.support.act(&agent.0, &id, action, &form.reason, &ctx).await.map(|outcome| match outcome {
            ActionOutcome::Done => format!("Done: {}. The account's owner was emailed.", action.in_words()),
            ActionOutcome::AwaitingApproval { .. } => {
                format!("Proposed: {}. A second, different agent must approve it within 24 hours.", action.in_words())
            }
        }),
    };
    shown_or_error(&state, &agent, chrome, &id, outcome).await
}

#[derive(Deserialize)]
pub struct ApproveForm {
    csrf: String,
    case: String,
    reason: String,
}

/// `POST /support/actions/{action_id}/approve`: back on the case page with when it applies.
pub async fn approve(
    State(state): State<AppState>,
    agent: SupportAgent,
    chrome: Chrome,
    Client(ctx): Client,
    Path(action_id): Path<String>,
    PageForm(form): PageForm<ApproveForm>,
) -> Result<Response, PageError> {
    check_csrf(&state, &agent, &form.csrf)?;
    let outcome = state.support.approve(&agent.0, &action_id, &form.reason, &ctx).await.map(|at| {
        format!(
            "Approved. It takes effect after {} unless the owner cancels it; the owner's old address was sent a cancel link.",
            doorman_core::clock::rfc2822(at)
        )
    });
    if matches!(outcome, Err(SupportError::NoSuchAction)) {
        return Ok(back_to(&form.case));
    }
    shown_or_error(&state, &agent, chrome, &form.case, outcome).await
}

#[derive(Template)]
#[template(path = "support_action_cancel.html")]
struct CancelPage {
    chrome: Chrome,
    csrf: String,
    token: String,
    /// What the change is, in words, while it can still be cancelled.
    change: Option<String>,
    effective: String,
    cancelled: bool,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

impl CancelPage {
    fn blank(chrome: Chrome) -> Self {
        Self { chrome, csrf: String::new(), token: String::new(), change: None, effective: String::new(), cancelled: false, error: None }
    }
}

/// A link that does not work is a page that says so (400); anything else an error page.
fn refused(state: &AppState, jar: CookieJar, blank: CancelPage, error: SupportError) -> Result<Response, PageError> {
    match error {
        SupportError::InvalidToken => {
            Ok(cancel_response(state, jar, StatusCode::BAD_REQUEST, CancelPage { error: Some(error.to_string()), ..blank }))
        }
        other => Err(PageError(ApiError::from(other))),
    }
}

fn cancel_response(state: &AppState, jar: CookieJar, status: StatusCode, page: CancelPage) -> Response {
    let (jar, binding) = Csrf::pre_session(state, jar);
    let page = CancelPage { csrf: Csrf::token(state, &binding), ..page };
    no_referrer((jar, render(status, &page)).into_response())
}

/// `GET /support-action/cancel?token=...`: the link the old address got. Opening it changes
/// nothing (mail scanners follow links): the page says what would be cancelled and offers
/// the button.
pub async fn cancel_page(
    chrome: Chrome,
    State(state): State<AppState>,
    jar: CookieJar,
    Query(query): Query<TokenQuery>,
) -> Result<Response, PageError> {
    let blank = CancelPage::blank(chrome);
    let token = query.token.unwrap_or_default();
    let found = match SupportCancelToken::parse(&token) {
        Some(parsed) => state.support.action_to_cancel(&parsed).await,
        None => Err(SupportError::InvalidToken),
    };
    Ok(match found {
        Ok(action) => {
            let effective = action.effective_at.map(doorman_core::clock::rfc2822).unwrap_or_default();
            cancel_response(&state, jar, StatusCode::OK, CancelPage { token, change: Some(action.describe()), effective, ..blank })
        }
        Err(e) => return refused(&state, jar, blank, e),
    })
}

#[derive(Deserialize)]
pub struct CancelForm {
    csrf: String,
    token: String,
}

/// `POST /support-action/cancel`: cancels the change.
pub async fn cancel_submit(
    chrome: Chrome,
    State(state): State<AppState>,
    Client(ctx): Client,
    jar: CookieJar,
    PageForm(form): PageForm<CancelForm>,
) -> Result<Response, PageError> {
    Csrf::check_anonymous(&state, &jar, &form.csrf)?;
    let blank = CancelPage::blank(chrome);
    let result = match SupportCancelToken::parse(&form.token) {
        Some(token) => state.support.cancel_by_link(&token, &ctx).await,
        None => Err(SupportError::InvalidToken),
    };
    Ok(match result {
        Ok(()) => cancel_response(&state, jar, StatusCode::OK, CancelPage { cancelled: true, ..blank }),
        Err(e) => return refused(&state, jar, blank, e),
    })
}

#[derive(Deserialize)]
pub struct OwnerCancelForm {
    csrf: String,
}

/// `POST /account/support-actions/{id}/cancel`: from the owner's activity page.
pub async fn owner_cancel(
    State(state): State<AppState>,
    PageSession(session): PageSession,
    Client(ctx): Client,
    Path(id): Path<String>,
    PageForm(form): PageForm<OwnerCancelForm>,
) -> Result<Response, PageError> {
    if !Csrf::check(&state, session.token.expose(), &form.csrf) {
        return Err(PageError(crate::web::security::forbidden_form()));
    }
    state.support.cancel_by_owner(&session.account.id, &id, &ctx).await.map_err(ApiError::from)?;
    Ok(Redirect::to("/account/activity?support_cancelled=1").into_response())
}
