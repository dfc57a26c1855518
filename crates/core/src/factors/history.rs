//! The history of an account's 2-step methods (checklist S10.4): every method ever enrolled,
//! when it was added, removed, restored or renewed, and by whom or through which flow. Kept
//! apart from the audit log, which retention prunes after a year, and from the methods
//! themselves, whose removal a lock's roll-back clears; every change appends a row in the
//! same transaction as the change itself, and nothing updates or deletes one while the
//! account exists.

use super::{FactorKind, question_text};
use serde::Serialize;

/// What happened to a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FactorChange {
    /// Turned on (an enrolment confirmed, recovery codes first made).
    Added,
    Removed,
    /// A removed method given back by a lock that undid someone else's change.
    Restored,
    /// A new set of recovery codes in place of the old one.
    Renewed,
}

/// Who made the change, or through which flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangedBy {
    /// Security settings, from a signed-in session after verifying again (the owner, or
    /// whoever held the session).
    Owner,
    /// The emailed "Forgot your answer?" link.
    ForgotAnswer,
    /// A 2-step reset that ran through its waiting period.
    TwoStepReset,
    /// A support agent, on a case.
    Support,
    /// A "this wasn't me" report that locked the account and undid the reported change.
    Report,
    /// Before this history was kept: when is known, by whom is not.
    BeforeHistory,
}

impl FactorChange {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Added => "added",
            Self::Removed => "removed",
            Self::Restored => "restored",
            Self::Renewed => "renewed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Added, Self::Removed, Self::Restored, Self::Renewed].into_iter().find(|c| c.as_str() == s)
    }
}

impl ChangedBy {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::ForgotAnswer => "forgot_answer",
            Self::TwoStepReset => "two_step_reset",
            Self::Support => "support",
            Self::Report => "report",
            Self::BeforeHistory => "before_history",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Owner, Self::ForgotAnswer, Self::TwoStepReset, Self::Support, Self::Report, Self::BeforeHistory]
            .into_iter()
            .find(|c| c.as_str() == s)
    }

    /// How a person would say it, after the change ("removed ...").
    pub fn describe(&self) -> &'static str {
        match self {
            // Not "by you": whoever held a signed-in session did it, and the owner reads this
            // to find changes they did not make.
            Self::Owner => "in Security settings, from a signed-in session",
            Self::ForgotAnswer => "from the \"Forgot your answer?\" email",
            Self::TwoStepReset => "by a 2-step reset after its waiting period",
            Self::Support => "by our support team",
            Self::Report => "by your \"this wasn't me\" report",
            Self::BeforeHistory => "(how was not recorded before this history was kept)",
        }
    }
}

/// One change to one method, as stored.
#[derive(Debug, Clone)]
pub struct FactorHistoryEntry {
    pub id: i64,
    pub factor_id: String,
    pub kind: FactorKind,
    /// The masked phone number for SMS, the question's id for a security question, else empty.
    pub label: String,
    pub change: FactorChange,
    pub by: ChangedBy,
    pub at: i64,
}

impl FactorHistoryEntry {
    /// What the method is, for a person: its kind and, where there is one, which phone or
    /// question (never an answer, a secret or a full number).
    pub fn method(&self) -> String {
        let detail = match self.kind {
            FactorKind::Sms => self.label.clone(),
            FactorKind::SecurityQuestion => question_text(&self.label).map(|q| format!("\u{201c}{q}\u{201d}")).unwrap_or_default(),
            _ => String::new(),
        };
        if detail.is_empty() { self.kind.title().to_owned() } else { format!("{} ({detail})", self.kind.title()) }
    }
}

/// Entries per page.
pub const PAGE_SIZE: i64 = 20;

/// A page of history, newest first, and the cursor of the next (older) one if there is one.
#[derive(Debug, Clone)]
pub struct FactorHistoryPage {
    pub entries: Vec<FactorHistoryEntry>,
    pub next_before: Option<i64>,
}

impl FactorHistoryPage {
    /// From up to `PAGE_SIZE + 1` entries newest first: the extra one only says an older page exists.
    pub fn from_rows(mut entries: Vec<FactorHistoryEntry>) -> Self {
        let more = entries.len() as i64 > PAGE_SIZE;
        entries.truncate(PAGE_SIZE as usize);
        let next_before = if more { entries.last().map(|e| e.id) } else { None };
        Self { entries, next_before }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: i64, kind: FactorKind, label: &str) -> FactorHistoryEntry {
        FactorHistoryEntry {
            id,
            factor_id: "f".into(),
            kind,
            label: label.into(),
            change: FactorChange::Added,
            by: ChangedBy::Owner,
            at: 0,
        }
    }

    #[test]
    fn names_round_trip_and_methods_read_as_a_person_would_name_them() {
        for change in [FactorChange::Added, FactorChange::Removed, FactorChange::Restored, FactorChange::Renewed] {
            assert_eq!(FactorChange::parse(change.as_str()), Some(change));
        }
        for by in [
            ChangedBy::Owner,
            ChangedBy::ForgotAnswer,
            ChangedBy::TwoStepReset,
            ChangedBy::Support,
            ChangedBy::Report,
            ChangedBy::BeforeHistory,
        ] {
            assert_eq!(ChangedBy::parse(by.as_str()), Some(by));
        }
        assert_eq!(entry(1, FactorKind::Totp, "").method(), "Authenticator app");
        assert_eq!(entry(1, FactorKind::Sms, "+63 *** *** 4567").method(), "Text message (SMS) (+63 *** *** 4567)");
        let (id, text) = super::super::SECURITY_QUESTIONS[0];
        assert_eq!(entry(1, FactorKind::SecurityQuestion, id).method(), format!("Security question (\u{201c}{text}\u{201d})"));
        // An id no longer on the list shows the kind alone, never the raw id.
        assert_eq!(entry(1, FactorKind::SecurityQuestion, "gone").method(), "Security question");
    }

    #[test]
    fn a_page_holds_at_most_page_size_entries_and_points_to_the_older_ones() {
        let rows: Vec<_> = (1..=PAGE_SIZE + 1).rev().map(|id| entry(id, FactorKind::Totp, "")).collect();
        let page = FactorHistoryPage::from_rows(rows);
        assert_eq!(page.entries.len() as i64, PAGE_SIZE);
        assert_eq!(page.next_before, Some(2));
        let last = FactorHistoryPage::from_rows(vec![entry(1, FactorKind::Totp, "")]);
        assert_eq!(last.next_before, None);
    }
}
