//! Passwords: the NIST SP 800-63B policy (checklist S4) and argon2id hashing on a bounded
//! bounded set of hashing threads of its own, so that hashing never stalls the async runtime
//! (S4.7, S4.8).

// argon2 0.6 draws each 16-byte salt from the OS inside `hash_password` (getrandom).
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, PasswordHasher as _, PasswordVerifier as _, Version};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use tokio::sync::Semaphore;
use unicode_normalization::UnicodeNormalization;

mod threads;
use threads::HashingThreads;
pub use threads::WorkingMemory;

/// The longest password accepted, in code points: far above the 128 NIST asks us to
/// accept, low enough that hashing cost stays bounded (S4.8).
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// A password as the user typed it, NFKC-normalised. No truncation, no case folding (S4.2).
#[derive(Clone)]
pub struct Password(SecretString);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Password {
    /// Any input up to [`MAX_PASSWORD_CHARS`]; policy is a separate step, because a login
    /// must check whatever was set, while a new password must pass [`PasswordPolicy`].
    pub fn new(raw: &str) -> Result<Self, WeakPassword> {
        let normalised: String = raw.nfkc().collect();
        if normalised.chars().count() > MAX_PASSWORD_CHARS {
            return Err(WeakPassword::TooLong { max: MAX_PASSWORD_CHARS });
        }
        Ok(Self(SecretString::from(normalised)))
    }
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
    pub fn char_count(&self) -> usize {
        self.expose().chars().count()
    }
}

/// A new password at the edge: refused there only when it is too long, which no account's
/// rules can change; the rest of the policy needs the account ([`PasswordPolicy`]).
impl<'de> serde::Deserialize<'de> for Password {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let typed = crate::input::text(deserializer)?;
        Self::new(typed.expose_secret()).map_err(crate::input::refuse)
    }
}

/// A password typed to be checked against the one stored (login, step-up, the current
/// password of a change), taken from a request whatever its length: never refused at the
/// edge. One longer than any password can be ([`MAX_PASSWORD_CHARS`]) is not the password,
/// so it gets a wrong password's answer, never the "too long" a new password gets (S2.1); it
/// is answered before any account is looked up, so alike for every login (S2.5), and never
/// hashed (S4.8).
#[derive(Clone)]
pub struct PasswordAttempt(Option<Password>);

impl PasswordAttempt {
    pub fn new(raw: &str) -> Self {
        Self(Password::new(raw).ok())
    }
    /// The password to check; `None` when it is too long to be anyone's.
    pub fn password(&self) -> Option<&Password> {
        self.0.as_ref()
    }
}

impl std::fmt::Debug for PasswordAttempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordAttempt(<redacted>)")
    }
}

impl<'de> serde::Deserialize<'de> for PasswordAttempt {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::input::text(deserializer).map(|typed| Self::new(typed.expose_secret()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeakPassword {
    #[error("Use at least {min} characters. Long passphrases are easiest to remember.")]
    TooShort { min: usize },
    #[error("Use at most {max} characters.")]
    TooLong { max: usize },
    #[error("The password must not contain your username, your email address or the product name.")]
    ContainsPersonalInfo,
    #[error("This password is too common: it appears in lists attackers try first.")]
    Common,
    /// Seen in a data breach by the optional Pwned Passwords check (`breached.rs`).
    #[error("This password has appeared in a data breach, so attackers will try it. Choose another.")]
    Breached,
}

/// What a new password must satisfy. No composition rules, no expiry (S4.3).
#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    pub min_chars: usize,
    pub product_name: String,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self { min_chars: 12, product_name: "doorman".into() }
    }
}

impl PasswordPolicy {
    pub fn check(&self, password: &Password, personal: &[&str]) -> Result<(), WeakPassword> {
        if password.char_count() < self.min_chars {
            return Err(WeakPassword::TooShort { min: self.min_chars });
        }
        let folded = password.expose().to_lowercase();
        if is_common(&folded) {
            return Err(WeakPassword::Common);
        }
        let forbidden = personal.iter().copied().chain(std::iter::once(self.product_name.as_str()));
        if forbidden.map(str::to_lowercase).any(|word| word.chars().count() >= 3 && folded.contains(&word)) {
            return Err(WeakPassword::ContainsPersonalInfo);
        }
        Ok(())
    }
}

/// The shipped list of common and breached passwords (see data/README.md), loaded once.
static COMMON_PASSWORDS: std::sync::LazyLock<std::collections::HashSet<&'static str>> =
    std::sync::LazyLock::new(|| include_str!("../data/common-passwords.txt").lines().filter(|l| !l.is_empty()).collect());

/// Whether a (lower-cased) password is on the shipped list: one hash lookup.
pub fn is_common(folded: &str) -> bool {
    COMMON_PASSWORDS.contains(folded)
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing failed: {0}")]
    Argon2(String),
    #[error("the hashing threads are gone")]
    PoolClosed,
    #[error("could not start the password hashing threads: {0}")]
    Threads(String),
    /// Every hashing thread is busy and the queue in front of them is full: the caller is
    /// refused at once rather than left waiting behind a backlog (admission control).
    #[error("too many password checks at once")]
    Overloaded,
}

/// Jobs that may wait for a hashing thread, per thread, unless configured: with one
/// verification taking about 25 ms, a full queue adds about 100 ms.
pub const DEFAULT_QUEUE_PER_THREAD: usize = 4;

/// The result of checking a password against a stored hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// Correct, and the stored hash used older parameters: store this new hash instead.
    YesRehashed(String),
}

