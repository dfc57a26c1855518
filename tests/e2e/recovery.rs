//! Forgot password in a real browser: ask, open the email from the demo mailbox, choose a
//! new password, log in with it; and the code route as a phone user walks it.

use crate::harness::{Browser, EMAIL, PASSWORD, USERNAME, browser_test};
use crate::two_step::{enrol_authenticator, log_out};
use anyhow::{Context, bail, ensure};
use fantoccini::Locator;
use std::time::{Duration, Instant};

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

/// The demo mailbox as another device sees it (the person's phone): (subject, text) of every
/// message, newest first.
async fn mailbox(browser: &Browser) -> anyhow::Result<Vec<(String, String)>> {
    let html = reqwest::get(browser.base.join("/dev/mailbox")?).await?.text().await?;
    let unescape =
        |s: &str| s.replace("&#x27;", "'").replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
    let between = |s: &str, open: &str, close: &str| -> Option<String> {
        let start = s.find(open)? + open.len();
        Some(unescape(&s[start..start + s[start..].find(close)?]))
    };
    Ok(html
        .split("<article class=\"mail\">")
        .skip(1)
        .filter_map(|article| Some((between(article, "<h2>", "</h2>")?, between(article, "<pre>", "</pre>")?)))
        .collect())
}

/// Waits for the `nth` message (counting from 1, oldest first) whose subject contains
/// `subject`, and returns its text.
pub(crate) async fn wait_for_message(browser: &Browser, subject: &str, nth: usize) -> anyhow::Result<String> {
    // Generous: the worker backs off while a busy machine keeps the database locked.
    let what = format!("message {nth} about {subject:?} in the demo mailbox");
    browser
        .wait_for_within(Duration::from_secs(60), &what, || async {
            let messages = mailbox(browser).await?;
            let mut matching: Vec<&String> = messages.iter().filter(|(s, _)| s.contains(subject)).map(|(_, t)| t).collect();
            matching.reverse();
            ensure!(matching.len() >= nth, "the mailbox holds {messages:?}");
            Ok(matching[nth - 1].clone())
        })
        .await
}

/// The first run of `len` digits in a text, spaces inside allowed ("1234 5678").
pub(crate) fn digits(text: &str, len: usize) -> anyhow::Result<String> {
    text.split(|c: char| !c.is_ascii_digit() && c != ' ')
        .map(|w| w.replace(' ', ""))
        .find(|w| w.len() == len)
        .with_context(|| format!("no {len}-digit code in {text:?}"))
}

/// Whether the radio for the method labelled `title` is checked, as the browser sees it.
async fn is_checked(browser: &Browser, title: &str) -> anyhow::Result<bool> {
    let xpath = format!("//label[contains(., '{title}')]/input[@type='radio']");
    let radio = browser.client.find(fantoccini::Locator::XPath(&xpath)).await.with_context(|| format!("the radio for {title}"))?;
    Ok(radio.prop("checked").await?.as_deref() == Some("true"))
}

