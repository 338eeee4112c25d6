//! A signed-in user's own account: verified address changes (change an email or phone, or
//! add the other kind), with a notice to the address they had.
//!
//! Two messages go out, each saying what it is on the wire (`purpose`): a
//! `confirm_address` code to the new address, and an `address_change_notice` to the old one
//! that carries no code and names the new address only masked (`a***@example.com`), so
//! whoever reads the old address learns that a change was asked for, not where to.
//!
//! For a new email, when the app's address is known (`app_url`), the confirm-address email
//! also carries a link to [`CONFIRM_CHANGE_PATH`] (on the wire: `channel: magic_link`,
//! `link`, and the code in `link_code`). Its token is stored hashed on the same pending
//! row as the code, so either one confirms and then both are void. The link confirms only
//! for the signed-in user who asked (the row is bound to them): otherwise someone could
//! ask to move *their* account to a victim's address and have the victim click.
//!
//! The request never looks at whether the new address belongs to someone: a code goes to
//! it and a notice to the old one either way, so the answer and the work are the same and
//! tell nothing. Only confirming with the code (which needs control of the new address)
//! finds out, and then nothing changes (`identifier_taken`).

use chrono::Utc;

use super::{check_send, limit_send, new_verification, start_verify, Ctx};
use crate::context::RequestContext;
use crate::delivery::{Channel, Message, Purpose};
use crate::error::{FutureAuthError, Result};
use crate::hooks::{self, IdentifierChange, SendPurpose};
use crate::identifier::Identifier;
use crate::model::User;
use crate::store::{accounts_change_binding, Changed, Kind, NewVerification, Proof};
use crate::token::{generate_code, generate_token, hash_token, normalize_code};

/// The page (under `auth_router`) that a confirm-address link opens.
pub(crate) const CONFIRM_CHANGE_PATH: &str = "/api/auth/confirm-identifier-change";

/// The link to the confirm page carrying `token`, when the app's address is known.
fn confirm_link(ctx: &Ctx<'_>, token: &str) -> Option<String> {
    let app = ctx.config.app_url.trim().trim_end_matches('/');
    if app.is_empty() {
        return None;
    }
    let mut url = url::Url::parse(&format!("{app}{CONFIRM_CHANGE_PATH}")).ok()?;
    url.query_pairs_mut()
        .append_pair(futureauth_proto::TOKEN_PARAM, token);
    Some(url.into())
}

/// The channel that reaches `identifier`.
fn channel(identifier: &Identifier) -> Channel {
    identifier.kind().into()
}

/// The code to `new` that confirms it; with `link` (its token and URL), sent as a link
/// email that carries the code in `link_code`.
fn confirm_message(
    ctx: &Ctx<'_>,
    new: &Identifier,
    code: String,
    link: Option<(String, String)>,
    req: &RequestContext,
) -> Message {
    let (channel, code, link, link_code) = match link {
        Some((token, url)) => (Channel::MagicLink, token, Some(url), Some(code)),
        None => (channel(new), code, None, None),
    };
    Message {
        channel,
        destination: new.as_str().to_string(),
        code,
        project_name: ctx.config.project_name.clone(),
        link,
        callback_url: None,
        locale: req.locale.as_ref().map(ToString::to_string),
        link_code,
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

/// A link (its token and URL) to confirm a change to an email address, when the app's
/// address is known; `None` for a phone, which gets the code alone.
fn change_link(ctx: &Ctx<'_>, new: &Identifier) -> Option<(String, String)> {
    match new {
        Identifier::Email(_) => {
            let token = generate_token();
            confirm_link(ctx, &token).map(|url| (token, url))
        }
        Identifier::Phone(_) => None,
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
    let link = change_link(ctx, new);
    let link_hash = link.as_ref().map(|(token, _)| hash_token(token));
    let binding = accounts_change_binding(&user.id);
    let change = new_verification(
        Kind::ChangeAddress,
        new,
        Some(&binding),
        &code_hash,
        now,
        ctx.config.otp_ttl,
    );
    ctx.store
        .put_verification(&NewVerification {
            link_hash: link_hash.as_deref(),
            ..change
        })
        .await?;
    // The notice (no code: it signs nobody in) first, then the code. A notice that cannot
    // be sent stops the change.
    let mut messages: Vec<Message> = notice.into_iter().collect();
    messages.push(confirm_message(ctx, new, code, link, req));
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
    let now = start_verify(ctx, req).await?;
    let code_hash = ctx.code_key.hash_code(new.as_str(), &normalize_code(code));
    let changed = ctx
        .store
        .confirm_change(
            user_id,
            new,
            Proof::Code(&code_hash, ctx.config.max_otp_attempts),
            now,
        )
        .await?;
    finish(ctx, new, changed, FutureAuthError::InvalidCode).await
}

/// Confirms a change of email with the token of the link sent to it, for the signed-in
/// user `user_id` only: a link of another user's change (or a used, replaced or expired
/// one) is `InvalidMagicLink` and changes nothing.
pub(crate) async fn confirm_link_token(
    ctx: &Ctx<'_>,
    user_id: &str,
    token: &str,
    req: &RequestContext,
) -> Result<User> {
    let now = start_verify(ctx, req).await?;
    let link_hash = hash_token(token.trim());
    let Some(address) = ctx
        .store
        .change_link_address(user_id, &link_hash, now)
        .await?
    else {
        return Err(FutureAuthError::InvalidMagicLink);
    };
    let new = Identifier::parse(&address)?;
    let changed = ctx
        .store
        .confirm_change(user_id, &new, Proof::Link(&link_hash), now)
        .await?;
    finish(ctx, &new, changed, FutureAuthError::InvalidMagicLink).await
}

/// The outcome of a confirm: the hooks hear of a change; `miss` for a wrong proof.
async fn finish(
    ctx: &Ctx<'_>,
    new: &Identifier,
    changed: Changed,
    miss: FutureAuthError,
) -> Result<User> {
    match changed {
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
        Changed::Miss => Err(miss),
    }
}
