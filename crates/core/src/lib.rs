//! doorman's domain core: the values, rules and operations of accounts, passwords,
//! sessions, throttling and audit. It knows nothing of HTTP or SQL: storage is reached
//! through traits, implemented by the server crate: the shared ones in [`store`], and each
//! feature's own in the feature's file.
//!
//! One service per feature (`auth`, `recovery`, `two_step`, `password_change`,
//! `email_change`, `payments`, `content`, `audit_chain`, `roles`, ...), each holding the
//! shared [`deps::Deps`], its own storage handle (a trait declared in its file that combines
//! the few store traits it uses, e.g. [`auth::AuthStorage`]) and its own settings; no
//! feature imports another's service. What two features share sits below them: [`token`]
//! (the tokens emailed links carry), [`verifier`] (2-step methods), [`sign_in`] (new sessions
//! and trusted devices), [`new_password`] (the rules of new passwords), [`approval`],
//! [`report_link`], [`reset_hold`], and the proofs in [`step_up`]. [`services`] wires them
//! together and is imported by none. Requests bring their values as the domain's own types,
//! parsed by their constructors at the edge ([`input`], which names no feature). No file
//! imports one that imports it back, except a feature's own parts (`two_step/`, `support/`).

pub mod account;
pub mod activity;
pub mod answer_reset;
pub mod approval;
pub mod audit;
pub mod audit_chain;
pub mod auth;
pub mod banners;
pub mod batch;
pub mod breached;
pub mod case_link;
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
pub mod keyring;
pub mod keys;
mod memo;
pub mod new_password;
pub mod notice;
pub mod outbox;
pub mod password;
pub mod password_change;
pub mod payments;
pub mod phone;
pub mod proof_of_work;
pub mod question;
mod recent_intents;
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
pub mod throttle;
pub mod token;
pub mod trusted_device;
pub mod two_step;
pub mod two_step_reset;
pub mod verifier;

// The support console's parts, at the paths they had as files of their own.
pub use support::{actions as support_actions, view as support_view};

pub use account::{Account, AccountId, Country, EmailAddress, LoginIdentifier, UserType, Username};
pub use clock::{Clock, ManualClock, SystemClock};
pub use password::{Password, PasswordAttempt};
