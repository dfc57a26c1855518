//! Lost email, resolved through the support console in a real browser (issue 11 §6): maria
//! files a recovery request; agent ana records two kinds of evidence and proposes moving the
//! account to the verified contact address; agent ben approves; maria sees the pending change
//! (with its cancel button) on her activity page; after the cooling-off period the change
//! applies and ben sends a reset link, which goes to the new address. On the way ana writes to
//! the requester, who reads the reply from the newest email's link. The agents' part is
//! timed (docs/BENCHMARKS.md), and the new pages pass axe-core at both sizes.

use crate::checks::PageWalk;
use crate::harness::{Browser, PASSWORD, USERNAME, browser_test_with};
use crate::recovery_request::code_from_mailbox;
use crate::two_step::{enrol_authenticator, log_out};
use anyhow::{Context, bail, ensure};
use doorman_core::Clock;
use doorman_core::audit::RequestContext;
use doorman_core::auth::NewAccountRequest;
use doorman_core::factors::TotpSecret;
use doorman_core::roles::Role;
use doorman_core::{Country, EmailAddress, Password, UserType, Username};
use std::time::Instant;

const CONTACT: &str = "new-me@example.org";
const REPLY: &str = "Thank you. We are moving your account to this address; a second agent checks it first.";

/// The authenticator's next code as of the app's clock (which the test moves forward): the
/// current one was spent on enrolment moments ago, and a code is never accepted twice.
fn code(browser: &Browser, secret: &TotpSecret) -> String {
    secret.code_at_step(browser.clock.unix() / 30 + 1)
}

/// A support agent with an authenticator app, signed out again.
async fn enrol_agent(browser: &Browser, name: &str) -> anyhow::Result<TotpSecret> {
    let request = NewAccountRequest {
        username: Username::parse(name)?,
        email: EmailAddress::parse(&format!("{name}@support.example.com"))?,
        user_type: UserType::parse("freelancer")?,
        country: Country::parse("PH")?,
        password: Password::new(PASSWORD)?,
    };
    browser.services.auth.create_account(request, &RequestContext::cli()).await?;
    browser.services.roles.set_role(name, Role::Support, true, &RequestContext::cli()).await?;
    browser.goto("/login").await?;
    browser.log_in(name, PASSWORD).await?;
    browser.wait_for_path("/account").await?;
    let secret = enrol_authenticator(browser).await?;
    log_out(browser).await?;
    Ok(secret)
}

/// Password, then the app: a second step just passed counts as a fresh step-up.
async fn agent_signs_in(browser: &Browser, name: &str, secret: &TotpSecret) -> anyhow::Result<()> {
    browser.goto("/login").await?;
    browser.log_in(name, PASSWORD).await?;
    browser.wait_for_path("/login/verify").await?;
    browser.find("#code").await?.send_keys(&code(browser, secret)).await?;
    browser.button("Verify").await?.click().await?;
    browser.wait_for_path("/account").await
}

/// Picks an option of a select, types a note and submits the form; waits for the outcome.
async fn submit_case_form(browser: &Browser, select: &str, value: &str, text: &str, note: &str, button: &str) -> anyhow::Result<String> {
    browser.find(select).await?.select_by_value(value).await.with_context(|| format!("choosing {value}"))?;
    browser.find(text).await?.send_keys(note).await?;
    browser.click_and_leave(browser.find(button).await?).await?;
    browser.text("#action-done").await.with_context(|| format!("the outcome of {value}"))
}