/// Issue 10, as a phone user walks it: an account with an authenticator app (the default) and
/// a phone asks for a reset, reads the email on another device and types its code; at "Confirm
/// it is you" the phone says it will text a code; "Text me a code" selects the phone, says
/// where the code went and puts the cursor in the field; the texted code then works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_by_code_on_a_phone_texts_a_code_and_selects_the_phone() {
    browser_test(|browser| async move {
        browser.sign_in().await?;
        enrol_authenticator(&browser).await?;
        // A phone as a second method, confirmed by the texted code.
        browser.goto("/account/security").await?;
        browser.find("#phone").await?.send_keys("0917 123 4521").await?;
        browser.button("Text me a code").await?.click().await?;
        // One method gets at most one code every 30 s, whatever it is for.
        let next_code_allowed = Instant::now() + Duration::from_secs(31);
        let enrolment_text = wait_for_message(&browser, "SMS to +63", 1).await?;
        browser.find("#code").await?.send_keys(&digits(&enrolment_text, 6)?).await?;
        browser.button("Turn on").await?.click().await?;
        browser.wait_for_path("/account/security").await?;
        ensure!(browser.text("#my-methods").await?.contains("+63 *** *** 4521"), "the phone is on");
        log_out(&browser).await?;

        browser.find("#forgot-link").await?.click().await?;
        browser.find("#login").await?.send_keys(USERNAME).await?;
        browser.button("Email me a reset link").await?.click().await?;
        browser.find("#forgot-sent").await?;
        let reset_code = digits(&wait_for_message(&browser, "Reset your", 1).await?, 8)?;

        // Step 1: the code, read on another device.
        browser.find("#enter-code-link").await?.click().await?;
        ensure!(browser.text("#reset-step").await?.starts_with("Step 1 of 2"));
        browser.find("#login").await?.send_keys(USERNAME).await?;
        browser.find("#code").await?.send_keys(&reset_code).await?;
        browser.button("Continue").await?.click().await?;

        // Step 2 (at the same path as step 1): the app is the default; the phone offers to
        // text a code.
        browser.find("#reset-second-step").await?;
        ensure!(browser.text("#reset-step").await?.starts_with("Step 2 of 2"));
        ensure!(is_checked(&browser, "Authenticator app").await?, "the default method is selected first");
        let phone_row = browser.client.find(fantoccini::Locator::XPath("//div[@class='method-choice'][contains(., '4521')]")).await?;
        let offer = phone_row.text().await?;
        ensure!(offer.contains("We'll text you a code.") && !offer.contains("We texted"), "before sending: {offer:?}");
        tokio::time::sleep_until(next_code_allowed.into()).await;
        browser.button("Text me a code").await?.click().await?;

        // Sent: the phone is selected, the page says where the code went, the cursor is in the field.
        let notice = browser.text("#reset-notice").await?;
        ensure!(notice == "We texted a code to +63 *** *** 4521. It works for 10 minutes.", "{notice:?}");
        ensure!(is_checked(&browser, "Text message").await?, "sending selected the phone");
        ensure!(!is_checked(&browser, "Authenticator app").await?);
        let focused = browser.client.active_element().await?;
        ensure!(focused.attr("id").await?.as_deref() == Some("factor_code"), "the code field has the focus");
        let sms = wait_for_message(&browser, "SMS to +63", 2).await?;
        focused.send_keys(&digits(&sms, 6)?).await?;
        browser.find("#new_password").await?.send_keys(NEW_PASSWORD).await?;
        browser.button("Set new password").await?.click().await?;
        let done = browser.text("#reset-done").await?;
        ensure!(done.starts_with("Your password was changed"), "{done:?}");

        browser.goto("/login").await?;
        browser.log_in(USERNAME, NEW_PASSWORD).await?;
        browser.wait_for_path("/login/verify").await?;
        Ok(())
    })
    .await;
}

/// Issue 10: after five wrong codes even the right one is refused, and the page says why and
/// what to do next (a new email, help, log in) instead of "That code is not right".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_used_up_reset_code_says_so_and_offers_the_ways_forward() {
    browser_test(|browser| async move {
        browser.goto("/forgot-password").await?;
        browser.find("#login").await?.send_keys(USERNAME).await?;
        browser.button("Email me a reset link").await?.click().await?;
        browser.find("#forgot-sent").await?;
        let right = digits(&wait_for_message(&browser, "Reset your", 1).await?, 8)?;
        let wrong = if right == "11111111" { "22222222" } else { "11111111" };
        for attempt in 0..6 {
            let code = if attempt < 5 { wrong } else { right.as_str() };
            browser.goto("/reset-password?with=code").await?;
            browser.find("#login").await?.send_keys(USERNAME).await?;
            browser.find("#code").await?.send_keys(code).await?;
            browser.button("Continue").await?.click().await?;
            browser.find("#reset-error").await?;
        }
        let said = browser.text("#reset-error").await?;
        ensure!(said.starts_with("Too many tries for this code"), "the right code after five wrong ones: {said:?}");
        browser.find("#new-email-link").await?.click().await.context("following 'Ask for a new email'")?;
        browser.wait_for_path("/forgot-password").await?;
        Ok(())
    })
    .await;
}
