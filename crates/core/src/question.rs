//! Setting a security question (checklist S6.1-S6.3, S6.5, S6.6), shared by Security
//! settings (after a step-up, `TwoStep`) and "Forgot your answer?" (after the emailed link
//! and another method, `AnswerReset`): the same checks of the answer, then the question
//! replaces the old one and the owner is told.

use crate::account::Account;
use crate::audit::{AuditEvent, RequestContext};
use crate::factors::history::ChangedBy;
use crate::factors::{AnswerError, FactorKind, FactorRecord, FactorSecret, SecurityAnswer, check_answer, question_text};
use crate::password::{Password, Verified};
use crate::step_up::QuestionChange;
use crate::throttle::{ThrottleKey, ThrottleRule};
use crate::verifier::{TwoStepError, Verifier};

/// A question and answer that passed every check, hashed, ready to be installed.
pub(crate) struct CheckedQuestion {
    question_id: String,
    secret: FactorSecret,
}

/// S6.1-S6.3: a question from the list, a non-trivial answer that is not personal nor the
/// password, only beside a real method. Changes nothing but the answer-vs-password counter.
pub(crate) async fn check_question(
    verifier: &Verifier,
    account: &Account,
    question_id: &str,
    answer: &SecurityAnswer,
) -> Result<CheckedQuestion, TwoStepError> {
    let deps = &verifier.deps;
    // While a 2-step reset waits, methods do not change, whatever the proof (issue 11 §2).
    crate::reset_hold::refuse_while_waiting(&*verifier.store, &account.id).await??;
    question_text(question_id).ok_or(AnswerError::UnknownQuestion)?;
    let factors = verifier.store.factors_of(&account.id).await?;
    let has_real = factors.iter().any(|f| f.confirmed_at.is_some() && !matches!(f.kind, FactorKind::SecurityQuestion));
    if !has_real {
        return Err(TwoStepError::QuestionNeedsAnotherMethod);
    }
    let normalised = answer.normalised();
    check_answer(normalised, &[account.username.as_str(), account.email.as_str(), account.email.local_part()])?;
    // S6.3: not the password either, as typed or as normalised. This compares a typed
    // value with the password, so it is counted first (S3.7): nobody can use it to guess
    // the password.
    let oracle = [ThrottleKey {
        key: format!("answer-vs-password:{}", account.id),
        rule: ThrottleRule::Budget { limit: 10, window: 86_400, cooldown: 86_400 },
    }];
    if let Some(wait) = deps.claim(&oracle).await? {
        return Err(TwoStepError::Throttled(wait));
    }
    let stored = verifier.store.find_for_login(&account.username.key()).await?.map(|(_, hash)| hash);
    for candidate in [answer.typed(), normalised] {
        if let Ok(candidate) = Password::new(candidate)
            && deps.hasher.verify(&candidate, stored.as_deref()).await? != Verified::No
        {
            return Err(AnswerError::Personal.into());
        }
    }
    let hash = deps.hasher.hash(&Password::new(normalised).map_err(|_| AnswerError::TooLong)?).await?;
    Ok(CheckedQuestion { question_id: question_id.to_owned(), secret: FactorSecret::from(hash) })
}

/// Replaces the account's question with the checked one (one question at a time), audited
/// and notified (S6.5). Takes the proof that authorised it.
pub(crate) async fn install_question(
    verifier: &Verifier,
    by: QuestionChange<'_>,
    account: &Account,
    checked: CheckedQuestion,
    ctx: &RequestContext,
) -> Result<String, TwoStepError> {
    by.check_owner(&account.id)?;
    let deps = &verifier.deps;
    let now = deps.clock.unix();
    let changed_by = match by {
        QuestionChange::SteppedUp(_) => ChangedBy::Owner,
        QuestionChange::AnswerReset(_) => ChangedBy::ForgotAnswer,
    };
    for old in verifier.store.factors_of(&account.id).await?.iter().filter(|f| f.kind == FactorKind::SecurityQuestion) {
        verifier.store.remove_factor(&account.id, &old.id, now, changed_by).await?;
    }
    let factor = FactorRecord {
        id: uuid::Uuid::new_v4().to_string(),
        account_id: account.id.clone(),
        kind: FactorKind::SecurityQuestion,
        label: checked.question_id,
        secret: checked.secret,
        is_default: false,
        confirmed_at: None,
        last_used_step: None,
        created_at: now,
    };
    verifier.store.insert_factor(&factor).await?;
    verifier.store.confirm_factor(&account.id, &factor.id, now, changed_by).await?;
    let (detail, change) = match by {
        QuestionChange::SteppedUp(_) => ("security_question", format!("{} was added as a 2-step verification method.", FactorKind::SecurityQuestion.title())),
        QuestionChange::AnswerReset(_) => (
            "security_question; forgot answer",
            "Your security question and answer were changed from the \"Forgot your answer?\" link we emailed you, after another 2-step method was verified.".to_owned(),
        ),
    };
    deps.audit(AuditEvent::FactorAdded, Some(&account.id), ctx, detail).await?;
    verifier.notify(account, &change, ctx).await?;
    Ok(factor.id)
}
