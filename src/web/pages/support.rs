//! The support console's pages (issue 11 §6), first slice: `/support` (the queue) and
//! `/support/cases/{id}` (a case: details, notes; claim, comment, resolve). Only agents
//! (`support` or `admin` role, 2-step on) who stepped up recently reach them: the
//! `SupportAgent` extractor sends anonymous visitors to the login page (303), refuses other
//! accounts (403) and sends agents to step up. Every form carries the CSRF token (S8.1).

use super::{Chrome, render};
use crate::web::content::rfc3339;
use crate::web::error::{ApiError, PageError};
use crate::web::extract::{Client, PageForm, Path, SupportAgent};
use crate::web::routes::Routes;
use crate::web::security::{Csrf, forbidden_form};
use crate::web::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use doorman_core::clock::in_words;
use doorman_core::support::{CaseSummary, MAX_COMMENT_CHARS, SupportError};
use doorman_core::support_actions::{ActionStatus, CheckKind, MAX_REASON_CHARS, SupportAction};
use doorman_core::support_view::{AccountView, MaskedField};
use serde::Deserialize;

pub fn router() -> Routes {
    Routes::new()
        .route("/support", get(queue))
        .route("/support/cases/{id}", get(case))
        .route("/support/cases/{id}/claim", post(claim))
        .route("/support/cases/{id}/comment", post(comment))
        .route("/support/cases/{id}/reply", post(reply))
        .route("/support/cases/{id}/resolve", post(resolve))
        .route("/support/cases/{id}/reveal", post(reveal))
}

/// A case as a line of the queue or the head of a case page.
pub struct CaseRow {
    pub id: String,
    pub kind: &'static str,
    pub status: String,
    pub opened: String,
    pub age: String,
    pub claimed_by: String,
    /// Cases have a page; a running 2-step reset is shown for awareness only.
    pub has_page: bool,
    /// The requester wrote last: waiting for support.
    pub requester_waiting: bool,
}

fn kind_in_words(kind: &str) -> &'static str {
    match kind {
        "compromise_report" => "Account locked (\"this wasn't me\")",
        "compromise_form" => "Compromise report (public form)",
        "recovery_request" => "Recovery request",
        "two_step_reset" => "2-step reset (waiting period)",
        _ => "Other",
    }
}

fn row(case: &CaseSummary, now: i64) -> CaseRow {
    CaseRow {
        id: case.id.clone(),
        kind: kind_in_words(&case.kind),
        status: case.status.clone(),
        opened: rfc3339(case.created_at),
        age: in_words((now - case.created_at).max(1)),
        claimed_by: case.claimed_by.clone().unwrap_or_default(),
        has_page: case.kind != "two_step_reset",
        requester_waiting: case.requester_wrote_last,
    }
}

#[derive(Template)]
#[template(path = "support_queue.html")]
struct QueuePage {
    chrome: Chrome,
    cases: Vec<CaseRow>,
}

/// `GET /support`: open cases, oldest first.
pub async fn queue(State(state): State<AppState>, SupportAgent(agent, _): SupportAgent, chrome: Chrome) -> Result<Response, PageError> {
    let now = state.clock.unix();
    let cases = state.support.queue(&agent).await.map_err(ApiError::from)?.iter().map(|c| row(c, now)).collect();
    Ok(render(StatusCode::OK, &QueuePage { chrome, cases }))
}

pub struct NoteRow {
    pub when: String,
    pub agent: String,
    pub body: String,
    pub to_requester: bool,
}

#[derive(Template)]
#[template(path = "support_case.html")]
struct CasePage {
    chrome: Chrome,
    csrf: String,
    case: CaseRow,
    details: String,
    notes: Vec<NoteRow>,
    resolved: bool,
    comment: String,
    error: Option<String>,
    max_comment: usize,
    /// Where replies go: the case's verified contact address, if it has one.
    contact: Option<String>,
    reply: String,
    reply_error: Option<String>,
    account: Option<AccountSection>,
    checks: Vec<CheckRow>,
    /// Kinds an agent can record, with their words.
    check_kinds: Vec<(&'static str, &'static str)>,
    actions: Vec<ActionRow>,
    /// Actions an agent can take or propose, with their words.
    action_kinds: Vec<(&'static str, &'static str, bool)>,
    /// The outcome or refusal of the last checklist or action form.
    action_error: Option<String>,
    action_done: Option<String>,
    max_reason: usize,
}

pub struct CheckRow {
    pub kind: &'static str,
    pub counts: bool,
    pub note: String,
    pub by: String,
    pub when: String,
}

pub struct ActionRow {
    pub id: String,
    pub action: &'static str,
    pub target: String,
    pub reason: String,
    pub status: &'static str,
    pub proposed_by: String,
    pub approved_by: String,
    pub effective: String,
    /// Another agent may approve it now.
    pub approvable: bool,
}