/// argon2id at OWASP's parameters (m=19456 KiB, t=2, p=1), run on hashing threads of its own
/// ([`threads`]: one per CPU, each with its working memory). `admitted` bounds the running and
/// the waiting jobs together. A job that finds the queue full is refused at once
/// ([`HashError::Overloaded`]): under overload, excess logins get a fast "try again" instead
/// of waiting without bound, and memory stays bounded.
#[derive(Clone, Debug)]
pub struct PasswordHasher {
    params: Params,
    admitted: Arc<Semaphore>,
    dummy_hash: Arc<str>,
    /// Each thread keeps argon2id's working memory (19 MiB at OWASP's parameters) for the
    /// next job instead of allocating and freeing it each time: glibc serves a freed block of
    /// that size from its heap afterwards and never gives it back, which made the process grow
    /// to 674-966 MB during a login run (issue 12, docs/BENCHMARKS.md).
    threads: HashingThreads,
}

/// A place in the hashing queue. A login takes it once the limits it read do not refuse (a
/// guess from a throttled address never holds one), and before its attempt is counted: with
/// none free nothing is counted, so a refusal for overload is not a guess.
#[derive(Debug)]
pub struct HashSlot(#[allow(dead_code, reason = "held, not read: dropping it frees the place")] tokio::sync::OwnedSemaphorePermit);

impl PasswordHasher {
    /// `concurrency` jobs run at once; at most `queue` more wait for a thread.
    pub fn new(memory_kib: u32, iterations: u32, parallelism: u32, concurrency: usize) -> Result<Self, HashError> {
        Self::with_queue(memory_kib, iterations, parallelism, concurrency, concurrency.max(1) * DEFAULT_QUEUE_PER_THREAD)
    }

    pub fn with_queue(memory_kib: u32, iterations: u32, parallelism: u32, concurrency: usize, queue: usize) -> Result<Self, HashError> {
        let params = Params::new(memory_kib, iterations, parallelism, None).map_err(|e| HashError::Argon2(e.to_string()))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        // Unknown accounts are verified against this hash so that they cost the same (S2.3).
        let dummy = argon
            .hash_password(crate::keys::random_token(16).expose_secret().as_bytes())
            .map_err(|e| HashError::Argon2(e.to_string()))?
            .to_string();
        let running = concurrency.max(1);
        let threads = HashingThreads::start(running, params.block_count()).map_err(|e| HashError::Threads(e.to_string()))?;
        Ok(Self { params, admitted: Arc::new(Semaphore::new(running + queue)), dummy_hash: dummy.into(), threads })
    }

    /// OWASP's argon2id parameters, with one hashing job per CPU and `queue` more waiting
    /// (`None`: [`DEFAULT_QUEUE_PER_THREAD`] per CPU).
    pub fn owasp(queue: Option<usize>) -> Result<Self, HashError> {
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Self::with_queue(19456, 2, 1, cpus, queue.unwrap_or(cpus * DEFAULT_QUEUE_PER_THREAD))
    }

    /// A place in the queue, or [`HashError::Overloaded`] at once when it is full.
    pub fn admit(&self) -> Result<HashSlot, HashError> {
        self.admitted.clone().try_acquire_owned().map(HashSlot).map_err(|e| match e {
            tokio::sync::TryAcquireError::NoPermits => HashError::Overloaded,
            tokio::sync::TryAcquireError::Closed => HashError::PoolClosed,
        })
    }

    /// [`HashError::Overloaded`] when the queue is full now: a check that costs nothing,
    /// for refusing before any other work. [`Self::admit`] still decides.
    pub fn has_room(&self) -> Result<(), HashError> {
        if self.admitted.available_permits() == 0 { Err(HashError::Overloaded) } else { Ok(()) }
    }

    fn argon(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// A PHC string of argon2id at the current parameters, with a fresh 16-byte salt, made in
    /// a hashing thread's working memory (as verifications are).
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let argon = self.argon();
        let params = self.params.clone();
        let secret = password.0.clone();
        self.run(self.admit()?, move |blocks| hash_reusing(&argon, &params, blocks, secret.expose_secret().as_bytes())).await
    }

    /// Checks `password` against `stored`, or against a dummy hash when there is no account,
    /// so that both paths cost one argon2id verification.
    pub async fn verify(&self, password: &Password, stored: Option<&str>) -> Result<Verified, HashError> {
        self.verify_in(self.admit()?, password, stored).await
    }

    /// [`Self::verify`] in a place taken earlier with [`Self::admit`].
    pub async fn verify_in(&self, slot: HashSlot, password: &Password, stored: Option<&str>) -> Result<Verified, HashError> {
        let is_real = stored.is_some();
        let stored: String = stored.map(str::to_owned).unwrap_or_else(|| self.dummy_hash.to_string());
        let argon = self.argon();
        let params = self.params.clone();
        let secret = password.0.clone();
        self.run(slot, move |blocks| {
            let parsed = PasswordHash::new(&stored).map_err(|e| HashError::Argon2(e.to_string()))?;
            let ok = verify_reusing(&argon, &params, blocks, secret.expose_secret().as_bytes(), &parsed);
            if !ok || !is_real {
                return Ok(Verified::No);
            }
            let current = Params::try_from(&parsed).ok();
            let outdated = parsed.algorithm.as_str() != "argon2id"
                || current.is_none_or(|p| p.m_cost() < params.m_cost() || p.t_cost() < params.t_cost() || p.p_cost() < params.p_cost());
            if !outdated {
                return Ok(Verified::Yes);
            }
            Ok(Verified::YesRehashed(hash_reusing(&argon, &params, blocks, secret.expose_secret().as_bytes())?))
        })
        .await
    }

    /// Runs `job` on a hashing thread; its place in the queue is freed when the job ends
    /// (also when the request that asked for it has gone away meanwhile).
    async fn run<T: Send + 'static>(
        &self,
        slot: HashSlot,
        job: impl FnOnce(&mut [Block]) -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        self.threads
            .run(move |blocks| {
                let result = job(blocks);
                drop(slot);
                result
            })
            .await
            .ok_or(HashError::PoolClosed)?
    }
}

