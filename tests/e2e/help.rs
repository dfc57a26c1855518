//! The help center and banners in a real browser: a Philippines-only banner reaches a
//! Philippine freelancer and not a US client (S12.2), and voting on an article updates
//! "N out of M found this helpful" (S12.1).

use crate::harness::{Browser, PASSWORD, USERNAME, browser_test};
use anyhow::{Context, ensure};
use doorman_core::audit::RequestContext;
use doorman_core::auth::NewAccountRequest;
use doorman_core::help::{Slug, parse_article_file};
use doorman_core::{Country, EmailAddress, Password, UserType, Username};
use fantoccini::Locator;

const PH_BANNER: &str = "Withdrawals to Philippine banks are delayed today; we are on it.";

const BANNERS: &str = r#"{"global":{"message":"","icon":"info","start":"","end":""},"responsive":[
  {"message":"Withdrawals to Philippine banks are delayed today; we are on it.","country":"PH","usertype":"freelancer","icon":"warning","start":"","end":""},
  {"message":"","country":"All","usertype":"all","icon":"info","start":"","end":""}]}"#;

/// The texts of the banners at the top of the current page.
async fn banner_texts(browser: &Browser) -> anyhow::Result<Vec<String>> {
    let mut texts = Vec::new();
    for element in browser.client.find_all(Locator::Css(".banners .banner-text")).await? {
        texts.push(element.text().await?);
    }
    Ok(texts)
}

async fn log_out(browser: &Browser) -> anyhow::Result<()> {
    browser.goto("/account").await?;
    browser.button("Log out").await?.click().await.context("clicking Log out")?;
    browser.wait_for_path("/login").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn philippines_banner_shows_to_a_philippine_freelancer_and_not_to_a_us_client() {
    browser_test(|browser| async move {
        browser.services.content.import_banners(BANNERS, None, &RequestContext::cli()).await?;
        browser
            .services
            .auth
            .create_account(
                NewAccountRequest {
                    username: Username::parse("jordan")?,
                    email: EmailAddress::parse("jordan@example.com")?,
                    user_type: UserType::Client,
                    country: Country::parse("US")?,
                    password: Password::new(PASSWORD)?,
                },
                &RequestContext::cli(),
            )
            .await?;

        // Anonymous: no country, no user type, so no banner.
        browser.goto("/login").await?;
        browser.find("#login").await?;
        ensure!(banner_texts(&browser).await?.is_empty(), "an anonymous visitor sees a targeted banner");

        // maria: freelancer in the Philippines.
        browser.log_in(USERNAME, PASSWORD).await?;
        browser.wait_for_path("/account").await?;
        let shown = banner_texts(&browser).await?;
        ensure!(shown == [PH_BANNER], "maria sees {shown:?}");
        let banner = browser.find(".banners .banner").await?;
        ensure!(banner.attr("role").await?.as_deref() == Some("alert"), "a warning is announced as an alert");
        // It follows her to other pages.
        browser.goto("/help").await?;
        ensure!(banner_texts(&browser).await? == [PH_BANNER], "the banner is on every page");
        log_out(&browser).await?;

        // jordan: client in the United States.
        browser.log_in("jordan", PASSWORD).await?;
        browser.wait_for_path("/account").await?;
        let shown = banner_texts(&browser).await?;
        ensure!(shown.is_empty(), "jordan sees {shown:?}");
        log_out(&browser).await?;

        // Dismissing hides the banner for maria until its text changes.
        browser.log_in(USERNAME, PASSWORD).await?;
        browser.wait_for_path("/account").await?;
        browser.find(".banner-dismiss button").await?.click().await.context("dismissing the banner")?;
        // The click submits a form and reloads the page; wait for the new page rather than
        // reading the old one.
        let page = &browser;
        page.wait_for("the dismissed banner to go", move || async move {
            page.find("#welcome").await?;
            let shown = banner_texts(page).await?;
            ensure!(shown.is_empty(), "the dismissed banner is still shown: {shown:?}");
            Ok(())
        })
        .await?;
        // And it stays dismissed on the next page.
        browser.goto("/help").await?;
        ensure!(banner_texts(&browser).await?.is_empty(), "the dismissed banner came back");
        Ok(())
    })
    .await;
}

/// Waits until `#helpful-count` reads `expected`.
async fn expect_count(browser: &Browser, expected: &str) -> anyhow::Result<()> {
    browser
        .wait_for(&format!("the tally to read {expected:?}"), move || async move {
            let text = browser.client.find(Locator::Css("#helpful-count")).await?.text().await?;
            ensure!(text == expected, "the page says {text:?}");
            Ok(())
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voting_on_an_article_updates_how_many_found_it_helpful() {
    browser_test(|browser| async move {
        let article = parse_article_file(include_str!("../../content/help/forgot-password.md"), browser.services.deps.clock.unix())?;
        browser.services.content.seed_articles(&[article], &RequestContext::cli()).await?;

        // From the login page's link to the article, as a visitor would.
        browser.goto("/login").await?;
        browser.find("#forgot-help-link").await?.click().await?;
        browser.wait_for_path("/help/forgot-password").await?;
        ensure!(browser.text("h1").await? == "Forgot your password?");
        ensure!(browser.client.find(Locator::Css("#helpful-count")).await.is_err(), "a tally before any vote");

        browser.find("#vote-yes").await?.click().await.context("clicking Yes")?;
        expect_count(&browser, "1 out of 1 found this helpful").await?;
        ensure!(browser.text("#feedback-heading").await? == "Thanks for your feedback");

        // Changing the answer to No, with a reason, replaces the vote.
        browser.find(".vote-reason summary").await?.click().await?;
        browser.find("input[name=choice][value=missing_information]").await?.click().await?;
        browser.find("#reason").await?.send_keys("Which folder is the spam folder?").await?;
        browser.find("#vote-no").await?.click().await.context("clicking No")?;
        expect_count(&browser, "0 out of 1 found this helpful").await?;
        // The reason was kept: the page thanks for it and does not ask again.
        ensure!(browser.text("#your-vote").await?.contains("and why"), "the reason is acknowledged");
        ensure!(browser.client.find(Locator::Css(".vote-reason")).await.is_err(), "'What was wrong?' asked again after a reason");

        // Another visitor (a fresh cookie jar) counts separately.
        browser.client.delete_all_cookies().await?;
        browser.goto("/help/forgot-password").await?;
        browser.find("#vote-yes").await?.click().await?;
        expect_count(&browser, "1 out of 2 found this helpful").await?;

        let slug = Slug::parse("forgot-password")?;
        let reasons = browser.services.store.no_reasons(&slug, 10).await?;
        ensure!(reasons.len() == 1 && reasons[0].comment == "Which folder is the spam folder?", "reasons: {reasons:?}");
        Ok(())
    })
    .await;
}
