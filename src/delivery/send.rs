//! What every channel's transport answers, and how long it may take.

use std::time::Duration;

/// The longest one SMTP command may take (connecting included).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(20);
/// The longest a whole send may take, however many commands it needs.
pub const SEND_DEADLINE: Duration = Duration::from_secs(40);

/// Why a message was not sent. The text is for operators (the outbox's `last_error`, the
/// log, the audit log): it never holds the message's body.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Retrying cannot help: an address that does not parse, a recipient the server refuses.
    #[error("{0}")]
    Permanent(String),
    /// Worth trying again later: the server is down, busy or slow.
    #[error("{0}")]
    Transient(String),
}

impl SendError {
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Permanent(_))
    }
}
