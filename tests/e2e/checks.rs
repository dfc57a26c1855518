//! What every page walk checks, as a person on a desktop or a phone would notice it:
//! axe-core's accessibility rules and, on a phone, no sideways scrolling. Also saves the
//! screenshots in docs/screenshots when `DOORMAN_SCREENSHOTS=1`.
//!
//! axe-core comes from npm (tests/e2e/package.json, pinned in package-lock.json;
//! `scripts/test` runs `npm ci` there). It is injected through WebDriver's execute, which
//! the pages' Content-Security-Policy (script-src 'self') does not apply to.

use crate::harness::Browser;
use anyhow::{Context, bail, ensure};
use fantoccini::wd::WebDriverCompatibleCommand;
use serde::Deserialize;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The two screens every page is checked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Viewport {
    /// 1280×900, a laptop.
    Desktop,
    /// 360×740, a small Android phone (mobile emulation: the page's meta viewport applies).
    Phone,
}

impl Viewport {
    pub const ALL: [Viewport; 2] = [Viewport::Desktop, Viewport::Phone];

    pub fn name(self) -> &'static str {
        match self {
            Viewport::Desktop => "desktop",
            Viewport::Phone => "phone",
        }
    }

    pub fn size(self) -> (u32, u32) {
        match self {
            Viewport::Desktop => (1280, 900),
            Viewport::Phone => (360, 740),
        }
    }
}

/// A Chrome DevTools command through chromedriver (`POST /session/{id}/goog/cdp/execute`).
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: serde_json::Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/goog/cdp/execute", session_id.unwrap_or_default()))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(json!({ "cmd": self.cmd, "params": self.params }).to_string()))
    }
}

/// Impacts that fail a page: axe's "moderate" and above ("minor" is left to judgement).
const FAILING_IMPACTS: [&str; 3] = ["moderate", "serious", "critical"];

#[derive(Deserialize)]
struct Violation {
    id: String,
    impact: Option<String>,
    help: String,
    nodes: Vec<ViolationNode>,
}

#[derive(Deserialize)]
struct ViolationNode {
    target: serde_json::Value,
    #[serde(default)]
    summary: String,
}

/// axe-core's source, read once per test binary.
fn axe_source() -> anyhow::Result<&'static str> {
    static SOURCE: OnceLock<Result<String, String>> = OnceLock::new();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/node_modules/axe-core/axe.min.js");
    let source = SOURCE.get_or_init(|| {
        std::fs::read_to_string(&path)
            .map_err(|e| format!("axe-core is missing ({}: {e}): run `npm ci` in tests/e2e (scripts/test does it)", path.display()))
    });
    source.as_deref().map_err(|e| anyhow::anyhow!("{e}"))
}

impl Browser {
    /// Makes the page's viewport exactly this size (the window size alone cannot: headless
    /// Chromium keeps room for browser chrome and a minimum window width).
    pub async fn set_viewport(&self, viewport: Viewport) -> anyhow::Result<()> {
        let (width, height) = viewport.size();
        let params = json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": viewport == Viewport::Phone });
        self.client
            .issue_cmd(Cdp { cmd: "Emulation.setDeviceMetricsOverride", params })
            .await
            .with_context(|| format!("emulating a {} screen", viewport.name()))?;
        // innerWidth counts a desktop's scroll bar; a phone's (overlaid) takes no room.
        let shown: u32 = serde_json::from_value(self.client.execute("return innerWidth", vec![]).await?)?;
        let phone_shown: u32 = serde_json::from_value(self.client.execute("return document.documentElement.clientWidth", vec![]).await?)?;
        let shown = if viewport == Viewport::Phone { phone_shown } else { shown };
        ensure!(shown == width, "the {} screen shows {shown} px, not {width}", viewport.name());
        Ok(())
    }

