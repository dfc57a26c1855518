//! Phones first: on a 360×740 screen, a long banner takes one line (with "More" for the
//! rest), its label stacked over the text, and the login form stays in view.

use crate::checks::Viewport;
use crate::harness::browser_test;
use anyhow::{Context, ensure};
use doorman_core::audit::RequestContext;
use serde::Deserialize;

const LONG_BANNER: &str = "Text messages to some Philippine networks are arriving late this morning. If your code has not \
    arrived after five minutes, choose Try another method and use your authenticator app or a recovery code; we will \
    post here as soon as delivery is back to normal.";

#[derive(Deserialize)]
struct Rect {
    top: f64,
    bottom: f64,
}

#[derive(Deserialize)]
struct BannerLayout {
    label: Rect,
    text: Rect,
    line_height: f64,
    toggle: String,
    whole_text: String,
}

const MEASURE: &str = r#"
    const rect = e => { const r = e.getBoundingClientRect(); return { top: r.top, bottom: r.bottom }; };
    const banner = document.querySelector('.banners .banner');
    const text = banner.querySelector('.banner-text');
    const toggle = [...banner.querySelectorAll('.banner-toggle > span')].filter(s => s.offsetParent !== null);
    return {
      label: rect(banner.querySelector('.banner-label')),
      text: rect(text),
      line_height: parseFloat(getComputedStyle(text).lineHeight),
      toggle: toggle.map(s => s.textContent).join(' '),
      whole_text: text.textContent,
    };
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_banner_leaves_the_login_form_in_view_on_a_phone() {
    browser_test(|browser| async move {
        let document = serde_json::json!({
            "global": { "message": LONG_BANNER, "icon": "warning", "start": "", "end": "" },
            "responsive": [],
        });
        browser.services.content.import_banners(&document.to_string(), None, &RequestContext::cli()).await?;
        browser.goto("/login").await?;
        browser.set_viewport(Viewport::Phone).await?;
        browser.find("#login").await?;

        let layout: BannerLayout =
            serde_json::from_value(browser.client.execute(MEASURE, vec![]).await?).context("measuring the banner")?;
        ensure!(layout.label.bottom <= layout.text.top + 1.0, "the banner's label is not above its text");
        let lines = (layout.text.bottom - layout.text.top) / layout.line_height;
        ensure!(lines < 1.5, "the closed banner text takes {lines:.1} lines, not one");
        ensure!(layout.toggle == "More", "the closed banner offers {:?}, not \"More\"", layout.toggle);
        ensure!(layout.whole_text == LONG_BANNER, "the banner holds {:?}, not the whole text (screen readers read it)", layout.whole_text);

        // The login form is in view without scrolling.
        let viewport_height = f64::from(Viewport::Phone.size().1);
        for (what, css) in [
            ("the username field", "#login"),
            ("the password field", "#password"),
            ("the Log in button", "form[action='/login'] button[type=submit]"),
        ] {
            let rect: Rect = serde_json::from_value(
                browser
                    .client
                    .execute("return arguments[0].getBoundingClientRect()", vec![serde_json::to_value(browser.find(css).await?)?])
                    .await?,
            )?;
            ensure!(
                rect.top >= 0.0 && rect.bottom <= viewport_height,
                "{what} is out of view: {}..{} px of {viewport_height}",
                rect.top,
                rect.bottom
            );
        }
        ensure!(browser.horizontal_overflow().await?.is_none(), "the page scrolls sideways");

        // "More" shows the whole message; "Less" folds it again.
        browser.find(".banners summary").await?.click().await.context("opening the banner")?;
        let page = &browser;
        page.wait_for("the whole banner text", move || async move {
            let layout: BannerLayout = serde_json::from_value(page.client.execute(MEASURE, vec![]).await?)?;
            let lines = (layout.text.bottom - layout.text.top) / layout.line_height;
            ensure!(lines > 2.5, "the open banner text takes {lines:.1} lines");
            ensure!(layout.toggle == "Less", "the open banner offers {:?}", layout.toggle);
            Ok(())
        })
        .await?;
        let violations = browser.axe_violations().await?;
        ensure!(violations.is_empty(), "axe-core found, with the banner open:\n{}", violations.join("\n"));
        Ok(())
    })
    .await;
}
