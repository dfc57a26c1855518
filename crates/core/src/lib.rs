//! doorman's domain core: the values, rules and operations of accounts, passwords,
//! sessions, throttling and audit. It knows nothing of HTTP or SQL: storage is reached
//! through the traits in [`store`], implemented by the server crate.
//!
//! One service per feature (`auth`, `recovery`, `two_step`, `password_change`,
//! `email_change`, `payments`, `content`, `audit_chain`, `roles`), each holding the shared
//! [`deps::Deps`] and its own settings; no feature imports another's service. What two
//! features share sits below them: [`verifier`] (2-step methods), [`sign_in`] (new sessions
//! and trusted devices), [`new_password`] (the rules of new passwords), [`approval`], and the
//! proofs in [`step_up`]. [`services`] wires them together. Requests bring their values as the
//! domain's own types, parsed by their constructors at the edge ([`input`]).

pub mod account;
pub mod activity;
pub mod answer_reset;
pub mod approval;
pub mod audit;
pub mod audit_chain;
pub mod auth;
pub mod banners;
pub mod breached;
pub mod clock;
pub mod compromise;
pub mod content;
pub mod delivery_failures;
pub mod deps;
pub mod device;
pub mod email_change;
pub mod factors;
pub mod help;
pub mod input;
pub mod jobs;
pub mod keys;
pub mod new_password;
pub mod notice;
pub mod outbox;
pub mod password;
pub mod password_change;
pub mod payments;
pub mod phone;
pub mod proof_of_work;
pub mod question;
pub mod recovery;
pub mod recovery_request;
pub mod report_link;
pub mod reset_hold;
pub mod retention;
pub mod roles;
pub mod services;
pub mod session;
pub mod sign_in;
pub mod step_up;
pub mod store;
pub mod support;
pub mod support_actions;
pub mod support_view;
pub mod throttle;
pub mod trusted_device;
pub mod two_step;
pub mod two_step_reset;
pub mod verifier;

pub use account::{Account, AccountId, Country, EmailAddress, LoginIdentifier, UserType, Username};
pub use clock::{Clock, ManualClock, SystemClock};
pub use password::{Password, PasswordAttempt};
