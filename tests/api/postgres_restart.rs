//! A real PostgreSQL crash and restart under three replicas and load (issue 13). The test
//! makes its own throwaway PostgreSQL cluster (`initdb` into a temporary folder, on a free
//! port), so that it can stop it with `pg_ctl stop -m immediate` (a crash: no checkpoint, every
//! connection cut) and start it again; the system's server on 5432 is never touched.
//!
//! While it is down, every replica answers within the pool's 5-second acquire timeout (plus a
//! margin) with 503 `unavailable` in the usual error shape, most of them at once (the
//! breaker, web::breaker), and `/readyz` answers 503. Once it
//! is back, every replica serves again within seconds, none restarted, and every reset request
//! answered 202, before or after the outage, has produced its email, once.

use crate::helpers::{PASSWORD, config_in, eventually, temp_dir};
use crate::own_postgres::OwnPostgres;
use crate::replicas::{Cluster, reset_emails};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// When an answer came, relative to the outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Phase {
    Before,
    Down,
    After,
}

/// One answer the load got.
#[derive(Debug, Clone)]
struct Answer {
    phase: Phase,
    what: &'static str,
    replica: usize,
    status: u16,
    body: Value,
    retry_after: Option<String>,
    took: Duration,
}

/// What the load tasks share.
struct Load {
    replicas: Vec<String>,
    /// Set while PostgreSQL is down, then `After` once it is back.
    phase: std::sync::Mutex<Phase>,
    stop: AtomicBool,
    /// Who asks for a reset next, per phase: each phase has its own people.
    next_person: [AtomicUsize; 3],
    next_address: AtomicUsize,
    answers: Mutex<Vec<Answer>>,
    /// Each person asks for a reset once; their answer.
    resets: Mutex<HashMap<String, u16>>,
}

/// People who ask for a reset in each phase.
const PEOPLE_PER_PHASE: usize = 20;

fn person(phase: Phase, n: usize) -> String {
    format!("{phase:?}{n:02}").to_lowercase()
}

impl Load {
    fn phase(&self) -> Phase {
        *self.phase.lock().unwrap()
    }

    /// A new address for every request: no per-address budget is what the test measures.
    fn address(&self) -> String {
        let n = self.next_address.fetch_add(1, Ordering::SeqCst);
        format!("10.{}.{}.{}", 100 + n / 60000, (n / 250) % 240, n % 250 + 1)
    }

    async fn send(&self, what: &'static str, replica: usize, request: reqwest::RequestBuilder) -> u16 {
        let phase_at_start = self.phase();
        let started = Instant::now();
        let response = request.header("X-Real-IP", self.address()).send().await;
        let took = started.elapsed();
        let (status, retry_after, body) = match response {
            Ok(r) => {
                let status = r.status().as_u16();
                let retry_after = r.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
                (status, retry_after, r.json().await.unwrap_or(Value::Null))
            }
            // No answer at all (a hang cut by the client's timeout, or a reset connection).
            Err(e) => (0, None, json!({ "transport_error": e.to_string() })),
        };
        // An answer counts as "during the outage" if the outage covered any part of it (the
        // phases only go forward, so a change means it did).
        let phase_at_end = self.phase();
        let phase = if phase_at_start == phase_at_end { phase_at_end } else { Phase::Down };
        self.answers.lock().await.push(Answer { phase, what, replica, status, body, retry_after, took });
        status
    }

