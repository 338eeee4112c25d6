//! Clean-up without the app having to remember it: a sign-in request removes, on the side,
//! a bounded batch of expired rows, at most once per interval per instance.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};

use crate::model::CleanupReport;

/// Rows of each kind (sessions, codes, rate-limit counters) removed per batch.
pub(crate) const BATCH: u32 = 500;

/// Seconds between two batches of one instance, unless the last batch was full.
const INTERVAL_SECS: i64 = 5 * 60;

/// When the next batch is due (Unix seconds), shared by the requests of one instance.
#[derive(Debug, Default)]
pub(crate) struct Housekeeping {
    next_run: AtomicI64,
}

impl Housekeeping {
    /// Whether the caller should run a batch now; true for one caller per interval.
    pub(crate) fn due(&self, now: DateTime<Utc>) -> bool {
        let now = now.timestamp();
        let next = self.next_run.load(Ordering::Relaxed);
        now >= next
            && self
                .next_run
                .compare_exchange(
                    next,
                    now + INTERVAL_SECS,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    /// After a batch: a full batch means more is waiting, so the next request runs another.
    pub(crate) fn done(&self, report: &CleanupReport) {
        let full = u64::from(BATCH);
        if report.sessions >= full
            || report.verifications >= full
            || report.rate_limit_buckets >= full
        {
            self.next_run.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_batch_per_interval_unless_full() {
        let h = Housekeeping::default();
        let t = Utc::now();
        assert!(h.due(t));
        assert!(!h.due(t));
        assert!(!h.due(t + chrono::TimeDelta::seconds(INTERVAL_SECS - 1)));
        assert!(h.due(t + chrono::TimeDelta::seconds(INTERVAL_SECS)));
        h.done(&CleanupReport {
            sessions: u64::from(BATCH),
            verifications: 0,
            rate_limit_buckets: 0,
        });
        assert!(h.due(t + chrono::TimeDelta::seconds(INTERVAL_SECS)));
    }
}
