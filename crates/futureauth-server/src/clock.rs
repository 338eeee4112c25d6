//! The time the server reads, in one leaf module every layer may use (the store included),
//! so that no lower layer reaches up into the service for it. Time is one type,
//! [`UnixMillis`], from the service's clock down to the stored rows.

use std::time::Duration;

/// A point in time as the server stores and compares it: Unix epoch milliseconds (a
/// `BIGINT` on Postgres, an `INTEGER` on SQLite). Stored, encoded and serialised exactly as
/// the plain `i64` it wraps, so neither stored values nor wire formats change.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    sqlx::Type,
)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct UnixMillis(i64);

impl UnixMillis {
    /// Now, by the system clock.
    pub fn now() -> UnixMillis {
        UnixMillis(chrono::Utc::now().timestamp_millis())
    }

    /// The time `ms` milliseconds after the Unix epoch.
    pub const fn from_millis(ms: i64) -> UnixMillis {
        UnixMillis(ms)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// Whole seconds since the Unix epoch (rounded down).
    pub const fn as_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// Milliseconds from `earlier` to this time (negative if `earlier` is later).
    pub fn millis_since(self, earlier: UnixMillis) -> i64 {
        self.0.saturating_sub(earlier.0)
    }

    /// RFC 3339 in UTC with milliseconds (`2026-11-28T19:20:00.000Z`); empty for a time
    /// chrono cannot represent.
    pub fn to_rfc3339(self) -> String {
        chrono::DateTime::from_timestamp_millis(self.0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default()
    }
}

/// `d` later, saturating (like [`std::time::SystemTime`] `+ Duration`).
impl std::ops::Add<Duration> for UnixMillis {
    type Output = UnixMillis;
    fn add(self, d: Duration) -> UnixMillis {
        UnixMillis(self.0.saturating_add(millis(d)))
    }
}

/// `d` earlier, saturating.
impl std::ops::Sub<Duration> for UnixMillis {
    type Output = UnixMillis;
    fn sub(self, d: Duration) -> UnixMillis {
        UnixMillis(self.0.saturating_sub(millis(d)))
    }
}

impl From<UnixMillis> for i64 {
    fn from(t: UnixMillis) -> i64 {
        t.0
    }
}

impl std::fmt::Display for UnixMillis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A duration in whole milliseconds, saturating at `i64::MAX`.
pub fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Current time in Unix epoch milliseconds (see [`UnixMillis::now`]).
pub fn now_ms() -> i64 {
    UnixMillis::now().as_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_and_formats() {
        let t = UnixMillis::from_millis(1_795_914_000_000);
        assert_eq!((t + Duration::from_secs(2)).millis_since(t), 2_000);
        assert_eq!(
            (t - Duration::from_millis(1)).as_millis(),
            1_795_913_999_999
        );
        assert_eq!(
            (UnixMillis::from_millis(i64::MAX) + Duration::MAX).as_millis(),
            i64::MAX
        );
        assert_eq!(t.as_secs(), 1_795_914_000);
        assert_eq!(UnixMillis::from_millis(-1).as_secs(), -1);
        assert_eq!(t.to_rfc3339(), "2026-11-29T01:00:00.000Z");
        assert_eq!(serde_json::to_string(&t).unwrap(), "1795914000000");
    }
}
