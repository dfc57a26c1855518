//! Every kind of page, walked in one browser session per test and checked at desktop and
//! phone sizes: axe-core finds no violation of impact moderate or worse, and no page
//! scrolls sideways on a 360 px phone (see `checks`). The walks also take the README's
//! screenshots when `DOORMAN_SCREENSHOTS=1`.

use crate::checks::{PageWalk, Viewport};
use crate::harness::{Browser, EMAIL, PASSWORD, USERNAME, browser_test};
use crate::recovery::reset_link_in_mailbox;
use crate::two_step::{code_now, log_out};
use anyhow::{Context, ensure};
use doorman_core::audit::RequestContext;
use doorman_core::factors::TotpSecret;
use doorman_core::help::parse_article_file;
use doorman_core::roles::Role;

/// The help articles doorman ships, as `doorman content` would load them.
pub async fn seed_help(browser: &Browser) -> anyhow::Result<()> {
    let now = browser.services.deps.clock.unix();
    let articles = [
        include_str!("../../content/help/after-a-password-reset.md"),
        include_str!("../../content/help/forgot-password.md"),
        include_str!("../../content/help/log-in.md"),
        include_str!("../../content/help/no-access-to-email.md"),
        include_str!("../../content/help/reset-email-not-arriving.md"),
        include_str!("../../content/help/too-many-attempts.md"),
        include_str!("../../content/help/two-step-verification.md"),
    ]
    .into_iter()
    .map(|text| parse_article_file(text, now))
    .collect::<Result<Vec<_>, _>>()?;
    browser.services.content.seed_articles(&articles, &RequestContext::cli()).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_before_signing_in_pass_axe_and_fit_a_phone() {
    browser_test(|browser| async move {
        seed_help(&browser).await?;
        let mut walk = PageWalk::new(&browser);

        browser.goto("/login").await?;
        browser.find("#login").await?;
        walk.check_and_screenshot("log in", "login").await?;

        browser.log_in(USERNAME, "not the right password").await?;
        browser.find("#login-error").await?;
        walk.check("log in after a wrong password").await?;

        browser.goto("/forgot-password").await?;
        browser.find("#login").await?.send_keys(EMAIL).await?;
        walk.check("forgot password").await?;
        browser.button("Email me a reset link").await?.click().await?;
        browser.find("#forgot-sent").await?;
        walk.check("forgot password, email sent").await?;

        let link = reset_link_in_mailbox(&browser).await?;
        walk.check("demo mailbox").await?;

        browser.client.goto(&link).await?;
        browser.wait_for_path("/reset-password").await?;
        browser.find("#new_password").await?;
        walk.check_and_screenshot("reset password with the link", "reset-password").await?;
        browser.find("#new_password").await?.send_keys("short").await?;
        browser.button("Set new password").await?.click().await?;
        browser.find("#reset-error").await?;
        walk.check("reset password, too short").await?;

        browser.goto("/reset-password?with=code").await?;
        browser.find("#code").await?;
        walk.check("reset password with the code").await?;

        browser.goto("/report-compromise").await?;
        browser.find("#details").await?;
        walk.check("report a compromised account").await?;
        browser.goto("/report-not-me").await?;
        browser.find("#report-error").await?;
        walk.check("this wasn't me, without a live link").await?;
        browser.goto("/recovery-request").await?;
        browser.find("#message").await?;
        walk.check("no access to this email: the recovery request form").await?;
        browser.goto("/recovery-request/status").await?;
        browser.find("#case-error").await?;
        walk.check("recovery request status, without a live link").await?;

        browser.goto("/help").await?;
        browser.find("#help-q").await?;
        walk.check_and_screenshot("help center", "help").await?;
        browser.goto("/help?q=password").await?;
        browser.find("#search-results").await?;
        walk.check("help center search").await?;
        browser.goto("/help/forgot-password").await?;
        browser.find("#vote-yes").await?;
        walk.check_and_screenshot("help article", "help-article").await?;

        browser.goto("/no-such-page").await?;
        ensure!(browser.text("h1").await? == "Page not found", "an unknown address shows the 404 page");
        walk.check("error page (404)").await?;

        walk.finish()
    })
    .await;
}

/// Banners on every page of this walk: a short notice for everyone and a long warning for
/// Philippine freelancers (maria), so their markup is checked with each page.
const BANNERS: &str = r#"{"global":{"message":"Scheduled maintenance on Sunday from 02:00 to 03:00 UTC.","icon":"info","start":"","end":""},"responsive":[
  {"message":"Withdrawals to Philippine banks are delayed today because our partner bank is updating its systems; money you withdraw now arrives on Monday, and nothing is lost.","country":"PH","usertype":"freelancer","icon":"warning","start":"","end":""},
  {"message":"","country":"All","usertype":"all","icon":"info","start":"","end":""}]}"#;

