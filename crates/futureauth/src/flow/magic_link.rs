//! Magic sign-in links by email.

use chrono::{DateTime, Utc};

use super::session::printable;
use super::{limit_send, new_verification, session, start_verify, Ctx};
use crate::context::RequestContext;
use crate::delivery::{Channel, DeliveryError, Message};
use crate::error::{FutureAuthError, Result};
use crate::hooks::SendPurpose;
use crate::identifier::{normalize_email, Identifier};
use crate::model::{AuthMethod, Session, User};
use crate::origins::{parse_callback, TrustedOrigins};
use crate::store::{Kind, NewVerification, Requester, TakenLink};
use crate::token::{generate_code, generate_match_number, generate_token, hash_token};

/// Checks the page a link opens. A link to a page the app does not own would hand a
/// working sign-in token to that page, so the list comes from configuration only.
///
/// With nothing configured, a delivery that checks callbacks against its own list (the
/// FutureAuth service) decides; any other delivery cannot send links safely.
pub(crate) fn check_callback(
    callback_url: &str,
    origins: &TrustedOrigins,
    delivery_checks: bool,
) -> Result<url::Url> {
    let shown: String = callback_url.chars().take(200).collect();
    let url = parse_callback(callback_url)
        .map_err(|why| FutureAuthError::CallbackNotAllowed(format!("{shown:?} {why}")))?;
    if origins.is_empty() {
        if delivery_checks {
            return Ok(url);
        }
        return Err(FutureAuthError::Misconfigured(
            "magic links need the app's address: set FUTUREAUTH_APP_URL \
             (FutureAuthConfig::app_url), or allowed_origins or callback_urls"
                .to_string(),
        ));
    }
    if !origins.allows_callback(&url) {
        return Err(FutureAuthError::CallbackNotAllowed(format!(
            "{shown:?} is not on app_url's origin, allowed_origins or callback_urls"
        )));
    }
    Ok(url)
}

/// Creates a 256-bit link token, stores its hash and emails `callback_url?token=...`, with a
/// short code in the same email that completes the same sign-in (`verify-otp`): one
/// sign-in, two ways to finish, consumed together. The code has the attempt budget of any
/// code; the link needs none.
///
/// Sent from a browser (`req.binding`), the link remembers it, and the number it is to show
/// should the link be opened on another device, which is returned.
pub(crate) async fn send(
    ctx: &Ctx<'_>,
    email: &str,
    callback: url::Url,
    req: &RequestContext,
) -> Result<Option<String>> {
    let identifier = Identifier::Email(normalize_email(email)?);
    super::check_send(ctx, &identifier, SendPurpose::SignInLink, req, None).await?;
    let now = Utc::now();
    let throttle = limit_send(ctx, &identifier, req.client_ip, now).await?;
    let NewLink {
        token,
        token_hash,
        code,
        match_number,
    } = store_link(ctx, &identifier, req, now).await?;

    let mut link = callback.clone();
    link.query_pairs_mut()
        .append_pair(futureauth_proto::TOKEN_PARAM, &token);
    let message = Message {
        channel: Channel::MagicLink,
        destination: identifier.as_str().to_string(),
        code: token,
        project_name: ctx.config.project_name.clone(),
        link: Some(link.into()),
        callback_url: Some(callback.into()),
        locale: req.locale.as_ref().map(ToString::to_string),
        link_code: Some(code),
        purpose: None,
        new_address: None,
    };
    if let Err(e) = ctx.delivery.deliver(&message).await {
        ctx.store
            .delete_verification(identifier.as_str(), Kind::MagicLink, &token_hash)
            .await?;
        ctx.store.delete_link_code(&token_hash).await?;
        throttle.refund(ctx).await?;
        tracing::warn!(error = %e, "futureauth: magic link delivery failed");
        return Err(match e {
            DeliveryError::CallbackRefused(why) => FutureAuthError::CallbackNotAllowed(why),
            other => other.into(),
        });
    }
    Ok(match_number)
}

