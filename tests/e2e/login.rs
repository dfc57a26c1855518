//! Logging in and out through the pages, as a person does in a real browser.

use crate::harness::{Browser, EMAIL, PASSWORD, SESSION_COOKIE, USERNAME, browser_test};
use anyhow::{Context, ensure};

const WRONG_CREDENTIALS: &str = "The username, email or password is not correct.";

async fn expect_signed_in_as(browser: &Browser, username: &str) -> anyhow::Result<()> {
    browser.wait_for_path("/account").await?;
    let welcome = browser.text("#welcome").await?;
    ensure!(welcome == format!("Signed in as {username}."), "the account page says {welcome:?}");
    let shown = browser.text("#welcome strong").await?;
    ensure!(shown == username, "the account page names {shown:?} instead of {username:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_and_logout_in_the_browser() {
    browser_test(|browser| async move {
        browser.goto("/login").await?;
        browser.log_in(USERNAME, PASSWORD).await?;
        expect_signed_in_as(&browser, USERNAME).await?;

        let cookies = browser.client.get_all_cookies().await?;
        let Some(session_cookie) = cookies.iter().find(|c| c.name() == SESSION_COOKIE).cloned() else {
            let names: Vec<&str> = cookies.iter().map(|c| c.name()).collect();
            anyhow::bail!("no {SESSION_COOKIE} cookie after logging in; the browser has {names:?}");
        };

        // Control: the same cookie, put back through WebDriver, does sign in while the
        // session lives; so the check after logout below means something.
        browser.client.delete_cookie(SESSION_COOKIE).await?;
        browser.client.add_cookie(session_cookie.clone()).await.context("putting the session cookie back")?;
        browser.goto("/account").await?;
        expect_signed_in_as(&browser, USERNAME).await?;

        browser.button("Log out").await?.click().await.context("clicking Log out")?;
        browser.wait_for_path("/login").await?;
        browser.find("#login").await?;

        browser.goto("/account").await?;
        browser.wait_for_path("/login").await?;

        // The browser dropped its cookie on logout; the server must have ended the session
        // too (S7.5), so the old cookie, put back, must not sign anyone in.
        browser.client.add_cookie(session_cookie).await.context("putting the old session cookie back")?;
        browser.goto("/account").await?;
        browser.wait_for_path("/login").await?;
        browser.find("#login").await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_email_works() {
    browser_test(|browser| async move {
        browser.goto("/login").await?;
        browser.log_in(EMAIL, PASSWORD).await?;
        expect_signed_in_as(&browser, USERNAME).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_shows_a_clear_message() {
    browser_test(|browser| async move {
        browser.goto("/login").await?;
        browser.log_in(USERNAME, "not the right password").await?;

        let message = browser.text("#login-error").await?;
        ensure!(message == WRONG_CREDENTIALS, "the error says {message:?}");
        let role = browser.find("#login-error").await?.attr("role").await?;
        ensure!(role.as_deref() == Some("alert"), "the error has role {role:?}, not \"alert\"");
        browser.wait_for_path("/login").await?;

        let login = browser.value("#login").await?;
        ensure!(login == USERNAME, "the login field holds {login:?} instead of the typed {USERNAME:?}");
        let password = browser.value("#password").await?;
        ensure!(password.is_empty(), "the password field was not emptied (it holds {} characters)", password.chars().count());
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_password_toggle_reveals_the_password() {
    browser_test(|browser| async move {
        browser.goto("/login").await?;
        let password = browser.find("#password").await?;
        password.send_keys(PASSWORD).await?;
        browser.wait_for_attr(&password, "type", "password").await?;

        let toggle = browser.find("button.show-password").await?;
        toggle.click().await.context("clicking Show")?;
        browser.wait_for_attr(&password, "type", "text").await?;
        browser.wait_for_attr(&toggle, "aria-pressed", "true").await?;
        let value = browser.value("#password").await?;
        ensure!(value == PASSWORD, "revealing the password changed what was typed");

        toggle.click().await.context("clicking Hide")?;
        browser.wait_for_attr(&password, "type", "password").await?;
        browser.wait_for_attr(&toggle, "aria-pressed", "false").await?;
        Ok(())
    })
    .await;
}
