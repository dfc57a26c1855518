//! Jobs: work a request records and the worker does later (the lookup, the token and the
//! email of a password reset happen there, so the request reveals nothing, S2.1).
//!
//! A job is a [`Job`], written to the queue by [`Job::encode`] and read back by
//! [`Job::decode`], the only two places that know how it is stored: a `kind` column naming
//! the variant and a JSON `payload` holding its fields. The worker matches on the decoded
//! value. (`outbox::Job` is the queued row as the store hands it out: id, kind, payload text
//! and attempts.)
//!
//! **The stored form is a contract between releases.** During a rolling deploy, replicas of
//! the previous release claim jobs this one queued and the other way round, so a variant's
//! kind and payload fields never change meaning: add a variant (or an optional field) for
//! new work, keep reading the old one until no replica writes it. The payload of
//! [`PasswordResetRequested`] is byte for byte what releases before typed jobs wrote
//! (`{"login":..,"ip":"192.0.2.1","user_agent":..,"request_id":..}`), so both read each other's.

use crate::account::LoginIdentifier;
use crate::store::{JobStore, StoreError};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// The kind of [`Job::PasswordResetRequested`] in the queue.
pub const PASSWORD_RESET_REQUESTED: &str = "password_reset_requested";

/// The kind of [`Job::SupportActionDue`] in the queue.
pub const SUPPORT_ACTION_DUE: &str = "support_action_due";

/// Work for the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    /// "Forgot password": look the login up and, within the limits, email a reset link.
    PasswordResetRequested(PasswordResetRequested),
    /// An approved support action's cooling-off period is over: apply it unless cancelled.
    SupportActionDue(SupportActionDue),
}

/// Which approved support action to apply (issue 11 §6). Queued when the second agent
/// approves, due when the cooling-off period ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupportActionDue {
    pub action_id: String,
}

/// Who asked for a reset, and from where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordResetRequested {
    /// The login as typed, normalised ([`LoginIdentifier::key`]); a login holding a control
    /// character does not decode (PostgreSQL refuses a NUL, so it could never run).
    #[serde(with = "login_key")]
    pub login: LoginIdentifier,
    /// The requesting client's address, as text in the payload.
    pub ip: IpAddr,
    /// At most 512 characters.
    pub user_agent: String,
    pub request_id: String,
}

/// A queued row that is not a job this release can run: running it again cannot help.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown job kind {0}")]
    UnknownKind(String),
    #[error("bad job payload: {0}")]
    Payload(String),
}

impl Job {
    /// The `kind` stored with the job.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::PasswordResetRequested(_) => PASSWORD_RESET_REQUESTED,
            Self::SupportActionDue(_) => SUPPORT_ACTION_DUE,
        }
    }

    /// The `kind` and `payload` the queue stores.
    pub fn encode(&self) -> Result<(&'static str, String), serde_json::Error> {
        let payload = match self {
            Self::PasswordResetRequested(request) => serde_json::to_string(request)?,
            Self::SupportActionDue(due) => serde_json::to_string(due)?,
        };
        Ok((self.kind(), payload))
    }

    /// The job a queued row holds.
    pub fn decode(kind: &str, payload: &str) -> Result<Self, DecodeError> {
        let bad = |e: serde_json::Error| DecodeError::Payload(e.to_string());
        match kind {
            PASSWORD_RESET_REQUESTED => serde_json::from_str(payload).map(Self::PasswordResetRequested).map_err(bad),
            SUPPORT_ACTION_DUE => serde_json::from_str(payload).map(Self::SupportActionDue).map_err(bad),
            other => Err(DecodeError::UnknownKind(other.to_owned())),
        }
    }
}

/// Queues `job`, due at `now`.
pub async fn enqueue<S: JobStore + ?Sized>(store: &S, job: &Job, now: i64) -> Result<(), StoreError> {
    let (kind, payload) = job.encode().map_err(|e| StoreError::Backend(Box::new(e)))?;
    store.enqueue_job(kind, &payload, now).await
}

/// Queues `job`, due at `now`, unless a job with the same `coalesce_key` was queued before:
/// repeats of the same intent are merged at intake.
pub async fn enqueue_once<S: JobStore + ?Sized>(store: &S, job: &Job, coalesce_key: &str, now: i64) -> Result<(), StoreError> {
    let (kind, payload) = job.encode().map_err(|e| StoreError::Backend(Box::new(e)))?;
    store.enqueue_job_once(kind, &payload, coalesce_key, now).await
}

/// A [`LoginIdentifier`] as its key, refusing control characters on the way in.
mod login_key {
    use crate::account::LoginIdentifier;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(login: &LoginIdentifier, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(login.key())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<LoginIdentifier, D::Error> {
        let key = String::deserialize(deserializer)?;
        if key.chars().any(char::is_control) {
            return Err(serde::de::Error::custom("the login holds a control character"));
        }
        Ok(LoginIdentifier::new(&key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Job {
        Job::PasswordResetRequested(PasswordResetRequested {
            login: LoginIdentifier::new("Maria@Example.com"),
            ip: IpAddr::from([192, 0, 2, 1]),
            user_agent: "Mozilla/5.0".into(),
            request_id: "r-1".into(),
        })
    }

    /// Releases before typed jobs wrote exactly this; they must read what this one writes,
    /// and this one must read what they wrote.
    const PREVIOUS_RELEASE: &str = r#"{"login":"maria@example.com","ip":"192.0.2.1","user_agent":"Mozilla/5.0","request_id":"r-1"}"#;

    #[test]
    fn a_reset_request_is_stored_as_the_previous_release_stored_it() {
        let (kind, payload) = request().encode().unwrap();
        assert_eq!((kind, payload.as_str()), ("password_reset_requested", PREVIOUS_RELEASE));
        assert_eq!(Job::decode("password_reset_requested", PREVIOUS_RELEASE).unwrap(), request());
    }

    #[test]
    fn ipv6_addresses_round_trip() {
        let payload = r#"{"login":"maria","ip":"2001:db8::1","user_agent":"","request_id":""}"#;
        let Ok(Job::PasswordResetRequested(request)) = Job::decode(PASSWORD_RESET_REQUESTED, payload) else {
            panic!("not a reset request")
        };
        assert_eq!(request.ip, "2001:db8::1".parse::<IpAddr>().unwrap());
        assert_eq!(Job::PasswordResetRequested(request).encode().unwrap().1, payload);
    }

    #[test]
    fn rows_that_are_not_jobs_say_why() {
        let unknown = Job::decode("no_such_job", "{}").unwrap_err();
        assert!(matches!(unknown, DecodeError::UnknownKind(_)) && unknown.to_string() == "unknown job kind no_such_job");
        for payload in [
            "{not json",
            r#"{"login":"ma\u0000ria","ip":"192.0.2.1","user_agent":"","request_id":""}"#,
            // The previous release fell back to 0.0.0.0; an address that is not one is refused.
            r#"{"login":"maria","ip":"somewhere","user_agent":"","request_id":""}"#,
            r#"{"login":"maria","user_agent":"","request_id":""}"#,
        ] {
            let error = Job::decode(PASSWORD_RESET_REQUESTED, payload).unwrap_err();
            assert!(matches!(error, DecodeError::Payload(_)), "{payload}: {error}");
            assert!(error.to_string().starts_with("bad job payload: "), "{error}");
        }
        let nul = r#"{"login":"ma\u0000ria","ip":"192.0.2.1","user_agent":"","request_id":""}"#;
        assert!(Job::decode(PASSWORD_RESET_REQUESTED, nul).unwrap_err().to_string().contains("control character"));
    }
}
