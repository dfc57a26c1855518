//! Delivery: the worker that drains the durable outbox and the job queue, and the
//! transports a message leaves by (SMTP, or the dev outbox of `.eml` files when no SMTP
//! server is configured; for SMS, a signed webhook, a Twilio-compatible API or the dev
//! outbox: see [`sms`]; in tests, in memory: see [`Captured`]).
//!
//! A message is claimed with a lease, sent, then marked sent (its body erased) or failed
//! (retried with backoff, or dead-lettered). A crash between sending and marking means the
//! message is sent again once its lease runs out, with the same `Message-ID`, so receivers
//! can drop the duplicate: delivery is at least once, never silently lost.

mod capture;
mod dev_outbox;
mod send;
pub mod sms;
mod transport;
mod worker;

pub use capture::Captured;
pub use send::{SEND_DEADLINE, SEND_TIMEOUT, SendError};
pub use sms::SmsTransport;
pub use transport::{Transport, compose};
pub use worker::{BATCH_SIZE, LEASE_SECONDS, POLL_INTERVAL, Progress, Worker, run_workers, worker_id};
