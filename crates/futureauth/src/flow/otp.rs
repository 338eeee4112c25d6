//! One-time codes by email or SMS.
//!
//! A code is either *bound* to the client that asked for it (a secret [`OtpBinding`] the
//! HTTP API keeps in a cookie) or *unbound* (the plain [`send_otp`](crate::FutureAuth::send_otp)
//! API). Each binding has its own code row, so a send by anybody else never replaces it and
//! only guesses made with the binding count against it; a correct, live, unexhausted bound
//! code always signs in. Unbound codes share one row per address, and their wrong guesses
//! count per address across codes (NIST SP 800-63B: a new code does not reset the count).

use std::fmt;

use chrono::Utc;
use futureauth_proto::LinkToken;

use super::{limit_send, limit_verify_ip, session, Ctx};
use crate::context::RequestContext;
use crate::delivery::{Channel, Message};
use crate::error::{FutureAuthError, Result};
use crate::identifier::{normalize_email, normalize_phone, Identifier};
use crate::model::{OtpChannel, Session, User};
use crate::rate_limit;
use crate::store::{Kind, NewVerification};
use crate::token::{ct_eq, generate_code, generate_id, generate_token, hash_token, normalize_code};

/// A secret that binds a one-time code to the client that asked for it.
///
/// Give it to the client when it asks for a code (the HTTP API puts it in an HttpOnly
/// cookie) and take it back with the code: then a code can only be used, and its attempts
/// only spent, by that client, and nobody else's request replaces it. Only its hash is
/// stored.
///
/// ```
/// use futureauth::OtpBinding;
/// let binding = OtpBinding::generate();
/// let back = OtpBinding::parse(binding.as_str()).unwrap();
/// assert_eq!(back.as_str(), binding.as_str());
/// assert!(OtpBinding::parse("too-short").is_none());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct OtpBinding(String);

impl OtpBinding {
    /// A new random binding (256 bits, 43 URL-safe characters).
    pub fn generate() -> Self {
        Self(generate_token())
    }

    /// A binding a client sent back, if it has the shape of one (32 to 64 URL-safe
    /// characters); anything else is no binding at all.
    pub fn parse(raw: &str) -> Option<Self> {
        LinkToken::parse(raw)
            .ok()
            .map(|token| Self(token.as_str().to_string()))
    }

    /// The secret, to hand to the client.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What the database keeps.
    pub(crate) fn hash(&self) -> String {
        hash_token(&self.0)
    }
}

impl fmt::Debug for OtpBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpBinding(..)")
    }
}

/// Creates a code (replacing the live one of the same address and binding), stores its
/// keyed hash and delivers it.
pub(crate) async fn send(
    ctx: &Ctx<'_>,
    channel: OtpChannel,
    destination: &str,
    req: &RequestContext,
) -> Result<()> {
    let identifier = match channel {
        OtpChannel::Email => Identifier::Email(normalize_email(destination)?),
        OtpChannel::Phone => Identifier::Phone(normalize_phone(destination)?),
    };
    let now = Utc::now();
    let throttle = limit_send(ctx, &identifier, req.client_ip, now).await?;

    let code = generate_code(ctx.config.otp_length);
    let code_hash = ctx.code_key.hash_code(identifier.as_str(), &code);
    let binding_hash = req.binding.as_ref().map(OtpBinding::hash);
    ctx.store
        .put_verification(&NewVerification {
            id: generate_id(),
            identifier: identifier.as_str(),
            kind: Kind::Otp,
            binding_hash: binding_hash.as_deref(),
            code_hash: &code_hash,
            expires_at: now + ctx.config.otp_ttl,
            now,
            requester_hash: None,
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
        locale: None,
    };
    if let Err(e) = ctx.delivery.deliver(&message).await {
        // Never leave a code behind that nobody received.
        ctx.store
            .delete_verification(identifier.as_str(), Kind::Otp, &code_hash)
            .await?;
        throttle.refund(ctx).await?;
        tracing::warn!(channel = ?channel, error = %e, "futureauth: code delivery failed");
        return Err(e.into());
    }
    Ok(())
}

/// Checks a code: counts the guess atomically first, so concurrent guesses can never
/// exceed `max_otp_attempts`, then compares in constant time and consumes the code.
///
/// With a binding only that binding's code is looked at and nothing but its own attempts
/// is checked before the code. Without one, the unbound code is looked at and every
/// attempt first counts against the address's failure ceiling.
pub(crate) async fn verify(
    ctx: &Ctx<'_>,
    identifier: &str,
    code: &str,
    req: &RequestContext,
) -> Result<(User, Session)> {
    let identifier = Identifier::parse(identifier)?;
    let now = Utc::now();
    // The client's own limit first: a request refused here costs the address nothing.
    limit_verify_ip(ctx, req.client_ip, now).await?;
    let binding = req.binding.as_ref();
    let failures_key = format!("verify_fail:id:{identifier}");
    if binding.is_none() {
        // Counted before the code and reset only by a sign-in, so that a new code never
        // buys more guesses.
        let ceiling = ctx.config.rate_limits.failed_verify_per_identifier;
        rate_limit::hit(ctx.store, &failures_key, ceiling, now).await?;
    }

    let binding_hash = binding.map(OtpBinding::hash);
    let binding_hash = binding_hash.as_deref();
    let max = ctx.config.max_otp_attempts;
    let max_attempts = i32::try_from(max).unwrap_or(i32::MAX);
    let Some(guess) = ctx
        .store
        .reserve_guess(identifier.as_str(), binding_hash, now, max)
        .await?
    else {
        return Err(
            match ctx
                .store
                .code_state(identifier.as_str(), binding_hash)
                .await?
            {
                Some(state) if state.attempts >= max_attempts => FutureAuthError::TooManyAttempts,
                Some(state) if state.expires_at <= now => FutureAuthError::CodeExpired,
                _ => FutureAuthError::InvalidCode,
            },
        );
    };

    let expected = ctx
        .code_key
        .hash_code(identifier.as_str(), &normalize_code(code));
    if !ct_eq(&guess.code_hash, &expected) {
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
    // A sign-in ends the run of consecutive failures.
    rate_limit::reset(ctx.store, &failures_key).await?;
    session::sign_in(ctx, &identifier, req, now).await
}
