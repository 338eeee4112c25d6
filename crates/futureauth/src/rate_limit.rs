//! Fixed-window rate limits counted in the database, shared by every app instance.

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::RateLimit;
use crate::error::{FutureAuthError, Result};
use crate::store::Store;

/// End of the window containing `now`, in Unix seconds.
fn window_end(limit: RateLimit, now: DateTime<Utc>) -> i64 {
    let window = i64::try_from(limit.window.as_secs().max(1)).unwrap_or(i64::MAX);
    (now.timestamp().div_euclid(window) + 1).saturating_mul(window)
}

fn limited(end: i64, now: DateTime<Utc>) -> FutureAuthError {
    let secs = u64::try_from(end - now.timestamp()).unwrap_or(1).max(1);
    FutureAuthError::RateLimited {
        retry_after: Duration::from_secs(secs),
    }
}

/// Counts one event under `key`; fails once the window holds more than `limit.max`.
pub(crate) async fn hit(
    store: &dyn Store,
    key: &str,
    limit: RateLimit,
    now: DateTime<Utc>,
) -> Result<()> {
    let end = window_end(limit, now);
    let count = store.rate_limit_hit(key, end).await?;
    if count > i64::from(limit.max) {
        return Err(limited(end, now));
    }
    Ok(())
}

/// Fails if the window under `key` is already full, without counting.
pub(crate) async fn check(
    store: &dyn Store,
    key: &str,
    limit: RateLimit,
    now: DateTime<Utc>,
) -> Result<()> {
    let end = window_end(limit, now);
    if store.rate_limit_count(key, end).await? >= i64::from(limit.max) {
        return Err(limited(end, now));
    }
    Ok(())
}

/// The rate-limit group of a client address: the address itself for IPv4, its /64 network
/// for IPv6 (one subscriber usually owns a whole /64).
pub(crate) fn ip_group(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_is_grouped_by_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ip_group(a), ip_group(b));
        assert_ne!(ip_group(a), ip_group(c));
        assert_eq!(ip_group("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1");
        assert_eq!(ip_group("10.0.0.1".parse().unwrap()), "10.0.0.1");
    }

    #[test]
    fn windows_are_aligned() {
        let limit = RateLimit::new(1, Duration::from_secs(60));
        let now = DateTime::from_timestamp(125, 0).unwrap();
        assert_eq!(window_end(limit, now), 180);
        assert_eq!(
            limited(180, now).to_string(),
            "too many requests, retry in 55 s"
        );
    }
}
