//! doorman's domain core: the values, rules and operations of accounts, passwords,
//! sessions, throttling and audit. It knows nothing of HTTP or SQL: storage is reached
//! through the traits in [`store`], implemented by the server crate.

pub mod account;
pub mod audit;
pub mod audit_chain;
pub mod auth;
pub mod banners;
pub mod breached;
pub mod clock;
pub mod content;
pub mod delivery_failures;
pub mod device;
pub mod email_change;
pub mod factors;
pub mod help;
pub mod jobs;
pub mod keys;
pub mod outbox;
pub mod password;
pub mod password_change;
pub mod payments;
pub mod phone;
pub mod recovery;
pub mod roles;
pub mod session;
pub mod store;
pub mod throttle;
pub mod trusted_device;
pub mod two_step;

pub use account::{Account, AccountId, Country, EmailAddress, LoginIdentifier, UserType, Username};
pub use clock::{Clock, ManualClock, SystemClock};
pub use password::Password;
