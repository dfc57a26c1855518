//! Phone numbers for SMS codes (checklist S5.5, S5.6): parsed once at the edge with Google's
//! libphonenumber metadata (the `phonenumber` crate) and kept in E.164 form. A value of
//! [`PhoneNumber`] is a valid number that can receive text messages as far as the metadata
//! can tell: fixed lines, toll-free, premium-rate and similar numbers are refused; where a
//! country's numbering cannot tell fixed lines from mobiles (the United States, Canada),
//! the number is accepted.

use crate::account::Country;
use phonenumber::{Mode, Type};
use serde::{Deserialize, Serialize};

/// Why a phone number was refused. Every message is meant for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("Enter a mobile phone number.")]
    Empty,
    #[error("That is not a phone number. Enter it with its country code, such as +63 917 123 4567.")]
    NotANumber,
    #[error("Enter the number with its country code, such as +63 917 123 4567.")]
    CountryNeeded,
    #[error("That phone number does not exist. Check the digits and the country code.")]
    Invalid,
    #[error("That number cannot receive text messages ({0}). Enter a mobile number.")]
    NotMobile(&'static str),
}

/// A mobile phone number in E.164 form (`+639171234521`).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber {
    e164: String,
    calling_code: u16,
    country: Option<Country>,
}

/// The longest input looked at: E.164 numbers have at most 15 digits, and people add
/// spaces, dashes, dots and brackets.
const MAX_INPUT_CHARS: usize = 64;

impl PhoneNumber {
    /// Parses what a person typed: international form (`+63 917 123 4521`, `0063...` is not
    /// guessed), or national form (`0917 123 4521`) when `default_country` says where it is
    /// dialled. Refuses numbers that do not exist and numbers known not to take SMS.
    pub fn parse(raw: &str, default_country: Option<Country>) -> Result<Self, PhoneError> {
        PhoneInput::parse(raw)?.resolve(default_country)
    }

    /// [`PhoneNumber::parse`] past the checks that need no country ([`PhoneInput::parse`]).
    fn parse_checked(raw: &str, default_country: Option<Country>) -> Result<Self, PhoneError> {
        let region = default_country.and_then(|c| c.as_str().parse::<phonenumber::country::Id>().ok());
        if region.is_none() && !raw.starts_with('+') {
            return Err(PhoneError::CountryNeeded);
        }
        let number = phonenumber::parse(region, raw).map_err(|_| PhoneError::NotANumber)?;
        if number.extension().is_some() {
            return Err(PhoneError::NotANumber);
        }
        if !number.is_valid() {
            return Err(PhoneError::Invalid);
        }
        match number.number_type(&phonenumber::metadata::DATABASE) {
            Type::Mobile | Type::FixedLineOrMobile | Type::PersonalNumber => {}
            Type::FixedLine => return Err(PhoneError::NotMobile("a landline")),
            Type::TollFree => return Err(PhoneError::NotMobile("a toll-free number")),
            Type::PremiumRate => return Err(PhoneError::NotMobile("a premium-rate number")),
            Type::SharedCost => return Err(PhoneError::NotMobile("a shared-cost number")),
            Type::Voip => return Err(PhoneError::NotMobile("an internet phone number")),
            Type::Pager => return Err(PhoneError::NotMobile("a pager")),
            Type::Uan => return Err(PhoneError::NotMobile("a company number")),
            Type::Voicemail => return Err(PhoneError::NotMobile("a voicemail number")),
            Type::Emergency | Type::ShortCode => return Err(PhoneError::NotMobile("a short code")),
            // A valid number the metadata cannot classify (rare): let the provider decide.
            _ => {}
        }
        let e164 = number.format().mode(Mode::E164).to_string();
        let calling_code = number.code().value();
        let country = number.country().id().and_then(|id| Country::parse(id.as_ref()).ok());
        Ok(Self { e164, calling_code, country })
    }

    /// `+639171234521`: what is stored and what providers are given.
    pub fn e164(&self) -> &str {
        &self.e164
    }

    /// The country calling code (`63`).
    pub fn calling_code(&self) -> u16 {
        self.calling_code
    }

    /// The country the number belongs to, when the numbering plan tells (`PH`); `None` for
    /// non-geographic numbers.
    pub fn country(&self) -> Option<Country> {
        self.country
    }

    /// `+63 *** *** 4521`: what pages, emails and the API show.
    pub fn masked(&self) -> String {
        crate::factors::mask_phone(&self.e164, self.calling_code)
    }
}

/// Shows only the masked form, so a number never reaches a log through `{:?}` in full.
impl std::fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PhoneNumber").field(&self.masked()).finish()
    }
}

