//! The sign-in logic, storage- and transport-agnostic: it asks the [`Store`] to remember
//! and the [`Delivery`] to send. Nothing here knows about HTTP or a particular database.

pub(crate) mod account;
pub(crate) mod approval;
pub(crate) mod magic_link;
pub(crate) mod otp;
pub(crate) mod session;

use std::net::IpAddr;

use chrono::{DateTime, Utc};

use crate::config::FutureAuthConfig;
use crate::context::RequestContext;
use crate::delivery::Delivery;
use crate::error::{FutureAuthError, Result};
use crate::hooks::{AuthHooks, SendAttempt, SendPurpose};
use crate::identifier::Identifier;
use crate::rate_limit;
use crate::store::{Kind, NewVerification, Store};
use crate::token::{generate_id, CodeKey};

/// What the flows need from the [`FutureAuth`](crate::FutureAuth) facade.
pub(crate) struct Ctx<'a> {
    pub store: &'a Store,
    pub delivery: &'a dyn Delivery,
    pub config: &'a FutureAuthConfig,
    pub code_key: &'a CodeKey,
    pub hooks: &'a dyn AuthHooks,
}

/// Asks the app's [`AuthHooks::before_send`] whether to send to `identifier`; a refusal
/// becomes [`FutureAuthError::Refused`] before anything is written.
pub(crate) async fn check_send(
    ctx: &Ctx<'_>,
    identifier: &Identifier,
    purpose: SendPurpose,
    req: &RequestContext,
    user_id: Option<&str>,
) -> Result<()> {
    let attempt = SendAttempt {
        destination: identifier.as_str(),
        purpose,
        client_ip: req.client_ip,
        hook_token: req.hook_token.as_deref(),
        user_id,
        is_email: matches!(identifier, Identifier::Email(_)),
    };
    ctx.hooks
        .before_send(&attempt)
        .await
        .map_err(|r| FutureAuthError::Refused {
            code: r.code,
            message: r.message,
        })
}

/// A code or link of `kind` to store for `identifier` under a fresh id: bound to
/// `binding_hash` (`None`: unbound), living `ttl` from `now`, naming no link and no
/// requester (set those on the result where they apply).
pub(crate) fn new_verification<'a>(
    kind: Kind,
    identifier: &'a Identifier,
    binding_hash: Option<&'a str>,
    code_hash: &'a str,
    now: DateTime<Utc>,
    ttl: std::time::Duration,
) -> NewVerification<'a> {
    NewVerification {
        id: generate_id(),
        identifier: identifier.as_str(),
        kind,
        binding_hash,
        code_hash,
        expires_at: now + ttl,
        now,
        link_hash: None,
        requester: None,
    }
}

/// What per-address limits count: the mailbox of an email (`ada+1@x` and `ada+2@x` reach
/// one inbox) or the E.164 number of a phone.
fn address_key(identifier: &Identifier) -> String {
    match identifier {
        Identifier::Email(email) => futureauth_proto::Email::parse(email)
            .map_or_else(|_| email.clone(), |email| email.mailbox()),
        Identifier::Phone(phone) => phone.clone(),
    }
}

/// Applies the send limits, the client's own first, so that a request refused for its
/// network costs the address nothing:
/// 1. per client IP (IPv4 address, IPv6 /64), then per IPv6 /48;
/// 2. per address and client network: a short throttle, then an hourly quota;
/// 3. per address from everyone (the inbox-flood ceiling).
///
/// Without a known client IP only the per-address ceiling applies.
///
/// Returns the client's throttle, to [`refund`](Throttle::refund) when the delivery fails:
/// a person whose send failed may try again at once.
pub(crate) async fn limit_send(
    ctx: &Ctx<'_>,
    identifier: &Identifier,
    ip: Option<IpAddr>,
    now: DateTime<Utc>,
) -> Result<Throttle> {
    let limits = &ctx.config.rate_limits;
    let address = address_key(identifier);
    let mut throttle = Throttle(None);
    if let Some(ip) = ip {
        let group = rate_limit::ip_group(ip);
        rate_limit::hit(
            ctx.store,
            &format!("send:ip:{group}"),
            limits.send_per_ip,
            now,
        )
        .await?;
        if let Some(site) = rate_limit::ipv6_48(ip) {
            let key = format!("send:ip48:{site}");
            rate_limit::hit(ctx.store, &key, limits.send_per_ipv6_48, now).await?;
        }
        let client = rate_limit::client_network(ip);
        let key = format!("send:throttle:{address}:{client}");
        rate_limit::hit(ctx.store, &key, limits.send_throttle, now).await?;
        throttle = Throttle(Some(key));
        let key = format!("send:addr-client:{address}:{client}");
        rate_limit::hit(ctx.store, &key, limits.send_per_identifier_per_client, now).await?;
    }
    let key = format!("send:addr:{address}");
    rate_limit::hit(ctx.store, &key, limits.send_per_identifier, now).await?;
    Ok(throttle)
}

/// The short per-client throttle a send went through (none without a client IP).
pub(crate) struct Throttle(Option<String>);

impl Throttle {
    /// Lets the client send again at once: its send was not delivered. The quotas stay
    /// counted, so failing sends cannot be used to flood.
    pub(crate) async fn refund(self, ctx: &Ctx<'_>) -> Result<()> {
        match self.0 {
            Some(key) => ctx.store.rate_limit_reset(&key).await,
            None => Ok(()),
        }
    }
}

/// When a verify of `req` starts: now, once its client IP has passed the per-IP verify limit
/// (every verify counts there before it looks at what it was given).
pub(crate) async fn start_verify(ctx: &Ctx<'_>, req: &RequestContext) -> Result<DateTime<Utc>> {
    let now = Utc::now();
    limit_verify_ip(ctx, req.client_ip, now).await?;
    Ok(now)
}

/// Applies the per-IP verify limit when the client IP is known.
pub(crate) async fn limit_verify_ip(
    ctx: &Ctx<'_>,
    ip: Option<IpAddr>,
    now: DateTime<Utc>,
) -> Result<()> {
    if let Some(ip) = ip {
        let key = verify_ip_key(ip);
        rate_limit::hit(ctx.store, &key, ctx.config.rate_limits.verify_per_ip, now).await?;
    }
    Ok(())
}

/// The counter of the per-IP verify limit.
pub(crate) fn verify_ip_key(ip: IpAddr) -> String {
    format!("verify:ip:{}", rate_limit::ip_group(ip))
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