    /// axe-core's violations of impact moderate or worse on the current page, one line per
    /// rule with its impact and the selectors of the elements at fault; empty when none.
    pub async fn axe_violations(&self) -> anyhow::Result<Vec<String>> {
        let injected: bool = serde_json::from_value(self.client.execute("return typeof window.axe === 'object'", vec![]).await?)?;
        if !injected {
            let script = format!("{}\n;return typeof window.axe === 'object';", axe_source()?);
            let loaded: bool = serde_json::from_value(self.client.execute(&script, vec![]).await.context("injecting axe-core")?)?;
            ensure!(loaded, "axe-core did not load into the page");
        }
        const RUN: &str = r#"
            const done = arguments[arguments.length - 1];
            axe.run(document, { resultTypes: ['violations'] })
              .then(r => done({ ok: r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help,
                  nodes: v.nodes.map(n => ({ target: n.target, summary: n.failureSummary || '' })) })) }))
              .catch(e => done({ error: String(e) }));
        "#;
        let mut answer = self.client.execute_async(RUN, vec![]).await.context("running axe-core")?;
        if let Some(error) = answer.get("error") {
            bail!("axe-core failed: {error}");
        }
        let violations: Vec<Violation> = serde_json::from_value(answer["ok"].take()).context("reading axe-core's results")?;
        Ok(violations
            .into_iter()
            .filter(|v| v.impact.as_deref().is_some_and(|i| FAILING_IMPACTS.contains(&i)))
            .map(|v| {
                let nodes: Vec<String> = v
                    .nodes
                    .iter()
                    .map(|n| {
                        let summary = n.summary.lines().skip(1).map(str::trim).collect::<Vec<_>>().join(" ");
                        format!("      {}  {summary}", selector(&n.target))
                    })
                    .collect();
                format!("  {} ({}): {}\n{}", v.id, v.impact.unwrap_or_default(), v.help, nodes.join("\n"))
            })
            .collect())
    }

    /// Whether the page scrolls sideways; if so, which elements stick out. (Measured
    /// against the root's client width: on a phone, as with mobile emulation, innerWidth
    /// grows to fit content wider than the screen.)
    pub async fn horizontal_overflow(&self) -> anyhow::Result<Option<String>> {
        const MEASURE: &str = r#"
            const width = document.documentElement.clientWidth;
            const clipped = e => { for (let a = e.parentElement; a && a !== document.body; a = a.parentElement)
              if (getComputedStyle(a).overflowX !== 'visible') return true; return false; };
            const wide = [...document.body.querySelectorAll('*')]
              .filter(e => e.getBoundingClientRect().right > width + 0.5 && !clipped(e))
              .slice(0, 5)
              .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
                + (typeof e.className === 'string' && e.className.trim() ? '.' + e.className.trim().split(/\s+/).join('.') : ''));
            return { scroll: document.documentElement.scrollWidth, width, wide };
        "#;
        #[derive(Deserialize)]
        struct Measure {
            scroll: u32,
            width: u32,
            wide: Vec<String>,
        }
        let m: Measure = serde_json::from_value(self.client.execute(MEASURE, vec![]).await?)?;
        Ok((m.scroll > m.width).then(|| {
            let culprits = if m.wide.is_empty() { "nothing in view (look for positioned elements)".to_owned() } else { m.wide.join(", ") };
            format!("the page is {}px wide in a {}px screen; sticking out: {culprits}", m.scroll, m.width)
        }))
    }

    /// Saves the viewport as docs/screenshots/{name}-{viewport}.png when DOORMAN_SCREENSHOTS=1.
    pub async fn screenshot(&self, name: &str, viewport: Viewport) -> anyhow::Result<()> {
        if std::env::var("DOORMAN_SCREENSHOTS").as_deref() != Ok("1") {
            return Ok(());
        }
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir)?;
        let png = self.client.screenshot().await.context("taking a screenshot")?;
        let path = dir.join(format!("{name}-{}.png", viewport.name()));
        std::fs::write(&path, png).with_context(|| format!("writing {}", path.display()))
    }
}

/// axe's target: a list of selectors (one per frame or shadow root), as one line.
fn selector(target: &serde_json::Value) -> String {
    match target {
        serde_json::Value::Array(parts) => parts.iter().map(selector).collect::<Vec<_>>().join(" >>> "),
        serde_json::Value::String(css) => css.clone(),
        other => other.to_string(),
    }
}

fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots")
}

/// One walk through pages in one browser session: each page is checked at both sizes, and
/// every problem found is reported together at the end, page by page.
pub struct PageWalk<'a> {
    browser: &'a Browser,
    pages: usize,
    problems: Vec<String>,
}

impl<'a> PageWalk<'a> {
    pub fn new(browser: &'a Browser) -> Self {
        Self { browser, pages: 0, problems: Vec::new() }
    }

    /// Checks the current page (already loaded: the caller waited for what it shows) with
    /// axe at both sizes, and for sideways scrolling. `label` names the page in messages.
    pub async fn check(&mut self, label: &str) -> anyhow::Result<()> {
        self.check_inner(label, None).await
    }

    /// As [`Self::check`], and saves its screenshots as docs/screenshots/{name}-*.png.
    pub async fn check_and_screenshot(&mut self, label: &str, name: &str) -> anyhow::Result<()> {
        self.check_inner(label, Some(name)).await
    }

    async fn check_inner(&mut self, label: &str, screenshot: Option<&str>) -> anyhow::Result<()> {
        self.pages += 1;
        let url = self.browser.client.current_url().await?;
        for viewport in Viewport::ALL {
            self.browser.set_viewport(viewport).await?;
            let at = format!(
                "{label} ({}) at {} {}",
                url.path(),
                viewport.name(),
                match viewport {
                    Viewport::Desktop => "1280×900",
                    Viewport::Phone => "360×740",
                }
            );
            let violations = self.browser.axe_violations().await.with_context(|| format!("checking {at}"))?;
            if !violations.is_empty() {
                self.problems.push(format!("{at}: axe-core found\n{}", violations.join("\n")));
            }
            if let Some(overflow) = self.browser.horizontal_overflow().await? {
                self.problems.push(format!("{at}: {overflow}"));
            }
            if let Some(name) = screenshot {
                self.browser.screenshot(name, viewport).await?;
            }
        }
        self.browser.set_viewport(Viewport::Desktop).await
    }

    /// Records a problem another check found on the current page.
    pub fn report(&mut self, label: &str, problem: Option<String>) {
        if let Some(problem) = problem {
            self.problems.push(format!("{label}: {problem}"));
        }
    }

    /// Fails with every problem found, if any.
    pub fn finish(self) -> anyhow::Result<()> {
        ensure!(
            self.problems.is_empty(),
            "{} problem(s) on the {} pages walked:\n{}",
            self.problems.len(),
            self.pages,
            self.problems.join("\n")
        );
        Ok(())
    }
}
