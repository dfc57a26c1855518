//! Measures checklist S2.3: does response time reveal whether an account exists?
//!
//! Starts doorman in-process (SQLite, OWASP argon2id parameters) and sends, interleaved,
//! N login attempts with a wrong password for a real account and for unknown ones, and N
//! forgot-password requests for each; prints medians and interquartile ranges.
//!
//!     cargo run --release --example enumeration_timing -- 300
//!
//! Results and the machine are recorded in docs/BENCHMARKS.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use doorman::app::{Application, Options};
use doorman::Config;
use doorman_core::audit::RequestContext;
use doorman_core::auth::NewAccountRequest;
use doorman_core::{Country, EmailAddress, Password, UserType, Username};
use std::time::Instant;

fn quartiles(mut samples: Vec<f64>) -> (f64, f64, f64) {
    samples.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.25), at(0.5), at(0.75))
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
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();

    // Each attempt from its own /24, so that no address or subnet budget enters the measurement.
    let mut samples: [Vec<f64>; 4] = Default::default();
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..n {
        let ip = format!("10.{}.{}.1", (i / 256) % 256, i % 256);
        let k = i % 10;
        let cases = [
            ("/api/v1/login", serde_json::json!({"login": format!("maria{k}"), "password": format!("wrong guess {i}")})),
            ("/api/v1/login", serde_json::json!({"login": format!("nobody{k}"), "password": format!("wrong guess {i}")})),
            ("/api/v1/password/forgot", serde_json::json!({"login": format!("maria{k}")})),
            ("/api/v1/password/forgot", serde_json::json!({"login": format!("nobody{k}@example.com")})),
        ];
        // Alternate which of each pair goes first: a request right after an argon2id run finds
        // the CPU caches cold (19 MiB), and that must not count for one side only.
        let order: [usize; 4] = if i % 2 == 0 { [0, 1, 2, 3] } else { [1, 0, 3, 2] };
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
    ];
    println!("{n} requests per case; milliseconds");
    println!("{:<40} {:>8} {:>8} {:>8}", "case", "p25", "median", "p75");
    for (name, s) in names.iter().zip(samples) {
        let (q1, median, q3) = quartiles(s);
        println!("{name:<40} {q1:>8.2} {median:>8.2} {q3:>8.2}");
    }
    println!("statuses (case, status, count): {statuses:?}");
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
