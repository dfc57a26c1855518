//! The audit log (checklist S10): what happened, to which account, from where. Later
//! issues add events; the support console and the user's activity page read it.

use crate::account::AccountId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditEvent {
    AccountCreated,
    LoginSucceeded,
    LoginFailed,
    LoginThrottled,
    Logout,
    PasswordRehashed,
    PasswordResetRequested,
    PasswordResetCompleted,
    SessionsRevoked,
    EmailSent,
    EmailFailed,
    SmsSent,
    SmsFailed,
    RoleGranted,
    RoleRevoked,
    HelpArticleSaved,
    BannersChanged,
    FactorAdded,
    FactorRemoved,
    RecoveryCodesRegenerated,
    RecoveryCodeUsed,
    SecondFactorFailed,
    SecondFactorSucceeded,
    TotpReplayed,
    CodeSent,
    SteppedUp,
    PasswordAccepted,
    WithdrawalSubmitted,
    EmailChangeRequested,
    EmailChanged,
    PasswordChanged,
    PasswordChangeFailed,
    AccountLocked,
    AccountUnlocked,
    LoginRefusedLocked,
    CompromiseReported,
    TwoStepResetRequested,
    TwoStepResetStarted,
    TwoStepResetCancelled,
    TwoStepResetCompleted,
    TwoStepResetRefused,
    AnswerResetRequested,
    AnswerResetCompleted,
    RecoveryRequestSubmitted,
    RecoveryRequestConfirmed,
    CaseNoteAdded,
    NewDeviceSignIn,
    SupportCaseClaimed,
    SupportCaseCommented,
    /// An agent wrote to a case's requester (emailed to the verified contact address).
    SupportCaseReplied,
    SupportCaseResolved,
    SupportFieldRevealed,
    SupportCheckRecorded,
    SupportActionDone,
    SupportActionProposed,
    SupportActionApproved,
    SupportActionCancelled,
    SupportActionApplied,
    SupportActionFailed,
}

impl AuditEvent {
    pub const ALL: [AuditEvent; 59] = [
        Self::AccountCreated,
        Self::LoginSucceeded,
        Self::LoginFailed,
        Self::LoginThrottled,
        Self::Logout,
        Self::PasswordRehashed,
        Self::PasswordResetRequested,
        Self::PasswordResetCompleted,
        Self::SessionsRevoked,
        Self::EmailSent,
        Self::EmailFailed,
        Self::SmsSent,
        Self::SmsFailed,
        Self::RoleGranted,
        Self::RoleRevoked,
        Self::HelpArticleSaved,
        Self::BannersChanged,
        Self::FactorAdded,
        Self::FactorRemoved,
        Self::RecoveryCodesRegenerated,
        Self::RecoveryCodeUsed,
        Self::SecondFactorFailed,
        Self::SecondFactorSucceeded,
        Self::TotpReplayed,
        Self::CodeSent,
        Self::SteppedUp,
        Self::PasswordAccepted,
        Self::WithdrawalSubmitted,
        Self::EmailChangeRequested,
        Self::EmailChanged,
        Self::PasswordChanged,
        Self::PasswordChangeFailed,
        Self::AccountLocked,
        Self::AccountUnlocked,
        Self::LoginRefusedLocked,
        Self::CompromiseReported,
        Self::TwoStepResetRequested,
        Self::TwoStepResetStarted,
        Self::TwoStepResetCancelled,
        Self::TwoStepResetCompleted,
        Self::TwoStepResetRefused,
        Self::AnswerResetRequested,
        Self::AnswerResetCompleted,
        Self::RecoveryRequestSubmitted,
        Self::RecoveryRequestConfirmed,
        Self::CaseNoteAdded,
        Self::NewDeviceSignIn,
        Self::SupportCaseClaimed,
        Self::SupportCaseCommented,
        Self::SupportCaseReplied,
        Self::SupportCaseResolved,
        Self::SupportFieldRevealed,
        Self::SupportCheckRecorded,
        Self::SupportActionDone,
        Self::SupportActionProposed,
        Self::SupportActionApproved,
        Self::SupportActionCancelled,
        Self::SupportActionApplied,
        Self::SupportActionFailed,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::AccountCreated => "account_created",
            Self::LoginSucceeded => "login_succeeded",
            Self::LoginFailed => "login_failed",
            Self::LoginThrottled => "login_throttled",
            Self::Logout => "logout",
            Self::PasswordRehashed => "password_rehashed",
            Self::PasswordResetRequested => "password_reset_requested",
            Self::PasswordResetCompleted => "password_reset_completed",
            Self::SessionsRevoked => "sessions_revoked",
            Self::EmailSent => "email_sent",
            Self::EmailFailed => "email_failed",
            Self::SmsSent => "sms_sent",
            Self::SmsFailed => "sms_failed",
            Self::RoleGranted => "role_granted",
            Self::RoleRevoked => "role_revoked",
            Self::HelpArticleSaved => "help_article_saved",
            Self::BannersChanged => "banners_changed",
            Self::FactorAdded => "factor_added",
            Self::FactorRemoved => "factor_removed",
            Self::RecoveryCodesRegenerated => "recovery_codes_regenerated",
            Self::RecoveryCodeUsed => "recovery_code_used",
            Self::SecondFactorFailed => "second_factor_failed",
            Self::SecondFactorSucceeded => "second_factor_succeeded",
            Self::TotpReplayed => "totp_replayed",
            Self::CodeSent => "code_sent",
            Self::SteppedUp => "stepped_up",
            Self::PasswordAccepted => "password_accepted",
            Self::WithdrawalSubmitted => "withdrawal_submitted",
            Self::EmailChangeRequested => "email_change_requested",
            Self::EmailChanged => "email_changed",
            Self::PasswordChanged => "password_changed",
            Self::PasswordChangeFailed => "password_change_failed",
            Self::AccountLocked => "account_locked",
            Self::AccountUnlocked => "account_unlocked",
            Self::LoginRefusedLocked => "login_refused_locked",
            Self::CompromiseReported => "compromise_reported",
            Self::TwoStepResetRequested => "two_step_reset_requested",
            Self::TwoStepResetStarted => "two_step_reset_started",
            Self::TwoStepResetCancelled => "two_step_reset_cancelled",
            Self::TwoStepResetCompleted => "two_step_reset_completed",
            Self::TwoStepResetRefused => "two_step_reset_refused",
            Self::AnswerResetRequested => "answer_reset_requested",
            Self::AnswerResetCompleted => "answer_reset_completed",
            Self::RecoveryRequestSubmitted => "recovery_request_submitted",
            Self::RecoveryRequestConfirmed => "recovery_request_confirmed",
            Self::CaseNoteAdded => "case_note_added",
            Self::NewDeviceSignIn => "new_device_sign_in",
            Self::SupportCaseClaimed => "support_case_claimed",
            Self::SupportCaseCommented => "support_case_commented",
            Self::SupportCaseReplied => "support_case_replied",
            Self::SupportCaseResolved => "support_case_resolved",
            Self::SupportFieldRevealed => "support_field_revealed",
            Self::SupportCheckRecorded => "support_check_recorded",
            Self::SupportActionDone => "support_action_done",
            Self::SupportActionProposed => "support_action_proposed",
            Self::SupportActionApproved => "support_action_approved",
            Self::SupportActionCancelled => "support_action_cancelled",
            Self::SupportActionApplied => "support_action_applied",
            Self::SupportActionFailed => "support_action_failed",
        }
    }
}

