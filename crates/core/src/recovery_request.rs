//! "No access to my email" (issue 11 §3): a recovery request handled by support. Anyone can
//! ask, so every answer and every email is the same whether or not the account exists; the
//! contact address is proved by a code sent to it, and the form is a spam vector, so it is
//! limited per client address, per contact address and per day, and pays a proof of work
//! (see [`crate::proof_of_work`]). A confirmed request opens a support case; its status
//! page is reached by a link sent to the contact address, where the person can add to it.

use crate::account::{AccountId, EmailAddress, LoginIdentifier};
use crate::audit::{AuditEvent, RequestContext};
use crate::case_link::RequesterNotice;
use crate::compromise::{NewCase, new_case_id};
use crate::deps::Deps;
use crate::notice::Notice;
use crate::outbox::NewMessage;
use crate::proof_of_work::{PowError, PowSolution, ProofOfWork};
use crate::store::StoreError;
use crate::throttle::{ThrottleKey, ThrottleRule, address_key, network_key};
use crate::token::{ResetCode, ResetCodeAttempt};
use async_trait::async_trait;
use std::sync::Arc;

crate::storage_trait! {
    /// The storage `RecoveryRequests` reads and writes.
    pub trait RecoveryRequestStorage: crate::store::AccountStore, RecoveryRequestStore
}

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;
/// How long the code sent to the contact address works.
pub const CODE_TTL_SECONDS: i64 = 30 * 60;
/// Wrong codes allowed for one request.
pub const MAX_CODE_TRIES: i64 = 5;
pub use crate::case_link::STATUS_LINK_TTL_SECONDS;
/// Requests from one client address per hour.
pub const PER_ADDRESS_PER_HOUR: i64 = 5;
/// Requests for one contact address per day.
pub const PER_CONTACT_PER_DAY: i64 = 3;
/// Requests from one network (an IPv4 /24, an IPv6 /48) per day, then one an hour: so that
/// one sender with many addresses of one network cannot spend the day's ceiling for everyone.
pub const PER_NETWORK_PER_DAY: i64 = 30;
/// Requests in all per day: the ceiling on what the form can make doorman send.
pub const PER_DAY: i64 = 500;
/// Notes one case takes per day from its status page.
pub const NOTES_PER_DAY: i64 = 10;
pub const MAX_MESSAGE_CHARS: usize = 4000;

/// What the person can tell about the account, beyond the free text (all optional).
#[derive(Debug, Clone, Default)]
pub struct Hints {
    pub last_sign_in: String,
    pub country: String,
    pub payout_type: String,
    pub payout_bank: String,
}

impl Hints {
    fn lines(&self) -> String {
        let fields = [
            ("Last sign-in (roughly)", &self.last_sign_in),
            ("Signs in from (country)", &self.country),
            ("Payout method type", &self.payout_type),
            ("Payout bank", &self.payout_bank),
        ];
        fields
            .iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(k, v)| format!("{k}: {}\n", v.trim().chars().take(200).collect::<String>()))
            .collect()
    }
}

pub struct NewRequest {
    pub id: String,
    pub contact_email: String,
    pub code_hash: String,
    pub account_id: Option<AccountId>,
    pub details: String,
    pub created_at: i64,
    pub expires_at: i64,
}

pub struct PendingRequest {
    pub id: String,
    pub code_hash: String,
    pub account_id: Option<AccountId>,
    pub details: String,
}

/// Everything a confirmation writes, in one transaction.
pub struct Confirmation {
    pub request_id: String,
    pub case: NewCase,
    /// The case's first email, to the contact address, with its first status link.
    pub notice: RequesterNotice,
}

#[derive(Debug, Clone)]
pub struct CaseNote {
    pub created_at: i64,
    pub author: String,
    pub body: String,
}

/// A case as its requester sees it on the status page.
#[derive(Debug, Clone)]
pub struct CaseStatus {
    pub id: String,
    pub status: String,
    pub created_at: i64,
    pub notes: Vec<CaseNote>,
}