pub struct AccountSection {
    pub username: String,
    pub email: String,
    pub username_revealed: bool,
    pub email_revealed: bool,
    pub country: String,
    pub user_type: String,
    pub created: String,
    pub locked: bool,
    /// (kind, label, confirmed, added)
    pub methods: Vec<(String, String, bool, String)>,
    /// (when, kind, label, change, by), newest first
    pub method_history: Vec<(String, String, String, String, String)>,
    /// (started, last seen, address)
    pub sessions: Vec<(String, String, String)>,
    /// (when, event, address)
    pub events: Vec<(String, String, String)>,
    pub cases: Vec<CaseRow>,
}

fn account_section(view: AccountView, revealed: Option<(MaskedField, String)>, now: i64) -> AccountSection {
    let (mut username, mut email, mut username_revealed, mut email_revealed) = (view.username, view.email, false, false);
    match revealed {
        Some((MaskedField::Username, value)) => (username, username_revealed) = (value, true),
        Some((MaskedField::Email, value)) => (email, email_revealed) = (value, true),
        None => {}
    }
    AccountSection {
        username,
        email,
        username_revealed,
        email_revealed,
        country: view.country,
        user_type: view.user_type,
        created: rfc3339(view.created_at),
        locked: view.locked,
        methods: view.methods.into_iter().map(|m| (m.kind.to_owned(), m.label, m.confirmed, rfc3339(m.created_at))).collect(),
        method_history: view
            .method_history
            .into_iter()
            .map(|h| (rfc3339(h.at), h.kind.to_owned(), h.label, h.change.to_owned(), h.by.to_owned()))
            .collect(),
        sessions: view.sessions.into_iter().map(|s| (rfc3339(s.created_at), rfc3339(s.last_seen_at), s.ip)).collect(),
        events: view.events.into_iter().map(|e| (rfc3339(e.at), e.event.as_str().to_owned(), e.ip)).collect(),
        cases: view.cases.iter().map(|c| row(c, now)).collect(),
    }
}

/// What a case page shows back after a form: the refused note, a revealed field, or the
/// outcome of a checklist or action form.
#[derive(Default)]
pub(super) struct Shown {
    pub(super) comment: String,
    pub(super) error: Option<String>,
    pub(super) revealed: Option<(MaskedField, String)>,
    pub(super) action_error: Option<String>,
    pub(super) action_done: Option<String>,
    pub(super) reply: String,
    pub(super) reply_error: Option<String>,
}

pub(super) async fn case_page(
    state: &AppState,
    agent: &SupportAgent,
    chrome: Chrome,
    id: &str,
    status: StatusCode,
    shown: Shown,
) -> Result<Response, PageError> {
    let Shown { comment, error, revealed, action_error, action_done, reply, reply_error } = shown;
    let detail = state.support.case(&agent.0, id).await.map_err(ApiError::from)?;
    let now = state.clock.unix();
    let account = match state.support.account_view(&agent.0, id).await {
        Ok(view) => Some(account_section(view, revealed, now)),
        Err(SupportError::NoAccount) => None,
        Err(e) => return Err(PageError(ApiError::from(e))),
    };
    let notes = detail
        .notes
        .iter()
        .map(|n| NoteRow {
            when: rfc3339(n.at),
            agent: n.agent.clone().unwrap_or_else(|| "(a removed account)".into()),
            body: n.body.clone(),
            to_requester: n.to_requester,
        })
        .collect();
    let checks = state
        .support
        .checks(&agent.0, id)
        .await
        .map_err(ApiError::from)?
        .into_iter()
        .map(|c| CheckRow {
            kind: c.kind.in_words(),
            counts: c.kind.counts(),
            note: c.note,
            by: c.agent.unwrap_or_else(|| "doorman".into()),
            when: rfc3339(c.at),
        })
        .collect();
    let me = agent.0.account();
    let actions = state
        .support
        .actions(&agent.0, id)
        .await
        .map_err(ApiError::from)?
        .into_iter()
        .map(|a| {
            let status = a.status_at(now);
            ActionRow {
                approvable: status == ActionStatus::Proposed && a.proposed_by.as_ref() != Some(me),
                id: a.id,
                action: a.action.in_words(),
                target: a.target,
                reason: a.reason,
                status: status.as_str(),
                proposed_by: a.proposer.unwrap_or_default(),
                approved_by: a.approver.unwrap_or_default(),
                effective: a.effective_at.map(rfc3339).unwrap_or_default(),
            }
        })
        .collect();
    let page = CasePage {
        chrome,
        checks,
        check_kinds: CheckKind::RECORDABLE.iter().map(|k| (k.as_str(), k.in_words())).collect(),
        actions,
        action_kinds: SupportAction::ALL.iter().map(|a| (a.as_str(), a.in_words(), a.needs_two_agents())).collect(),
        action_error,
        action_done,
        max_reason: MAX_REASON_CHARS,
        csrf: Csrf::token(state, agent.1.token.expose()),
        resolved: detail.summary.status == "resolved",
        case: row(&detail.summary, state.clock.unix()),
        details: detail.details,
        notes,
        comment,
        error,
        max_comment: MAX_COMMENT_CHARS,
        contact: if detail.summary.status == "resolved" { None } else { detail.contact },
        reply,
        reply_error,
        account,
    };
    Ok(render(status, &page))
}

