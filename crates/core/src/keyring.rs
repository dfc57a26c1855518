//! Keys that can be rotated (issue 13). The operator's secret (`DOORMAN_SECRET_KEY` or the
//! key file) is the *root*: it wraps every data key kept in storage, and it is itself the
//! first data key, the *original*. A rotation adds a data key that becomes the signing key at
//! its `active_from`, later than every replica's next reload of the keyring, so that no
//! replica ever meets a value made under a key it has not loaded. Older keys keep verifying
//! what they made until it expires (sessions, links, codes) or is re-sealed (TOTP secrets,
//! outbox bodies, in the background); then `doorman key retire` stops accepting them.
//!
//! Every value made under a key names it, and values made under the original name none, so
//! that everything made before key ids existed is read as the original's:
//! - a token the user holds (session cookie, device cookie, emailed link): `<id>.<token>`;
//! - a stored keyed hash: `<id>$<hex>`, the hash of a token under the key its token names, so
//!   a lookup hashes under exactly one key; a typed code's hash is compared under the key its
//!   stored hash names, and recovery codes (looked up by hash) under every live key;
//! - a signature (CSRF, reset continuation, proof of work): `<id>.<tag>`;
//! - a sealed value (TOTP secret, outbox body): `<id>.<base64>`;
//! - an audit chain link or checkpoint: `<id>$<hex>`, under the key that was signing at the
//!   event's time, so that two replicas sealing at once still agree (see [`crate::audit_chain`]).
//!
//! Names of throttle counters, the forgot-password coalescing key, the device cookie's name
//! and the help voter id are *stable*: keyed under the root, which a rotation does not change,
//! so a rotation never resets an attacker's attempt counters (S3) nor forgets a device.
//!
//! A key id is 8 hex characters derived from the key (an HMAC of a fixed label under it).

use crate::clock::Clock;
use crate::keys::{ServerKey, random_bytes};
use crate::store::StoreError;
use async_trait::async_trait;
use std::sync::{Arc, RwLock};

/// The length of a key id.
pub const KEY_ID_LEN: usize = 8;

/// A data key's id: 8 lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = raw.len() == KEY_ID_LEN && raw.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| Self(raw.to_owned()))
    }
    /// The id of a key: derived from it, so the original's needs no storage to be known.
    pub fn of(key: &ServerKey) -> Self {
        Self(key.keyed_hash("doorman-key-id", b"").chars().take(KEY_ID_LEN).collect())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A key as storage keeps it: wrapped (sealed) under the root; the original's row has no
/// wrapped value (it is the root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub id: String,
    pub wrapped: Option<String>,
    pub created_at: i64,
    pub active_from: i64,
    pub retired_at: Option<i64>,
}

/// What `doorman key list` shows of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: KeyId,
    /// The operator's secret itself (the key every value without a key id was made under).
    pub original: bool,
    pub created_at: i64,
    pub active_from: i64,
    pub retired_at: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error(
        "this database was set up with another secret key (its original key is {stored}, this secret's is {ours}): every replica must use the same DOORMAN_SECRET_KEY"
    )]
    ForeignRoot { stored: String, ours: String },
    #[error("the keyring's key {0} cannot be opened with this secret key: every replica must use the same DOORMAN_SECRET_KEY")]
    Unwrap(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone)]
struct DataKey {
    info: KeyInfo,
    key: ServerKey,
}

/// The live keyring every service and the web layer share: a snapshot replaced whole at
/// each reload. Cheap to clone.
#[derive(Clone)]
pub struct Keyring {
    inner: Arc<Inner>,
}

struct Inner {
    root: ServerKey,
    original: KeyId,
    keys: RwLock<Arc<Vec<DataKey>>>,
    clock: Arc<dyn Clock>,
    /// Woken when a value names a key this replica does not know: the reload task reloads.
    reload_wanted: tokio::sync::Notify,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyring(<redacted>)")
    }
}

/// The marker a lookup hash takes when its token names no live key: no stored hash is
/// ever equal to it, so the lookup finds nothing, as for any unknown token.
const NO_KEY: &str = "!no-live-key";

