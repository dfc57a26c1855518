//! A bounded memo of what this process saw lately (issue 12): a cache, never state. A replica
//! that restarts, or never saw a key, answers as if it had not been seen, so nothing that must
//! hold across replicas may depend on it.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};

/// Keys per generation: two generations bound a memo whatever a flood brings, and a full
/// generation becomes the older one, so a key stays known for at least this many newer ones.
const GENERATION_SIZE: usize = 32_768;

#[derive(Debug)]
pub(crate) struct Memo<K, V>(Mutex<Generations<K, V>>);

#[derive(Debug)]
struct Generations<K, V> {
    current: HashMap<K, V>,
    previous: HashMap<K, V>,
}

impl<K, V> Default for Memo<K, V> {
    fn default() -> Self {
        Self(Mutex::new(Generations { current: HashMap::new(), previous: HashMap::new() }))
    }
}

impl<K: Hash + Eq, V: Copy> Memo<K, V> {
    /// What was noted for `key`, if it is still known.
    pub(crate) fn get(&self, key: &K) -> Option<V> {
        let generations = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        generations.current.get(key).or_else(|| generations.previous.get(key)).copied()
    }

    pub(crate) fn insert(&self, key: K, value: V) {
        let mut generations = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if generations.current.len() >= GENERATION_SIZE {
            generations.previous = std::mem::take(&mut generations.current);
        }
        generations.current.insert(key, value);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        let generations = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        generations.current.len() + generations.previous.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memo_stays_bounded_and_forgets_the_oldest_generation() {
        let memo = Memo::<u128, ()>::default();
        let total = 2 * GENERATION_SIZE + 10;
        for n in 0..total {
            memo.insert(n as u128, ());
        }
        assert!(memo.len() <= 2 * GENERATION_SIZE);
        assert!(memo.get(&((total - 1) as u128)).is_some(), "the newest is kept");
        assert!(memo.get(&0).is_none(), "the oldest is forgotten");
    }

    #[test]
    fn a_key_noted_again_answers_its_latest_value() {
        let memo = Memo::<&str, i64>::default();
        assert_eq!(memo.get(&"a"), None);
        memo.insert("a", 1);
        memo.insert("a", 2);
        assert_eq!(memo.get(&"a"), Some(2));
    }
}
