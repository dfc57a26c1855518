//! A stuck person always has a next step (issue 10): a missing page keeps the signed-in
//! header and links onwards, logging out from the header of any page says so, and the first
//! 2-step method is followed by a prompt for recovery codes.

use crate::harness::{browser_test, USERNAME};
use crate::two_step::{code_now, enrol_authenticator};
use anyhow::{ensure, Context};
use doorman_core::factors::TotpSecret;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_person_always_has_a_next_step() {
    browser_test(|browser| async move {
        browser.sign_in().await?;

        // A page that is not there: the header still knows who is signed in, and the page
        // links to help and back to the account.
        browser.goto("/no/such/page").await?;
        ensure!(browser.text("h1").await? == "Page not found");
        ensure!(browser.text(".site-bar nav").await?.contains(USERNAME), "the header forgot the signed-in person");
        browser.find("#header-logout").await.context("a log-out button in the header")?;
        browser.find("#error-help").await?.click().await.context("following the help link")?;
        browser.wait_for_path("/help").await?;

        // A wrong code while adding the first method points to no other method.
        browser.goto("/account/security").await?;
        browser.find("#add-totp").await?.click().await?;
        let shown = browser.text("#totp-secret").await?;
        let secret = TotpSecret::from_base32(&shown.replace(' ', "")).context("the page shows a base32 key")?;
        browser.find("#code").await?.send_keys(&code_now(&secret, 5)?).await?;
        browser.button("Turn on").await?.click().await?;
        let refused = browser.text("#totp-error").await?;
        ensure!(!refused.contains("another method") && refused.contains("wait for the next one"), "{refused}");

        // The first method: the page asks for recovery codes before anything else.
        enrol_authenticator(&browser).await?;
        let prompt = browser.text("#recovery-codes-prompt").await.context("the recovery-codes prompt")?;
        ensure!(prompt.contains("Save recovery codes now"), "{prompt}");
        browser.find("#make-recovery-codes-now").await?.click().await?;
        ensure!(browser.text("#recovery-codes").await?.split_whitespace().count() == 10, "ten codes shown");
        browser.goto("/account/security").await?;
        ensure!(browser.client.find(fantoccini::Locator::Css("#recovery-codes-prompt")).await.is_err(), "asked again after saving");

        // A security answer a small dictionary would find is refused, with the reason.
        browser.find("#answer").await?.send_keys("cat").await?;
        browser.button("Save question").await?.click().await?;
        ensure!(browser.text("#security-error").await?.contains("too easy to guess"), "a three-letter answer was accepted");

        // Log out from the header of a page that is not the account page.
        browser.goto("/help").await?;
        browser.find("#header-logout").await?.click().await.context("logging out from the header")?;
        browser.wait_for_path("/login").await?;
        ensure!(browser.text("#logged-out").await? == "You are logged out.");

        // No access to the email: the forgot page links the way round, not a dead end.
        browser.find("#forgot-link").await?.click().await?;
        browser.find("#no-access-link").await?.click().await.context("following 'No access to this email?'")?;
        browser.wait_for_path("/recovery-request").await?;
        Ok(())
    })
    .await;
}