impl Keyring {
    /// A keyring holding only the original key (the root itself), until [`Keyring::install`].
    pub fn new(root: ServerKey, clock: Arc<dyn Clock>) -> Self {
        let original = KeyId::of(&root);
        let first = DataKey {
            info: KeyInfo { id: original.clone(), original: true, created_at: 0, active_from: 0, retired_at: None },
            key: root.clone(),
        };
        Self {
            inner: Arc::new(Inner {
                root,
                original,
                keys: RwLock::new(Arc::new(vec![first])),
                clock,
                reload_wanted: tokio::sync::Notify::new(),
            }),
        }
    }

    /// A keyring of one key (the root) on the system clock, for tests and tools.
    pub fn single(root: ServerKey) -> Self {
        Self::new(root, Arc::new(crate::clock::SystemClock))
    }

    pub fn original_id(&self) -> &KeyId {
        &self.inner.original
    }

    /// The original key's row, written once per database.
    pub fn original_row(&self, now: i64) -> StoredKey {
        StoredKey { id: self.inner.original.to_string(), wrapped: None, created_at: now, active_from: 0, retired_at: None }
    }

    /// A new random data key, wrapped under the root, signing from `active_from`.
    pub fn new_key(&self, now: i64, active_from: i64) -> Result<StoredKey, crate::keys::SealError> {
        let bytes = hex::encode(random_bytes(32));
        let key = ServerKey::new(bytes.as_bytes().to_vec()).map_err(|_| crate::keys::SealError)?;
        let id = KeyId::of(&key);
        let wrapped = self.inner.root.seal(&wrap_purpose(&id), bytes.as_bytes())?;
        Ok(StoredKey { id: id.to_string(), wrapped: Some(wrapped), created_at: now, active_from, retired_at: None })
    }

    /// Replaces the keys with storage's. Fails, keeping the keys it had, when a row cannot be
    /// opened with this root or the original row is another root's.
    pub fn install(&self, rows: &[StoredKey]) -> Result<(), KeyringError> {
        let mut keys = Vec::with_capacity(rows.len() + 1);
        let mut has_original = false;
        for row in rows {
            let (key, original) = match &row.wrapped {
                None if row.id == self.inner.original.as_str() => (self.inner.root.clone(), true),
                None => return Err(KeyringError::ForeignRoot { stored: row.id.clone(), ours: self.inner.original.to_string() }),
                Some(wrapped) => {
                    let id = KeyId::parse(&row.id).ok_or_else(|| KeyringError::Unwrap(row.id.clone()))?;
                    let bytes = self.inner.root.open(&wrap_purpose(&id), wrapped).map_err(|_| KeyringError::Unwrap(row.id.clone()))?;
                    let key = ServerKey::new(bytes).map_err(|_| KeyringError::Unwrap(row.id.clone()))?;
                    if KeyId::of(&key) != id {
                        return Err(KeyringError::Unwrap(row.id.clone()));
                    }
                    (key, false)
                }
            };
            has_original |= original;
            let id = if original { self.inner.original.clone() } else { KeyId::of(&key) };
            keys.push(DataKey {
                info: KeyInfo { id, original, created_at: row.created_at, active_from: row.active_from, retired_at: row.retired_at },
                key,
            });
        }
        if !has_original {
            keys.push(DataKey {
                info: KeyInfo { id: self.inner.original.clone(), original: true, created_at: 0, active_from: 0, retired_at: None },
                key: self.inner.root.clone(),
            });
        }
        keys.sort_by(|a, b| (a.info.active_from, a.info.created_at, &a.info.id).cmp(&(b.info.active_from, b.info.created_at, &b.info.id)));
        *self.inner.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
        Ok(())
    }

