//! What a support agent can do to an account (issue 11 §6), with the rules that keep an agent,
//! or someone who fooled one, from taking an account over:
//!
//! - every action needs an [`Agent`] (role, 2-step, recent step-up) and a written reason, is
//!   audited with the agent and emailed to the account's address (and the new one);
//! - sending a reset link, locking, unlocking and revoking sessions are done at once;
//! - resetting 2-step and changing the email follow the two-person rule: proposed by one agent
//!   after two kinds of evidence are on the case's identity checklist, approved by a second,
//!   different agent within 24 hours, bound to the account and the target as proposed. The
//!   approval mints nothing by itself: when the cooling-off period is over, the worker loads
//!   the approved action and [`TwoAgentsApproved`] is made from it, the only value the change
//!   can be applied with. Meanwhile the old address holds a cancel link and the owner's
//!   activity page a cancel button.

use super::{Agent, CaseUpdate, Support, SupportError};
use crate::account::{Account, AccountId, EmailAddress};
use crate::audit::{AuditEvent, RequestContext};
use crate::keys::random_token;
use crate::notice::Notice;
use crate::outbox::NewMessage;
use crate::store::StoreError;
use crate::token::RecoveryToken;
use async_trait::async_trait;
use secrecy::ExposeSecret;

pub use super::MAX_REASON_CHARS;
/// How long a proposal waits for its second agent.
pub const APPROVAL_TTL_SECONDS: i64 = 86_400;
/// What the keyed hash of a cancel link is bound to.
const CANCEL_PURPOSE: &str = "support-action-cancel";

/// A kind of evidence on a case's identity checklist (docs/SECURITY.md, S11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckKind {
    /// Recorded by doorman when a recovery request's contact address answered its code. It
    /// proves who reads that address, nothing about who owns the account: it never counts.
    ContactVerified,
    LastSignIn,
    SignInCountry,
    PayoutMethod,
    AccountAge,
    Other,
}

impl CheckKind {
    /// The kinds an agent records.
    pub const RECORDABLE: [CheckKind; 5] = [Self::LastSignIn, Self::SignInCountry, Self::PayoutMethod, Self::AccountAge, Self::Other];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::ContactVerified => "contact_verified",
            Self::LastSignIn => "last_sign_in",
            Self::SignInCountry => "sign_in_country",
            Self::PayoutMethod => "payout_method",
            Self::AccountAge => "account_age",
            Self::Other => "other",
        }
    }

    /// Any stored kind.
    pub fn from_stored(s: &str) -> Option<Self> {
        std::iter::once(Self::ContactVerified).chain(Self::RECORDABLE).find(|k| k.as_str() == s)
    }

    /// A kind an agent may record (not `contact_verified`).
    pub fn parse_recordable(s: &str) -> Option<Self> {
        Self::RECORDABLE.into_iter().find(|k| k.as_str() == s)
    }

    pub fn in_words(&self) -> &'static str {
        match self {
            Self::ContactVerified => "Contact address verified by code (does not count)",
            Self::LastSignIn => "Knew roughly when they last signed in",
            Self::SignInCountry => "Knew the country they sign in from",
            Self::PayoutMethod => "Knew the payout method's type and bank",
            Self::AccountAge => "Knew roughly when the account was made",
            Self::Other => "Other evidence (described in the note)",
        }
    }

    /// Whether it counts toward the two kinds a two-person action needs.
    pub fn counts(&self) -> bool {
        *self != Self::ContactVerified
    }
}

/// One line of a case's checklist.
#[derive(Debug, Clone)]
pub struct CaseCheck {
    pub kind: CheckKind,
    pub note: String,
    /// The agent's username; `None` for doorman's own checks or a removed account.
    pub agent: Option<String>,
    pub at: i64,
}

pub struct NewCheck {
    pub id: String,
    pub case_id: String,
    pub kind: CheckKind,
    pub note: String,
    pub agent: AccountId,
    pub now: i64,
}

/// What an agent can do to the account a case names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SupportAction {
    SendResetLink,
    Lock,
    Unlock,
    RevokeSessions,
    ResetTwoStep,
    ChangeEmail,
}

