//! What the domain needs from storage. One implementation per backend lives in the server
//! crate; the domain never sees SQL.

use crate::account::{Account, AccountId, Country, EmailAddress, UserType, Username};
use crate::audit::{AuditRecord, ChainedEvent};
use crate::outbox::{ClaimedMessage, Job, NewMessage, OutboxSummary};
use crate::session::SessionRecord;
use crate::throttle::{EventCount, Refusal, ThrottleKey};
use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("that username is already taken")]
    UsernameTaken,
    #[error("that email address is already in use")]
    EmailTaken,
    #[error("storage failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub struct NewAccount {
    pub id: AccountId,
    pub username: Username,
    pub email: EmailAddress,
    pub user_type: UserType,
    pub country: Country,
    pub password_hash: String,
    pub now: i64,
}

/// An account found by what was typed at login (with its password hash), and the counts
/// under some of the limits' keys, read together.
#[derive(Debug, Default)]
pub struct LoginLookup {
    pub found: Option<(Account, String)>,
    pub counts: Vec<(String, EventCount)>,
}

#[async_trait]
pub trait AccountStore: Send + Sync {
    async fn insert_account(&self, account: NewAccount) -> Result<Account, StoreError>;
    /// By case-folded username or email.
    async fn find_for_login(&self, login_key: &str) -> Result<Option<(Account, String)>, StoreError>;
    /// [`Self::find_for_login`], and in the same read what the rate limits hold now for
    /// `counter_keys` and for the found account's key (`account_key_prefix` and its id); a key
    /// with no row is left out. A login looks at its limits before it takes a place in the
    /// hashing queue (issue 12).
    async fn find_for_login_with_counts(
        &self,
        login_key: &str,
        counter_keys: &[&str],
        account_key_prefix: &str,
    ) -> Result<LoginLookup, StoreError>;
    async fn get_account(&self, id: &AccountId) -> Result<Option<Account>, StoreError>;
    /// [`Self::get_account`], or `None` while the account is locked (S7.7): what a session
    /// may act as.
    async fn get_unlocked_account(&self, id: &AccountId) -> Result<Option<Account>, StoreError>;
    async fn set_password_hash(&self, id: &AccountId, hash: &str, now: i64) -> Result<(), StoreError>;
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError>;
    async fn find_session(&self, id_hash: &str) -> Result<Option<SessionRecord>, StoreError>;
    async fn touch_session(&self, id_hash: &str, now: i64) -> Result<(), StoreError>;
    async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError>;
    /// Ends every session of an account (password reset, lock); returns how many.
    async fn delete_sessions_of(&self, account: &AccountId) -> Result<u64, StoreError>;
    async fn sessions_of(&self, account: &AccountId) -> Result<Vec<SessionRecord>, StoreError>;
    /// Ends one of the account's sessions, or all but `keep`; returns how many ended.
    async fn end_sessions_of(&self, account: &AccountId, only: Option<&str>, keep: Option<&str>) -> Result<u64, StoreError>;
    /// Removes sessions idle since `idle_before` or created before `created_before`.
    async fn purge_sessions(&self, idle_before: i64, created_before: i64) -> Result<u64, StoreError>;
    /// Replaces a session with a new one in one transaction (new id after the second step
    /// and at step-up, S7.2).
    async fn replace_session(&self, old_id_hash: &str, new: &SessionRecord) -> Result<(), StoreError>;
    /// Everything a sign-in writes once its proof is checked, in one transaction.
    async fn commit_sign_in(&self, writes: &crate::sign_in::SignInWrites) -> Result<(), StoreError>;
    /// What a password sign-in decides on once the password is right, in one read: whether
    /// the account is locked, the kinds of its confirmed 2-step methods, and whether it has
    /// signed in before.
    async fn sign_in_facts(&self, account: &AccountId) -> Result<crate::sign_in::SignInFacts, StoreError>;
}

