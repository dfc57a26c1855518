//! Random secrets and the keyed hash under which they are stored (checklist S1.1, S1.2, S7.1).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use sha2::Sha256;

/// The server secret that keys every stored hash of a token, session id or code.
/// A copy of the database alone can neither redeem nor brute-force what it holds.
#[derive(Clone)]
pub struct ServerKey(SecretSlice<u8>);

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKey(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the server secret key must be at least 32 bytes")]
pub struct KeyTooShort;

impl ServerKey {
    pub fn new(bytes: Vec<u8>) -> Result<Self, KeyTooShort> {
        if bytes.len() < 32 {
            return Err(KeyTooShort);
        }
        Ok(Self(bytes.into()))
    }

    pub fn generate() -> Self {
        Self(random_bytes(32).into())
    }

    /// HMAC-SHA-256 of `value` under this key, separated by `purpose` so that a hash made
    /// for one purpose never matches in another (S1.3). Hex encoded for storage.
    pub fn keyed_hash(&self, purpose: &str, value: &[u8]) -> String {
        hex::encode(self.mac(purpose, value))
    }

    fn mac(&self, purpose: &str, value: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = match Hmac::<Sha256>::new_from_slice(self.0.expose_secret()) {
            Ok(mac) => mac,
            Err(_) => unreachable_key(),
        };
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(value);
        mac.finalize().into_bytes().to_vec()
    }

    /// A short tag that proves a value was made by this server (CSRF tokens).
    pub fn sign(&self, purpose: &str, value: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(purpose, value))
    }

    /// Constant-time check of a tag made by [`ServerKey::sign`].
    pub fn verify(&self, purpose: &str, value: &[u8], tag: &str) -> bool {
        use subtle::ConstantTimeEq;
        let expected = self.sign(purpose, value);
        expected.as_bytes().ct_eq(tag.as_bytes()).into()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the sealed value could not be opened (wrong key or damaged data)")]
pub struct SealError;

impl ServerKey {
    /// Encrypts with XChaCha20-Poly1305 under a key derived from the server key for
    /// `purpose`; the result is base64 (nonce, then ciphertext with tag).
    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> Result<String, SealError> {
        use chacha20poly1305::aead::{Aead, KeyInit};
        let cipher = chacha20poly1305::XChaCha20Poly1305::new_from_slice(&self.mac("seal", purpose.as_bytes())).map_err(|_| SealError)?;
        let nonce = random_bytes(24);
        let ciphertext = cipher.encrypt(chacha20poly1305::XNonce::from_slice(&nonce), plaintext).map_err(|_| SealError)?;
        Ok(URL_SAFE_NO_PAD.encode([nonce, ciphertext].concat()))
    }

    pub fn open(&self, purpose: &str, sealed: &str) -> Result<Vec<u8>, SealError> {
        use chacha20poly1305::aead::{Aead, KeyInit};
        let bytes = URL_SAFE_NO_PAD.decode(sealed).map_err(|_| SealError)?;
        if bytes.len() < 24 {
            return Err(SealError);
        }
        let (nonce, ciphertext) = bytes.split_at(24);
        let cipher = chacha20poly1305::XChaCha20Poly1305::new_from_slice(&self.mac("seal", purpose.as_bytes())).map_err(|_| SealError)?;
        cipher.decrypt(chacha20poly1305::XNonce::from_slice(nonce), ciphertext).map_err(|_| SealError)
    }
}

#[allow(clippy::panic)]
fn unreachable_key() -> ! {
    panic!("HMAC-SHA-256 accepts keys of every length")
}

pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

/// `n` random bytes from the OS CSPRNG, base64url encoded: the form of every opaque token.
pub fn random_token(n: usize) -> SecretString {
    SecretString::from(URL_SAFE_NO_PAD.encode(random_bytes(n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_hash_depends_on_key_and_purpose() {
        let a = ServerKey::generate();
        let b = ServerKey::generate();
        assert_ne!(a.keyed_hash("session", b"x"), b.keyed_hash("session", b"x"));
        assert_ne!(a.keyed_hash("session", b"x"), a.keyed_hash("reset", b"x"));
        assert_eq!(a.keyed_hash("session", b"x"), a.keyed_hash("session", b"x"));
    }

    #[test]
    fn signatures_verify_only_for_their_value() {
        let key = ServerKey::generate();
        let tag = key.sign("csrf", b"abc");
        assert!(key.verify("csrf", b"abc", &tag));
        assert!(!key.verify("csrf", b"abd", &tag));
        assert!(!key.verify("other", b"abc", &tag));
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(ServerKey::new(vec![1; 31]).is_err());
        assert!(ServerKey::new(vec![1; 32]).is_ok());
    }

    #[test]
    fn tokens_are_long_and_distinct() {
        use secrecy::ExposeSecret;
        let a = random_token(32);
        let b = random_token(32);
        assert_eq!(a.expose_secret().len(), 43);
        assert_ne!(a.expose_secret(), b.expose_secret());
    }
}