    fn snapshot(&self) -> Arc<Vec<DataKey>> {
        self.inner.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Every key, oldest first.
    pub fn keys(&self) -> Vec<KeyInfo> {
        self.snapshot().iter().map(|k| k.info.clone()).collect()
    }

    /// The key that signs what is made at `at`: the newest one active by then and not
    /// retired (the original when there is none).
    fn signing_at(&self, at: i64) -> DataKey {
        let keys = self.snapshot();
        let found = keys.iter().rev().find(|k| k.info.active_from <= at && k.info.retired_at.is_none());
        match found {
            Some(k) => k.clone(),
            None => DataKey {
                info: KeyInfo { id: self.inner.original.clone(), original: true, created_at: 0, active_from: 0, retired_at: None },
                key: self.inner.root.clone(),
            },
        }
    }

    /// The key that was signing at `at` for the audit chain: retired keys included, so a
    /// seal depends only on the event and the keys storage holds.
    fn signing_at_any(&self, at: i64) -> DataKey {
        let keys = self.snapshot();
        match keys.iter().rev().find(|k| k.info.active_from <= at) {
            Some(k) => k.clone(),
            None => self.signing_at(at),
        }
    }

    fn signing(&self) -> DataKey {
        self.signing_at(self.inner.clock.unix())
    }

    /// The id of the key signing now.
    pub fn signing_id(&self) -> KeyId {
        self.signing().info.id
    }

    /// A key values may still name: known and not retired (`None`: the original). A key this
    /// replica has not loaded asks the reload task for a reload.
    fn live(&self, id: Option<&str>) -> Option<DataKey> {
        let keys = self.snapshot();
        let wanted = id.unwrap_or(self.inner.original.as_str());
        match keys.iter().find(|k| k.info.id.as_str() == wanted) {
            Some(k) if k.info.retired_at.is_none() => Some(k.clone()),
            Some(_) => None,
            None => {
                self.inner.reload_wanted.notify_one();
                None
            }
        }
    }

    /// Any key storage holds, retired ones included (the audit chain's links keep theirs).
    fn any(&self, id: Option<&str>) -> Option<DataKey> {
        let wanted = id.unwrap_or(self.inner.original.as_str());
        let found = self.snapshot().iter().find(|k| k.info.id.as_str() == wanted).cloned();
        if found.is_none() {
            self.inner.reload_wanted.notify_one();
        }
        found
    }

    /// Waits until a value named a key this replica does not know.
    pub async fn reload_wanted(&self) {
        self.inner.reload_wanted.notified().await
    }

    fn prefix(&self, key: &DataKey, separator: char) -> String {
        if key.info.original { String::new() } else { format!("{}{separator}", key.info.id) }
    }

    // ---- tokens the user holds -------------------------------------------------------

    /// A new 256-bit token naming the signing key: `<id>.<43 base64url characters>`, or the
    /// bare token under the original key.
    pub fn new_token(&self) -> secrecy::SecretString {
        use secrecy::ExposeSecret;
        let key = self.signing();
        let token = crate::keys::random_token(32);
        secrecy::SecretString::from(format!("{}{}", self.prefix(&key, '.'), token.expose_secret()))
    }

    /// The keyed hash under which a token is stored: under the key it names, itself named.
    pub fn token_hash(&self, purpose: &str, token: &str) -> String {
        match self.live(token_key_id(token)) {
            Some(key) => format!("{}{}", self.prefix(&key, '$'), key.key.keyed_hash(purpose, token.as_bytes())),
            None => NO_KEY.to_owned(),
        }
    }

    // ---- hashes of values made here and compared later ---------------------------------

    /// A keyed hash under the signing key, naming it (a sent code, a recovery code).
    pub fn hash(&self, purpose: &str, value: &[u8]) -> String {
        let key = self.signing();
        format!("{}{}", self.prefix(&key, '$'), key.key.keyed_hash(purpose, value))
    }

    /// The hash of `value` under the key `stored` names, for comparing with `stored`.
    pub fn hash_like(&self, stored: &str, purpose: &str, value: &[u8]) -> String {
        match self.live(hash_key_id(stored)) {
            Some(key) => format!("{}{}", self.prefix(&key, '$'), key.key.keyed_hash(purpose, value)),
            None => NO_KEY.to_owned(),
        }
    }

    /// The hashes of `value` under every live key, for a lookup of something typed (a
    /// recovery code): whichever key it was stored under, one of them finds it.
    pub fn hashes(&self, purpose: &str, value: &[u8]) -> Vec<String> {
        self.snapshot()
            .iter()
            .filter(|k| k.info.retired_at.is_none())
            .map(|k| format!("{}{}", self.prefix(k, '$'), k.key.keyed_hash(purpose, value)))
            .collect()
    }

    /// A keyed hash under the root, which no rotation changes: names of throttle counters
    /// and other values that must stay the same across a rotation.
    pub fn stable_hash(&self, purpose: &str, value: &[u8]) -> String {
        self.inner.root.keyed_hash(purpose, value)
    }

    // ---- signatures ----------------------------------------------------------------------

    /// A tag proving the server made `value`, naming the key: `<id>.<tag>`.
    pub fn sign(&self, purpose: &str, value: &[u8]) -> String {
        let key = self.signing();
        format!("{}{}", self.prefix(&key, '.'), key.key.sign(purpose, value))
    }

    /// Checks a tag made by [`Keyring::sign`] under any live key, in constant time.
    pub fn verify(&self, purpose: &str, value: &[u8], tag: &str) -> bool {
        let (id, bare) = split_dotted(tag);
        match self.live(id) {
            Some(key) => key.key.verify(purpose, value, bare),
            None => false,
        }
    }

    // ---- sealed values -------------------------------------------------------------------

    /// Encrypts under the signing key: `<id>.<base64>`.
    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> Result<String, crate::keys::SealError> {
        let key = self.signing();
        Ok(format!("{}{}", self.prefix(&key, '.'), key.key.seal(purpose, plaintext)?))
    }

    /// Opens a value sealed under any live key.
    pub fn open(&self, purpose: &str, sealed: &str) -> Result<Vec<u8>, crate::keys::SealError> {
        let (id, bare) = split_dotted(sealed);
        let key = self.live(id).ok_or(crate::keys::SealError)?;
        key.key.open(purpose, bare)
    }

    /// Whether a sealed value is under the signing key already (the re-seal pass skips it).
    pub fn sealed_by_signing_key(&self, sealed: &str) -> bool {
        let key = self.signing();
        split_dotted(sealed).0.unwrap_or(self.inner.original.as_str()) == key.info.id.as_str()
    }

    // ---- the audit chain -----------------------------------------------------------------

    /// An audit link's or checkpoint's seal, under the key signing at `at` (the event's time),
    /// so that every replica sealing the same event writes the same value.
    pub fn audit_seal(&self, at: i64, purpose: &str, value: &[u8]) -> String {
        let key = self.signing_at_any(at);
        format!("{}{}", self.prefix(&key, '$'), key.key.keyed_hash(purpose, value))
    }

    /// Recomputes an audit seal under the key `stored` names, retired keys included.
    pub fn audit_seal_like(&self, stored: &str, purpose: &str, value: &[u8]) -> Option<String> {
        let key = self.any(hash_key_id(stored))?;
        Some(format!("{}{}", self.prefix(&key, '$'), key.key.keyed_hash(purpose, value)))
    }
}

fn wrap_purpose(id: &KeyId) -> String {
    format!("keyring:{id}")
}

/// The key id a `<id>.<rest>` value names (a token, tag or sealed value); base64url has no
/// '.', so a value without one is the original key's.
fn split_dotted(value: &str) -> (Option<&str>, &str) {
    match value.split_once('.') {
        Some((id, rest)) if KeyId::parse(id).is_some() => (Some(id), rest),
        _ => (None, value),
    }
}

/// The key id a token names (`None`: the original).
pub fn token_key_id(token: &str) -> Option<&str> {
    split_dotted(token).0
}

/// The key id a stored hash names (`<id>$<hex>`; `None`: the original).
pub fn hash_key_id(stored: &str) -> Option<&str> {
    match stored.split_once('$') {
        Some((id, _)) if KeyId::parse(id).is_some() => Some(id),
        _ => None,
    }
}

/// Whether `raw` has the shape of a token we issue: 43 base64url characters, optionally
/// after a key id and a dot.
pub fn token_shape(raw: &str) -> bool {
    let bare = match raw.split_once('.') {
        Some((id, rest)) if KeyId::parse(id).is_some() => rest,
        Some(_) => return false,
        None => raw,
    };
    bare.len() == 43 && bare.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `raw` has the shape of a tag made by [`Keyring::sign`].
pub fn tag_shape(raw: &str) -> bool {
    token_shape(raw)
}

/// What still needs a key, as `doorman key retire` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyUse {
    /// Sealed values the background pass re-seals: retiring waits for them.
    TotpSecrets,
    OutboxBodies,
    /// Values that stop working when their key is retired (`--force` accepts that).
    Sessions,
    TrustedDevices,
    /// Unused, unexpired links and codes: reset, report, answer-reset, email change, 2-step
    /// reset, support cancel, recovery request links, and sent codes.
    LinksAndCodes,
    /// Unused recovery codes (they cannot be re-hashed: they work until used or replaced).
    RecoveryCodes,
}

impl KeyUse {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyUse::TotpSecrets => "authenticator secrets (re-sealed in the background)",
            KeyUse::OutboxBodies => "message bodies waiting in the outbox (re-sealed in the background)",
            KeyUse::Sessions => "sessions",
            KeyUse::TrustedDevices => "trusted devices",
            KeyUse::LinksAndCodes => "unused links and codes",
            KeyUse::RecoveryCodes => "unused recovery codes",
        }
    }
    /// Whether the re-seal pass moves these values to the signing key.
    pub fn resealable(self) -> bool {
        matches!(self, KeyUse::TotpSecrets | KeyUse::OutboxBodies)
    }
}

