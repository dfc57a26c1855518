//! The demo payments page: payment details behind step-up, withdrawals behind an approval
//! bound to their amount and destination.

use super::two_step::{Choice, VerifyPage};
use super::{Chrome, render};
use crate::web::error::{ApiError, PageError};
use crate::web::extract::{Client, CurrentSession, PageForm, PageSession, Path, Query, StepUp};
use crate::web::routes::Routes;
use crate::web::security::{Csrf, forbidden_form};
use crate::web::state::AppState;
use crate::web::step_up::{to_step_up, urlencode};
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use doorman_core::approval::Approval;
use doorman_core::factors::FactorCode;
use doorman_core::payments::{PAYOUT_DESTINATIONS, Withdrawal, WithdrawalRecord};
use doorman_core::step_up::SteppedUp;
use doorman_core::two_step::Binding;
use serde::Deserialize;

pub fn router() -> Routes {
    Routes::new()
        .route("/payments", get(show))
        .route("/payments/withdraw", post(withdraw))
        .route("/payments/confirm/{id}", get(confirm).post(confirm_submit))
        .route("/payments/confirm/{id}/send", post(confirm_send))
}

#[derive(Template)]
#[template(path = "payments.html")]
struct PaymentsPage {
    chrome: Chrome,
    csrf: String,
    destinations: Vec<(&'static str, &'static str)>,
    history: Vec<WithdrawalRecord>,
    error: Option<String>,
    amount: String,
}

async fn payments_page(
    chrome: Chrome,
    state: &AppState,
    proof: &SteppedUp,
    session: &CurrentSession,
    error: Option<String>,
    amount: String,
) -> Result<PaymentsPage, ApiError> {
    Ok(PaymentsPage {
        chrome,
        csrf: Csrf::token(state, session.token.expose()),
        destinations: PAYOUT_DESTINATIONS.to_vec(),
        history: state.payments.history(proof).await?,
        error,
        amount,
    })
}

/// `GET /payments`: payment details need a recent verification (S7.6).
pub async fn show(chrome: Chrome, State(state): State<AppState>, StepUp(proof, session): StepUp) -> Result<Response, PageError> {
    Ok(render(StatusCode::OK, &payments_page(chrome, &state, &proof, &session, None, String::new()).await?))
}

#[derive(Deserialize)]
pub struct WithdrawForm {
    csrf: String,
    amount: String,
    destination: String,
}

/// `POST /payments/withdraw`: records what is asked, then asks to approve exactly that.
pub async fn withdraw(
    chrome: Chrome,
    State(state): State<AppState>,
    PageSession(session): PageSession,
    PageForm(form): PageForm<WithdrawForm>,
) -> Result<Response, PageError> {
    if !Csrf::check(&state, session.token.expose(), &form.csrf) {
        return Err(PageError(forbidden_form()));
    }
    match Withdrawal::parse(&form.amount, &form.destination) {
        Ok(withdrawal) => {
            let approval = state.payments.request_withdrawal(&session.record, &withdrawal).await?;
            Ok(Redirect::to(&format!("/payments/confirm/{}", approval.id)).into_response())
        }
        // The form again with the reason; it shows payout details, so only within a step-up.
        Err(e) => match state.two_step.recent_step_up(&session.record) {
            Some(proof) => {
                let page = payments_page(chrome, &state, &proof, &session, Some(e.to_string()), form.amount).await?;
                Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
            }
            None => Ok(to_step_up("/payments")),
        },
    }
}

async fn approval_page(chrome: Chrome, state: &AppState, session: &CurrentSession, approval: &Approval) -> Result<VerifyPage, PageError> {
    let withdrawal = Withdrawal::from_context(&approval.context).ok_or_else(|| PageError(not_found()))?;
    let methods = state.two_step.step_up_offer(&session.account).await?.methods;
    Ok(VerifyPage {
        chrome,
        heading: "Confirm your withdrawal".into(),
        intro: Some(format!(
            "Withdraw {} to {}. This verification approves this withdrawal only.",
            withdrawal.amount,
            withdrawal.destination_label()
        )),
        error: None,
        notice: None,
        csrf: Csrf::token(state, session.token.expose()),
        action: format!("/payments/confirm/{}", approval.id),
        send_action: format!("/payments/confirm/{}/send", approval.id),
        switch_base: format!("/payments/confirm/{}?", approval.id),
        methods,
        selected: None,
        choosing: false,
        hidden: Vec::new(),
        password_allowed: false,
        no_usable_method: None,
        sent: false,
        just_sent: false,
        forgot_answer_action: None,
    })
}

/// The approval's own binding: codes sent for it approve nothing else.
fn approval_key(approval: &Approval) -> String {
    format!("approval:{}", approval.id)
}

