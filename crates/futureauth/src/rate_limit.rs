//! Rate limits counted in the database, shared by every app instance, and the client
//! networks they count.

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::RateLimit;
use crate::error::{FutureAuthError, Result};
use crate::store::{Counter, Store};

fn limited(end: i64, now: DateTime<Utc>) -> FutureAuthError {
    let secs = u64::try_from(end - now.timestamp()).unwrap_or(1).max(1);
    FutureAuthError::RateLimited {
        retry_after: Duration::from_secs(secs),
    }
}

/// Counts one event under `key`; fails once the window holds more than `limit.max`.
///
/// A window starts at the first event after the last one ended (not at a multiple of its
/// length), so "1 per 30 s" really means 30 s between two accepted events.
pub(crate) async fn hit(
    store: &Store,
    key: &str,
    limit: RateLimit,
    now: DateTime<Utc>,
) -> Result<()> {
    let counted = store
        .rate_limit_hit(key, now.timestamp(), window_secs(limit))
        .await?;
    check(Some(counted), limit, now)
}

/// The counter of `limit` under `key`, for a store call that counts it with other work
/// (a guess at a code: [`Store::redeem_code`]).
pub(crate) fn counter(key: &str, limit: RateLimit) -> Counter<'_> {
    Counter {
        key,
        window: window_secs(limit),
        max: i64::from(limit.max),
    }
}

/// Fails when a count of `limit` (its count and window end, `None`: not counted) passed
/// its most events.
pub(crate) fn check(
    counted: Option<(i64, i64)>,
    limit: RateLimit,
    now: DateTime<Utc>,
) -> Result<()> {
    match counted {
        Some((count, end)) if count > i64::from(limit.max) => Err(limited(end, now)),
        _ => Ok(()),
    }
}

fn window_secs(limit: RateLimit) -> i64 {
    i64::try_from(limit.window.as_secs().max(1)).unwrap_or(i64::MAX / 4)
}

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are the IPv4 client they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn v6_prefix(segments: &[u16], bits: u8) -> String {
    let hex: Vec<String> = segments.iter().map(|s| format!("{s:x}")).collect();
    format!("{}::/{bits}", hex.join(":"))
}

/// The per-IP group of a client address: the address itself for IPv4, its /64 network
/// for IPv6 (one subscriber usually owns a whole /64).
pub(crate) fn ip_group(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => v6_prefix(&v6.segments()[..4], 64),
    }
}

/// The IPv6 /48 of a client address (a site: 65,536 /64s), or `None` for IPv4.
pub(crate) fn ipv6_48(ip: IpAddr) -> Option<String> {
    match canonical(ip) {
        IpAddr::V4(_) => None,
        IpAddr::V6(v6) => Some(v6_prefix(&v6.segments()[..3], 48)),
    }
}

/// The client network that per-address send limits count: an IPv4 address or an IPv6 /48,
/// so that an attacker gains nothing by hopping between the /64s of one site.
pub(crate) fn client_network(ip: IpAddr) -> String {
    ipv6_48(ip).unwrap_or_else(|| ip_group(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_is_grouped_by_64() {
        let group = |s| ip_group(ip(s));
        let a = group("2001:db8:1:2:aaaa::1");
        assert_eq!(a, group("2001:db8:1:2:ffff::9"));
        assert_ne!(a, group("2001:db8:1:3::1"));
        assert_eq!(group("::ffff:10.0.0.1"), "10.0.0.1");
        assert_eq!(group("10.0.0.1"), "10.0.0.1");
        assert_eq!(a, "2001:db8:1:2::/64");
    }

    #[test]
    fn client_networks_are_ipv4_addresses_and_ipv6_48s() {
        let network = |s| client_network(ip(s));
        let a = network("2001:db8:1:2::1");
        assert_eq!(a, network("2001:db8:1:ffff::1"));
        assert_eq!(a, "2001:db8:1::/48");
        assert_ne!(a, network("2001:db8:2::1"));
        assert_eq!(ipv6_48(ip("10.0.0.1")), None);
        assert_eq!(ipv6_48(ip("::ffff:10.0.0.1")), None);
        assert_eq!(network("::ffff:10.0.0.1"), "10.0.0.1");
    }

    #[test]
    fn retry_after_is_the_rest_of_the_window() {
        let now = DateTime::from_timestamp(125, 0).unwrap();
        assert_eq!(
            limited(180, now).to_string(),
            "too many requests, retry in 55 s"
        );
        assert_eq!(
            limited(125, now).to_string(),
            "too many requests, retry in 1 s"
        );
    }
}
