//! The support console (issue 11 §6), first slice: who is an agent, and the queue of open
//! cases (compromise reports, recovery requests, running 2-step resets) with claim, comment
//! and resolve.
//!
//! Every operation takes an [`Agent`]: proof that the caller holds the `support` or `admin`
//! role, has 2-step on, and stepped up recently. It is made only by [`Support::agent`], from a
//! [`SteppedUp`] of the same account, so no console operation can be reached without the
//! three checks.

use crate::account::AccountId;
use crate::audit::{AuditEvent, RequestContext};
use crate::case_link::RequesterNotice;
use crate::deps::Deps;
use crate::roles::Role;
use crate::step_up::SteppedUp;
use crate::store::StoreError;
use crate::throttle::{ThrottleKey, ThrottleRule};
use crate::verifier::Verifier;
use async_trait::async_trait;
use std::sync::Arc;

crate::storage_trait! {
    /// The storage `Support` reads and writes.
    pub trait SupportStorage:
        crate::store::AccountStore,
        crate::store::OutboxStore,
        crate::store::SessionStore,
        crate::roles::RoleStore,
        SupportStore,
        actions::SupportActionStore,
        crate::store::AuditStore,
        crate::factors::FactorStore,
        crate::compromise::CompromiseStore,
        crate::token::RecoveryStore,
}

pub mod actions;
pub mod view;

/// Longest reason or checklist note, in characters.
pub const MAX_REASON_CHARS: usize = 2000;

/// Longest comment an agent may write, in characters; a reply to the requester too.
pub const MAX_COMMENT_CHARS: usize = 4000;
/// Replies one case takes per day: each is an email to an address the requester chose.
pub const REPLIES_PER_DAY: i64 = 20;
/// Most cases the queue shows at once (oldest first).
pub const QUEUE_LIMIT: i64 = 200;

/// One line of the queue.
#[derive(Debug, Clone)]
pub struct CaseSummary {
    pub id: String,
    /// `compromise_report`, `recovery_request`, `two_step_reset`, ...
    pub kind: String,
    /// `open`, `claimed` (cases); `requested`, `waiting` (2-step resets).
    pub status: String,
    pub created_at: i64,
    /// The username of the agent who claimed it.
    pub claimed_by: Option<String>,
    /// The requester's note is the case's newest: they are waiting for support.
    pub requester_wrote_last: bool,
}

/// A case with what was written on it.
#[derive(Debug, Clone)]
pub struct CaseDetail {
    pub summary: CaseSummary,
    pub account_id: Option<AccountId>,
    /// What the report or request said when the case was opened.
    pub details: String,
    /// The verified contact address replies go to (recovery requests only).
    pub contact: Option<String>,
    pub notes: Vec<CaseNote>,
}

#[derive(Debug, Clone)]
pub struct CaseNote {
    pub at: i64,
    /// The username of the agent who wrote it (`None` when that account is gone).
    pub agent: Option<String>,
    pub body: String,
    /// Written to the requester (shown on their status page and emailed), not among agents.
    pub to_requester: bool,
}

/// What a claim or a resolve found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseUpdate {
    Done,
    NoSuchCase,
    /// Already resolved: nothing changes any more.
    Resolved,
    /// Claimed by another agent.
    ClaimedByOther,
}

#[async_trait]
pub trait SupportStore: Send + Sync {
    /// Open and claimed cases, and running 2-step resets, oldest first.
    async fn open_cases(&self, limit: i64) -> Result<Vec<CaseSummary>, StoreError>;
    async fn case_detail(&self, id: &str) -> Result<Option<CaseDetail>, StoreError>;
    /// Claims a case that is not resolved and not claimed by another agent.
    async fn claim_case(&self, id: &str, agent: &AccountId, now: i64) -> Result<CaseUpdate, StoreError>;
    /// Adds a note to a case that is not resolved.
    async fn add_agent_note(&self, id: &str, agent: &AccountId, body: &str, now: i64) -> Result<CaseUpdate, StoreError>;
    /// Resolves a case that is not resolved and not claimed by another agent, and writes
    /// `notice` (its requester's email and status link) in the same transaction.
    async fn resolve_case(&self, id: &str, agent: &AccountId, notice: Option<&RequesterNotice>, now: i64)
    -> Result<CaseUpdate, StoreError>;
    /// Writes the agent's reply on a case that is not resolved and not claimed by another
    /// agent, claims it for them, and writes `notice` (the reply's email and status link),
    /// all in one transaction; `NoSuchCase` when the case's contact is not `notice.contact`.
    async fn reply_to_requester(
        &self,
        id: &str,
        agent: &AccountId,
        body: &str,
        notice: &RequesterNotice,
        now: i64,
    ) -> Result<CaseUpdate, StoreError>;
    /// Every case of the account, newest first.
    async fn cases_of_account(&self, account: &AccountId) -> Result<Vec<CaseSummary>, StoreError>;
}

