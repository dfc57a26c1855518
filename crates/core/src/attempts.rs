//! One guess at a time per secret. Limits are read before a check and counted after it; a
//! burst of parallel guesses at one login, method or code would all pass the read before any
//! failure is counted. A striped lock per key makes guesses at the same secret take turns in
//! this process, so each sees the failures before it. Across replicas, a burst is bounded to
//! one guess in flight per replica; single-use codes are also claimed in the database.

use tokio::sync::{Mutex, MutexGuard};

const STRIPES: usize = 64;

pub struct AttemptLocks {
    stripes: Vec<Mutex<()>>,
}

impl Default for AttemptLocks {
    fn default() -> Self {
        Self { stripes: (0..STRIPES).map(|_| Mutex::new(())).collect() }
    }
}

impl std::fmt::Debug for AttemptLocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AttemptLocks")
    }
}

impl AttemptLocks {
    /// Waits for the turn of `key` (keys that share a stripe wait for each other too, which
    /// only costs a little latency).
    pub async fn turn(&self, key: &str) -> MutexGuard<'_, ()> {
        // FNV-1a: stable and cheap; the key is not attacker-chosen in a way that matters here,
        // since a collision only makes two keys take turns.
        let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        let index = (hash % STRIPES as u64) as usize;
        match self.stripes.get(index) {
            Some(stripe) => stripe.lock().await,
            None => self.stripes[0].lock().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn guesses_at_one_key_take_turns() {
        let locks = Arc::new(AttemptLocks::default());
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (locks, inside, most) = (locks.clone(), inside.clone(), most.clone());
                tokio::spawn(async move {
                    let _turn = locks.turn("login:maria").await;
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task");
        }
        assert_eq!(most.load(Ordering::SeqCst), 1);
    }
}