/// A sealed value to move to the signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedValue {
    pub kind: SealedKind,
    pub row_id: String,
    /// As [`Keyring::seal`] made it (`<id>.<base64>` or bare base64).
    pub sealed: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedKind {
    TotpSecret,
    OutboxText,
    OutboxHtml,
}

impl SealedKind {
    /// The purpose it was sealed for.
    pub fn purpose(self) -> &'static str {
        match self {
            SealedKind::TotpSecret => crate::factors::TOTP_SEAL_PURPOSE,
            SealedKind::OutboxText | SealedKind::OutboxHtml => crate::outbox::BODY_SEAL_PURPOSE,
        }
    }
}

#[async_trait]
pub trait KeyringStore: Send + Sync {
    async fn stored_keys(&self) -> Result<Vec<StoredKey>, StoreError>;
    /// Inserts a key; one with the same id already there is left as it is.
    async fn insert_key(&self, key: &StoredKey) -> Result<(), StoreError>;
    async fn retire_key(&self, id: &str, now: i64) -> Result<bool, StoreError>;
    /// How many values of each kind still need the key whose values carry `id` (`""`: the
    /// original's, which carry none).
    async fn key_uses(&self, id: &str, now: i64) -> Result<Vec<(KeyUse, i64)>, StoreError>;
    /// Up to `limit` sealed values under the key `id` names (`""`: the original).
    async fn sealed_under(&self, id: &str, limit: i64) -> Result<Vec<SealedValue>, StoreError>;
    /// Replaces a sealed value, only if it is still `value.sealed`; whether it did.
    async fn replace_sealed(&self, value: &SealedValue, resealed: &str) -> Result<bool, StoreError>;
}

