//! `doorman-bench soak`: the load driver of `scripts/soak` (issue 13).
//!
//! Virtual users, each a browser with its own cookie jar, drive a weighted mix of what people do
//! against every replica of one deployment: password logins, the second step with an
//! authenticator code, banners, help articles and votes, forgot-password requests and resets
//! finished from the emailed link, logouts. Each user sends each request to the next replica
//! in turn and, when a replica refuses the connection, to the one after it, as a load balancer
//! would ("failed over", not an error). Every answer is checked against what its step expects;
//! anything else is an unexpected error, counted per step and status. A request that a replica
//! took and never answered because the replica died under it (`kill -9` by the script) is
//! "cut by the kill": a balancer would answer 502 and the person would try again. It counts as
//! expected only when the replica was seen dying within seconds of the request.
//!
//! Every few seconds it records each replica's RSS (from the pid files the script keeps) and
//! the request rate; at the end it waits for every requested reset email in the dev outbox and
//! checks that there is exactly one per request, then writes a Markdown report. It exits
//! non-zero if anything unexpected happened, so a run is an honest check.
//!
//! Accounts (seeded by the script with one password): `soak<n>` (password logins; each user
//! has its own few, so a browser's trusted-device cookies stay few, as in life), `totp<n>`
//! (each user enrols an authenticator app on its own few through the API before the load) and
//! `reset<n>` (each asked for once, so no per-account mail limit applies).

use anyhow::{Context, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Password-login accounts per virtual user.
const PASSWORD_ACCOUNTS: usize = 6;
/// Accounts with an authenticator app per virtual user (with the above, at most 10 trusted
/// device cookies per browser; doorman reads 16).
const TOTP_ACCOUNTS: usize = 4;
/// How many unexpected answers are printed in full.
const EXAMPLES: usize = 8;
/// A cut request counts as the kill's when the replica was seen dying this long before the
/// request started or after it ended.
const CUT_WINDOW_BEFORE: f64 = 5.0;
const CUT_WINDOW_AFTER: f64 = 3.0;

const USAGE: &str = "usage: doorman-bench soak --replicas URL,URL,URL --pid-files FILE,FILE,FILE --mail-dir DIR \
    --password PASSWORD --out FILE [--seconds 600] [--users 24] [--warm-up SECONDS] [--reset-accounts 20000] \
    [--ready-file FILE] [--drain-seconds 180] [--sample-seconds 10] [--think-ms 250]";

struct Options {
    replicas: Vec<String>,
    pid_files: Vec<PathBuf>,
    mail_dir: PathBuf,
    password: String,
    out: PathBuf,
    seconds: u64,
    users: usize,
    warm_up: u64,
    reset_accounts: usize,
    ready_file: Option<PathBuf>,
    drain_seconds: u64,
    sample_seconds: u64,
    think_ms: u64,
}

impl Options {
    fn parse(args: &[String]) -> anyhow::Result<Self> {
        let mut given: HashMap<&str, &str> = HashMap::new();
        let mut rest = args.iter();
        while let Some(key) = rest.next() {
            let Some(name) = key.strip_prefix("--") else { bail!("{key}: expected an option\n{USAGE}") };
            let Some(value) = rest.next() else { bail!("{key} needs a value\n{USAGE}") };
            given.insert(name, value);
        }
        let mut take = |name: &str| given.remove(name);
        let required = |value: Option<&str>, name: &str| value.map(str::to_owned).with_context(|| format!("--{name} is required\n{USAGE}"));
        let number = |value: Option<&str>, name: &str, default: u64| -> anyhow::Result<u64> {
            value.map_or(Ok(default), |v| v.parse().with_context(|| format!("--{name}: not a number: {v}")))
        };
        let replicas: Vec<String> =
            required(take("replicas"), "replicas")?.split(',').map(|u| u.trim_end_matches('/').to_owned()).collect();
        let pid_files: Vec<PathBuf> = required(take("pid-files"), "pid-files")?.split(',').map(PathBuf::from).collect();
        if replicas.len() != pid_files.len() {
            bail!("one pid file per replica");
        }
        let seconds = number(take("seconds"), "seconds", 600)?;
        let options = Self {
            mail_dir: PathBuf::from(required(take("mail-dir"), "mail-dir")?),
            password: required(take("password"), "password")?,
            out: PathBuf::from(required(take("out"), "out")?),
            users: usize::try_from(number(take("users"), "users", 24)?)?,
            warm_up: number(take("warm-up"), "warm-up", (seconds / 4).min(60))?,
            reset_accounts: usize::try_from(number(take("reset-accounts"), "reset-accounts", 20_000)?)?,
            ready_file: take("ready-file").map(PathBuf::from),
            drain_seconds: number(take("drain-seconds"), "drain-seconds", 180)?,
            sample_seconds: number(take("sample-seconds"), "sample-seconds", 10)?.max(1),
            think_ms: number(take("think-ms"), "think-ms", 250)?,
            replicas,
            pid_files,
            seconds,
        };
        if let Some(unknown) = given.keys().next() {
            bail!("unknown option --{unknown}\n{USAGE}");
        }
        Ok(options)
    }
}

/// What each request is, for the table.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
enum Step {
    SetupLogin,
    SetupTotpStart,
    SetupTotpConfirm,
    SetupLogout,
    Login,
    Session,
    BannersSignedIn,
    Logout,
    WrongPassword,
    TwoStepLogin,
    AppCode,
    Banners,
    Article,
    Vote,
    Forgot,
    Reset,
    LoginAfterReset,
}

impl Step {
    fn label(self) -> &'static str {
        match self {
            Self::SetupLogin => "setup: POST /api/v1/login (before enrolling an app)",
            Self::SetupTotpStart => "setup: POST /api/v1/account/two-step/totp",
            Self::SetupTotpConfirm => "setup: POST /api/v1/account/two-step/totp/confirm",
            Self::SetupLogout => "setup: POST /api/v1/logout",
            Self::Login => "POST /api/v1/login, right password → 200 authenticated",
            Self::Session => "GET /api/v1/session → 200, the account's",
            Self::BannersSignedIn => "GET /api/v1/banners/active, signed in → 200",
            Self::Logout => "POST /api/v1/logout → 200",
            Self::WrongPassword => "POST /api/v1/login, unknown login → 401",
            Self::TwoStepLogin => "POST /api/v1/login, 2-step account → 200 second_factor_required",
            Self::AppCode => "POST /api/v1/login/second-factor, app code → 200",
            Self::Banners => "GET /api/v1/banners/active, anonymous → 200",
            Self::Article => "GET /api/v1/help/articles/{slug} → 200",
            Self::Vote => "POST /api/v1/help/articles/{slug}/vote → 200",
            Self::Forgot => "POST /api/v1/password/forgot → 202",
            Self::Reset => "POST /api/v1/password/reset, emailed link → 200",
            Self::LoginAfterReset => "POST /api/v1/login, new password → 200",
        }
    }
}

