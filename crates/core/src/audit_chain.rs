//! The audit log's hash chain (checklist S10.3). Events are appended without a hash; a
//! sealer, run by the worker, chains them in id order once they are a minute old (so that
//! no slower transaction can still add an earlier id): each seal is an HMAC, under the server
//! key, of the event's fields and the previous seal. Sealing is deterministic, so two
//! replicas sealing at once write the same values. `doorman audit verify` walks the chain.

pub use crate::audit::ChainedEvent;
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainReport {
    Intact {
        sealed: u64,
        unsealed: u64,
    },
    /// The first event whose seal does not match (edited, or an event before it was removed
    /// or inserted).
    Broken {
        at_id: i64,
        sealed_before: u64,
    },
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
            let (mut previous_id, mut previous) = match self.store.last_sealed_audit().await? {
                Some((id, hash)) => (id, hash),
                None => (0, GENESIS.to_owned()),
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

    /// Recomputes every seal from the start.
    pub async fn verify_audit_chain(&self) -> Result<ChainReport, StoreError> {
        let mut previous = GENESIS.to_owned();
        let mut after = 0;
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
        Ok(ChainReport::Intact { sealed, unsealed })
    }
}
