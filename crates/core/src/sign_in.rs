//! The steps every way of signing in shares: a session with a new id (S7.2), and the
//! browser's trusted-device cookie renewed (S3.9). Password login (`Auth`) and the second
//! step and step-up (`TwoStep`) both use them.

use crate::account::{Account, AccountId};
use crate::audit::{AuditEvent, AuditRecord, RequestContext};
use crate::deps::Deps;
use crate::notice::Notice;
use crate::outbox::NewMessage;
use crate::report_link::{ReportedEvent, new_report_link};
use crate::session::{SessionRecord, SessionStage, SessionToken};
use crate::store::StoreError;
use crate::token::NewRecoveryToken;
use crate::trusted_device::{DEVICE_TTL_SECONDS, DeviceToken, NewDevice, cookie_tag};

crate::storage_trait! {
    /// The storage of signing in: sessions, trusted devices, and the new-device alert.
    pub trait SignInStorage:
        crate::store::AccountStore,
        crate::store::SessionStore,
        crate::trusted_device::DeviceStore,
        crate::activity::ActivityStore,
        crate::token::RecoveryStore,
}

/// Always a new id (S7.2): a session is never carried over from before login.
pub(crate) async fn start_session(
    deps: &Deps,
    store: &dyn SignInStorage,
    account: &AccountId,
    ctx: &RequestContext,
    stage: SessionStage,
) -> Result<SessionToken, StoreError> {
    let (token, record) = new_session(deps, account, ctx, stage);
    store.insert_session(&record).await?;
    Ok(token)
}

/// A new session's token and the record to store for it.
pub(crate) fn new_session(deps: &Deps, account: &AccountId, ctx: &RequestContext, stage: SessionStage) -> (SessionToken, SessionRecord) {
    let token = SessionToken::generate(&deps.keys);
    let now = deps.now();
    let record = SessionRecord {
        id_hash: token.storage_key(&deps.keys),
        account_id: account.clone(),
        created_at: now,
        last_seen_at: now,
        ip: ctx.ip.to_string(),
        user_agent: ctx.user_agent.chars().take(512).collect(),
        stage,
        // Signing in is a verification: sensitive actions right after login need no step-up.
        verified_at: if stage == SessionStage::Full { now } else { 0 },
    };
    (token, record)
}

/// Replaces a session with a full one, verified now, under a new id (after the second step
/// and at step-up, S7.2).
pub(crate) async fn rotate_session(
    deps: &Deps,
    store: &dyn SignInStorage,
    old: &SessionRecord,
    ctx: &RequestContext,
) -> Result<SessionToken, StoreError> {
    let token = SessionToken::generate(&deps.keys);
    let now = deps.now();
    let record = SessionRecord {
        id_hash: token.storage_key(&deps.keys),
        account_id: old.account_id.clone(),
        created_at: if old.stage == SessionStage::Full { old.created_at } else { now },
        last_seen_at: now,
        ip: ctx.ip.to_string(),
        user_agent: ctx.user_agent.chars().take(512).collect(),
        stage: SessionStage::Full,
        verified_at: now,
    };
    store.replace_session(&old.id_hash, &record).await?;
    Ok(token)
}

/// Which of the presented device cookies is a live trusted device of the account.
pub(crate) async fn trusted_device(
    deps: &Deps,
    store: &dyn SignInStorage,
    account: &AccountId,
    devices: &[DeviceToken],
) -> Result<Option<String>, StoreError> {
    if devices.is_empty() {
        return Ok(None);
    }
    let hashes: Vec<String> = devices.iter().take(16).map(|d| d.storage_key(&deps.keys)).collect();
    store.find_device(account, &hashes, deps.now()).await
}