#[async_trait]
pub trait RecoveryRequestStore {
    /// The request and its code email, in one transaction; older pending requests for the
    /// same contact address stop taking codes.
    async fn insert_request(&self, request: &NewRequest, code_email: &NewMessage) -> Result<(), StoreError>;
    /// The newest live, unconfirmed request for this contact address.
    async fn pending_request(&self, contact_email: &str, now: i64) -> Result<Option<PendingRequest>, StoreError>;
    /// Counts one try at the request's code; false when its tries are spent.
    async fn count_code_try(&self, request_id: &str, max: i64) -> Result<bool, StoreError>;
    /// Spends the request, opens the case, stores the status link's hash and writes its
    /// email; false when the request was confirmed meanwhile.
    async fn confirm_request(&self, confirmation: &Confirmation, now: i64) -> Result<bool, StoreError>;
    async fn case_by_status_link(&self, status_hash: &str, now: i64) -> Result<Option<CaseStatus>, StoreError>;
    async fn add_case_note(&self, case_id: &str, author: &str, body: &str, now: i64) -> Result<(), StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("{0}")]
    Proof(#[from] PowError),
    #[error("Too many recovery requests. Try again in {}.", crate::clock::in_words(*.0))]
    TooMany(i64),
    #[error("That code is not right, or it has expired. Check the newest email we sent to this address, or start the request again.")]
    InvalidCode,
    #[error("Too many wrong codes for this request. Start the request again to get a new code.")]
    TooManyTries,
    #[error("This link is not valid any more. Use the newest link we sent to your contact address.")]
    InvalidLink,
    #[error("composing the email failed: {0}")]
    Compose(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the form brings, checked at the edge.
pub struct RecoveryRequestInput {
    pub login: LoginIdentifier,
    pub contact_email: EmailAddress,
    pub message: String,
    pub hints: Hints,
    pub proof: PowSolution,
}

pub use crate::case_link::StatusLink;

#[derive(Debug, Clone)]
pub struct RecoveryRequests {
    deps: Deps,
    store: Arc<dyn RecoveryRequestStorage>,
    pow: ProofOfWork,
}

impl RecoveryRequests {
    pub fn new(deps: Deps, store: Arc<dyn RecoveryRequestStorage>, proof_of_work_bits: u8) -> Self {
        Self { store, pow: ProofOfWork::new(deps.clone(), proof_of_work_bits), deps }
    }

    pub fn proof_of_work(&self) -> &ProofOfWork {
        &self.pow
    }

    fn code_hash(&self, request_id: &str, code: &str) -> String {
        self.deps.keys.hash(&format!("recovery-request-code:{request_id}"), code.as_bytes())
    }

    /// Records the request and sends a code to the contact address. The answer and the
    /// email are the same whether or not `login` names an account.
    pub async fn request(&self, input: RecoveryRequestInput, ctx: &RequestContext) -> Result<(), RequestError> {
        self.pow.spend(&input.proof).await?;
        let contact = input.contact_email.as_str().to_owned();
        let caps = [
            ThrottleKey {
                key: format!("recovery-request:ip:{}", address_key(ctx.ip)),
                rule: ThrottleRule::Budget { limit: PER_ADDRESS_PER_HOUR, window: HOUR, cooldown: HOUR },
            },
            ThrottleKey {
                key: format!("recovery-request:net:{}", network_key(ctx.ip)),
                rule: ThrottleRule::Budget { limit: PER_NETWORK_PER_DAY, window: DAY, cooldown: HOUR },
            },
            ThrottleKey {
                key: format!("recovery-request:contact:{contact}"),
                rule: ThrottleRule::Budget { limit: PER_CONTACT_PER_DAY, window: DAY, cooldown: DAY },
            },
            ThrottleKey { key: "recovery-request:day".into(), rule: ThrottleRule::Budget { limit: PER_DAY, window: DAY, cooldown: HOUR } },
        ];
        if let Some(wait) = self.deps.claim(&caps).await? {
            return Err(RequestError::TooMany(wait));
        }
        let now = self.deps.now();
        let account = self.store.find_for_login(input.login.key()).await?.map(|(a, _)| a.id);
        let id = uuid::Uuid::new_v4().to_string();
        let code = ResetCode::generate();
        let message: String = input.message.trim().chars().take(MAX_MESSAGE_CHARS).collect();
        let details = format!(
            "Username or old email as typed: {}\nContact email (verified by code): {contact}\n{}\n{message}",
            input.login.key(),
            input.hints.lines()
        );
        let body = format!(
            "Someone asked our support for help getting back into an account, and gave this address to be \
             contacted at.\n\nYour code is {code}\n\nEnter it on the recovery request form to confirm this address. It \
             expires in 30 minutes and works once.\n\nIf you did not ask for this, ignore this email: nothing happens \
             without the code.",
            code = code.grouped()
        );
        let content = self
            .deps
            .composer
            .compose(&Notice::Plain { subject: "Confirm your contact address", body: &body })
            .map_err(RequestError::Compose)?;
        let notice = NewMessage::email(&contact, "recovery_request_code", None, content, now);
        let request = NewRequest {
            id: id.clone(),
            contact_email: contact,
            code_hash: self.code_hash(&id, code.expose()),
            account_id: account.clone(),
            details,
            created_at: now,
            expires_at: now + CODE_TTL_SECONDS,
        };
        self.store.insert_request(&request, &notice).await?;
        self.deps.audit(AuditEvent::RecoveryRequestSubmitted, account.as_ref(), ctx, &format!("request {id}")).await?;
        Ok(())
    }

    /// Checks the code sent to the contact address and opens the case; its number, and a
    /// status link sent to the same address.
    pub async fn confirm(&self, contact: &EmailAddress, code: &ResetCodeAttempt, ctx: &RequestContext) -> Result<String, RequestError> {
        let cap = [ThrottleKey {
            key: format!("recovery-confirm:ip:{}", address_key(ctx.ip)),
            rule: ThrottleRule::Budget { limit: 30, window: HOUR, cooldown: HOUR },
        }];
        if let Some(wait) = self.deps.claim(&cap).await? {
            return Err(RequestError::TooMany(wait));
        }
        let now = self.deps.now();
        let pending = self.store.pending_request(contact.as_str(), now).await?.ok_or(RequestError::InvalidCode)?;
        if !self.store.count_code_try(&pending.id, MAX_CODE_TRIES).await? {
            return Err(RequestError::TooManyTries);
        }
        let typed: String = code.typed().chars().filter(|c| c.is_ascii_digit()).collect();
        let expected = self.deps.keys.hash_like(&pending.code_hash, &format!("recovery-request-code:{}", pending.id), typed.as_bytes());
        if !code.is_well_formed() || !bool::from(subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), pending.code_hash.as_bytes())) {
            return Err(RequestError::InvalidCode);
        }
        let case_id = new_case_id();
        let body = format!(
            "Your recovery request was received. Your case number is {case_id}.\n\nA support agent will check what you \
             told us and write to this address."
        );
        let subject = format!("Your recovery request: case {case_id}");
        let notice = RequesterNotice::compose(&self.deps, contact.as_str(), "recovery_request_case", &subject, &body)
            .map_err(RequestError::Compose)?;
        let confirmation = Confirmation {
            request_id: pending.id.clone(),
            case: NewCase {
                id: case_id.clone(),
                kind: "recovery_request",
                account_id: pending.account_id.clone(),
                created_at: now,
                details: pending.details,
            },
            notice,
        };
        if !self.store.confirm_request(&confirmation, now).await? {
            return Err(RequestError::InvalidCode);
        }
        let detail = format!("request {}; case {case_id}", pending.id);
        self.deps.audit(AuditEvent::RecoveryRequestConfirmed, pending.account_id.as_ref(), ctx, &detail).await?;
        Ok(case_id)
    }

    /// The case behind a status link (reading changes nothing).
    pub async fn status(&self, link: &StatusLink) -> Result<CaseStatus, RequestError> {
        let found = self.store.case_by_status_link(&link.hash(&self.deps.keys), self.deps.now()).await?;
        found.ok_or(RequestError::InvalidLink)
    }

    /// Adds the requester's note to the case; limited per case and per day.
    pub async fn add_note(&self, link: &StatusLink, body: &str, ctx: &RequestContext) -> Result<CaseStatus, RequestError> {
        let case = self.status(link).await?;
        let cap = [ThrottleKey {
            key: format!("case-note:{}", case.id),
            rule: ThrottleRule::Budget { limit: NOTES_PER_DAY, window: DAY, cooldown: HOUR },
        }];
        if let Some(wait) = self.deps.claim(&cap).await? {
            return Err(RequestError::TooMany(wait));
        }
        let body: String = body.trim().chars().take(MAX_MESSAGE_CHARS).collect();
        self.store.add_case_note(&case.id, "requester", &body, self.deps.now()).await?;
        self.deps.audit(AuditEvent::CaseNoteAdded, None, ctx, &format!("case {}; by the requester", case.id)).await?;
        self.status(link).await
    }
}
