//! Start-up: connect storage, apply migrations, load the server key, bind the port.
//! `Application::build` binds before it serves, so tests can ask for port 0 and read
//! back the port they got.

use crate::config::Config;
use crate::delivery::{Transport, Worker};
use crate::email::TemplateComposer;
use crate::server::ServeSettings;
use crate::store::SqlStore;
use crate::web::router;
use crate::web::state::{AppState, WebSettings};
use anyhow::Context;
use doorman_core::audit_chain::Audit;
use doorman_core::clock::{Clock, SystemClock};
use doorman_core::deps::Deps;
use doorman_core::keyring::{Keyring, Keys};
use doorman_core::keys::ServerKey;
use doorman_core::password::{PasswordHasher, PasswordPolicy};
use doorman_core::retention::Retention;
use doorman_core::services::{Services, Settings, Storage};
use doorman_core::session::SessionPolicy;
use doorman_core::two_step::TwoStepSettings;
use secrecy::ExposeSecret;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

pub struct Application {
    listener: TcpListener,
    address: SocketAddr,
    state: AppState,
    /// The same services the state holds, for the command line and tests.
    services: Services,
    store: SqlStore,
    /// The mail and job worker, when `mail_worker` is on.
    worker: Option<Worker>,
    mail_wakeup: Arc<Notify>,
    serve: ServeSettings,
    /// How often every replica reloads the keyring.
    keyring_reload: Duration,
}

/// How long shutting down waits for the worker to finish the round under way.
const WORKER_STOP_GRACE: Duration = Duration::from_secs(45);

#[derive(Debug, Clone)]
pub struct Options {
    pub demo: bool,
    pub clock: Arc<dyn Clock>,
}

impl Default for Options {
    fn default() -> Self {
        Self { demo: false, clock: Arc::new(SystemClock) }
    }
}

