//! Second factors (checklist S5, S6): what each method is, how its secrets are made,
//! checked and shown. The flows that use them are in `two_step.rs`.

use crate::account::{AccountId, EmailAddress};
use crate::keyring::Keyring;
use crate::keys::random_bytes;
use crate::outbox::NewMessage;
use crate::store::StoreError;
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use serde::Serialize;
use unicode_normalization::UnicodeNormalization;

pub mod history;
use history::{ChangedBy, FactorHistoryEntry};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FactorKind {
    Totp,
    Sms,
    Email,
    SecurityQuestion,
    RecoveryCode,
}

impl FactorKind {
    pub const ALL: [FactorKind; 5] = [Self::Totp, Self::Sms, Self::Email, Self::SecurityQuestion, Self::RecoveryCode];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::Sms => "sms",
            Self::Email => "email",
            Self::SecurityQuestion => "security_question",
            Self::RecoveryCode => "recovery_code",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
    /// How a person would name it.
    pub fn title(&self) -> &'static str {
        match self {
            Self::Totp => "Authenticator app",
            Self::Sms => "Text message (SMS)",
            Self::Email => "Email code (weakest)",
            Self::SecurityQuestion => "Security question",
            Self::RecoveryCode => "Recovery code",
        }
    }
    /// Methods whose code doorman sends (and can send again).
    pub fn is_sent(&self) -> bool {
        matches!(self, Self::Sms | Self::Email)
    }
}

/// An enrolled (or enrolling) method as stored.
#[derive(Debug, Clone)]
pub struct FactorRecord {
    pub id: String,
    pub account_id: AccountId,
    pub kind: FactorKind,
    /// The masked phone number for SMS, the question id for a security question, else empty.
    pub label: String,
    pub secret: FactorSecret,
    pub is_default: bool,
    pub confirmed_at: Option<i64>,
    pub last_used_step: Option<i64>,
    pub created_at: i64,
}

/// What a method keeps to check a person with. TOTP: the encrypted secret. Security
/// question: the argon2id hash of the answer. SMS: the number in E.164 form. Empty for the
/// others. Never shown, logged or compared but where a method is checked.
#[derive(Clone)]
pub struct FactorSecret(SecretString);

impl FactorSecret {
    /// For methods that keep nothing (email codes, recovery codes: their hashes live apart).
    pub fn none() -> Self {
        Self(SecretString::from(String::new()))
    }
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl From<String> for FactorSecret {
    fn from(value: String) -> Self {
        Self(SecretString::from(value))
    }
}

impl std::fmt::Debug for FactorSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FactorSecret(<redacted>)")
    }
}

/// What a person typed for one of their methods: a code from an app, a text or an email, a
/// recovery code, or a security answer. Any text: which it is depends on the method, and a
/// guess is counted before it is compared (S3.7), so a malformed one is a wrong one, never a
/// bad request.
pub struct FactorCode(SecretString);

impl FactorCode {
    pub fn new(raw: &str) -> Self {
        Self(SecretString::from(raw.to_owned()))
    }
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for FactorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FactorCode(<redacted>)")
    }
}

impl<'de> serde::Deserialize<'de> for FactorCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::input::text(deserializer).map(Self)
    }
}

/// A method as offered to the user: never its secret, only a masked hint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MethodView {
    pub id: String,
    pub kind: FactorKind,
    pub hint: String,
    #[serde(skip)]
    pub title: &'static str,
    #[serde(skip)]
    pub is_default: bool,
    /// False for a method this server cannot use now (a phone without an SMS provider):
    /// listed in Security settings, offered nowhere else.
    #[serde(skip)]
    pub available: bool,
}

/// `j***@example.com`
pub fn mask_email(email: &EmailAddress) -> String {
    let (local, domain) = email.as_str().rsplit_once('@').unwrap_or(("", email.as_str()));
    let first: String = local.chars().take(1).collect();
    format!("{first}***@{domain}")
}

/// `+63 *** *** 4521`: the country calling code and the last four digits.
pub fn mask_phone(e164: &str, calling_code: u16) -> String {
    let last4: String = e164.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    format!("+{calling_code} *** *** {last4}")
}

// ---- TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30 s) ----

pub const TOTP_STEP_SECONDS: i64 = 30;