impl SupportAction {
    pub const ALL: [SupportAction; 6] =
        [Self::SendResetLink, Self::Lock, Self::Unlock, Self::RevokeSessions, Self::ResetTwoStep, Self::ChangeEmail];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::SendResetLink => "send_reset_link",
            Self::Lock => "lock",
            Self::Unlock => "unlock",
            Self::RevokeSessions => "revoke_sessions",
            Self::ResetTwoStep => "reset_two_step",
            Self::ChangeEmail => "change_email",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// Resetting 2-step and changing the email take two agents and a cooling-off period.
    pub fn needs_two_agents(&self) -> bool {
        matches!(self, Self::ResetTwoStep | Self::ChangeEmail)
    }

    pub fn in_words(&self) -> &'static str {
        match self {
            Self::SendResetLink => "Send a password reset link",
            Self::Lock => "Lock the account",
            Self::Unlock => "Unlock the account (a new password is then required)",
            Self::RevokeSessions => "Sign out every session",
            Self::ResetTwoStep => "Reset 2-step verification",
            Self::ChangeEmail => "Change the email to the case's verified contact address",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionStatus {
    Proposed,
    Approved,
    Applied,
    Cancelled,
    Expired,
    Failed,
}

impl ActionStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Proposed => "awaiting_approval",
            Self::Approved => "approved",
            Self::Applied => "applied",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
            Self::Failed => "failed",
        }
    }
    pub fn from_stored(s: &str) -> Option<Self> {
        Some(match s {
            "proposed" => Self::Proposed,
            "approved" => Self::Approved,
            "applied" => Self::Applied,
            "cancelled" => Self::Cancelled,
            "expired" => Self::Expired,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// A two-person action as stored.
#[derive(Debug, Clone)]
pub struct ProposedAction {
    pub id: String,
    pub case_id: String,
    pub account_id: AccountId,
    pub action: SupportAction,
    /// The new address of an email change, as it was when proposed; empty for a 2-step reset.
    pub target: String,
    pub reason: String,
    pub proposed_by: Option<AccountId>,
    pub proposer: Option<String>,
    pub proposed_at: i64,
    pub expires_at: i64,
    pub approved_by: Option<AccountId>,
    pub approver: Option<String>,
    pub effective_at: Option<i64>,
    pub status: ActionStatus,
}

impl ProposedAction {
    /// The change in words, for its owner.
    pub fn describe(&self) -> String {
        match self.action {
            SupportAction::ChangeEmail => format!("Change the account's email address to {}", self.target),
            other => other.in_words().to_owned(),
        }
    }

    /// Its status as of `now`: a proposal past its 24 hours is expired even before a later
    /// proposal marks it so.
    pub fn status_at(&self, now: i64) -> ActionStatus {
        if self.status == ActionStatus::Proposed && self.expires_at <= now { ActionStatus::Expired } else { self.status }
    }
}

pub struct NewProposal {
    pub id: String,
    pub case_id: String,
    pub account_id: AccountId,
    pub action: SupportAction,
    pub target: String,
    pub reason: String,
    pub agent: AccountId,
    pub now: i64,
}

/// A second agent's approval, with what it writes in the same transaction.
pub struct Approval {
    pub action_id: String,
    pub approver: AccountId,
    pub reason: String,
    pub now: i64,
    pub effective_at: i64,
    pub cancel_hash: String,
    /// The job that applies the action at `effective_at`.
    pub job: crate::jobs::Job,
    pub messages: Vec<NewMessage>,
}

/// What applying an approved action writes, made only from [`TwoAgentsApproved`].
pub struct AppliedAction {
    pub action_id: String,
    pub account_id: AccountId,
    /// The address an email change moves the account to.
    pub new_email: Option<EmailAddress>,
    pub now: i64,
    pub messages: Vec<NewMessage>,
}

/// What happened to an approved action when its time came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutcome {
    Applied,
    /// Cancelled, already applied, or not due: nothing to do.
    NotDue,
    /// The new address belongs to another account by now.
    EmailTaken,
}

#[async_trait]
pub trait SupportActionStore: Send + Sync {
    /// Adds a check to a case that is not resolved.
    async fn add_check(&self, check: &NewCheck) -> Result<CaseUpdate, StoreError>;
    async fn checks_of(&self, case_id: &str) -> Result<Vec<CaseCheck>, StoreError>;
    /// The case's verified contact address, if it has one.
    async fn case_contact(&self, case_id: &str) -> Result<Option<String>, StoreError>;
    /// Stores a proposal, first marking the account's stale proposals expired; `false` when
    /// another action of the account still waits.
    async fn propose_action(&self, proposal: &NewProposal) -> Result<bool, StoreError>;
    async fn support_action(&self, id: &str) -> Result<Option<ProposedAction>, StoreError>;
    async fn actions_of_case(&self, case_id: &str) -> Result<Vec<ProposedAction>, StoreError>;
    /// Approved actions of the account not yet applied, for its owner's activity page.
    async fn pending_actions_of(&self, account: &AccountId) -> Result<Vec<ProposedAction>, StoreError>;
    async fn action_by_cancel_hash(&self, hash: &str) -> Result<Option<ProposedAction>, StoreError>;
    /// In one transaction: approves a proposal that is still proposed, unexpired and not the
    /// approver's own, queues its job and writes the messages; `false` when it was not.
    async fn approve_action(&self, approval: &Approval) -> Result<bool, StoreError>;
    /// Cancels a proposed or approved action, adds `note` to its case (for the agents) and
    /// writes the messages; `false` when it was not waiting any more.
    async fn cancel_action(&self, id: &str, now: i64, note: &str, messages: &[NewMessage]) -> Result<bool, StoreError>;
    /// In one transaction, for an approved action due by `now`: marks it applied, changes the
    /// email when it is an email change, removes every 2-step method and recovery code, ends
    /// every session and device cookie, voids every token but report links, cancels a running
    /// 2-step reset and writes the messages.
    async fn apply_action(&self, applied: &AppliedAction) -> Result<ApplyOutcome, StoreError>;
    async fn mark_action_failed(&self, id: &str, now: i64) -> Result<(), StoreError>;
    /// Locks the account for support: like a "this wasn't me" lock, without a report token or
    /// rollback. Ends sessions and device cookies and voids tokens; returns the sessions ended.
    async fn support_lock(&self, account: &AccountId, case_id: &str, now: i64, messages: &[NewMessage]) -> Result<u64, StoreError>;
    /// Removes the lock and replaces the password with `unusable_hash` (so that unlocking ends
    /// with a new password), ending every session; `false` when it was not locked.
    async fn support_unlock(&self, account: &AccountId, unusable_hash: &str, now: i64) -> Result<bool, StoreError>;
}

/// Proof that two different agents agreed to an action and its cooling-off period is over:
/// made only here, from the stored approval, and spent by [`Support::apply_due_action`].
#[derive(Debug)]
pub struct TwoAgentsApproved {
    action: ProposedAction,
}

impl TwoAgentsApproved {
    fn from_approved(action: ProposedAction, now: i64) -> Option<Self> {
        let two = matches!((&action.proposed_by, &action.approved_by), (Some(p), Some(a)) if p != a);
        let due = action.effective_at.is_some_and(|at| at <= now);
        (action.status == ActionStatus::Approved && two && due).then_some(Self { action })
    }
}

/// What an action request led to.
#[derive(Debug, Clone)]
pub enum ActionOutcome {
    Done,
    AwaitingApproval { action_id: String },
}

/// A cancel link of an approved action, parsed at the edge.
pub struct SupportCancelToken(RecoveryToken);

impl SupportCancelToken {
    pub fn parse(raw: &str) -> Option<Self> {
        RecoveryToken::parse(raw).map(Self)
    }
}

fn checked_text(text: &str, error: SupportError) -> Result<String, SupportError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > MAX_REASON_CHARS || text.chars().any(|c| c.is_control() && c != '\n' && c != '\r') {
        return Err(error);
    }
    Ok(text.to_owned())
}

impl Support {
    fn cancel_hash(&self, token: &RecoveryToken) -> String {
        self.deps.keys.token_hash(CANCEL_PURPOSE, token.expose())
    }

    fn personal(&self, to: &str, account: &Account, kind: &'static str, subject: &str, body: &str) -> Result<NewMessage, SupportError> {
        let content = self
            .deps
            .composer
            .compose(&Notice::Personal { username: account.username.as_str(), subject, body })
            .map_err(SupportError::Compose)?;
        Ok(NewMessage::email(to, kind, Some(account.id.clone()), content, self.deps.now()))
    }

    async fn account_of(&self, case_id: &str) -> Result<Account, SupportError> {
        let case = self.store.case_detail(case_id).await?.ok_or(SupportError::NoSuchCase)?;
        if case.summary.status == "resolved" {
            return Err(SupportError::Resolved);
        }
        let id = case.account_id.ok_or(SupportError::NoAccount)?;
        self.store.get_account(&id).await?.ok_or(SupportError::NoAccount)
    }

    /// Records a check on the case's identity checklist.
    pub async fn record_check(
        &self,
        agent: &Agent,
        case_id: &str,
        kind: &str,
        note: &str,
        ctx: &RequestContext,
    ) -> Result<(), SupportError> {
        let kind = CheckKind::parse_recordable(kind).ok_or(SupportError::InvalidCheckKind)?;
        let note = checked_text(note, SupportError::InvalidNote)?;
        let check = NewCheck {
            id: uuid::Uuid::new_v4().to_string(),
            case_id: case_id.to_owned(),
            kind,
            note,
            agent: agent.account().clone(),
            now: self.deps.now(),
        };
        Result::from(self.store.add_check(&check).await?)?;
        let detail = format!("case={case_id} kind={}", kind.as_str());
        self.deps.audit(AuditEvent::SupportCheckRecorded, Some(agent.account()), ctx, &detail).await?;
        Ok(())
    }

    pub async fn checks(&self, _agent: &Agent, case_id: &str) -> Result<Vec<CaseCheck>, SupportError> {
        Ok(self.store.checks_of(case_id).await?)
    }

    pub async fn actions(&self, _agent: &Agent, case_id: &str) -> Result<Vec<ProposedAction>, SupportError> {
        Ok(self.store.actions_of_case(case_id).await?)
    }

    /// An action on the account the case names: done at once, or proposed for a second agent.
    pub async fn act(
        &self,
        agent: &Agent,
        case_id: &str,
        action: SupportAction,
        reason: &str,
        ctx: &RequestContext,
    ) -> Result<ActionOutcome, SupportError> {
        let reason = checked_text(reason, SupportError::InvalidReason)?;
        let account = self.account_of(case_id).await?;
        // Nobody acts on their own account through the console.
        if &account.id == agent.account() {
            return Err(SupportError::OwnAccount);
        }
        let now = self.deps.now();
        let detail = format!("case={case_id} account={} action={} reason={reason}", account.id.as_str(), action.as_str());
        let told = |subject: &str, what: &str| {
            let body = format!(
                "Our support team {what} on your account, for case {case_id}.\n\nWhen: {}\n\nIf you did not ask support for help, reply to this email or report it at {}report-compromise.",
                crate::clock::rfc2822(now),
                self.deps.base_url
            );
            self.personal(account.email.as_str(), &account, "support_action", subject, &body)
        };
        match action {
            SupportAction::SendResetLink => {
                crate::token::email_reset_link(&self.deps, &*self.store, &account, self.reset_token_ttl_seconds, now)
                    .await
                    .map_err(|e| SupportError::Compose(e.to_string()))?;
            }
            SupportAction::Lock => {
                let notice = told("Your account was locked by support", "locked sign-in and withdrawals")?;
                let ended = self.store.support_lock(&account.id, case_id, now, &[notice]).await?;
                self.deps.audit(AuditEvent::SessionsRevoked, Some(&account.id), ctx, &format!("{ended} ended by a support lock")).await?;
            }
            SupportAction::Unlock => {
                if self.store.lock_of(&account.id).await?.is_some_and(|lock| lock.support_only) {
                    return Err(SupportError::TwoAgentsNeeded);
                }
                let unusable =
                    crate::password::Password::new(random_token(32).expose_secret()).map_err(|e| SupportError::Compose(e.to_string()))?;
                let hash = self.deps.hasher.hash(&unusable).await.map_err(|e| SupportError::Compose(e.to_string()))?;
                if !self.store.support_unlock(&account.id, &hash, now).await? {
                    // A report may have made it a two-agent lock since it was read above.
                    let two_agents = self.store.lock_of(&account.id).await?.is_some_and(|lock| lock.support_only);
                    return Err(if two_agents { SupportError::TwoAgentsNeeded } else { SupportError::NotLocked });
                }
                self.store
                    .enqueue_message(&told(
                        "Your account was unlocked by support",
                        "unlocked sign-in; set a new password with the reset link we send next",
                    )?)
                    .await?;
                crate::token::email_reset_link(&self.deps, &*self.store, &account, self.reset_token_ttl_seconds, now)
                    .await
                    .map_err(|e| SupportError::Compose(e.to_string()))?;
                self.deps.audit(AuditEvent::AccountUnlocked, Some(&account.id), ctx, "support; a new password is required").await?;
            }
            SupportAction::RevokeSessions => {
                let ended = self.store.delete_sessions_of(&account.id).await?;
                self.store.enqueue_message(&told("Support signed out your sessions", "signed out every session")?).await?;
                self.deps.audit(AuditEvent::SessionsRevoked, Some(&account.id), ctx, &format!("{ended} ended by support")).await?;
            }
            SupportAction::ResetTwoStep | SupportAction::ChangeEmail => {
                return self.propose(agent, case_id, &account, action, reason, ctx).await;
            }
        }
        self.deps.audit(AuditEvent::SupportActionDone, Some(agent.account()), ctx, &detail).await?;
        Ok(ActionOutcome::Done)
    }

    async fn propose(
        &self,
        agent: &Agent,
        case_id: &str,
        account: &Account,
        action: SupportAction,
        reason: String,
        ctx: &RequestContext,
    ) -> Result<ActionOutcome, SupportError> {
        let checks = self.store.checks_of(case_id).await?;
        let mut kinds: Vec<CheckKind> = checks.iter().map(|c| c.kind).filter(CheckKind::counts).collect();
        kinds.sort_by_key(|k| k.as_str());
        kinds.dedup();
        if kinds.len() < 2 {
            return Err(SupportError::ChecksMissing);
        }
        let target = match action {
            SupportAction::ChangeEmail => {
                let contact = self.store.case_contact(case_id).await?.ok_or(SupportError::NoContact)?;
                if contact.eq_ignore_ascii_case(account.email.as_str()) {
                    return Err(SupportError::SameEmail);
                }
                contact
            }
            _ => String::new(),
        };
        let proposal = NewProposal {
            id: uuid::Uuid::new_v4().to_string(),
            case_id: case_id.to_owned(),
            account_id: account.id.clone(),
            action,
            target,
            reason: reason.clone(),
            agent: agent.account().clone(),
            now: self.deps.now(),
        };
        if !self.store.propose_action(&proposal).await? {
            return Err(SupportError::ActionWaiting);
        }
        let detail =
            format!("case={case_id} account={} action={} id={} reason={reason}", account.id.as_str(), action.as_str(), proposal.id);
        self.deps.audit(AuditEvent::SupportActionProposed, Some(agent.account()), ctx, &detail).await?;
        Ok(ActionOutcome::AwaitingApproval { action_id: proposal.id })
    }

    /// A second agent approves a proposal; returns when it takes effect. The old address gets
    /// a cancel link, the new one (an email change) a notice.
    pub async fn approve(&self, agent: &Agent, action_id: &str, reason: &str, ctx: &RequestContext) -> Result<i64, SupportError> {
        let reason = checked_text(reason, SupportError::InvalidReason)?;
        let now = self.deps.now();
        let action = self.store.support_action(action_id).await?.ok_or(SupportError::NoSuchAction)?;
        if action.proposed_by.as_ref() == Some(agent.account()) {
            return Err(SupportError::SameAgent);
        }
        if &action.account_id == agent.account() {
            return Err(SupportError::OwnAccount);
        }
        match action.status_at(now) {
            ActionStatus::Proposed => {}
            ActionStatus::Expired => return Err(SupportError::ActionExpired),
            _ => return Err(SupportError::NotAwaitingApproval),
        }
        // Bound to the target as proposed: a contact address that changed since voids it.
        if action.action == SupportAction::ChangeEmail
            && self.store.case_contact(&action.case_id).await?.as_deref() != Some(action.target.as_str())
        {
            return Err(SupportError::TargetChanged);
        }
        let account = self.store.get_account(&action.account_id).await?.ok_or(SupportError::NoAccount)?;
        let effective_at = now + self.change_delay_seconds;
        let cancel = RecoveryToken::generate(&self.deps.keys);
        let when = crate::clock::rfc2822(effective_at);
        let what = match action.action {
            SupportAction::ChangeEmail => format!("change your account's email address to {}", action.target),
            _ => "reset 2-step verification on your account (every method and recovery code will be removed)".to_owned(),
        };
        let body = format!(
            "Our support team approved a request to {what}, for case {}. It takes effect after {when}, and then every session of your account is signed out and 2-step verification must be set up again.\n\nIf you did not ask for this, cancel it now:\n\n{}support-action/cancel?token={}\n\nYou can also cancel it from your account's security activity page.",
            action.case_id,
            self.deps.base_url,
            cancel.expose()
        );
        let mut messages = vec![self.personal(
            account.email.as_str(),
            &account,
            "support_action_approved",
            "A support change to your account is pending",
            &body,
        )?];
        if action.action == SupportAction::ChangeEmail {
            let body = format!(
                "Our support team approved moving an account to this address, for case {}. It takes effect after {when}; we will email you here then.",
                action.case_id
            );
            messages.push(self.personal(&action.target, &account, "support_action_approved", "Your account's new email address", &body)?);
        }
        let approval = Approval {
            action_id: action.id.clone(),
            approver: agent.account().clone(),
            reason: reason.clone(),
            now,
            effective_at,
            cancel_hash: self.cancel_hash(&cancel),
            job: crate::jobs::Job::SupportActionDue(crate::jobs::SupportActionDue { action_id: action.id.clone() }),
            messages,
        };
        if !self.store.approve_action(&approval).await? {
            return Err(SupportError::NotAwaitingApproval);
        }
        let detail = format!(
            "case={} account={} action={} id={} reason={reason}",
            action.case_id,
            action.account_id.as_str(),
            action.action.as_str(),
            action.id
        );
        self.deps.audit(AuditEvent::SupportActionApproved, Some(agent.account()), ctx, &detail).await?;
        Ok(effective_at)
    }

    /// The approved action a cancel link names, for its page (opening it changes nothing).
    pub async fn action_to_cancel(&self, token: &SupportCancelToken) -> Result<ProposedAction, SupportError> {
        let action = self.store.action_by_cancel_hash(&self.cancel_hash(&token.0)).await?.ok_or(SupportError::InvalidToken)?;
        if action.status != ActionStatus::Approved {
            return Err(SupportError::InvalidToken);
        }
        Ok(action)
    }

    /// Cancels an approved action with the link the old address got.
    pub async fn cancel_by_link(&self, token: &SupportCancelToken, ctx: &RequestContext) -> Result<(), SupportError> {
        let action = self.action_to_cancel(token).await?;
        self.cancel(action, "the cancel link in our email", ctx).await
    }

    /// The owner cancels a pending action from their activity page.
    pub async fn cancel_by_owner(&self, owner: &AccountId, action_id: &str, ctx: &RequestContext) -> Result<(), SupportError> {
        let action = self.store.support_action(action_id).await?.filter(|a| &a.account_id == owner).ok_or(SupportError::NoSuchAction)?;
        if action.status != ActionStatus::Approved {
            return Err(SupportError::NotAwaitingApproval);
        }
        self.cancel(action, "your security activity page", ctx).await
    }

    async fn cancel(&self, action: ProposedAction, via: &str, ctx: &RequestContext) -> Result<(), SupportError> {
        let account = self.store.get_account(&action.account_id).await?.ok_or(SupportError::NoAccount)?;
        let body =
            format!("The pending support change to your account (case {}) was cancelled from {via}. Nothing changed.", action.case_id);
        let notice =
            self.personal(account.email.as_str(), &account, "support_action_cancelled", "A support change was cancelled", &body)?;
        let note = format!("The pending {} was cancelled from {via}.", action.action.as_str());
        if !self.store.cancel_action(&action.id, self.deps.now(), &note, &[notice]).await? {
            return Err(SupportError::InvalidToken);
        }
        self.deps.audit(AuditEvent::SupportActionCancelled, Some(&account.id), ctx, &format!("id={} via {via}", action.id)).await?;
        Ok(())
    }

    /// Pending support changes of the owner's account, for their activity page.
    pub async fn pending_for_owner(&self, owner: &AccountId) -> Result<Vec<ProposedAction>, SupportError> {
        Ok(self.store.pending_actions_of(owner).await?)
    }

    /// The worker's step when an approved action's time comes: mints [`TwoAgentsApproved`]
    /// from the stored approval and applies it. Nothing happens for a cancelled action.
    pub async fn apply_due_action(&self, action_id: &str) -> Result<(), SupportError> {
        let now = self.deps.now();
        let Some(action) = self.store.support_action(action_id).await? else { return Ok(()) };
        let Some(proof) = TwoAgentsApproved::from_approved(action, now) else { return Ok(()) };
        self.apply(proof, now).await
    }

    async fn apply(&self, by: TwoAgentsApproved, now: i64) -> Result<(), SupportError> {
        let action = by.action;
        let ctx = RequestContext::system();
        let Some(account) = self.store.get_account(&action.account_id).await? else { return Ok(()) };
        let new_email = match action.action {
            SupportAction::ChangeEmail => {
                // Still bound to the case's contact as proposed.
                if self.store.case_contact(&action.case_id).await?.as_deref() != Some(action.target.as_str()) {
                    self.store.mark_action_failed(&action.id, now).await?;
                    return Ok(());
                }
                Some(EmailAddress::parse(&action.target).map_err(|e| SupportError::Compose(e.to_string()))?)
            }
            _ => None,
        };
        let what = match &new_email {
            Some(email) => format!("changed your account's email address from {} to {}", account.email.as_str(), email.as_str()),
            None => "reset 2-step verification on your account".to_owned(),
        };
        let body = format!(
            "As approved by two of our support agents (case {}), we {what}. Every session was signed out, and every 2-step method and recovery code was removed: set up 2-step verification again after you sign in.\n\nIf you did not ask for this, report it at once at {}report-compromise.",
            action.case_id, self.deps.base_url
        );
        let mut messages =
            vec![self.personal(account.email.as_str(), &account, "support_action_applied", "Support changed your account", &body)?];
        if let Some(email) = &new_email {
            // The person who asked has lost their mailbox, and likely the password with it:
            // "forgot password" now reaches them here, without waiting for an agent.
            let body = format!(
                "As approved by two of our support agents (case {}), this is now your account's email address. Every session \
                 was signed out, and every 2-step method and recovery code was removed: set up 2-step verification again \
                 after you sign in.\n\nIf you do not know your password, set a new one at {}forgot-password with this address.",
                action.case_id, self.deps.base_url
            );
            messages.push(self.personal(email.as_str(), &account, "support_action_applied", "Support changed your account", &body)?);
        }
        let applied = AppliedAction { action_id: action.id.clone(), account_id: account.id.clone(), new_email, now, messages };
        let detail = format!("id={} action={} case={}", action.id, action.action.as_str(), action.case_id);
        match self.store.apply_action(&applied).await? {
            ApplyOutcome::Applied => self.deps.audit(AuditEvent::SupportActionApplied, Some(&account.id), &ctx, &detail).await?,
            ApplyOutcome::EmailTaken => {
                self.store.mark_action_failed(&action.id, now).await?;
                self.deps.audit(AuditEvent::SupportActionFailed, Some(&account.id), &ctx, &format!("{detail} email taken")).await?;
            }
            ApplyOutcome::NotDue => {}
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn approved(proposer: &str, approver: Option<&str>, effective_at: Option<i64>) -> ProposedAction {
        ProposedAction {
            id: "a".into(),
            case_id: "C-1".into(),
            account_id: AccountId::from_stored("owner".to_owned()),
            action: SupportAction::ResetTwoStep,
            target: String::new(),
            reason: "lost phone".into(),
            proposed_by: Some(AccountId::from_stored(proposer.to_owned())),
            proposer: None,
            proposed_at: 0,
            expires_at: APPROVAL_TTL_SECONDS,
            approved_by: approver.map(|a| AccountId::from_stored(a.to_owned())),
            approver: None,
            effective_at,
            status: ActionStatus::Approved,
        }
    }

    /// S11: the proof exists only for two different agents, after the cooling-off period.
    #[test]
    fn s11_two_agents_approved_needs_two_different_agents_and_the_time_to_have_come() {
        assert!(TwoAgentsApproved::from_approved(approved("ana", Some("ben"), Some(100)), 100).is_some());
        assert!(TwoAgentsApproved::from_approved(approved("ana", Some("ben"), Some(100)), 99).is_none(), "too early");
        assert!(TwoAgentsApproved::from_approved(approved("ana", Some("ana"), Some(100)), 100).is_none(), "one agent twice");
        assert!(TwoAgentsApproved::from_approved(approved("ana", None, Some(100)), 100).is_none(), "not approved");
        let mut cancelled = approved("ana", Some("ben"), Some(100));
        cancelled.status = ActionStatus::Cancelled;
        assert!(TwoAgentsApproved::from_approved(cancelled, 100).is_none(), "cancelled");
    }

    #[test]
    fn contact_verified_is_never_recorded_by_hand_and_never_counts() {
        assert_eq!(CheckKind::parse_recordable("contact_verified"), None);
        assert_eq!(CheckKind::from_stored("contact_verified"), Some(CheckKind::ContactVerified));
        assert!(!CheckKind::ContactVerified.counts());
        assert!(CheckKind::RECORDABLE.iter().all(CheckKind::counts));
    }
}
