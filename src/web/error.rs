//! One error type for the web layer, mapped to HTTP once: as JSON for the API and as an
//! HTML page for pages. Unexpected failures become an opaque 500; the cause goes to the log.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use doorman_core::account::AccountFieldError;
use doorman_core::auth::AuthError;
use doorman_core::email_change::EmailChangeError;
use doorman_core::factors::{AnswerError, MethodView};
use doorman_core::input::Refused;
use doorman_core::password::{HashError, WeakPassword};
use doorman_core::payments::PaymentError;
use doorman_core::phone::PhoneError;
use doorman_core::recovery::ResetError;
use doorman_core::reset_hold::ResetWaiting;
use doorman_core::store::StoreError;
use doorman_core::token::InvalidResetLink;
use doorman_core::two_step::TwoStepError;
use doorman_core::two_step_reset::TwoStepResetError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<i64>,
    /// More fields for the JSON body, e.g. the methods a `step_up_required` offers.
    pub extra: Option<serde_json::Map<String, serde_json::Value>>,
    /// What a person can do next, linked from the error page (not part of the JSON body).
    /// (Boxed: it is rare, and errors travel by value through every handler.)
    pub next: Option<Box<NextStep>>,
}

/// A link on an error page to the step that gets the person further.
#[derive(Debug, Clone, Copy)]
pub struct NextStep {
    pub label: &'static str,
    pub href: &'static str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after: None, extra: None, next: None }
    }

    pub fn not_authenticated() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "not_authenticated", "You are not signed in.")
    }

    pub fn forbidden(message: &str) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// A password check that could not run: 503 `overloaded` with `Retry-After` when the
    /// hashing queue is full (admission control), else a server error.
    pub fn hashing(error: &HashError) -> Self {
        match error {
            HashError::Overloaded => Self {
                retry_after: Some(1),
                ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", "The server is busy right now. Please try again in a moment.")
            },
            other => Self::internal(other),
        }
    }

    /// 503 `unavailable`: the database cannot be reached (also answered at once, without
    /// trying, while the breaker in `web::breaker` is open).
    pub fn unavailable() -> Self {
        Self {
            retry_after: Some(5),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "The service cannot reach its database right now. Please try again in a few seconds.",
            )
        }
    }

    /// Logs the whole cause chain and answers without any of it: 503 `unavailable` with
    /// `Retry-After` when the database cannot be reached (it is down or restarting: the same
    /// request works again by itself once it is back, issue 13), 503 `storage_full` when its
    /// disk is full (nothing was saved; the same request works once space is freed), else an
    /// opaque 500.
    pub fn internal(error: &(dyn std::error::Error + 'static)) -> Self {
        let mut chain = error.to_string();
        let mut fault = database_fault(error);
        let mut source = error.source();
        while let Some(cause) = source {
            chain.push_str(": ");
            chain.push_str(&cause.to_string());
            fault = fault.or(database_fault(cause));
            source = cause.source();
        }
        match fault {
            Some(DatabaseFault::Unreachable) => {
                tracing::warn!(error = %chain, "the database is unreachable");
                Self::unavailable()
            }
            Some(DatabaseFault::Full) => {
                tracing::error!(error = %chain, "the database's disk is full: free space on it");
                Self {
                    retry_after: Some(60),
                    ..Self::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "storage_full",
                        "The service has run out of storage space, so it cannot save anything right now. Nothing was changed. Please try again later.",
                    )
                }
            }
            None => {
                tracing::error!(error = %chain, "request failed");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "Something went wrong on our side. Please try again; if it keeps happening, contact support with the X-Request-Id of this response.",
                )
            }
        }
    }
}

/// A failure of the database itself rather than of a statement, which the same request
/// survives once it is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DatabaseFault {
    /// No connection could be had, the connection broke, or the server said it is shutting
    /// down or not accepting connections (SQLSTATE class 08, 57P01 to 57P03).
    Unreachable,
    /// The disk under the database is full: SQLite's `SQLITE_FULL` (13), PostgreSQL's
    /// `disk_full` (53100), or ENOSPC from the operating system.
    Full,
}