/// A TOTP secret: 160 bits from the OS CSPRNG (S5.1).
pub struct TotpSecret(SecretSlice<u8>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

impl TotpSecret {
    pub fn generate() -> Self {
        Self(random_bytes(20).into())
    }
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes.into())
    }
    /// From the base32 text an authenticator app is given (what a person would type in).
    pub fn from_base32(text: &str) -> Option<Self> {
        totp_rs::Secret::try_from_base32(text.trim().to_ascii_uppercase()).ok().map(|s| Self::from_bytes(s.as_bytes().to_vec()))
    }
    /// Base32 without padding, as authenticator apps take it.
    pub fn base32(&self) -> SecretString {
        SecretString::from(totp_rs::Secret::from(self.0.expose_secret()).to_base32().trim_end_matches('=').to_owned())
    }
    pub fn bytes(&self) -> &[u8] {
        self.0.expose_secret()
    }
    fn generator(&self) -> totp_rs::Totp {
        totp_rs::Builder::new()
            .with_algorithm(totp_rs::Algorithm::SHA1)
            .with_digits(6)
            .with_skew(1)
            .with_step_duration(TOTP_STEP_SECONDS as u64)
            .with_secret(self.0.expose_secret())
            .build_noncompliant()
    }
    /// The code for a time step (used by tests and by enrolment checks).
    pub fn code_at_step(&self, step: i64) -> String {
        self.generator().generate((step.max(0) * TOTP_STEP_SECONDS) as u64).to_string()
    }
    /// The step the code matches: the current one or one on either side, never two away
    /// (S5.2), and never one at or before `last_used_step` (replay, S5.3). Not totp-rs's
    /// `check`: it returns the first step in the window that matches, where we must skip the
    /// steps already used and still accept a later one.
    pub fn matching_step(&self, code: &str, now: i64, last_used_step: Option<i64>) -> Option<i64> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let current = now / TOTP_STEP_SECONDS;
        [current - 1, current, current + 1].into_iter().find(|step| {
            let fresh = last_used_step.is_none_or(|last| *step > last);
            fresh && bool::from(subtle::ConstantTimeEq::ct_eq(self.code_at_step(*step).as_bytes(), code.as_bytes()))
        })
    }
    /// `otpauth://` URI for the QR code.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> String {
        let enc = |s: &str| -> String {
            s.bytes()
                .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
                .collect()
        };
        format!(
            "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits=6&period=30",
            enc(issuer),
            enc(account),
            self.base32().expose_secret(),
            enc(issuer)
        )
    }
    /// Encrypted under the signing key for storage (S5.1), naming it.
    pub fn seal(&self, keys: &Keyring) -> Result<String, crate::keys::SealError> {
        keys.seal(TOTP_SEAL_PURPOSE, self.bytes())
    }
    /// Opens a secret sealed under any live key.
    pub fn open(sealed: &str, keys: &Keyring) -> Result<Self, crate::keys::SealError> {
        keys.open(TOTP_SEAL_PURPOSE, sealed).map(Self::from_bytes)
    }
}

// ---- Codes sent by SMS or email, and recovery codes ----

/// Six digits from the OS CSPRNG (S5.5).
pub fn generate_otp() -> SecretString {
    let bytes = random_bytes(8);
    let n = u64::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7]]);
    SecretString::from(format!("{:06}", n % 1_000_000))
}

/// What a person typed as a code: digits only, spaces and dashes ignored.
pub fn normalise_code(raw: &str) -> String {
    raw.chars().filter(|c| !c.is_whitespace() && *c != '-').collect::<String>().to_ascii_uppercase()
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
pub const RECOVERY_CODE_COUNT: usize = 10;

/// Ten recovery codes of 16 base32 characters (80 bits each, S5.8), grouped for reading.
pub fn generate_recovery_codes() -> Vec<SecretString> {
    (0..RECOVERY_CODE_COUNT)
        .map(|_| {
            let chars: String = random_bytes(16).iter().map(|b| BASE32[(b & 31) as usize] as char).collect();
            SecretString::from(format!("{}-{}-{}-{}", &chars[0..4], &chars[4..8], &chars[8..12], &chars[12..16]))
        })
        .collect()
}

/// What TOTP secrets are sealed for (the re-seal pass opens them with it).
pub const TOTP_SEAL_PURPOSE: &str = "totp-secret";

/// A new recovery code's hash, under the signing key.
pub fn recovery_code_hash(keys: &Keyring, account: &AccountId, raw: &str) -> String {
    keys.hash(&format!("recovery-code:{account}"), normalise_code(raw).as_bytes())
}

/// A typed recovery code's hashes under every live key: whichever key stored it finds it.
pub fn recovery_code_hashes(keys: &Keyring, account: &AccountId, raw: &str) -> Vec<String> {
    keys.hashes(&format!("recovery-code:{account}"), normalise_code(raw).as_bytes())
}

// ---- Security questions (S6) ----

/// The curated questions: none with an answer found in public records or social profiles
/// (no mother's maiden name, birthplace, school or pet), none free-form (S6.2).
pub const SECURITY_QUESTIONS: [(&str, &str); 8] = [
    ("first_concert", "What was the first concert you went to?"),
    ("childhood_friend_street", "On which street did your best childhood friend live?"),
    ("first_paid_job", "What was the name of the place of your first paid job?"),
    ("grandparent_hobby", "What was your grandparent's favourite hobby?"),
    ("first_recipe", "What was the first dish you learned to cook?"),
    ("childhood_nickname", "What nickname did your family use for you as a child?"),
    ("favourite_teacher_subject", "What subject did your favourite teacher teach?"),
    ("first_album", "What was the first album you bought?"),
];

pub fn question_text(id: &str) -> Option<&'static str> {
    SECURITY_QUESTIONS.iter().find(|(qid, _)| *qid == id).map(|(_, text)| *text)
}