    /// Logins, a reset request and two reads, round the replicas, until told to stop.
    async fn run(self: Arc<Self>, task: usize) {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        let mut turn = task;
        while !self.stop.load(Ordering::SeqCst) {
            let replica = turn % self.replicas.len();
            let base = &self.replicas[replica];
            turn += 1;
            let regular = format!("load{:02}", turn % 8);
            let login = client.post(format!("{base}/api/v1/login")).json(&json!({ "login": regular, "password": PASSWORD }));
            self.send("login", replica, login).await;
            let phase = self.phase();
            let n = self.next_person[phase as usize].fetch_add(1, Ordering::SeqCst);
            if n < PEOPLE_PER_PHASE {
                let name = person(phase, n);
                let forgot = client.post(format!("{base}/api/v1/password/forgot")).json(&json!({ "login": name }));
                let status = self.send("forgot", replica, forgot).await;
                self.resets.lock().await.insert(name, status);
            }
            self.send("banners", replica, client.get(format!("{base}/api/v1/banners"))).await;
            self.send("articles", replica, client.get(format!("{base}/api/v1/help/articles"))).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Asserts the 503 of an outage: `unavailable` in the usual error shape, with `Retry-After`.
fn assert_unavailable(answer: &Answer) {
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(answer.body["error"], "unavailable", "{answer:?}");
    assert!(answer.body["message"].as_str().is_some_and(|m| m.contains("database")), "{answer:?}");
    assert_eq!(answer.retry_after.as_deref(), Some("5"), "{answer:?}");
}

/// The pool's acquire timeout (5 s), plus a margin for a loaded two-core machine: no answer
/// during the outage takes longer.
const OUTAGE_ANSWER_WITHIN: Duration = Duration::from_secs(8);

#[tokio::test]
async fn a_postgres_crash_and_restart_under_load_loses_nothing_and_needs_no_replica_restart() {
    let pg = OwnPostgres::start();
    let mut cluster = Cluster::start_with(config_in(&temp_dir(), pg.create_database().await), 3).await;
    for n in 0..8 {
        cluster.app.create_account(&format!("load{n:02}"), &format!("load{n:02}@example.com")).await;
    }
    for phase in [Phase::Before, Phase::Down, Phase::After] {
        for n in 0..PEOPLE_PER_PHASE {
            let name = person(phase, n);
            cluster.app.create_account(&name, &format!("{name}@example.com")).await;
        }
    }
    let pids: Vec<u32> = cluster.replicas.iter().map(|r| r.pid()).collect();
    let load = Arc::new(Load {
        replicas: cluster.replicas.iter().map(|r| r.url("")).collect(),
        phase: std::sync::Mutex::new(Phase::Before),
        stop: AtomicBool::new(false),
        next_person: Default::default(),
        next_address: AtomicUsize::new(0),
        answers: Mutex::new(Vec::new()),
        resets: Mutex::new(HashMap::new()),
    });
    let tasks: Vec<_> = (0..4).map(|task| tokio::spawn(load.clone().run(task))).collect();

    tokio::time::sleep(Duration::from_secs(4)).await;
    *load.phase.lock().unwrap() = Phase::Down;
    pg.crash();
    let down_at = Instant::now();

    // While it is down, each replica says so: its readiness check, and a login, all at once.
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let timed = |request: reqwest::RequestBuilder| async move {
        let started = Instant::now();
        let response = request.header("X-Real-IP", "198.51.100.99").send().await.expect("an answer, not a hang");
        let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
        (response.status().as_u16(), started.elapsed(), retry_after, response.json::<Value>().await.unwrap_or_default())
    };
    let checks = cluster.replicas.iter().map(|replica| {
        let ready = timed(client.get(replica.url("/readyz")));
        let login = timed(client.post(replica.url("/api/v1/login")).json(&json!({ "login": "load00", "password": PASSWORD })));
        futures::future::join(ready, login)
    });
    for (i, (ready, login)) in futures::future::join_all(checks).await.into_iter().enumerate() {
        let (status, took, _, body) = ready;
        assert_eq!((status, body["error"].as_str()), (503, Some("not_ready")), "replica {i} is not ready while the database is down");
        assert!(took < OUTAGE_ANSWER_WITHIN, "replica {i}: /readyz took {took:?}");
        let (status, took, retry_after, body) = login;
        assert_unavailable(&Answer { phase: Phase::Down, what: "login", replica: i, status, body, retry_after, took });
        assert!(took < OUTAGE_ANSWER_WITHIN, "replica {i}: a login took {took:?}");
    }
    // The load keeps going for a while against the dead database.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let downtime = down_at.elapsed();
    pg.start_server();
    let up_at = Instant::now();

    // Until a replica is ready again it may still answer 503 (its breaker waits for a probe
    // or a readiness check), so the load counts as "during the outage" until every one is.
    for (i, replica) in cluster.replicas.iter().enumerate() {
        eventually(&format!("replica {i} to be ready again"), 15, async || {
            let ready = client.get(replica.url("/readyz")).send().await.ok()?;
            (ready.status() == 200).then_some(())
        })
        .await;
    }
    *load.phase.lock().unwrap() = Phase::After;
    let recovered_in = up_at.elapsed();
    for (i, replica) in cluster.replicas.iter().enumerate() {
        let login = client
            .post(replica.url("/api/v1/login"))
            .header("X-Real-IP", format!("198.51.100.{}", i + 1))
            .json(&json!({ "login": "load00", "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), 200, "replica {i} serves logins again");
    }
    // More load after the restart, until the people of that phase have asked for a reset.
    eventually("the resets after the restart", 60, async || {
        (load.next_person[Phase::After as usize].load(Ordering::SeqCst) >= PEOPLE_PER_PHASE).then_some(())
    })
    .await;
    load.stop.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.unwrap();
    }
    for (i, replica) in cluster.replicas.iter_mut().enumerate() {
        assert!(replica.is_running(), "replica {i} is still the process started before the outage");
        assert_eq!(replica.pid(), pids[i]);
    }

    // Every answer is one the fault explains: before and after it, success; during it,
    // success or 503 `unavailable`, always within the acquire timeout and its margin.
    let answers = load.answers.lock().await.clone();
    let mut counts: std::collections::BTreeMap<(Phase, &str, u16), usize> = Default::default();
    for answer in &answers {
        *counts.entry((answer.phase, answer.what, answer.status)).or_default() += 1;
        let expected_ok = if answer.what == "forgot" { 202 } else { 200 };
        match answer.phase {
            Phase::Before | Phase::After => assert_eq!(answer.status, expected_ok, "{answer:?}"),
            Phase::Down => {
                if answer.status != expected_ok {
                    assert_unavailable(answer);
                }
                assert!(answer.took < OUTAGE_ANSWER_WITHIN, "an answer during the outage took {:?}: {answer:?}", answer.took);
            }
        }
    }
    let slowest_down = answers.iter().filter(|a| a.phase == Phase::Down).map(|a| a.took).max().unwrap_or_default();
    let unavailable = answers.iter().filter(|a| a.status == 503).count();
    let per_replica: Vec<usize> =
        (0..cluster.replicas.len()).map(|r| answers.iter().filter(|a| a.replica == r && a.status == 503).count()).collect();
    eprintln!(
        "postgres restart: down {:.1} s, every replica ready {:.1} s after the restart; {} answers ({} 503 `unavailable`, by replica {per_replica:?}), the slowest during the outage {:.2} s; by phase, route and status: {counts:?}",
        downtime.as_secs_f64(),
        recovered_in.as_secs_f64(),
        answers.len(),
        unavailable,
        slowest_down.as_secs_f64()
    );
    assert!(unavailable > 0, "the load met the outage");
    // Banners and help articles come from memory: reading them goes on working.
    let content_reads: Vec<&Answer> =
        answers.iter().filter(|a| a.phase == Phase::Down && (a.what == "banners" || a.what == "articles")).collect();
    assert!(!content_reads.is_empty() && content_reads.iter().all(|a| a.status == 200), "{content_reads:?}");
    // Fail fast: once a replica has found the database gone, its breaker answers the others at
    // once (web::breaker); only its first request and one probe a while wait out the pool.
    let mut refused_down: Vec<Duration> = answers.iter().filter(|a| a.phase == Phase::Down && a.status == 503).map(|a| a.took).collect();
    refused_down.sort();
    let median = refused_down.get(refused_down.len() / 2).copied().unwrap_or_default();
    assert!(
        median < Duration::from_millis(500),
        "most refusals during the outage come at once: median {median:?} of {}",
        refused_down.len()
    );

    // Every reset answered 202 produced its email, once; one that was not answered 202 at
    // most once (the request may have been stored before its connection broke).
    let resets = load.resets.lock().await.clone();
    let accepted: Vec<&String> = resets.iter().filter(|(_, status)| **status == 202).map(|(name, _)| name).collect();
    let emails = eventually("every accepted reset's email", 90, async || {
        let emails = reset_emails(&cluster.config.mail_dir);
        accepted.iter().all(|name| emails.contains_key(&format!("{name}@example.com"))).then_some(emails)
    })
    .await;
    // A little longer: a copy made by a job run twice would show up now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let emails_after = reset_emails(&cluster.config.mail_dir);
    assert_eq!(emails_after, emails, "nothing more arrived");
    for (name, status) in &resets {
        let count = emails.get(&format!("{name}@example.com")).copied().unwrap_or(0);
        match status {
            202 => assert_eq!(count, 1, "{name}'s reset was accepted: one email"),
            _ => assert!(count <= 1, "{name}'s reset answered {status}: {count} emails"),
        }
    }
    for phase in [Phase::Before, Phase::After] {
        let accepted = (0..PEOPLE_PER_PHASE).filter(|n| resets.get(&person(phase, *n)) == Some(&202)).count();
        assert!(accepted >= PEOPLE_PER_PHASE.min(5), "{phase:?} the outage, resets were asked for and accepted: {resets:?}");
    }
    let server_log = std::fs::read_to_string(pg.dir.join("server.log")).unwrap();
    assert!(server_log.contains("automatic recovery in progress"), "PostgreSQL crashed and recovered: {server_log}");
    let logs = std::fs::read_dir(&cluster.dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("replica-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect::<String>();
    assert!(!logs.contains("panicked"), "no replica panicked");
}
