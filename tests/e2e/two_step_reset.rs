//! Lost phone and recovery codes in a real browser (issue 11 §2): from the second step,
//! "I can't use any of these", confirm by email, wait (one minute, then the app's clock is
//! moved past it), finish with the emailed link and the password, and land on Security
//! settings with 2-step off. The reset page, opened without a session, sends the visitor to
//! log in and the login comes back to it. Every new page passes axe-core at both sizes.

use crate::checks::PageWalk;
use crate::harness::{Browser, PASSWORD, USERNAME, browser_test_with};
use crate::two_step::{enrol_authenticator, log_out};
use anyhow::{bail, ensure};
use fantoccini::Locator;

/// The first link in the demo mailbox whose address contains `part`, once delivered.
async fn link_in_mailbox(browser: &Browser, part: &'static str) -> anyhow::Result<String> {
    browser
        .wait_for(part, move || async move {
            browser.goto("/dev/mailbox").await?;
            for link in browser.client.find_all(Locator::Css("a.mail-link")).await? {
                let href = link.attr("href").await?.unwrap_or_default();
                if href.contains(part) {
                    return Ok(href);
                }
            }
            bail!("no {part} link in the mailbox yet")
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_every_method_then_a_two_step_reset_after_a_short_wait() {
    browser_test_with(
        |config| config.two_step_reset_wait_minutes = 1,
        |browser| async move {
            let mut walk = PageWalk::new(&browser);
            browser.goto("/login").await?;
            browser.log_in(USERNAME, PASSWORD).await?;
            browser.wait_for_path("/account").await?;
            enrol_authenticator(&browser).await?;
            log_out(&browser).await?;

            // From the help center's link, without a session: the login page says why it
            // asks for the password, and comes back once it is right.
            browser.goto("/login/two-step-reset").await?;
            browser.wait_for_path("/login").await?;
            ensure!(browser.text("#then-two-step-reset").await?.contains("not be asked for a code"));
            walk.check("log in for a 2-step reset").await?;
            browser.log_in(USERNAME, PASSWORD).await?;
            browser.wait_for_path("/login/two-step-reset").await?;
            browser.client.delete_all_cookies().await?;
            browser.goto("/login").await?;

            // The phone is lost: the password, then "I can't use any of these".
            browser.log_in(USERNAME, PASSWORD).await?;
            browser.wait_for_path("/login/verify").await?;
            browser.find("#cannot-use-methods a").await?.click().await?;
            browser.wait_for_path("/login/two-step-reset").await?;
            let page = browser.text("main").await?;
            ensure!(page.contains("waiting period") && page.contains("1 minute"), "the page explains what happens: {page}");
            walk.check("2-step reset, what happens").await?;
            browser.button("Email me a link to start").await?.click().await?;
            let sent = browser.text("#two-step-reset-status").await?;
            ensure!(sent.contains("We emailed a link"), "{sent}");
            walk.check("2-step reset, email sent").await?;

            // Opening the link changes nothing; the button starts the wait.
            let confirm = link_in_mailbox(&browser, "/two-step-reset/confirm?token=").await?;
            browser.client.goto(&confirm).await?;
            browser.wait_for_path("/two-step-reset/confirm").await?;
            ensure!(browser.client.current_url().await?.query().is_none(), "the token left the address bar");
            walk.check("2-step reset, confirm").await?;
            browser.button("Start the waiting period").await?.click().await?;
            let started = browser.text("#two-step-reset-status").await?;
            ensure!(started.contains("The waiting period has started"), "{started}");
            walk.check("2-step reset, waiting").await?;
            link_in_mailbox(&browser, "/two-step-reset/cancel?token=").await?;

            // The status page shows the wait.
            browser.goto("/login/two-step-reset").await?;
            let waiting = browser.text("#two-step-reset-status").await?;
            ensure!(waiting.contains("Your 2-step reset is waiting"), "{waiting}");
            walk.check("2-step reset, status").await?;

            // The wait ends; the finish link arrives. Opened in a browser that has not given
            // the password, it asks for it first, then comes back here.
            browser.clock.advance(61);
            let finish = link_in_mailbox(&browser, "/two-step-reset/finish?token=").await?;
            browser.client.delete_all_cookies().await?;
            browser.goto("/login").await?;
            browser.client.goto(&finish).await?;
            browser.wait_for_path("/two-step-reset/finish").await?;
            walk.check("2-step reset, finish before the password").await?;
            browser.find("main a[href='/login']").await?.click().await?;
            browser.wait_for_path("/login").await?;
            browser.log_in(USERNAME, PASSWORD).await?;
            browser.wait_for_path("/two-step-reset/finish").await?;
            walk.check("2-step reset, finish").await?;
            browser.button("Remove 2-step and sign in").await?.click().await?;

            // Straight on to set up a new method.
            browser.wait_for_path("/account/security").await?;
            ensure!(browser.text("#two-step-state").await? == "off", "2-step is off until a new method is set up");
            walk.finish()
        },
    )
    .await;
}