/// How much lower than requests password hashing runs (a Linux nice value, per thread).
/// CPU time goes to the runtime's threads first: a login refused for overload, a banner or a
/// page is answered in milliseconds while every core hashes (issue 12's overload scenario), and
/// hashing still takes whatever CPU is left, all of it on an otherwise idle server. At 5 the
/// scheduler weighs a hashing thread about a third of a request thread, so a flood of cheap
/// requests slows logins down but cannot stop them.
pub const HASHING_NICE: i32 = 5;

/// A new hash of `password` at `params` in a hashing thread's working memory, as the PHC string
/// argon2's own `hash_password` writes (`$argon2id$v=19$m=..,t=..,p=..$salt$hash`, unpadded
/// standard base64, a 16-byte salt). Issue 13's soak: `hash_password` allocated its 19 MiB
/// each time, and glibc kept each freed block in the arena of the blocking thread that ran
/// it, so every new password (a reset, a change) could leave 19 MiB behind in the process.
fn hash_reusing(argon: &Argon2<'_>, params: &Params, blocks: &mut [Block], password: &[u8]) -> Result<String, HashError> {
    use base64::Engine as _;
    let salt = crate::keys::random_bytes(16);
    let mut out = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
    argon.hash_password_into_with_memory(password, &salt, &mut out, blocks).map_err(|e| HashError::Argon2(e.to_string()))?;
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    Ok(format!(
        "$argon2id$v={}$m={},t={},p={}${}${}",
        u32::from(Version::V0x13),
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        b64.encode(&salt),
        b64.encode(&out)
    ))
}