fn database_fault(error: &(dyn std::error::Error + 'static)) -> Option<DatabaseFault> {
    let disk_full = |io: &std::io::Error| io.kind() == std::io::ErrorKind::StorageFull;
    match error.downcast_ref::<sqlx::Error>() {
        Some(sqlx::Error::Io(io)) if disk_full(io) => Some(DatabaseFault::Full),
        Some(sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_)) => {
            Some(DatabaseFault::Unreachable)
        }
        Some(sqlx::Error::Database(db)) => match db.code()?.as_ref() {
            "13" | "53100" => Some(DatabaseFault::Full),
            code if code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03") => Some(DatabaseFault::Unreachable),
            _ => None,
        },
        _ => error.downcast_ref::<std::io::Error>().filter(|io| disk_full(io)).map(|_| DatabaseFault::Full),
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let message = e.to_string();
        match e {
            AuthError::InvalidCredentials => Self::new(StatusCode::UNAUTHORIZED, "invalid_credentials", message),
            AuthError::Throttled { retry_after_seconds } => Self {
                retry_after: Some(retry_after_seconds.max(1)),
                ..Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", message)
            },
            AuthError::WeakPassword(_) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, "weak_password", message),
            AuthError::UsernameTaken => Self::new(StatusCode::CONFLICT, "username_taken", message),
            AuthError::EmailTaken => Self::new(StatusCode::CONFLICT, "email_taken", message),
            AuthError::Store(ref inner) => Self::internal(inner),
            AuthError::Hash(ref inner) => Self::hashing(inner),
            AuthError::NotYourProof(_) => Self::forbidden(&message),
            AuthError::AccountLocked => Self::new(StatusCode::FORBIDDEN, "account_locked", message),
            AuthError::AccountLockedForSupport => Self::new(StatusCode::FORBIDDEN, "account_locked_for_support", message),
            AuthError::ResetWaiting(e) => Self::from(e),
        }
    }
}

impl From<doorman_core::compromise::CompromiseError> for ApiError {
    fn from(e: doorman_core::compromise::CompromiseError) -> Self {
        use doorman_core::compromise::CompromiseError;
        let message = e.to_string();
        match e {
            CompromiseError::InvalidToken => Self::new(StatusCode::BAD_REQUEST, "invalid_token", message),
            CompromiseError::NoSuchEntry => Self::new(StatusCode::NOT_FOUND, "not_found", message),
            CompromiseError::StepUpRequired => Self::new(StatusCode::FORBIDDEN, "step_up_required", message),
            CompromiseError::EntryTooOld => Self::new(StatusCode::BAD_REQUEST, "report_too_old", message),
            CompromiseError::TooMany(wait) => {
                Self { retry_after: Some(wait.max(1)), ..Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message) }
            }
            CompromiseError::Store(ref inner) => Self::internal(inner),
            CompromiseError::Compose(ref inner) => Self::internal(&std::io::Error::other(inner.clone())),
        }
    }
}

impl From<doorman_core::recovery_request::RequestError> for ApiError {
    fn from(e: doorman_core::recovery_request::RequestError) -> Self {
        use doorman_core::proof_of_work::PowError;
        use doorman_core::recovery_request::RequestError;
        let message = e.to_string();
        match e {
            RequestError::Proof(PowError::Invalid) => Self::new(StatusCode::BAD_REQUEST, "invalid_proof_of_work", message),
            RequestError::Proof(PowError::Store(ref inner)) | RequestError::Store(ref inner) => Self::internal(inner),
            RequestError::TooMany(wait) => {
                Self { retry_after: Some(wait.max(1)), ..Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message) }
            }
            RequestError::InvalidCode => Self::new(StatusCode::BAD_REQUEST, "invalid_code", message),
            RequestError::TooManyTries => Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", message),
            RequestError::InvalidLink => Self::new(StatusCode::BAD_REQUEST, "invalid_token", message),
            RequestError::Compose(ref inner) => Self::internal(&std::io::Error::other(inner.clone())),
        }
    }
}

