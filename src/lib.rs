//! doorman: a self-hosted login and account-recovery server.
//!
//! Layout: `doorman-core` (crates/core) holds the domain; here live storage ([`store`]),
//! the web layer ([`web`]), the mail and job worker ([`delivery`]), configuration parsed into
//! typed [`settings`], the command line and start-up ([`app`]).

pub mod app;
pub mod breached;
pub mod cli;
pub mod config;
pub mod content_cli;
pub mod delivery;
pub mod email;
pub mod server;
pub mod settings;
pub mod store;
pub mod web;

pub use app::Application;
pub use config::Config;