/// The domain services for a configuration, with storage connected and migrated.
pub async fn services(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<(Services, SqlStore)> {
    // A configured provider; `Application::build` also counts the demo's dev outbox.
    let sms_available = matches!(config.sms(), Ok(Some(_)));
    services_with(config, clock, sms_available).await
}

async fn services_with(config: &Config, clock: Arc<dyn Clock>, sms_available: bool) -> anyhow::Result<(Services, SqlStore)> {
    // The operator's secret is the root of the keyring: it wraps the rotated keys and is
    // itself the original key (issue 13).
    let keys = Keyring::new(load_server_key(config)?, clock.clone());
    let store = SqlStore::connect_with_pool(&config.database_url, config.database_pool)
        .await
        .context("connecting to the database")?
        .with_sealing_key(keys.clone());
    store.migrate().await.context("applying database migrations")?;
    let storage: Arc<dyn Storage> = Arc::new(store.clone());
    let deps = Deps {
        store: storage.clone(),
        hasher: PasswordHasher::owasp(config.hash_queue)?,
        clock,
        keys,
        composer: Arc::new(TemplateComposer { product_name: config.product_name.clone(), base_url: base_url(config) }),
        base_url: base_url(config),
    };
    let settings = Settings {
        password_policy: PasswordPolicy { min_chars: config.password_min_length, product_name: config.product_name.clone() },
        breached: crate::breached::from_settings(&config.breached().map_err(anyhow::Error::msg)?)?,
        session_policy: SessionPolicy {
            idle_timeout_seconds: config.session_idle_timeout_minutes * 60,
            absolute_timeout_seconds: config.session_absolute_timeout_hours * 3600,
        },
        reset_token_ttl_seconds: config.reset_token_ttl_minutes * 60,
        two_step: TwoStepSettings {
            email_codes_enabled: config.email_codes_enabled,
            sms_available,
            step_up_window_seconds: config.step_up_window_minutes * 60,
            issuer: config.product_name.clone(),
        },
        two_step_reset_wait_seconds: config.two_step_reset_wait_minutes * 60,
        support_change_delay_seconds: config.support_change_delay_minutes * 60,
        proof_of_work_bits: config.proof_of_work_bits,
        retention: config.retention(),
    };
    let services = Services::new(storage, deps, settings);
    services.keys.load().await.context("loading the keyring")?;
    Ok((services, store))
}

/// How messages leave, from the mail and SMS settings (the demo's dev outbox included).
/// Fails on a `mail_from` that is not a mailbox, an SMTP URL lettre cannot use or
/// incomplete SMS settings; connects to nothing yet.
pub fn transport(config: &Config, demo: bool) -> anyhow::Result<Transport> {
    let mail = config.mail()?;
    let sms = config.sms_for_server(demo).map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    Transport::new(&mail, sms, demo)
}

/// The configured public URL with exactly one trailing '/', the prefix of every link.
fn base_url(config: &Config) -> String {
    format!("{}/", config.base_url.as_str().trim_end_matches('/'))
}

/// The key from `secret_key`, else from `secret_key_file`, which is created with a random
/// key on first start (fine for one node; replicas must share the key).
fn load_server_key(config: &Config) -> anyhow::Result<ServerKey> {
    if let Some(secret) = &config.secret_key {
        return ServerKey::new(secret.expose_secret().trim().as_bytes().to_vec()).context("DOORMAN_SECRET_KEY");
    }
    let path = &config.secret_key_file;
    if !path.exists() {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        let key = hex::encode(doorman_core::keys::random_bytes(32));
        write_private(path, key.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
        tracing::warn!(path = %path.display(), "created a new server secret key; every replica must share it");
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes).trim().as_bytes().to_vec();
    ServerKey::new(text).with_context(|| format!("the key in {}", path.display()))
}

fn write_private(path: &std::path::Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents)
}

impl Application {
    pub async fn build(config: &Config, options: Options) -> anyhow::Result<Self> {
        // Built even when this process runs no worker, so that a bad `mail_from` or
        // `smtp_url` fails at start-up on every replica.
        let transport = transport(config, options.demo)?;
        // No way to send a text, no SMS method offered (issue 8).
        let (services, store) = services_with(config, options.clock, transport.sends_sms()).await?;
        let worker = Worker::new(services.clone(), transport);
        let mail_wakeup = worker.wakeup();
        let worker = config.mail_worker.then_some(worker);
        services.content.refresh_content().await.context("loading help articles and banners")?;
        let state = AppState::new(&services, WebSettings::from_config(config, options.demo));
        let listener = TcpListener::bind(config.listen).await.with_context(|| format!("listening on {}", config.listen))?;
        let address = listener.local_addr()?;
        let keyring_reload = Duration::from_secs(config.keyring_reload_seconds.unsigned_abs());
        Ok(Self {
            listener,
            address,
            state,
            services,
            store,
            worker,
            mail_wakeup,
            serve: ServeSettings::from_config(config),
            keyring_reload,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    pub fn store(&self) -> &SqlStore {
        &self.store
    }

    /// Wakes this process's worker at once (e.g. after queueing a job) rather than at its
    /// next poll; does nothing when the process runs no worker.
    pub fn mail_wakeup(&self) -> Arc<Notify> {
        self.mail_wakeup.clone()
    }

    /// Serves (and runs the worker, when on) until the process is asked to stop (Ctrl-C or
    /// SIGTERM), then drains requests and lets the worker finish its round.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let services = self.services;
        let refresh = tokio::spawn(doorman_core::content::refresh_forever(services.content));
        let reload = tokio::spawn(reload_keyring_forever(services.keys.clone(), self.keyring_reload));
        // The re-seal pass runs where the worker runs; two at once move each value once
        // (each replacement checks the value it replaces).
        let reseal = self.worker.is_some().then(|| tokio::spawn(reseal_forever(services.keys.clone(), self.keyring_reload)));
        // Sealing and pruning run where the worker runs; sealing is deterministic, so several
        // sealers agree, and two prunes delete the same rows.
        let seal = self.worker.is_some().then(|| tokio::spawn(seal_audit_forever(services.audit, services.keys.clone())));
        let prune = self.worker.is_some().then(|| tokio::spawn(prune_forever(services.retention)));
        let (stop, stopped) = watch::channel(false);
        let stop = Arc::new(stop);
        let worker = self.worker.map(|worker| {
            let mut stopped = stopped.clone();
            tokio::spawn(worker.run(async move {
                let _ = stopped.wait_for(|stopped| *stopped).await;
            }))
        });
        let signal = {
            let stop = stop.clone();
            async move {
                shutdown_signal().await;
                stop.send_replace(true);
            }
        };
        let result = crate::server::serve(self.listener, router(self.state), self.serve, signal).await;
        if let Some(prune) = prune {
            prune.abort();
        }
        refresh.abort();
        reload.abort();
        if let Some(reseal) = reseal {
            reseal.abort();
        }
        if let Some(seal) = seal {
            seal.abort();
        }
        stop.send_replace(true);
        if let Some(mut worker) = worker
            && tokio::time::timeout(WORKER_STOP_GRACE, &mut worker).await.is_err()
        {
            tracing::warn!("the worker did not stop in time; its leased rows are retried when the leases end");
            worker.abort();
        }
        result
    }
}

/// How often finished, expired and old rows are pruned (issue 13).
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// Prunes what the retention settings no longer keep, at start and then every hour, in
/// small batches (see `doorman_core::retention`).
async fn prune_forever(retention: Retention) {
    let mut tick = tokio::time::interval(PRUNE_INTERVAL);
    loop {
        tick.tick().await;
        match retention.prune_once().await {
            Ok(report) => tracing::info!(?report, "pruned old rows"),
            Err(e) => tracing::warn!(error = %e, "pruning old rows failed"),
        }
    }
}

/// Reloads the keyring every `interval`, and at once (at most once a second) when a value
/// names a key this replica has not loaded (issue 13).
async fn reload_keyring_forever(keys: Keys, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = keys.keyring().reload_wanted() => {}
        }
        if let Err(e) = keys.reload().await {
            tracing::warn!(error = %e, "reloading the keyring failed; the keys loaded before stay in use");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Moves TOTP secrets and waiting message bodies sealed under older keys to the signing key,
/// every ten keyring reloads; it reads nothing while only one key is live.
async fn reseal_forever(keys: Keys, reload: Duration) {
    let mut tick = tokio::time::interval(reload * 10);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match keys.reseal_once().await {
            Ok(0) => {}
            Ok(moved) => tracing::info!(moved, "re-sealed values under the signing key"),
            Err(e) => tracing::warn!(error = %e, "re-sealing under the signing key failed"),
        }
    }
}

/// Chains audit events once they are old enough (S10.3), with the keyring reloaded first so
/// that each link is sealed under the key signing at its event's time.
async fn seal_audit_forever(audit: Audit, keys: Keys) {
    let mut tick = tokio::time::interval(Duration::from_secs(15));
    loop {
        tick.tick().await;
        if let Err(e) = keys.reload().await {
            tracing::warn!(error = %e, "reloading the keyring before sealing failed");
            continue;
        }
        match audit.seal_audit_chain().await {
            Ok(0) => {}
            // The newest seal, in a log that can be kept off the host: an anchor that shows a
            // later rewrite of the log up to it (S10.3, `doorman audit verify --anchor`).
            Ok(sealed) => match audit.chain_head().await {
                Ok(Some(head)) => tracing::info!(sealed, anchor = %head, "audit chain sealed"),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "reading the newest audit seal failed"),
            },
            Err(e) => tracing::warn!(error = %e, "sealing the audit chain failed"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = terminate => {} }
    tracing::info!("shutting down");
}
