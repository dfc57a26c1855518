//! "No access to my email" (issue 11 §3): a recovery request handled by support. Every
//! answer is the same whether or not the account exists.

use super::accepted;
use crate::web::error::ApiError;
use crate::web::extract::{ApiJson, Client};
use crate::web::routes::Routes;
use crate::web::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use doorman_core::LoginIdentifier;
use doorman_core::account::EmailAddress;
use doorman_core::proof_of_work::PowSolution;
use doorman_core::recovery::ResetCodeAttempt;
use doorman_core::recovery_request::{CaseStatus, Hints, MAX_MESSAGE_CHARS, RecoveryRequestInput, RequestError, StatusLink};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn router() -> Routes {
    Routes::new()
        .route("/recovery-requests", post(request))
        .route("/recovery-requests/challenge", get(challenge))
        .route("/recovery-requests/confirm", post(confirm))
        .route("/recovery-requests/status", post(status))
        .route("/recovery-requests/notes", post(add_note))
}

/// `GET /api/v1/recovery-requests/challenge`: a fresh proof-of-work challenge (stores nothing).
pub async fn challenge(State(state): State<AppState>) -> Json<Value> {
    let c = state.recovery_requests.proof_of_work().challenge();
    let expires_at = doorman_core::clock::rfc3339(c.expires_at);
    Json(json!({ "challenge": c.challenge, "bits": c.bits, "algorithm": "sha256", "expires_at": expires_at }))
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct HintsBody {
    last_sign_in: String,
    country: String,
    payout_type: String,
    payout_bank: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestBody {
    login: String,
    contact_email: String,
    message: String,
    #[serde(default)]
    hints: HintsBody,
    #[serde(default)]
    pow_challenge: String,
    #[serde(default)]
    pow_nonce: String,
}

fn field_error(code: &'static str, field: &str, message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message).with("field", json!(field))
}

/// The form's fields, checked (shared with the page).
pub fn input_of(
    login: &str,
    contact_email: &str,
    message: &str,
    hints: Hints,
    proof: PowSolution,
) -> Result<RecoveryRequestInput, ApiError> {
    let login = login.trim();
    if login.is_empty() || login.chars().count() > 320 {
        return Err(field_error("invalid_login", "login", "Enter the username or the old email address of the account."));
    }
    let contact_email = EmailAddress::parse(contact_email)
        .map_err(|_| field_error("invalid_email", "contact_email", "Enter an email address you can read now, like name@example.com."))?;
    if message.trim().is_empty() || message.chars().count() > MAX_MESSAGE_CHARS {
        return Err(field_error("invalid_message", "message", "Write a message for support (up to 4000 characters)."));
    }
    Ok(RecoveryRequestInput { login: LoginIdentifier::new(login), contact_email, message: message.to_owned(), hints, proof })
}

/// 202 `{"status":"verify_contact"}`: a code goes to `contact_email`, account or not.
pub async fn request(
    State(state): State<AppState>,
    Client(ctx): Client,
    ApiJson(body): ApiJson<RequestBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let h = body.hints;
    let hints = Hints { last_sign_in: h.last_sign_in, country: h.country, payout_type: h.payout_type, payout_bank: h.payout_bank };
    let proof = PowSolution { challenge: body.pow_challenge, nonce: body.pow_nonce };
    let input = input_of(&body.login, &body.contact_email, &body.message, hints, proof)?;
    state.recovery_requests.request(input, &ctx).await?;
    Ok(accepted("verify_contact"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBody {
    contact_email: String,
    code: ResetCodeAttempt,
}

/// 201 `{"case":"<id>"}`; a status link goes to the contact address.
pub async fn confirm(
    State(state): State<AppState>,
    Client(ctx): Client,
    ApiJson(body): ApiJson<ConfirmBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    // An address that cannot have had a request gets a wrong code's answer.
    let contact = EmailAddress::parse(&body.contact_email).map_err(|_| RequestError::InvalidCode)?;
    let case = state.recovery_requests.confirm(&contact, &body.code, &ctx).await?;
    Ok((StatusCode::CREATED, Json(json!({ "case": case }))))
}

pub fn case_json(case: &CaseStatus) -> Value {
    let notes: Vec<Value> = case
        .notes
        .iter()
        .map(|n| json!({ "author": n.author, "body": n.body, "created_at": doorman_core::clock::rfc3339(n.created_at) }))
        .collect();
    json!({ "case": case.id, "status": case.status, "created_at": doorman_core::clock::rfc3339(case.created_at), "notes": notes })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    token: String,
}

fn link_of(raw: &str) -> Result<StatusLink, ApiError> {
    StatusLink::parse(raw).ok_or_else(|| RequestError::InvalidLink.into())
}

/// `POST /api/v1/recovery-requests/status` `{"token"}`: the case behind a status link
/// (a POST so that the link's token stays out of addresses; it changes nothing).
pub async fn status(State(state): State<AppState>, ApiJson(body): ApiJson<StatusBody>) -> Result<Json<Value>, ApiError> {
    let case = state.recovery_requests.status(&link_of(&body.token)?).await?;
    Ok(Json(case_json(&case)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    token: String,
    message: String,
}

/// `POST /api/v1/recovery-requests/notes` `{"token","message"}`: 201 with the case.
pub async fn add_note(
    State(state): State<AppState>,
    Client(ctx): Client,
    ApiJson(body): ApiJson<NoteBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let link = link_of(&body.token)?;
    if body.message.trim().is_empty() || body.message.chars().count() > MAX_MESSAGE_CHARS {
        return Err(field_error("invalid_message", "message", "Write what you want to add (up to 4000 characters)."));
    }
    let case = state.recovery_requests.add_note(&link, &body.message, &ctx).await?;
    Ok((StatusCode::CREATED, Json(case_json(&case))))
}
