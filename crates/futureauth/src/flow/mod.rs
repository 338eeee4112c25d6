//! The sign-in logic, storage- and transport-agnostic: it asks the [`Store`] to remember
//! and the [`Delivery`] to send. Nothing here knows about HTTP or a particular database.

pub(crate) mod magic_link;
pub(crate) mod otp;
pub(crate) mod session;

use std::net::IpAddr;

use chrono::{DateTime, Utc};

use crate::config::FutureAuthConfig;
use crate::delivery::Delivery;
use crate::error::Result;
use crate::identifier::Identifier;
use crate::rate_limit;
use crate::store::Store;
use crate::token::CodeKey;

/// What the flows need from the [`FutureAuth`](crate::FutureAuth) facade.
pub(crate) struct Ctx<'a> {
    pub store: &'a dyn Store,
    pub delivery: &'a dyn Delivery,
    pub config: &'a FutureAuthConfig,
    pub code_key: &'a CodeKey,
}

/// Applies the send limits: per identifier always, per client IP when it is known.
pub(crate) async fn limit_send(
    ctx: &Ctx<'_>,
    identifier: &Identifier,
    ip: Option<IpAddr>,
    now: DateTime<Utc>,
) -> Result<()> {
    let limits = &ctx.config.rate_limits;
    rate_limit::hit(
        ctx.store,
        &format!("send:id:{identifier}"),
        limits.send_per_identifier,
        now,
    )
    .await?;
    if let Some(ip) = ip {
        let key = format!("send:ip:{}", rate_limit::ip_group(ip));
        rate_limit::hit(ctx.store, &key, limits.send_per_ip, now).await?;
    }
    Ok(())
}

/// Applies the per-IP verify limit when the client IP is known.
pub(crate) async fn limit_verify_ip(
    ctx: &Ctx<'_>,
    ip: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    if let Some(ip) = ip.and_then(|s| s.trim().parse::<IpAddr>().ok()) {
        let key = format!("verify:ip:{}", rate_limit::ip_group(ip));
        rate_limit::hit(ctx.store, &key, ctx.config.rate_limits.verify_per_ip, now).await?;
    }
    Ok(())
}

/// Cuts client-supplied text to at most `max` bytes, on a character boundary.
pub(crate) fn clip(s: Option<&str>, max: usize) -> Option<&str> {
    s.map(|s| {
        let end = (0..=s.len().min(max))
            .rev()
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(0);
        &s[..end]
    })
}
