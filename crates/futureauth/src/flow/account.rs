//! A signed-in user's own account: verified address changes (change an email or phone, or
//! add the other kind), with a notice to the address they had.
//!
//! Two messages go out, each saying what it is on the wire (`purpose`): a
//! `confirm_address` code to the new address, and an `address_change_notice` to the old one
//! that carries no code and names the new address only masked (`a***@example.com`), so
//! whoever reads the old address learns that a change was asked for, not where to.
//!
//! The request never looks at whether the new address belongs to someone: a code goes to
//! it and a notice to the old one either way, so the answer and the work are the same and
//! tell nothing. Only confirming with the code (which needs control of the new address)
//! finds out, and then nothing changes (`identifier_taken`).

use chrono::Utc;

use super::{check_send, limit_send, limit_verify_ip, Ctx};
use crate::context::RequestContext;
use crate::delivery::{Channel, Message, Purpose};
use crate::error::{FutureAuthError, Result};
use crate::hooks::{self, IdentifierChange, SendPurpose};
use crate::identifier::Identifier;
use crate::model::User;
use crate::store::{accounts_change_binding, Changed, Kind, NewVerification};
use crate::token::{generate_code, generate_id, normalize_code};

/// The channel that reaches `identifier`.
fn channel(identifier: &Identifier) -> Channel {
    match identifier {
        Identifier::Email(_) => Channel::Email,
        Identifier::Phone(_) => Channel::Sms,
    }
}

/// The code to `new` that confirms it.
fn confirm_message(ctx: &Ctx<'_>, new: &Identifier, code: String, req: &RequestContext) -> Message {
    Message {
        channel: channel(new),
        destination: new.as_str().to_string(),
        code,
        project_name: ctx.config.project_name.clone(),
        link: None,
        callback_url: None,
        locale: req.locale.as_ref().map(ToString::to_string),
        link_code: None,
        purpose: Some(Purpose::ConfirmAddress),
        new_address: None,
    }
}

/// The notice to `old` that a change to `new` was asked for: no code, `new` masked.
fn notice_message(
    ctx: &Ctx<'_>,
    old: &Identifier,
    new: &Identifier,
    req: &RequestContext,
) -> Result<Message> {
    Ok(Message {
        channel: channel(old),
        destination: old.as_str().to_string(),
        code: String::new(),
        project_name: ctx.config.project_name.clone(),
        link: None,
        callback_url: None,
        locale: req.locale.as_ref().map(ToString::to_string),
        link_code: None,
        purpose: Some(Purpose::AddressChangeNotice),
        new_address: Some(new.masked()?.as_str().to_owned()),
    })
}

/// Where the notice of a change goes: the address of the same kind the user has now, else
/// their other address.
fn notice_to(user: &User, new: &Identifier) -> Option<Identifier> {
    let email = user.email.clone().map(Identifier::Email);
    let phone = user.phone_number.clone().map(Identifier::Phone);
    match new {
        Identifier::Email(_) => email.or(phone),
        Identifier::Phone(_) => phone.or(email),
    }
}

/// Sends a code to `new` for user `user_id` to confirm with [`confirm`], and a notice to
/// the address they have now. Answers the same whether or not `new` is taken.
pub(crate) async fn request(
    ctx: &Ctx<'_>,
    user_id: &str,
    new: &Identifier,
    req: &RequestContext,
) -> Result<()> {
    let user = ctx
        .store
        .user_by_id(user_id)
        .await?
        .ok_or(FutureAuthError::UserNotFound)?;
    check_send(ctx, new, SendPurpose::VerifyNewAddress, req, Some(&user.id)).await?;
    // Built before anything is stored or counted: masking cannot fail for a parsed address,
    // but if it did, nothing would be left behind.
    let notice = notice_to(&user, new)
        .map(|old| notice_message(ctx, &old, new, req))
        .transpose()?;
    let now = Utc::now();
    let throttle = limit_send(ctx, new, req.client_ip, now).await?;
    let code = generate_code(ctx.config.otp_length);
    let code_hash = ctx.code_key.hash_code(new.as_str(), &code);
    let binding = accounts_change_binding(&user.id);
    ctx.store
        .put_verification(&NewVerification {
            id: generate_id(),
            identifier: new.as_str(),
            kind: Kind::ChangeAddress,
            binding_hash: Some(&binding),
            code_hash: &code_hash,
            expires_at: now + ctx.config.otp_ttl,
            now,
            link_hash: None,
            requester: None,
        })
        .await?;
    // The notice (no code: it signs nobody in) first, then the code. A notice that cannot
    // be sent stops the change.
    let mut messages: Vec<Message> = notice.into_iter().collect();
    messages.push(confirm_message(ctx, new, code, req));
    for m in &messages {
        if let Err(e) = ctx.delivery.deliver(m).await {
            ctx.store
                .delete_verification(new.as_str(), Kind::ChangeAddress, &code_hash)
                .await?;
            throttle.refund(ctx).await?;
            tracing::warn!(error = %e, "futureauth: address-change delivery failed");
            return Err(e.into());
        }
    }
    Ok(())
}

/// Confirms the change of user `user_id` to `new` with the code sent there. The user's
/// sessions stay; the app's hooks hear of it.
pub(crate) async fn confirm(
    ctx: &Ctx<'_>,
    user_id: &str,
    new: &Identifier,
    code: &str,
    req: &RequestContext,
) -> Result<User> {
    let now = Utc::now();
    limit_verify_ip(ctx, req.client_ip, now).await?;
    let code_hash = ctx.code_key.hash_code(new.as_str(), &normalize_code(code));
    match ctx
        .store
        .confirm_change(user_id, new, &code_hash, ctx.config.max_otp_attempts, now)
        .await?
    {
        Changed::Done(user, old) => {
            let old = old.map(|old| match new {
                Identifier::Email(_) => Identifier::Email(old),
                Identifier::Phone(_) => Identifier::Phone(old),
            });
            tracing::info!(user_id = %user.id, "futureauth: address changed");
            let change = IdentifierChange::Set {
                old,
                new: new.clone(),
            };
            hooks::report(
                "identifier_changed",
                ctx.hooks.identifier_changed(&user, &change).await,
            );
            Ok(user)
        }
        Changed::Taken => Err(FutureAuthError::IdentifierTaken),
        Changed::Miss => Err(FutureAuthError::InvalidCode),
    }
}
