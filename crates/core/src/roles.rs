//! Roles granted to accounts: `admin` opens the `/admin` pages (help articles and banners)
//! and, like `support`, the support console (`/support`, issue 11 §6). Granted and revoked
//! on the command line, and audited.

use crate::account::{AccountId, LoginIdentifier};
use crate::audit::{AuditEvent, RequestContext};
use crate::deps::Deps;
use crate::store::StoreError;
use async_trait::async_trait;
use std::sync::Arc;

crate::storage_trait! {
    /// The storage `Roles` reads and writes.
    pub trait RolesStorage: crate::store::AccountStore, RoleStore
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Admin,
    Support,
}

impl Role {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "admin" => Some(Self::Admin),
            "support" => Some(Self::Support),
            _ => None,
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Support => "support",
        }
    }
}

#[async_trait]
pub trait RoleStore: Send + Sync {
    /// Grants a role; `false` when the account already had it.
    async fn grant_role(&self, account: &AccountId, role: Role, now: i64) -> Result<bool, StoreError>;
    /// Takes a role away; `false` when the account did not have it.
    async fn revoke_role(&self, account: &AccountId, role: Role) -> Result<bool, StoreError>;
    async fn roles_of(&self, account: &AccountId) -> Result<Vec<Role>, StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum RoleError {
    #[error("There is no account with that username or email.")]
    UnknownAccount,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Granting and revoking roles (command line), and checking them (admin pages).
#[derive(Debug, Clone)]
pub struct Roles {
    deps: Deps,
    store: Arc<dyn RolesStorage>,
}

impl Roles {
    pub fn new(deps: Deps, store: Arc<dyn RolesStorage>) -> Self {
        Self { store, deps }
    }

    pub async fn has_role(&self, account: &AccountId, role: Role) -> Result<bool, StoreError> {
        Ok(self.store.roles_of(account).await?.contains(&role))
    }

    /// Grants (`grant = true`) or revokes a role of the account named by username or email;
    /// returns whether anything changed.
    pub async fn set_role(&self, login: &str, role: Role, grant: bool, ctx: &RequestContext) -> Result<bool, RoleError> {
        let identifier = LoginIdentifier::new(login);
        let (account, _) = self.store.find_for_login(identifier.key()).await?.ok_or(RoleError::UnknownAccount)?;
        let changed = if grant {
            self.store.grant_role(&account.id, role, self.deps.clock.unix()).await?
        } else {
            self.store.revoke_role(&account.id, role).await?
        };
        if changed {
            let event = if grant { AuditEvent::RoleGranted } else { AuditEvent::RoleRevoked };
            self.deps.audit(event, Some(&account.id), ctx, role.as_str()).await?;
        }
        Ok(changed)
    }
}
