//! The link that opens a case's status page for the person who asked for help (issue 11 §3),
//! and the emails that carry one: the first when the case opens, then a fresh one with each
//! support reply and when the case closes. Shared by `RecoveryRequests`, which opens cases,
//! and `Support`, which answers them.
//!
//! A link is a bearer secret for one case: only its keyed hash is stored, each works for 90
//! days from its email, and an email sent later never needs an earlier one (a person who
//! lost track of the first email follows the newest).

use crate::deps::Deps;
use crate::keyring::Keyring;
use crate::notice::Notice;
use crate::outbox::NewMessage;
use crate::token::RecoveryToken;

/// How long a status link works, from the email that carries it.
pub const STATUS_LINK_TTL_SECONDS: i64 = 90 * 24 * 3600;

/// The status link as it travels.
pub struct StatusLink(RecoveryToken);

impl StatusLink {
    pub fn generate(keys: &Keyring) -> Self {
        Self(RecoveryToken::generate(keys))
    }
    pub fn parse(raw: &str) -> Option<Self> {
        RecoveryToken::parse(raw).map(Self)
    }
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
    /// What storage keeps, under the links' own purpose.
    pub fn hash(&self, keys: &Keyring) -> String {
        keys.token_hash("recovery-request-status", self.0.expose())
    }
    pub fn url(&self, base_url: &str) -> String {
        format!("{base_url}recovery-request/status?token={}", self.expose())
    }
}

/// A stored link: its hash and when it stops working.
#[derive(Debug, Clone)]
pub struct NewStatusLink {
    pub hash: String,
    pub expires_at: i64,
}

/// An email to a case's requester with a fresh status link, bound to the contact address it
/// is written to: storage writes it only while the case still has that address.
#[derive(Debug, Clone)]
pub struct RequesterNotice {
    pub contact: String,
    pub link: NewStatusLink,
    pub message: NewMessage,
}

impl RequesterNotice {
    /// `body` comes first; the link, how long it works and the warnings follow.
    pub fn compose(deps: &Deps, contact: &str, kind: &'static str, subject: &str, body: &str) -> Result<Self, String> {
        let now = deps.now();
        let link = StatusLink::generate(&deps.keys);
        let body = format!(
            "{body}\n\nRead your case, or add to it, at {url}\n\nThe link works for 90 days. Keep this email private: anyone \
             with the link can read the case. Support never asks for your password or your 2-step codes.",
            url = link.url(&deps.base_url)
        );
        let content = deps.composer.compose(&Notice::Plain { subject, body: &body })?;
        Ok(Self {
            contact: contact.to_owned(),
            link: NewStatusLink { hash: link.hash(&deps.keys), expires_at: now + STATUS_LINK_TTL_SECONDS },
            message: NewMessage::email(contact, kind, None, content, now),
        })
    }
}
