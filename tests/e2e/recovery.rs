//! Forgot password in a real browser: ask, open the email from the demo mailbox, choose a
//! new password, log in with it.

use crate::harness::{browser_test, Browser, EMAIL, PASSWORD, USERNAME};
use anyhow::{bail, ensure, Context};
use std::time::{Duration, Instant};

const NEW_PASSWORD: &str = "violet canyon drumbeat";

/// The demo mailbox fills when the worker has delivered; reload until the reset link is there.
async fn open_reset_link_from_mailbox(browser: &Browser) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        browser.goto("/dev/mailbox").await?;
        let links = browser.client.find_all(fantoccini::Locator::Css("a.mail-link")).await?;
        for link in links {
            let href = link.attr("href").await?.unwrap_or_default();
            if href.contains("/reset-password?token=") {
                link.click().await.context("clicking the reset link in the email")?;
                return Ok(());
            }
        }
        if Instant::now() >= deadline {
            bail!("no reset email reached the demo mailbox within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
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
