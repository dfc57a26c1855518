//! What the domain needs from storage. One implementation per backend lives in the server
//! crate; the domain never sees SQL.

use crate::account::{Account, AccountId, Country, EmailAddress, UserType, Username};
use crate::audit::AuditRecord;
use crate::outbox::{ClaimedMessage, Job, NewMessage, OutboxSummary};
use crate::recovery::{NewRecoveryToken, PasswordResetCompletion, Purpose, ResetIssue, ValidToken};
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

#[async_trait]
pub trait AccountStore: Send + Sync {
    async fn insert_account(&self, account: NewAccount) -> Result<Account, StoreError>;
    /// By case-folded username or email.
    async fn find_for_login(&self, login_key: &str) -> Result<Option<(Account, String)>, StoreError>;
    async fn get_account(&self, id: &AccountId) -> Result<Option<Account>, StoreError>;
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
}

#[async_trait]
pub trait ThrottleStore: Send + Sync {
    async fn event_counts(&self, keys: &[String]) -> Result<Vec<(String, EventCount)>, StoreError>;
    /// Count, then compare (S3.7, S3.8): atomically, either refuses because one of `keys` is
    /// over its limit (counting nothing), or counts one attempt under every key. Called
    /// before a secret is compared; of parallel attempts on any number of replicas, none is
    /// admitted past a limit.
    async fn claim_attempt(&self, keys: &[ThrottleKey], now: i64) -> Result<Option<Refusal>, StoreError>;
    /// Counts one attempt under `key` whatever its count, in one statement, and returns the
    /// new count (a new window starts where the old one is over).
    async fn count_attempt(&self, key: &ThrottleKey, now: i64) -> Result<i64, StoreError>;
    /// Takes back one counted attempt under each key (a success that budgets do not count).
    async fn release_attempt(&self, keys: &[String]) -> Result<(), StoreError>;
    async fn clear_events(&self, keys: &[String]) -> Result<(), StoreError>;
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn append_audit(&self, record: &AuditRecord) -> Result<(), StoreError>;
    async fn audit_of(&self, account: &AccountId, limit: i64) -> Result<Vec<AuditRecord>, StoreError>;
    /// The newest sealed event's id and seal.
    async fn last_sealed_audit(&self) -> Result<Option<(i64, String)>, StoreError>;
    /// Unsealed events after `after_id` and older than `before`, in id order.
    async fn unsealed_audit(&self, after_id: i64, before: i64, limit: i64) -> Result<Vec<crate::audit_chain::ChainedEvent>, StoreError>;
    async fn seal_audit(&self, id: i64, chain_hash: &str) -> Result<(), StoreError>;
    /// Every event after `after_id`, sealed or not, in id order.
    async fn audit_events_after(&self, after_id: i64, limit: i64) -> Result<Vec<crate::audit_chain::ChainedEvent>, StoreError>;
    async fn count_unsealed_audit(&self) -> Result<u64, StoreError>;
    /// The smallest event id left, if any.
    async fn first_audit_id(&self) -> Result<Option<i64>, StoreError>;
    /// The id of the newest event (by time) before `at`.
    async fn newest_audit_id_before(&self, at: i64) -> Result<Option<i64>, StoreError>;
    async fn audit_event(&self, id: i64) -> Result<Option<crate::audit_chain::ChainedEvent>, StoreError>;
    /// Records a checkpoint; one already there for its event is kept.
    async fn insert_audit_checkpoint(&self, checkpoint: &crate::audit_chain::AuditCheckpoint) -> Result<(), StoreError>;
    /// The newest checkpoint of an event before `first_event` (or the newest of all when `None`).
    async fn audit_checkpoint_before(&self, first_event: Option<i64>) -> Result<Option<crate::audit_chain::AuditCheckpoint>, StoreError>;
    /// Deletes up to `limit` events with ids up to `through`, oldest first; returns how many.
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
    /// Marks a message sent and erases its body, which may hold a link with a token.
    async fn mark_sent(&self, id: &str, now: i64) -> Result<(), StoreError>;
    /// Records a failed attempt: retried at `retry_at`, or dead-lettered when `None`.
    async fn mark_failed(&self, id: &str, error: &str, retry_at: Option<i64>) -> Result<(), StoreError>;
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

#[async_trait]
pub trait RecoveryStore: Send + Sync {
    /// In one transaction: voids the account's unused tokens of the same purpose (S1.6),
    /// stores the new token's hash and writes the message that carries it.
    async fn issue_recovery_token(&self, token: &NewRecoveryToken, message: &NewMessage) -> Result<(), StoreError>;
    /// In one transaction, for a "forgot password" job: nothing when a token with `token`'s id
    /// exists (the job ran before a crash and is run again); else counts one attempt under
    /// `limits` (refusing when one is spent, counting nothing), then does what
    /// [`issue_recovery_token`](Self::issue_recovery_token) does. A crash anywhere leaves
    /// either all of it or none: a job run twice neither counts twice nor emails twice.
    async fn issue_reset_within_limits(
        &self,
        limits: &[ThrottleKey],
        now: i64,
        token: &NewRecoveryToken,
        message: &NewMessage,
    ) -> Result<ResetIssue, StoreError>;
    /// In one transaction: voids the account's unused tokens of `replacing`'s purpose and
    /// stores it (when given), stores each of `adding` beside what exists (report links are
    /// voided by nothing but their own use or expiry), and writes the message that carries them.
    async fn issue_tokens(
        &self,
        replacing: Option<&NewRecoveryToken>,
        adding: &[NewRecoveryToken],
        message: &NewMessage,
    ) -> Result<(), StoreError>;
    /// Spends a live token by its id, once: exactly one of concurrent redemptions wins.
    async fn redeem_token(&self, purpose: Purpose, id: &str, now: i64) -> Result<bool, StoreError>;
    async fn find_valid_token(&self, purpose: Purpose, token_hash: &str, now: i64) -> Result<Option<ValidToken>, StoreError>;
    /// A live token by its id (a reset continued after its emailed code was verified).
    async fn find_valid_token_by_id(&self, purpose: Purpose, id: &str, now: i64) -> Result<Option<ValidToken>, StoreError>;
    /// The newest live password-reset token of the account a login names, in one query
    /// whether or not the account exists (S2.5: reset by code does the same work for all).
    async fn reset_code_target(&self, login_key: &str, now: i64) -> Result<Option<ValidToken>, StoreError>;
    /// In one transaction: sets the password, voids every reset link, ends every session but
    /// `keep_session`, and writes the notice. Returns how many sessions ended.
    async fn change_password(
        &self,
        account: &AccountId,
        password_hash: &str,
        keep_session: &str,
        notice: &NewMessage,
        now: i64,
    ) -> Result<u64, StoreError>;
    /// When the account's newest token of a purpose was issued, if any.
    async fn last_token_issued_at(&self, account: &AccountId, purpose: Purpose) -> Result<Option<i64>, StoreError>;
    /// In one transaction: redeems the token (exactly one of concurrent redemptions wins,
    /// S1.4), sets the password, voids every other reset token (S1.6), ends every session
    /// (S1.11), clears the login throttles, issues the "this wasn't me" token and writes the
    /// confirmation. `None` when the token could no longer be redeemed; else sessions ended.
    async fn complete_password_reset(&self, completion: &PasswordResetCompletion) -> Result<Option<u64>, StoreError>;
}

#[async_trait]
pub trait Store:
    AccountStore
    + SessionStore
    + ThrottleStore
    + AuditStore
    + OutboxStore
    + JobStore
    + RecoveryStore
    + crate::roles::RoleStore
    + crate::content::ContentStore
    + crate::factors::FactorStore
    + crate::approval::ApprovalStore
    + crate::payments::WithdrawalStore
    + crate::email_change::EmailChangeStore
    + crate::delivery_failures::DeliveryFailureStore
    + crate::trusted_device::DeviceStore
    + crate::compromise::CompromiseStore
    + crate::two_step_reset::TwoStepResetStore
    + crate::activity::ActivityStore
    + crate::recovery_request::RecoveryRequestStore
    + crate::support::SupportStore
    + crate::support_actions::SupportActionStore
    + crate::retention::RetentionStore
    + crate::breached::FailOpenStore
    + std::fmt::Debug
{
    /// Is the database reachable (readiness).
    async fn ping(&self) -> Result<(), StoreError>;
}
