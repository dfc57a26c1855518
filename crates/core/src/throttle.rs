//! Failed-login throttling (checklist S3.1-S3.3). Every failure is counted under several
//! keys; each key has its own rule. Counts live in storage so that every replica sees them.
//!
//! - per client IP and login together: growing delays after 5 failures, so an attacker
//!   guessing one account from one address slows down fast while the owner, on another
//!   address, is not affected;
//! - per login, from anywhere: at most 100 consecutive failures, then a one-hour cool-down
//!   (NIST's cap), which is the only lock an attacker can cause and it ends by itself;
//! - per client IP and per subnet: a budget per 15 minutes against password spraying and
//!   credential stuffing across many accounts.
//!
//! - per account, whichever alias (username or email) is typed: the same 100-failure budget,
//!   so that typing the other alias buys no extra guesses (S3.9);
//! - per trusted device (a browser that signed in to the account before): its own budget of
//!   10, exempt from all of the above, so that a flood from elsewhere cannot lock the owner out.
//!
//! Only the typed login's own key ever answers "too many attempts": a spent account budget
//! answers like a wrong password, so a 429 never links two aliases (S2.1, S3.9).
//!
//! Every guess is counted before its secret is compared, in one database transaction that
//! also checks the limits (S3.7, S3.8): see `ThrottleStore::claim_attempt` in the store module.

use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleRule {
    /// Growing delay: after `free` failures, wait 2^(n-free+1) s, at most `max_delay`.
    GrowingDelay { free: i64, max_delay: i64, window: i64 },
    /// At most `limit` failures per `window` seconds; then blocked until `cooldown` after the last.
    Budget { limit: i64, window: i64, cooldown: i64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleKey {
    pub key: String,
    pub rule: ThrottleRule,
}

impl ThrottleKey {
    pub fn window(&self) -> i64 {
        match self.rule {
            ThrottleRule::GrowingDelay { window, .. } | ThrottleRule::Budget { window, .. } => window,
        }
    }
}

/// Why an attempt was refused: every key that refused it, and until when (the latest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub keys: Vec<String>,
    pub until: i64,
}

/// What storage holds for one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventCount {
    pub failures: i64,
    pub window_start: i64,
    pub last_failure: i64,
}

impl ThrottleRule {
    /// The time before which another attempt is refused, if any.
    pub fn blocked_until(&self, count: &EventCount, now: i64) -> Option<i64> {
        let until = match *self {
            ThrottleRule::GrowingDelay { free, max_delay, window } => {
                if now - count.window_start >= window || count.failures < free {
                    return None;
                }
                let exponent = (count.failures - free + 1).min(20) as u32;
                count.last_failure + (1i64 << exponent).min(max_delay)
            }
            ThrottleRule::Budget { limit, window, cooldown } => {
                if now - count.window_start >= window || count.failures < limit {
                    return None;
                }
                count.last_failure + cooldown
            }
        };
        (until > now).then_some(until)
    }
}

/// Whether an attempt counted under `keys` is refused, given what storage holds for each key
/// (`count_of`; a key it holds nothing for refuses nothing): every key over its limit, until
/// the latest of their times. Keys are named in sorted order.
pub fn refusal<'a>(
    keys: impl IntoIterator<Item = &'a ThrottleKey>,
    count_of: impl Fn(&str) -> Option<EventCount>,
    now: i64,
) -> Option<Refusal> {
    let mut refusal: Option<Refusal> = None;
    for key in keys {
        let Some(until) = count_of(&key.key).and_then(|count| key.rule.blocked_until(&count, now)) else { continue };
        let refusal = refusal.get_or_insert(Refusal { keys: Vec::new(), until });
        if !refusal.keys.contains(&key.key) {
            refusal.keys.push(key.key.clone());
        }
        refusal.until = refusal.until.max(until);
    }
    if let Some(refusal) = &mut refusal {
        refusal.keys.sort();
    }
    refusal
}

/// The address as limits see it: IPv4 in full, IPv6 by its /64, since one subscriber gets a
/// whole /64 and could otherwise rotate through it.
pub fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

