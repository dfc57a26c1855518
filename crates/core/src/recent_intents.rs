//! The forgot-password intents this process has queued, by merge window (issue 12).
//!
//! Repeats of "forgot password" for one login in one minute are merged into one job by the
//! database's unique coalesce key. Before, every repeat still cost a database round trip (and on
//! PostgreSQL a backend's CPU on the cores the server shares): a flood of repeats cost as much as
//! a flood of new logins. A repeat this process has queued already is now merged here, before the
//! database. The memo is a cache, not state: a replica that restarts or never saw a login asks
//! the database, whose key still merges across replicas. It holds no login, only a keyed hash's
//! first 128 bits with the window, so nothing here depends on whether an account exists (S2.3).

use crate::memo::Memo;

/// An intent's identity: its merge window and the first 128 bits of the login's keyed hash.
pub(crate) type IntentKey = (i64, u128);

/// Bounded to about 2 MiB whatever a flood asks for ([`crate::memo`]).
#[derive(Debug, Default)]
pub(crate) struct RecentIntents(Memo<IntentKey, ()>);

impl RecentIntents {
    /// The key of the intent for `login_hash` (hex) in `window`.
    pub(crate) fn key(window: i64, login_hash: &str) -> Option<IntentKey> {
        let prefix = login_hash.get(..32)?;
        u128::from_str_radix(prefix, 16).ok().map(|h| (window, h))
    }

    /// Whether this process has queued the intent already.
    pub(crate) fn seen(&self, key: IntentKey) -> bool {
        self.0.get(&key).is_some()
    }

    /// Notes an intent the database now holds (queued now, or merged there with another
    /// replica's).
    pub(crate) fn remember(&self, key: IntentKey) {
        self.0.insert(key, ());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_intent_is_seen_in_its_window_only() {
        let memo = RecentIntents::default();
        let hash = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let key = RecentIntents::key(7, hash).expect("a key");
        assert!(!memo.seen(key));
        memo.remember(key);
        assert!(memo.seen(key));
        assert!(!memo.seen(RecentIntents::key(8, hash).expect("a key")), "the next minute asks again");
        assert_eq!(RecentIntents::key(7, "not hex"), None);
    }
}