/// `GET /support/cases/{id}`
pub async fn case(
    State(state): State<AppState>,
    agent: SupportAgent,
    chrome: Chrome,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    case_page(&state, &agent, chrome, &id, StatusCode::OK, Shown::default()).await
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

#[derive(Deserialize)]
pub struct CommentForm {
    csrf: String,
    comment: String,
}

pub(super) fn check_csrf(state: &AppState, agent: &SupportAgent, token: &str) -> Result<(), PageError> {
    if Csrf::check(state, agent.1.token.expose(), token) { Ok(()) } else { Err(PageError(forbidden_form())) }
}

pub(super) fn back_to(id: &str) -> Response {
    Redirect::to(&format!("/support/cases/{id}")).into_response()
}

/// `POST /support/cases/{id}/claim`
pub async fn claim(
    State(state): State<AppState>,
    agent: SupportAgent,
    Client(ctx): Client,
    Path(id): Path<String>,
    PageForm(form): PageForm<CsrfForm>,
) -> Result<Response, PageError> {
    check_csrf(&state, &agent, &form.csrf)?;
    state.support.claim(&agent.0, &id, &ctx).await.map_err(ApiError::from)?;
    Ok(back_to(&id))
}

/// `POST /support/cases/{id}/comment`: an empty or too long comment is shown back on the form.
pub async fn comment(
    State(state): State<AppState>,
    agent: SupportAgent,
    chrome: Chrome,
    Client(ctx): Client,
    Path(id): Path<String>,
    PageForm(form): PageForm<CommentForm>,
) -> Result<Response, PageError> {
    check_csrf(&state, &agent, &form.csrf)?;
    match state.support.comment(&agent.0, &id, &form.comment, &ctx).await {
        Ok(()) => Ok(back_to(&id)),
        Err(e @ SupportError::InvalidComment) => {
            case_page(
                &state,
                &agent,
                chrome,
                &id,
                StatusCode::BAD_REQUEST,
                Shown { comment: form.comment, error: Some(e.to_string()), ..Shown::default() },
            )
            .await
        }
        Err(e) => Err(PageError(ApiError::from(e))),
    }
}

#[derive(Deserialize)]
pub struct ReplyForm {
    csrf: String,
    message: String,
}

/// `POST /support/cases/{id}/reply`: back to the case; a refused reply is shown back on its
/// form with why.
pub async fn reply(
    State(state): State<AppState>,
    agent: SupportAgent,
    chrome: Chrome,
    Client(ctx): Client,
    Path(id): Path<String>,
    PageForm(form): PageForm<ReplyForm>,
) -> Result<Response, PageError> {
    check_csrf(&state, &agent, &form.csrf)?;
    match state.support.reply(&agent.0, &id, &form.message, &ctx).await {
        // Back to the case, where the reply now heads the notes as sent (a reload of the
        // answer would otherwise send the email again).
        Ok(()) => Ok(Redirect::to(&format!("/support/cases/{id}#case-notes")).into_response()),
        Err(e @ (SupportError::InvalidReply | SupportError::TooManyReplies(_))) => {
            let message = e.to_string();
            let shown = Shown { reply: form.message, reply_error: Some(message), ..Shown::default() };
            case_page(&state, &agent, chrome, &id, ApiError::from(e).status, shown).await
        }
        Err(e) => Err(PageError(ApiError::from(e))),
    }
}

/// `POST /support/cases/{id}/resolve`: back to the queue.
pub async fn resolve(
    State(state): State<AppState>,
    agent: SupportAgent,
    Client(ctx): Client,
    Path(id): Path<String>,
    PageForm(form): PageForm<CsrfForm>,
) -> Result<Response, PageError> {
    check_csrf(&state, &agent, &form.csrf)?;
    state.support.resolve(&agent.0, &id, &ctx).await.map_err(ApiError::from)?;
    Ok(Redirect::to("/support").into_response())
}

#[derive(Deserialize)]
pub struct RevealForm {
    csrf: String,
    field: String,
}

/// `POST /support/cases/{id}/reveal`: the case page with one field in clear (audited).
pub async fn reveal(
    State(state): State<AppState>,
    agent: SupportAgent,
    chrome: Chrome,
    Client(ctx): Client,
    Path(id): Path<String>,
    PageForm(form): PageForm<RevealForm>,
) -> Result<Response, PageError> {
    check_csrf(&state, &agent, &form.csrf)?;
    let field = MaskedField::parse(&form.field).ok_or(SupportError::InvalidField).map_err(ApiError::from)?;
    let value = state.support.reveal(&agent.0, &id, field, &ctx).await.map_err(ApiError::from)?;
    case_page(&state, &agent, chrome, &id, StatusCode::OK, Shown { revealed: Some((field, value)), ..Shown::default() }).await
}
