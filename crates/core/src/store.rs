//! What the domain needs from storage. One implementation per backend lives in the server
//! crate; the domain never sees SQL.

use crate::account::{Account, AccountId, Country, EmailAddress, UserType, Username};
use crate::audit::AuditRecord;
use crate::session::SessionRecord;
use crate::throttle::{FailureCount, ThrottleKey};
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
    /// Removes sessions idle since `idle_before` or created before `created_before`.
    async fn purge_sessions(&self, idle_before: i64, created_before: i64) -> Result<u64, StoreError>;
}

#[async_trait]
pub trait ThrottleStore: Send + Sync {
    async fn failure_counts(&self, keys: &[String]) -> Result<Vec<(String, FailureCount)>, StoreError>;
    /// Counts one failure under each key, starting a new window where the old one is over.
    async fn record_failure(&self, keys: &[ThrottleKey], now: i64) -> Result<(), StoreError>;
    async fn clear_failures(&self, keys: &[String]) -> Result<(), StoreError>;
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn append_audit(&self, record: &AuditRecord) -> Result<(), StoreError>;
    async fn audit_of(&self, account: &AccountId, limit: i64) -> Result<Vec<AuditRecord>, StoreError>;
}

#[async_trait]
pub trait Store: AccountStore + SessionStore + ThrottleStore + AuditStore + std::fmt::Debug {
    /// Is the database reachable (readiness).
    async fn ping(&self) -> Result<(), StoreError>;
}
