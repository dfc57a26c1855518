//! "This wasn't me" in a real browser (issue 11 §4): the link in a security email, opened
//! from the demo mailbox, asks before it locks; the locked account's login says what to do;
//! the new pages pass axe-core at both sizes.

use crate::checks::PageWalk;
use crate::harness::{Browser, PASSWORD, USERNAME, browser_test};
use anyhow::{Context, bail, ensure};
use fantoccini::Locator;

const NEW_PASSWORD: &str = "violet canyon drumbeat";

/// Opens the "this wasn't me" link of the newest security email in the demo mailbox.
async fn open_report_link_from_mailbox(browser: &Browser) -> anyhow::Result<()> {
    browser
        .wait_for("a \"this wasn't me\" link in the demo mailbox", move || async move {
            browser.goto("/dev/mailbox").await?;
            for link in browser.client.find_all(Locator::Css("a.mail-link")).await? {
                if link.attr("href").await?.unwrap_or_default().contains("/report-not-me?token=") {
                    return Ok(());
                }
            }
            bail!("no report link yet")
        })
        .await?;
    let link = browser.find("a.mail-link[href*='/report-not-me?token=']").await?;
    link.click().await.context("clicking the \"this wasn't me\" link in the email")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn this_wasnt_me_from_the_mailbox_locks_the_account_after_a_confirmation() {
    browser_test(|browser| async move {
        let mut walk = PageWalk::new(&browser);
        // Someone who knows the password changes it.
        browser.goto("/login").await?;
        browser.log_in(USERNAME, PASSWORD).await?;
        browser.wait_for_path("/account").await?;
        browser.goto("/account/password").await?;
        browser.find("#current_password").await?.send_keys(PASSWORD).await?;
        browser.find("#new_password").await?.send_keys(NEW_PASSWORD).await?;
        browser.button("Change password").await?.click().await?;
        browser.find("#password-changed").await?;

        // The owner opens the email's link: a page that asks, with the token out of the URL.
        open_report_link_from_mailbox(&browser).await?;
        browser.wait_for_path("/report-not-me").await?;
        let url = browser.client.current_url().await?;
        ensure!(url.query().is_none(), "the token is still in the URL: {url}");
        let reported = browser.text("#reported-change").await?;
        ensure!(reported == "Your password was changed.", "{reported:?}");
        walk.check("this wasn't me, before confirming").await?;
        browser.goto("/account").await?;
        ensure!(browser.text("#welcome strong").await? == USERNAME, "opening the link changed nothing");

        open_report_link_from_mailbox(&browser).await?;
        browser.wait_for_path("/report-not-me").await?;
        browser.button("Lock my account").await?.click().await?;
        let locked = browser.text("#account-locked").await?;
        ensure!(locked.contains("Your case number is C-"), "{locked:?}");
        walk.check("this wasn't me, locked").await?;

        // Signed out everywhere; the right password gets the lock's message, only it.
        browser.goto("/account").await?;
        browser.wait_for_path("/login").await?;
        browser.log_in(USERNAME, NEW_PASSWORD).await?;
        let error = browser.text("#login-error").await?;
        ensure!(error.starts_with("This account is locked"), "{error:?}");
        browser.find("#locked-reset-link").await?;
        walk.check("log in to a locked account").await?;
        browser.log_in(USERNAME, "not the right password").await?;
        browser
            .wait_for("a wrong password to hear nothing of the lock", || async {
                let wrong = browser.text("#login-error").await?;
                ensure!(wrong.contains("not correct"), "{wrong:?}");
                Ok(())
            })
            .await?;

        // The public form, from the login page.
        browser.find("#report-compromise-link").await?.click().await?;
        browser.wait_for_path("/report-compromise").await?;
        walk.check("report a compromised account").await?;
        browser.button("Send the report").await?.click().await?;
        browser.find("#report-form-error").await?;
        walk.check("report a compromised account, no login").await?;
        browser.find("#login").await?.send_keys(USERNAME).await?;
        browser.button("Send the report").await?.click().await?;
        browser.find("#report-sent").await?;
        walk.check("report a compromised account, sent").await?;
        walk.finish()
    })
    .await;
}

/// "This wasn't me" beside an entry of the security activity page: a page that asks (with
/// the keyboard-reachable button), then the lock, signed out at once (issue 11 §4 × §5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn this_wasnt_me_on_the_activity_page_locks_after_a_confirmation() {
    browser_test(|browser| async move {
        let mut walk = PageWalk::new(&browser);
        browser.sign_in().await?;
        browser.goto("/account/activity").await?;
        browser.find("#activity-list a").await?.click().await?;
        let reported = browser.text("#reported-change").await?;
        ensure!(reported == "Signed in", "{reported:?}");
        walk.check("this wasn't me from the activity page, before confirming").await?;
        browser.button("Lock my account").await?.click().await?;
        let locked = browser.text("#account-locked").await?;
        ensure!(locked.contains("Your case number is C-"), "{locked:?}");
        walk.check("this wasn't me from the activity page, locked").await?;
        browser.goto("/account").await?;
        browser.wait_for_path("/login").await?;
        browser.log_in(USERNAME, PASSWORD).await?;
        let error = browser.text("#login-error").await?;
        ensure!(error.starts_with("This account is locked"), "{error:?}");
        walk.finish()
    })
    .await;
}
