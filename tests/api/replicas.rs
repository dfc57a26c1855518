//! Three `doorman serve` replicas on one PostgreSQL, as operators scale out (issue 13): a
//! session made on one is good on the others and a logout on one ends it everywhere; the
//! limits that protect secrets hold across them; a banner change reaches every replica within
//! 3 seconds with no restart; and a replica killed with `kill -9` in the middle of a burst of
//! reset requests loses no email and shows none twice. A key rotation under load signs nobody
//! out (issue 13).
//!
//! PostgreSQL only: replicas sharing one SQLite file over a network is not a deployment.

use crate::helpers::{Backend, PASSWORD, TestApp, config_in, eventually, eventually_within, temp_dir, test_config};
use crate::own_postgres::OwnPostgres;
use doorman::Config;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One `doorman serve` process.
pub(crate) struct Replica {
    child: Child,
    pub(crate) port: u16,
}

impl Replica {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still the one started (it did not exit or get restarted).
    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Replicas of one deployment: one database, one secret key, one mail folder (the dev outbox,
/// where each message is one file named after its id).
pub(crate) struct Cluster {
    pub(crate) config: Config,
    pub(crate) dir: PathBuf,
    pub(crate) replicas: Vec<Replica>,
    /// An in-process app on the same database, for setting up accounts (its worker is off).
    pub(crate) app: TestApp,
    /// Clusters on the shared PostgreSQL run one at a time: three replicas' pools (16
    /// connections each) next to another cluster's and the in-process tests' can exhaust its
    /// 100 connections, and a refused connection is a 503 that says nothing about what a test
    /// checks. Clusters on a test's own PostgreSQL server ([`Cluster::start_with`]) need none.
    _turn: Option<tokio::sync::SemaphorePermit<'static>>,
}

static ONE_CLUSTER_AT_A_TIME: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

impl Cluster {
    async fn start(n: usize) -> Self {
        let turn = ONE_CLUSTER_AT_A_TIME.acquire().await.unwrap();
        let mut cluster = Self::start_with(test_config(Backend::Postgres).await, n).await;
        cluster._turn = Some(turn);
        cluster
    }

    /// `n` replicas on the database of `config`.
    pub(crate) async fn start_with(config: Config, n: usize) -> Self {
        let dir = config.secret_key_file.parent().unwrap().to_path_buf();
        // The in-process app migrates the database and writes the secret key first, so the
        // replicas never race for either.
        let app = TestApp::spawn_with(config.clone()).await;
        let mut cluster = Self { config, dir, replicas: Vec::new(), app, _turn: None };
        for i in 0..n {
            cluster.add_replica(i).await;
        }
        cluster
    }

    async fn add_replica(&mut self, run: usize) {
        let log = std::fs::File::create(self.dir.join(format!("replica-{run}.log"))).unwrap();
        // Port 0, and the port read from the line `doorman serve` prints once it listens: a
        // port picked free beforehand can be taken by another test's server before the replica
        // binds it, and then that server answers the replica's requests (a kill test once
        // "lost" the emails it had in fact sent elsewhere).
        let mut child = Command::new(env!("CARGO_BIN_EXE_doorman"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .current_dir(&self.dir)
            .env("DOORMAN_DATABASE_URL", &self.config.database_url)
            .env("DOORMAN_SECRET_KEY_FILE", &self.config.secret_key_file)
            .env("DOORMAN_MAIL_DIR", &self.config.mail_dir)
            .env("DOORMAN_BASE_URL", crate::helpers::BASE_URL)
            .env("DOORMAN_CLIENT_IP_HEADER", "X-Real-IP")
            .env("DOORMAN_MAIL_WORKER", "true")
            // Keyring reloads every second, so a rotation's test waits seconds, not minutes.
            .env("DOORMAN_KEYRING_RELOAD_SECONDS", "1")
            .env("DOORMAN_LOG", "info,sqlx=warn")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let port = tokio::time::timeout(Duration::from_secs(60), tokio::task::spawn_blocking(move || listening_port(stdout)))
            .await
            .expect("a replica to listen within 60 s")
            .unwrap()
            .unwrap_or_else(|| panic!("replica {run} exited before listening (see replica-{run}.log in {})", self.dir.display()));
        let client = reqwest::Client::new();
        eventually("a replica to be ready", 60, async || {
            let response = client.get(format!("http://127.0.0.1:{port}/readyz")).send().await.ok()?;
            (response.status() == 200).then_some(())
        })
        .await;
        self.replicas.push(Replica { child, port });
    }

    /// `kill -9`: no shutdown, no lease given back.
    fn kill(&mut self, index: usize) {
        let mut replica = self.replicas.remove(index);
        replica.child.kill().unwrap();
        replica.child.wait().unwrap();
    }
}

/// The port of `doorman serve`'s "doorman is listening on http://ADDR ..." line, or `None`
/// when the process ends first. The rest of its output is read and dropped on a thread of its
/// own, so the pipe never fills.
pub(crate) fn listening_port(stdout: std::process::ChildStdout) -> Option<u16> {
    use std::io::BufRead as _;
    let mut lines = std::io::BufReader::new(stdout).lines();
    let port = lines.by_ref().map_while(Result::ok).find_map(|line| {
        let address = line.strip_prefix("doorman is listening on http://")?.split_whitespace().next()?;
        address.parse::<std::net::SocketAddr>().ok().map(|a| a.port())
    });
    std::thread::spawn(move || lines.for_each(drop));
    port
}

pub(crate) async fn post(client: &reqwest::Client, url: &str, ip: &str, body: Value) -> (u16, Value) {
    let response = client.post(url).header("X-Real-IP", ip).json(&body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The reset emails in the mail folder, by recipient: how many files each has.
pub(crate) fn reset_emails(mail_dir: &Path) -> HashMap<String, usize> {
    let mut found = HashMap::new();
    for entry in std::fs::read_dir(mail_dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".eml") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        if !text.contains("Subject: Reset your") {
            continue;
        }
        if let Some(to) = text.lines().find_map(|l| l.strip_prefix("To: ")) {
            *found.entry(to.trim_matches(|c| c == '<' || c == '>').to_owned()).or_insert(0) += 1;
        }
    }
    found
}

/// A session made on one replica is good on the others; a logout on any ends it on all.
#[tokio::test]
async fn s7_a_session_is_good_on_every_replica_and_a_logout_on_one_ends_it_everywhere() {
    let cluster = Cluster::start(3).await;
    cluster.app.create_account("maria", "maria@example.com").await;
    // Cookies are not bound to a port: one browser, three replicas behind a balancer.
    let browser = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let (status, body) =
        post(&browser, &cluster.replicas[0].url("/api/v1/login"), "192.0.2.30", json!({ "login": "maria", "password": PASSWORD })).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("authenticated")), "{body}");
    for replica in &cluster.replicas {
        let session = browser.get(replica.url("/api/v1/session")).send().await.unwrap();
        assert_eq!(session.status(), 200, "the session works on the replica at {}", replica.port);
    }
    let (status, _) = post(&browser, &cluster.replicas[2].url("/api/v1/logout"), "192.0.2.30", json!({})).await;
    assert_eq!(status, 200);
    for replica in &cluster.replicas {
        let session = browser.get(replica.url("/api/v1/session")).send().await.unwrap();
        assert_eq!(session.status(), 401, "logged out on the replica at {} too", replica.port);
    }
}

/// S3.1, S3.7: the limits that protect a password are stored, not per process. Guesses spread
/// over three replicas from many addresses use up one login's budget, after which the right
/// password is refused on every replica too.
#[tokio::test]
async fn s3_1_a_logins_budget_holds_across_replicas() {
    let cluster = Cluster::start(3).await;
    cluster.app.create_account("maria", "maria@example.com").await;
    let client = reqwest::Client::new();
    let mut refused_at = None;
    for attempt in 0..130 {
        let replica = &cluster.replicas[attempt % 3];
        // A new /24 every time: no address budget is the one that stops it.
        let ip = format!("10.{}.{}.7", attempt / 200, attempt % 200);
        let (status, body) =
            post(&client, &replica.url("/api/v1/login"), &ip, json!({ "login": "maria", "password": "wrong guess" })).await;
        match status {
            401 => {}
            429 => {
                refused_at = Some(attempt);
                break;
            }
            other => panic!("attempt {attempt}: {other} {body}"),
        }
    }
    // 100 failures a day per login (S3.1), counted on all replicas together.
    assert_eq!(refused_at, Some(100), "the 101st guess, whichever replica gets it, is refused");
    for (i, replica) in cluster.replicas.iter().enumerate() {
        let (status, body) =
            post(&client, &replica.url("/api/v1/login"), &format!("10.9.{i}.1"), json!({ "login": "maria", "password": PASSWORD })).await;
        assert_eq!((status, body["error"].as_str()), (429, Some("too_many_attempts")), "replica {i}: {body}");
    }
}

/// A banner change reaches every replica within 3 seconds, with no restart.
#[tokio::test]
async fn a_banner_change_reaches_every_replica_within_three_seconds() {
    let cluster = Cluster::start(3).await;
    let document = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/seed-banners.json")).unwrap();
    let file = cluster.dir.join("banners.json");
    std::fs::write(&file, document.trim()).unwrap();
    let imported = Command::new(env!("CARGO_BIN_EXE_doorman"))
        .args(["banners", "import", file.to_str().unwrap()])
        .env("DOORMAN_DATABASE_URL", &cluster.config.database_url)
        .env("DOORMAN_SECRET_KEY_FILE", &cluster.config.secret_key_file)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));
    let expected: Value = serde_json::from_str(document.trim()).unwrap();
    let client = reqwest::Client::new();
    for replica in &cluster.replicas {
        eventually_within("the replica to serve the new banners", Duration::from_secs(3), async || {
            let served: Value = client.get(replica.url("/api/v1/banners")).send().await.ok()?.json().await.ok()?;
            (served == expected).then_some(())
        })
        .await;
    }
}

/// How many moments the kill test below tries: `DOORMAN_TEST_KILL_MOMENTS`, 3 by default
/// (one round of three deployments side by side, about a minute and a half on CI's two
/// cores). docs/SECURITY.md records a run with 30.
fn kill_moments() -> usize {
    std::env::var("DOORMAN_TEST_KILL_MOMENTS").ok().and_then(|v| v.parse().ok()).filter(|n| *n > 0).unwrap_or(3)
}

/// The `i`th of `n` moments, in milliseconds after the burst's last answer: from 0 to 250 ms,
/// denser near 0, where the replica is still running the burst's jobs and leasing messages.
fn kill_moment(i: usize, n: usize) -> u64 {
    if n < 2 {
        return 0;
    }
    let fraction = i as f64 / (n - 1) as f64;
    (250.0 * fraction * fraction).round() as u64
}

/// What one deployment saw after one of its replicas was killed.
#[derive(Debug)]
struct KillRun {
    delay_ms: u64,
    /// People with no reset email within 150 s.
    lost: Vec<String>,
    /// People with more than one, counted a few seconds after the last arrived.
    duplicated: Vec<String>,
    /// From the kill to the last email.
    took: Duration,
}

/// Twenty people ask for a reset, spread over three replicas (one office behind one address:
/// the per-address budget, 20 an hour, is exactly used), and one replica is killed with
/// `kill -9` `delay_ms` after the last answer.
async fn kill_during_a_burst(pg: &OwnPostgres, delay_ms: u64) -> KillRun {
    let mut cluster = Cluster::start_with(config_in(&temp_dir(), pg.create_database().await), 3).await;
    let people: Vec<String> = (0..20).map(|i| format!("person{i:02}")).collect();
    for name in &people {
        cluster.app.create_account(name, &format!("{name}@example.com")).await;
    }
    let client = reqwest::Client::new();
    let burst = people.iter().enumerate().map(|(i, name)| {
        let url = cluster.replicas[i % 3].url("/api/v1/password/forgot");
        let client = client.clone();
        async move { post(&client, &url, "192.0.2.77", json!({ "login": name })).await.0 }
    });
    let answers = futures::future::join_all(burst).await;
    assert!(answers.iter().all(|s| *s == 202), "{answers:?}");
    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    cluster.kill(0);
    let killed_at = std::time::Instant::now();

    let mail_dir = cluster.config.mail_dir.clone();
    for _ in 0..150 {
        if reset_emails(&mail_dir).len() == people.len() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let took = killed_at.elapsed();
    // A little longer: a copy made by a second run of a job would show up now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let emails = reset_emails(&mail_dir);
    let address = |p: &String| format!("{p}@example.com");
    let lost: Vec<String> = people.iter().filter(|p| !emails.contains_key(&address(p))).cloned().collect();
    let duplicated: Vec<String> = people.iter().filter(|p| emails.get(&address(p)).is_some_and(|n| *n > 1)).cloned().collect();
    if !lost.is_empty() || !duplicated.is_empty() {
        eprintln!("kill after {delay_ms} ms: lost {lost:?}, twice {duplicated:?} (logs in {})", cluster.dir.display());
    }
    KillRun { delay_ms, lost, duplicated, took }
}

/// Twenty people ask for a reset, spread over three replicas, and one replica is killed with
/// `kill -9` at once, at a different moment in each deployment (`DOORMAN_TEST_KILL_MOMENTS`
/// of them, three side by side at a time, on a PostgreSQL server of the test's own: twelve
/// processes with a pool each would use up the shared server's connection slots, and the
/// 503s that follow are another fault than the one tested). Every email arrives (the killed replica's leased
/// jobs and messages are taken over when their leases run out) and none arrives twice: a job
/// run again after a crash neither counts against the limits a second time nor writes a
/// second email.
#[tokio::test]
async fn kill_9_of_a_replica_during_a_burst_of_resets_loses_no_email_and_sends_none_twice() {
    let n = kill_moments();
    let moments: Vec<u64> = (0..n).map(|i| kill_moment(i, n)).collect();
    let pg = OwnPostgres::start();
    let mut runs = Vec::new();
    for round in moments.chunks(3) {
        runs.extend(futures::future::join_all(round.iter().map(|delay_ms| kill_during_a_burst(&pg, *delay_ms))).await);
    }
    let slowest = runs.iter().map(|r| r.took).max().unwrap_or_default();
    eprintln!(
        "kill test: {} runs (moments {moments:?} ms), {} emails lost, {} shown twice, slowest full delivery {:.1} s after the kill",
        runs.len(),
        runs.iter().map(|r| r.lost.len()).sum::<usize>(),
        runs.iter().map(|r| r.duplicated.len()).sum::<usize>(),
        slowest.as_secs_f64()
    );
    let failed: Vec<&KillRun> = runs.iter().filter(|r| !r.lost.is_empty() || !r.duplicated.is_empty()).collect();
    let moments: Vec<u64> = failed.iter().map(|r| r.delay_ms).collect();
    assert!(failed.is_empty(), "of {} runs, those killed after {moments:?} ms lost or doubled an email: {failed:#?}", runs.len());
}

/// Issue 13: `doorman key rotate` while signed-in people keep using three replicas and others
/// sign in. No signed-in request gets a 401 or a 500, every login succeeds, sessions made after
/// the activation name the new key, and the workers' background pass re-seals the
/// authenticator secret sealed under the old key.
#[tokio::test]
async fn key_rotation_under_load_signs_nobody_out() {
    use doorman_core::factors::TotpSecret;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let cluster = Cluster::start(3).await;
    let people: Vec<String> = (0..6).map(|i| format!("person{i}")).collect();
    for name in &people {
        cluster.app.create_account(name, &format!("{name}@example.com")).await;
    }
    // Everyone signs in before the rotation, each on one replica; person0 adds an authenticator.
    let mut signed_in = Vec::new();
    for (i, name) in people.iter().enumerate() {
        let browser = reqwest::Client::builder().cookie_store(true).build().unwrap();
        let (status, body) = post(
            &browser,
            &cluster.replicas[i % 3].url("/api/v1/login"),
            &format!("192.0.2.{}", 40 + i),
            json!({ "login": name, "password": PASSWORD }),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        signed_in.push(browser);
    }
    let (status, body) = post(&signed_in[0], &cluster.replicas[0].url("/api/v1/account/two-step/totp"), "192.0.2.40", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let secret = TotpSecret::from_base32(body["secret"].as_str().unwrap()).unwrap();
    let code = secret.code_at_step(time::OffsetDateTime::now_utc().unix_timestamp() / 30);
    let (status, body) = post(
        &signed_in[0],
        &cluster.replicas[1].url("/api/v1/account/two-step/totp/confirm"),
        "192.0.2.40",
        json!({ "method_id": body["method_id"], "code": code }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let before = crate::keys::totp_secret_row(&cluster.config.database_url).await;
    assert!(!before.contains('.'), "sealed under the original key");

    // Load: every signed-in person asks for their session on the replicas in turn, and new
    // logins keep coming, while the rotation happens.
    let stop = Arc::new(AtomicBool::new(false));
    let urls: Vec<String> = cluster.replicas.iter().map(|r| r.url("")).collect();
    let clicks = signed_in.iter().enumerate().map(|(i, browser)| {
        let (browser, urls, stop) = (browser.clone(), urls.clone(), stop.clone());
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            let mut n = i;
            while !stop.load(Ordering::Relaxed) {
                let response = browser.get(format!("{}/api/v1/session", urls[n % 3])).send().await.unwrap();
                statuses.push(response.status().as_u16());
                n += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            statuses
        })
    });
    let clicks: Vec<_> = clicks.collect();
    let logins = {
        let (urls, stop, people) = (urls.clone(), stop.clone(), people.clone());
        tokio::spawn(async move {
            let mut results = Vec::new();
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                // person0 has 2-step on; the others sign in fully with the password.
                let name = &people[1 + n % 5];
                let response = reqwest::Client::new()
                    .post(format!("{}/api/v1/login", urls[n % 3]))
                    .header("X-Real-IP", format!("198.51.100.{}", n % 200))
                    .json(&json!({ "login": name, "password": PASSWORD }))
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                let cookie = response
                    .headers()
                    .get_all("set-cookie")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .find_map(|c| c.strip_prefix("doorman_session="))
                    .map(|c| c.split(';').next().unwrap_or_default().to_owned())
                    .unwrap_or_default();
                results.push((time::OffsetDateTime::now_utc().unix_timestamp(), status, cookie));
                n += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            results
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let config = cluster.config.clone();
    let (new_key, active_from) = tokio::task::spawn_blocking(move || crate::keys::rotate(&config)).await.unwrap();
    crate::keys::wait_until(active_from + 4).await;
    stop.store(true, Ordering::Relaxed);

    let mut requests = 0;
    for (i, task) in clicks.into_iter().enumerate() {
        let statuses = task.await.unwrap();
        requests += statuses.len();
        assert!(statuses.iter().all(|s| *s == 200), "person{i} was refused during the rotation: {statuses:?}");
    }
    assert!(requests > 100, "the load ran: {requests} requests");
    let logins = logins.await.unwrap();
    assert!(logins.iter().all(|(_, status, _)| *status == 200), "every login succeeded: {logins:?}");
    let after: Vec<&String> = logins.iter().filter(|(at, _, _)| *at > active_from + 1).map(|(_, _, cookie)| cookie).collect();
    assert!(!after.is_empty(), "logins after the activation: {logins:?}");
    assert!(after.iter().all(|c| c.starts_with(&format!("{new_key}."))), "sessions made after the activation name the new key: {after:?}");
    // The sessions made before still work everywhere.
    for (i, browser) in signed_in.iter().enumerate() {
        for url in &urls {
            assert_eq!(browser.get(format!("{url}/api/v1/session")).send().await.unwrap().status(), 200, "person{i} on {url}");
        }
    }
    // The workers' background pass (every ten reloads) moves the authenticator secret.
    let url = cluster.config.database_url.clone();
    eventually("the authenticator secret to be re-sealed under the new key", 60, async || {
        let row = crate::keys::totp_secret_row(&url).await;
        row.starts_with(&format!("{new_key}.")).then_some(())
    })
    .await;
}

/// `DOORMAN_DATABASE_POOL`: a replica keeps at most that many connections to PostgreSQL, so
/// that several replicas fit under the server's `max_connections`; a burst of 40 concurrent
/// reset requests (each one a write) is answered in full through 2 connections. Out of range,
/// the setting is refused with a message that names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_keeps_no_more_database_connections_than_its_pool() {
    use sqlx::Connection;
    let mut config = test_config(Backend::Postgres).await;
    config.database_pool = Some(2);
    let url = config.database_url.clone();
    let app = TestApp::spawn_with(config).await;
    let client = reqwest::Client::new();
    let burst = (0..40).map(|i| {
        client
            .post(app.url("/api/v1/password/forgot"))
            .header("X-Real-IP", format!("198.51.100.{i}"))
            .json(&json!({ "login": format!("person{i}@example.com") }))
            .send()
    });
    for answer in futures::future::join_all(burst).await {
        assert_eq!(answer.unwrap().status(), 202);
    }
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let open: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!((1..=2).contains(&open), "{open} connections open for a pool of 2");

    let check = |pool: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_doorman"))
            .args(["config", "check"])
            .env("DOORMAN_DATABASE_POOL", pool)
            .current_dir(temp_dir())
            .output()
            .unwrap();
        (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr))
    };
    let (ok, text) = check("40");
    assert!(ok && text.contains("database_pool = 40"), "{text}");
    let (ok, text) = check("1");
    assert!(!ok && text.contains("database_pool must be between 2 and 1000 connections"), "{text}");
}