/// What a sign-in writes once its proof is checked, written by the store in one transaction
/// ([`crate::store::SessionStore::commit_sign_in`]): on PostgreSQL every commit is a WAL flush,
/// and a login committed seven times in its request (issue 12: 5.6 WAL flushes per login before, 2.3 after).
#[derive(Default)]
pub struct SignInWrites {
    /// Throttle keys a success clears, and those it takes its attempt back from.
    pub cleared: Vec<String>,
    pub released: Vec<String>,
    pub session: Option<SessionRecord>,
    /// A session the browser had before, ended by this sign-in (S7.2).
    pub end_session: Option<String>,
    /// The trusted-device row the browser presented, retired by rotation.
    pub retire_device: Option<String>,
    pub new_device: Option<DeviceRow>,
    /// The new-device email and its "this wasn't me" link.
    pub alert: Option<(NewRecoveryToken, NewMessage)>,
    pub audits: Vec<AuditRecord>,
}

/// What a password sign-in reads after the password, in one round trip
/// ([`crate::store::SessionStore::sign_in_facts`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignInFacts {
    pub locked: bool,
    /// The lock took away every 2-step method the account had: support lifts it, not a reset.
    pub locked_for_support: bool,
    /// The kinds of the account's confirmed 2-step methods (recovery codes included).
    pub confirmed_methods: Vec<crate::factors::FactorKind>,
    pub signed_in_before: bool,
}

/// A trusted-device row to insert.
pub struct DeviceRow {
    pub account: AccountId,
    pub id_hash: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A new trusted-device cookie after a full sign-in; the one the browser presented for
/// this account, if any, is retired (rotation). A browser that presented none is a new
/// device: the owner is told (issue 11 §5), except at the account's very first sign-in
/// (`signed_in_before`, read here when the caller has not read it already).
/// Only reads: the rows and the email go into `writes`.
pub(crate) async fn renew_device(
    deps: &Deps,
    store: &dyn SignInStorage,
    account: &Account,
    presented: &[DeviceToken],
    signed_in_before: Option<bool>,
    ctx: &RequestContext,
    writes: &mut SignInWrites,
) -> Result<NewDevice, StoreError> {
    let known = trusted_device(deps, store, &account.id, presented).await?;
    let token = DeviceToken::generate(&deps.keys);
    let now = deps.now();
    if known.is_none() {
        let signed_in_before = match signed_in_before {
            Some(known) => known,
            None => store.has_event(&account.id, AuditEvent::LoginSucceeded).await?,
        };
        if signed_in_before {
            alert_new_device(deps, account, ctx, writes)?;
        }
    }
    writes.retire_device = known;
    writes.new_device = Some(DeviceRow {
        account: account.id.clone(),
        id_hash: token.storage_key(&deps.keys),
        created_at: now,
        expires_at: now + DEVICE_TTL_SECONDS,
    });
    Ok(NewDevice { token, cookie_tag: cookie_tag(&deps.keys, &account.id) })
}

/// The new-device email: time, approximate place (the country a trusted proxy vouches for),
/// the device from the user agent's fixed names (S9.2), the address, and "this wasn't me".
/// Not at the first sign-in of an account (no surprise there): whether it signed in before
/// is read before this sign-in's own success is written.
fn alert_new_device(deps: &Deps, account: &Account, ctx: &RequestContext, writes: &mut SignInWrites) -> Result<(), StoreError> {
    let now = deps.now();
    let device = crate::device::Device::from_user_agent(&ctx.user_agent).describe();
    let place = match &ctx.country {
        Some(country) => format!("{} (from your network address; approximate)", country.as_str()),
        None => "not known".to_owned(),
    };
    let report = new_report_link(deps, &account.id, ReportedEvent::NewDeviceSignIn, now);
    let content = deps
        .composer
        .compose(&Notice::NewDeviceSignIn {
            username: account.username.as_str(),
            when: &crate::clock::rfc2822(now),
            place: &place,
            ip: &ctx.ip.to_string(),
            device: &device,
            report_link: &report.link,
        })
        .map_err(|e| StoreError::Backend(e.into()))?;
    let message = NewMessage::email(account.email.as_str(), "new_device", Some(account.id.clone()), content, now);
    writes.alert = Some((report.token, message));
    writes.audits.push(AuditRecord::new(now, AuditEvent::NewDeviceSignIn, Some(account.id.clone()), ctx, &device));
    Ok(())
}