/// A phone number as a request brings it (S5.6), checked at the edge as far as it can be
/// without knowing whose it is: one in international form (`+63 917 123 4521`) in full, one
/// in national form (`0917 123 4521`) only in its characters, since it is dialled in the
/// account's country, which [`PhoneInput::resolve`] is given.
#[derive(Clone)]
pub struct PhoneInput(Dialled);

#[derive(Clone)]
enum Dialled {
    International(PhoneNumber),
    /// Trimmed, of allowed characters, with a digit.
    National(String),
}

impl PhoneInput {
    pub fn parse(raw: &str) -> Result<Self, PhoneError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(PhoneError::Empty);
        }
        if raw.chars().count() > MAX_INPUT_CHARS
            || !raw.chars().all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '.' | '(' | ')' | '/'))
            || !raw.chars().any(|c| c.is_ascii_digit())
        {
            return Err(PhoneError::NotANumber);
        }
        if raw.starts_with('+') {
            // The number names its own country: a default one plays no part.
            return PhoneNumber::parse_checked(raw, None).map(|n| Self(Dialled::International(n)));
        }
        Ok(Self(Dialled::National(raw.to_owned())))
    }

    /// The number, a national one as dialled in `default_country`.
    pub fn resolve(&self, default_country: Option<Country>) -> Result<PhoneNumber, PhoneError> {
        match &self.0 {
            Dialled::International(number) => Ok(number.clone()),
            Dialled::National(raw) => PhoneNumber::parse_checked(raw, default_country),
        }
    }
}

/// Only the last digits, as [`PhoneNumber`]'s `Debug` shows only a masked number.
impl std::fmt::Debug for PhoneInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Dialled::International(number) => f.debug_tuple("PhoneInput").field(number).finish(),
            Dialled::National(raw) => {
                let digits: Vec<char> = raw.chars().filter(char::is_ascii_digit).collect();
                let last4: String = digits[digits.len().saturating_sub(4)..].iter().collect();
                f.debug_tuple("PhoneInput").field(&format!("national *** {last4}")).finish()
            }
        }
    }
}

impl<'de> Deserialize<'de> for PhoneInput {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(deserializer)?).map_err(crate::input::refuse)
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = PhoneError;
    /// Stored and serialised numbers are in E.164 form, which needs no default country.
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value, None)
    }
}

