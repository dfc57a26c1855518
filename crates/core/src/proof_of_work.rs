//! A hashcash-style proof of work for forms that send email to any address (issue 11 §3), as
//! Kanidm does for its recovery emails: a script pays per message. The challenge is
//! stateless (signed with the server key, with its expiry and difficulty); a solution is a
//! nonce such that SHA-256(challenge ":" nonce) starts with `bits` zero bits, found by
//! static/app.js with WebCrypto. Each challenge is spent once (a throttle key of its hash).
//!
//! Written by hand on sha2: the check is a dozen lines, and no maintained crate offers a
//! SHA-256 leading-zero-bits puzzle with a browser counterpart (the `hashcash` crate speaks
//! SHA-1 stamps with dates and resources that a browser would have to re-implement).

use crate::deps::Deps;
use crate::throttle::{ThrottleKey, ThrottleRule};
use sha2::{Digest, Sha256};

/// How long a challenge can be solved and spent.
pub const CHALLENGE_TTL_SECONDS: i64 = 10 * 60;
/// The most the setting allows (each bit doubles the work).
pub const MAX_BITS: u8 = 28;

/// A challenge as served to the page or an API client.
#[derive(Debug, Clone)]
pub struct Challenge {
    pub challenge: String,
    pub bits: u8,
    pub expires_at: i64,
}

/// What the client sends back.
#[derive(Debug, Clone, Default)]
pub struct PowSolution {
    pub challenge: String,
    pub nonce: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PowError {
    #[error("The anti-spam check did not pass: it was missing, wrong, already used or too old. Reload the page and send the form again.")]
    Invalid,
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

#[derive(Debug, Clone)]
pub struct ProofOfWork {
    deps: Deps,
    bits: u8,
}

/// The leading zero bits of a digest.
pub fn leading_zero_bits(digest: &[u8]) -> u32 {
    let mut n = 0;
    for byte in digest {
        if *byte == 0 {
            n += 8;
        } else {
            return n + byte.leading_zeros();
        }
    }
    n
}

/// Does `nonce` solve `challenge` at `bits`.
pub fn solves(challenge: &str, nonce: &str, bits: u8) -> bool {
    let digest = Sha256::digest(format!("{challenge}:{nonce}").as_bytes());
    leading_zero_bits(&digest) >= u32::from(bits)
}

impl ProofOfWork {
    pub fn new(deps: Deps, bits: u8) -> Self {
        Self { deps, bits: bits.min(MAX_BITS) }
    }

    pub fn bits(&self) -> u8 {
        self.bits
    }

    /// A fresh challenge; stores nothing (serving it is a GET).
    pub fn challenge(&self) -> Challenge {
        let expires_at = self.deps.now() + CHALLENGE_TTL_SECONDS;
        let nonce = hex::encode(crate::keys::random_bytes(12));
        let body = format!("{expires_at}.{}.{nonce}", self.bits);
        let tag = self.deps.keys.sign("proof-of-work", body.as_bytes());
        Challenge { challenge: format!("{body}.{tag}"), bits: self.bits, expires_at }
    }

    /// Checks a solution and spends its challenge; refused when forged, expired, solved at
    /// fewer bits than it asks, or already spent.
    pub async fn spend(&self, solution: &PowSolution) -> Result<(), PowError> {
        // The tag may name its key (`<id>.<tag>`): it is everything after the third dot.
        let parts: Vec<&str> = solution.challenge.splitn(4, '.').collect();
        let [expires, bits, nonce, tag] = parts[..] else { return Err(PowError::Invalid) };
        let body = format!("{expires}.{bits}.{nonce}");
        if !self.deps.keys.verify("proof-of-work", body.as_bytes(), tag) {
            return Err(PowError::Invalid);
        }
        let (Ok(expires), Ok(bits)) = (expires.parse::<i64>(), bits.parse::<u8>()) else { return Err(PowError::Invalid) };
        let fresh = expires > self.deps.now();
        // A challenge made before the setting was raised asks the new difficulty.
        let bits = bits.max(self.bits);
        if !fresh || solution.nonce.len() > 32 || !solves(&solution.challenge, &solution.nonce, bits) {
            return Err(PowError::Invalid);
        }
        let spent = [ThrottleKey {
            key: format!("pow:{}", self.deps.keys.stable_hash("proof-of-work-spent", solution.challenge.as_bytes())),
            rule: ThrottleRule::Budget { limit: 1, window: CHALLENGE_TTL_SECONDS, cooldown: CHALLENGE_TTL_SECONDS },
        }];
        if self.deps.claim(&spent).await?.is_some() {
            return Err(PowError::Invalid);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_leading_zero_bits() {
        assert_eq!(leading_zero_bits(&[0, 0x0f, 0xff]), 12);
        assert_eq!(leading_zero_bits(&[0x80]), 0);
        assert_eq!(leading_zero_bits(&[0, 0]), 16);
    }
}
