//! Proofs that a sensitive change was authorised (checklist S5.4, S7.6). A core operation
//! that needs one takes it as an argument, so a caller cannot reach the operation without
//! the check: the compiler keeps the rule, not a reviewer.
//!
//! Today there is one proof, [`SteppedUp`]: this session verified recently. Other ways to
//! authorise a change get their own proof type beside it, minted only where their check
//! happens, never by making a `SteppedUp` where no step-up happened; for example
//! `WaitElapsed` (a delayed recovery whose waiting period is over) or `TwoAgentsApproved`
//! (two support agents agreed). An operation that accepts several takes an enum of them.

use crate::account::AccountId;
use crate::factors::MethodView;
use crate::session::{SessionRecord, SessionStage};

/// Proof that a session verified recently (its login, second step or step-up is inside
/// the step-up window). Private fields and no public constructor: only
/// `TwoStep::check_step_up` makes one, from the session itself.
#[derive(Debug)]
pub struct SteppedUp {
    account: AccountId,
    verified_at: i64,
}

impl SteppedUp {
    /// Whose session stepped up.
    pub fn account(&self) -> &AccountId {
        &self.account
    }

    /// When that session last verified (Unix seconds).
    pub fn verified_at(&self) -> i64 {
        self.verified_at
    }

    /// Refuses a proof made by another account's session: an operation on an account needs
    /// that account's own step-up.
    pub fn check_owner(&self, account: &AccountId) -> Result<(), NotYourProof> {
        if &self.account == account { Ok(()) } else { Err(NotYourProof) }
    }
}

/// How recent a verification must be (S7.6). The one place a [`SteppedUp`] is made.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StepUpWindow {
    pub(crate) seconds: i64,
}

impl StepUpWindow {
    /// The proof, when the session's last verification is inside the window.
    pub(crate) fn check(&self, session: &SessionRecord, now: i64) -> Option<SteppedUp> {
        (session.stage == SessionStage::Full && now - session.verified_at <= self.seconds)
            .then(|| SteppedUp { account: session.account_id.clone(), verified_at: session.verified_at })
    }
}

/// The session did not verify recently: what it may step up with.
#[derive(Debug, Clone)]
pub struct StepUpRequired {
    /// Whether the account has 2-step on. When off, the password is the step-up.
    pub two_step_enabled: bool,
    /// The methods to offer: the strong ones, never the security question (S6.1). Empty
    /// when 2-step is off, or when it is on and nothing can be used here.
    pub methods: Vec<MethodView>,
}

impl StepUpRequired {
    /// 2-step is on, yet no method can be used on this server (a phone without an SMS
    /// provider): the password is no substitute (issue 8).
    pub fn stranded(&self) -> bool {
        self.two_step_enabled && self.methods.is_empty()
    }
}

/// A proof was made by another account's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("This verification belongs to another account.")]
pub struct NotYourProof;

/// Proof that a new security question may be set without a step-up: the person followed a
/// live "Forgot your answer?" link emailed to the account's address and then verified a
/// strong method (never the question) bound to that link. Private fields, no public
/// constructor: only `AnswerReset::complete` makes one, after both checks.
#[derive(Debug)]
pub struct AnswerResetProof {
    account: AccountId,
    token_id: String,
}

impl AnswerResetProof {
    /// Made only where the link and the method were both checked (crates/core/src/answer_reset.rs).
    pub(crate) fn after_link_and_method(account: AccountId, token_id: String) -> Self {
        Self { account, token_id }
    }

    pub fn account(&self) -> &AccountId {
        &self.account
    }

    /// The emailed link this proof spends.
    pub fn token_id(&self) -> &str {
        &self.token_id
    }

    pub fn check_owner(&self, account: &AccountId) -> Result<(), NotYourProof> {
        if &self.account == account { Ok(()) } else { Err(NotYourProof) }
    }
}

/// What may authorise a new security question: a step-up (Security settings), or the
/// emailed link plus another method ("Forgot your answer?").
#[derive(Debug)]
pub enum QuestionChange<'a> {
    SteppedUp(&'a SteppedUp),
    AnswerReset(&'a AnswerResetProof),
}

impl QuestionChange<'_> {
    pub fn check_owner(&self, account: &AccountId) -> Result<(), NotYourProof> {
        match self {
            Self::SteppedUp(proof) => proof.check_owner(account),
            Self::AnswerReset(proof) => proof.check_owner(account),
        }
    }
}
