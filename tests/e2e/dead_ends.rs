//! A stuck person always has a next step (issue 10): a missing page keeps the signed-in
//! header and links onwards, logging out from the header of any page says so, and the first
//! 2-step method is followed by a prompt for recovery codes.

use crate::harness::{USERNAME, browser_test};
use crate::recovery::{digits, wait_for_message};
use crate::two_step::{code_now, enrol_authenticator};
use anyhow::{Context, ensure};
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
        ensure!(browser.text("#question-error").await?.contains("too easy to guess"), "a three-letter answer was accepted");

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

/// Before signing in: a dead reset link and a paused login both lead somewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_link_and_a_paused_login_lead_onwards() {
    browser_test(|browser| async move {
        browser.goto(&format!("/reset-password?token={}", "A".repeat(43))).await?;
        ensure!(browser.text("#reset-error").await?.contains("not valid any more"));
        browser.find("#new-email-link").await?.click().await.context("following 'Ask for a new email'")?;
        browser.wait_for_path("/forgot-password").await?;

        browser.goto("/login").await?;
        for _ in 0..8 {
            browser.log_in(USERNAME, "not the password at all").await?;
            browser.find("#login-error").await?;
            if browser.client.find(fantoccini::Locator::Css("#throttled-reset-link")).await.is_ok() {
                break;
            }
        }
        browser.find("#throttled-reset-link").await.context("the paused login links a reset")?.click().await?;
        browser.wait_for_path("/forgot-password").await?;
        Ok(())
    })
    .await;
}

/// A phone as a second method: its field looks like the others; its hint is its number, not
/// its name again; and at sign-in it says a code will be texted until one is asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_is_texted_only_when_asked() {
    browser_test(|browser| async move {
        browser.sign_in().await?;
        enrol_authenticator(&browser).await?;
        let phone = browser.find("#phone").await?;
        let answer = browser.find("#answer").await?;
        let style = |e: &fantoccini::elements::Element| {
            let e = e.clone();
            async move { Ok::<_, anyhow::Error>((e.css_value("font-size").await?, e.css_value("width").await?)) }
        };
        ensure!(style(&phone).await? == style(&answer).await?, "the phone field is styled like the others");
        phone.send_keys("0917 123 4521").await?;
        browser.button("Text me a code").await?.click().await?;
        let texted = wait_for_message(&browser, "SMS to +63", 1).await?;
        browser.find("#code").await?.send_keys(&digits(&texted, 6)?).await?;
        browser.button("Turn on").await?.click().await?;
        browser.wait_for_path("/account/security").await?;
        let listed = browser.text("#my-methods").await?;
        ensure!(listed.contains("6-digit code from your app") && listed.contains("+63 *** *** 4521"), "{listed}");
        ensure!(!listed.contains("Authenticator app\nAuthenticator app"), "a hint repeats its title: {listed}");

        browser.find("#header-logout").await?.click().await?;
        browser.wait_for_path("/login").await?;
        browser.log_in(USERNAME, crate::harness::PASSWORD).await?;
        browser.wait_for_path("/login/verify").await?;
        browser.find("#try-another").await?.click().await?;
        browser.client.find(fantoccini::Locator::XPath("//ul[@id='method-list']//a[contains(., '4521')]")).await?.click().await?;
        let offer = browser.text("#send-hint").await?;
        ensure!(offer.contains("We'll text you a code at +63 *** *** 4521"), "{offer}");
        let page = browser.client.source().await?;
        ensure!(!page.contains("Enter the code we texted"), "it says a code was texted before one was asked for");
        Ok(())
    })
    .await;
}