/// maria's request through the form, confirmed by the code sent to the new address.
async fn file_recovery_request(browser: &Browser) -> anyhow::Result<String> {
    browser.goto("/recovery-request").await?;
    browser.find("#login").await?.send_keys(USERNAME).await?;
    browser.find("#contact_email").await?.send_keys(CONTACT).await?;
    browser.find("#message").await?.send_keys("I lost my old work email. I last signed in in March, from Manila.").await?;
    browser.find("#payout_type").await?.send_keys("bank account").await?;
    browser.find("#payout_bank").await?.send_keys("BDO").await?;
    browser.button("Send me a code").await?.click().await?;
    let code = code_from_mailbox(browser).await?;
    browser.find("#code").await?.send_keys(&code).await?;
    browser.button("Confirm and send the request").await?.click().await?;
    browser.text("#case-id").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s11_lost_email_an_agent_and_an_approver_move_the_account_and_a_reset_link_reaches_the_new_address() {
    browser_test_with(
        |config| config.proof_of_work_bits = 0,
        |browser| async move {
            let case = file_recovery_request(&browser).await?;
            let ana = enrol_agent(&browser, "ana").await?;
            let ben = enrol_agent(&browser, "ben").await?;
            let mut walk = PageWalk::new(&browser);

            // Agent one: verifies and proposes.
            let started = Instant::now();
            agent_signs_in(&browser, "ana", &ana).await?;
            browser.goto("/support").await?;
            browser.find(&format!("a.case-link[href='/support/cases/{case}']")).await?.click().await?;
            ensure!(browser.text("#case-checks").await?.contains("does not count"), "the verified contact is listed, not counted");
            let refused = {
                browser.find("#action-kind").await?.select_by_value("change_email").await?;
                browser.find("#action-reason").await?.send_keys("Lost mailbox").await?;
                browser.find("#take-action").await?.click().await?;
                browser.text("#action-error").await?
            };
            ensure!(refused.contains("two checks of different kinds"), "{refused}");
            walk.check("support case, action refused").await?;
            let checks =
                [("last_sign_in", "Said March, from Manila; the sign-in log agrees"), ("payout_method", "Bank account at BDO, as on file")];
            for (kind, note) in checks {
                let done = submit_case_form(&browser, "#check-kind", kind, "#check-note", note, "#record-check").await?;
                ensure!(done.contains("recorded"), "{done}");
            }
            let proposed = submit_case_form(
                &browser,
                "#action-kind",
                "change_email",
                "#action-reason",
                "Owner lost her mailbox; two checks done",
                "#take-action",
            )
            .await?;
            ensure!(proposed.contains("second, different agent"), "{proposed}");
            ensure!(browser.find(".approve-action").await.is_err(), "the proposer gets no approve button");
            walk.check("support case, proposed").await?;
            // She tells the requester what happens next, from the case page.
            ensure!(browser.text("#reply-hint").await?.contains(CONTACT), "the form names where the reply goes");
            browser.find("#reply").await?.send_keys(REPLY).await?;
            browser.click_and_leave(browser.find("#send-reply").await?).await?;
            ensure!(browser.text("#case-notes").await?.contains("replied to the requester"));
            walk.check("support case, replied to the requester").await?;
            log_out(&browser).await?;

            // The requester reads it from the newest email's link, on a phone-sized page.
            browser
                .wait_for("the reply email in the demo mailbox", || async {
                    browser.goto("/dev/mailbox").await?;
                    ensure!(browser.text("main").await?.contains(&format!("Support replied on your case {case}")), "not yet");
                    Ok(())
                })
                .await?;
            browser.find("a.mail-link[href*='/recovery-request/status?token=']").await?.click().await?;
            browser.wait_for_path("/recovery-request/status").await?;
            let messages = browser.text("#case-notes").await?;
            ensure!(messages.contains("Support") && messages.contains(REPLY), "{messages}");
            ensure!(browser.text("#case-status").await?.contains("a support agent is on it"));
            walk.check("recovery request, support replied").await?;

            // Agent two: approves.
            agent_signs_in(&browser, "ben", &ben).await?;
            browser.goto(&format!("/support/cases/{case}")).await?;
            browser.find("#approve-reason-1").await?.send_keys("Read the checklist; agree").await?;
            browser.find(".approve-action").await?.click().await?;
            let approved = browser.text("#action-done").await?;
            ensure!(approved.contains("Approved"), "{approved}");
            let agents_time = started.elapsed();
            log_out(&browser).await?;

            // The owner sees it pending, with a cancel button.
            browser.goto("/login").await?;
            browser.log_in(USERNAME, PASSWORD).await?;
            browser.wait_for_path("/account").await?;
            browser.goto("/account/activity").await?;
            let pending = browser.text("#pending-support-actions").await?;
            ensure!(pending.contains(CONTACT), "{pending}");
            browser.find(".cancel-support-action").await?;
            walk.check("activity, pending support change").await?;

            // After the cooling-off period the worker applies it; maria's session ends.
            browser.clock.advance(24 * 3600 + 60);
            let maria = browser.services.store.find_for_login(USERNAME).await?.context("maria")?.0.id;
            browser
                .wait_for("the email change to apply", || async {
                    let account = browser.services.store.get_account(&maria).await?.context("maria")?;
                    if account.email.as_str() != CONTACT {
                        bail!("still {}", account.email.as_str());
                    }
                    Ok(())
                })
                .await?;

            // Agent two sends a reset link, which goes to the new address.
            let resumed = Instant::now();
            agent_signs_in(&browser, "ben", &ben).await?;
            browser.goto(&format!("/support/cases/{case}")).await?;
            let sent =
                submit_case_form(&browser, "#action-kind", "send_reset_link", "#action-reason", "Finish the move", "#take-action").await?;
            ensure!(sent.contains("Done"), "{sent}");
            let agents_time = agents_time + resumed.elapsed();
            browser
                .wait_for("the reset email to the new address", || async {
                    browser.goto("/dev/mailbox").await?;
                    let mailbox = browser.text("main").await?;
                    let to_contact_reset = mailbox
                        .lines()
                        .collect::<Vec<_>>()
                        .windows(2)
                        .any(|w| w[0].starts_with("Reset your") && w[1].starts_with(&format!("To {CONTACT}")));
                    if !to_contact_reset {
                        bail!("no reset email to {CONTACT} yet");
                    }
                    Ok(())
                })
                .await?;
            eprintln!("support walk: the agents' part took {:.1} s", agents_time.as_secs_f64());
            walk.finish()
        },
    )
    .await;
}
