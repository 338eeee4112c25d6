//! Retention: one background task deletes finished outbox messages older than the retention
//! (`--retention-days`, default 30) and expired rate-limit counters, once at start and then
//! every hour. Queued messages are never deleted.

use std::time::Duration;

use tokio::sync::watch;

use crate::error::StoreError;
use crate::service::now_ms;
use crate::store::Store;

/// How often the cleanup runs (it also runs once at start).
pub const CLEANUP_INTERVAL: Duration = Duration::from_secs(3600);
/// Rows deleted per statement.
pub const DELETE_BATCH: i64 = 1000;

/// What to delete.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Finished (`sent` / `failed`) messages created longer ago than this are deleted.
    pub messages: Duration,
    /// Rate-limit counters whose window started longer ago than this are deleted.
    pub rate_counters: Duration,
}

/// What one cleanup deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// Finished messages deleted.
    pub messages: u64,
    /// Rate-limit counters deleted.
    pub rate_counters: u64,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Deletes finished messages and rate counters older than `retention`, as seen at `now`
/// (epoch ms).
pub async fn cleanup(
    store: &Store,
    now: i64,
    retention: Retention,
) -> Result<CleanupReport, StoreError> {
    let messages = store
        .delete_finished_messages(now.saturating_sub(millis(retention.messages)), DELETE_BATCH)
        .await?;
    let rate_counters = store
        .prune_rate_counters(now.saturating_sub(millis(retention.rate_counters)))
        .await?;
    Ok(CleanupReport {
        messages,
        rate_counters,
    })
}

/// Runs [`cleanup`] now and then every `interval` until `shutdown` turns `true`. Errors are
/// logged and the next run retries.
pub async fn run(
    store: Store,
    retention: Retention,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        if *shutdown.borrow() {
            break;
        }
        match cleanup(&store, now_ms(), retention).await {
            Ok(r) if r.messages > 0 || r.rate_counters > 0 => tracing::info!(
                messages = r.messages,
                rate_counters = r.rate_counters,
                "cleanup: deleted old finished messages and rate counters"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cleanup failed; retrying at the next run"),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            changed = shutdown.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
    }
}