#[async_trait]
pub trait ThrottleStore: Send + Sync {
    /// Count, then compare (S3.7, S3.8): atomically, either refuses because one of `keys` is
    /// over its limit (counting nothing), or counts one attempt under every key. Called
    /// before a secret is compared; of parallel attempts on any number of replicas, none is
    /// admitted past a limit.
    async fn claim_attempt(&self, keys: &[ThrottleKey], now: i64) -> Result<Option<Refusal>, StoreError>;
    /// [`ThrottleStore::claim_attempt`] for a caller that always commits another write before
    /// it answers an attempt it was let through for (a login writes its audit event, its
    /// settle or its sign-in): the count's commit need not wait for the disk, since that later
    /// commit writes it there too (a database writes its log in order). A crash can then lose
    /// only counts of attempts that were never answered (issue 12: one disk flush fewer per
    /// login, and the rows' locks, which parallel logins from one network share, are held for
    /// no flush).
    async fn claim_attempt_answered_after_a_write(&self, keys: &[ThrottleKey], now: i64) -> Result<Option<Refusal>, StoreError>;
    /// Counts one attempt under `key` whatever its count, in one statement, and returns the
    /// new count (a new window starts where the old one is over).
    async fn count_attempt(&self, key: &ThrottleKey, now: i64) -> Result<i64, StoreError>;
    /// Takes back one counted attempt under each key (a success that budgets do not count).
    async fn release_attempt(&self, keys: &[String]) -> Result<(), StoreError>;
    async fn clear_events(&self, keys: &[String]) -> Result<(), StoreError>;
    /// A success: clears the `cleared` keys and takes one attempt back under the
    /// `released` ones, together.
    async fn settle_attempts(&self, cleared: &[String], released: &[String]) -> Result<(), StoreError>;
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn append_audit(&self, record: &AuditRecord) -> Result<(), StoreError>;
    async fn audit_of(&self, account: &AccountId, limit: i64) -> Result<Vec<AuditRecord>, StoreError>;
    /// The newest sealed event's id and seal.
    async fn last_sealed_audit(&self) -> Result<Option<(i64, String)>, StoreError>;
    /// Unsealed events after `after_id` and older than `before`, in id order.
    async fn unsealed_audit(&self, after_id: i64, before: i64, limit: i64) -> Result<Vec<ChainedEvent>, StoreError>;
    /// Writes the seals of one batch (event id, chain hash) in one transaction.
    async fn seal_audit(&self, seals: &[(i64, String)]) -> Result<(), StoreError>;
    /// Every event after `after_id`, sealed or not, in id order.
    async fn audit_events_after(&self, after_id: i64, limit: i64) -> Result<Vec<ChainedEvent>, StoreError>;
    /// The smallest event id left, if any.
    async fn first_audit_id(&self) -> Result<Option<i64>, StoreError>;
    /// The id of the newest event (by time) before `at`.
    async fn newest_audit_id_before(&self, at: i64) -> Result<Option<i64>, StoreError>;
    async fn audit_event(&self, id: i64) -> Result<Option<crate::audit::ChainedEvent>, StoreError>;
    /// Records a checkpoint; one already there for its event is kept.
    async fn insert_audit_checkpoint(&self, checkpoint: &crate::audit::AuditCheckpoint) -> Result<(), StoreError>;
    /// The newest checkpoint of an event before `first_event` (or the newest of all when `None`).
    async fn audit_checkpoint_before(&self, first_event: Option<i64>) -> Result<Option<crate::audit::AuditCheckpoint>, StoreError>;
    /// Deletes up to `limit` events with ids up to `through`, oldest first, with their seals;
    /// returns how many events.
    async fn delete_audit_through(&self, through: i64, limit: i64) -> Result<u64, StoreError>;
    async fn delete_audit_checkpoints_before(&self, event_id: i64) -> Result<u64, StoreError>;
}

#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Writes a message on its own (most messages are written inside the transaction of
    /// the change that caused them, by that change's store method).
    async fn enqueue_message(&self, message: &NewMessage) -> Result<(), StoreError>;
    /// Takes up to `limit` due messages for `lease_seconds`; expired leases are taken over.
    async fn claim_messages(&self, worker: &str, now: i64, lease_seconds: i64, limit: i64) -> Result<Vec<ClaimedMessage>, StoreError>;
    async fn outbox_summary(&self, dead_letter_limit: i64) -> Result<OutboxSummary, StoreError>;
}

#[async_trait]
pub trait JobStore: Send + Sync {
    async fn enqueue_job(&self, kind: &str, payload: &str, now: i64) -> Result<(), StoreError>;
    /// Queues a job unless one with the same `coalesce_key` was ever queued: a repeat costs one
    /// insert that changes nothing.
    async fn enqueue_job_once(&self, kind: &str, payload: &str, coalesce_key: &str, now: i64) -> Result<(), StoreError>;
    async fn claim_jobs(&self, worker: &str, now: i64, lease_seconds: i64, limit: i64) -> Result<Vec<Job>, StoreError>;
    async fn complete_job(&self, id: &str) -> Result<(), StoreError>;
    /// Retried at `retry_at`, or kept as failed when `None`.
    async fn fail_job(&self, id: &str, error: &str, retry_at: Option<i64>) -> Result<(), StoreError>;
}

/// The storage every feature shares, through `Deps`. It names no feature: each feature
/// declares its own store traits in its own file, and a feature's service holds a handle
/// that combines the few it uses (wired in `services`).
#[async_trait]
pub trait SharedStore: AccountStore + SessionStore + ThrottleStore + AuditStore + OutboxStore + JobStore + std::fmt::Debug {
    /// Is the database reachable (readiness).
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Declares the storage a feature's service holds: one trait that combines the few store
/// traits the feature uses, implemented by every type that implements them. Keeps each
/// feature's needs in its own file, so this file names no feature.
#[macro_export]
macro_rules! storage_trait {
    ($(#[$meta:meta])* $vis:vis trait $name:ident: $($bound:path),+ $(,)?) => {
        $(#[$meta])*
        $vis trait $name: $($bound +)+ std::fmt::Debug + Send + Sync {}
        impl<T: $($bound +)+ std::fmt::Debug + Send + Sync + ?Sized> $name for T {}
    };
}
