//! One-time codes by email or SMS.

use std::net::IpAddr;

use chrono::Utc;

use super::{limit_send, limit_verify_ip, session, Ctx};
use crate::delivery::{Channel, Message};
use crate::error::{FutureAuthError, Result};
use crate::identifier::{normalize_email, normalize_phone, Identifier};
use crate::model::{OtpChannel, Session, User};
use crate::rate_limit;
use crate::store::{Kind, NewVerification};
use crate::token::{ct_eq, generate_code, generate_id, normalize_code};

/// Creates a code (replacing any live one), stores its keyed hash and delivers it.
pub(crate) async fn send(
    ctx: &Ctx<'_>,
    channel: OtpChannel,
    destination: &str,
    ip: Option<IpAddr>,
) -> Result<()> {
    let identifier = match channel {
        OtpChannel::Email => Identifier::Email(normalize_email(destination)?),
        OtpChannel::Phone => Identifier::Phone(normalize_phone(destination)?),
    };
    let now = Utc::now();
    limit_send(ctx, &identifier, ip, now).await?;

    let code = generate_code(ctx.config.otp_length);
    let code_hash = ctx.code_key.hash_code(identifier.as_str(), &code);
    ctx.store
        .put_verification(&NewVerification {
            id: generate_id(),
            identifier: identifier.as_str(),
            kind: Kind::Otp,
            code_hash: &code_hash,
            expires_at: now + ctx.config.otp_ttl,
            now,
        })
        .await?;

    let message = Message {
        channel: match channel {
            OtpChannel::Email => Channel::Email,
            OtpChannel::Phone => Channel::Sms,
        },
        destination: identifier.as_str().to_string(),
        code,
        project_name: ctx.config.project_name.clone(),
        link: None,
        callback_url: None,
    };
    if let Err(e) = ctx.delivery.deliver(&message).await {
        // Never leave a code behind that nobody received.
        ctx.store
            .delete_verification(identifier.as_str(), Kind::Otp, &code_hash)
            .await?;
        tracing::warn!(channel = ?channel, error = %e, "futureauth: code delivery failed");
        return Err(e.into());
    }
    Ok(())
}

/// Checks a code: counts the guess atomically first, so concurrent guesses can never
/// exceed `max_otp_attempts`, then compares in constant time and consumes the code.
pub(crate) async fn verify(
    ctx: &Ctx<'_>,
    identifier: &str,
    code: &str,
    ip: Option<&str>,
    user_agent: Option<&str>,
) -> Result<(User, Session)> {
    let identifier = Identifier::parse(identifier)?;
    let now = Utc::now();
    limit_verify_ip(ctx, ip, now).await?;
    let failures_key = format!("verify_fail:id:{identifier}");
    let failure_limit = ctx.config.rate_limits.failed_verify_per_identifier;
    rate_limit::check(ctx.store, &failures_key, failure_limit, now).await?;

    let max = ctx.config.max_otp_attempts;
    let max_attempts = i32::try_from(max).unwrap_or(i32::MAX);
    let Some(guess) = ctx
        .store
        .reserve_guess(identifier.as_str(), now, max)
        .await?
    else {
        return Err(match ctx.store.code_state(identifier.as_str()).await? {
            Some(state) if state.attempts >= max_attempts => FutureAuthError::TooManyAttempts,
            Some(state) if state.expires_at <= now => FutureAuthError::CodeExpired,
            _ => FutureAuthError::InvalidCode,
        });
    };

    let expected = ctx
        .code_key
        .hash_code(identifier.as_str(), &normalize_code(code));
    if !ct_eq(&guess.code_hash, &expected) {
        // The failure counts against the identifier across codes; the answer stays "wrong code".
        let _ = rate_limit::hit(ctx.store, &failures_key, failure_limit, now).await;
        return Err(if guess.attempts >= max_attempts {
            FutureAuthError::TooManyAttempts
        } else {
            FutureAuthError::InvalidCode
        });
    }
    // Exactly one concurrent caller deletes the row and gets a session.
    if !ctx.store.consume_verification(&guess.id).await? {
        return Err(FutureAuthError::InvalidCode);
    }
    session::sign_in(ctx, &identifier, ip, user_agent, now).await
}