/// Case, whitespace and Unicode (NFKC) folded, so "  Pink  FLOYD" matches "pink floyd".
pub fn normalise_answer(raw: &str) -> String {
    let nfkc: String = raw.nfkc().collect();
    nfkc.to_lowercase().split_whitespace().collect::<Vec<_>>().join(" ")
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("Choose one of the listed questions.")]
    UnknownQuestion,
    #[error("That answer is too easy to guess. Use at least 4 letters or digits, not a common word like 'yes' or 'none'.")]
    Trivial,
    #[error("The answer must not be your username, email address or password.")]
    Personal,
    #[error("Keep the answer under 100 characters.")]
    TooLong,
}

/// S6.3: refuses trivial answers and ones equal to the username, email or password.
pub fn check_answer(normalised: &str, personal: &[&str]) -> Result<(), AnswerError> {
    check_answer_alone(normalised)?;
    if personal.iter().any(|p| normalise_answer(p) == normalised) {
        return Err(AnswerError::Personal);
    }
    Ok(())
}

/// What [`check_answer`] refuses whoever gives the answer: too long, or trivial.
fn check_answer_alone(normalised: &str) -> Result<(), AnswerError> {
    const TRIVIAL: [&str; 16] =
        ["yes", "no", "none", "n/a", "na", "idk", "unknown", "nothing", "password", "123", "1234", "test", "asdf", "qwerty", "abc", "same"];
    if normalised.chars().count() > 100 {
        return Err(AnswerError::TooLong);
    }
    let distinct: std::collections::HashSet<char> = normalised.chars().filter(|c| !c.is_whitespace()).collect();
    // A short answer falls to a small dictionary within the daily guess budget (S6.3).
    let meaningful = normalised.chars().filter(|c| c.is_alphanumeric()).count();
    if meaningful < 4 || distinct.len() < 2 || TRIVIAL.contains(&normalised) {
        return Err(AnswerError::Trivial);
    }
    Ok(())
}

/// A new security answer as a request brings it (S6.3): refused at the edge when it is too
/// long or trivial, whoever gives it; whether it names its owner, or is their password, is
/// checked with the account. A secret: only its hash is kept.
pub struct SecurityAnswer {
    /// As typed (trimmed): what is compared with the password.
    typed: SecretString,
    /// [`normalise_answer`]ed: what is checked and hashed.
    normalised: SecretString,
}

impl SecurityAnswer {
    pub fn new(raw: &str) -> Result<Self, AnswerError> {
        let normalised = normalise_answer(raw);
        check_answer_alone(&normalised)?;
        Ok(Self { typed: SecretString::from(raw.trim().to_owned()), normalised: SecretString::from(normalised) })
    }
    pub fn typed(&self) -> &str {
        self.typed.expose_secret()
    }
    pub fn normalised(&self) -> &str {
        self.normalised.expose_secret()
    }
}

impl std::fmt::Debug for SecurityAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecurityAnswer(<redacted>)")
    }
}

impl<'de> serde::Deserialize<'de> for SecurityAnswer {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let typed = crate::input::text(deserializer)?;
        Self::new(typed.expose_secret()).map_err(crate::input::refuse)
    }
}

pub struct NewOtp {
    pub id: String,
    pub binding: String,
    pub factor_id: String,
    pub code_hash: String,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone)]