const NO_BANNERS: &str = r#"{"global":{"message":"","icon":"info","start":"","end":""},"responsive":[]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_in_pages_pass_axe_and_fit_a_phone() {
    browser_test(|browser| async move {
        seed_help(&browser).await?;
        browser.services.roles.set_role(USERNAME, Role::Admin, true, &RequestContext::cli()).await?;
        browser.services.content.import_banners(BANNERS, None, &RequestContext::cli()).await?;
        let mut walk = PageWalk::new(&browser);

        browser.sign_in().await?;
        ensure!(browser.text("#banners").await?.contains("Withdrawals to Philippine banks"), "maria sees the long banner");
        walk.check("account").await?;

        browser.goto("/account/sessions").await?;
        browser.find("#session-list").await?;
        walk.check("sessions").await?;

        browser.goto("/account/activity").await?;
        browser.find("#activity-list").await?;
        walk.check("security activity").await?;

        browser.goto("/account/password").await?;
        browser.find("#current_password").await?.send_keys("not my password at all").await?;
        walk.check("change password").await?;
        browser.find("#new_password").await?.send_keys("violet canyon drumbeat").await?;
        browser.button("Change password").await?.click().await?;
        browser.find("#password-error").await?;
        walk.check("change password, wrong current password").await?;

        browser.goto("/account/email").await?;
        browser.find("#new_email").await?;
        walk.check("change email").await?;

        browser.goto("/payments").await?;
        browser.find("#amount").await?;
        walk.check("payments").await?;

        browser.goto("/account/security").await?;
        browser.find("#two-step-state").await?;
        walk.check("security settings, 2-step off").await?;
        browser.find("#add-totp").await?.click().await?;
        let shown = browser.text("#totp-secret").await?;
        let secret = TotpSecret::from_base32(&shown.replace(' ', "")).context("the page shows a base32 key")?;
        walk.check("add an authenticator app").await?;
        browser.find("#code").await?.send_keys(&code_now(&secret, 0)?).await?;
        browser.button("Turn on").await?.click().await?;
        browser.wait_for_path("/account/security").await?;
        ensure!(browser.text("#two-step-state").await? == "on", "2-step is on after the first code");
        ensure!(browser.text("#my-methods").await?.contains("default"), "the new method is the default");
        ensure!(browser.text("#method-history").await?.contains("Authenticator app added"), "the method history lists it (S10.4)");
        walk.check("security settings, 2-step on").await?;

        browser.find("#make-recovery-codes").await?.click().await?;
        browser.find("#recovery-codes").await?;
        walk.check("recovery codes").await?;
        walk.report("recovery codes at 360 px", recovery_codes_on_a_phone(&browser).await?);

        browser.goto("/step-up?next=/account/security").await?;
        browser.find("#code").await?;
        walk.check("step-up").await?;

        browser.goto("/payments").await?;
        browser.find("#amount").await?.send_keys("20.00").await?;
        browser.button("Withdraw").await?.click().await?;
        browser.find("#verify-intro").await?;
        walk.check("approve a withdrawal").await?;

        browser.goto("/admin").await?;
        browser.find("#admin-articles").await?;
        walk.check("admin").await?;
        browser.goto("/admin/banners").await?;
        browser.find("#banner-table").await?;
        walk.check("admin banners").await?;
        browser.goto("/admin/help/forgot-password").await?;
        browser.find("#article-form").await?;
        walk.check("admin, edit an article").await?;

        browser.goto("/no-such-page").await?;
        ensure!(browser.text("h1").await? == "Page not found", "an unknown address shows the 404 page");
        walk.check("error page (404), signed in").await?;

        // The last pages are also photographed: without banners, as most people see them.
        browser.services.content.import_banners(NO_BANNERS, None, &RequestContext::cli()).await?;
        log_out(&browser).await?;
        browser.log_in(USERNAME, PASSWORD).await?;
        browser.wait_for_path("/login/verify").await?;
        browser.find("#code").await?;
        walk.check_and_screenshot("second step", "login-verify").await?;
        browser.find("#code").await?.send_keys("000000").await?;
        browser.button("Verify").await?.click().await?;
        browser.find("#verify-error").await?;
        walk.check("second step, wrong code").await?;
        browser.find("#try-another").await?.click().await?;
        browser.find("#method-list").await?;
        walk.check("second step, choose a method").await?;
        browser.goto("/login/verify").await?;
        browser.find("#code").await?.send_keys(&code_now(&secret, 1)?).await?;
        browser.button("Verify").await?.click().await?;
        browser.wait_for_path("/account").await?;

        walk.finish()
    })
    .await;
}

/// On a phone, each recovery code is on one line, whole, and clear of the others: a code
/// broken at a dash or overlapping its neighbour gets copied wrong. Says what is wrong, if any.
async fn recovery_codes_on_a_phone(browser: &Browser) -> anyhow::Result<Option<String>> {
    const MEASURE: &str = r#"
        const codes = [...document.querySelectorAll('#recovery-codes code')];
        const problems = [];
        const boxes = codes.map(c => c.getBoundingClientRect());
        codes.forEach((code, i) => {
          const lines = code.getClientRects().length;
          if (lines !== 1) problems.push(code.textContent + ' is on ' + lines + ' lines');
          const r = boxes[i];
          if (r.left < 0 || r.right > window.innerWidth) problems.push(code.textContent + ' goes past the screen edge');
          boxes.forEach((s, j) => {
            if (j > i && r.left < s.right && s.left < r.right && r.top < s.bottom && s.top < r.bottom)
              problems.push(code.textContent + ' overlaps ' + codes[j].textContent);
          });
        });
        return { count: codes.length, problems };
    "#;
    #[derive(serde::Deserialize)]
    struct Layout {
        count: usize,
        problems: Vec<String>,
    }
    browser.set_viewport(Viewport::Phone).await?;
    let layout: Layout = serde_json::from_value(browser.client.execute(MEASURE, vec![]).await?).context("measuring the codes")?;
    browser.set_viewport(Viewport::Desktop).await?;
    ensure!(layout.count == 10, "{} recovery codes shown", layout.count);
    Ok((!layout.problems.is_empty()).then(|| layout.problems.join("; ")))
}
