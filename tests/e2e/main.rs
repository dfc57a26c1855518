//! Browser end-to-end tests: real headless Chromium, driven through chromedriver with
//! fantoccini, against the app started in-process with its own SQLite database.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`scripts/install-browser.sh`), and
//! axe-core from npm (`npm ci` in tests/e2e; `scripts/test` does both). When any is missing
//! the tests fail and say so; they never skip.
//!
//! `pages` walks every kind of page through axe-core at desktop and phone sizes;
//! `keyboard` logs in, passes the second step and resets a password with Tab and Enter only;
//! `phone` checks a long banner on a 360×740 screen. With `DOORMAN_SCREENSHOTS=1` the walks
//! also save docs/screenshots/*.png, which the README shows.
//!
//! On a failure the test saves a screenshot and the page source under
//! `target/tmp/e2e/` and names the files in its message.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod checks;
mod compromise;
mod dead_ends;
mod forgot_answer;
mod harness;
mod help;
mod keyboard;
mod login;
mod pages;
mod phone;
mod recovery;
mod recovery_request;
mod support;
mod support_actions;
mod two_step;
mod two_step_reset;
