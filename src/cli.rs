//! The `doorman` command line.

use crate::app::{self, Application, Options};
use crate::config::Config;
use crate::store::SqlStore;
use anyhow::Context;
use clap::{Parser, Subcommand};
use doorman_core::audit::RequestContext;
use doorman_core::audit_chain::{AnchorCheck, ChainAnchor, ChainReport};
use doorman_core::auth::{AuthError, NewAccountRequest};
use doorman_core::clock::SystemClock;
use doorman_core::services::Services;
use doorman_core::store::OutboxStore;
use doorman_core::{Country, EmailAddress, Password, UserType, Username};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "doorman", version, about = "Self-hosted login and account recovery")]
struct Cli {
    /// Configuration file (default: ./doorman.toml when present).
    #[arg(long, global = true, env = "DOORMAN_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check the audit log's hash chain.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Serve the pages and the JSON API.
    Serve {
        /// Seed demo accounts and print their credentials (for trying doorman locally).
        #[arg(long)]
        demo: bool,
        /// Overrides `listen` from the configuration.
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Prune once what the retention settings no longer keep (`serve` does it every hour
    /// where the worker runs), and print what was removed.
    Prune,
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Inspect the mail outbox.
    Mail {
        #[command(subcommand)]
        command: MailCommand,
    },
    /// Import or export the status banner document.
    Banners {
        #[command(subcommand)]
        command: BannersCommand,
    },
    /// Manage help center articles.
    Articles {
        #[command(subcommand)]
        command: ArticlesCommand,
    },
    /// Rotate the keys that sign sessions, links and codes and seal secrets (issue 13).
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Add a key that signs everything new from ACTIVATE_IN seconds on (default: twice
    /// `keyring_reload_seconds` plus 30 s, so every replica has loaded it first). Older keys
    /// keep verifying what they made.
    Rotate {
        #[arg(long)]
        activate_in: Option<i64>,
    },
    /// List the keys: id, created, signing from, retired, and what still needs each.
    List,
    /// Stop accepting a key. Refused for the signing key, while secrets or waiting messages
    /// are still sealed under it (the background pass re-seals them; `doorman key reseal` now),
    /// and, without --force, while sessions, devices, links or codes made under it are live.
    Retire {
        id: String,
        /// Retire even though sessions, trusted devices, links and recovery codes made under
        /// the key still work: they stop working (signs those people out).
        #[arg(long)]
        force: bool,
    },
    /// Re-seal now what is sealed under older keys (the worker does it in the background).
    Reseal,
}

#[derive(Subcommand)]
enum BannersCommand {
    /// Replace the banner document with FILE's (`-`: standard input). A file that is not
    /// `.json` and does not start with '{' is read from its last line starting with '{'.
    Import { file: PathBuf },
    /// Print the stored banner document as JSON.
    Export,
}

#[derive(Subcommand)]
enum ArticlesCommand {
    /// Add or update articles from every `*.md` file of DIR (front matter: title, slug,
    /// category, related).
    Import { dir: PathBuf },
}

#[derive(Subcommand)]
enum RoleCommand {
    /// Grant a role: `doorman user role add USERNAME admin`.
    Add { username: String, role: String },
    /// Take a role away.
    Remove { username: String, role: String },
}

#[derive(Subcommand)]
enum MailCommand {
    /// Count pending, sent and dead messages, and list the dead letters with their last error.
    Status {
        /// How many dead letters to list, newest first.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account. The password is read from standard input, never from arguments.
    Add {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
        /// client, freelancer or agency
        #[arg(long)]
        user_type: String,
        /// ISO 3166-1 alpha-2 code, such as PH or US
        #[arg(long)]
        country: String,
        /// Read the password from the first line of standard input (required).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Grant or take away a role (admin: the /admin pages; support and admin: the /support console).
    Role {
        #[command(subcommand)]
        command: RoleCommand,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Seal what is old enough, then recompute every seal; exit 1 when the chain is broken.
    /// Prints the newest seal as an anchor to keep elsewhere.
    Verify {
        /// A seal recorded earlier (`<event id>:<seal>`, as this command prints it and the
        /// worker logs it): exit 1 unless that event still carries it. Repeatable.
        #[arg(long = "anchor", value_parser = parse_anchor)]
        anchors: Vec<ChainAnchor>,
    },
}

fn parse_anchor(text: &str) -> Result<ChainAnchor, String> {
    ChainAnchor::parse(text).map_err(str::to_owned)
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Load the configuration, report errors, and print the result with secrets hidden.
    Check,
}

pub async fn run() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let mut config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Serve { demo, listen } => {
            if let Some(listen) = listen {
                config.listen = listen;
            }
            serve(&config, demo).await
        }
        Command::Migrate => migrate(&config).await,
        Command::Prune => prune(&config).await,
        Command::User { command: UserCommand::Add { username, email, user_type, country, password_stdin: _ } } => {
            add_user(&config, &username, &email, &user_type, &country).await
        }
        Command::Mail { command: MailCommand::Status { limit } } => mail_status(&config, limit).await,
        Command::User { command: UserCommand::Role { command: RoleCommand::Add { username, role } } } => {
            crate::content_cli::set_role(&config, &username, &role, true).await
        }
        Command::User { command: UserCommand::Role { command: RoleCommand::Remove { username, role } } } => {
            crate::content_cli::set_role(&config, &username, &role, false).await
        }
        Command::Banners { command: BannersCommand::Import { file } } => crate::content_cli::import_banners(&config, &file).await,
        Command::Banners { command: BannersCommand::Export } => crate::content_cli::export_banners(&config).await,
        Command::Articles { command: ArticlesCommand::Import { dir } } => crate::content_cli::import_articles(&config, &dir).await,
        Command::Audit { command: AuditCommand::Verify { anchors } } => audit_verify(&config, &anchors).await,
        Command::Key { command } => key_command(&config, command).await,
        Command::Config { command: ConfigCommand::Check } => {
            print!("{}", config.describe());
            println!("configuration OK");
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("DOORMAN_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    // Colours only on a terminal: a log file or collector gets plain text, and each request's
    // span is formatted without escape codes (3 % of a cheap request, issue 12).
    let colours = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colours).try_init();
}

async fn serve(config: &Config, demo: bool) -> anyhow::Result<()> {
    // The demo mailbox shows every reset link it sent: never on a reachable address.
    if demo && !config.listen.ip().is_loopback() {
        anyhow::bail!(
            "--demo shows every email and text message at /dev/mailbox, so it only listens on a loopback address (127.0.0.1 or ::1), not {}",
            config.listen
        );
    }
    let application = Application::build(config, Options { demo, ..Options::default() }).await?;
    if demo {
        seed_demo_accounts(application.services()).await?;
        crate::content_cli::seed_demo_content(application.services()).await?;
    }
    tracing::info!(address = %application.address(), base_url = %config.base_url, "doorman is listening");
    println!("doorman is listening on http://{} (public URL {})", application.address(), config.base_url);
    application.run_until_stopped().await?;
    Ok(())
}

async fn audit_verify(config: &Config, anchors: &[ChainAnchor]) -> anyhow::Result<()> {
    let (services, _) = app::services(config, Arc::new(SystemClock)).await?;
    let newly = services.audit.seal_audit_chain().await?;
    match services.audit.verify_audit_chain().await? {
        ChainReport::Intact { sealed, unsealed, pruned_through } => {
            println!("audit chain intact: {sealed} events sealed ({newly} just now), {unsealed} younger than a minute not yet sealed");
            if let Some(id) = pruned_through {
                println!("events up to {id} were pruned by retention; the walk started from their sealed checkpoint");
            }
        }
        ChainReport::Broken { at_id, sealed_before } => {
            anyhow::bail!(
                "audit chain BROKEN at event {at_id}: the {sealed_before} events before it verify; this one, or one before it, was edited, removed or inserted"
            )
        }
    }
    let mut failed = Vec::new();
    for anchor in anchors {
        let id = anchor.event_id;
        match services.audit.check_anchor(anchor).await? {
            AnchorCheck::Holds => println!("anchor {id}: holds; nothing up to event {id} changed since it was recorded"),
            AnchorCheck::Pruned => println!("anchor {id}: pruned by retention, with no checkpoint of its own left to compare; not checked"),
            AnchorCheck::Differs => failed.push(format!(
                "anchor {id}: event {id} no longer carries the recorded seal; it, or an event before it, was rewritten and sealed again"
            )),
            AnchorCheck::Missing => failed.push(format!("anchor {id}: event {id} is gone; the log was cut")),
        }
    }
    if let Some(head) = services.audit.chain_head().await? {
        println!("newest seal (keep it elsewhere; `--anchor` checks it later): {head}");
    }
    if !failed.is_empty() {
        anyhow::bail!("audit chain REWRITTEN: {}", failed.join("; "));
    }
    Ok(())
}

fn time_text(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}

async fn key_command(config: &Config, command: KeyCommand) -> anyhow::Result<()> {
    let (services, _) = app::services(config, Arc::new(SystemClock)).await?;
    let keys = &services.keys;
    // The shortest delay that still lets every replica reload before the key signs, with
    // a margin for clocks a few seconds apart.
    let minimum = config.keyring_reload_seconds + 5;
    match command {
        KeyCommand::Rotate { activate_in } => {
            let delay = activate_in.unwrap_or(2 * config.keyring_reload_seconds + 30);
            if delay < minimum {
                anyhow::bail!(
                    "--activate-in must be at least keyring_reload_seconds + 5 = {minimum} seconds, so that every replica loads the key before it signs anything"
                );
            }
            let key = keys.rotate(delay).await?;
            println!("added key {}: it signs everything new from {} (in {delay} s)", key.id, time_text(key.active_from));
            println!("older keys keep verifying what they made; `doorman key list` shows what still needs them");
        }
        KeyCommand::List => {
            let signing = keys.keyring().signing_id();
            println!("{:<10} {:<26} {:<26} {:<26} uses", "id", "created", "signing from", "retired");
            for key in keys.keyring().keys() {
                let uses = keys.uses(&key.id).await?;
                let uses = if uses.is_empty() {
                    "-".to_owned()
                } else {
                    uses.iter().map(|(u, n)| format!("{n} {}", u.as_str())).collect::<Vec<_>>().join(", ")
                };
                let mut notes = Vec::new();
                if key.original {
                    notes.push("original (the secret key)");
                }
                if key.id == signing {
                    notes.push("signing");
                }
                println!(
                    "{:<10} {:<26} {:<26} {:<26} {uses}{}",
                    key.id.as_str(),
                    if key.original && key.created_at == 0 { "-".to_owned() } else { time_text(key.created_at) },
                    time_text(key.active_from),
                    key.retired_at.map(time_text).unwrap_or_else(|| "-".into()),
                    if notes.is_empty() { String::new() } else { format!("  [{}]", notes.join(", ")) },
                );
            }
        }
        KeyCommand::Retire { id, force } => match keys.retire(&id, force).await {
            Ok(key) => println!("retired key {}: values made under it are no longer accepted", key.id),
            Err(e @ doorman_core::keyring::RetireError::StillNeeded { forcible: true, .. }) => {
                anyhow::bail!("{e}; they stop working if it is retired: wait until they expire, or retire with --force")
            }
            Err(e @ doorman_core::keyring::RetireError::StillNeeded { .. }) => {
                anyhow::bail!("{e}; the worker re-seals them in the background (or run `doorman key reseal`), then retire again")
            }
            Err(e) => return Err(e.into()),
        },
        KeyCommand::Reseal => {
            let moved = keys.reseal_once().await?;
            println!("re-sealed {moved} values under key {}", keys.keyring().signing_id());
        }
    }
    Ok(())
}

async fn prune(config: &Config) -> anyhow::Result<()> {
    let (services, _) = app::services(config, Arc::new(SystemClock)).await?;
    // Seal first: only sealed events are pruned.
    services.audit.seal_audit_chain().await?;
    let report = services.retention.prune_once().await?;
    let policy = services.retention.policy();
    println!(
        "retention: finished jobs and messages {} days, audit events {} days, resolved cases' personal data {} days",
        policy.finished_days, policy.audit_days, policy.cases_days
    );
    for (what, removed) in &report.removed {
        println!("  {:<40} {removed} removed", what.as_str());
    }
    println!("  {:<40} {} erased", "resolved cases' personal data", report.cases_erased);
    println!("  {:<40} {} removed", "audit events", report.audit_events);
    Ok(())
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    app::services(config, Arc::new(SystemClock)).await?;
    println!("migrations applied");
    Ok(())
}

async fn add_user(config: &Config, username: &str, email: &str, user_type: &str, country: &str) -> anyhow::Result<()> {
    let request = (|| {
        Ok::<_, doorman_core::account::AccountFieldError>((
            Username::parse(username)?,
            EmailAddress::parse(email)?,
            UserType::parse(user_type)?,
            Country::parse(country)?,
        ))
    })();
    let (username, email, user_type, country) = request.map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let password = Password::new(line.trim_end_matches(['\r', '\n'])).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (services, _) = app::services(config, Arc::new(SystemClock)).await?;
    let account = services
        .auth
        .create_account(NewAccountRequest { username, email, user_type, country, password }, &RequestContext::cli())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("created account {} ({}), id {}", account.username.as_str(), account.email.as_str(), account.id);
    Ok(())
}

/// Reads the outbox only: needs no server key, and works while `doorman serve` runs.
async fn mail_status(config: &Config, limit: i64) -> anyhow::Result<()> {
    let store = SqlStore::connect_with_pool(&config.database_url, config.database_pool).await.context("connecting to the database")?;
    store.migrate().await.context("applying database migrations")?;
    let summary = store.outbox_summary(limit.max(0)).await?;
    // The backlog: how many wait, for how long, and how many have failed once already (the
    // mail server is down or refusing, issue 13).
    let backlog = match summary.oldest_pending_at {
        Some(oldest) if summary.pending > 0 => {
            let age = (time::OffsetDateTime::now_utc().unix_timestamp() - oldest).max(0);
            format!(
                "  (oldest written {} ago, at {}; {} waiting to retry after a failed attempt)",
                doorman_core::clock::in_words(age),
                doorman_core::clock::rfc3339(oldest),
                summary.retrying
            )
        }
        _ => String::new(),
    };
    println!("pending {}{backlog}\nsent    {}\ndead    {}", summary.pending, summary.sent, summary.dead);
    print_delivery_failures(&store).await?;
    print_fail_opens(&store).await?;
    if summary.dead_letters.is_empty() {
        return Ok(());
    }
    println!("\nDead letters (newest first; not retried, body erased):");
    for dead in &summary.dead_letters {
        let created = time::OffsetDateTime::from_unix_timestamp(dead.created_at)
            .ok()
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
            .unwrap_or_else(|| dead.created_at.to_string());
        println!(
            "  {}  {}  {} to {}  created {}  attempts {}\n    last error: {}",
            dead.id,
            dead.kind,
            dead.channel.as_str(),
            dead.recipient,
            created,
            dead.attempts,
            dead.last_error.replace(['\r', '\n'], " ")
        );
    }
    if summary.dead > summary.dead_letters.len() as i64 {
        println!("  ... and {} older", summary.dead - summary.dead_letters.len() as i64);
    }
    Ok(())
}

/// Failed attempts of the last 7 days by UTC day, channel and destination country (an
/// SMS's country is its number's; email has none, shown as `--`).
async fn print_delivery_failures(store: &SqlStore) -> anyhow::Result<()> {
    use doorman_core::delivery_failures::{DAY_SECONDS, DeliveryFailureStore};
    let today = time::OffsetDateTime::now_utc().unix_timestamp();
    let rows = store.delivery_failures_since(today - 6 * DAY_SECONDS).await?;
    if rows.is_empty() {
        println!("\nNo delivery failures in the last 7 days.");
        return Ok(());
    }
    println!("\nDelivery failures in the last 7 days (UTC day, channel, destination country):");
    for row in &rows {
        let day = time::OffsetDateTime::from_unix_timestamp(row.day)
            .ok()
            .and_then(|t| t.format(&time::macros::format_description!("[year]-[month]-[day]")).ok())
            .unwrap_or_else(|| row.day.to_string());
        println!(
            "  {day}  {:<5}  {:<2}  failed attempts {}  dead {}  sent {}\n    last error: {}",
            row.channel.as_str(),
            row.country.map(|c| c.as_str().to_owned()).unwrap_or_else(|| "--".into()),
            row.failures,
            row.dead,
            row.sent,
            row.last_error.as_deref().unwrap_or_default().replace(['\r', '\n'], " ")
        );
    }
    Ok(())
}

/// The checks that let a request through because they could not run (the Pwned Passwords
/// check fails open, S4.4), by UTC day over the last 7 days.
async fn print_fail_opens(store: &SqlStore) -> anyhow::Result<()> {
    use doorman_core::breached::FailOpenStore;
    use doorman_core::delivery_failures::DAY_SECONDS;
    let today = time::OffsetDateTime::now_utc().unix_timestamp();
    let rows = store.fail_open_since(today - 6 * DAY_SECONDS).await?;
    let total: i64 = rows.iter().map(|r| r.failures).sum();
    println!("\nChecks that failed open in the last 7 days: {total}");
    for row in &rows {
        let day = time::OffsetDateTime::from_unix_timestamp(row.day)
            .ok()
            .and_then(|t| t.format(&time::macros::format_description!("[year]-[month]-[day]")).ok())
            .unwrap_or_else(|| row.day.to_string());
        println!(
            "  {day}  {}  failed open {}\n    last error: {}",
            row.check,
            row.failures,
            row.last_error.as_deref().unwrap_or_default().replace(['\r', '\n'], " ")
        );
    }
    Ok(())
}

/// Demo accounts: one of each user type, in countries the help center's banners target.
const DEMO_ACCOUNTS: [(&str, &str, &str, &str, &str); 3] = [
    ("maria", "maria@example.com", "freelancer", "PH", "sunny harbour lantern"),
    ("jordan", "jordan@example.com", "client", "US", "quiet maple orchard"),
    ("northwind", "team@northwind.example", "agency", "GB", "copper kettle meadow"),
];

async fn seed_demo_accounts(services: &Services) -> anyhow::Result<()> {
    println!("Demo accounts (username / password):");
    for (username, email, user_type, country, password) in DEMO_ACCOUNTS {
        let request = NewAccountRequest {
            username: Username::parse(username)?,
            email: EmailAddress::parse(email)?,
            user_type: UserType::parse(user_type)?,
            country: Country::parse(country)?,
            password: Password::new(password)?,
        };
        match services.auth.create_account(request, &RequestContext::cli()).await {
            Ok(_) | Err(AuthError::UsernameTaken | AuthError::EmailTaken) => {
                println!("  {username:<10} {password:<24} ({user_type}, {country})")
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
