//! The forgot-password intents this process has queued, by merge window (issue 12).
//!
//! Repeats of "forgot password" for one login in one minute are merged into one job by the
//! database's unique coalesce key. Before, every repeat still cost a database round trip (and on
//! PostgreSQL a backend's CPU on the cores the server shares): a flood of repeats cost as much as
//! a flood of new logins. A repeat this process has queued already is now merged here, before the
//! database. The memo is a cache, not state: a replica that restarts or never saw a login asks
//! the database, whose key still merges across replicas. It holds no login, only a keyed hash's
//! first 128 bits with the window, so nothing here depends on whether an account exists (S2.3).

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

/// Keys per generation: two generations bound the memo to about 2 MiB whatever a flood asks for,
/// and a full generation becomes the older one, so a key stays known for at least this many
/// newer ones.
const GENERATION_SIZE: usize = 32_768;

/// An intent's identity: its merge window and the first 128 bits of the login's keyed hash.
pub(crate) type IntentKey = (i64, u128);

#[derive(Debug, Default)]
pub(crate) struct RecentIntents(Mutex<Generations>);

#[derive(Debug, Default)]
struct Generations {
    current: HashSet<IntentKey>,
    previous: HashSet<IntentKey>,
}

impl RecentIntents {
    /// The key of the intent for `login_hash` (hex) in `window`.
    pub(crate) fn key(window: i64, login_hash: &str) -> Option<IntentKey> {
        let prefix = login_hash.get(..32)?;
        u128::from_str_radix(prefix, 16).ok().map(|h| (window, h))
    }

    /// Whether this process has queued the intent already.
    pub(crate) fn seen(&self, key: IntentKey) -> bool {
        let generations = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        generations.current.contains(&key) || generations.previous.contains(&key)
    }

    /// Notes an intent the database now holds (queued now, or merged there with another
    /// replica's).
    pub(crate) fn remember(&self, key: IntentKey) {
        let mut generations = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if generations.current.len() >= GENERATION_SIZE {
            generations.previous = std::mem::take(&mut generations.current);
        }
        generations.current.insert(key);
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

    #[test]
    fn the_memo_stays_bounded_and_forgets_the_oldest_generation() {
        let memo = RecentIntents::default();
        let total = 2 * GENERATION_SIZE + 10;
        for n in 0..total {
            memo.remember((0, n as u128));
        }
        let generations = memo.0.lock().expect("lock");
        assert!(generations.current.len() + generations.previous.len() <= 2 * GENERATION_SIZE);
        drop(generations);
        assert!(memo.seen((0, (total - 1) as u128)), "the newest is kept");
        assert!(!memo.seen((0, 0)), "the oldest is forgotten, and asks the database again");
    }
}
