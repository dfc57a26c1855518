//! The audit log's hash chain (checklist S10.3). Events are appended without a hash; a
//! sealer, run by the worker, chains them in id order once they are a minute old (so that
//! no slower transaction can still add an earlier id): each seal is an HMAC, under the key
//! that was signing at the event's time (see [`crate::keyring`]), of the event's fields and
//! the previous seal, and names that key (`<key id>$<hex>`; none for the original key, as
//! every seal made before key ids existed). Sealing is deterministic (the event's time picks
//! the key, and a key is loaded everywhere before it signs), so two replicas sealing at once
//! write the same values. `doorman audit verify` walks the chain, checking each link under
//! the key it names, retired keys included: a rotation never breaks the chain.
//!
//! Old events are pruned (issue 13, [`Audit::prune_audit_log`]): before the events up to id N
//! are deleted, a checkpoint records N, N's seal and time, itself sealed under the server key.
//! Verifying starts from the newest checkpoint (or from the start when there is none), so the
//! chain still verifies, during a prune too; removing a checkpoint, or events after one, still
//! breaks it, and a checkpoint cannot be made without the key.

pub use crate::audit::{AuditCheckpoint, ChainedEvent};
use crate::deps::Deps;
use crate::keyring::Keyring;
use crate::store::StoreError;
use std::sync::Arc;

crate::storage_trait! {
    /// The storage `Audit` reads and writes.
    pub trait AuditChainStorage: crate::store::AuditStore
}

/// Events younger than this are left for the next round.
pub const SEAL_AFTER_SECONDS: i64 = 60;
/// What the first event's seal follows.
pub const GENESIS: &str = "doorman-audit-chain";

/// The seal of one event, given the previous seal.
pub fn seal(keys: &Keyring, previous: &str, event: &ChainedEvent) -> String {
    keys.audit_seal(event.record.at, "audit-chain", &seal_input(previous, event))
}

fn seal_input(previous: &str, event: &ChainedEvent) -> Vec<u8> {
    let r = &event.record;
    let fields = [
        event.id.to_string(),
        r.at.to_string(),
        r.event.as_str().to_owned(),
        r.account_id.as_ref().map(|a| a.to_string()).unwrap_or_default(),
        r.ip.clone(),
        r.user_agent.clone(),
        r.request_id.clone(),
        r.detail.clone(),
    ];
    // Unit separators keep field boundaries unambiguous.
    format!("{previous}\u{1f}{}", fields.join("\u{1f}")).into_bytes()
}

/// The seal of a checkpoint: only the holder of the server key can make one.
/// Under the key signing at `now` (the checkpoint's `created_at`), naming it.
pub fn checkpoint_seal(keys: &Keyring, now: i64, event_id: i64, chain_hash: &str, event_at: i64) -> String {
    keys.audit_seal(now, "audit-checkpoint", format!("{event_id}\u{1f}{chain_hash}\u{1f}{event_at}").as_bytes())
}

/// Whether a stored checkpoint's seal is right: under the key that was signing when it was
/// made, as a link must be under the key signing at its event's time, so that a retired key
/// cannot vouch for anything dated after its successor took over.
fn checkpoint_holds(keys: &Keyring, c: &AuditCheckpoint) -> bool {
    checkpoint_seal(keys, c.created_at, c.event_id, &c.chain_hash, c.event_at) == c.seal
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainReport {
    Intact {
        sealed: u64,
        unsealed: u64,
        /// The events up to this id were pruned; the walk started from their checkpoint.
        pruned_through: Option<i64>,
    },
    /// The first event whose seal does not match (edited, or an event before it was removed
    /// or inserted).
    Broken { at_id: i64, sealed_before: u64 },
}

/// A seal recorded outside the database: the newest sealed event's id and seal, as
/// `doorman audit verify` prints them and the worker logs them after each round. The chain
/// shows an edit only up to its newest seal: someone who can write the database can delete
/// the newest seals, edit those events, and let the sealer seal them again as they now read.
/// An anchor kept elsewhere (a log shipped off the host, a ticket) catches that, and a log cut
/// off at its end: the event it names must still carry the same seal (S10.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainAnchor {
    pub event_id: i64,
    pub seal: String,
}

impl ChainAnchor {
    /// `<event id>:<seal>`, as [`std::fmt::Display`] writes it.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let (id, seal) = text.trim().split_once(':').ok_or("an anchor is <event id>:<seal>, as `doorman audit verify` prints it")?;
        let event_id = id.parse::<i64>().ok().filter(|id| *id > 0).ok_or("an anchor's event id is a positive number")?;
        let well_formed = !seal.is_empty() && seal.len() <= 200 && seal.chars().all(|c| c.is_ascii_alphanumeric() || c == '$');
        if !well_formed {
            return Err("an anchor's seal is the hex (with its key id and '$') that `doorman audit verify` prints");
        }
        Ok(Self { event_id, seal: seal.to_owned() })
    }
}

