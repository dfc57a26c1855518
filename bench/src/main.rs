//! Helpers of `scripts/bench` (issue 12) and `scripts/soak` (issue 13), one binary with these
//! commands:
//!
//! - `hello ADDR`: a bare axum hello-world, the limit doorman's cheap pages are compared with.
//! - `argon2-rate THREADS SECONDS`: raw argon2id verifications per second at doorman's
//!   parameters, with the same `argon2` crate, the limit of logins.
//! - `hash PASSWORD`: one argon2id hash made by doorman's own hasher, copied to every seeded
//!   account (hashing a million passwords would take hours and measure nothing).
//! - `pairs` and `refusals`: requests timed one at a time ([`probe`]).
//! - `soak --replicas URL,... ...`: the soak's load driver (see `soak.rs`).

mod probe;
mod soak;

use anyhow::{Context, bail};
use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher as _, Version};
use doorman_core::password::{Password, PasswordHasher, WorkingMemory};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// doorman's parameters (`PasswordHasher::owasp`): m=19456 KiB, t=2, p=1.
const MEMORY_KIB: u32 = 19456;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "soak") {
        return soak::soak(&args[1..]);
    }
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["hello", addr] => hello(addr),
        ["argon2-rate", threads, seconds] => argon2_rate(threads.parse()?, seconds.parse()?),
        ["hash", password] => hash(password),
        ["pairs", url, rounds, expect, body_a, body_b, accounts] => {
            probe::pairs(url, rounds.parse()?, expect.parse()?, body_a, body_b, accounts.parse()?)
        }
        ["refusals", url, body, accounts, seconds, interval_ms] => {
            probe::refusals(url, body, accounts.parse()?, seconds.parse()?, interval_ms.parse()?)
        }
        _ => bail!(
            "usage: doorman-bench hello ADDR | argon2-rate THREADS SECONDS | hash PASSWORD \
             | pairs URL ROUNDS EXPECT BODY_A BODY_B ACCOUNTS | refusals URL BODY ACCOUNTS SECONDS INTERVAL_MS \
             | soak --replicas URL,... (see scripts/soak)"
        ),
    }
}

fn hello(addr: &str) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "Hello, World!" }));
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
        axum::serve(listener, app).await?;
        Ok(())
    })
}

/// Verifies one stored hash on `threads` threads for `seconds`, and prints the rate. Each
/// thread keeps its working memory between verifications, in doorman's own [`WorkingMemory`]
/// (on huge pages where the kernel gives them), as doorman's hashing threads do, so the limit
/// is the fastest form of the check (argon2's own `verify_password` allocates and frees
/// 19 MiB each time, which is slower and would flatter doorman).
fn argon2_rate(threads: usize, seconds: u64) -> anyhow::Result<()> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).map_err(|e| anyhow::anyhow!("{e}"))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let password = b"correct horse battery staple";
    let stored = argon.hash_password(password).map_err(|e| anyhow::anyhow!("{e}"))?.to_string();
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let cpu_before = process_cpu_seconds();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (argon, params, stored, done, stop) = (argon.clone(), params.clone(), stored.clone(), done.clone(), stop.clone());
            std::thread::spawn(move || -> anyhow::Result<()> {
                let parsed = PasswordHash::new(&stored).map_err(|e| anyhow::anyhow!("{e}"))?;
                let salt = parsed.salt.context("the hash has a salt")?;
                let expected = parsed.hash.context("the hash has an output")?;
                let mut memory = WorkingMemory::new(params.block_count());
                let mut out = vec![0u8; expected.len()];
                while !stop.load(Ordering::Relaxed) {
                    argon
                        .hash_password_into_with_memory(password, salt.as_ref(), &mut out, memory.blocks())
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    if out != expected.as_bytes() {
                        bail!("the raw verification did not match");
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().map_err(|_| anyhow::anyhow!("a hashing thread panicked"))??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let done = done.load(Ordering::Relaxed) as f64;
    println!("{:.1}", done / elapsed);
    // The CPU one verification takes, for what a login costs besides its hash (on stderr, so
    // the rate stays the only thing on stdout).
    if let (Some(before), Some(after)) = (cpu_before, process_cpu_seconds())
        && done > 0.0
    {
        eprintln!("cpu_ms_per_verification={:.2}", (after - before) * 1000.0 / done);
    }
    Ok(())
}

/// This process's CPU time so far (user and system), from /proc/self/stat (Linux; clock
/// ticks of 1/100 s, the kernel's fixed USER_HZ).
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which may hold spaces: utime and stime are the 12th and
    // 13th of them (the 14th and 15th of the line).
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    Some((user + system) / 100.0)
}

fn hash(password: &str) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let hasher = PasswordHasher::owasp(None)?;
    let password = Password::new(password).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    println!("{}", runtime.block_on(hasher.hash(&password))?);
    Ok(())
}