crate::storage_trait! {
    /// The storage `Keys` uses.
    pub trait KeysStorage: KeyringStore
}

#[derive(Debug, thiserror::Error)]
pub enum RetireError {
    #[error("there is no key {0}")]
    Unknown(String),
    #[error("key {0} is already retired")]
    AlreadyRetired(String),
    #[error("key {0} is the signing key (or becomes it later): rotate first, then retire it once the new key is active")]
    Signing(String),
    #[error("key {id} is still needed: {}", describe(uses))]
    StillNeeded { id: String, uses: Vec<(KeyUse, i64)>, forcible: bool },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn describe(uses: &[(KeyUse, i64)]) -> String {
    uses.iter().map(|(u, n)| format!("{n} {}", u.as_str())).collect::<Vec<_>>().join(", ")
}

/// Rotation: adding, listing and retiring keys, reloading them, and re-sealing.
#[derive(Debug, Clone)]
pub struct Keys {
    keyring: Keyring,
    clock: Arc<dyn Clock>,
    store: Arc<dyn KeysStorage>,
}

impl Keys {
    pub fn new(keyring: Keyring, clock: Arc<dyn Clock>, store: Arc<dyn KeysStorage>) -> Self {
        Self { keyring, clock, store }
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Loads the keyring from storage, first writing the original key's row when the
    /// database has none (idempotent: replicas may do it at once).
    pub async fn load(&self) -> Result<(), KeyringError> {
        let rows = self.store.stored_keys().await?;
        if !rows.iter().any(|r| r.wrapped.is_none()) {
            self.store.insert_key(&self.keyring.original_row(self.clock.unix())).await?;
        }
        self.reload().await
    }

    /// Reads every key again (every replica, periodically and on meeting an unknown id).
    pub async fn reload(&self) -> Result<(), KeyringError> {
        let rows = self.store.stored_keys().await?;
        self.keyring.install(&rows)
    }

    /// Adds a key that signs from `activate_in` seconds on.
    pub async fn rotate(&self, activate_in: i64) -> Result<KeyInfo, KeyringError> {
        let now = self.clock.unix();
        let row = self.keyring.new_key(now, now + activate_in.max(0)).map_err(|e| KeyringError::Store(StoreError::Backend(Box::new(e))))?;
        self.store.insert_key(&row).await?;
        self.reload().await?;
        self.keyring.keys().into_iter().find(|k| k.id.as_str() == row.id).ok_or_else(|| KeyringError::Unwrap(row.id.clone()))
    }

    /// What still needs a key.
    pub async fn uses(&self, id: &KeyId) -> Result<Vec<(KeyUse, i64)>, StoreError> {
        let stored_id = if id == self.keyring.original_id() { "" } else { id.as_str() };
        let uses = self.store.key_uses(stored_id, self.clock.unix()).await?;
        Ok(uses.into_iter().filter(|(_, n)| *n > 0).collect())
    }

    /// Stops accepting a key. Refused for the signing key and keys not active yet, while
    /// sealed values still need it (the background pass moves them), and, without `force`,
    /// while sessions, devices, links or codes made under it are still live.
    pub async fn retire(&self, id: &str, force: bool) -> Result<KeyInfo, RetireError> {
        self.reload().await.map_err(|e| match e {
            KeyringError::Store(e) => RetireError::Store(e),
            other => RetireError::Store(StoreError::Backend(Box::new(other))),
        })?;
        let now = self.clock.unix();
        let key = self.keyring.keys().into_iter().find(|k| k.id.as_str() == id).ok_or_else(|| RetireError::Unknown(id.to_owned()))?;
        if key.retired_at.is_some() {
            return Err(RetireError::AlreadyRetired(id.to_owned()));
        }
        if key.active_from > now || self.keyring.signing_at(now).info.id == key.id {
            return Err(RetireError::Signing(id.to_owned()));
        }
        let uses = self.uses(&key.id).await?;
        let sealed: Vec<_> = uses.iter().filter(|(u, _)| u.resealable()).cloned().collect();
        if !sealed.is_empty() {
            return Err(RetireError::StillNeeded { id: id.to_owned(), uses: sealed, forcible: false });
        }
        if !uses.is_empty() && !force {
            return Err(RetireError::StillNeeded { id: id.to_owned(), uses, forcible: true });
        }
        self.store.retire_key(id, now).await?;
        let _ = self.reload().await;
        Ok(KeyInfo { retired_at: Some(now), ..key })
    }

    /// Moves sealed values under older live keys to the signing key, in small batches;
    /// returns how many. Does nothing (no query) while only one key is live.
    pub async fn reseal_once(&self) -> Result<u64, StoreError> {
        let signing = self.keyring.signing_id();
        let older: Vec<KeyInfo> = self.keyring.keys().into_iter().filter(|k| k.retired_at.is_none() && k.id != signing).collect();
        let mut total = 0;
        for key in older {
            let stored_id = if key.original { String::new() } else { key.id.to_string() };
            total += crate::batch::in_batches(|| self.reseal_batch(&stored_id)).await?;
        }
        Ok(total)
    }

    async fn reseal_batch(&self, stored_id: &str) -> Result<u64, StoreError> {
        let values = self.store.sealed_under(stored_id, crate::batch::PRUNE_BATCH).await?;
        let mut moved = 0;
        for value in &values {
            let purpose = value.kind.purpose();
            let plain = self.keyring.open(purpose, &value.sealed).map_err(|e| StoreError::Backend(Box::new(e)))?;
            let resealed = self.keyring.seal(purpose, &plain).map_err(|e| StoreError::Backend(Box::new(e)))?;
            if self.store.replace_sealed(value, &resealed).await? {
                moved += 1;
            }
        }
        // A full batch asks for another round even when another replica moved some first.
        Ok(if values.len() as i64 == crate::batch::PRUNE_BATCH { values.len() as u64 } else { moved })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use secrecy::ExposeSecret;

    fn ring() -> (Keyring, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::default());
        (Keyring::new(ServerKey::generate(), clock.clone()), clock)
    }

    #[test]
    fn the_original_key_makes_values_without_an_id_as_before() {
        let root = ServerKey::generate();
        let ring = Keyring::new(root.clone(), Arc::new(ManualClock::default()));
        assert_eq!(ring.hash("p", b"x"), root.keyed_hash("p", b"x"));
        assert_eq!(ring.sign("p", b"x"), root.sign("p", b"x"));
        assert!(ring.verify("p", b"x", &root.sign("p", b"x")));
        let token = ring.new_token();
        assert_eq!(token.expose_secret().len(), 43);
        assert_eq!(ring.token_hash("s", token.expose_secret()), root.keyed_hash("s", token.expose_secret().as_bytes()));
        assert_eq!(ring.open("p", &root.seal("p", b"secret").expect("seal")).expect("open"), b"secret");
    }

    #[test]
    fn a_rotated_key_signs_from_its_activation_and_the_old_one_still_verifies() {
        let (ring, clock) = ring();
        let now = clock.unix();
        let old_tag = ring.sign("csrf", b"b");
        let old_token = ring.new_token();
        let old_hash = ring.token_hash("session", old_token.expose_secret());
        let old_sealed = ring.seal("totp", b"s").expect("seal");
        let row = ring.new_key(now, now + 60).expect("new key");
        ring.install(&[ring.original_row(now), row.clone()]).expect("install");
        assert_eq!(ring.signing_id(), *ring.original_id(), "not active yet");
        clock.advance(61);
        assert_eq!(ring.signing_id().as_str(), row.id);
        let new_token = ring.new_token();
        assert!(new_token.expose_secret().starts_with(&format!("{}.", row.id)));
        assert!(token_shape(new_token.expose_secret()));
        assert!(ring.token_hash("session", new_token.expose_secret()).starts_with(&format!("{}$", row.id)));
        assert_eq!(ring.token_hash("session", old_token.expose_secret()), old_hash, "old tokens hash as before");
        assert!(ring.verify("csrf", b"b", &old_tag));
        assert!(ring.verify("csrf", b"b", &ring.sign("csrf", b"b")));
        assert!(!ring.verify("csrf", b"c", &ring.sign("csrf", b"b")));
        assert_eq!(ring.open("totp", &old_sealed).expect("open"), b"s");
        assert!(!ring.sealed_by_signing_key(&old_sealed));
        let new_sealed = ring.seal("totp", b"s").expect("seal");
        assert!(ring.sealed_by_signing_key(&new_sealed));
        assert_eq!(ring.open("totp", &new_sealed).expect("open"), b"s");
        let code_hash = ring.hash("otp:1", b"123456");
        assert_eq!(ring.hash_like(&code_hash, "otp:1", b"123456"), code_hash);
        assert_eq!(ring.hashes("rc", b"code").len(), 2);
        // Retired: the old key's values stop working.
        let mut retired = ring.original_row(now);
        retired.retired_at = Some(now + 61);
        ring.install(&[retired, row]).expect("install");
        assert_eq!(ring.token_hash("session", old_token.expose_secret()), NO_KEY);
        assert!(!ring.verify("csrf", b"b", &old_tag));
        assert!(ring.open("totp", &old_sealed).is_err());
    }

    #[test]
    fn audit_seals_follow_the_events_time_and_keep_verifying_after_retirement() {
        let (ring, clock) = ring();
        let now = clock.unix();
        let row = ring.new_key(now, now + 100).expect("new key");
        ring.install(&[ring.original_row(now), row.clone()]).expect("install");
        let before = ring.audit_seal(now + 99, "audit-chain", b"e1");
        let after = ring.audit_seal(now + 100, "audit-chain", b"e2");
        assert!(hash_key_id(&before).is_none());
        assert_eq!(hash_key_id(&after), Some(row.id.as_str()));
        let mut retired = ring.original_row(now);
        retired.retired_at = Some(now + 200);
        ring.install(&[retired, row]).expect("install");
        assert_eq!(ring.audit_seal_like(&before, "audit-chain", b"e1").as_deref(), Some(before.as_str()));
        assert_eq!(ring.audit_seal_like(&after, "audit-chain", b"e2").as_deref(), Some(after.as_str()));
    }

    #[test]
    fn another_roots_keyring_is_refused() {
        let (ring, clock) = ring();
        let (other, _) = self::ring();
        assert!(matches!(ring.install(&[other.original_row(clock.unix())]), Err(KeyringError::ForeignRoot { .. })));
        let foreign = other.new_key(clock.unix(), 0).expect("new key");
        assert!(matches!(ring.install(&[foreign]), Err(KeyringError::Unwrap(_))));
    }

    #[test]
    fn shapes() {
        assert!(token_shape(&"a".repeat(43)));
        assert!(token_shape(&format!("0123abcd.{}", "a".repeat(43))));
        assert!(!token_shape(&format!("0123abcX.{}", "a".repeat(43))));
        assert!(!token_shape(&"a".repeat(44)));
        assert_eq!(hash_key_id("0123abcd$ff"), Some("0123abcd"));
        assert_eq!(hash_key_id(&"f".repeat(64)), None);
    }
}
