//! Keyboard only: Tab, Enter and typing, never a click, as a person without a mouse (or with
//! a screen reader) logs in, passes the second step and resets a password. Each page starts
//! with a "Skip to content" link; after a refused form the focus is on the field to fix,
//! which is marked invalid and described by the error.

use crate::harness::{Browser, EMAIL, PASSWORD, USERNAME, browser_test};
use crate::recovery::reset_link_in_mailbox;
use crate::two_step::{code_now, enrol_authenticator, log_out};
use anyhow::ensure;
use fantoccini::key::Key;

const NEW_PASSWORD: &str = "violet canyon drumbeat";

fn enter() -> String {
    char::from(Key::Enter).to_string()
}

/// The first Tab on a page reaches the visible "Skip to content" link; Enter on it moves the
/// focus to the page's own content, past the header and the notices.
async fn skip_to_content(browser: &Browser) -> anyhow::Result<()> {
    browser.tab_to("a.skip-link").await?;
    let link = browser.client.active_element().await?;
    let text = link.text().await?;
    ensure!(text == "Skip to content", "the first Tab reaches {text:?}, not the skip link");
    let top: f64 =
        serde_json::from_value(browser.client.execute("return document.activeElement.getBoundingClientRect().top", vec![]).await?)?;
    ensure!(top >= 0.0, "the focused skip link is off the screen (top {top})");
    browser.press(&enter()).await?;
    browser.expect_focus("main#main").await
}

/// The field is marked invalid, and its description is the error on the page.
async fn marked_wrong(browser: &Browser, field: &str, error_id: &str) -> anyhow::Result<()> {
    let element = browser.find(field).await?;
    let invalid = element.attr("aria-invalid").await?;
    ensure!(invalid.as_deref() == Some("true"), "{field} has aria-invalid {invalid:?}");
    let described = element.attr("aria-describedby").await?.unwrap_or_default();
    ensure!(described.split_whitespace().any(|id| id == error_id), "{field} is described by {described:?}, not by #{error_id}");
    Ok(())
}

/// From the top of the login page: skip link, the two fields, Enter.
async fn log_in_by_keyboard(browser: &Browser, login: &str, password: &str) -> anyhow::Result<()> {
    browser.find("#login").await?;
    skip_to_content(browser).await?;
    browser.tab_to("#login").await?;
    browser.press(login).await?;
    browser.tab_to("#password").await?;
    browser.press(&format!("{password}{}", enter())).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_in_with_the_keyboard_only() {
    browser_test(|browser| async move {
        browser.goto("/login").await?;
        log_in_by_keyboard(&browser, USERNAME, "not the right password").await?;

        // Refused: the error is on the page, and the focus waits in the password field
        // (the login is kept), which says what is wrong with it.
        let error = browser.text("#login-error").await?;
        ensure!(error.contains("not correct"), "the error says {error:?}");
        browser.expect_focus("#password").await?;
        marked_wrong(&browser, "#password", "login-error").await?;
        ensure!(browser.value("#login").await? == USERNAME, "the login was kept");

        browser.press(&format!("{PASSWORD}{}", enter())).await?;
        browser.wait_for_path("/account").await?;
        ensure!(browser.text("#welcome strong").await? == USERNAME);
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_step_with_the_keyboard_only() {
    browser_test(|browser| async move {
        // Setting up, not under test: an authenticator app, enrolled through the pages.
        browser.sign_in().await?;
        let secret = enrol_authenticator(&browser).await?;
        log_out(&browser).await?;

        log_in_by_keyboard(&browser, USERNAME, PASSWORD).await?;
        browser.wait_for_path("/login/verify").await?;
        // The code field has the focus: the code can be typed straight away.
        browser.expect_focus("#code").await?;
        let valid: Vec<String> = (-1..=1).map(|o| code_now(&secret, o)).collect::<anyhow::Result<_>>()?;
        let wrong = (0..10u8).map(|d| d.to_string().repeat(6)).find(|c| !valid.contains(c)).unwrap_or_default();
        browser.press(&format!("{wrong}{}", enter())).await?;

        let error = browser.text("#verify-error").await?;
        ensure!(error.contains("not right"), "the error says {error:?}");
        browser.expect_focus("#code").await?;
        marked_wrong(&browser, "#code", "verify-error").await?;

        browser.press(&format!("{}{}", code_now(&secret, 1)?, enter())).await?;
        browser.wait_for_path("/account").await?;
        ensure!(browser.text("#welcome strong").await? == USERNAME);
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_a_password_with_the_keyboard_only() {
    browser_test(|browser| async move {
        // From the login page to "Forgot password?", past the form.
        browser.goto("/login").await?;
        browser.find("#login").await?;
        skip_to_content(&browser).await?;
        for stop in ["#login", "#password", "button.show-password", "form[action='/login'] button[type=submit]", "#forgot-link"] {
            browser.tab_to(stop).await?;
        }
        browser.press(&enter()).await?;
        browser.wait_for_path("/forgot-password").await?;
        browser.find("#login").await?;
        skip_to_content(&browser).await?;
        browser.tab_to("#login").await?;
        browser.press(&format!("{EMAIL}{}", enter())).await?;
        browser.find("#forgot-sent").await?;

        // Opening the email's link is the mail app's part.
        let link = reset_link_in_mailbox(&browser).await?;
        browser.client.goto(&link).await?;
        browser.wait_for_path("/reset-password").await?;
        browser.find("#new_password").await?;
        skip_to_content(&browser).await?;
        browser.tab_to("#new_password").await?;
        browser.press(&format!("short{}", enter())).await?;

        let error = browser.text("#reset-error").await?;
        ensure!(error.contains("at least 12 characters"), "the error says {error:?}");
        browser.expect_focus("#new_password").await?;
        marked_wrong(&browser, "#new_password", "reset-error").await?;
        browser.press(&format!("{NEW_PASSWORD}{}", enter())).await?;

        let done = browser.text("#reset-done").await?;
        ensure!(done.starts_with("Your password was changed"), "{done:?}");
        skip_to_content(&browser).await?;
        browser.tab_to("main a[href='/login']").await?;
        browser.press(&enter()).await?;
        browser.wait_for_path("/login").await?;
        log_in_by_keyboard(&browser, USERNAME, NEW_PASSWORD).await?;
        browser.wait_for_path("/account").await?;
        ensure!(browser.text("#welcome strong").await? == USERNAME);
        Ok(())
    })
    .await;
}
