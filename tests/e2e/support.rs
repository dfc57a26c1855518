//! The support console (issue 11 §6, first slice): an agent with 2-step steps up, opens the
//! queue, views a case's account (masked, then one field revealed), claims the case, adds a
//! note and resolves it. The console's pages pass the axe-core walk at both sizes.

use crate::checks::PageWalk;
use crate::harness::{EMAIL, USERNAME, browser_test};
use crate::two_step::{code_now, enrol_authenticator};
use anyhow::ensure;
use doorman_core::account::LoginIdentifier;
use doorman_core::audit::RequestContext;
use doorman_core::roles::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s11_an_agent_with_two_step_opens_the_queue_views_the_account_and_resolves_a_case() {
    browser_test(|browser| async move {
        browser.services.roles.set_role(USERNAME, Role::Support, true, &RequestContext::cli()).await?;
        browser.sign_in().await?;
        let secret = enrol_authenticator(&browser).await?;
        browser
            .services
            .compromise
            .report_publicly(&LoginIdentifier::new(USERNAME), "Someone changed my payout method", &RequestContext::cli())
            .await?;
        let mut walk = PageWalk::new(&browser);

        // Eleven minutes on, the console asks for a fresh step-up first.
        browser.clock.advance(11 * 60);
        browser.goto("/support").await?;
        browser.wait_for_path("/step-up").await?;
        browser.find("#code").await?.send_keys(&code_now(&secret, 22)?).await?;
        browser.button("Verify").await?.click().await?;
        browser.wait_for_path("/support").await?;
        browser.find("#support-queue").await?;
        ensure!(browser.text("#support-queue").await?.contains("Compromise report (public form)"));
        walk.check("support queue").await?;

        browser.find(".case-link").await?.click().await?;
        browser.find("#case-account").await?;
        let masked = browser.text("#account-email").await?;
        ensure!(masked.contains('•') && !masked.contains(EMAIL), "the email is masked: {masked}");
        walk.check("support case").await?;
        browser.find("#reveal-email").await?.click().await?;
        browser
            .wait_for("the revealed email", || async {
                let shown = browser.text("#account-email").await?;
                ensure!(shown == EMAIL, "{shown}");
                Ok(())
            })
            .await?;

        browser.find("#claim-case").await?.click().await?;
        browser
            .wait_for("the claim", || async {
                let by = browser.text("#case-claimed-by").await?;
                ensure!(by == USERNAME, "{by}");
                Ok(())
            })
            .await?;
        browser.button("Add the note").await?.click().await?;
        browser.find("#comment-error").await?;
        walk.check("support case, empty note").await?;
        browser.find("#comment").await?.send_keys("Called the owner; the change was theirs.").await?;
        browser.button("Add the note").await?.click().await?;
        browser
            .wait_for("the note", || async {
                Ok(browser.text("#case-notes").await.ok().filter(|t| t.contains("Called the owner")).map(|_| ()))
            })
            .await?;
        browser.find("#resolve-case").await?.click().await?;
        browser.wait_for_path("/support").await?;
        ensure!(browser.text("#queue-empty").await? == "No open cases.");
        walk.finish()
    })
    .await;
}