impl From<doorman_core::support::SupportError> for ApiError {
    fn from(e: doorman_core::support::SupportError) -> Self {
        use doorman_core::support::SupportError;
        let message = e.to_string();
        match e {
            SupportError::NotAgent => Self::forbidden(&message),
            SupportError::TwoStepRequired => Self::new(StatusCode::FORBIDDEN, "two_step_required", message),
            SupportError::NoSuchCase => Self::new(StatusCode::NOT_FOUND, "not_found", message),
            SupportError::NoAccount => Self::new(StatusCode::NOT_FOUND, "no_account", message),
            SupportError::InvalidField => {
                Self::new(StatusCode::BAD_REQUEST, "invalid_field", message).with("field", serde_json::json!("field"))
            }
            SupportError::Resolved => Self::new(StatusCode::CONFLICT, "case_resolved", message),
            SupportError::ClaimedByOther => Self::new(StatusCode::CONFLICT, "claimed_by_other", message),
            SupportError::InvalidComment => {
                Self::new(StatusCode::BAD_REQUEST, "invalid_comment", message).with("field", serde_json::json!("comment"))
            }
            SupportError::InvalidReply => {
                Self::new(StatusCode::BAD_REQUEST, "invalid_reply", message).with("field", serde_json::json!("message"))
            }
            SupportError::NoRequester => Self::new(StatusCode::CONFLICT, "no_contact", message),
            SupportError::TooManyReplies(wait) => {
                Self { retry_after: Some(wait.max(1)), ..Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_replies", message) }
            }
            SupportError::InvalidCheckKind => {
                Self::new(StatusCode::BAD_REQUEST, "invalid_kind", message).with("field", serde_json::json!("kind"))
            }
            SupportError::InvalidNote => {
                Self::new(StatusCode::BAD_REQUEST, "invalid_note", message).with("field", serde_json::json!("note"))
            }
            SupportError::InvalidReason => {
                Self::new(StatusCode::BAD_REQUEST, "invalid_reason", message).with("field", serde_json::json!("reason"))
            }
            SupportError::InvalidAction => {
                Self::new(StatusCode::BAD_REQUEST, "invalid_action", message).with("field", serde_json::json!("action"))
            }
            SupportError::OwnAccount => Self::new(StatusCode::FORBIDDEN, "own_account", message),
            SupportError::SameAgent => Self::new(StatusCode::FORBIDDEN, "same_agent", message),
            SupportError::NotLocked => Self::new(StatusCode::CONFLICT, "not_locked", message),
            SupportError::TwoAgentsNeeded => Self::new(StatusCode::CONFLICT, "two_agents_needed", message),
            SupportError::ChecksMissing => Self::new(StatusCode::CONFLICT, "checks_missing", message),
            SupportError::NoContact => Self::new(StatusCode::CONFLICT, "no_contact", message),
            SupportError::SameEmail => Self::new(StatusCode::CONFLICT, "same_email", message),
            SupportError::ActionWaiting => Self::new(StatusCode::CONFLICT, "action_waiting", message),
            SupportError::NoSuchAction => Self::new(StatusCode::NOT_FOUND, "not_found", message),
            SupportError::ActionExpired => Self::new(StatusCode::CONFLICT, "action_expired", message),
            SupportError::NotAwaitingApproval => Self::new(StatusCode::CONFLICT, "not_awaiting_approval", message),
            SupportError::TargetChanged => Self::new(StatusCode::CONFLICT, "target_changed", message),
            SupportError::InvalidToken => Self::new(StatusCode::BAD_REQUEST, "invalid_token", message),
            SupportError::Compose(ref inner) => Self::internal(&std::io::Error::other(inner.clone())),
            SupportError::Store(ref inner) => Self::internal(inner),
        }
    }
}

impl From<ResetError> for ApiError {
    fn from(e: ResetError) -> Self {
        let message = e.to_string();
        match e {
            ResetError::InvalidToken => Self::new(StatusCode::BAD_REQUEST, "invalid_token", message),
            ResetError::InvalidCode => Self::new(StatusCode::BAD_REQUEST, "invalid_code", message),
            // No Retry-After: asking for a new email ends it (and the link works meanwhile).
            ResetError::TooManyTries => Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", message),
            ResetError::WeakPassword(_) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, "weak_password", message),
            ResetError::Store(ref inner) => Self::internal(inner),
            ResetError::Hash(ref inner) => Self::hashing(inner),
            ResetError::Compose(ref inner) => Self::internal(&std::io::Error::other(inner.clone())),
            ResetError::SecondFactorRequired(methods) => {
                // 2-step is on but nothing can be used here (a phone without an SMS provider).
                let message = if methods.is_empty() { doorman_core::two_step::NO_USABLE_METHOD.to_owned() } else { message };
                Self::new(StatusCode::FORBIDDEN, "second_factor_required", message).with("methods", serde_json::json!(methods))
            }
            ResetError::SecondFactor(inner) => Self::from(inner),
            ResetError::ResetWaiting(e) => Self::from(e),
            ResetError::SupportUnlockRequired => Self::new(StatusCode::CONFLICT, "support_unlock_required", message),
        }
    }
}

