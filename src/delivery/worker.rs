//! The worker: every half second (or at once when woken) it runs the due jobs, then sends
//! the due messages. Rows are leased, so several processes can run workers on one database;
//! a crash leaves the lease to run out, and another worker takes the row over.
//!
//! Nothing here logs a message's body, a link, a token or a code: only ids, kinds and errors.
//! Every attempt is counted per channel and destination country (`delivery_failures`).

use super::send::{SEND_DEADLINE, SendError};
use super::transport::Transport;
use doorman_core::audit::{AuditEvent, AuditRecord, RequestContext};
use doorman_core::delivery_failures::{AttemptFailure, DeliveryAttempt, DeliveryRecord, destination_country};
use doorman_core::jobs::Job;
use doorman_core::outbox::{self, Channel, ClaimedMessage, retry_delay};
use doorman_core::recovery::JobError;
use doorman_core::services::Services;
use doorman_core::store::StoreError;
use futures::StreamExt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tracing::Instrument;

/// How long a claimed row stays this worker's.
pub const LEASE_SECONDS: i64 = 60;
/// Rows claimed at a time.
pub const BATCH_SIZE: i64 = 32;
/// Jobs, and sends, under way at once within a batch. One at a time, a flood's first second
/// (a thousand first-time "forgot password" jobs) kept later users' emails waiting 9 s
/// (issue 12): most of a job is waiting for the database, not work. More at once takes more
/// from the requests while a backlog runs (docs/BENCHMARKS.md, issue 12's third pass); four
/// kept the flood's emails under a second. Messages of one batch have different recipients
/// (a recipient's next message is claimed only once the earlier one is done), so sending
/// them side by side keeps each recipient's order.
pub const CONCURRENCY: usize = 4;
/// The pause between two rounds when there was nothing more to do.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// The longest pause after repeated storage errors.
const MAX_ERROR_PAUSE: Duration = Duration::from_secs(30);
/// A job gets this long before it is abandoned and retried later.
const JOB_TIMEOUT: Duration = SEND_DEADLINE;
/// A batch starts no new send or job once this much of its lease is gone, so that none can
/// still run when the lease ends and another worker may take the row. The rows left over
/// are taken again when their lease ends (a slow mail server delays them; nothing is lost).
const LEASE_BUDGET: Duration = Duration::from_secs(LEASE_SECONDS as u64 - SEND_DEADLINE.as_secs() - 5);

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Jobs claimed.
    pub jobs: usize,
    /// Messages claimed.
    pub messages: usize,
    /// Of those, the ones that failed (to be retried, or dead-lettered).
    pub failures: usize,
    /// Messages sent.
    pub sent: usize,
}

impl Progress {
    /// A full batch was claimed, or a message went out (the next one to its recipient waited
    /// for it): more rows may be due already.
    pub fn more_may_be_due(&self) -> bool {
        self.jobs as i64 >= BATCH_SIZE || self.messages as i64 >= BATCH_SIZE || self.sent > 0
    }
}

pub struct Worker {
    services: Services,
    transport: Transport,
    id: String,
    wakeup: Arc<Notify>,
}

/// `host/pid/random`: tells operators which process holds a lease, unique even for two
/// workers in one process.
pub fn worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}/{}/{}", std::process::id(), &suffix[..8])
}

/// Runs a worker until `shutdown` completes.
pub async fn run_workers(services: Services, transport: Transport, shutdown: impl Future<Output = ()> + Send) {
    Worker::new(services, transport).run(shutdown).await
}

impl Worker {
    pub fn new(services: Services, transport: Transport) -> Self {
        Self { services, transport, id: worker_id(), wakeup: Arc::new(Notify::new()) }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Notifying it starts the next round at once instead of at the next poll (for code in
    /// the same process that has just queued something).
    pub fn wakeup(&self) -> Arc<Notify> {
        self.wakeup.clone()
    }

    /// Rounds until `shutdown` completes; a round under way is finished first. Errors are
    /// logged and the loop goes on, pausing longer while storage keeps failing.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        tracing::info!(worker = %self.id, transport = %self.transport.describe(), "mail and job worker started");
        tokio::pin!(shutdown);
        let mut failed_rounds: u32 = 0;
        loop {
            let pause = match self.run_once().await {
                Ok(progress) => {
                    failed_rounds = 0;
                    if progress.more_may_be_due() { Duration::ZERO } else { POLL_INTERVAL }
                }
                Err(e) => {
                    failed_rounds = failed_rounds.saturating_add(1);
                    tracing::warn!(worker = %self.id, error = %e, failed_rounds, "the worker could not claim work");
                    POLL_INTERVAL.saturating_mul(1 << failed_rounds.min(6)).min(MAX_ERROR_PAUSE)
                }
            };
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(pause) => {}
                () = self.wakeup.notified() => {}
            }
        }
        tracing::info!(worker = %self.id, "mail and job worker stopped");
    }

