//! Rate-limit counters and the bounded clean-up of expired rows.

use chrono::{DateTime, Utc};

use super::{execute, on_pool, Store, Ts};
use crate::error::Result;
use crate::model::CleanupReport;

/// The conflict clause that counts one more event in the live window of a counter, or
/// starts a new window (`excluded.window_end`) once it ended at `$now` (a parameter, Unix
/// seconds). Every SET expression reads the old row, so both CASEs agree.
macro_rules! count_event {
    ($now:literal) => {
        concat!(
            "ON CONFLICT (key) DO UPDATE SET \
               count = CASE WHEN futureauth_rate_limit.window_end > ",
            $now,
            " THEN futureauth_rate_limit.count + 1 ELSE 1 END, \
               window_end = CASE WHEN futureauth_rate_limit.window_end > ",
            $now,
            " THEN futureauth_rate_limit.window_end ELSE excluded.window_end END"
        )
    };
}
#[cfg(feature = "postgres")]
pub(super) use count_event;

/// Counts one event under `$1` at `$2` (Unix seconds) in a window of `$3` seconds; returns
/// the count and the window's end.
pub(super) const COUNT_EVENT: &str = concat!(
    "INSERT INTO futureauth_rate_limit (key, window_end, count) VALUES ($1, $2 + $3, 1) ",
    count_event!("$2"),
    " RETURNING count, window_end"
);

impl Store {
    /// Counts one event under `key` at `now` (Unix seconds) in a window of `window` seconds
    /// that starts with the first event after the previous window ended; returns the count
    /// and the window's end.
    pub(crate) async fn rate_limit_hit(
        &self,
        key: &str,
        now: i64,
        window: i64,
    ) -> Result<(i64, i64)> {
        let (count, end): (i32, i64) = on_pool!(self, conn => sqlx::query_as(COUNT_EVENT)
            .bind(key)
            .bind(now)
            .bind(window)
            .fetch_one(&mut *conn)
            .await?);
        Ok((i64::from(count), end))
    }

    /// Forgets the count under `key`.
    pub(crate) async fn rate_limit_reset(&self, key: &str) -> Result<()> {
        const SQL: &str = "DELETE FROM futureauth_rate_limit WHERE key = $1";
        execute!(self, SQL, key);
        Ok(())
    }

    /// Deletes expired sessions, codes, dead codes and old rate-limit windows, at most
    /// `limit` rows of each, so that a write that tidies up on the side costs a bounded
    /// amount however much has piled up.
    pub(crate) async fn cleanup(
        &self,
        now: DateTime<Utc>,
        max_attempts: u32,
        limit: u32,
    ) -> Result<CleanupReport> {
        const SESSIONS: &str = "DELETE FROM session WHERE id IN \
             (SELECT id FROM session WHERE expires_at <= $1 LIMIT $2)";
        const VERIFICATIONS: &str = "DELETE FROM verification WHERE id IN \
             (SELECT id FROM verification WHERE expires_at <= $1 OR attempts >= $2 LIMIT $3)";
        const RATE_LIMITS: &str = "DELETE FROM futureauth_rate_limit WHERE key IN \
             (SELECT key FROM futureauth_rate_limit WHERE window_end <= $1 LIMIT $2)";
        let limit = i64::from(limit);
        let max_attempts = i32::try_from(max_attempts).unwrap_or(i32::MAX);
        Ok(on_pool!(self, conn => CleanupReport {
            sessions: sqlx::query(SESSIONS)
                .bind(Ts(now))
                .bind(limit)
                .execute(&mut *conn)
                .await?
                .rows_affected(),
            verifications: sqlx::query(VERIFICATIONS)
                .bind(Ts(now))
                .bind(max_attempts)
                .bind(limit)
                .execute(&mut *conn)
                .await?
                .rows_affected(),
            rate_limit_buckets: sqlx::query(RATE_LIMITS)
                .bind(now.timestamp())
                .bind(limit)
                .execute(&mut *conn)
                .await?
                .rows_affected(),
        }))
    }
}