impl ApiError {
    /// The link an error page offers as the way on.
    pub fn next_step(mut self, label: &'static str, href: &'static str) -> Self {
        self.next = Some(Box::new(NextStep { label, href }));
        self
    }

    pub fn with(mut self, key: &str, value: serde_json::Value) -> Self {
        self.extra.get_or_insert_with(serde_json::Map::new).insert(key.to_owned(), value);
        self
    }

    /// 403 `step_up_required` with the methods that can provide it (S7.6).
    pub fn step_up_required(methods: &[MethodView]) -> Self {
        let message = if methods.is_empty() {
            "Confirm it is you: enter your password again."
        } else {
            "Confirm it is you with one of your 2-step verification methods."
        };
        Self::new(StatusCode::FORBIDDEN, "step_up_required", message).with("methods", serde_json::json!(methods))
    }
}

impl From<TwoStepError> for ApiError {
    fn from(e: TwoStepError) -> Self {
        let message = e.to_string();
        match e {
            TwoStepError::Invalid | TwoStepError::WrongEnrolmentCode | TwoStepError::InvalidTotp => {
                Self::new(StatusCode::UNAUTHORIZED, "invalid_code", message)
            }
            TwoStepError::Throttled(seconds) => {
                Self { retry_after: Some(seconds.max(1)), ..Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", message) }
            }
            TwoStepError::TooManyNumbers(seconds) => {
                Self { retry_after: Some(seconds.max(1)), ..Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_numbers", message) }
            }
            TwoStepError::TooManyChanges(seconds) => {
                Self { retry_after: Some(seconds.max(1)), ..Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_changes", message) }
            }
            TwoStepError::ResendTooSoon(seconds) => {
                Self { retry_after: Some(seconds.max(1)), ..Self::new(StatusCode::TOO_MANY_REQUESTS, "resend_too_soon", message) }
            }
            TwoStepError::NotSendable | TwoStepError::UnknownMethod => Self::new(StatusCode::BAD_REQUEST, "invalid_method", message),
            TwoStepError::EmailCodesDisabled => Self::new(StatusCode::BAD_REQUEST, "email_codes_disabled", message),
            TwoStepError::QuestionNotEnough => Self::new(StatusCode::BAD_REQUEST, "method_not_enough", message),
            TwoStepError::SmsUnavailable => Self::new(StatusCode::BAD_REQUEST, "sms_unavailable", message),
            TwoStepError::QuestionNeedsAnotherMethod | TwoStepError::LastRealMethod => {
                Self::new(StatusCode::CONFLICT, "method_required", message)
            }
            TwoStepError::Answer(_) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, "weak_answer", message),
            TwoStepError::Phone(_) => Self::new(StatusCode::BAD_REQUEST, "invalid_phone", message),
            TwoStepError::Store(ref inner) => Self::internal(inner),
            TwoStepError::Hash(ref inner) => Self::hashing(inner),
            TwoStepError::Seal | TwoStepError::Compose(_) => Self::internal(&e),
            TwoStepError::StepUpRequired(required) => {
                let mut error = Self::step_up_required(&required.methods);
                if required.stranded() {
                    // 2-step is on and nothing can be used here: the password is no substitute.
                    error.message = doorman_core::two_step::NO_USABLE_METHOD.into();
                }
                error
            }
            TwoStepError::NotYourProof(_) => Self::forbidden(&message),
            TwoStepError::ResetWaiting(e) => Self::from(e),
        }
    }
}

impl From<doorman_core::answer_reset::AnswerResetError> for ApiError {
    fn from(e: doorman_core::answer_reset::AnswerResetError) -> Self {
        use doorman_core::answer_reset::AnswerResetError;
        let message = e.to_string();
        match e {
            AnswerResetError::InvalidToken => Self::new(StatusCode::BAD_REQUEST, "invalid_token", message),
            AnswerResetError::TwoStep(inner) => Self::from(inner),
            AnswerResetError::Store(ref inner) => Self::internal(inner),
            AnswerResetError::Compose(ref inner) => Self::internal(&std::io::Error::other(inner.clone())),
        }
    }
}

impl From<EmailChangeError> for ApiError {
    fn from(e: EmailChangeError) -> Self {
        let message = e.to_string();
        match e {
            EmailChangeError::Same => Self::new(StatusCode::UNPROCESSABLE_ENTITY, "same_email", message),
            EmailChangeError::TooMany(seconds) => {
                Self { retry_after: Some(seconds.max(1)), ..Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message) }
            }
            EmailChangeError::InvalidToken => Self::new(StatusCode::BAD_REQUEST, "invalid_token", message),
            EmailChangeError::AddressTaken => Self::new(StatusCode::CONFLICT, "email_taken", message),
            EmailChangeError::Store(ref inner) => Self::internal(inner),
            EmailChangeError::Compose(ref inner) => Self::internal(&std::io::Error::other(inner.clone())),
            EmailChangeError::NotYourProof(_) => Self::forbidden(&message),
            EmailChangeError::ResetWaiting(e) => Self::from(e),
        }
    }
}

impl From<PaymentError> for ApiError {
    fn from(e: PaymentError) -> Self {
        match e {
            // The same answer as a wrong code: the approval does not count for this withdrawal.
            PaymentError::ApprovalInvalid => Self::from(TwoStepError::Invalid),
            PaymentError::Frozen => Self::new(StatusCode::FORBIDDEN, "account_locked", e.to_string()),
            PaymentError::NotYourProof(_) => Self::forbidden(&e.to_string()),
            PaymentError::Store(ref inner) => Self::internal(inner),
            PaymentError::ResetWaiting(e) => Self::from(e),
        }
    }
}

impl From<ResetWaiting> for ApiError {
    fn from(e: ResetWaiting) -> Self {
        Self::new(StatusCode::CONFLICT, "two_step_reset_pending", e.to_string())
    }
}

impl From<TwoStepResetError> for ApiError {
    fn from(e: TwoStepResetError) -> Self {
        let message = e.to_string();
        match e {
            TwoStepResetError::InvalidToken => Self::new(StatusCode::BAD_REQUEST, "invalid_token", message),
            TwoStepResetError::NotReady(ready_at) => Self::new(StatusCode::CONFLICT, "not_ready", message)
                .with("ready_at", serde_json::json!(doorman_core::clock::rfc3339(ready_at))),
            TwoStepResetError::AlreadyRunning => Self::new(StatusCode::CONFLICT, "already_running", message),
            TwoStepResetError::RecentlyCancelled(until) => Self::new(StatusCode::CONFLICT, "recently_cancelled", message)
                .with("new_request_after", serde_json::json!(doorman_core::clock::rfc3339(until)))
                .next_step("Get help", "/help"),
            TwoStepResetError::TooMany(seconds) => {
                Self { retry_after: Some(seconds.max(1)), ..Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message) }
            }
            TwoStepResetError::PasswordFirst => Self::new(StatusCode::UNAUTHORIZED, "not_authenticated", message),
            TwoStepResetError::Store(ref inner) => Self::internal(inner),
            TwoStepResetError::Compose(ref inner) => Self::internal(&std::io::Error::other(inner.clone())),
        }
    }
}