#[derive(Default)]
struct StepStats {
    latencies_us: Vec<u32>,
    /// Unexpected answers by status (0: no answer at all).
    unexpected: BTreeMap<u16, u64>,
    cut: u64,
}

#[derive(Default)]
struct Stats {
    steps: BTreeMap<Step, StepStats>,
    failed_over: u64,
    answered: u64,
    examples: Vec<String>,
    reset_pool_empty: bool,
    flows: BTreeMap<&'static str, u64>,
}

/// What the pid files say about each replica, polled five times a second.
struct Monitor {
    pids: Vec<Option<u32>>,
    up: Vec<bool>,
    /// (seconds since the load started, replica, came up?, pid)
    events: Vec<(f64, usize, bool, Option<u32>)>,
}

/// The reset emails in the dev outbox, by recipient: the link tokens found.
#[derive(Default)]
struct MailIndex {
    seen: HashSet<std::ffi::OsString>,
    resets: HashMap<String, Vec<String>>,
    files: usize,
}

#[derive(Default)]
struct Resets {
    /// Accounts whose forgot-password request was accepted (202): exactly one email each.
    requested: Vec<String>,
    /// Requests that got no answer: at most one email each.
    unanswered: HashSet<String>,
    to_complete: VecDeque<String>,
    completed: u64,
}

/// One sample of the timeline.
struct Sample {
    at: f64,
    answered: u64,
    rss_kib: Vec<Option<u64>>,
    pids: Vec<Option<u32>>,
}

struct Shared {
    options: Options,
    setup_started: Instant,
    /// When the load started, and when it ends: set once the setup is done.
    load: std::sync::OnceLock<(Instant, Instant)>,
    stats: Mutex<Stats>,
    monitor: Mutex<Monitor>,
    mail: Mutex<MailIndex>,
    resets: Mutex<Resets>,
    next_reset: AtomicUsize,
    slugs: Vec<String>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    /// Seconds since the load started (since the setup started, before that).
    fn elapsed(&self) -> f64 {
        self.load.get().map_or(self.setup_started, |l| l.0).elapsed().as_secs_f64()
    }

    fn record(&self, step: Step, latency: Duration) {
        let mut stats = lock(&self.stats);
        stats.answered += 1;
        let micros = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
        stats.steps.entry(step).or_default().latencies_us.push(micros);
    }

    fn unexpected(&self, step: Step, status: u16, replica: usize, text: &str) {
        let mut stats = lock(&self.stats);
        *stats.steps.entry(step).or_default().unexpected.entry(status).or_default() += 1;
        if stats.examples.len() < EXAMPLES {
            let at = self.elapsed();
            let text: String = text.chars().take(600).collect();
            stats.examples.push(format!("{at:.1} s, replica {}, {}: {status} {text}", replica + 1, step.label()));
        }
    }

    fn cut(&self, step: Step) {
        lock(&self.stats).steps.entry(step).or_default().cut += 1;
    }

    /// Whether `replica` was seen going down between `from` and `to` (seconds since start).
    fn died_between(&self, replica: usize, from: f64, to: f64) -> bool {
        lock(&self.monitor).events.iter().any(|&(at, r, up, _)| r == replica && !up && at >= from && at <= to)
    }

    fn running(&self) -> bool {
        self.load.get().is_none_or(|l| Instant::now() < l.1)
    }
}

/// A replica's pid from its file, if the process is alive (not gone, not a zombie).
fn live_pid(file: &std::path::Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(file).ok()?.trim().parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let state = status.lines().find_map(|l| l.strip_prefix("State:"))?.trim();
    (!state.starts_with('Z') && !state.starts_with('X')).then_some(pid)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()
}