pub struct OtpRecord {
    pub id: String,
    pub code_hash: String,
    pub attempts: i64,
}

#[async_trait]
pub trait FactorStore: Send + Sync {
    async fn insert_factor(&self, factor: &FactorRecord) -> Result<(), StoreError>;
    /// Enrolled and enrolling methods (not removed), oldest first.
    async fn factors_of(&self, account: &AccountId) -> Result<Vec<FactorRecord>, StoreError>;
    /// Turns an enrolling method on; the first one becomes the default. Written to the
    /// method history with `by` in the same transaction (S10.4). False when it is on already
    /// (of two confirmations at once, one turns it on) or gone.
    async fn confirm_factor(&self, account: &AccountId, id: &str, now: i64, by: ChangedBy) -> Result<bool, StoreError>;
    /// Removes a method, written to the method history with `by` in the same transaction.
    async fn remove_factor(&self, account: &AccountId, id: &str, now: i64, by: ChangedBy) -> Result<bool, StoreError>;
    /// The account's method history with an id below `before`, newest first (S10.4).
    async fn factor_history(&self, account: &AccountId, before: i64, limit: i64) -> Result<Vec<FactorHistoryEntry>, StoreError>;
    async fn set_default_factor(&self, account: &AccountId, id: &str) -> Result<bool, StoreError>;
    /// Records a used TOTP step, only if it is later than the last one: of two concurrent
    /// uses of one code, one wins (S5.3).
    async fn advance_totp_step(&self, id: &str, step: i64) -> Result<bool, StoreError>;
    /// Replaces the account's recovery codes (S5.8: the old set stops working); the method
    /// history says the codes were added (a first set) or renewed, by `by`.
    async fn replace_recovery_codes(
        &self,
        account: &AccountId,
        factor: &FactorRecord,
        hashes: &[String],
        now: i64,
        by: ChangedBy,
    ) -> Result<(), StoreError>;
    async fn use_recovery_code(&self, account: &AccountId, hash: &str, now: i64) -> Result<bool, StoreError>;
    async fn recovery_codes_left(&self, account: &AccountId) -> Result<i64, StoreError>;
    /// In one transaction: voids the binding's unused codes for the method, stores the new
    /// code's hash and writes the message that carries it.
    async fn insert_otp(&self, otp: &NewOtp, message: &NewMessage) -> Result<(), StoreError>;
    async fn latest_otp(&self, binding: &str, factor_id: &str, now: i64) -> Result<Option<OtpRecord>, StoreError>;
    /// Counts one try at a sent code before it is compared, only while it has tries left:
    /// of parallel guesses, at most `max` are ever compared.
    async fn claim_otp_attempt(&self, id: &str, max: i64) -> Result<bool, StoreError>;
    async fn consume_otp(&self, id: &str, now: i64) -> Result<bool, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totp_accepts_one_step_either_side_and_never_twice() {
        // S5.2, S5.3
        let secret = TotpSecret::generate();
        let now = 1_800_000_015;
        let step = now / 30;
        assert_eq!(secret.matching_step(&secret.code_at_step(step), now, None), Some(step));
        assert_eq!(secret.matching_step(&secret.code_at_step(step - 1), now, None), Some(step - 1));
        assert_eq!(secret.matching_step(&secret.code_at_step(step + 1), now, None), Some(step + 1));
        assert_eq!(secret.matching_step(&secret.code_at_step(step - 2), now, None), None);
        assert_eq!(secret.matching_step(&secret.code_at_step(step + 2), now, None), None);
        assert_eq!(secret.matching_step(&secret.code_at_step(step), now, Some(step)), None, "replay");
        assert_eq!(secret.matching_step(&secret.code_at_step(step - 1), now, Some(step)), None, "older than the last used");
        assert_eq!(secret.matching_step("12345", now, None), None);
    }

