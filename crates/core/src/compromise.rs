//! "This wasn't me" locks the account (issue 11 §4), and the public "report a compromised
//! account" form. A lock is authorised by a [`CompromiseReport`]: a live report link's token,
//! verified here, the only place one is made.

use crate::account::{AccountId, LoginIdentifier};
use crate::activity::ActivityItem;
use crate::audit::{AuditEvent, RequestContext};
use crate::deps::Deps;
use crate::notice::Notice;
use crate::outbox::NewMessage;
use crate::report_link::{REPORT_TOKEN_TTL_SECONDS, ReportedEvent, new_report_link};
use crate::session::{SessionRecord, SessionStage};
use crate::step_up::SteppedUp;
use crate::store::StoreError;
use crate::throttle::{ThrottleKey, ThrottleRule};
use crate::token::{Purpose, RecoveryToken};
use async_trait::async_trait;
use std::sync::Arc;

crate::storage_trait! {
    /// The storage `Compromise` reads and writes.
    pub trait CompromiseStorage:
        crate::store::AccountStore,
        CompromiseStore,
        crate::activity::ActivityStore,
        crate::report_link::ReportLinkStore,
        crate::factors::FactorStore,
}

/// The public report form's limits (S3.5): per client address, per network (IPv4 /24, IPv6
/// /48), and per case (the reports written into one account's open case, the first included).
pub const PUBLIC_REPORTS_PER_ADDRESS_PER_HOUR: i64 = 5;
pub const PUBLIC_REPORTS_PER_NETWORK_PER_DAY: i64 = 30;
pub const PUBLIC_REPORTS_PER_CASE_PER_DAY: i64 = 20;
const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

/// A report link as stored: whose, and the event it reports.
#[derive(Debug, Clone)]
pub struct StoredReport {
    pub token_id: String,
    pub account_id: AccountId,
    pub event: ReportedEvent,
    /// When the reported event happened (the link was made with its email).
    pub event_at: i64,
}

/// A locked account.
#[derive(Debug, Clone)]
pub struct AccountLockRecord {
    pub locked_at: i64,
    /// Only methods enrolled before this time unlock it through a reset.
    pub event_at: i64,
    pub case_id: String,
    /// The lock took away every 2-step method the account had (each was enrolled after the
    /// reported event): a reset by email does not lift it, support does (S1.12).
    pub support_only: bool,
}

pub struct NewCase {
    pub id: String,
    pub kind: &'static str,
    pub account_id: Option<AccountId>,
    pub created_at: i64,
    pub details: String,
}

/// Everything one lock does, in one transaction.
pub struct AccountLock {
    pub report: StoredReport,
    pub case: NewCase,
    pub notices: Vec<NewMessage>,
    pub now: i64,
}

#[derive(Debug, Clone, Copy)]
pub struct LockOutcome {
    pub sessions_ended: u64,
    pub rolled_back: bool,
    /// A requested or waiting 2-step reset of the account was cancelled (its links voided,
    /// its unsent finish email deleted).
    pub two_step_reset_cancelled: bool,
    /// The lock took away every 2-step method the account had: support lifts it (S1.12).
    pub support_only: bool,
}

#[async_trait]
pub trait CompromiseStore {
    async fn find_report(&self, token_hash: &str, now: i64) -> Result<Option<StoredReport>, StoreError>;
    /// Spends the report token, locks the account, revokes every session, device cookie and
    /// outstanding token, rolls the reported change back where it can, opens the case and
    /// writes the notices; cancels a running 2-step reset; `None` when the token was spent or
    /// expired meanwhile.
    async fn lock_account(&self, lock: &AccountLock) -> Result<Option<LockOutcome>, StoreError>;
    async fn lock_of(&self, account: &AccountId) -> Result<Option<AccountLockRecord>, StoreError>;
    async fn open_case(&self, case: &NewCase) -> Result<(), StoreError>;
    /// The open public-form case about `account`, if there is one (none for `None`; asked
    /// either way, so a report costs the same whether or not its login names an account).
    async fn open_public_report_of(&self, account: Option<&AccountId>) -> Result<Option<String>, StoreError>;
    /// A later public report about the same account, written into its open case.
    async fn add_public_report_note(&self, case_id: &str, body: &str, now: i64) -> Result<(), StoreError>;
    /// What the account's "this wasn't me" token `token_id` reports (used or not).
    async fn reported_event_of_token(&self, account: &AccountId, token_id: &str) -> Result<Option<ReportedEvent>, StoreError>;
}

