//! Magic sign-in links by email.

use std::net::IpAddr;

use chrono::Utc;

use super::{limit_send, limit_verify_ip, session, Ctx};
use crate::config::parse_origin;
use crate::delivery::{Channel, Message};
use crate::error::{FutureAuthError, Result};
use crate::identifier::{normalize_email, Identifier};
use crate::model::{Session, User};
use crate::store::{Kind, NewVerification};
use crate::token::{generate_id, generate_token, hash_token};

/// Checks the page a link opens: http(s), and when `allowed` is non-empty, one of its origins.
/// A link to a foreign origin would hand a working sign-in token to that origin.
pub(crate) fn check_callback(callback_url: &str, allowed: &[String]) -> Result<url::Url> {
    let url = url::Url::parse(callback_url.trim()).map_err(|_| {
        FutureAuthError::CallbackNotAllowed(format!("{callback_url:?} is not an absolute URL"))
    })?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return Err(FutureAuthError::CallbackNotAllowed(format!(
            "{callback_url:?} is not an http(s) URL"
        )));
    }
    let origin = url.origin().ascii_serialization();
    let listed = allowed
        .iter()
        .any(|a| parse_origin(a).is_ok_and(|a| a == origin));
    if !allowed.is_empty() && !listed {
        return Err(FutureAuthError::CallbackNotAllowed(format!(
            "origin {origin} is not in allowed_origins"
        )));
    }
    Ok(url)
}

/// Creates a 256-bit link token, stores its hash and emails `callback_url?token=...`.
pub(crate) async fn send(
    ctx: &Ctx<'_>,
    email: &str,
    callback: url::Url,
    ip: Option<IpAddr>,
) -> Result<()> {
    let identifier = Identifier::Email(normalize_email(email)?);
    let now = Utc::now();
    limit_send(ctx, &identifier, ip, now).await?;

    let token = generate_token();
    let token_hash = hash_token(&token);
    ctx.store
        .put_verification(&NewVerification {
            id: generate_id(),
            identifier: identifier.as_str(),
            kind: Kind::MagicLink,
            // Each link is its own row (a 256-bit token needs no attempt limit), so a link
            // somebody else requests never voids the one in the person's inbox.
            binding_hash: Some(&token_hash),
            code_hash: &token_hash,
            expires_at: now + ctx.config.magic_link_ttl,
            now,
        })
        .await?;

    let mut link = callback.clone();
    link.query_pairs_mut().append_pair("token", &token);
    let message = Message {
        channel: Channel::MagicLink,
        destination: identifier.as_str().to_string(),
        code: token,
        project_name: ctx.config.project_name.clone(),
        link: Some(link.into()),
        callback_url: Some(callback.into()),
    };
    if let Err(e) = ctx.delivery.deliver(&message).await {
        ctx.store
            .delete_verification(identifier.as_str(), Kind::MagicLink, &token_hash)
            .await?;
        tracing::warn!(error = %e, "futureauth: magic link delivery failed");
        return Err(e.into());
    }
    Ok(())
}

/// Consumes a link token (exactly once, even under concurrent use) and signs the user in.
pub(crate) async fn verify(
    ctx: &Ctx<'_>,
    token: &str,
    ip: Option<&str>,
    user_agent: Option<&str>,
) -> Result<(User, Session)> {
    let token = token.trim();
    if token.is_empty() || token.len() > 256 {
        return Err(FutureAuthError::InvalidMagicLink);
    }
    let now = Utc::now();
    limit_verify_ip(ctx, ip, now).await?;
    let Some((identifier, expires_at)) = ctx.store.take_magic_link(&hash_token(token)).await?
    else {
        return Err(FutureAuthError::InvalidMagicLink);
    };
    if expires_at <= now {
        return Err(FutureAuthError::MagicLinkExpired);
    }
    let identifier =
        Identifier::parse(&identifier).map_err(|_| FutureAuthError::InvalidMagicLink)?;
    session::sign_in(ctx, &identifier, ip, user_agent, now).await
}
