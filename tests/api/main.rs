//! Black-box tests of the whole application over HTTP, on SQLite and on PostgreSQL.
//! Checklist items are cited as S<n>.<m>; docs/SECURITY.md maps each item to the tests that prove it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod helpers;

mod abandoned;
mod activity;
mod audit_chain;
mod bad_input;
mod banners;
mod catalogue;
mod cli;
mod code_steps;
mod compromise;
mod connections;
mod csrf_and_headers;
mod dead_ends;
mod devices;
mod disk_full;
mod email_change;
mod faults;
mod forgot_answer;
mod forgot_coalescing;
mod guessing;
mod help;
mod jobs;
mod keys;
mod lockout;
mod login;
mod mail;
mod migrations;
mod overload;
mod own_postgres;
mod password_change;
mod permissions;
mod postgres_restart;
mod pwned;
mod recovery;
mod recovery_requests;
mod replicas;
mod retention;
mod sessions;
mod sms;
mod support;
mod support_actions;
mod throttling;
mod two_step;
mod two_step_reset;