/// Proof that the owner reported a change: a live "this wasn't me" token, verified by
/// [`Compromise::verify_report`], or an entry of the owner's own activity page reported from
/// their signed-in session ([`Compromise::lock_from_activity`], which mints and spends it at
/// once). Private fields, no public constructor; spent by a lock.
#[derive(Debug)]
pub struct CompromiseReport {
    report: StoredReport,
    /// Where the report came from, for the audit log.
    via: &'static str,
}

impl CompromiseReport {
    pub fn account(&self) -> &AccountId {
        &self.report.account_id
    }
    pub fn event(&self) -> &ReportedEvent {
        &self.report.event
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CompromiseError {
    #[error(
        "This link is not valid any more: it was already used, or it has expired. If you still think someone else is using your account, report it at /report-compromise."
    )]
    InvalidToken,
    #[error("Too many reports from this address. Try again in {}.", crate::clock::in_words(*.0))]
    TooMany(i64),
    #[error("There is no such entry in your security activity.")]
    NoSuchEntry,
    #[error(
        "This entry is older than 30 days, too old to lock the account from here. If you still think someone else is using your account, report it at /report-compromise."
    )]
    EntryTooOld,
    #[error(
        "Confirm it is you first: moving your account back to its old email address, or bringing back a removed 2-step method, needs a fresh verification."
    )]
    StepUpRequired,
    #[error("composing the email failed: {0}")]
    Compose(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A lock, as the person who reported it is told.
#[derive(Debug, Clone)]
pub struct Locked {
    pub case_id: String,
    pub sessions_ended: u64,
    pub rolled_back: bool,
    pub two_step_reset_cancelled: bool,
    /// Support, not a reset, lifts this lock (it took away every 2-step method).
    pub support_only: bool,
}

/// What a report link or the public form leads to.
#[derive(Debug, Clone)]
pub struct Compromise {
    deps: Deps,
    store: Arc<dyn CompromiseStorage>,
}

impl Compromise {
    pub fn new(deps: Deps, store: Arc<dyn CompromiseStorage>) -> Self {
        Self { store, deps }
    }

    fn report_hash(&self, token: &RecoveryToken) -> String {
        token.storage_key(&self.deps.keys, Purpose::ReportNotMe)
    }

    /// Checks a report link's token without spending it (opening the page changes nothing).
    pub async fn verify_report(&self, token: &RecoveryToken) -> Result<CompromiseReport, CompromiseError> {
        let found = self.store.find_report(&self.report_hash(token), self.deps.now()).await?;
        Ok(CompromiseReport { report: found.ok_or(CompromiseError::InvalidToken)?, via: "report link" })
    }

    /// An entry of the owner's own activity page, for its confirmation page: `NoSuchEntry`
    /// unless it is one of `account`'s listed events, `EntryTooOld` past a report link's life.
    pub async fn activity_entry(&self, account: &AccountId, entry_id: i64) -> Result<ActivityItem, CompromiseError> {
        let item = crate::activity::entry(&*self.store, account, entry_id).await?.ok_or(CompromiseError::NoSuchEntry)?;
        if item.at + REPORT_TOKEN_TTL_SECONDS <= self.deps.now() {
            return Err(CompromiseError::EntryTooOld);
        }
        Ok(item)
    }

    /// "This wasn't me" from the activity page: the owner, signed in (a full session of the
    /// account), reports one of their own entries and confirmed it with a button (never a
    /// GET). Locking only protects, so the session suffices: someone holding the session
    /// can lock the owner out of nothing the owner cannot get back with a reset, and cannot
    /// use the lock to take anything. The proof is minted here from a fresh report token
    /// (stored as a keyed hash, never shown, spent by the lock in its transaction), tied to
    /// the entry's event and time, so the lock treats it as that entry's report link would.
    pub async fn lock_from_activity(
        &self,
        session: &SessionRecord,
        entry_id: i64,
        stepped_up: Option<&SteppedUp>,
        ctx: &RequestContext,
    ) -> Result<Locked, CompromiseError> {
        if session.stage != SessionStage::Full {
            return Err(CompromiseError::NoSuchEntry);
        }
        let account = &session.account_id;
        let item = self.activity_entry(account, entry_id).await?;
        let event = self.reported_event_of(account, &item).await?;
        // Rolling back who receives the account's email, or which method passes its second
        // step, changes who can get back in after the lock: the session alone is not enough
        // (a stolen session could move the account back to an address of the past, or bring
        // back a method its owner removed on purpose). A lock alone still is.
        let rolls_back_control = matches!(event, ReportedEvent::EmailChanged { .. } | ReportedEvent::MethodRemoved { .. });
        // Nor is it enough for a lock that would take away every method the account has (each
        // enrolled after the entry): only support, with two agents, lifts that lock (S1.12).
        let live: Vec<_> = self.store.factors_of(account).await?.into_iter().filter(|f| f.confirmed_at.is_some()).collect();
        let takes_every_method =
            !live.is_empty() && live.iter().all(|f| f.created_at >= item.at || f.confirmed_at.is_some_and(|at| at >= item.at));
        if (rolls_back_control || takes_every_method) && !stepped_up.is_some_and(|proof| proof.account() == account) {
            return Err(CompromiseError::StepUpRequired);
        }
        let cap = [ThrottleKey {
            key: format!("compromise-activity:{account}"),
            rule: ThrottleRule::Budget { limit: 5, window: 86_400, cooldown: 86_400 },
        }];
        if let Some(wait) = self.deps.claim(&cap).await? {
            return Err(CompromiseError::TooMany(wait));
        }
        let now = self.deps.now();
        let minted = new_report_link(&self.deps, account, event.clone(), now);
        self.store.insert_report_token(&minted.token).await?;
        let report = StoredReport { token_id: minted.token.id.clone(), account_id: account.clone(), event, event_at: item.at };
        self.lock(CompromiseReport { report, via: "activity page" }, ctx).await
    }

    /// Locks the account at once (see [`CompromiseStore::lock_account`]).
    pub async fn lock(&self, report: CompromiseReport, ctx: &RequestContext) -> Result<Locked, CompromiseError> {
        let now = self.deps.now();
        let account = self.store.get_account(report.account()).await?.ok_or(CompromiseError::InvalidToken)?;
        let case_id = new_case_id();
        let reset_link = format!("{}forgot-password", self.deps.base_url);
        let content = self
            .deps
            .composer
            .compose(&Notice::AccountLocked {
                username: account.username.as_str(),
                when: &crate::clock::rfc2822(now),
                case_id: &case_id,
                reset_link: &reset_link,
            })
            .map_err(CompromiseError::Compose)?;
        // The address on file and, when the report reverts an address change, the old one
        // (which the account moves back to).
        let mut to = vec![account.email.as_str().to_owned()];
        if let ReportedEvent::EmailChanged { old_email } = report.event()
            && !to.contains(old_email)
        {
            to.push(old_email.clone());
        }
        let notices =
            to.iter().map(|addr| NewMessage::email(addr, "account_locked", Some(account.id.clone()), content.clone(), now)).collect();
        let kind = report.event().kind();
        let lock = AccountLock {
            case: NewCase {
                id: case_id.clone(),
                kind: "compromise_report",
                account_id: Some(account.id.clone()),
                created_at: now,
                details: format!("Locked from a \"this wasn't me\" link reporting: {kind}."),
            },
            report: report.report,
            notices,
            now,
        };
        let outcome = self.store.lock_account(&lock).await?.ok_or(CompromiseError::InvalidToken)?;
        let via = report.via;
        let detail = format!("reported {kind} from a {via}; case {case_id}; rolled back: {}", outcome.rolled_back);
        self.deps.audit(AuditEvent::AccountLocked, Some(&account.id), ctx, &detail).await?;
        if outcome.two_step_reset_cancelled {
            self.deps.audit(AuditEvent::TwoStepResetCancelled, Some(&account.id), ctx, &format!("by a lock; case {case_id}")).await?;
        }
        let ended = format!("{} ended by a lock", outcome.sessions_ended);
        self.deps.audit(AuditEvent::SessionsRevoked, Some(&account.id), ctx, &ended).await?;
        Ok(Locked {
            case_id,
            sessions_ended: outcome.sessions_ended,
            rolled_back: outcome.rolled_back,
            two_step_reset_cancelled: outcome.two_step_reset_cancelled,
            support_only: outcome.support_only,
        })
    }

    /// The public form: opens a case without locking (anyone can fill it in). The answer is
    /// the same whether or not `login` names an account; limited per address.
    pub async fn report_publicly(&self, login: &LoginIdentifier, message: &str, ctx: &RequestContext) -> Result<(), CompromiseError> {
        // Per address, and per network, so that one sender with a block of addresses (an IPv6
        // /48 holds 65,536 /64s) cannot bury the support queue, where lost-email requests wait.
        let caps = [
            ThrottleKey {
                key: format!("compromise-form:{}", crate::throttle::address_key(ctx.ip)),
                rule: ThrottleRule::Budget { limit: PUBLIC_REPORTS_PER_ADDRESS_PER_HOUR, window: HOUR, cooldown: HOUR },
            },
            ThrottleKey {
                key: format!("compromise-form:net:{}", crate::throttle::network_key(ctx.ip)),
                rule: ThrottleRule::Budget { limit: PUBLIC_REPORTS_PER_NETWORK_PER_DAY, window: DAY, cooldown: HOUR },
            },
        ];
        if let Some(wait) = self.deps.claim(&caps).await? {
            return Err(CompromiseError::TooMany(wait));
        }
        let now = self.deps.now();
        let account = self.store.find_for_login(login.key()).await?.map(|(a, _)| a.id);
        let message: String = message.chars().take(2000).collect();
        let details = format!("Login as typed: {}\n\n{message}", login.key());
        // One open case per account: later reports about it are notes on that case, so
        // reporting a known username over and over adds to one case instead of filling the queue.
        // Either way the report is counted against its case (the first one too) before it is
        // written: the same statements whether or not the login names an account (S2.5).
        let open = self.store.open_public_report_of(account.as_ref()).await?;
        let case_id = open.clone().unwrap_or_else(new_case_id);
        let cap = [ThrottleKey {
            key: format!("compromise-form:case:{case_id}"),
            rule: ThrottleRule::Budget { limit: PUBLIC_REPORTS_PER_CASE_PER_DAY, window: DAY, cooldown: HOUR },
        }];
        let detail = if self.deps.claim(&cap).await?.is_some() {
            format!("public form; case {case_id} has had today's reports")
        } else if open.is_some() {
            let note = format!("Another report from the public form.\n{details}");
            self.store.add_public_report_note(&case_id, &note, now).await?;
            format!("public form; added to case {case_id}")
        } else {
            let case = NewCase { id: case_id, kind: "compromise_form", account_id: account.clone(), created_at: now, details };
            self.store.open_case(&case).await?;
            format!("public form; case {}", case.id)
        };
        self.deps.audit(AuditEvent::CompromiseReported, account.as_ref(), ctx, &detail).await?;
        Ok(())
    }

    pub async fn lock_of(&self, account: &AccountId) -> Result<Option<AccountLockRecord>, StoreError> {
        self.store.lock_of(account).await
    }
}

impl Compromise {
    /// What reporting an activity entry reports, so that the lock rolls it back as the entry's
    /// emailed link would. Entries do not hold the old address or the removed method; the
    /// report token of the entry's own security email does (the old address's copy, for an
    /// address change), and the entry names that token (`report=<id>` in its audit detail),
    /// so an address change moves the account back and a removed method comes back. An entry
    /// that names no token (written by an older version, or by support) is reported as a
    /// security change: the lock still removes every method added since the entry.
    async fn reported_event_of(&self, account: &AccountId, item: &ActivityItem) -> Result<ReportedEvent, StoreError> {
        let wanted = match item.event {
            AuditEvent::LoginSucceeded | AuditEvent::NewDeviceSignIn => return Ok(ReportedEvent::NewDeviceSignIn),
            AuditEvent::PasswordChanged | AuditEvent::PasswordResetCompleted => return Ok(ReportedEvent::PasswordChanged),
            AuditEvent::EmailChanged => "email_changed",
            AuditEvent::FactorRemoved => "method_removed",
            _ => return Ok(ReportedEvent::SecurityChange),
        };
        let Some(token) = &item.report_token else { return Ok(ReportedEvent::SecurityChange) };
        let found = self.store.reported_event_of_token(account, token).await?;
        // Only what the entry itself was: a token of another kind reports nothing.
        Ok(found.filter(|event| event.kind() == wanted).unwrap_or(ReportedEvent::SecurityChange))
    }
}

/// A case number people can read out: "C-" and 10 random base-32 characters.
pub(crate) fn new_case_id() -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let chars: String = crate::keys::random_bytes(10).iter().map(|b| ALPHABET[usize::from(*b) % 32] as char).collect();
    format!("C-{chars}")
}
