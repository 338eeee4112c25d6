//! Retention: one background task deletes finished outbox messages older than the retention
//! (`--retention-days`, default 30) and expired rate-limit counters, once at start and then
//! every hour. Queued messages are never deleted: those waiting longer than
//! `--max-queue-age` (a provider down for long) are marked `failed` with
//! [`EXPIRED_IN_QUEUE`] instead, so the outbox stays bounded and their status honest.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::clock::UnixMillis;
use crate::error::StoreError;
use crate::service::validate;
use crate::store::{Outcome, Store};

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

/// The `error` of a message that waited longer than the maximum queue age.
pub const EXPIRED_IN_QUEUE: &str = "expired_in_queue";

/// Marks `failed` every queued message created more than `max_age` before `now`
/// that no worker is sending, with the error [`EXPIRED_IN_QUEUE`]; erases their payload and
/// masks their destination like any finished message. Returns how many.
pub async fn expire_queued(
    store: &Store,
    now: UnixMillis,
    max_age: Duration,
) -> Result<u64, StoreError> {
    let before = now - max_age;
    let reason = expired_reason(max_age);
    let mut total = 0;
    loop {
        let stale = store.stale_queued(before, now, DELETE_BATCH).await?;
        let n = stale.len();
        for msg in stale {
            let masked = validate::mask_destination(&msg.destination);
            // Fenced by the attempt count: a message a worker claimed meanwhile is left to it.
            if store
                .complete(
                    &msg.id,
                    msg.attempts,
                    Outcome::Failed {
                        masked_destination: &masked,
                        error: &reason,
                    },
                    UnixMillis::now(),
                )
                .await?
            {
                total += 1;
            }
        }
        if n < usize::try_from(DELETE_BATCH).unwrap_or(usize::MAX) {
            return Ok(total);
        }
    }
}

/// `expired_in_queue: …`, the stored error of an expired message.
pub fn expired_reason(max_age: Duration) -> String {
    format!(
        "{EXPIRED_IN_QUEUE}: not delivered within {} s of being accepted; not sent",
        max_age.as_secs()
    )
}

/// How often queued messages are checked for expiry: a quarter of the maximum age,
/// between 1 s and [`CLEANUP_INTERVAL`].
pub fn expiry_interval(max_queue_age: Duration) -> Duration {
    (max_queue_age / 4).clamp(Duration::from_secs(1), CLEANUP_INTERVAL)
}

/// Deletes finished messages and rate counters older than `retention`, as seen at `now`.
pub async fn cleanup(
    store: &Store,
    now: UnixMillis,
    retention: Retention,
) -> Result<CleanupReport, StoreError> {
    let messages = store
        .delete_finished_messages(now - retention.messages, DELETE_BATCH)
        .await?;
    let rate_counters = store
        .prune_rate_counters(now - retention.rate_counters)
        .await?;
    Ok(CleanupReport {
        messages,
        rate_counters,
    })
}

/// Runs [`cleanup`] now and then every [`CLEANUP_INTERVAL`], and [`expire_queued`] every
/// [`expiry_interval`], until `shutdown` turns `true`. Errors (the database is down) are
/// logged and the next run retries.
pub async fn run(
    store: Store,
    retention: Retention,
    max_queue_age: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let tick = expiry_interval(max_queue_age);
    let mut next_cleanup = Instant::now();
    loop {
        if *shutdown.borrow() {
            break;
        }
        match expire_queued(&store, UnixMillis::now(), max_queue_age).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                messages = n,
                max_queue_age_secs = max_queue_age.as_secs(),
                "expired queued messages that waited too long for delivery"
            ),
            Err(e) => tracing::warn!(error = %e, "expiring queued messages failed; retrying"),
        }
        if Instant::now() >= next_cleanup {
            match cleanup(&store, UnixMillis::now(), retention).await {
                Ok(r) => {
                    next_cleanup = Instant::now() + CLEANUP_INTERVAL;
                    if r.messages > 0 || r.rate_counters > 0 {
                        tracing::info!(
                            messages = r.messages,
                            rate_counters = r.rate_counters,
                            "cleanup: deleted old finished messages and rate counters"
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cleanup failed; retrying at the next run"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            changed = shutdown.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
    }
}
