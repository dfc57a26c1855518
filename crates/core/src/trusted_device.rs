//! Trusted devices (checklist S3.9, OWASP's device cookies): a browser that completed a full
//! sign-in to an account gets a long-lived cookie for that account. Its password attempts
//! have their own small budget, exempt from the account and address budgets, so that a
//! flood of guesses from elsewhere cannot lock the owner out. Only a keyed hash of the
//! cookie is stored; it is rotated at each full sign-in and revoked by a password reset, a
//! password change and "sign out everywhere".

use crate::account::AccountId;
use crate::keyring::Keyring;
use crate::store::StoreError;
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

/// How long a device stays trusted without a new sign-in.
pub const DEVICE_TTL_SECONDS: i64 = 180 * 24 * 3600;

/// The cookie's value. No `Debug` output of the secret.
pub struct DeviceToken(SecretString);

impl std::fmt::Debug for DeviceToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceToken(<redacted>)")
    }
}

impl DeviceToken {
    /// 256 bits from the OS CSPRNG.
    pub fn generate(keys: &Keyring) -> Self {
        Self(keys.new_token())
    }
    pub fn parse(raw: &str) -> Option<Self> {
        crate::keyring::token_shape(raw).then(|| Self(SecretString::from(raw.to_owned())))
    }
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
    pub fn storage_key(&self, keys: &Keyring) -> String {
        keys.token_hash("trusted-device", self.expose())
    }
}

/// A device cookie to set after a full sign-in: one cookie per (browser, account), so the
/// name carries a tag of the account that reveals nothing about it.
#[derive(Debug)]
pub struct NewDevice {
    pub token: DeviceToken,
    pub cookie_tag: String,
}

/// The tag that names an account's device cookie in a browser.
/// Under the root key, so that a rotation does not rename the cookie.
pub fn cookie_tag(keys: &Keyring, account: &AccountId) -> String {
    keys.stable_hash("trusted-device-cookie", account.as_str().as_bytes()).chars().take(16).collect()
}

#[async_trait]
pub trait DeviceStore: Send + Sync {
    /// Which of `id_hashes` is a live trusted device of the account, if any.
    async fn find_device(&self, account: &AccountId, id_hashes: &[String], now: i64) -> Result<Option<String>, StoreError>;
    /// Revokes every trusted device of the account; returns how many.
    async fn delete_devices_of(&self, account: &AccountId) -> Result<u64, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_tokens_are_long_and_parse_back() {
        let token = DeviceToken::generate(&crate::keyring::Keyring::single(crate::keys::ServerKey::generate()));
        assert_eq!(token.expose().len(), 43);
        assert!(DeviceToken::parse(token.expose()).is_some());
        assert!(DeviceToken::parse("short").is_none());
        assert!(!format!("{token:?}").contains(token.expose()));
    }

    #[test]
    fn cookie_tags_differ_by_account_and_key() {
        let key = crate::keyring::Keyring::single(crate::keys::ServerKey::generate());
        let a = AccountId::from_stored("a".into());
        let b = AccountId::from_stored("b".into());
        assert_ne!(cookie_tag(&key, &a), cookie_tag(&key, &b));
        assert_ne!(cookie_tag(&key, &a), cookie_tag(&crate::keyring::Keyring::single(crate::keys::ServerKey::generate()), &a));
        assert_eq!(cookie_tag(&key, &a).len(), 16);
    }
}