impl std::fmt::Display for ChainAnchor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.event_id, self.seal)
    }
}

/// What an anchor found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnchorCheck {
    /// The event carries the recorded seal: nothing up to it changed since.
    Holds,
    /// The event carries another seal, or none: it, or one before it, was rewritten.
    Differs,
    /// No such event, and retention did not prune it: the log was cut.
    Missing,
    /// Retention pruned it, and the checkpoint left is of a later event: nothing to compare.
    Pruned,
}

/// Walks of the chain while prunes keep moving its start, before a break is reported.
const VERIFY_TRIES: u32 = 5;

/// Events sealed per transaction.
const SEAL_BATCH: i64 = 500;
/// The pause between two batches of a backlog.
const SEAL_PAUSE: std::time::Duration = std::time::Duration::from_millis(5);

/// The audit log's chain: sealing (the worker) and verifying (`doorman audit verify`).
#[derive(Debug, Clone)]
pub struct Audit {
    deps: Deps,
    store: Arc<dyn AuditChainStorage>,
}

impl Audit {
    pub fn new(deps: Deps, store: Arc<dyn AuditChainStorage>) -> Self {
        Self { store, deps }
    }

    /// Seals what is old enough; returns how many events were sealed.
    pub async fn seal_audit_chain(&self) -> Result<u64, StoreError> {
        let before = self.deps.clock.unix() - SEAL_AFTER_SECONDS;
        let mut sealed = 0;
        loop {
            // After a prune that left no sealed event, the chain goes on from its checkpoint.
            let (previous_id, mut previous) = match self.store.last_sealed_audit().await? {
                Some((id, hash)) => (id, hash),
                None => match self.deps.store.audit_checkpoint_before(None).await? {
                    Some(checkpoint) => (checkpoint.event_id, checkpoint.chain_hash),
                    None => (0, GENESIS.to_owned()),
                },
            };
            let batch = self.store.unsealed_audit(previous_id, before, SEAL_BATCH).await?;
            if batch.is_empty() {
                return Ok(sealed);
            }
            let mut seals = Vec::with_capacity(batch.len());
            for event in &batch {
                let hash = seal(&self.deps.keys, &previous, event);
                previous.clone_from(&hash);
                seals.push((event.id, hash));
            }
            self.store.seal_audit(&seals).await?;
            sealed += seals.len() as u64;
            // Requests first: a backlog (after a flood) is sealed a batch at a time, with the
            // runtime free to serve requests in between.
            tokio::time::sleep(SEAL_PAUSE).await;
        }
    }

    /// Recomputes every seal from the start, or from the newest checkpoint when old events
    /// were (or are being) pruned. A prune that starts during the walk deletes events from
    /// under it, which looks like a removed event; a prune writes its checkpoint before it
    /// deletes anything, so a break found while a newer checkpoint appeared is walked again
    /// from it, up to [`VERIFY_TRIES`] times.
    pub async fn verify_audit_chain(&self) -> Result<ChainReport, StoreError> {
        let newest_checkpoint = async || self.deps.store.audit_checkpoint_before(None).await;
        let mut tries = 0;
        loop {
            let checkpoint = newest_checkpoint().await?;
            let started_from = checkpoint.as_ref().map(|c| c.event_id);
            let report = self.walk_audit_chain(checkpoint).await?;
            tries += 1;
            let pruned_meanwhile = newest_checkpoint().await?.map(|c| c.event_id) != started_from;
            if !matches!(report, ChainReport::Broken { .. }) || !pruned_meanwhile || tries == VERIFY_TRIES {
                return Ok(report);
            }
        }
    }

    async fn walk_audit_chain(&self, checkpoint: Option<AuditCheckpoint>) -> Result<ChainReport, StoreError> {
        // The newest checkpoint: below the first event left once a prune is done, or at or
        // above it while a prune deletes the events up to it (or was stopped doing so). Those
        // events are retention's, vouched for by the checkpoint made from their seals, and
        // the walk starts after them; the checkpoint's own event, while it is there, must
        // still carry the seal the checkpoint recorded.
        let first = self.deps.store.first_audit_id().await?;
        let (mut previous, mut after) = match &checkpoint {
            Some(c) => {
                if !checkpoint_holds(&self.deps.keys, c) {
                    return Ok(ChainReport::Broken { at_id: first.unwrap_or(c.event_id), sealed_before: 0 });
                }
                if first.is_some_and(|first| first <= c.event_id) {
                    let kept = self.store.audit_event(c.event_id).await?;
                    if kept.is_some_and(|event| event.chain_hash.as_deref() != Some(c.chain_hash.as_str())) {
                        return Ok(ChainReport::Broken { at_id: c.event_id, sealed_before: 0 });
                    }
                }
                (c.chain_hash.clone(), c.event_id)
            }
            None => (GENESIS.to_owned(), 0),
        };
        let (mut sealed, mut unsealed) = (0u64, 0u64);
        let mut unsealed_seen: Option<i64> = None;
        loop {
            let batch = self.store.audit_events_after(after, 1000).await?;
            if batch.is_empty() {
                break;
            }
            for event in &batch {
                after = event.id;
                match &event.chain_hash {
                    Some(hash) => {
                        // A sealed event after an unsealed one: something was put back in.
                        if unsealed_seen.is_some() || *hash != seal(&self.deps.keys, &previous, event) {
                            return Ok(ChainReport::Broken { at_id: event.id, sealed_before: sealed });
                        }
                        previous = hash.clone();
                        sealed += 1;
                    }
                    None => {
                        unsealed_seen.get_or_insert(event.id);
                        unsealed += 1;
                    }
                }
            }
        }
        Ok(ChainReport::Intact { sealed, unsealed, pruned_through: checkpoint.map(|c| c.event_id) })
    }

