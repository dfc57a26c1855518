//! Server-side sessions (checklist S7): a random 256-bit id in the cookie, only its keyed
//! hash in the database, idle and absolute timeouts decided here.

use crate::account::AccountId;
use crate::keyring::Keyring;
use secrecy::{ExposeSecret, SecretString};

/// The session id as the browser holds it. Never logged, never stored.
pub struct SessionToken(SecretString);

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

impl SessionToken {
    /// 32 bytes from the OS CSPRNG (S7.1).
    pub fn generate(keys: &Keyring) -> Self {
        Self(keys.new_token())
    }
    /// A value read from a cookie; anything that is not the shape we issue is refused here,
    /// so malformed cookies never reach storage.
    pub fn from_cookie(raw: &str) -> Option<Self> {
        crate::keyring::token_shape(raw).then(|| Self(SecretString::from(raw.to_owned())))
    }
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
    pub fn storage_key(&self, keys: &Keyring) -> String {
        keys.token_hash("session", self.expose())
    }
}

#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub idle_timeout_seconds: i64,
    pub absolute_timeout_seconds: i64,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self { idle_timeout_seconds: 30 * 60, absolute_timeout_seconds: 12 * 60 * 60 }
    }
}

/// How far a session has come: a password alone on an account with 2-step verification
/// gives a session that reaches nothing but the second step (S5.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStage {
    Full,
    SecondFactor,
}

impl SessionStage {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::SecondFactor => "second_factor",
        }
    }
    pub fn parse(s: &str) -> Self {
        if s == "full" { Self::Full } else { Self::SecondFactor }
    }
}

/// How long a half-signed-in session waits for its second step.
pub const SECOND_STEP_SECONDS: i64 = 10 * 60;

/// A stored session. `id_hash` is the keyed hash of the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id_hash: String,
    pub account_id: AccountId,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub ip: String,
    pub user_agent: String,
    pub stage: SessionStage,
    /// When the user last proved who they are (login or step-up), for the step-up window.
    pub verified_at: i64,
}

impl SessionPolicy {
    pub fn is_live(&self, session: &SessionRecord, now: i64) -> bool {
        let lifetime = match session.stage {
            SessionStage::Full => self.absolute_timeout_seconds,
            SessionStage::SecondFactor => SECOND_STEP_SECONDS,
        };
        now - session.last_seen_at < self.idle_timeout_seconds && now - session.created_at < lifetime
    }
    /// Whether to record activity now; at most once a minute, so that reading a page does
    /// not write to the database on every request.
    pub fn should_touch(&self, session: &SessionRecord, now: i64) -> bool {
        now - session.last_seen_at >= 60
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(created_at: i64, last_seen_at: i64) -> SessionRecord {
        SessionRecord {
            id_hash: "h".into(),
            account_id: AccountId::generate(),
            created_at,
            last_seen_at,
            ip: String::new(),
            user_agent: String::new(),
            stage: SessionStage::Full,
            verified_at: created_at,
        }
    }

    #[test]
    fn idle_and_absolute_timeouts() {
        // S7.4
        let policy = SessionPolicy::default();
        assert!(policy.is_live(&record(0, 0), 29 * 60));
        assert!(!policy.is_live(&record(0, 0), 30 * 60));
        assert!(policy.is_live(&record(0, 12 * 3600 - 100), 12 * 3600 - 1));
        assert!(!policy.is_live(&record(0, 12 * 3600 - 100), 12 * 3600));
    }

    #[test]
    fn a_half_signed_in_session_lasts_ten_minutes() {
        let policy = SessionPolicy::default();
        let half = SessionRecord { stage: SessionStage::SecondFactor, ..record(0, 0) };
        let half_later = SessionRecord { last_seen_at: 500, ..half.clone() };
        assert!(policy.is_live(&half_later, 599));
        assert!(!policy.is_live(&half_later, 600));
    }

    #[test]
    fn only_our_token_shape_is_read_from_cookies() {
        assert!(
            SessionToken::from_cookie(
                SessionToken::generate(&crate::keyring::Keyring::single(crate::keys::ServerKey::generate())).expose()
            )
            .is_some()
        );
        assert!(SessionToken::from_cookie("short").is_none());
        assert!(SessionToken::from_cookie(&"%".repeat(43)).is_none());
    }
}