    #[test]
    fn totp_matches_the_rfc_6238_test_vector() {
        // RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 (8 digits) → 287082 with 6.
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        assert_eq!(secret.code_at_step(59 / 30), "287082");
        // The other SHA-1 vectors of appendix B, leading zeros kept.
        for (t, code) in [
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
            (20_000_000_000, "353130"),
        ] {
            assert_eq!(secret.code_at_step(t / 30), code, "T = {t}");
        }
        assert_eq!(secret.bytes().len(), 20);
        // Base32 as the app is given it, and back from what a person types.
        assert_eq!(secret.base32().expose_secret(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(TotpSecret::from_base32(" gezdgnbvgy3tqojqgezdgnbvgy3tqojq ").expect("base32").bytes(), secret.bytes());
        assert!(TotpSecret::from_base32("not base32!").is_none());
        assert_eq!(TotpSecret::generate().bytes().len(), 20, "160 bits (S5.1)");
    }

    #[test]
    fn sealed_secrets_open_only_with_the_key() {
        let key = crate::keyring::Keyring::single(crate::keys::ServerKey::generate());
        let secret = TotpSecret::generate();
        let sealed = secret.seal(&key).expect("seal");
        assert!(!sealed.contains(secret.base32().expose_secret()));
        assert_eq!(TotpSecret::open(&sealed, &key).expect("open").bytes(), secret.bytes());
        assert!(TotpSecret::open(&sealed, &crate::keyring::Keyring::single(crate::keys::ServerKey::generate())).is_err());
    }

    #[test]
    fn recovery_codes_have_80_bits_and_normalise() {
        // S5.8
        let codes = generate_recovery_codes();
        assert_eq!(codes.len(), 10);
        let first = codes[0].expose_secret();
        assert_eq!(first.len(), 19);
        assert_eq!(normalise_code(first).len(), 16);
        let key = crate::keyring::Keyring::single(crate::keys::ServerKey::generate());
        let account = AccountId::generate();
        assert_eq!(recovery_code_hash(&key, &account, first), recovery_code_hash(&key, &account, &first.to_lowercase().replace('-', " ")));
    }

    #[test]
    fn answers_are_normalised_and_trivial_ones_refused() {
        // S6.3
        assert_eq!(normalise_answer("  Pink   FLOYD "), "pink floyd");
        assert_eq!(normalise_answer("ＰＩＮＫ"), "pink");
        assert_eq!(check_answer("none", &[]), Err(AnswerError::Trivial));
        assert_eq!(check_answer("aaaa", &[]), Err(AnswerError::Trivial));
        assert_eq!(check_answer("cat", &[]), Err(AnswerError::Trivial), "three letters are a dictionary away");
        assert_eq!(check_answer("c-a-t", &[]), Err(AnswerError::Trivial), "punctuation does not count");
        assert!(check_answer("rex 2", &[]).is_ok());
        assert_eq!(check_answer("maria", &["Maria"]), Err(AnswerError::Personal));
        assert!(check_answer("pink floyd", &["maria"]).is_ok());
    }

    #[test]
    fn requests_bring_codes_and_answers_as_secrets() {
        use crate::input::{ParseFailure, parse};
        // Any code is taken: which method it is for decides, and a guess is counted first.
        for raw in ["123456", "", "not a code", "ABCD-EFGH-2345-6789"] {
            let code: FactorCode = serde_json::from_value(serde_json::Value::from(raw)).expect("any text");
            assert_eq!(code.expose(), raw);
            assert_eq!(format!("{code:?}"), "FactorCode(<redacted>)");
        }
        let answer: SecurityAnswer = serde_json::from_str("\"  Pink   FLOYD \"").expect("answer");
        assert_eq!((answer.typed(), answer.normalised()), ("Pink   FLOYD", "pink floyd"));
        assert_eq!(format!("{answer:?}"), "SecurityAnswer(<redacted>)");
        for (raw, why) in [("none", AnswerError::Trivial), ("aaaa", AnswerError::Trivial), (&*"x y ".repeat(40), AnswerError::TooLong)] {
            let refused = parse(|| serde_json::from_value::<SecurityAnswer>(serde_json::Value::from(raw))).expect_err(raw);
            assert!(matches!(&refused, ParseFailure::Refused(r) if r.downcast_ref::<AnswerError>() == Some(&why)), "{raw}: {refused:?}");
        }
        // A personal answer needs the account: not refused at the edge.
        assert!(SecurityAnswer::new("maria").is_ok());
    }

    #[test]
    fn stored_secrets_never_show_in_debug() {
        let secret = FactorSecret::from("+639171234521".to_owned());
        assert_eq!((format!("{secret:?}"), secret.expose()), ("FactorSecret(<redacted>)".to_owned(), "+639171234521"));
        assert_eq!(FactorSecret::none().expose(), "");
    }

    #[test]
    fn hints_are_masked() {
        let email = EmailAddress::parse("jane@example.com").expect("email");
        assert_eq!(mask_email(&email), "j***@example.com");
        assert_eq!(mask_phone("+639171234521", 63), "+63 *** *** 4521");
    }
}