    /// The newest seal, to record elsewhere as an anchor.
    pub async fn chain_head(&self) -> Result<Option<ChainAnchor>, StoreError> {
        Ok(self.store.last_sealed_audit().await?.map(|(event_id, seal)| ChainAnchor { event_id, seal }))
    }

    /// Whether the log still holds each anchor's seal. With the chain intact
    /// ([`Self::verify_audit_chain`]), an anchor that holds vouches for every event up to it.
    pub async fn check_anchor(&self, anchor: &ChainAnchor) -> Result<AnchorCheck, StoreError> {
        if let Some(event) = self.store.audit_event(anchor.event_id).await? {
            let holds = event.chain_hash.as_deref() == Some(anchor.seal.as_str());
            return Ok(if holds { AnchorCheck::Holds } else { AnchorCheck::Differs });
        }
        // Gone. Retention removes a prefix of the log, always up to a checkpoint it wrote
        // first; anything else gone was cut.
        let first = self.deps.store.first_audit_id().await?;
        let newest_checkpoint = self.deps.store.audit_checkpoint_before(None).await?.map(|c| c.event_id);
        let pruned = first.is_none_or(|first| anchor.event_id < first) && newest_checkpoint.is_some_and(|c| anchor.event_id <= c);
        if !pruned {
            return Ok(AnchorCheck::Missing);
        }
        // Its checkpoint, if it is the one left, keeps its seal.
        Ok(match self.deps.store.audit_checkpoint_before(Some(anchor.event_id + 1)).await? {
            Some(c) if c.event_id == anchor.event_id && checkpoint_holds(&self.deps.keys, &c) => {
                if c.chain_hash == anchor.seal {
                    AnchorCheck::Holds
                } else {
                    AnchorCheck::Differs
                }
            }
            Some(c) if c.event_id == anchor.event_id => AnchorCheck::Differs,
            _ => AnchorCheck::Pruned,
        })
    }

    /// Deletes the sealed events older than `before`, in batches, after recording their
    /// checkpoint; returns how many were deleted. Unsealed events are never deleted (their
    /// seal needs the event before them).
    pub async fn prune_audit_log(&self, before: i64, now: i64) -> Result<u64, StoreError> {
        let store = &self.store;
        let (Some(newest_old), Some((last_sealed, _))) = (store.newest_audit_id_before(before).await?, store.last_sealed_audit().await?)
        else {
            return Ok(0);
        };
        let through = newest_old.min(last_sealed);
        let Some(event) = store.audit_event(through).await? else { return Ok(0) };
        let Some(chain_hash) = event.chain_hash else { return Ok(0) };
        let seal = checkpoint_seal(&self.deps.keys, now, event.id, &chain_hash, event.record.at);
        store
            .insert_audit_checkpoint(&AuditCheckpoint { event_id: event.id, chain_hash, event_at: event.record.at, created_at: now, seal })
            .await?;
        let deleted = crate::batch::in_batches(|| store.delete_audit_through(event.id, crate::batch::PRUNE_BATCH)).await?;
        // Only once every event up to it is gone: verifying needs no older checkpoint.
        store.delete_audit_checkpoints_before(event.id).await?;
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_anchor_reads_back_as_printed_and_anything_else_is_refused_with_why() {
        let anchor = ChainAnchor { event_id: 42, seal: "a1b2c3d4$0f9e".into() };
        assert_eq!(ChainAnchor::parse(&anchor.to_string()), Ok(anchor));
        assert_eq!(ChainAnchor::parse(" 7:abc ").map(|a| a.event_id), Ok(7));
        for bad in ["", "42", "abc:def", "0:abc", "-3:abc", "42:", "42:abc def", "42:abc;drop", &format!("1:{}", "a".repeat(201))] {
            assert!(ChainAnchor::parse(bad).is_err(), "{bad:?}");
        }
    }
}
