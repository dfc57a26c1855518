//! The durable outbox and job queue. A message is written to the outbox in the same
//! transaction as the change that caused it, and delivered later by a worker with retries;
//! work that must not run inside a request (the lookup behind "forgot password") is queued
//! as a job. Both are claimed with row leases, so several replicas never take the same row
//! in normal operation. SMS joins email here in a later issue ([`Channel::Sms`]).

use crate::account::AccountId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "email" => Some(Self::Email),
            "sms" => Some(Self::Sms),
            _ => None,
        }
    }
}

/// A message's content, as composed from a template. Bodies hold links and codes, so its
/// `Debug` shows only the subject.
#[derive(Clone, PartialEq, Eq)]
pub struct MessageContent {
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl std::fmt::Debug for MessageContent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageContent").field("subject", &self.subject).field("text", &"<redacted>").field("html", &"<redacted>").finish()
    }
}

/// A message to write to the outbox.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub id: String,
    pub channel: Channel,
    /// An email address (or, later, an E.164 number).
    pub recipient: String,
    /// What the message is, for operators: "password_reset", "password_changed".
    pub kind: &'static str,
    pub account_id: Option<AccountId>,
    pub content: MessageContent,
    pub created_at: i64,
    /// When the worker may send it: `created_at`, unless the message waits for a time (the
    /// "finish your 2-step reset" email, written when the wait starts).
    pub send_at: i64,
}

impl NewMessage {
    pub fn email(recipient: &str, kind: &'static str, account_id: Option<AccountId>, content: MessageContent, now: i64) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            channel: Channel::Email,
            recipient: recipient.to_owned(),
            kind,
            account_id,
            content,
            created_at: now,
            send_at: now,
        }
    }
}

impl NewMessage {
    /// A text message; `content.text` is what is sent.
    pub fn sms(e164: &str, kind: &'static str, account_id: Option<AccountId>, content: MessageContent, now: i64) -> Self {
        Self { channel: Channel::Sms, ..Self::email(e164, kind, account_id, content, now) }
    }
}

/// A message claimed by a worker for delivery.
#[derive(Debug, Clone)]
pub struct ClaimedMessage {
    pub id: String,
    pub channel: Channel,
    pub recipient: String,
    pub kind: String,
    pub account_id: Option<AccountId>,
    pub content: MessageContent,
    /// Delivery attempts so far, this one included.
    pub attempts: i64,
    pub created_at: i64,
}

/// A message that will not be retried, with why.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub id: String,
    pub channel: Channel,
    pub recipient: String,
    pub kind: String,
    pub attempts: i64,
    pub last_error: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Default)]
pub struct OutboxSummary {
    pub pending: i64,
    /// When the oldest pending message was written: how long the backlog has been building.
    pub oldest_pending_at: Option<i64>,
    /// Pending messages that have failed at least once and wait for their next try.
    pub retrying: i64,
    pub sent: i64,
    pub dead: i64,
    pub dead_letters: Vec<DeadLetter>,
}

/// A queued job: `kind` names the operation, `payload` is its JSON input.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub kind: String,
    pub payload: String,
    pub attempts: i64,
}

/// How long to wait before attempt `attempts + 1`, or `None` when it is time to give up:
/// 5 s, 10 s, 20 s ... capped at an hour, ten attempts in all (about four hours).
pub fn retry_delay(attempts: i64) -> Option<i64> {
    const MAX_ATTEMPTS: i64 = 10;
    if attempts >= MAX_ATTEMPTS {
        return None;
    }
    let exponent = attempts.clamp(1, 20) - 1;
    Some((5i64 << exponent).min(3600))
}

/// What outbox bodies are sealed for while they wait (the re-seal pass opens them with it).
pub const BODY_SEAL_PURPOSE: &str = "outbox-body";

#[cfg(test)]
mod tests {
    use super::retry_delay;

    #[test]
    fn backoff_grows_then_gives_up() {
        assert_eq!(retry_delay(1), Some(5));
        assert_eq!(retry_delay(2), Some(10));
        assert_eq!(retry_delay(3), Some(20));
        assert_eq!(retry_delay(9), Some(1280));
        assert_eq!(retry_delay(10), None);
    }
}
