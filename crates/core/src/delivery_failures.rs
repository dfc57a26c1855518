//! Delivery failures per channel and destination country, by day: what the outbox worker
//! saw when it sent email and SMS. Operators read them with `doorman mail status`; a later
//! issue turns a country whose SMS keep failing into a status banner ("Text messages to the
//! Philippines are delayed"). Successful sends are counted too, so a failure rate can be told
//! from a busy day.
//!
//! The country of an SMS is that of its E.164 number; email has no country (`None`, stored
//! as ""). No message body, code or address is kept here: only counts and the last error.

use crate::account::Country;
use crate::outbox::Channel;
use crate::phone::PhoneNumber;
use crate::store::StoreError;
use async_trait::async_trait;

pub const DAY_SECONDS: i64 = 86_400;

/// The start (00:00 UTC, Unix seconds) of the day `unix` falls in.
pub fn day_of(unix: i64) -> i64 {
    unix.div_euclid(DAY_SECONDS) * DAY_SECONDS
}

/// Where a message goes, for these statistics: an SMS's country from its number (`None`
/// when the number does not parse or belongs to no country); email has none.
pub fn destination_country(channel: Channel, recipient: &str) -> Option<Country> {
    match channel {
        Channel::Sms => PhoneNumber::parse(recipient, None).ok().and_then(|number| number.country()),
        Channel::Email => None,
    }
}

/// One attempt's outcome, as the worker records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    pub channel: Channel,
    pub country: Option<Country>,
    /// When the attempt ended (Unix seconds); counted under its UTC day.
    pub at: i64,
    /// `None` when the message was sent.
    pub failure: Option<AttemptFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptFailure {
    /// For operators; never holds the message body.
    pub error: String,
    /// The message will not be tried again (a dead letter).
    pub dead: bool,
}

/// The counts of one channel, country and day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryFailures {
    pub channel: Channel,
    /// `None` for email and for SMS to numbers without a country.
    pub country: Option<Country>,
    /// 00:00 UTC of the day, Unix seconds.
    pub day: i64,
    /// Messages sent that day.
    pub sent: i64,
    /// Failed attempts that day (a message retried three times counts three).
    pub failures: i64,
    /// Of those, the attempts after which the message was given up.
    pub dead: i64,
    pub last_error: Option<String>,
    pub updated_at: i64,
}

/// Everything one delivery attempt writes, together: the message's new state, the attempt
/// counted, and the audit event. One commit instead of three (issue 12: on PostgreSQL each is
/// a WAL flush, and every login's new-device email took three).
#[derive(Debug, Clone)]
pub struct DeliveryRecord {
    pub message_id: String,
    /// `failure: None`: sent (its body is erased).
    pub attempt: DeliveryAttempt,
    /// A failed message's next try; `None` gives it up (a dead letter, its body erased).
    pub retry_at: Option<i64>,
    pub audit: crate::audit::AuditRecord,
}

#[async_trait]
pub trait DeliveryFailureStore: Send + Sync {
    /// Writes the [`DeliveryRecord`]s of a group of attempts (of different messages) in one
    /// transaction; the counts are upserts of sums under each channel, country and day, so
    /// replicas recording at once add up.
    async fn record_deliveries(&self, records: &[DeliveryRecord]) -> Result<(), StoreError>;
    /// The days from `since_day` on that had at least one failure, newest day first, then
    /// by channel and country.
    async fn delivery_failures_since(&self, since_day: i64) -> Result<Vec<DeliveryFailures>, StoreError>;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn days_start_at_midnight_utc() {
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(86_399), 0);
        assert_eq!(day_of(86_400), 86_400);
        assert_eq!(day_of(-1), -86_400);
        // 2026-11-26T15:30:00Z
        assert_eq!(day_of(1_795_707_000), 1_795_651_200);
    }

    #[test]
    fn sms_are_counted_under_the_country_of_their_number() {
        assert_eq!(destination_country(Channel::Sms, "+639171234521"), Some(Country::parse("PH").unwrap()));
        assert_eq!(destination_country(Channel::Sms, "+447400123456"), Some(Country::parse("GB").unwrap()));
        assert_eq!(destination_country(Channel::Sms, "not a number"), None);
        assert_eq!(destination_country(Channel::Email, "maria@example.com"), None);
    }
}