    /// One round: the due jobs (which may write messages), then the due messages. Fails
    /// only when work could not be claimed; the failure of one row is recorded on that row.
    pub async fn run_once(&self) -> Result<Progress, StoreError> {
        let jobs = self.run_jobs().await;
        let messages = self.send_messages().await;
        let (jobs, messages) = (jobs?, messages?);
        Ok(Progress { jobs: jobs.jobs, messages: messages.messages, failures: jobs.failures + messages.failures, sent: messages.sent })
    }

    /// The jobs part of a round: claims the due jobs and runs them, recording each outcome.
    pub async fn run_jobs(&self) -> Result<Progress, StoreError> {
        let started = Instant::now();
        let jobs = self.services.store.claim_jobs(&self.id, self.services.deps.clock.unix(), LEASE_SECONDS, BATCH_SIZE).await?;
        let claimed = jobs.len();
        let failures = futures::stream::iter(jobs)
            .map(|job| async move {
                if started.elapsed() > LEASE_BUDGET {
                    tracing::info!(worker = %self.id, job = %job.id, "lease running out: leaving the job to the next round");
                    return false;
                }
                !self.run_job(&job).await
            })
            .buffer_unordered(CONCURRENCY)
            .filter(|failed| std::future::ready(*failed))
            .count()
            .await;
        Ok(Progress { jobs: claimed, failures, ..Progress::default() })
    }

    /// Runs one job and records its outcome; whether it succeeded.
    async fn run_job(&self, job: &outbox::Job) -> bool {
        // The error, and whether it is permanent (a row that is no job this release runs).
        // In a task of its own: when the time is up the worker stops waiting, but the job runs
        // to its end. Dropped half-way, it could leave a database connection inside a
        // transaction (sqlx 0.9 loses track of a `BEGIN` it was cancelled in, as requests did
        // before they ran to their end, docs/BENCHMARKS.md sixth pass).
        let (services, row) = (self.services.clone(), job.clone());
        let work = tokio::spawn(async move { perform(&services, &row).await }.in_current_span());
        let outcome = match tokio::time::timeout(JOB_TIMEOUT, work).await {
            Ok(Ok(result)) => result.map_err(|e| (e.to_string(), e.is_permanent())),
            Ok(Err(stopped)) => Err((format!("the job stopped: {stopped}"), false)),
            Err(_) => Err((format!("did not finish within {} seconds", JOB_TIMEOUT.as_secs()), false)),
        };
        let store = &self.services.store;
        let succeeded = outcome.is_ok();
        let recorded = match outcome {
            Ok(()) => {
                tracing::info!(worker = %self.id, job = %job.id, kind = %job.kind, attempts = job.attempts, "job done");
                store.complete_job(&job.id).await
            }
            Err((error, permanent)) => {
                let retry_at =
                    if permanent { None } else { retry_delay(job.attempts).map(|delay| self.services.deps.clock.unix() + delay) };
                tracing::warn!(worker = %self.id, job = %job.id, kind = %job.kind, attempts = job.attempts, retry_at, permanent, %error, "job failed");
                store.fail_job(&job.id, &error, retry_at).await
            }
        };
        if let Err(e) = recorded {
            // The lease runs out and the job runs again: jobs are written to allow that.
            tracing::error!(worker = %self.id, job = %job.id, error = %e, "could not record a job's outcome");
        }
        succeeded
    }

    /// The messages part of a round: claims the due messages and sends them, a few at a time.
    /// Each outcome is recorded as soon as the recording before it is done, together with the
    /// others that ended meanwhile (one commit for the group): sends that end together cost
    /// one commit instead of one each, without taking turns at their day's counter row
    /// (issue 12).
    async fn send_messages(&self) -> Result<Progress, StoreError> {
        let started = Instant::now();
        let messages = self.services.store.claim_messages(&self.id, self.services.deps.clock.unix(), LEASE_SECONDS, BATCH_SIZE).await?;
        let claimed = messages.len();
        let (ended, mut to_record) = tokio::sync::mpsc::unbounded_channel();
        let sending = async move {
            let outcomes: Vec<Option<bool>> = futures::stream::iter(messages)
                .map(|message| {
                    let ended = ended.clone();
                    async move {
                        if started.elapsed() > LEASE_BUDGET {
                            tracing::info!(worker = %self.id, message = %message.id, "lease running out: leaving the message to the next round");
                            return None;
                        }
                        let outcome = match super::sms::too_old(&message, self.services.deps.clock.unix()) {
                            Some(stale) => Err(stale),
                            None => self.transport.send(&message).await,
                        };
                        let sent = outcome.is_ok();
                        // The slot is given up once the outcome is written, so that no more than
                        // CONCURRENCY messages are ever sent and not yet marked (a crash sends
                        // those again). The recorder lives until every sender is done.
                        let (written, recorded) = tokio::sync::oneshot::channel();
                        if ended.send((self.delivery_record(&message, outcome), written)).is_ok() {
                            let _ = recorded.await;
                        }
                        Some(sent)
                    }
                })
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
            drop(ended);
            outcomes
        };
        let recording = async {
            while let Some(first) = to_record.recv().await {
                let mut group = vec![first];
                while let Ok(next) = to_record.try_recv() {
                    group.push(next);
                }
                let (records, written): (Vec<DeliveryRecord>, Vec<_>) = group.into_iter().unzip();
                self.record(&records).await;
                for sender in written {
                    let _ = sender.send(());
                }
            }
        };
        let (outcomes, ()) = tokio::join!(sending, recording);
        let sent = outcomes.iter().filter(|o| **o == Some(true)).count();
        let failures = outcomes.iter().filter(|o| **o == Some(false)).count();
        Ok(Progress { messages: claimed, sent, failures, ..Progress::default() })
    }

