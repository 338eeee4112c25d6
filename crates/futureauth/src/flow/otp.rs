//! One-time codes by email or SMS.
//!
//! A code is either *bound* to the client that asked for it (a secret [`OtpBinding`] the
//! HTTP API keeps in a cookie) or *unbound* (the plain [`send_otp`](crate::FutureAuth::send_otp)
//! API). Each binding has its own code row, so a send by anybody else never replaces it and
//! only guesses made with the binding count against it; a correct, live, unexhausted bound
//! code always signs in. Unbound codes share one row per address, and their wrong guesses
//! count per address across codes (NIST SP 800-63B: a new code does not reset the count).

use chrono::{DateTime, Utc};
use futureauth_proto::OtpCode;

use super::{limit_send, new_verification, session, verify_ip_key, Ctx};
use crate::context::{OtpBinding, RequestContext};
use crate::delivery::{DeliveryError, Message};
use crate::error::{FutureAuthError, Result};
use crate::hooks::SendPurpose;
use crate::identifier::{normalize_email, normalize_phone, Identifier};
use crate::model::{AuthMethod, OtpChannel, Session, User};
use crate::rate_limit;
use crate::store::{Kind, NewVerification, Redemption};
use crate::token::{generate_code, generate_id, normalize_code};

/// Creates a code (replacing the live one of the same address and binding), stores its
/// keyed hash and delivers it; a failed delivery undoes exactly what was written.
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
    super::check_send(ctx, &identifier, SendPurpose::SignInCode, req, None).await?;
    let now = Utc::now();
    let throttle = limit_send(ctx, &identifier, req.client_ip, now).await?;

    let code = generate_code(ctx.config.otp_length);
    let code_hash = ctx.code_key.hash_code(identifier.as_str(), &code);
    let binding_hash = req.binding.as_ref().map(OtpBinding::hash);
    let row = new_verification(
        Kind::Otp,
        &identifier,
        binding_hash.as_deref(),
        &code_hash,
        now,
        ctx.config.otp_ttl,
    );
    ctx.store.put_verification(&row).await?;

    let message = code_message(ctx, channel, &identifier, code, req);
    let receipt = match ctx.delivery.deliver_with_receipt(&message).await {
        Ok(receipt) => receipt,
        Err(e) => {
            // Never leave a code behind that nobody received.
            ctx.store
                .delete_verification(identifier.as_str(), Kind::Otp, &code_hash)
                .await?;
            throttle.refund(ctx).await?;
            tracing::warn!(channel = ?channel, error = %e, "futureauth: code delivery failed");
            return Err(e.into());
        }
    };
    match receipt.test_code {
        Some(test_code) => store_test_code(ctx, &identifier, &test_code, row).await,
        None => Ok(()),
    }
}

/// The message that carries a sign-in `code` to `identifier`.
fn code_message(
    ctx: &Ctx<'_>,
    channel: OtpChannel,
    identifier: &Identifier,
    code: String,
    req: &RequestContext,
) -> Message {
    Message {
        channel: channel.into(),
        destination: identifier.as_str().to_string(),
        code,
        project_name: ctx.config.project_name.clone(),
        link: None,
        callback_url: None,
        locale: req.locale.as_ref().map(ToString::to_string),
        link_code: None,
        purpose: None,
        new_address: None,
    }
}

/// A test destination of the project's test mode (app-store review, CI): nothing was
/// sent, and the project's fixed code is the one that works, for this destination only.
/// Stored beside `row` (the generated code's row), under its own id.
async fn store_test_code(
    ctx: &Ctx<'_>,
    identifier: &Identifier,
    test_code: &str,
    row: NewVerification<'_>,
) -> Result<()> {
    let test_code = OtpCode::parse(&normalize_code(test_code)).map_err(|_| {
        FutureAuthError::Delivery(DeliveryError::Rejected {
            status: 200,
            body: "the delivery answered a test code that is not a code".to_string(),
        })
    })?;
    let test_hash = ctx
        .code_key
        .hash_code(identifier.as_str(), test_code.as_str());
    ctx.store
        .put_verification(&NewVerification {
            id: generate_id(),
            code_hash: &test_hash,
            ..row
        })
        .await
}

/// Checks a code: counts the guess first, so concurrent guesses can never exceed
/// `max_otp_attempts` or the failure ceiling, then compares it and consumes the code, all in
/// one commit ([`Store::redeem_code`](crate::store::Store::redeem_code)).
///
/// The client's own per-IP limit is counted first: a request refused there costs the address
/// nothing. With a binding only that binding's code is looked at and nothing but its own
/// attempts is checked before the code. Without one, the unbound code is looked at and every
/// attempt first counts against the address's failure ceiling, which only a sign-in resets,
/// so that a new code never buys more guesses.
pub(crate) async fn verify(
    ctx: &Ctx<'_>,
    identifier: &str,
    code: &str,
    req: &RequestContext,
) -> Result<(User, Session)> {
    let identifier = Identifier::parse(identifier)?;
    let now = Utc::now();
    let limits = &ctx.config.rate_limits;
    let binding = req.binding.as_ref();
    let ip_key = req.client_ip.map(verify_ip_key);
    let failures_key = format!("verify_fail:id:{identifier}");

    let binding_hash = binding.map(OtpBinding::hash);
    let binding_hash = binding_hash.as_deref();
    let expected = ctx
        .code_key
        .hash_code(identifier.as_str(), &normalize_code(code));
    let (token, new) = session::draft(ctx, req, AuthMethod::Otp, now);
    let new_user_id = generate_id();
    let redeemed = ctx
        .store
        .redeem_code(&Redemption {
            identifier: &identifier,
            binding_hash,
            code_hash: &expected,
            max_attempts: ctx.config.max_otp_attempts,
            new_user_id: &new_user_id,
            session: &new,
            per_ip: ip_key
                .as_deref()
                .map(|key| rate_limit::counter(key, limits.verify_per_ip)),
            failures: binding
                .is_none()
                .then(|| rate_limit::counter(&failures_key, limits.failed_verify_per_identifier)),
            now,
        })
        .await?;
    rate_limit::check(redeemed.per_ip, limits.verify_per_ip, now)?;
    rate_limit::check(redeemed.failures, limits.failed_verify_per_identifier, now)?;
    match redeemed.user {
        // The statement stored no session for a disabled user.
        Some((_, false)) => Err(FutureAuthError::UserDisabled),
        Some((user, true)) => {
            let created = user.id == new_user_id;
            Ok(session::welcome(ctx, session::opened(user, token, new), created).await)
        }
        None => Err(why_refused(ctx, &identifier, binding_hash, now).await?),
    }
}

/// Why a guess that signed nobody in failed: each way gets its own error, decided in this
/// order (out of attempts, then expired, else wrong).
async fn why_refused(
    ctx: &Ctx<'_>,
    identifier: &Identifier,
    binding_hash: Option<&str>,
    now: DateTime<Utc>,
) -> Result<FutureAuthError> {
    let max_attempts = i32::try_from(ctx.config.max_otp_attempts).unwrap_or(i32::MAX);
    Ok(
        match ctx
            .store
            .code_state(identifier.as_str(), binding_hash)
            .await?
        {
            Some(state) if state.attempts >= max_attempts => FutureAuthError::TooManyAttempts,
            Some(state) if state.expires_at <= now => FutureAuthError::CodeExpired,
            _ => FutureAuthError::InvalidCode,
        },
    )
}