async fn watch_replicas(shared: Arc<Shared>) {
    loop {
        {
            let mut monitor = lock(&shared.monitor);
            for (i, file) in shared.options.pid_files.iter().enumerate() {
                let pid = live_pid(file);
                let was = (monitor.up[i], monitor.pids[i]);
                if (pid.is_some(), pid) != was {
                    let at = shared.elapsed();
                    if was.0 && pid != was.1 {
                        // Gone, or replaced by a new process between two polls.
                        monitor.events.push((at, i, false, was.1));
                    }
                    if let Some(pid) = pid {
                        monitor.events.push((at, i, true, Some(pid)));
                    }
                    monitor.up[i] = pid.is_some();
                    monitor.pids[i] = pid;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The `.eml` files of the dev outbox not read yet: reset links by recipient.
fn scan_mail(shared: &Shared) {
    let Ok(entries) = std::fs::read_dir(&shared.options.mail_dir) else { return };
    let mut fresh = Vec::new();
    {
        let index = lock(&shared.mail);
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().ends_with(".eml") && !index.seen.contains(&name) {
                fresh.push((name, entry.path()));
            }
        }
    }
    for (name, path) in fresh {
        let Ok(bytes) = std::fs::read(&path) else { continue };
        let parsed = mail_parser::MessageParser::default().parse(&bytes);
        let mut index = lock(&shared.mail);
        index.seen.insert(name);
        index.files += 1;
        let Some(message) = parsed else { continue };
        if !message.subject().is_some_and(|s| s.starts_with("Reset your")) {
            continue;
        }
        let to = message.to().and_then(|a| a.first()).and_then(|a| a.address()).unwrap_or_default().to_ascii_lowercase();
        let text = message.body_text(0).unwrap_or_default();
        let token = text
            .split("reset-password?token=")
            .nth(1)
            .map(|rest| rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect::<String>());
        index.resets.entry(to).or_default().push(token.unwrap_or_default());
    }
}

async fn watch_mail(shared: Arc<Shared>) {
    loop {
        let scanning = shared.clone();
        // Reading files is blocking work.
        let _ = tokio::task::spawn_blocking(move || scan_mail(&scanning)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn sample(shared: Arc<Shared>, samples: Arc<Mutex<Vec<Sample>>>) {
    let every = Duration::from_secs(shared.options.sample_seconds);
    let mut next = Instant::now();
    loop {
        let pids: Vec<Option<u32>> = shared.options.pid_files.iter().map(|f| live_pid(f)).collect();
        let rss_kib = pids.iter().map(|p| p.and_then(rss_kib)).collect();
        let answered = lock(&shared.stats).answered;
        lock(&samples).push(Sample { at: shared.elapsed(), answered, rss_kib, pids });
        next += every;
        tokio::time::sleep_until(next.into()).await;
    }
}

struct TotpAccount {
    login: String,
    method_id: String,
    generator: totp_rs::Totp,
    /// The last time step whose code was sent: doorman refuses a code at or before it.
    last_step: i64,
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn current_step() -> i64 {
    unix_now() / 30
}

impl TotpAccount {
    fn code(&self, step: i64) -> String {
        self.generator.generate((step.max(0) * 30) as u64).to_string()
    }
}

struct Answer {
    status: u16,
    body: Value,
    text: String,
    replica: usize,
}

/// A browser: its own cookie jar and connections.
fn browser() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .cookie_provider(Arc::new(reqwest::cookie::Jar::default()))
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(5))
        .build()
}

/// One virtual user: a browser with its own cookie jar.
struct User {
    shared: Arc<Shared>,
    client: reqwest::Client,
    rng: StdRng,
    next: usize,
    ip: String,
    passwords: Vec<String>,
    totp: Vec<TotpAccount>,
}

enum Flow {
    PasswordLogin,
    WrongPassword,
    TwoStep,
    Banners,
    ArticleAndVote,
    Forgot,
    CompleteReset,
}

/// The mix, by weight.
static MIX: [(u32, Flow); 7] = [
    (24, Flow::PasswordLogin),
    (4, Flow::WrongPassword),
    (14, Flow::TwoStep),
    (22, Flow::Banners),
    (18, Flow::ArticleAndVote),
    (10, Flow::Forgot),
    (8, Flow::CompleteReset),
];

impl Flow {
    fn name(&self) -> &'static str {
        match self {
            Self::PasswordLogin => "password login: login, session, banners, logout",
            Self::WrongPassword => "wrong password (unknown login)",
            Self::TwoStep => "2-step login: login, app code, session, logout",
            Self::Banners => "banners, anonymous",
            Self::ArticleAndVote => "help article and a vote",
            Self::Forgot => "forgot password",
            Self::CompleteReset => "reset from the email, then login, logout",
        }
    }
}

impl User {
    fn new(shared: Arc<Shared>, index: usize) -> anyhow::Result<Self> {
        let client = browser()?;
        let passwords = (0..PASSWORD_ACCOUNTS).map(|j| format!("soak{}", index * PASSWORD_ACCOUNTS + j + 1)).collect();
        let next = index % shared.options.replicas.len();
        Ok(Self { shared, client, rng: StdRng::from_entropy(), next, ip: String::new(), passwords, totp: Vec::new() })
    }

    /// A new client address for each flow, so per-address limits never decide.
    fn new_address(&mut self) {
        self.ip = format!("10.{}.{}.{}", self.rng.gen_range(0..=255), self.rng.gen_range(0..=255), self.rng.gen_range(1..=254));
    }

    /// One request to the next replica in turn, and to the ones after it when a replica
    /// refuses the connection. `None` when no answer came (counted here).
    async fn call(&mut self, step: Step, method: Method, path: &str, body: Option<&Value>) -> Option<Answer> {
        let replicas = self.shared.options.replicas.len();
        for attempt in 0..replicas {
            let replica = (self.next + attempt) % replicas;
            let url = format!("{}{path}", self.shared.options.replicas[replica]);
            let mut request = self.client.request(method.clone(), &url).header("X-Real-IP", &self.ip);
            if let Some(body) = body {
                request = request.json(body);
            }
            let sent_at = self.shared.elapsed();
            let started = Instant::now();
            let failure = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    match response.text().await {
                        Ok(text) => {
                            self.shared.record(step, started.elapsed());
                            self.next = replica + 1;
                            let body = serde_json::from_str(&text).unwrap_or(Value::Null);
                            return Some(Answer { status, body, text, replica });
                        }
                        Err(e) => e,
                    }
                }
                Err(e) if e.is_connect() => {
                    lock(&self.shared.stats).failed_over += 1;
                    continue;
                }
                Err(e) => e,
            };
            self.next = replica + 1;
            // Taken, never answered: the kill's, if the replica was seen dying around it.
            let ended_at = self.shared.elapsed();
            tokio::time::sleep(Duration::from_secs_f64(CUT_WINDOW_AFTER + 0.5)).await;
            if self.shared.died_between(replica, sent_at - CUT_WINDOW_BEFORE, ended_at + CUT_WINDOW_AFTER) {
                self.shared.cut(step);
            } else {
                self.shared.unexpected(step, 0, replica, &format!("no answer: {failure:?}"));
            }
            return None;
        }
        self.shared.unexpected(step, 0, self.next % replicas, "no replica accepted the connection");
        None
    }

    /// A checked request: `Some` only when the answer is what the step expects.
    async fn expect(
        &mut self,
        step: Step,
        method: Method,
        path: &str,
        body: Option<&Value>,
        ok: impl FnOnce(u16, &Value) -> bool,
    ) -> Option<Answer> {
        let answer = self.call(step, method, path, body).await?;
        if answer.status < 500 && ok(answer.status, &answer.body) {
            return Some(answer);
        }
        self.shared.unexpected(step, answer.status, answer.replica, &answer.text);
        None
    }

    async fn login(&mut self, step: Step, login: &str, password: &str, status: &str) -> Option<Answer> {
        let body = json!({ "login": login, "password": password });
        self.expect(step, Method::POST, "/api/v1/login", Some(&body), |s, b| s == 200 && b["status"] == status).await
    }

    async fn session_and_logout(&mut self, login: &str, banners: bool) -> Option<()> {
        self.expect(Step::Session, Method::GET, "/api/v1/session", None, |s, b| s == 200 && b["account"]["username"] == login).await?;
        if banners {
            self.expect(Step::BannersSignedIn, Method::GET, "/api/v1/banners/active", None, |s, b| {
                s == 200 && b["banners"].is_array() && b["viewer"]["country"] == "US"
            })
            .await?;
        }
        self.logout(Step::Logout).await
    }

    async fn logout(&mut self, step: Step) -> Option<()> {
        self.expect(step, Method::POST, "/api/v1/logout", Some(&json!({})), |s, b| s == 200 && b["status"] == "logged_out").await?;
        Some(())
    }

    /// Before the load: an authenticator app on each of this user's 2-step accounts.
    async fn enrol(&mut self, first: usize) -> anyhow::Result<()> {
        let password = self.shared.options.password.clone();
        for j in 0..TOTP_ACCOUNTS {
            let login = format!("totp{}", first + j + 1);
            self.new_address();
            self.login(Step::SetupLogin, &login, &password, "authenticated").await.context("login before enrolling")?;
            let started = self
                .expect(Step::SetupTotpStart, Method::POST, "/api/v1/account/two-step/totp", Some(&json!({})), |s, b| {
                    s == 200 && b["secret"].is_string() && b["method_id"].is_string()
                })
                .await
                .context("starting an app enrolment")?;
            let method_id = started.body["method_id"].as_str().unwrap_or_default().to_owned();
            let secret = totp_rs::Secret::try_from_base32(started.body["secret"].as_str().unwrap_or_default())
                .map_err(|e| anyhow::anyhow!("the secret is not base32: {e:?}"))?;
            let generator = totp_rs::Builder::new()
                .with_algorithm(totp_rs::Algorithm::SHA1)
                .with_digits(6)
                .with_step_duration(30)
                .with_secret(secret)
                .build_noncompliant();
            let mut account = TotpAccount { login, method_id: method_id.clone(), generator, last_step: 0 };
            let step = current_step();
            account.last_step = step;
            let body = json!({ "method_id": method_id, "code": account.code(step) });
            self.expect(Step::SetupTotpConfirm, Method::POST, "/api/v1/account/two-step/totp/confirm", Some(&body), |s, b| {
                s == 200 && b["status"] == "enabled"
            })
            .await
            .context("confirming an app enrolment")?;
            self.logout(Step::SetupLogout).await.context("logout after enrolling")?;
            self.totp.push(account);
        }
        Ok(())
    }

    fn pick(&mut self) -> &'static Flow {
        let total: u32 = MIX.iter().map(|(w, _)| w).sum();
        let mut roll = self.rng.gen_range(0..total);
        for (weight, flow) in &MIX {
            if roll < *weight {
                return flow;
            }
            roll -= weight;
        }
        &MIX[0].1
    }

    async fn run(mut self) {
        while self.shared.running() {
            let mut flow = self.pick();
            self.new_address();
            // A flow that cannot run now (no fresh app code, no email yet) gives way to banners.
            let ran = loop {
                let done = match flow {
                    Flow::PasswordLogin => self.password_login().await,
                    Flow::WrongPassword => self.wrong_password().await,
                    Flow::TwoStep => self.two_step().await,
                    Flow::Banners => self.banners().await,
                    Flow::ArticleAndVote => self.article_and_vote().await,
                    Flow::Forgot => self.forgot().await,
                    Flow::CompleteReset => self.complete_reset().await,
                };
                match done {
                    Ok(()) => break flow,
                    Err(()) => flow = &Flow::Banners,
                }
            };
            *lock(&self.shared.stats).flows.entry(ran.name()).or_default() += 1;
            let think = self.rng.gen_range(0..=self.shared.options.think_ms * 2);
            tokio::time::sleep(Duration::from_millis(think)).await;
        }
    }

    // Each flow: Err(()) when it could not start (another runs instead); Ok(()) once it ran,
    // whatever its answers (those are counted where they come).

    async fn password_login(&mut self) -> Result<(), ()> {
        let login = self.passwords[self.rng.gen_range(0..self.passwords.len())].clone();
        let password = self.shared.options.password.clone();
        if self.login(Step::Login, &login, &password, "authenticated").await.is_some() {
            self.session_and_logout(&login, true).await;
        }
        Ok(())
    }

    async fn wrong_password(&mut self) -> Result<(), ()> {
        let login = format!("nobody{}", self.rng.r#gen::<u64>());
        let body = json!({ "login": login, "password": "not the password of anyone" });
        self.expect(Step::WrongPassword, Method::POST, "/api/v1/login", Some(&body), |s, b| {
            s == 401 && b["error"] == "invalid_credentials"
        })
        .await;
        Ok(())
    }

    async fn two_step(&mut self) -> Result<(), ()> {
        let step = current_step();
        let fresh: Vec<usize> = (0..self.totp.len()).filter(|&i| self.totp[i].last_step < step).collect();
        if fresh.is_empty() {
            return Err(());
        }
        let i = fresh[self.rng.gen_range(0..fresh.len())];
        let (login, method_id) = (self.totp[i].login.clone(), self.totp[i].method_id.clone());
        let password = self.shared.options.password.clone();
        let Some(first) = self.login(Step::TwoStepLogin, &login, &password, "second_factor_required").await else { return Ok(()) };
        if !first.body["methods"].as_array().is_some_and(|m| m.iter().any(|m| m["id"] == method_id.as_str())) {
            self.shared.unexpected(Step::TwoStepLogin, first.status, first.replica, &format!("the app is not offered: {}", first.text));
            return Ok(());
        }
        // The code is spent once sent, whatever comes back.
        let step = current_step().max(self.totp[i].last_step + 1);
        self.totp[i].last_step = step;
        let body = json!({ "method_id": method_id, "code": self.totp[i].code(step) });
        if self
            .expect(Step::AppCode, Method::POST, "/api/v1/login/second-factor", Some(&body), |s, b| {
                s == 200 && b["status"] == "authenticated"
            })
            .await
            .is_some()
        {
            self.session_and_logout(&login, false).await;
        }
        Ok(())
    }

    async fn banners(&mut self) -> Result<(), ()> {
        self.expect(Step::Banners, Method::GET, "/api/v1/banners/active", None, |s, b| s == 200 && b["banners"].is_array()).await;
        Ok(())
    }

    async fn article_and_vote(&mut self) -> Result<(), ()> {
        let slug = self.shared.slugs[self.rng.gen_range(0..self.shared.slugs.len())].clone();
        let path = format!("/api/v1/help/articles/{slug}");
        if self.expect(Step::Article, Method::GET, &path, None, |s, b| s == 200 && b["slug"] == slug.as_str()).await.is_none() {
            return Ok(());
        }
        let helpful = self.rng.gen_bool(0.7);
        let body = if helpful { json!({ "helpful": true }) } else { json!({ "helpful": false, "reason": "soak: not what I looked for" }) };
        self.expect(Step::Vote, Method::POST, &format!("{path}/vote"), Some(&body), |s, b| {
            s == 200 && b["total"].as_u64().is_some_and(|t| t >= 1)
        })
        .await;
        Ok(())
    }

    async fn forgot(&mut self) -> Result<(), ()> {
        let n = self.shared.next_reset.fetch_add(1, Ordering::Relaxed) + 1;
        if n > self.shared.options.reset_accounts {
            lock(&self.shared.stats).reset_pool_empty = true;
            return Err(());
        }
        let login = format!("reset{n}");
        let body = json!({ "login": login });
        let answer = self
            .expect(Step::Forgot, Method::POST, "/api/v1/password/forgot", Some(&body), |s, b| s == 202 && b["status"] == "accepted")
            .await;
        let mut resets = lock(&self.shared.resets);
        if answer.is_none() {
            // Cut by the kill (or counted as unexpected): taken or not, an email may come.
            resets.unanswered.insert(login);
            return Ok(());
        }
        resets.requested.push(login.clone());
        if self.rng.gen_bool(0.6) {
            resets.to_complete.push_back(login);
        }
        Ok(())
    }

    async fn complete_reset(&mut self) -> Result<(), ()> {
        let found = {
            let mail = lock(&self.shared.mail);
            let mut resets = lock(&self.shared.resets);
            let position = resets
                .to_complete
                .iter()
                .take(200)
                .position(|login| mail.resets.get(&format!("{login}@example.com")).is_some_and(|t| t.iter().any(|t| !t.is_empty())));
            position.and_then(|p| resets.to_complete.remove(p)).and_then(|login| {
                let token = mail.resets.get(&format!("{login}@example.com"))?.iter().find(|t| !t.is_empty())?.clone();
                Some((login, token))
            })
        };
        let Some((login, token)) = found else { return Err(()) };
        // Another browser (the phone the email was read on): its device cookie for this
        // account stays out of this user's jar, which keeps its few.
        let Ok(other) = browser() else { return Err(()) };
        let own = std::mem::replace(&mut self.client, other);
        self.reset_with(&login, &token).await;
        self.client = own;
        Ok(())
    }

    async fn reset_with(&mut self, login: &str, token: &str) {
        let new_password = format!("violet canyon drumbeat {}", self.rng.gen_range(1000..10_000_000));
        let body = json!({ "token": token, "new_password": new_password });
        if self
            .expect(Step::Reset, Method::POST, "/api/v1/password/reset", Some(&body), |s, b| s == 200 && b["status"] == "password_changed")
            .await
            .is_none()
        {
            return;
        }
        lock(&self.shared.resets).completed += 1;
        if self.login(Step::LoginAfterReset, login, &new_password, "authenticated").await.is_some() {
            self.logout(Step::Logout).await;
        }
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    f64::from(sorted[rank - 1]) / 1000.0
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "down".to_owned(), |k| format!("{:.0}", k as f64 / 1024.0))
}

pub fn soak(args: &[String]) -> anyhow::Result<()> {
    let options = Options::parse(args)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let passed = runtime.block_on(drive(options))?;
    if !passed {
        std::process::exit(1);
    }
    Ok(())
}

async fn drive(options: Options) -> anyhow::Result<bool> {
    let replicas = options.replicas.len();
    // The articles to read and vote on.
    let list: Value = reqwest::Client::new()
        .get(format!("{}/api/v1/help/articles", options.replicas[0]))
        .send()
        .await
        .context("listing the help articles")?
        .json()
        .await?;
    let slugs: Vec<String> =
        list["articles"].as_array().into_iter().flatten().filter_map(|a| a["slug"].as_str().map(str::to_owned)).collect();
    if slugs.is_empty() {
        bail!("no help articles: import some first (doorman articles import content/help)");
    }
    let users = options.users;
    let seconds = options.seconds;
    let shared = Arc::new(Shared {
        setup_started: Instant::now(),
        load: std::sync::OnceLock::new(),
        stats: Mutex::new(Stats::default()),
        monitor: Mutex::new(Monitor { pids: vec![None; replicas], up: vec![false; replicas], events: Vec::new() }),
        mail: Mutex::new(MailIndex::default()),
        resets: Mutex::new(Resets::default()),
        next_reset: AtomicUsize::new(0),
        slugs,
        options,
    });

    // Setup: every user enrols its authenticator apps (timed apart from the load).
    let mut prepared = Vec::new();
    let mut enrolling = tokio::task::JoinSet::new();
    for index in 0..users {
        let mut user = User::new(shared.clone(), index)?;
        enrolling.spawn(async move {
            // Staggered, as people arrive: not every user's password check at the same instant.
            tokio::time::sleep(Duration::from_millis(150 * index as u64)).await;
            let enrolled = user.enrol(index * TOTP_ACCOUNTS).await;
            (user, enrolled)
        });
    }
    while let Some(done) = enrolling.join_next().await {
        let (user, enrolled) = done?;
        if let Err(e) = enrolled {
            bail!("setup failed: {e:#}; {}", lock(&shared.stats).examples.join("; "));
        }
        prepared.push(user);
    }
    let setup_seconds = shared.elapsed();
    eprintln!("soak: {users} users enrolled {} authenticator apps in {setup_seconds:.1} s", users * TOTP_ACCOUNTS);

    // The load: a fresh clock from here (the setup's requests stay in the table).
    let now = Instant::now();
    let _ = shared.load.set((now, now + Duration::from_secs(seconds)));
    if let Some(file) = &shared.options.ready_file {
        std::fs::write(file, "load started\n")?;
    }
    let samples = Arc::new(Mutex::new(Vec::new()));
    let watchers = [
        tokio::spawn(watch_replicas(shared.clone())),
        tokio::spawn(watch_mail(shared.clone())),
        tokio::spawn(sample(shared.clone(), samples.clone())),
    ];
    let mut load = tokio::task::JoinSet::new();
    for user in prepared {
        load.spawn(user.run());
    }
    while let Some(done) = load.join_next().await {
        done?;
    }
    let load_seconds = shared.elapsed();
    let end_rss: Vec<Option<u64>> = shared.options.pid_files.iter().map(|f| live_pid(f).and_then(rss_kib)).collect();
    let end_pids: Vec<Option<u32>> = shared.options.pid_files.iter().map(|f| live_pid(f)).collect();
    eprintln!("soak: load ended after {load_seconds:.1} s; waiting for the reset emails");

    // Every requested reset email, within the drain time; then a few seconds more for duplicates.
    let drain_started = Instant::now();
    let missing = |shared: &Shared| {
        let mail = lock(&shared.mail);
        lock(&shared.resets).requested.iter().filter(|login| !mail.resets.contains_key(&format!("{login}@example.com"))).count()
    };
    while missing(&shared) > 0 && drain_started.elapsed() < Duration::from_secs(shared.options.drain_seconds) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let drained_after = drain_started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(5)).await;
    scan_mail(&shared);
    for watcher in watchers {
        watcher.abort();
    }

    let during: Vec<Sample> = std::mem::take(&mut *lock(&samples)).into_iter().filter(|s| s.at <= load_seconds + 0.5).collect();
    let report = report(&shared, &during, load_seconds, setup_seconds, drained_after, &end_rss, &end_pids);
    std::fs::create_dir_all(shared.options.out.parent().unwrap_or(std::path::Path::new(".")))?;
    let mut existing = std::fs::read_to_string(&shared.options.out).unwrap_or_default();
    existing.push_str(&report.text);
    std::fs::write(&shared.options.out, existing)?;
    print!("{}", report.text);
    Ok(report.passed)
}

struct Report {
    text: String,
    passed: bool,
}

fn report(
    shared: &Shared,
    samples: &[Sample],
    load_seconds: f64,
    setup_seconds: f64,
    drained_after: f64,
    end_rss: &[Option<u64>],
    end_pids: &[Option<u32>],
) -> Report {
    let options = &shared.options;
    let stats = lock(&shared.stats);
    let monitor = lock(&shared.monitor);
    let mail = lock(&shared.mail);
    let resets = lock(&shared.resets);
    let mut out = String::new();
    let mut failures: Vec<String> = Vec::new();

    let _ = writeln!(
        out,
        "{} virtual users for {load_seconds:.0} s on {} replicas (after a {setup_seconds:.1} s setup that enrolled {} authenticator apps); think time 0-{} ms between flows; every flow from a new client address.\n",
        options.users,
        options.replicas.len(),
        options.users * TOTP_ACCOUNTS,
        options.think_ms * 2
    );
    let downs: Vec<String> = monitor
        .events
        .iter()
        .filter(|e| e.0 > 0.5 || !e.2)
        .map(|&(at, r, up, pid)| format!("replica {} {} at {at:.1} s (pid {})", r + 1, if up { "up" } else { "down" }, pid.unwrap_or(0)))
        .collect();
    let _ = writeln!(out, "Replica events seen by the driver: {}.\n", if downs.is_empty() { "none".to_owned() } else { downs.join("; ") });

    // Per step.
    let _ = writeln!(out, "| step | requests | p50 ms | p99 ms | max ms | unexpected | cut by the kill |");
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    let mut all = Vec::new();
    let (mut total_unexpected, mut total_cut) = (0, 0);
    for (step, s) in &stats.steps {
        let mut sorted = s.latencies_us.clone();
        sorted.sort_unstable();
        all.extend_from_slice(&sorted);
        let unexpected: u64 = s.unexpected.values().sum();
        total_unexpected += unexpected;
        total_cut += s.cut;
        let detail = if s.unexpected.is_empty() {
            "0".to_owned()
        } else {
            let by: Vec<String> = s
                .unexpected
                .iter()
                .map(|(status, n)| format!("{n}× {}", if *status == 0 { "no answer".to_owned() } else { status.to_string() }))
                .collect();
            format!("**{unexpected}** ({})", by.join(", "))
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} | {:.1} | {:.1} | {detail} | {} |",
            step.label(),
            sorted.len(),
            percentile(&sorted, 0.5),
            percentile(&sorted, 0.99),
            sorted.last().map_or(0.0, |m| f64::from(*m) / 1000.0),
            s.cut
        );
    }
    all.sort_unstable();
    let _ = writeln!(
        out,
        "| **all** | {} | {:.1} | {:.1} | {:.1} | {total_unexpected} | {total_cut} |\n",
        all.len(),
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        all.last().map_or(0.0, |m| f64::from(*m) / 1000.0)
    );
    let _ = writeln!(
        out,
        "Failed over (a replica refused the connection, the next one answered): {} requests. Flows run: {}.\n",
        stats.failed_over,
        stats.flows.iter().map(|(name, n)| format!("{name} {n}")).collect::<Vec<_>>().join(", ")
    );
    if total_unexpected > 0 {
        failures.push(format!("{total_unexpected} unexpected answers"));
        let _ = writeln!(out, "First unexpected answers:\n");
        for example in &stats.examples {
            let _ = writeln!(out, "- {}", example.replace('\n', " "));
        }
        let _ = writeln!(out);
    }
    if stats.reset_pool_empty {
        failures.push("the reset accounts ran out (raise --reset-accounts)".to_owned());
    }

    // Timeline.
    let _ = writeln!(
        out,
        "Every {} s: requests answered per second since the sample before, and each replica's RSS (MiB):\n",
        options.sample_seconds
    );
    let header: Vec<String> = (1..=options.replicas.len()).map(|r| format!("replica {r}")).collect();
    let _ = writeln!(out, "| t (s) | req/s | {} |", header.join(" | "));
    let _ = writeln!(out, "|---|---|{}", "---|".repeat(options.replicas.len()));
    for pair in samples.windows(2) {
        let (before, now) = (&pair[0], &pair[1]);
        let rate = (now.answered - before.answered) as f64 / (now.at - before.at).max(0.001);
        let rss: Vec<String> = now.rss_kib.iter().map(|k| mib(*k)).collect();
        let _ = writeln!(out, "| {:.0} | {rate:.0} | {} |", now.at, rss.join(" | "));
    }
    let _ = writeln!(out);

    // Memory: after the warm-up, before the kill (the middle), at the end.
    let warm_up = options.warm_up as f64;
    let first_down = monitor.events.iter().filter(|e| !e.2).map(|e| e.0).reduce(f64::min);
    let middle_at = first_down.unwrap_or(load_seconds / 2.0);
    let at_or_after = |t: f64| samples.iter().find(|s| s.at >= t - 0.5);
    let last_before = |t: f64| samples.iter().rev().find(|s| s.at < t);
    let warm = at_or_after(warm_up);
    let middle = last_before(middle_at);
    let _ = writeln!(
        out,
        "Memory (RSS, MiB). Flat: RSS at the end at most 20 % above RSS after the warm-up ({warm_up:.0} s), for every replica that ran the whole time. The middle is the last sample before the first kill.\n"
    );
    let _ = writeln!(out, "| replica | after warm-up | middle | end | highest after warm-up | flat |");
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for r in 0..options.replicas.len() {
        let warm_pid = warm.and_then(|s| s.pids[r]);
        let whole = warm_pid.is_some() && warm_pid == end_pids[r];
        let w = warm.and_then(|s| s.rss_kib[r]);
        let m = middle.and_then(|s| s.rss_kib[r]);
        let highest = samples.iter().filter(|s| s.at >= warm_up - 0.5 && s.pids[r] == end_pids[r]).filter_map(|s| s.rss_kib[r]).max();
        let flat = match (whole, w, end_rss[r]) {
            (true, Some(w), Some(e)) => {
                let ok = e as f64 <= w as f64 * 1.2;
                if !ok {
                    failures.push(format!("replica {}: RSS grew from {} to {} MiB", r + 1, mib(Some(w)), mib(Some(e))));
                }
                format!("{} ({:+.0} %)", if ok { "yes" } else { "**no**" }, (e as f64 / w as f64 - 1.0) * 100.0)
            }
            (false, _, Some(_)) => {
                let restarted_at = monitor.events.iter().rev().find(|ev| ev.1 == r && ev.2).map_or(0.0, |ev| ev.0);
                format!("restarted at {restarted_at:.0} s: end and highest are the new process's")
            }
            _ => {
                failures.push(format!("replica {} was not running at the end", r + 1));
                "**not running at the end**".to_owned()
            }
        };
        let _ = writeln!(out, "| {} | {} | {} | {} | {} | {flat} |", r + 1, mib(w), mib(m), mib(end_rss[r]), mib(highest));
    }
    let _ = writeln!(out);

    // Reset emails: one per requested account, none twice.
    let requested: HashSet<String> = resets.requested.iter().map(|l| format!("{l}@example.com")).collect();
    let delivered = requested.iter().filter(|to| mail.resets.contains_key(*to)).count();
    let duplicated: Vec<&String> = mail.resets.iter().filter(|(_, t)| t.len() > 1).map(|(to, _)| to).collect();
    let unanswered: HashSet<String> = resets.unanswered.iter().map(|l| format!("{l}@example.com")).collect();
    let strays: Vec<&String> = mail.resets.keys().filter(|to| !requested.contains(*to) && !unanswered.contains(*to)).collect();
    let missing = requested.len() - delivered;
    let _ = writeln!(
        out,
        "Reset emails: {} accounts asked for one (each once, answered 202), {delivered} delivered to the dev outbox ({} .eml files in all), {missing} missing after {drained_after:.0} s of waiting, {} duplicated, {} not asked for; {} requests got no answer (cut by the kill: at most one email each, {} came); {} resets completed from the emailed link.\n",
        requested.len(),
        mail.files,
        duplicated.len(),
        strays.len(),
        unanswered.len(),
        unanswered.iter().filter(|to| mail.resets.contains_key(*to)).count(),
        resets.completed
    );
    if missing > 0 {
        let examples: Vec<&String> = requested.iter().filter(|to| !mail.resets.contains_key(*to)).take(5).collect();
        failures.push(format!("{missing} reset emails missing (e.g. {examples:?})"));
    }
    if !duplicated.is_empty() {
        failures.push(format!("{} reset emails duplicated (e.g. {:?})", duplicated.len(), duplicated.iter().take(5).collect::<Vec<_>>()));
    }
    if !strays.is_empty() {
        failures.push(format!("{} reset emails nobody asked for", strays.len()));
    }
    if monitor.events.iter().all(|e| e.2) {
        let _ = writeln!(out, "No replica went down during the run.\n");
    }
    let passed = failures.is_empty();
    let _ = writeln!(out, "**Result: {}**\n", if passed { "passed".to_owned() } else { format!("FAILED: {}", failures.join("; ")) });
    Report { text: out, passed }
}