const DAY: i64 = 24 * 60 * 60;
const HOUR: i64 = 60 * 60;

/// The counter name of a login as typed (already case-folded by `LoginIdentifier`).
pub fn login_key(login: &str) -> String {
    format!("login:{login}")
}

/// The cap on one typed login's failures from anywhere: 100 a day, then an hour's
/// cool-down (S3.1). Answers 429 when spent.
pub fn login_cap(login: &str) -> ThrottleKey {
    ThrottleKey { key: login_key(login), rule: ThrottleRule::Budget { limit: 100, window: DAY, cooldown: HOUR } }
}

/// What [`account_cap`]'s key is the account's id after.
pub const ACCOUNT_KEY_PREFIX: &str = "account:";

/// The account's own budget, shared by every alias and every way of checking one of its
/// secrets (login, step-up, password change, second step): 100 a day, then an hour (S3.9).
pub fn account_cap(account: &crate::account::AccountId) -> ThrottleKey {
    ThrottleKey { key: format!("{ACCOUNT_KEY_PREFIX}{account}"), rule: ThrottleRule::Budget { limit: 100, window: DAY, cooldown: HOUR } }
}

/// A trusted device's own budget (S3.9): 10 failures a day, then an hour. Once spent, the
/// device is treated like any other browser.
pub fn device_cap(device_hash: &str) -> ThrottleKey {
    ThrottleKey { key: format!("device:{device_hash}"), rule: ThrottleRule::Budget { limit: 10, window: DAY, cooldown: HOUR } }
}

/// The network an address belongs to, as limits on many addresses at once see it: an IPv4
/// /24, an IPv6 /48 (one site's allocation).
pub fn network_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

/// The keys a login attempt is counted under.
pub fn login_keys(login: &str, ip: IpAddr) -> Vec<ThrottleKey> {
    let subnet = network_key(ip);
    const QUARTER_HOUR: i64 = 15 * 60;
    let ip = address_key(ip);
    vec![
        ThrottleKey {
            key: format!("ip+login:{ip}:{login}"),
            rule: ThrottleRule::GrowingDelay { free: 5, max_delay: 15 * 60, window: DAY },
        },
        login_cap(login),
        ThrottleKey { key: format!("ip:{ip}"), rule: ThrottleRule::Budget { limit: 50, window: QUARTER_HOUR, cooldown: QUARTER_HOUR } },
        ThrottleKey {
            key: format!("subnet:{subnet}"),
            rule: ThrottleRule::Budget { limit: 200, window: QUARTER_HOUR, cooldown: QUARTER_HOUR },
        },
    ]
}

/// What a success does to the keys its attempt was counted under: the owner's own delays
/// and budgets are cleared; the address budgets only take back the one attempt, since they
/// count failures (keys cleared, keys released).
pub fn settle_success(keys: &[ThrottleKey]) -> (Vec<String>, Vec<String>) {
    let clears = |k: &&ThrottleKey| ["ip+login:", "login:", "account:", "device:", "factor:"].iter().any(|p| k.key.starts_with(p));
    let cleared = keys.iter().filter(clears).map(|k| k.key.clone()).collect();
    let released = keys.iter().filter(|k| !clears(k)).map(|k| k.key.clone()).collect();
    (cleared, released)
}

/// The throttle refusals this process gave lately (issue 12), by key: a hint of the order a
/// login's work is done in, never its answer. A login takes its place in the hashing queue
/// before its first read, so that a refusal for overload is answered at once instead of after
/// a read that waits for the database; a login whose keys were refused lately reads first and
/// takes a place only if the limits let it through, so that a flood of throttled guesses never
/// holds places that other people's logins need. A key this process has not seen refused only
/// holds a place for one read. Keys are kept as a keyed 64-bit hash, so the memo holds no login.
#[derive(Debug, Default)]
pub struct RecentRefusals {
    until: crate::memo::Memo<u64, i64>,
    hashing: std::hash::RandomState,
}

impl RecentRefusals {
    fn id(&self, key: &str) -> u64 {
        std::hash::BuildHasher::hash_one(&self.hashing, key)
    }

