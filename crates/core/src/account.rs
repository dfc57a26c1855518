//! Account values, parsed at the edge: past a constructor, a value is proof it is valid.

use serde::{Deserialize, Serialize};
use std::fmt;
use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountFieldError {
    #[error("A username has 3 to 32 characters: letters a-z, digits, '.', '_' or '-', starting with a letter or digit.")]
    Username,
    #[error("That is not a valid email address.")]
    Email,
    #[error("A country is a two-letter ISO 3166-1 code, such as PH or US.")]
    Country,
    #[error("The user type is one of client, freelancer or agency.")]
    UserType,
}

/// Opaque account id (a random UUID, so ids reveal neither count nor order).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountId(String);

impl AccountId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
    /// Only for values read back from our own storage.
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A username as the user typed it; uniqueness is case-insensitive through [`Username::key`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, AccountFieldError> {
        let value = raw.trim();
        let len = value.chars().count();
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        let starts_well = value.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        if (3..=32).contains(&len) && starts_well && value.chars().all(allowed) {
            Ok(Self(value.to_owned()))
        } else {
            Err(AccountFieldError::Username)
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The case-folded form that unique indexes and lookups use.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl TryFrom<String> for Username {
    type Error = AccountFieldError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}
impl From<Username> for String {
    fn from(value: Username) -> Self {
        value.0
    }
}

/// An email address, normalised: trimmed and lower-cased, so one inbox is one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub struct EmailAddress(String);

/// Through [`EmailAddress::parse`]; a refusal is an invalid address wherever it is answered.
impl<'de> Deserialize<'de> for EmailAddress {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(deserializer)?).map_err(crate::input::refuse)
    }
}

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, AccountFieldError> {
        let value = raw.trim().to_lowercase();
        let (local, domain) = value.rsplit_once('@').ok_or(AccountFieldError::Email)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local.chars().all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        let domain_ok = domain.len() <= 253
            && domain.contains('.')
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if local_ok && domain_ok && value.len() <= 254 { Ok(Self(value)) } else { Err(AccountFieldError::Email) }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map(|(local, _)| local).unwrap_or(&self.0)
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = AccountFieldError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}
impl From<EmailAddress> for String {
    fn from(value: EmailAddress) -> Self {
        value.0
    }
}

/// The officially assigned ISO 3166-1 alpha-2 codes.
const ISO_3166_ALPHA2: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// An ISO 3166-1 alpha-2 country code, upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Country([u8; 2]);

impl Country {
    pub fn parse(raw: &str) -> Result<Self, AccountFieldError> {
        let code = raw.trim().to_ascii_uppercase();
        let bytes = code.as_bytes();
        if bytes.len() == 2 && ISO_3166_ALPHA2.split(' ').any(|c| c == code) {
            Ok(Self([bytes[0], bytes[1]]))
        } else {
            Err(AccountFieldError::Country)
        }
    }
    pub fn as_str(&self) -> &str {
        // Both bytes are ASCII letters, checked in `parse`.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl TryFrom<String> for Country {
    type Error = AccountFieldError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}
impl From<Country> for String {
    fn from(value: Country) -> Self {
        value.as_str().to_owned()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserType {
    Client,
    Freelancer,
    Agency,
}

impl UserType {
    pub fn parse(raw: &str) -> Result<Self, AccountFieldError> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "client" => Ok(Self::Client),
            "freelancer" => Ok(Self::Freelancer),
            "agency" => Ok(Self::Agency),
            _ => Err(AccountFieldError::UserType),
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Freelancer => "freelancer",
            Self::Agency => "agency",
        }
    }
}

/// What a person typed in the login box: a username or an email address. It is kept as
/// typed (case-folded) even when it is neither, so that a malformed login costs the same
/// as an unknown one and reveals nothing. Never refused at the edge, for the same reason.
#[derive(Debug, Clone)]
pub struct LoginIdentifier {
    key: String,
    /// Exactly as typed, for a form to show again.
    typed: String,
}

impl LoginIdentifier {
    pub fn new(raw: &str) -> Self {
        // Capped so that a huge login cannot cost more than a normal one.
        let trimmed: String = raw.trim().chars().take(320).collect();
        Self { key: trimmed.to_lowercase(), typed: raw.to_owned() }
    }
    /// The key to match against both the username key and the email.
    pub fn key(&self) -> &str {
        &self.key
    }
    /// The text as typed, to show again in a form.
    pub fn as_typed(&self) -> &str {
        &self.typed
    }
}

/// Two logins are the same when they look up the same accounts.
impl PartialEq for LoginIdentifier {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for LoginIdentifier {}

impl<'de> Deserialize<'de> for LoginIdentifier {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|typed| Self::new(&typed))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub username: Username,
    pub email: EmailAddress,
    pub user_type: UserType,
    pub country: Country,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_rules() {
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse("abc").is_ok());
        assert!(Username::parse(&"a".repeat(32)).is_ok());
        assert!(Username::parse(&"a".repeat(33)).is_err());
        assert!(Username::parse("_abc").is_err());
        assert!(Username::parse("ab c").is_err());
        assert!(Username::parse("ab<c").is_err());
        assert_eq!(Username::parse("  Maria.Santos ").map(|u| u.key()), Ok("maria.santos".into()));
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(EmailAddress::parse(" Maria@Example.COM ").map(String::from), Ok("maria@example.com".into()));
        for bad in [
            "",
            "maria",
            "maria@",
            "@example.com",
            "maria@example",
            "ma ria@example.com",
            "maria@exa_mple.com",
            "a..b@example.com",
            "maria@example.com\r\nBcc: x@y.z",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(EmailAddress::parse("m@example.com").map(|e| e.local_part().to_owned()), Ok("m".into()));
    }

    #[test]
    fn countries_are_assigned_iso_codes() {
        assert_eq!(Country::parse("ph").map(|c| c.as_str().to_owned()), Ok("PH".into()));
        assert!(Country::parse("XX").is_err());
        assert!(Country::parse("All").is_err());
        assert!(Country::parse("USA").is_err());
        assert_eq!(ISO_3166_ALPHA2.split(' ').count(), 249);
    }

    #[test]
    fn user_types_parse() {
        assert_eq!(UserType::parse("Agency"), Ok(UserType::Agency));
        assert!(UserType::parse("admin").is_err());
    }

    #[test]
    fn serde_goes_through_the_constructors() {
        let parsed: Result<Username, _> = serde_json::from_str("\"a b\"");
        assert!(parsed.is_err());
        let email: EmailAddress = serde_json::from_str("\" Maria@Example.COM \"").expect("email");
        assert_eq!(email.as_str(), "maria@example.com");
        let refused = crate::input::parse(|| serde_json::from_str::<EmailAddress>("\"maria@\"")).expect_err("not an address");
        assert!(
            matches!(&refused, crate::input::ParseFailure::Refused(r) if r.downcast_ref::<AccountFieldError>() == Some(&AccountFieldError::Email))
        );
    }

    #[test]
    fn a_login_is_never_refused_and_keeps_what_was_typed() {
        for typed in [" Maria@Example.com ", "not a login at all", ""] {
            let login: LoginIdentifier = serde_json::from_value(serde_json::Value::from(typed)).expect("any text");
            assert_eq!((login.key(), login.as_typed()), (typed.trim().to_lowercase().as_str(), typed));
        }
        assert_eq!(LoginIdentifier::new("MARIA"), LoginIdentifier::new(" maria"), "the same accounts");
        assert_eq!(LoginIdentifier::new(&"m".repeat(1000)).key().len(), 320);
    }
}
