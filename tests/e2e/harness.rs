//! The harness: one app, one chromedriver and one browser session per test.
//!
//! [`browser_test`] starts them, hands the test a [`Browser`], and afterwards closes the
//! session and stops chromedriver (and with it Chromium) whether the test passed, failed
//! or panicked.

use anyhow::{Context, bail, ensure};
use doorman::Config;
use doorman::app::{Application, Options};
use doorman_core::audit::RequestContext;
use doorman_core::auth::NewAccountRequest;
use doorman_core::{Country, EmailAddress, Password, UserType, Username};
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::wd::{Capabilities, TimeoutConfiguration};
use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt;
use serde_json::json;
use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The account every test starts with.
pub const USERNAME: &str = "maria";
pub const EMAIL: &str = "maria@example.com";
pub const PASSWORD: &str = "sunny harbour lantern";

/// The session cookie's name when the base URL is plain `http://`.
pub const SESSION_COOKIE: &str = "doorman_session";

/// How long any single wait for the page may take. Generous: the machine has two cores
/// and several browsers may run at once.
pub const WAIT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(100);
const DRIVER_START: Duration = Duration::from_secs(10);
const SESSION_START: Duration = Duration::from_secs(60);

/// Runs `test` against a fresh app (with the account above) in a fresh headless Chromium.
pub async fn browser_test<F, Fut>(test: F)
where
    F: FnOnce(Browser) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    browser_test_with(|_| {}, test).await
}

/// As [`browser_test`], with settings of the test's own (a short wait, say).
pub async fn browser_test_with<F, Fut>(configure: impl FnOnce(&mut Config), test: F)
where
    F: FnOnce(Browser) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    require_browser();
    let name = test_name();
    let work = WorkDir::new().expect("creating the test's temporary directory");
    let clock = Arc::new(ShiftedClock::default());
    let (base, services) = spawn_app(work.path(), configure, clock.clone()).await.expect("starting doorman");
    let driver = ChromeDriver::start(work.path()).await.expect("starting chromedriver");
    let client = driver.new_session(&work.path().join("chrome-profile")).await.expect("opening a Chromium session");

    let browser = Browser { client: client.clone(), base, services, clock };
    let outcome = AssertUnwindSafe(test(browser)).catch_unwind().await;
    let saved = match &outcome {
        Ok(Ok(())) => String::new(),
        _ => save_artifacts(&client, &name).await,
    };
    let closed = tokio::time::timeout(WAIT, client.close()).await;
    drop(driver);
    drop(work);

    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(error)) => panic!("{error:#}{saved}"),
        Err(panic) => {
            eprintln!("{}", saved.trim_start());
            std::panic::resume_unwind(panic)
        }
    }
    match closed {
        Ok(Ok(())) => {}
        Ok(Err(error)) => panic!("closing the browser session: {error}"),
        Err(_) => panic!("closing the browser session took longer than {WAIT:?}"),
    }
}

/// Fails (never skips) when the browser is not installed.
fn require_browser() {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER].into_iter().filter(|path| !Path::new(path).exists()).collect();
    assert!(
        missing.is_empty(),
        "the browser tests need {} but it is missing: run `scripts/install-browser.sh` as root \
         (it installs Debian's chromium and chromium-driver)",
        missing.join(" and "),
    );
}

/// libtest names each test's thread after the test, and `#[tokio::test]` runs the body there.
fn test_name() -> String {
    let name = std::thread::current().name().unwrap_or("unnamed-test").to_owned();
    name.replace("::", "__")
}

/// The page, a helper around the fantoccini client. `base` is the app's root URL.
#[derive(Clone)]
pub struct Browser {
    pub client: Client,
    pub base: url::Url,
    /// The app's domain services, for setting up what a test needs (accounts, banners).
    pub services: doorman_core::services::Services,
    /// The app's clock: the real time, moved on by [`ShiftedClock::advance`] where a test
    /// needs a wait to be over.
    pub clock: Arc<ShiftedClock>,
}

/// The system clock plus an offset a test can move forward.
#[derive(Debug, Default)]
pub struct ShiftedClock {
    offset_seconds: AtomicI64,
}

