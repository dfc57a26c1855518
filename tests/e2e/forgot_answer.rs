//! "Forgot your answer?" in a real browser (issue 11 §1): from the security question at
//! login, the emailed link, another method, a new question; then the new answer signs in.

use crate::checks::PageWalk;
use crate::harness::{Browser, PASSWORD, USERNAME, browser_test};
use crate::two_step::{code_now, enrol_authenticator, log_out};
use anyhow::{Context, bail, ensure};
use fantoccini::Locator;

async fn answer_question_prompt(browser: &Browser) -> anyhow::Result<()> {
    browser.log_in(USERNAME, PASSWORD).await?;
    browser.wait_for_path("/login/verify").await?;
    browser.find("#try-another").await?.click().await?;
    browser.find("#method-list").await?;
    // The question is the method whose hint is a question.
    for candidate in browser.client.find_all(Locator::Css("#method-list a")).await? {
        if candidate.text().await?.contains('?') {
            return candidate.click().await.context("choosing the security question");
        }
    }
    bail!("no security question among the methods")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgot_answer_by_email_then_sign_in_with_the_new_answer() {
    browser_test(|browser| async move {
        let mut walk = PageWalk::new(&browser);
        browser.goto("/login").await?;
        browser.log_in(USERNAME, PASSWORD).await?;
        browser.wait_for_path("/account").await?;
        let secret = enrol_authenticator(&browser).await?;
        browser.goto("/account/security").await?;
        browser.find("#answer").await?.send_keys("Pink Floyd").await?;
        browser.button("Save question").await?.click().await?;
        browser.wait_for_path("/account/security").await?;
        log_out(&browser).await?;

        // The question's prompt offers "Forgot your answer?".
        answer_question_prompt(&browser).await?;
        browser.find("#forgot-answer-button").await?.click().await?;
        let sent = browser.text("#answer-sent").await?;
        ensure!(sent.contains("emailed a link"), "{sent:?}");
        walk.check("forgot answer, email sent").await?;

        // The emailed link; its token leaves the address bar.
        let href = browser
            .wait_for("the forgot-answer email in the demo mailbox", || async {
                browser.goto("/dev/mailbox").await?;
                for link in browser.client.find_all(Locator::Css("a.mail-link")).await? {
                    let href = link.attr("href").await?.unwrap_or_default();
                    if href.contains("/answer-reset?token=") {
                        return Ok(href);
                    }
                }
                bail!("no forgot-answer link yet")
            })
            .await?;
        browser.client.goto(&href).await?;
        browser.wait_for_path("/answer-reset").await?;
        ensure!(browser.client.current_url().await?.query().is_none(), "the token left the address bar");
        let methods = browser.text("#answer-reset-methods").await?;
        ensure!(
            methods.contains("Authenticator app") && !methods.contains("first concert"),
            "another method, never the question: {methods}"
        );
        walk.check("forgot answer, the link's page").await?;

        // A wrong code is refused on its field; the app's code and a new question work.
        let valid: Vec<String> = (-1..=1).map(|o| code_now(&secret, o)).collect::<anyhow::Result<_>>()?;
        let wrong = (0..10u8).map(|d| d.to_string().repeat(6)).find(|c| !valid.contains(c)).context("a wrong code")?;
        browser.find("#code").await?.send_keys(&wrong).await?;
        browser.find("#question_id option[value='first_album']").await?.click().await?;
        browser.find("#answer").await?.send_keys("Rumours").await?;
        browser.button("Set new question").await?.click().await?;
        // Read afresh until the refused form's page is there (the old page's field goes stale).
        let page = &browser;
        page.wait_for("the code field to be marked invalid", move || async move {
            let marked = page.client.find(fantoccini::Locator::Css("#code")).await?.attr("aria-invalid").await?;
            ensure!(marked.as_deref() == Some("true"), "the code field is marked {marked:?}");
            Ok(())
        })
        .await?;
        walk.check("forgot answer, wrong code").await?;
        browser.find("#code").await?.send_keys(&code_now(&secret, 1)?).await?;
        browser.find("#question_id option[value='first_album']").await?.click().await?;
        browser.find("#answer").await?.send_keys("Rumours").await?;
        browser.button("Set new question").await?.click().await?;
        let done = browser.text("#answer-reset-done").await?;
        ensure!(done.starts_with("Your new security question is set"), "{done:?}");

        // The next sign-in asks the new question, and the new answer works.
        browser.goto("/login").await?;
        answer_question_prompt(&browser).await?;
        let prompt = browser.text("label[for='code']").await?;
        ensure!(prompt == "What was the first album you bought?", "the new question is asked: {prompt:?}");
        browser.find("#code").await?.send_keys("rumours").await?;
        browser.button("Verify").await?.click().await?;
        browser.wait_for_path("/account").await?;
        walk.finish()
    })
    .await;
}
