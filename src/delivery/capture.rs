//! The in-process route: messages are checked and built exactly as for SMTP, the dev outbox
//! or an SMS provider (so a message those would refuse fails here too), then kept in memory
//! for whoever holds the [`Captured`] handle. The integration tests run the real worker with
//! it and read what would have been sent; it never leaves the process.

use doorman_core::outbox::ClaimedMessage;
use std::sync::{Arc, Mutex, PoisonError};

/// The messages a capturing transport has sent, in the order it sent them.
#[derive(Debug, Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<ClaimedMessage>>>);

impl Captured {
    pub(super) fn push(&self, message: &ClaimedMessage) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push(message.clone());
    }

    /// Takes every message sent since the last call.
    pub fn take(&self) -> Vec<ClaimedMessage> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}
