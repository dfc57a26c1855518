//! Work done in small batches with a pause between two, so that it never holds long locks
//! and requests get the database in between (retention, the audit log's prune).

use crate::store::StoreError;
use std::future::Future;
use std::time::Duration;

/// Rows one statement deletes or blanks at most.
pub const PRUNE_BATCH: i64 = 500;
/// The pause between two batches, so that requests get the database in between.
pub const PRUNE_PAUSE: Duration = Duration::from_millis(20);

/// Runs `batch` until it does less than a full batch, pausing between two; the total.
pub async fn in_batches<F, Fut>(mut batch: F) -> Result<u64, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<u64, StoreError>>,
{
    let mut total = 0;
    loop {
        let done = batch().await?;
        total += done;
        if done < PRUNE_BATCH as u64 {
            return Ok(total);
        }
        tokio::time::sleep(PRUNE_PAUSE).await;
    }
}