/// Who asked, from where: carried from the web edge into every operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    pub ip: std::net::IpAddr,
    pub user_agent: String,
    pub request_id: String,
    /// The country a trusted proxy vouches for (`DOORMAN_COUNTRY_HEADER`), when configured.
    pub country: Option<crate::account::Country>,
}

impl RequestContext {
    /// For actions taken on the command line.
    pub fn cli() -> Self {
        Self { ip: std::net::IpAddr::from([127, 0, 0, 1]), user_agent: "doorman-cli".into(), request_id: String::new(), country: None }
    }

    /// For what doorman does on its own when a time comes (the worker).
    pub fn system() -> Self {
        Self { ip: std::net::IpAddr::from([127, 0, 0, 1]), user_agent: "doorman".into(), request_id: String::new(), country: None }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub at: i64,
    pub event: AuditEvent,
    pub account_id: Option<AccountId>,
    pub ip: String,
    pub user_agent: String,
    pub request_id: String,
    /// A short, secret-free note (e.g. "password", "unknown_account").
    pub detail: String,
}

impl AuditRecord {
    pub fn new(at: i64, event: AuditEvent, account_id: Option<AccountId>, ctx: &RequestContext, detail: &str) -> Self {
        Self {
            at,
            event,
            account_id,
            ip: ctx.ip.to_string(),
            user_agent: ctx.user_agent.chars().take(512).collect(),
            request_id: ctx.request_id.clone(),
            detail: detail.to_owned(),
        }
    }
}

/// The chain's state where pruned events were cut off (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCheckpoint {
    /// The last pruned event.
    pub event_id: i64,
    pub chain_hash: String,
    pub event_at: i64,
    pub created_at: i64,
    /// `audit_chain::checkpoint_seal` of the fields above it.
    pub seal: String,
}

/// A stored event with its place in the hash chain (`audit_chain`).
#[derive(Debug, Clone)]
pub struct ChainedEvent {
    pub id: i64,
    pub record: AuditRecord,
    pub chain_hash: Option<String>,
}