/// The approval page with the method chosen, saying whether its code is on the way.
async fn approval_page_for(
    chrome: Chrome,
    state: &AppState,
    session: &CurrentSession,
    approval: &Approval,
    choice: &Choice,
    error: Option<String>,
) -> Result<VerifyPage, PageError> {
    let page = VerifyPage { error, ..approval_page(chrome, state, session, approval).await?.choose(choice) };
    let key = approval_key(approval);
    Ok(page.with_sent_state(state, &Binding { key: &key, purpose: "withdrawal" }).await?)
}

/// An approval that was used, has expired or never was: the page says what to do next
/// (410 Gone: the link itself will not work again).
fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "approval_gone",
        "This confirmation was already used or has expired. Check Payments to see whether your withdrawal went through, or start it again there.",
    )
    .next_step("Go to Payments", "/payments")
}

async fn live_approval(state: &AppState, session: &CurrentSession, id: &str) -> Result<Approval, PageError> {
    state.two_step.live_approval(&session.account, id).await.map_err(ApiError::from)?.ok_or_else(|| PageError(not_found()))
}

/// `GET /payments/confirm/{id}`
pub async fn confirm(
    chrome: Chrome,
    State(state): State<AppState>,
    PageSession(session): PageSession,
    Path(id): Path<String>,
    Query(choice): Query<Choice>,
) -> Result<Response, PageError> {
    let approval = live_approval(&state, &session, &id).await?;
    Ok(render(StatusCode::OK, &approval_page_for(chrome, &state, &session, &approval, &choice, None).await?))
}

#[derive(Deserialize)]
pub struct ApproveForm {
    csrf: String,
    method_id: String,
    code: FactorCode,
}

#[derive(Template)]
#[template(path = "withdrawal_done.html")]
struct DonePage {
    chrome: Chrome,
    amount: String,
    destination: &'static str,
}

/// `POST /payments/confirm/{id}`: verifies for this approval, then spends it on exactly
/// the withdrawal it names.
pub async fn confirm_submit(
    chrome: Chrome,
    State(state): State<AppState>,
    Client(ctx): Client,
    PageSession(session): PageSession,
    Path(id): Path<String>,
    PageForm(form): PageForm<ApproveForm>,
) -> Result<Response, PageError> {
    if !Csrf::check(&state, session.token.expose(), &form.csrf) {
        return Err(PageError(forbidden_form()));
    }
    let approval = live_approval(&state, &session, &id).await?;
    let withdrawal = Withdrawal::from_context(&approval.context).ok_or_else(|| PageError(not_found()))?;
    let result = match state.two_step.approve(&session.account, &approval.id, &form.method_id, &form.code, &ctx).await {
        Ok(_) => state.payments.submit_withdrawal(&session.account, &approval.id, &withdrawal, &ctx).await.map_err(ApiError::from),
        Err(e) => Err(ApiError::from(e)),
    };
    match result {
        Ok(()) => {
            let page = DonePage { chrome, amount: withdrawal.amount.to_string(), destination: withdrawal.destination_label() };
            Ok(render(StatusCode::OK, &page))
        }
        Err(error) => {
            if !error.status.is_client_error() {
                return Err(PageError(error));
            }
            let choice = Choice::method(form.method_id);
            let page = approval_page_for(chrome, &state, &session, &approval, &choice, Some(error.message.clone())).await?;
            Ok(render(error.status, &page))
        }
    }
}

#[derive(Deserialize)]
pub struct SendForm {
    csrf: String,
    method_id: String,
}

/// `POST /payments/confirm/{id}/send`
pub async fn confirm_send(
    chrome: Chrome,
    State(state): State<AppState>,
    Client(ctx): Client,
    PageSession(session): PageSession,
    Path(id): Path<String>,
    PageForm(form): PageForm<SendForm>,
) -> Result<Response, PageError> {
    if !Csrf::check(&state, session.token.expose(), &form.csrf) {
        return Err(PageError(forbidden_form()));
    }
    let approval = live_approval(&state, &session, &id).await?;
    let key = approval_key(&approval);
    match state.two_step.send_code(&session.account, &form.method_id, &Binding { key: &key, purpose: "withdrawal" }, &ctx).await {
        Ok(()) => {
            Ok(Redirect::to(&format!("/payments/confirm/{}?method={}&sent=1", approval.id, urlencode(&form.method_id))).into_response())
        }
        Err(e) => {
            let error = ApiError::from(e);
            if !error.status.is_client_error() {
                return Err(PageError(error));
            }
            let choice = Choice::method(form.method_id);
            let page = approval_page_for(chrome, &state, &session, &approval, &choice, Some(error.message.clone())).await?;
            Ok(render(error.status, &page))
        }
    }
}