/// A value a domain type refused at the edge (`doorman_core::input`): the same answer the
/// domain's own error for it gets from a handler.
impl From<Refused> for ApiError {
    fn from(refused: Refused) -> Self {
        if let Some(weak) = refused.downcast_ref::<WeakPassword>() {
            Self::from(AuthError::WeakPassword(weak.clone()))
        } else if let Some(e) = refused.downcast_ref::<PhoneError>() {
            Self::from(TwoStepError::Phone(e.clone()))
        } else if let Some(e) = refused.downcast_ref::<AnswerError>() {
            Self::from(TwoStepError::Answer(e.clone()))
        } else if let Some(e) = refused.downcast_ref::<AccountFieldError>() {
            Self::new(StatusCode::BAD_REQUEST, "invalid_email", e.to_string())
        } else if refused.downcast_ref::<InvalidResetLink>().is_some() {
            Self::from(ResetError::InvalidToken)
        } else if let Some(EmailChangeError::InvalidToken) = refused.downcast_ref::<EmailChangeError>() {
            Self::from(EmailChangeError::InvalidToken)
        } else if let Some(TwoStepResetError::InvalidToken) = refused.downcast_ref::<TwoStepResetError>() {
            Self::from(TwoStepResetError::InvalidToken)
        } else {
            // A refusal of a type not mapped above: still the caller's value, in its words.
            Self::new(StatusCode::BAD_REQUEST, "invalid_value", refused.to_string())
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::from(AuthError::from(e))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::Map::new();
        body.insert("error".into(), self.code.into());
        body.insert("message".into(), self.message.into());
        body.extend(self.extra.unwrap_or_default());
        let body = Json(serde_json::Value::Object(body));
        let unreachable = self.code == "unavailable";
        let mut response = (self.status, body).into_response();
        set_retry_after(&mut response, self.retry_after);
        if unreachable {
            response.extensions_mut().insert(DatabaseUnreachable);
        }
        response
    }
}

/// Marks an answer given because the database could not be reached, for the breaker.
#[derive(Debug, Clone, Copy)]
pub struct DatabaseUnreachable;

/// The one place that writes `Retry-After`: the seconds to wait, when there are any.
pub fn set_retry_after(response: &mut Response, retry_after: Option<i64>) {
    if let Some(seconds) = retry_after
        && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
}

/// The same error, for a person in a browser. It answers with the status and the message
/// as plain text, and marks the response with [`ErrorPageMessage`]: the page layout, which
/// every page request passes through, renders it as an error page. The error types stay
/// free of any page or template.
#[derive(Debug)]
pub struct PageError(pub ApiError);

/// An error answer to a page request, for the layout to render.
#[derive(Debug, Clone)]
pub struct ErrorPageMessage {
    pub code: &'static str,
    pub message: String,
    pub next: Option<Box<NextStep>>,
}

impl<E: Into<ApiError>> From<E> for PageError {
    fn from(e: E) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let ApiError { status, code, message, retry_after, next, .. } = self.0;
        let unreachable = code == "unavailable";
        let mut response = (status, message.clone()).into_response();
        response.extensions_mut().insert(ErrorPageMessage { code, message, next });
        set_retry_after(&mut response, retry_after);
        if unreachable {
            response.extensions_mut().insert(DatabaseUnreachable);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::{ApiError, DatabaseFault, database_fault};
    use std::io::{Error, ErrorKind};

    #[test]
    fn a_full_disk_and_an_unreachable_database_are_told_apart_from_other_failures() {
        let enospc = || Error::from_raw_os_error(28);
        assert_eq!(database_fault(&enospc()), Some(DatabaseFault::Full));
        assert_eq!(database_fault(&sqlx::Error::Io(enospc())), Some(DatabaseFault::Full));
        assert_eq!(database_fault(&sqlx::Error::Io(Error::from(ErrorKind::ConnectionRefused))), Some(DatabaseFault::Unreachable));
        assert_eq!(database_fault(&sqlx::Error::PoolTimedOut), Some(DatabaseFault::Unreachable));
        assert_eq!(database_fault(&Error::other("a template failed")), None);
        assert_eq!(database_fault(&sqlx::Error::RowNotFound), None);

        let full = ApiError::internal(&sqlx::Error::Io(enospc()));
        assert_eq!((full.status.as_u16(), full.code, full.retry_after), (503, "storage_full", Some(60)));
        let down = ApiError::internal(&sqlx::Error::PoolTimedOut);
        assert_eq!((down.status.as_u16(), down.code, down.retry_after), (503, "unavailable", Some(5)));
        let other = ApiError::internal(&Error::other("a template failed"));
        assert_eq!((other.status.as_u16(), other.code), (500, "internal_error"));
    }
}
