//! Probes that send requests one at a time and time each answer, for what wrk cannot tell:
//! whether two kinds of request take the same time (a two-sample test needs the samples),
//! and how fast refusals come back when they are mixed with slow successes.

use anyhow::{Context, bail};
use doorman_bench::stats::{mann_whitney_z, quantile, sorted};
use rand::Rng;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// One POST with a JSON body from client address `ip`: its status and milliseconds.
async fn post(client: &reqwest::Client, url: &str, body: String, ip: &str) -> anyhow::Result<(u16, f64)> {
    let started = Instant::now();
    let response = client
        .post(url)
        .header("Content-Type", "application/json")
        .header("X-Real-IP", ip)
        .body(body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status().as_u16();
    response.bytes().await?;
    Ok((status, started.elapsed().as_secs_f64() * 1000.0))
}

/// `{n}` in `template` becomes a random number in 1..=`accounts`.
fn fill(template: &str, accounts: u32) -> String {
    template.replace("{n}", &rand::thread_rng().gen_range(1..=accounts).to_string())
}

/// A new client address for request `k` (198.18.0.0/15, the benchmarking range).
fn address(k: u32) -> String {
    format!("198.{}.{}.{}", 18 + (k >> 16) % 2, (k >> 8) % 256, k % 256)
}

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().no_proxy().build()?)
}

/// `pairs URL N EXPECT BODY_A BODY_B ACCOUNTS`: N rounds of one request of each body, the order
/// alternating by round, each from its own address. Prints one line:
/// `median_a p99_a median_b p99_b z unexpected` (milliseconds; z of Mann-Whitney, a against b).
pub fn pairs(url: &str, rounds: u32, expect: u16, body_a: &str, body_b: &str, accounts: u32) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let client = client()?;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let mut unexpected = 0;
        for round in 0..rounds {
            let first_a = round % 2 == 0;
            for side in [first_a, !first_a] {
                let body = fill(if side { body_a } else { body_b }, accounts);
                let (status, ms) = post(&client, url, body, &address(2 * round + u32::from(side))).await?;
                if status != expect {
                    unexpected += 1;
                }
                if side { a.push(ms) } else { b.push(ms) }
            }
        }
        let z = mann_whitney_z(&a, &b);
        let (a, b) = (sorted(a), sorted(b));
        println!(
            "{:.2} {:.2} {:.2} {:.2} {z:+.2} {unexpected}",
            quantile(&a, 0.5),
            quantile(&a, 0.99),
            quantile(&b, 0.5),
            quantile(&b, 0.99)
        );
        Ok(())
    })
}

/// `refusals URL BODY ACCOUNTS SECONDS INTERVAL_MS`: one request every INTERVAL_MS (each waits
/// for the answer before the next) for SECONDS, each from its own address; per status, prints
/// `status:count:p50:p99:max` (milliseconds), space separated.
pub fn refusals(url: &str, body: &str, accounts: u32, seconds: u64, interval_ms: u64) -> anyhow::Result<()> {
    if interval_ms == 0 {
        bail!("the interval must be at least 1 ms");
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let client = client()?;
        let mut by_status: BTreeMap<u16, Vec<f64>> = BTreeMap::new();
        let until = Instant::now() + Duration::from_secs(seconds);
        let mut ticks = tokio::time::interval(Duration::from_millis(interval_ms));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut k = 0;
        while Instant::now() < until {
            ticks.tick().await;
            k += 1;
            let (status, ms) = post(&client, url, fill(body, accounts), &address(60_000 + k)).await?;
            by_status.entry(status).or_default().push(ms);
        }
        let parts: Vec<String> = by_status
            .into_iter()
            .map(|(status, samples)| {
                let s = sorted(samples);
                format!("{status}:{}:{:.1}:{:.1}:{:.1}", s.len(), quantile(&s, 0.5), quantile(&s, 0.99), quantile(&s, 1.0))
            })
            .collect();
        println!("{}", parts.join(" "));
        Ok(())
    })
}