impl ShiftedClock {
    pub fn advance(&self, seconds: i64) {
        self.offset_seconds.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl doorman_core::Clock for ShiftedClock {
    fn now(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc() + time::Duration::seconds(self.offset_seconds.load(Ordering::SeqCst))
    }
}

impl Browser {
    /// Opens a path of the app and waits for the page to load.
    pub async fn goto(&self, path: &str) -> anyhow::Result<()> {
        let url = self.base.join(path)?;
        self.client.goto(url.as_str()).await.with_context(|| format!("opening {url}"))
    }

    /// Waits for an element to be in the page.
    pub async fn find(&self, css: &str) -> anyhow::Result<Element> {
        self.find_by(Locator::Css(css), css).await
    }

    /// Waits for a button whose visible text is `label`.
    pub async fn button(&self, label: &str) -> anyhow::Result<Element> {
        let xpath = format!("//button[normalize-space()='{label}']");
        self.find_by(Locator::XPath(&xpath), &format!("a button \"{label}\"")).await
    }

    async fn find_by(&self, locator: Locator<'_>, what: &str) -> anyhow::Result<Element> {
        let client = &self.client;
        self.wait_for(what, move || async move { Ok(client.find(locator).await?) }).await
    }

    /// The one way tests wait for the page: runs `attempt` until it succeeds, every
    /// [`POLL`], for at most [`WAIT`]. A failed attempt means "not yet"; when time is up,
    /// the last failure says what the page showed instead, with `what` and the page's address.
    pub async fn wait_for<T, F, Fut>(&self, what: &str, attempt: F) -> anyhow::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = anyhow::Result<T>>,
    {
        self.wait_for_within(WAIT, what, attempt).await
    }

    /// [`Self::wait_for`] with a longer limit, for what waits on the mail worker (which backs
    /// off while a busy machine keeps the database locked).
    pub async fn wait_for_within<T, F, Fut>(&self, limit: Duration, what: &str, mut attempt: F) -> anyhow::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = anyhow::Result<T>>,
    {
        let deadline = Instant::now() + limit;
        loop {
            match attempt().await {
                Ok(value) => return Ok(value),
                Err(error) if Instant::now() >= deadline => {
                    let url = self.client.current_url().await.map(|u| u.to_string()).unwrap_or_else(|e| format!("(unknown: {e})"));
                    return Err(error.context(format!("waited {limit:?} for {what} on {url}")));
                }
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// The visible text of an element, once it is in the page. Found and read in one attempt,
    /// again if the page changed in between (a stale element).
    pub async fn text(&self, css: &str) -> anyhow::Result<String> {
        let client = &self.client;
        self.wait_for(css, move || async move {
            let element = client.find(Locator::Css(css)).await?;
            element.text().await.with_context(|| format!("reading the text of {css}"))
        })
        .await
    }

    /// Clicks `element` (a form's submit button) and waits until the page it was on is gone,
    /// so that what is read next comes from the answer, not from the page before it.
    pub async fn click_and_leave(&self, element: Element) -> anyhow::Result<()> {
        element.clone().click().await.context("clicking")?;
        self.wait_for("the next page", move || {
            let element = element.clone();
            async move {
                match element.tag_name().await {
                    Ok(_) => anyhow::bail!("still on the page"),
                    Err(_) => Ok(()),
                }
            }
        })
        .await
    }

    /// The current value of a form field (the DOM property, not the HTML attribute).
    pub async fn value(&self, css: &str) -> anyhow::Result<String> {
        let element = self.find(css).await?;
        Ok(element.prop("value").await.with_context(|| format!("reading the value of {css}"))?.unwrap_or_default())
    }

    /// Waits until the browser is on `path` of the app (redirects included).
    pub async fn wait_for_path(&self, path: &str) -> anyhow::Result<()> {
        self.wait_for(&format!("the browser to reach {path}"), move || async move {
            let url = self.client.current_url().await.context("reading the current URL")?;
            ensure!(url.origin() == self.base.origin() && url.path() == path, "the browser is at {url}");
            Ok(())
        })
        .await
    }

    /// Waits until an element's HTML attribute has the expected value.
    pub async fn wait_for_attr(&self, element: &Element, attribute: &str, expected: &str) -> anyhow::Result<()> {
        self.wait_for(&format!("attribute {attribute} to become {expected:?}"), move || async move {
            let value = element.attr(attribute).await.with_context(|| format!("reading attribute {attribute}"))?;
            ensure!(value.as_deref() == Some(expected), "it is {value:?}");
            Ok(())
        })
        .await
    }

    /// Presses keys as a person does on the keyboard, on whatever has the focus: text, or
    /// [`fantoccini::key::Key`] values such as Tab and Enter.
    pub async fn press(&self, keys: &str) -> anyhow::Result<()> {
        let mut actions = KeyActions::new("keyboard".into());
        for key in keys.chars() {
            actions = actions.then(KeyAction::Down { value: key }).then(KeyAction::Up { value: key });
        }
        self.client.perform_actions(actions).await.with_context(|| format!("pressing {keys:?}"))
    }

    /// Presses Tab, then waits for the focus to reach `css` (Tab moves it synchronously,
    /// but a page may still be loading).
    pub async fn tab_to(&self, css: &str) -> anyhow::Result<()> {
        self.press(&char::from(Key::Tab).to_string()).await?;
        self.expect_focus(css).await
    }

    /// Waits until the element with the keyboard focus is the one `css` selects.
    pub async fn expect_focus(&self, css: &str) -> anyhow::Result<()> {
        self.wait_for(&format!("the focus on {css}"), move || async move {
            let focused: bool = serde_json::from_value(
                self.client.execute("return document.activeElement.matches(arguments[0])", vec![json!(css)]).await?,
            )?;
            if !focused {
                let html: String =
                    serde_json::from_value(self.client.execute("return document.activeElement.outerHTML.slice(0, 200)", vec![]).await?)?;
                bail!("the focus is on {html}");
            }
            Ok(())
        })
        .await
    }

    /// Signs the test's account in from the login page, as a person would, and waits for
    /// the account page.
    pub async fn sign_in(&self) -> anyhow::Result<()> {
        self.goto("/login").await?;
        self.log_in(USERNAME, PASSWORD).await?;
        self.wait_for_path("/account").await
    }

    /// Fills the login form of the current page and submits it, as a person would.
    pub async fn log_in(&self, login: &str, password: &str) -> anyhow::Result<()> {
        let login_field = self.find("#login").await?;
        login_field.clear().await?;
        login_field.send_keys(login).await.context("typing the login")?;
        let password_field = self.find("#password").await?;
        password_field.clear().await?;
        password_field.send_keys(password).await.context("typing the password")?;
        // The page being left: its root goes stale once the answer's page replaces it. Without
        // this wait, a step right after could find an element of the old page and use it as the
        // new one loads (a stale element reference in a loop of wrong passwords).
        let page = self.client.find(Locator::Css("html")).await.context("the login page")?;
        self.find("form[action='/login'] button[type=submit]").await?.click().await.context("clicking Log in")?;
        self.wait_for("the login form's answer to load", || async {
            ensure!(page.tag_name().await.is_err(), "the login page is still shown");
            Ok(())
        })
        .await
    }
}

/// Builds the app on a free port with `base_url` set to that port, so the browser's
/// Origin matches, creates the test account, and serves in the background. Returns the
/// app's root URL.
async fn spawn_app(
    dir: &Path,
    configure: impl FnOnce(&mut Config),
    clock: Arc<ShiftedClock>,
) -> anyhow::Result<(url::Url, doorman_core::services::Services)> {
    let mut configure = Some(configure);
    let mut attempt = 0;
    let (app, base) = loop {
        attempt += 1;
        let port = free_port()?;
        let base = url::Url::parse(&format!("http://127.0.0.1:{port}/"))?;
        let mut config = Config {
            listen: SocketAddr::from(([127, 0, 0, 1], port)),
            database_url: format!("sqlite://{}/doorman.db?mode=rwc", dir.display()),
            base_url: base.clone(),
            secret_key_file: dir.join("secret.key"),
            mail_dir: dir.join("mail"),
            ..Config::default()
        };
        if let Some(configure) = configure.take() {
            configure(&mut config);
        }
        // Demo mode: the dev outbox is listed at /dev/mailbox, where tests open their email.
        match Application::build(&config, Options { demo: true, clock: clock.clone() }).await {
            Ok(app) => break (app, base),
            // Another process took the port between picking and binding it: pick again.
            Err(error) if attempt < 5 && is_addr_in_use(&error) => continue,
            Err(error) => return Err(error),
        }
    };
    let services = app.services().clone();
    tokio::spawn(app.run_until_stopped());
    services
        .auth
        .create_account(
            NewAccountRequest {
                username: Username::parse(USERNAME)?,
                email: EmailAddress::parse(EMAIL)?,
                user_type: UserType::parse("freelancer")?,
                country: Country::parse("PH")?,
                password: Password::new(PASSWORD)?,
            },
            &RequestContext::cli(),
        )
        .await?;
    Ok((base, services))
}

fn is_addr_in_use(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::AddrInUse))
}

/// A port that was free a moment ago.
fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A chromedriver child process. Dropping it asks chromedriver to shut down, which also
/// quits the Chromium it started, and kills it if that does not work in time.
pub struct ChromeDriver {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl ChromeDriver {
    async fn start(dir: &Path) -> anyhow::Result<Self> {
        let port = free_port()?;
        let log = dir.join("chromedriver.log");
        let log_file = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("running {CHROMEDRIVER}"))?;
        // From here on, Drop stops the child if starting fails.
        let mut driver = Self { child, port, log };
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + DRIVER_START;
        loop {
            if let Some(status) = driver.child.try_wait()? {
                bail!("chromedriver exited at start ({status}):\n{}", driver.log_text());
            }
            if tokio::net::TcpStream::connect(address).await.is_ok() {
                return Ok(driver);
            }
            if Instant::now() >= deadline {
                bail!("chromedriver did not accept connections on port {port} within {DRIVER_START:?}:\n{}", driver.log_text());
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// A new headless Chromium session with a fresh profile in `profile`.
    async fn new_session(&self, profile: &Path) -> anyhow::Result<Client> {
        let mut chrome_options = serde_json::Map::new();
        chrome_options.insert("binary".into(), json!(CHROMIUM));
        chrome_options.insert(
            "args".into(),
            json!([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ]),
        );
        let mut capabilities = Capabilities::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".into(), serde_json::Value::Object(chrome_options));

        // chromedriver is on loopback: plain HTTP, no TLS connector needed.
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let url = format!("http://127.0.0.1:{}", self.port);
        let client = match tokio::time::timeout(SESSION_START, ClientBuilder::new(connector).capabilities(capabilities).connect(&url)).await
        {
            Ok(Ok(client)) => client,
            Ok(Err(error)) => bail!("chromedriver refused a new session: {error}\n{}", self.log_text()),
            Err(_) => bail!("Chromium did not start within {SESSION_START:?}\n{}", self.log_text()),
        };
        client
            .update_timeouts(TimeoutConfiguration::new(Some(WAIT), Some(Duration::from_secs(30)), Some(Duration::ZERO)))
            .await
            .context("setting the session's timeouts")?;
        Ok(client)
    }

    fn log_text(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        format!("--- {} ---\n{text}", self.log.display())
    }

    /// `GET /shutdown`: chromedriver quits every browser it started, then exits.
    fn request_shutdown(&self) -> std::io::Result<()> {
        let address = SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(1))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.set_write_timeout(Some(Duration::from_secs(1)))?;
        write!(stream, "GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n", self.port)?;
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        Ok(())
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        if self.request_shutdown().is_ok() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temporary directory for one test (database, key, mail, browser profile, logs),
/// removed when dropped.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new() -> std::io::Result<Self> {
        let path = std::env::temp_dir().join(format!("doorman-e2e-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path)?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Saves a screenshot and the page source of a failed test; returns a note naming them.
async fn save_artifacts(client: &Client, name: &str) -> String {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e");
    let result: anyhow::Result<String> = async {
        std::fs::create_dir_all(&dir)?;
        let mut saved = Vec::new();
        let url = client.current_url().await.map(|u| u.to_string()).unwrap_or_default();
        if let Ok(png) = client.screenshot().await {
            let path = dir.join(format!("{name}.png"));
            std::fs::write(&path, png)?;
            saved.push(path.display().to_string());
        }
        if let Ok(html) = client.source().await {
            let path = dir.join(format!("{name}.html"));
            std::fs::write(&path, format!("<!-- {url} -->\n{html}"))?;
            saved.push(path.display().to_string());
        }
        ensure!(!saved.is_empty(), "the browser gave neither a screenshot nor the page source");
        Ok(format!("\n(the browser was at {url}; saved {})", saved.join(" and ")))
    }
    .await;
    result.unwrap_or_else(|error| format!("\n(could not save a screenshot: {error:#})"))
}
