//! What the domain tells people: each notice is composed into an email or a text by the
//! server's templates (the [`Composer`]), then written to the outbox.

use crate::outbox::MessageContent;

/// What an email says; composed into subject, text and HTML by the web layer's templates.
/// No `Debug`: it carries links and codes.
pub enum Notice<'a> {
    PasswordReset {
        username: &'a str,
        link: &'a str,
        code: &'a str,
        valid_for: &'a str,
    },
    PasswordChanged {
        username: &'a str,
        when: &'a str,
        ip: &'a str,
        device: &'a str,
        report_link: &'a str,
    },
    /// A 2-step method or recovery codes changed (S5.4, S5.8, S9.1).
    SecurityChange {
        username: &'a str,
        change: &'a str,
        when: &'a str,
        ip: &'a str,
        /// The "this wasn't me" link of this change (issue 11 §4).
        report_link: &'a str,
    },
    /// The account was locked from a "this wasn't me" link: what happens next.
    AccountLocked {
        username: &'a str,
        when: &'a str,
        case_id: &'a str,
        reset_link: &'a str,
    },
    /// The link that confirms a new email address, sent to that address.
    EmailChangeConfirm {
        username: &'a str,
        link: &'a str,
        new_email: &'a str,
    },
    /// Sent to an address someone tried to move an account to, when it already has one.
    EmailInUse {
        username: &'a str,
    },
    /// The account's password budget is spent (S3.9): sent at most once a day.
    LoginsPaused {
        username: &'a str,
        when: &'a str,
        reset_link: &'a str,
    },
    /// A message to the account's owner whose `body` is plain text, links included: the
    /// steps of a 2-step reset (issue 11 §2), support actions (§6).
    Personal {
        username: &'a str,
        subject: &'a str,
        body: &'a str,
    },
    /// A text about a 2-step reset: never a link (the phone may be in someone else's hands).
    TwoStepResetText {
        text: &'a str,
    },
    /// A one-time code sent by SMS or email; `sms` asks for the short form.
    VerificationCode {
        username: &'a str,
        code: &'a str,
        purpose: &'a str,
        sms: bool,
    },
    /// "Forgot your answer?": the link that sets a new security question after another method.
    AnswerReset {
        username: &'a str,
        link: &'a str,
        valid_for: &'a str,
        when: &'a str,
        ip: &'a str,
        report_link: &'a str,
    },
    /// A message that names no account (recovery requests, issue 11 §3): `body` is plain
    /// text, links included.
    Plain {
        subject: &'a str,
        body: &'a str,
    },
    /// A sign-in from a browser not seen before for this account (issue 11 §5).
    NewDeviceSignIn {
        username: &'a str,
        when: &'a str,
        /// "the Philippines (PH)" from the trusted country header, or "unknown".
        place: &'a str,
        ip: &'a str,
        device: &'a str,
        report_link: &'a str,
    },
}

pub trait Composer: Send + Sync + std::fmt::Debug {
    fn compose(&self, notice: &Notice<'_>) -> Result<MessageContent, String>;
}
