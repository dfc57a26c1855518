//! Browser end-to-end tests: real headless Chromium, driven through chromedriver with
//! fantoccini, against the app started in-process with its own SQLite database.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`scripts/install-browser.sh`). When
//! either is missing the tests fail and say so; they never skip.
//!
//! On a failure the test saves a screenshot and the page source under
//! `target/tmp/e2e/` and names the files in its message.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;
mod help;
mod login;
mod recovery;
mod two_step;
