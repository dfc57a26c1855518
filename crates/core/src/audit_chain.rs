//! The audit log's hash chain (checklist S10.3). Events are appended without a hash; a
//! sealer, run by the worker, chains them in id order once they are a minute old (so that
//! no slower transaction can still add an earlier id): each seal is an HMAC, under the server
//! key, of the event's fields and the previous seal. Sealing is deterministic, so two
//! replicas sealing at once write the same values. `doorman audit verify` walks the chain.
//!
//! Old events are pruned (issue 13, [`Audit::prune_audit_log`]): before the events up to id N
//! are deleted, a checkpoint records N, N's seal and time, itself sealed under the server key.
//! Verifying starts from the newest checkpoint below the first event left (or from the
//! start when there is none), so the chain still verifies; removing a checkpoint, or events
//! after one, still breaks it, and a checkpoint cannot be made without the key.

pub use crate::audit::{AuditCheckpoint, ChainedEvent};
use crate::deps::Deps;
use crate::keys::ServerKey;
use crate::store::StoreError;
use std::sync::Arc;

crate::storage_trait! {
    /// The storage `Audit` reads and writes.
    pub trait AuditChainStorage: crate::store::AuditStore
}

/// Events younger than this are left for the next round.
pub const SEAL_AFTER_SECONDS: i64 = 60;
const GENESIS: &str = "doorman-audit-chain";

/// The seal of one event, given the previous seal.
pub fn seal(key: &ServerKey, previous: &str, event: &ChainedEvent) -> String {
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
    key.keyed_hash("audit-chain", format!("{previous}\u{1f}{}", fields.join("\u{1f}")).as_bytes())
}

/// The seal of a checkpoint: only the holder of the server key can make one.
pub fn checkpoint_seal(key: &ServerKey, event_id: i64, chain_hash: &str, event_at: i64) -> String {
    key.keyed_hash("audit-checkpoint", format!("{event_id}\u{1f}{chain_hash}\u{1f}{event_at}").as_bytes())
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
            let (mut previous_id, mut previous) = match self.store.last_sealed_audit().await? {
                Some((id, hash)) => (id, hash),
                None => match self.deps.store.audit_checkpoint_before(None).await? {
                    Some(checkpoint) => (checkpoint.event_id, checkpoint.chain_hash),
                    None => (0, GENESIS.to_owned()),
                },
            };
            let batch = self.store.unsealed_audit(previous_id, before, 500).await?;
            if batch.is_empty() {
                return Ok(sealed);
            }
            for event in &batch {
                let hash = seal(&self.deps.key, &previous, event);
                self.store.seal_audit(event.id, &hash).await?;
                previous_id = event.id;
                previous = hash;
                sealed += 1;
            }
            let _ = previous_id;
        }
    }

    /// Recomputes every seal from the start, or from the newest checkpoint below the first
    /// event left when old events were pruned.
    pub async fn verify_audit_chain(&self) -> Result<ChainReport, StoreError> {
        let first = self.deps.store.first_audit_id().await?;
        let checkpoint = self.deps.store.audit_checkpoint_before(first).await?;
        let (mut previous, mut after) = match &checkpoint {
            Some(c) => {
                if c.seal != checkpoint_seal(&self.deps.key, c.event_id, &c.chain_hash, c.event_at) {
                    return Ok(ChainReport::Broken { at_id: first.unwrap_or(c.event_id), sealed_before: 0 });
                }
                (c.chain_hash.clone(), c.event_id)
            }
            None => (GENESIS.to_owned(), 0),
        };
        let mut sealed = 0u64;
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
                        if unsealed_seen.is_some() || *hash != seal(&self.deps.key, &previous, event) {
                            return Ok(ChainReport::Broken { at_id: event.id, sealed_before: sealed });
                        }
                        previous = hash.clone();
                        sealed += 1;
                    }
                    None => {
                        unsealed_seen.get_or_insert(event.id);
                    }
                }
            }
        }
        let unsealed = self.store.count_unsealed_audit().await?;
        Ok(ChainReport::Intact { sealed, unsealed, pruned_through: checkpoint.map(|c| c.event_id) })
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
        let seal = checkpoint_seal(&self.deps.key, event.id, &chain_hash, event.record.at);
        store
            .insert_audit_checkpoint(&AuditCheckpoint { event_id: event.id, chain_hash, event_at: event.record.at, created_at: now, seal })
            .await?;
        let deleted = crate::batch::in_batches(|| store.delete_audit_through(event.id, crate::batch::PRUNE_BATCH)).await?;
        // Only once every event up to it is gone: verifying needs no older checkpoint.
        store.delete_audit_checkpoints_before(event.id).await?;
        Ok(deleted)
    }
}