    /// Notes every key of `refusal` as refused until its time.
    pub fn note(&self, refusal: &Refusal) {
        for key in &refusal.keys {
            self.until.insert(self.id(key), refusal.until);
        }
    }

    /// Whether one of `keys` was refused here until after `now`.
    pub fn any_refused(&self, keys: &[ThrottleKey], now: i64) -> bool {
        keys.iter().any(|key| self.until.get(&self.id(&key.key)).is_some_and(|until| until > now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(failures: i64, window_start: i64, last_failure: i64) -> EventCount {
        EventCount { failures, window_start, last_failure }
    }

    #[test]
    fn delays_grow_after_five_failures_and_are_capped() {
        // S3.2
        let rule = ThrottleRule::GrowingDelay { free: 5, max_delay: 900, window: 86_400 };
        assert_eq!(rule.blocked_until(&count(4, 0, 100), 100), None);
        assert_eq!(rule.blocked_until(&count(5, 0, 100), 100), Some(102));
        assert_eq!(rule.blocked_until(&count(6, 0, 100), 100), Some(104));
        assert_eq!(rule.blocked_until(&count(50, 0, 100), 100), Some(1000));
        assert_eq!(rule.blocked_until(&count(6, 0, 100), 104), None);
    }

    #[test]
    fn the_account_cap_is_a_cool_down_not_a_permanent_lock() {
        // S3.1, S3.3: at most 100 failures, then an hour's wait that ends by itself.
        let rule = login_cap("maria").rule;
        assert_eq!(rule.blocked_until(&count(99, 0, 500), 500), None);
        assert_eq!(rule.blocked_until(&count(100, 0, 500), 500), Some(4100));
        assert_eq!(rule.blocked_until(&count(100, 0, 500), 4100), None);
    }

    #[test]
    fn subnets_group_neighbours() {
        let keys = login_keys("maria", "203.0.113.7".parse().expect("ip"));
        assert!(keys.iter().any(|k| k.key == "subnet:203.0.113.0/24"));
        let keys = login_keys("maria", "2001:db8:1:2::9".parse().expect("ip"));
        assert!(keys.iter().any(|k| k.key == "subnet:2001:db8:1::/48"));
        assert!(keys.iter().any(|k| k.key == "ip:2001:db8:1:2::/64"), "IPv6 by its /64");
        let (cleared, released) = settle_success(&keys);
        assert_eq!(cleared, vec!["ip+login:2001:db8:1:2::/64:maria".to_owned(), "login:maria".to_owned()]);
        assert_eq!(released.len(), 2, "address budgets count failures only");
    }

    #[test]
    fn a_refusal_names_every_key_over_its_limit_and_waits_for_the_latest() {
        let keys = login_keys("maria", "203.0.113.7".parse().expect("ip"));
        let held = |key: &str| match key {
            "login:maria" => Some(count(100, 0, 500)),
            "ip+login:203.0.113.7:maria" => Some(count(6, 0, 500)),
            "ip:203.0.113.7" => Some(count(3, 0, 500)),
            _ => None,
        };
        let refused = refusal(&keys, held, 500).expect("refused");
        assert_eq!(refused.keys, vec!["ip+login:203.0.113.7:maria".to_owned(), "login:maria".to_owned()]);
        assert_eq!(refused.until, 4100, "the hour's cool-down outlasts the 4 s delay");
        assert_eq!(refusal(&keys, |_| None, 500), None, "a key with no count refuses nothing");
    }

    #[test]
    fn a_refused_key_is_recalled_until_its_time() {
        let recent = RecentRefusals::default();
        let keys = login_keys("maria", "192.0.2.7".parse().expect("ip"));
        assert!(!recent.any_refused(&keys, 100));
        recent.note(&Refusal { keys: vec!["ip:192.0.2.7".to_owned()], until: 200 });
        assert!(recent.any_refused(&keys, 100));
        assert!(!recent.any_refused(&keys, 200), "over at its time");
        let elsewhere = login_keys("maria", "198.51.100.1".parse().expect("ip"));
        assert!(!recent.any_refused(&elsewhere, 100), "another address is not hinted");
    }
}