/// Proof that the caller may use the console: the `support` or `admin` role, 2-step on,
/// and a recent step-up. Private fields, no public constructor: only [`Support::agent`].
#[derive(Debug)]
pub struct Agent {
    account: AccountId,
}

impl Agent {
    pub fn account(&self) -> &AccountId {
        &self.account
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SupportError {
    #[error("This page is for support agents only.")]
    NotAgent,
    #[error("A support agent's account must have 2-step verification on. Turn it on in Security settings first.")]
    TwoStepRequired,
    #[error("There is no such case.")]
    NoSuchCase,
    #[error("This case names no account.")]
    NoAccount,
    #[error("Only the username and the email can be revealed.")]
    InvalidField,
    #[error("This case is already resolved.")]
    Resolved,
    #[error("Another agent has claimed this case.")]
    ClaimedByOther,
    #[error("Write a comment of at most {MAX_COMMENT_CHARS} characters.")]
    InvalidComment,
    #[error("Write a reply of at most {MAX_COMMENT_CHARS} characters.")]
    InvalidReply,
    #[error("This case has no verified contact address to write to: only recovery requests have one.")]
    NoRequester,
    #[error("This case had {REPLIES_PER_DAY} replies today. Write again in {}.", crate::clock::in_words(*.0))]
    TooManyReplies(i64),
    #[error("Choose what was checked: last_sign_in, sign_in_country, payout_method, account_age or other.")]
    InvalidCheckKind,
    #[error("Write what was checked and what the person said, in at most {} characters.", MAX_REASON_CHARS)]
    InvalidNote,
    #[error("Write the reason for this action, in at most {} characters.", MAX_REASON_CHARS)]
    InvalidReason,
    #[error("Choose an action: send_reset_link, lock, unlock, revoke_sessions, reset_two_step or change_email.")]
    InvalidAction,
    #[error("Agents cannot act on their own account from the console.")]
    OwnAccount,
    #[error("This account is not locked.")]
    NotLocked,
    /// S11.4: the lock took away every 2-step method, so unlocking it hands the account to
    /// whoever reads its email: as removing 2-step does, that takes two agents.
    #[error(
        "This lock took away every 2-step method the account had, so unlocking it hands the account to whoever reads its email: that takes two agents. Record the identity checks and propose \"Reset 2-step verification\"; once a second agent approves and the cooling-off ends, it unlocks the account."
    )]
    TwoAgentsNeeded,
    #[error(
        "Record at least two checks of different kinds on the case's identity checklist first (the verified contact address does not count)."
    )]
    ChecksMissing,
    #[error("This case has no verified contact address to move the account to.")]
    NoContact,
    #[error("The account already uses the case's contact address.")]
    SameEmail,
    #[error("Another support action on this account is waiting for approval or its cooling-off period. Cancel it or wait for it first.")]
    ActionWaiting,
    #[error("There is no such support action.")]
    NoSuchAction,
    #[error("A second, different agent must approve this action: you proposed it.")]
    SameAgent,
    #[error("This proposal waited more than 24 hours for approval and has expired. Propose it again.")]
    ActionExpired,
    #[error("This action is not waiting for approval any more.")]
    NotAwaitingApproval,
    #[error("The case's contact address changed after the action was proposed, so the approval no longer matches it. Propose it again.")]
    TargetChanged,
    #[error("This link is not valid any more: the change was already cancelled or applied, or the link is wrong.")]
    InvalidToken,
    #[error("composing a message failed: {0}")]
    Compose(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<CaseUpdate> for Result<(), SupportError> {
    fn from(update: CaseUpdate) -> Self {
        match update {
            CaseUpdate::Done => Ok(()),
            CaseUpdate::NoSuchCase => Err(SupportError::NoSuchCase),
            CaseUpdate::Resolved => Err(SupportError::Resolved),
            CaseUpdate::ClaimedByOther => Err(SupportError::ClaimedByOther),
        }
    }
}

/// The support console's operations.
#[derive(Debug, Clone)]
pub struct Support {
    pub(crate) deps: Deps,
    pub(crate) store: Arc<dyn SupportStorage>,
    verifier: Verifier,
    /// Sends the reset links support actions send.
    /// How long a reset link an agent sends stays valid.
    pub(crate) reset_token_ttl_seconds: i64,
    /// How long an approved two-person action waits before it applies.
    pub(crate) change_delay_seconds: i64,
}

impl Support {
    pub fn new(
        deps: Deps,
        store: Arc<dyn SupportStorage>,
        verifier: Verifier,
        reset_token_ttl_seconds: i64,
        change_delay_seconds: i64,
    ) -> Self {
        Self { store, deps, verifier, reset_token_ttl_seconds, change_delay_seconds }
    }

    pub fn change_delay_seconds(&self) -> i64 {
        self.change_delay_seconds
    }

    /// Whether the account may use the console at all: the role, then 2-step. Checked
    /// before the step-up, so other accounts are refused (403) without being asked to step up.
    pub async fn admit(&self, account: &AccountId) -> Result<(), SupportError> {
        let roles = self.store.roles_of(account).await?;
        if !roles.iter().any(|r| matches!(r, Role::Support | Role::Admin)) {
            return Err(SupportError::NotAgent);
        }
        if !self.verifier.two_step_enabled(account).await? {
            return Err(SupportError::TwoStepRequired);
        }
        Ok(())
    }

    /// The console's proof, from the account's own recent step-up.
    pub async fn agent(&self, proof: &SteppedUp) -> Result<Agent, SupportError> {
        self.admit(proof.account()).await?;
        Ok(Agent { account: proof.account().clone() })
    }

    pub async fn queue(&self, _agent: &Agent) -> Result<Vec<CaseSummary>, SupportError> {
        Ok(self.store.open_cases(QUEUE_LIMIT).await?)
    }

    pub async fn case(&self, _agent: &Agent, id: &str) -> Result<CaseDetail, SupportError> {
        self.store.case_detail(id).await?.ok_or(SupportError::NoSuchCase)
    }

    pub async fn claim(&self, agent: &Agent, id: &str, ctx: &RequestContext) -> Result<(), SupportError> {
        let update = self.store.claim_case(id, &agent.account, self.deps.now()).await?;
        Result::from(update)?;
        self.deps.audit(AuditEvent::SupportCaseClaimed, Some(&agent.account), ctx, &format!("case={id}")).await?;
        Ok(())
    }

    pub async fn comment(&self, agent: &Agent, id: &str, text: &str, ctx: &RequestContext) -> Result<(), SupportError> {
        let body = text.trim();
        if body.is_empty() || body.chars().count() > MAX_COMMENT_CHARS {
            return Err(SupportError::InvalidComment);
        }
        let update = self.store.add_agent_note(id, &agent.account, body, self.deps.now()).await?;
        Result::from(update)?;
        self.deps.audit(AuditEvent::SupportCaseCommented, Some(&agent.account), ctx, &format!("case={id}")).await?;
        Ok(())
    }

    /// Resolves the case; a case with a contact address tells its requester, with a link to
    /// read what support wrote.
    pub async fn resolve(&self, agent: &Agent, id: &str, ctx: &RequestContext) -> Result<(), SupportError> {
        let notice = match self.store.case_contact(id).await? {
            Some(contact) => {
                let body = format!(
                    "Support has closed your case {id}.\n\nWhat support wrote to you is on your case's page. If you still \
                     cannot get into your account, send a new recovery request at {base}recovery-request",
                    base = self.deps.base_url
                );
                let subject = format!("Your case {id} is closed");
                Some(
                    RequesterNotice::compose(&self.deps, &contact, "support_case_closed", &subject, &body)
                        .map_err(SupportError::Compose)?,
                )
            }
            None => None,
        };
        let update = self.store.resolve_case(id, &agent.account, notice.as_ref(), self.deps.now()).await?;
        Result::from(update)?;
        self.deps.audit(AuditEvent::SupportCaseResolved, Some(&agent.account), ctx, &format!("case={id}")).await?;
        Ok(())
    }

    /// Writes to the case's requester: the reply is shown on their status page and emailed
    /// to the verified contact address with a fresh link to it. The requester has proved only
    /// that they read that address, not that they own the account, which the page reminds
    /// the agent of. A reply claims an unclaimed case.
    pub async fn reply(&self, agent: &Agent, id: &str, text: &str, ctx: &RequestContext) -> Result<(), SupportError> {
        let body = text.trim();
        if body.is_empty() || body.chars().count() > MAX_COMMENT_CHARS {
            return Err(SupportError::InvalidReply);
        }
        let Some(contact) = self.store.case_contact(id).await? else {
            return Err(match self.store.case_detail(id).await? {
                Some(_) => SupportError::NoRequester,
                None => SupportError::NoSuchCase,
            });
        };
        let mail = format!("Support wrote about your case {id}:\n\n{body}");
        let subject = format!("Support replied on your case {id}");
        let notice = RequesterNotice::compose(&self.deps, &contact, "support_reply", &subject, &mail).map_err(SupportError::Compose)?;
        let cap = [ThrottleKey {
            key: format!("case-reply:{id}"),
            rule: ThrottleRule::Budget { limit: REPLIES_PER_DAY, window: 24 * 3600, cooldown: 3600 },
        }];
        if let Some(wait) = self.deps.claim(&cap).await? {
            return Err(SupportError::TooManyReplies(wait));
        }
        let written = self.store.reply_to_requester(id, &agent.account, body, &notice, self.deps.now()).await;
        if !matches!(written, Ok(CaseUpdate::Done)) {
            // Only a reply that was sent counts toward the case's day: another agent's
            // refused attempt, or a failed write, must not use up the budget.
            let [cap] = cap;
            self.deps.store.release_attempt(&[cap.key]).await?;
        }
        Result::from(written?)?;
        self.deps.audit(AuditEvent::SupportCaseReplied, Some(&agent.account), ctx, &format!("case={id}")).await?;
        Ok(())
    }
}
