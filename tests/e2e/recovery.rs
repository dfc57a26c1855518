//! Forgot password in a real browser: ask, open the email from the demo mailbox, choose a
//! new password, log in with it.

use crate::harness::{browser_test, Browser, EMAIL, PASSWORD, USERNAME};
use anyhow::{bail, ensure, Context};
use fantoccini::Locator;

const NEW_PASSWORD: &str = "violet canyon drumbeat";

/// The reset link of a reset email, once the worker has delivered it to the demo mailbox
/// (reloading the mailbox until then). Leaves the browser on the mailbox.
pub async fn reset_link_in_mailbox(browser: &Browser) -> anyhow::Result<String> {
    browser
        .wait_for("a reset email in the demo mailbox", move || async move {
            browser.goto("/dev/mailbox").await?;
            for link in browser.client.find_all(Locator::Css("a.mail-link")).await? {
                let href = link.attr("href").await?.unwrap_or_default();
                if href.contains("/reset-password?token=") {
                    return Ok(href);
                }
            }
            bail!("the mailbox has no reset link yet")
        })
        .await
}

async fn open_reset_link_from_mailbox(browser: &Browser) -> anyhow::Result<()> {
    reset_link_in_mailbox(browser).await?;
    let link = browser.find("a.mail-link[href*='/reset-password?token=']").await?;
    link.click().await.context("clicking the reset link in the email")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgot_password_by_email_then_log_in_with_the_new_password() {
    browser_test(|browser| async move {
        browser.goto("/login").await?;
        browser.find("#forgot-link").await?.click().await?;
        browser.wait_for_path("/forgot-password").await?;
        browser.find("#login").await?.send_keys(EMAIL).await?;
        browser.button("Email me a reset link").await?.click().await?;
        let sent = browser.text("#forgot-sent").await?;
        ensure!(sent == "If an account matches, we have sent an email with the next steps.", "the page says {sent:?}");

        open_reset_link_from_mailbox(&browser).await?;
        // The token left the address bar at once (S1.8).
        browser.wait_for_path("/reset-password").await?;
        let url = browser.client.current_url().await?;
        ensure!(url.query().is_none(), "the token is still in the URL: {url}");

        browser.find("#new_password").await?.send_keys("short").await?;
        browser.button("Set new password").await?.click().await?;
        let error = browser.text("#reset-error").await?;
        ensure!(error.contains("at least 12 characters"), "a weak password is refused with the reason: {error:?}");

        browser.find("#new_password").await?.send_keys(NEW_PASSWORD).await?;
        browser.button("Set new password").await?.click().await?;
        let done = browser.text("#reset-done").await?;
        ensure!(done.starts_with("Your password was changed"), "{done:?}");

        browser.goto("/login").await?;
        browser.log_in(USERNAME, PASSWORD).await?;
        let error = browser.text("#login-error").await?;
        ensure!(error.contains("not correct"), "the old password no longer works: {error:?}");
        browser.log_in(USERNAME, NEW_PASSWORD).await?;
        browser.wait_for_path("/account").await?;
        ensure!(browser.text("#welcome strong").await? == USERNAME);
        Ok(())
    })
    .await;
}
