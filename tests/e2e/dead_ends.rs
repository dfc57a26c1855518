//! A stuck person always has a next step (issue 10): a missing page keeps the signed-in
//! header and links onwards, logging out from the header of any page says so, and the first
//! 2-step method is followed by a prompt for recovery codes.

use crate::harness::{browser_test, PASSWORD, USERNAME};
use crate::two_step::enrol_authenticator;
use anyhow::{ensure, Context};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_person_always_has_a_next_step() {
    browser_test(|browser| async move {
        browser.goto("/login").await?;
        browser.log_in(USERNAME, PASSWORD).await?;
        browser.wait_for_path("/account").await?;

        // A page that is not there: the header still knows who is signed in, and the page
        // links to help and back to the account.
        browser.goto("/no/such/page").await?;
        ensure!(browser.text("h1").await? == "Page not found");
        ensure!(browser.text(".site-bar nav").await?.contains(USERNAME), "the header forgot the signed-in person");
        browser.find("#header-logout").await.context("a log-out button in the header")?;
        browser.find("#error-help").await?.click().await.context("following the help link")?;
        browser.wait_for_path("/help").await?;

        // The first method: the page asks for recovery codes before anything else.
        enrol_authenticator(&browser).await?;
        let prompt = browser.text("#recovery-codes-prompt").await.context("the recovery-codes prompt")?;
        ensure!(prompt.contains("Save recovery codes now"), "{prompt}");
        browser.find("#make-recovery-codes-now").await?.click().await?;
        ensure!(browser.text("#recovery-codes").await?.split_whitespace().count() == 10, "ten codes shown");
        browser.goto("/account/security").await?;
        ensure!(browser.client.find(fantoccini::Locator::Css("#recovery-codes-prompt")).await.is_err(), "asked again after saving");

        // Log out from the header of a page that is not the account page.
        browser.goto("/help").await?;
        browser.find("#header-logout").await?.click().await.context("logging out from the header")?;
        browser.wait_for_path("/login").await?;
        ensure!(browser.text("#logged-out").await? == "You are logged out.");
        Ok(())
    })
    .await;
}