    /// Writes a group of attempts' outcomes, counts and audit events together (one commit).
    /// When the group cannot be written, each is tried alone, so that one record the database
    /// refuses does not leave the others unmarked too.
    async fn record(&self, group: &[DeliveryRecord]) {
        if group.len() > 1 && self.services.store.record_deliveries(group).await.is_ok() {
            return;
        }
        for record in group {
            if let Err(e) = self.services.store.record_deliveries(std::slice::from_ref(record)).await {
                // Sent but not marked, it goes again when the lease ends, with the same
                // Message-ID, so the receiver can drop the copy; not sent, it is tried again then.
                tracing::error!(worker = %self.id, message = %record.message_id, error = %e, "could not record a delivery attempt");
            }
        }
    }

    /// What an attempt's outcome is to write: the message's new state, its count and its
    /// audit event. Logged here, when the attempt ends.
    fn delivery_record(&self, message: &ClaimedMessage, outcome: Result<(), SendError>) -> DeliveryRecord {
        let now = self.services.deps.clock.unix();
        let sms = message.channel == Channel::Sms;
        let (failure, retry_at, event, detail) = match outcome {
            Ok(()) => {
                tracing::info!(worker = %self.id, message = %message.id, kind = %message.kind, attempts = message.attempts, "{} sent", message.channel.as_str());
                let event = if sms { AuditEvent::SmsSent } else { AuditEvent::EmailSent };
                (None, None, event, message.kind.clone())
            }
            Err(error) => {
                let retry_at = if error.is_permanent() { None } else { retry_delay(message.attempts).map(|delay| now + delay) };
                // A provider's or mail server's words, without control characters: PostgreSQL
                // refuses a NUL in text (the outcome could not be written, and the message went
                // again at every lease's end), and `doorman mail status` prints them to a terminal.
                let text: String = error.to_string().chars().filter(|c| !c.is_control()).collect();
                let verdict = match retry_at {
                    Some(at) => format!("retry in {} s", at - now),
                    None => "dead letter".to_owned(),
                };
                tracing::warn!(
                    worker = %self.id, message = %message.id, kind = %message.kind, attempts = message.attempts,
                    permanent = error.is_permanent(), error = %text, "{} not sent: {verdict}", message.channel.as_str()
                );
                let detail: String =
                    format!("{}; attempt {}; {verdict}: {text}", message.kind, message.attempts).chars().take(300).collect();
                let event = if sms { AuditEvent::SmsFailed } else { AuditEvent::EmailFailed };
                (Some(AttemptFailure { error: text, dead: retry_at.is_none() }), retry_at, event, detail)
            }
        };
        let ctx = RequestContext {
            ip: std::net::IpAddr::from([0, 0, 0, 0]),
            user_agent: "doorman-worker".into(),
            request_id: String::new(),
            country: None,
        };
        DeliveryRecord {
            message_id: message.id.clone(),
            attempt: DeliveryAttempt {
                channel: message.channel,
                country: destination_country(message.channel, &message.recipient),
                at: now,
                failure,
            },
            retry_at,
            audit: AuditRecord::new(now, event, message.account_id.clone(), &ctx, &detail),
        }
    }
}

/// Decodes a queued row and does what it says.
async fn perform(services: &Services, row: &outbox::Job) -> Result<(), JobError> {
    match Job::decode(&row.kind, &row.payload)? {
        Job::PasswordResetRequested(request) => services.recovery.send_password_reset(request, &row.id).await,
        Job::SupportActionDue(due) => services.support.apply_due_action(&due.action_id).await.map_err(|e| JobError::Failed(e.to_string())),
    }
}
