//! What every feature service shares: storage, the clock, the server key, the password
//! hasher, the email composer and the public URL, with the few steps every feature takes
//! (audit, count-then-compare claims, settling a success). Cheap to clone.

use crate::account::AccountId;
use crate::audit::{AuditEvent, AuditRecord, RequestContext};
use crate::clock::Clock;
use crate::keyring::Keyring;
use crate::notice::Composer;
use crate::password::PasswordHasher;
use crate::store::{SharedStore, StoreError};
use crate::throttle::{ThrottleKey, settle_success};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Deps {
    pub store: Arc<dyn SharedStore>,
    pub clock: Arc<dyn Clock>,
    /// The keys every keyed hash, signature and seal is made under (see [`crate::keyring`]).
    pub keys: Keyring,
    pub hasher: PasswordHasher,
    /// Writes the content of every email from its templates.
    pub composer: Arc<dyn Composer>,
    /// The configured public URL, ending in '/': every emailed link starts with it (S1.7).
    pub base_url: String,
}

impl Deps {
    pub fn now(&self) -> i64 {
        self.clock.unix()
    }

    pub async fn audit(
        &self,
        event: AuditEvent,
        account: Option<&AccountId>,
        ctx: &RequestContext,
        detail: &str,
    ) -> Result<(), StoreError> {
        let record = AuditRecord::new(self.clock.unix(), event, account.cloned(), ctx, detail);
        self.store.append_audit(&record).await
    }

    /// Counts one attempt under `keys` before a secret is compared (S3.7, S3.8); the wait
    /// in seconds when one of them refuses.
    pub async fn claim(&self, keys: &[ThrottleKey]) -> Result<Option<i64>, StoreError> {
        let now = self.clock.unix();
        Ok(self.store.claim_attempt(keys, now).await?.map(|r| (r.until - now).max(1)))
    }

    /// A success: the owner's own counters are cleared and address budgets take the
    /// attempt back (they count failures).
    pub async fn settle(&self, keys: &[ThrottleKey]) -> Result<(), StoreError> {
        let (cleared, released) = settle_success(keys);
        self.store.settle_attempts(&cleared, &released).await
    }

    /// Is the database reachable (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }
}