/// A link just stored: its token and code, to send (only their hashes are kept), and the
/// number the asking browser is to show.
struct NewLink {
    token: String,
    token_hash: String,
    code: String,
    match_number: Option<String>,
}

/// Creates a link (a 256-bit token and, sent from a browser, who asked and the number that
/// browser shows) and the code that goes with it, and stores their hashes.
async fn store_link(
    ctx: &Ctx<'_>,
    identifier: &Identifier,
    req: &RequestContext,
    now: DateTime<Utc>,
) -> Result<NewLink> {
    let token = generate_token();
    let token_hash = hash_token(&token);
    let match_number = req.binding.as_ref().map(|_| generate_match_number());
    let code = generate_code(ctx.config.otp_length);
    let requester_hash = req.binding.as_ref().map(|b| b.hash());
    let requester_ip = req.client_ip.map(|ip| ip.to_string());
    let requester_agent = req.user_agent.as_deref().map(|ua| printable(ua, 512));
    let requester =
        requester_hash
            .as_deref()
            .zip(match_number.as_deref())
            .map(|(hash, match_number)| Requester {
                hash,
                ip: requester_ip.as_deref(),
                agent: requester_agent.as_deref(),
                match_number,
            });
    // Each link is its own row (a 256-bit token needs no attempt limit), so a link somebody
    // else requests never voids the one in the person's inbox.
    let link = new_verification(
        Kind::MagicLink,
        identifier,
        Some(&token_hash),
        &token_hash,
        now,
        ctx.config.magic_link_ttl,
    );
    ctx.store
        .put_verification(&NewVerification { requester, ..link })
        .await?;
    // The code of this link: a row of its own (keyed by the link), so that it neither
    // replaces nor is replaced by the codes the person asked for separately.
    let code_hash = ctx.code_key.hash_code(identifier.as_str(), &code);
    let link_code = new_verification(
        Kind::Otp,
        identifier,
        Some(&token_hash),
        &code_hash,
        now,
        ctx.config.magic_link_ttl.min(ctx.config.otp_ttl),
    );
    ctx.store
        .put_verification(&NewVerification {
            link_hash: Some(&token_hash),
            ..link_code
        })
        .await?;
    Ok(NewLink {
        token,
        token_hash,
        code,
        match_number,
    })
}

/// The token as typed or pasted, trimmed; never an empty or oversized one (anything over
/// 256 bytes is not ours and is not hashed).
pub(super) fn link_token(token: &str) -> Result<&str> {
    let token = token.trim();
    if token.is_empty() || token.len() > 256 {
        return Err(FutureAuthError::InvalidMagicLink);
    }
    Ok(token)
}

/// Consumes a link token (exactly once, even under concurrent use) and signs the user in.
pub(crate) async fn verify(
    ctx: &Ctx<'_>,
    token: &str,
    req: &RequestContext,
) -> Result<(User, Session)> {
    let token = link_token(token)?;
    let now = start_verify(ctx, req).await?;
    let requester_hash = req.binding.as_ref().map(|b| b.hash());
    let required = ctx
        .config
        .magic_link_same_browser
        .then_some(requester_hash.as_deref());
    let (identifier, expires_at) = match ctx
        .store
        .take_magic_link(&hash_token(token), required)
        .await?
    {
        TakenLink::Taken(identifier, expires_at) => (identifier, expires_at),
        TakenLink::Unknown => return Err(FutureAuthError::InvalidMagicLink),
        TakenLink::OtherBrowser => return Err(FutureAuthError::MagicLinkOtherBrowser),
    };
    if expires_at <= now {
        return Err(FutureAuthError::MagicLinkExpired);
    }
    let identifier =
        Identifier::parse(&identifier).map_err(|_| FutureAuthError::InvalidMagicLink)?;
    session::sign_in(ctx, &identifier, req, AuthMethod::MagicLink, now).await
}
