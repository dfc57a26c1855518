//! Measures checklist S2.3 and S2.5: does response time reveal whether an account exists?
//!
//! Starts doorman in-process (SQLite, OWASP argon2id parameters) and sends, interleaved,
//! N login attempts with a wrong password for a real account and for unknown ones, N
//! forgot-password requests for each, and N resets by code with a wrong code for real
//! accounts that hold a live reset email and for unknown ones (five tries per email, as an
//! attacker would). Prints quartiles, p99 and a Mann-Whitney U test for each pair.
//!
//!     cargo run --release --example enumeration_timing -- 300
//!
//! Results and the machine are recorded in docs/BENCHMARKS.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use doorman::Config;
use doorman::app::{Application, Options};
use doorman_bench::stats::{mann_whitney_z, quantile, sorted};
use doorman_core::audit::RequestContext;
use doorman_core::auth::NewAccountRequest;
use doorman_core::{Country, EmailAddress, Password, UserType, Username};
use std::time::Instant;

fn quantiles(samples: Vec<f64>) -> [f64; 4] {
    let s = sorted(samples);
    [quantile(&s, 0.25), quantile(&s, 0.5), quantile(&s, 0.75), quantile(&s, 0.99)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let dir = std::env::temp_dir().join(format!("doorman-timing-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let config = Config {
        listen: "127.0.0.1:0".parse()?,
        database_url: format!("sqlite://{}/doorman.db?mode=rwc", dir.display()),
        secret_key_file: dir.join("secret.key"),
        mail_dir: dir.join("mail"),
        client_ip_header: Some("X-Real-IP".into()),
        ..Config::default()
    };
    let app = Application::build(&config, Options::default()).await?;
    let base = format!("http://{}", app.address());
    // Ten real accounts and ten unknown names, each tried n/10 times: every login stays under
    // the per-login cap (100), so both sides are measured doing the same work.
    for k in 0..10 {
        app.services()
            .auth
            .create_account(
                NewAccountRequest {
                    username: Username::parse(&format!("maria{k}"))?,
                    email: EmailAddress::parse(&format!("maria{k}@example.com"))?,
                    user_type: UserType::Freelancer,
                    country: Country::parse("PH")?,
                    password: Password::new("sunny harbour lantern")?,
                },
                &RequestContext::cli(),
            )
            .await?;
    }
    // Accounts that will hold a live reset email, five tries at each.
    let holders = n.div_ceil(5);
    for k in 0..holders {
        app.services()
            .auth
            .create_account(
                NewAccountRequest {
                    username: Username::parse(&format!("holder{k}"))?,
                    email: EmailAddress::parse(&format!("holder{k}@example.com"))?,
                    user_type: UserType::Client,
                    country: Country::parse("US")?,
                    password: Password::new("sunny harbour lantern")?,
                },
                &RequestContext::cli(),
            )
            .await?;
    }
    let services = app.services().clone();
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    for k in 0..holders {
        let body = serde_json::json!({ "login": format!("holder{k}") });
        let ip = format!("10.200.{}.{}", k / 200, k % 200);
        client.post(format!("{base}/api/v1/password/forgot")).header("X-Real-IP", ip).json(&body).send().await?;
    }
    // The worker writes the tokens; wait until every holder has one.
    for k in 0..holders {
        let login = format!("holder{k}");
        for _ in 0..600 {
            if services.store.reset_code_target(&login, services.deps.clock.unix()).await?.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    // Each attempt from its own /24, so that no address or subnet budget enters the measurement.
    let mut samples: [Vec<f64>; 6] = Default::default();
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..n {
        let ip = format!("10.{}.{}.1", (i / 256) % 256, i % 256);
        let k = i % 10;
        let cases = [
            ("/api/v1/login", serde_json::json!({"login": format!("maria{k}"), "password": format!("wrong guess {i}")})),
            ("/api/v1/login", serde_json::json!({"login": format!("nobody{k}"), "password": format!("wrong guess {i}")})),
            ("/api/v1/password/forgot", serde_json::json!({"login": format!("maria{k}")})),
            ("/api/v1/password/forgot", serde_json::json!({"login": format!("nobody{k}@example.com")})),
            (
                "/api/v1/password/reset",
                serde_json::json!({"login": format!("holder{}", i / 5), "code": format!("{:08}", rand::random::<u32>() % 100_000_000), "new_password": "a brand new long passphrase"}),
            ),
            (
                "/api/v1/password/reset",
                serde_json::json!({"login": format!("ghost{}", i / 5), "code": format!("{:08}", rand::random::<u32>() % 100_000_000), "new_password": "a brand new long passphrase"}),
            ),
        ];
        // Alternate which of each pair goes first: a request right after an argon2id run finds
        // the CPU caches cold (19 MiB), and that must not count for one side only.
        let order: [usize; 6] = if i % 2 == 0 { [0, 1, 2, 3, 4, 5] } else { [1, 0, 3, 2, 5, 4] };
        let mut cases: Vec<Option<(&str, serde_json::Value)>> = cases.into_iter().map(Some).collect();
        for case in order {
            let Some((path, body)) = cases[case].take() else { continue };
            let started = Instant::now();
            let response = client.post(format!("{base}{path}")).header("X-Real-IP", &ip).json(&body).send().await?;
            *statuses.entry((case, response.status().as_u16())).or_insert(0) += 1;
            let _ = response.bytes().await?;
            samples[case].push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let names = [
        "login, real account, wrong password",
        "login, unknown account",
        "forgot password, real account",
        "forgot password, unknown account",
        "reset by code, live email, wrong code",
        "reset by code, unknown account",
    ];
    println!("{n} requests per case; milliseconds");
    println!("{:<40} {:>8} {:>8} {:>8} {:>8}", "case", "p25", "median", "p75", "p99");
    for (name, s) in names.iter().zip(samples.iter()) {
        let [q1, median, q3, p99] = quantiles(s.clone());
        println!("{name:<40} {q1:>8.2} {median:>8.2} {q3:>8.2} {p99:>8.2}");
    }
    for (pair, (a, b)) in [(0, 1), (2, 3), (4, 5)].into_iter().enumerate() {
        let diff = quantiles(samples[a].clone())[1] - quantiles(samples[b].clone())[1];
        println!("pair {}: median difference {diff:+.3} ms, Mann-Whitney z = {:+.2}", pair + 1, mann_whitney_z(&samples[a], &samples[b]));
    }
    println!("statuses (case, status, count): {statuses:?}");
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
