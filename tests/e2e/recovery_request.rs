//! "No access to this email?" in a real browser (issue 11 §3): from the forgot-password page
//! to the recovery request form, the code sent to the new address, the case number, and the
//! status page opened from the emailed link, where the person adds to the case. The new
//! pages pass axe-core at both sizes.

use crate::checks::PageWalk;
use crate::harness::{Browser, USERNAME, browser_test_with};
use anyhow::{Context, bail, ensure};
use fantoccini::Locator;

const CONTACT: &str = "new-me@example.org";

/// The code sent to the contact address, read from the demo mailbox by a fetch from the
/// current page (the browser stays on the form that asks for it).
pub(crate) async fn code_from_mailbox(browser: &Browser) -> anyhow::Result<String> {
    browser
        .wait_for("the code email in the demo mailbox", || async {
            let script = "const done = arguments[arguments.length - 1]; \
                fetch('/dev/mailbox').then(r => r.text()).then(t => { const m = t.match(/Your code is (\\d{4} \\d{4})/); done(m ? m[1] : null); });";
            match browser.client.execute_async(script, vec![]).await?.as_str() {
                Some(code) => Ok(code.to_owned()),
                None => bail!("no code email yet"),
            }
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s11_no_access_to_email_a_recovery_request_from_the_forgot_page_to_the_case_status_page() {
    browser_test_with(
        |config| config.proof_of_work_bits = 0,
        |browser| async move {
            let mut walk = PageWalk::new(&browser);
            browser.goto("/login").await?;
            browser.find("#forgot-link").await?.click().await?;
            browser.wait_for_path("/forgot-password").await?;
            browser.find("#no-access-link").await?.click().await.context("following 'No access to this email?'")?;
            browser.wait_for_path("/recovery-request").await?;
            walk.check("recovery request form").await?;

            // A missing message is refused on its field, and what was typed stays.
            browser.find("#login").await?.send_keys(USERNAME).await?;
            browser.find("#contact_email").await?.send_keys(CONTACT).await?;
            browser.button("Send me a code").await?.click().await?;
            let error = browser.text("#request-error").await?;
            ensure!(error.contains("Write a message"), "{error:?}");
            let message = browser.find("#message").await?;
            ensure!(message.attr("aria-invalid").await?.as_deref() == Some("true"), "the error names its field");
            ensure!(browser.value("#login").await? == USERNAME, "the login was kept");
            walk.check("recovery request form, with an error").await?;

            browser.find("#message").await?.send_keys("I lost my old work email and my phone.").await?;
            browser.find("#last_sign_in").await?.send_keys("last month").await?;
            browser.find("#country").await?.send_keys("Philippines").await?;
            browser.find("#payout_type").await?.send_keys("bank account").await?;
            browser.find("#payout_bank").await?.send_keys("BDO").await?;
            browser.button("Send me a code").await?.click().await?;
            ensure!(browser.text("#code-sent").await?.contains(CONTACT));
            walk.check("recovery request, enter the code").await?;

            let code = code_from_mailbox(&browser).await?;
            browser.find("#code").await?.send_keys(&code).await?;
            browser.button("Confirm and send the request").await?.click().await?;
            let case = browser.text("#case-id").await?;
            ensure!(case.starts_with("C-") && case.len() == 12, "{case:?}");
            walk.check("recovery request, case opened").await?;

            // The status page, from the link sent to the contact address.
            browser
                .wait_for("the case email in the demo mailbox", || async {
                    browser.goto("/dev/mailbox").await?;
                    for link in browser.client.find_all(Locator::Css("a.mail-link")).await? {
                        if link.attr("href").await?.unwrap_or_default().contains("/recovery-request/status?token=") {
                            return Ok(());
                        }
                    }
                    bail!("no status link yet")
                })
                .await?;
            browser.find("a.mail-link[href*='/recovery-request/status?token=']").await?.click().await?;
            browser.wait_for_path("/recovery-request/status").await?;
            ensure!(browser.client.current_url().await?.query().is_none(), "the token left the address bar");
            ensure!(browser.text("h1").await? == format!("Case {case}"));
            walk.check("recovery request, case status").await?;
            browser.find("#note").await?.send_keys("My old phone number ended in 42.").await?;
            browser.button("Add to the case").await?.click().await?;
            ensure!(browser.text("#note-added").await? == "Added to your case.");
            ensure!(browser.text("#case-notes").await?.contains("ended in 42"));
            walk.check("recovery request, note added").await?;
            Ok(())
        },
    )
    .await;
}

/// With a real difficulty, the page's script solves the challenge before the form goes
/// (the server refuses it otherwise, tests/api/recovery_requests.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_6_the_browser_solves_the_proof_of_work_before_sending_the_form() {
    browser_test_with(
        |config| config.proof_of_work_bits = 12,
        |browser| async move {
            browser.goto("/recovery-request").await?;
            ensure!(browser.find("form[data-pow-bits='12']").await.is_ok(), "the form carries its difficulty");
            browser.find("#login").await?.send_keys(USERNAME).await?;
            browser.find("#contact_email").await?.send_keys(CONTACT).await?;
            browser.find("#message").await?.send_keys("Lost my mailbox.").await?;
            browser.button("Send me a code").await?.click().await?;
            let sent = browser.text("#code-sent").await?;
            ensure!(sent.contains(CONTACT), "{sent:?}");
            Ok(())
        },
    )
    .await;
}
