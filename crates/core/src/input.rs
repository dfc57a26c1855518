//! Values as requests bring them. The domain types a request body holds deserialize through
//! their own constructors, so a body that deserializes holds only valid values, and the web
//! layer's extractors answer a refused value before any handler runs (`src/web/extract.rs`).
//!
//! serde carries errors as text, so a constructor's refusal travels beside the error, typed:
//! the type records a [`Refused`] as it fails ([`refuse`]), and [`parse`] hands it to the
//! caller with the failure, which answers it as the domain answers that value anywhere else.
//!
//! Some rules forbid refusing a value at the edge, and those fields take types that accept
//! whatever was typed: a password typed to be checked is a wrong password, never a "too long"
//! one (`password::PasswordAttempt`, S2.1); a guess at a secret is counted before it is
//! compared, malformed or not (`recovery::ResetCodeAttempt`, `factors::FactorCode`, S3.7). [`Deferred`] holds a refusal for the
//! handler to answer at the right moment (after a reset code is counted), or on its own form.

use secrecy::{ExposeSecret, SecretString};
use serde::de::{Deserialize, DeserializeOwned, Deserializer, Error as _};
use std::cell::RefCell;
use std::sync::Arc;

/// Why a domain type refused a value a request brought: the domain's own error, which the
/// web layer answers as it does wherever the domain gives it (`src/web/error.rs`). Held
/// without naming its type, so that this file depends on no feature; the web layer finds the
/// type again with [`Refused::downcast_ref`].
#[derive(Debug, Clone, thiserror::Error)]
#[error(transparent)]
pub struct Refused(Arc<dyn std::error::Error + Send + Sync>);

impl Refused {
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Arc::new(error))
    }

    /// The domain's error, when it is an `E`.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.0.downcast_ref::<E>()
    }
}

std::thread_local! {
    /// The refusal of the value being deserialized on this thread. Deserializing is
    /// synchronous, so the refusal and the error it explains are made on the same thread.
    static REFUSED: RefCell<Option<Refused>> = const { RefCell::new(None) };
}

/// What a domain type's `Deserialize` returns when its constructor refuses a value: the
/// serde error, with the refusal recorded beside it for [`parse`].
pub fn refuse<E: serde::de::Error>(refused: impl std::error::Error + Send + Sync + 'static) -> E {
    let refused = Refused::new(refused);
    let error = E::custom(&refused);
    REFUSED.with(|slot| *slot.borrow_mut() = Some(refused));
    error
}

/// Why a request's values did not deserialize.
#[derive(Debug)]
pub enum ParseFailure<E> {
    /// A domain type refused a value: answer it as the domain does.
    Refused(Refused),
    /// Anything else (not the right shape, a field missing or unknown): a bad request.
    Malformed(E),
}

/// Runs one deserialization (`run` must not yield in between: it is synchronous) and tells a
/// domain type's refusal from any other failure.
pub fn parse<T, E: std::fmt::Display>(run: impl FnOnce() -> Result<T, E>) -> Result<T, ParseFailure<E>> {
    REFUSED.with(|slot| slot.borrow_mut().take());
    let result = run();
    let refused = REFUSED.with(|slot| slot.borrow_mut().take());
    result.map_err(|error| match refused {
        // The refusal that ended this parse; one a container swallowed before another error
        // does not explain that error.
        Some(refused) if error.to_string().starts_with(&refused.to_string()) => ParseFailure::Refused(refused),
        _ => ParseFailure::Malformed(error),
    })
}

/// A request's text for a field, held as a secret until its type has read it.
pub(crate) fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SecretString, D::Error> {
    String::deserialize(deserializer).map(SecretString::from)
}

/// A field parsed by its domain type at the edge, whose refusal the handler answers rather
/// than the extractor: where the answer to a bad value must wait for something else (a new
/// password in a reset is judged after the emailed code is counted, S3.7), or is shown on the
/// page's own form with what was typed, as pages did before values were typed at the edge.
pub struct Deferred<T> {
    /// As typed: what a form shows again (a secret for some types).
    typed: SecretString,
    value: Result<T, Refused>,
}

impl<T> Deferred<T> {
    /// The value, or why it was refused.
    pub fn value(&self) -> Result<&T, Refused> {
        self.value.as_ref().map_err(Refused::clone)
    }

    /// The text as typed, to show again in a form.
    pub fn typed(&self) -> &str {
        self.typed.expose_secret()
    }
}

/// Shows whether the value was refused, never the text (it may be a secret).
impl<T: std::fmt::Debug> std::fmt::Debug for Deferred<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Deferred").field(&self.value).finish()
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Deferred<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let typed = text(deserializer)?;
        let reading = serde::de::value::StrDeserializer::<serde::de::value::Error>::new(typed.expose_secret());
        let value = match parse(|| T::deserialize(reading)) {
            Ok(value) => Ok(value),
            Err(ParseFailure::Refused(refused)) => Err(refused),
            Err(ParseFailure::Malformed(error)) => return Err(D::Error::custom(error)),
        };
        Ok(Self { typed, value })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::password::{Password, WeakPassword};

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Body {
        new_password: Password,
        #[serde(default)]
        later: Option<Deferred<Password>>,
    }

    #[test]
    fn a_refusal_is_told_from_a_malformed_body() {
        let long = "x".repeat(1025);
        let refused = parse(|| serde_json::from_str::<Body>(&format!(r#"{{"new_password": "{long}"}}"#))).unwrap_err();
        assert!(
            matches!(&refused, ParseFailure::Refused(r) if r.downcast_ref::<WeakPassword>() == Some(&WeakPassword::TooLong { max: 1024 })),
            "{refused:?}"
        );
        for malformed in [r#"{"new_password": 5}"#, r#"{}"#, r#"{"new_password": "a fine passphrase", "x": 1}"#] {
            let failure = parse(|| serde_json::from_str::<Body>(malformed)).unwrap_err();
            assert!(matches!(failure, ParseFailure::Malformed(_)), "{malformed}: {failure:?}");
        }
        // Nothing is left behind for the next parse.
        assert!(matches!(parse(|| serde_json::from_str::<Body>("{}")), Err(ParseFailure::Malformed(_))));
    }

    #[test]
    fn deferred_fields_keep_the_refusal_and_the_text_for_the_handler() {
        let long = "x".repeat(1025);
        let body = parse(|| serde_json::from_str::<Body>(&format!(r#"{{"new_password": "a fine passphrase", "later": "{long}"}}"#)))
            .expect("a deferred refusal is not a failed parse");
        assert_eq!(body.new_password.expose(), "a fine passphrase");
        let later = body.later.expect("later");
        assert_eq!(later.value().unwrap_err().downcast_ref::<WeakPassword>(), Some(&WeakPassword::TooLong { max: 1024 }));
        assert_eq!(later.typed(), long);
        let fine: Body = serde_json::from_str(r#"{"new_password": "a fine passphrase", "later": "another one"}"#).unwrap();
        assert_eq!(fine.later.unwrap().value().unwrap().expose(), "another one");
        // A deferred field of the wrong shape is still a malformed body.
        let wrong = parse(|| serde_json::from_str::<Body>(r#"{"new_password": "a fine passphrase", "later": 5}"#)).unwrap_err();
        assert!(matches!(wrong, ParseFailure::Malformed(_)), "{wrong:?}");
    }

    #[test]
    fn debug_never_shows_the_text() {
        let body: Body = serde_json::from_str(r#"{"new_password": "a fine passphrase", "later": "another secret"}"#).unwrap();
        let debug = format!("{body:?}");
        assert!(!debug.contains("fine") && !debug.contains("another"), "{debug}");
    }
}