impl From<PhoneNumber> for String {
    fn from(value: PhoneNumber) -> Self {
        value.e164
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn ph() -> Option<Country> {
        Some(Country::parse("PH").unwrap())
    }

    #[test]
    fn international_and_national_forms_give_the_same_number() {
        for raw in ["+63 917 123 4521", "+639171234521", " +63-917-123-4521 ", "+63 (917) 123.4521"] {
            let number = PhoneNumber::parse(raw, None).unwrap();
            assert_eq!(number.e164(), "+639171234521", "{raw}");
        }
        for raw in ["0917 123 4521", "09171234521", "917 123 4521", "+63 917 123 4521"] {
            assert_eq!(PhoneNumber::parse(raw, ph()).unwrap().e164(), "+639171234521", "{raw}");
        }
        let number = PhoneNumber::parse("+63 917 123 4521", None).unwrap();
        assert_eq!(number.calling_code(), 63);
        assert_eq!(number.country(), ph());
        assert_eq!(number.masked(), "+63 *** *** 4521");
    }

    #[test]
    fn the_country_comes_from_the_number_not_the_default() {
        let gb = PhoneNumber::parse("+44 7400 123456", ph()).unwrap();
        assert_eq!((gb.e164(), gb.calling_code()), ("+447400123456", 44));
        assert_eq!(gb.country().map(|c| c.as_str().to_owned()).as_deref(), Some("GB"));
        assert_eq!(gb.masked(), "+44 *** *** 3456");
        // One calling code, several countries: the numbering plan tells them apart.
        let ca = PhoneNumber::parse("+1 604 555 0100", None).unwrap();
        let us = PhoneNumber::parse("+1 201 555 0123", None).unwrap();
        assert_eq!(us.country().map(|c| c.as_str().to_owned()).as_deref(), Some("US"));
        assert_eq!(ca.country().map(|c| c.as_str().to_owned()).as_deref(), Some("CA"));
        assert_eq!((us.calling_code(), ca.calling_code()), (1, 1));
    }

    #[test]
    fn national_numbers_need_a_country() {
        assert_eq!(PhoneNumber::parse("0917 123 4521", None), Err(PhoneError::CountryNeeded));
    }

    #[test]
    fn what_is_not_a_number_is_refused() {
        for raw in ["", "   ", "maria", "+63 917 123 4521 ext. 5", "+63 917\n123 4521", "++", "+", "+63 917 123 4521; DROP"] {
            let err = PhoneNumber::parse(raw, ph()).unwrap_err();
            assert!(matches!(err, PhoneError::Empty | PhoneError::NotANumber), "{raw:?}: {err:?}");
        }
        assert_eq!(PhoneNumber::parse(&"1".repeat(200), ph()), Err(PhoneError::NotANumber));
    }

    #[test]
    fn numbers_that_do_not_exist_are_refused() {
        for raw in ["+63 917 123", "+63 917 123 4521 99", "+999 1234 5678", "+1 555 0100"] {
            let err = PhoneNumber::parse(raw, None).unwrap_err();
            assert!(matches!(err, PhoneError::Invalid | PhoneError::NotANumber), "{raw:?}: {err:?}");
        }
    }

    #[test]
    fn numbers_that_cannot_take_sms_are_refused() {
        // A Manila landline, a UK landline, a UK freephone and a UK premium-rate number.
        for (raw, why) in [
            ("+63 2 8123 4567", "a landline"),
            ("+44 20 7946 0000", "a landline"),
            ("+44 800 123 4567", "a toll-free number"),
            ("+44 909 876 5432", "a premium-rate number"),
        ] {
            assert_eq!(PhoneNumber::parse(raw, None), Err(PhoneError::NotMobile(why)), "{raw}");
        }
        let message = PhoneError::NotMobile("a landline").to_string();
        assert_eq!(message, "That number cannot receive text messages (a landline). Enter a mobile number.");
    }

    #[test]
    fn where_fixed_lines_and_mobiles_look_alike_the_number_is_accepted() {
        let us = PhoneNumber::parse("(201) 555-0123", Some(Country::parse("US").unwrap())).unwrap();
        assert_eq!(us.e164(), "+12015550123");
        assert_eq!(us.masked(), "+1 *** *** 0123");
    }

    #[test]
    fn serde_goes_through_the_constructor() {
        let number: PhoneNumber = serde_json::from_str("\"+639171234521\"").unwrap();
        assert_eq!(serde_json::to_string(&number).unwrap(), "\"+639171234521\"");
        assert!(serde_json::from_str::<PhoneNumber>("\"+63 2 8123 4567\"").is_err());
        assert!(serde_json::from_str::<PhoneNumber>("\"09171234521\"").is_err(), "stored numbers are international");
    }

    #[test]
    fn requests_bring_numbers_checked_as_far_as_they_can_be_without_a_country() {
        use crate::input::{ParseFailure, parse};
        let refused = |raw: &str| match parse(|| serde_json::from_value::<PhoneInput>(serde_json::Value::from(raw))) {
            Err(ParseFailure::Refused(r)) if r.downcast_ref::<PhoneError>().is_some() => r.downcast_ref::<PhoneError>().cloned().unwrap(),
            other => panic!("{raw:?}: {other:?}"),
        };
        assert_eq!(refused(""), PhoneError::Empty);
        assert_eq!(refused("maria"), PhoneError::NotANumber);
        assert_eq!(refused("+63 2 8123 4567"), PhoneError::NotMobile("a landline"));
        assert_eq!(refused("+63 917 123"), PhoneError::Invalid);
        // National numbers wait for the account's country; the edge cannot tell.
        let national: PhoneInput = serde_json::from_str("\"0917 123 4521\"").unwrap();
        assert_eq!(national.resolve(ph()).unwrap().e164(), "+639171234521");
        assert_eq!(national.resolve(None), Err(PhoneError::CountryNeeded));
        assert_eq!(format!("{national:?}"), "PhoneInput(\"national *** 4521\")");
        let landline: PhoneInput = serde_json::from_str("\"02 8123 4567\"").unwrap();
        assert_eq!(landline.resolve(ph()), Err(PhoneError::NotMobile("a landline")));
        // An international number is the same whatever the account's country.
        let gb: PhoneInput = serde_json::from_str("\"+44 7400 123456\"").unwrap();
        assert_eq!(gb.resolve(ph()).unwrap(), PhoneNumber::parse("+44 7400 123456", ph()).unwrap());
        assert_eq!(format!("{gb:?}"), "PhoneInput(PhoneNumber(\"+44 *** *** 3456\"))");
    }

    #[test]
    fn debug_shows_only_the_masked_number() {
        let number = PhoneNumber::parse("+639171234521", None).unwrap();
        let debug = format!("{number:?}");
        assert_eq!(debug, "PhoneNumber(\"+63 *** *** 4521\")");
    }
}