/// Checks `password` against `parsed`. A hash made with the current parameters (every one
/// doorman writes, and the dummy hash, so that known and unknown accounts still cost the same,
/// S2.3) is recomputed in the hashing thread's working memory; any other
/// goes through argon2's own check, which allocates its memory.
fn verify_reusing(argon: &Argon2<'_>, params: &Params, blocks: &mut [Block], password: &[u8], parsed: &PasswordHash) -> bool {
    let stored_params = Params::try_from(parsed).ok();
    let current = parsed.algorithm.as_str() == "argon2id"
        && parsed.version.is_some_and(|v| v == u32::from(Version::V0x13))
        && stored_params.is_some_and(|p| p.m_cost() == params.m_cost() && p.t_cost() == params.t_cost() && p.p_cost() == params.p_cost());
    let (Some(salt), Some(expected)) = (parsed.salt.as_ref(), parsed.hash.as_ref()) else { return false };
    if !current || expected.len() > 64 {
        return argon.verify_password(password, parsed).is_ok();
    }
    let mut out = [0u8; 64];
    let out = &mut out[..expected.len()];
    let computed = argon.hash_password_into_with_memory(password, salt.as_ref(), out, blocks).is_ok();
    computed && bool::from(subtle::ConstantTimeEq::ct_eq(&out[..], expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_frees_as_jobs_end() {
        // One thread, no waiting room: a second check while one holds its place is refused.
        let hasher = PasswordHasher::with_queue(1024, 1, 1, 1, 0).expect("hasher");
        let held = hasher.admit().expect("the first place");
        assert!(matches!(hasher.admit(), Err(HashError::Overloaded)));
        assert!(matches!(hasher.verify(&pw("some long passphrase"), None).await, Err(HashError::Overloaded)));
        assert_eq!(hasher.verify_in(held, &pw("some long passphrase"), None).await.expect("runs"), Verified::No);
        // The place came back with the finished job.
        assert!(hasher.admit().is_ok());
    }

    fn pw(s: &str) -> Password {
        Password::new(s).expect("test password")
    }

    #[test]
    fn length_is_counted_in_code_points_after_nfkc() {
        // S4.1: twelve emoji are twelve characters, not 48 bytes.
        let policy = PasswordPolicy::default();
        assert!(policy.check(&pw(&"🔑".repeat(12)), &[]).is_ok());
        assert_eq!(policy.check(&pw(&"🔑".repeat(11)), &[]), Err(WeakPassword::TooShort { min: 12 }));
        // The ligature "ﬁ" becomes "fi" under NFKC: two characters.
        assert_eq!(pw("ﬁ").char_count(), 2);
    }

    #[test]
    fn spaces_and_case_are_kept() {
        // S4.2: no truncation, no case folding.
        assert_ne!(pw("Correct Horse").expose(), pw("correct horse").expose());
        assert_eq!(pw(&"x".repeat(1024)).char_count(), 1024);
        assert!(Password::new(&"x".repeat(1025)).is_err());
    }

    #[test]
    fn personal_information_is_refused() {
        // S4.4
        let policy = PasswordPolicy::default();
        assert_eq!(policy.check(&pw("my name is MariaSantos!"), &["mariasantos"]), Err(WeakPassword::ContainsPersonalInfo));
        assert_eq!(policy.check(&pw("i love doorman so much"), &[]), Err(WeakPassword::ContainsPersonalInfo));
        assert!(policy.check(&pw("tulip harbour seventy"), &["mariasantos"]).is_ok());
    }

    #[test]
    fn common_passwords_are_refused_whatever_their_case() {
        // S4.4: the shipped list has 30,000 entries and is checked after NFKC and lower-casing.
        assert_eq!(COMMON_PASSWORDS.len(), 30_000);
        let policy = PasswordPolicy { min_chars: 8, ..PasswordPolicy::default() };
        assert_eq!(policy.check(&pw("Password1"), &[]), Err(WeakPassword::Common));
        assert_eq!(policy.check(&pw("1QAZ2WSX3EDC"), &[]), Err(WeakPassword::Common));
        assert_eq!(PasswordPolicy::default().check(&pw("123qweasdzxc"), &[]), Err(WeakPassword::Common));
        assert!(policy.check(&pw("tulip harbour seventy"), &[]).is_ok());
    }

    #[test]
    fn requests_bring_new_passwords_and_attempts() {
        // A new password: too long is refused at the edge, with the rules' own reason.
        let long = format!("\"{}\"", "x".repeat(1025));
        let refused = crate::input::parse(|| serde_json::from_str::<Password>(&long)).expect_err("too long");
        assert!(
            matches!(&refused, crate::input::ParseFailure::Refused(r) if matches!(r.downcast_ref::<WeakPassword>(), Some(WeakPassword::TooLong { .. })))
        );
        let new: Password = serde_json::from_str("\"ﬁne harbour\"").expect("password");
        assert_eq!(new.expose(), "fine harbour", "NFKC, as Password::new");
        // An attempt: anything goes; too long is simply not a password to check.
        let attempt: PasswordAttempt = serde_json::from_str(&long).expect("attempt");
        assert!(attempt.password().is_none());
        let attempt: PasswordAttempt = serde_json::from_str("\"short\"").expect("attempt");
        assert_eq!(attempt.password().map(Password::expose), Some("short"));
        assert_eq!(format!("{attempt:?} {new:?}"), "PasswordAttempt(<redacted>) Password(<redacted>)");
    }

    #[tokio::test]
    async fn hashes_verify_and_weak_parameters_are_upgraded() {
        // S4.7: argon2id PHC strings, rehashed when the parameters rise.
        let weak = PasswordHasher::new(1024, 1, 1, 2).expect("hasher");
        let strong = PasswordHasher::new(2048, 2, 1, 2).expect("hasher");
        let hash = weak.hash(&pw("tulip harbour seventy")).await.expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert_eq!(weak.verify(&pw("tulip harbour seventy"), Some(&hash)).await.expect("verify"), Verified::Yes);
        assert_eq!(weak.verify(&pw("tulip harbour sevent"), Some(&hash)).await.expect("verify"), Verified::No);
        match strong.verify(&pw("tulip harbour seventy"), Some(&hash)).await.expect("verify") {
            Verified::YesRehashed(new) => assert!(new.starts_with("$argon2id$v=19$m=2048,t=2,p=1$")),
            other => panic!("expected a rehash, got {other:?}"),
        }
        assert_eq!(strong.verify(&pw("anything"), None).await.expect("verify"), Verified::No);
    }

    #[tokio::test]
    async fn hashes_stored_by_argon2_0_5_verify_and_are_upgraded() {
        // S4.7: PHC strings stored before the argon2 0.6 upgrade, made by argon2 0.5 through
        // `PasswordHasher::hash` (OWASP parameters, and weaker ones) for this password.
        let owasp_v05 = "$argon2id$v=19$m=19456,t=2,p=1$IeqtSJesWEgozI2ugjsfUA$a4QSUcv42ufxW1SiLoHRYVRvEWzXN/vwF+31uLoDPP0";
        let weak_v05 = "$argon2id$v=19$m=1024,t=1,p=1$2J0tPxmSHHi3scf3lYeQdg$hHFMGgd5XNgj/2Y+GTZUydmy+B86Oi5dBz1/x92c6n4";
        let hasher = PasswordHasher::owasp(None).expect("hasher");
        assert_eq!(hasher.verify(&pw("tulip harbour seventy"), Some(owasp_v05)).await.expect("verify"), Verified::Yes);
        assert_eq!(hasher.verify(&pw("tulip harbour sevent"), Some(owasp_v05)).await.expect("verify"), Verified::No);
        assert_eq!(hasher.verify(&pw("tulip harbour sevent"), Some(weak_v05)).await.expect("verify"), Verified::No);
        let upgraded = match hasher.verify(&pw("tulip harbour seventy"), Some(weak_v05)).await.expect("verify") {
            Verified::YesRehashed(new) => new,
            other => panic!("expected a rehash, got {other:?}"),
        };
        assert!(upgraded.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{upgraded}");
        assert_eq!(hasher.verify(&pw("tulip harbour seventy"), Some(&upgraded)).await.expect("verify"), Verified::Yes);
    }

    /// Issue 12: verifications at the current parameters reuse their working memory (one block
    /// set per hashing thread, never freed); the answers are the same as argon2's own check.
    #[tokio::test]
    async fn verifications_reuse_their_working_memory_and_answer_the_same() {
        let hasher = PasswordHasher::new(1024, 1, 1, 2).expect("hasher");
        let hash = hasher.hash(&pw("tulip harbour seventy")).await.expect("hash");
        for _ in 0..5 {
            assert_eq!(hasher.verify(&pw("tulip harbour seventy"), Some(&hash)).await.expect("verify"), Verified::Yes);
            assert_eq!(hasher.verify(&pw("tulip harbour sevent"), Some(&hash)).await.expect("verify"), Verified::No);
            assert_eq!(hasher.verify(&pw("anything"), None).await.expect("verify"), Verified::No, "the dummy hash");
        }
        assert!(hasher.threads.memory_sets() <= 2, "two threads' block sets served sixteen jobs");
        // A stored hash whose output was tampered with never verifies.
        let (head, last) = hash.split_at(hash.len() - 2);
        let tampered = format!("{head}{}", if last.starts_with('A') { last.replacen('A', "B", 1) } else { format!("A{}", &last[1..]) });
        assert_eq!(hasher.verify(&pw("tulip harbour seventy"), Some(&tampered)).await.expect("verify"), Verified::No);
    }

    /// Issue 13's soak: new hashes (resets, password changes, upgrades) are made in the same
    /// threads' working memory, and are the PHC strings argon2's own check accepts, each with
    /// its own salt.
    #[tokio::test]
    async fn new_hashes_reuse_the_working_memory_and_verify_with_argon2s_own_check() {
        let hasher = PasswordHasher::new(1024, 1, 1, 2).expect("hasher");
        let mut hashes = Vec::new();
        for _ in 0..5 {
            hashes.push(hasher.hash(&pw("tulip harbour seventy")).await.expect("hash"));
        }
        assert!(hasher.threads.memory_sets() <= 2, "two threads' block sets served five hashes");
        let own = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(1024, 1, 1, None).expect("params"));
        for hash in &hashes {
            assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{hash}");
            let parsed = PasswordHash::new(hash).expect("a PHC string");
            assert!(own.verify_password(b"tulip harbour seventy", &parsed).is_ok(), "argon2's own check accepts {hash}");
            assert!(own.verify_password(b"tulip harbour sevent", &parsed).is_err());
        }
        let salts: std::collections::HashSet<&str> = hashes.iter().filter_map(|h| h.split('$').nth(4)).collect();
        assert_eq!(salts.len(), 5, "a fresh salt each time");
        // An upgrade from weaker parameters is made on the hashing threads too.
        let strong = PasswordHasher::new(2048, 2, 1, 2).expect("hasher");
        match strong.verify(&pw("tulip harbour seventy"), Some(&hashes[0])).await.expect("verify") {
            Verified::YesRehashed(new) => {
                assert_eq!(strong.verify(&pw("tulip harbour seventy"), Some(&new)).await.expect("verify"), Verified::Yes)
            }
            other => panic!("expected a rehash, got {other:?}"),
        }
        assert!(strong.threads.memory_sets() <= 2);
    }
}
