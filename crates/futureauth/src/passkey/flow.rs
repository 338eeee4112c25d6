//! The two passkey ceremonies, storage- and transport-agnostic: registration of a signed-in
//! user's passkey, and discoverable sign-in. `webauthn-rs` checks the cryptography (RP ID,
//! origin, signature, user verification, counter); this flow keeps the challenge (hashed,
//! single-use, short-lived, bound to the browser that asked) and ties the credential to its
//! user.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Uuid,
};

use super::config::RelyingParty;
use super::store::{Ceremony, NewChallenge, PasskeyRow, PasskeyUse};
use crate::context::RequestContext;
use crate::error::{FutureAuthError, Result};
use crate::flow::session::{draft, finish, opened, printable};
use crate::flow::Ctx;
use crate::model::{AuthMethod, Session, User};
use crate::rate_limit;
use crate::store::Ts;
use crate::token::{generate_id, hash_token};

/// Longest passkey name kept (bytes).
pub(crate) const MAX_NAME_LEN: usize = 64;

/// The WebAuthn user handle of a user: 16 bytes derived from the user id, so that nothing
/// personal is handed to authenticators and no column is needed to map it back. Sign-in
/// compares it with the handle of the credential's owner.
pub(crate) fn user_handle(user_id: &str) -> Uuid {
    let digest = Sha256::digest(format!("futureauth/passkey-user-handle/v1\0{user_id}"));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::from_bytes(bytes)
}

/// The counter of the per-IP options limit, for a request that may ask for a challenge: one
/// with the browser binding the challenge will belong to.
fn options_key(req: &RequestContext) -> Result<Option<String>> {
    binding_hash(req)?;
    Ok(req
        .client_ip
        .map(|ip| format!("passkey:options:ip:{}", rate_limit::ip_group(ip))))
}

/// The counter of the per-IP limit on answers (registrations and sign-ins) checked.
fn verify_key(req: &RequestContext) -> Option<String> {
    req.client_ip
        .map(|ip| format!("passkey:verify:ip:{}", rate_limit::ip_group(ip)))
}

/// Counts a request against one of the passkey limits of its client IP, if known.
async fn limit(
    ctx: &Ctx<'_>,
    key: Option<String>,
    limit: crate::config::RateLimit,
    now: DateTime<Utc>,
) -> Result<()> {
    match key {
        Some(key) => rate_limit::hit(ctx.store, &key, limit, now).await,
        None => Ok(()),
    }
}

/// The browser binding a ceremony needs: a challenge belongs to the browser that asked.
fn binding_hash(req: &RequestContext) -> Result<String> {
    req.binding
        .as_ref()
        .map(|b| b.hash())
        .ok_or(FutureAuthError::PasskeyChallengeInvalid)
}

/// Takes the challenge out of a serialised ceremony state (`{"rs"|"ast": {"challenge":
/// ...}}`), so that only its hash is stored; [`restore_challenge`] puts it back.
pub(crate) fn strip_challenge(state: &mut Value) -> Option<String> {
    let inner = state.as_object_mut()?.values_mut().find_map(|v| {
        v.as_object_mut()
            .filter(|o| o.get("challenge").is_some_and(Value::is_string))
    })?;
    match inner.insert("challenge".to_string(), Value::String(String::new())) {
        Some(Value::String(challenge)) if !challenge.is_empty() => Some(challenge),
        _ => None,
    }
}

/// Puts the challenge the browser answered back into a stored ceremony state.
pub(crate) fn restore_challenge(state: &mut Value, challenge: &str) -> Option<()> {
    let inner = state
        .as_object_mut()?
        .values_mut()
        .find_map(|v| v.as_object_mut().filter(|o| o.contains_key("challenge")))?;
    inner.insert(
        "challenge".to_string(),
        Value::String(challenge.to_string()),
    );
    Some(())
}

/// The challenge a browser answered, read from its `clientDataJSON` (checked again by
/// `webauthn-rs` against the restored state, with the type, origin and signature).
fn answered_challenge(client_data_json: &[u8]) -> Result<String> {
    let invalid = || FutureAuthError::InvalidInput("clientDataJSON holds no challenge".into());
    let data: Value = serde_json::from_slice(client_data_json).map_err(|_| invalid())?;
    let challenge = data.get("challenge").and_then(Value::as_str);
    // A challenge is 32 random bytes: 43 base64url characters. Anything else is not ours.
    match challenge {
        Some(c) if c.len() <= 128 && URL_SAFE_NO_PAD.decode(c).is_ok() => Ok(c.to_string()),
        _ => Err(invalid()),
    }
}

/// Serialises a ceremony state without its challenge; returns both.
fn detach(state: &impl serde::Serialize) -> Result<(String, String)> {
    let mut value = serde_json::to_value(state)
        .map_err(|e| FutureAuthError::Config(format!("passkey state: {e}")))?;
    let challenge = strip_challenge(&mut value)
        .ok_or_else(|| FutureAuthError::Config("passkey state has no challenge".into()))?;
    Ok((value.to_string(), challenge))
}

/// Takes this browser's challenge for `ceremony` and rebuilds its state, or
/// [`FutureAuthError::PasskeyChallengeInvalid`] if there is none or it has expired.
async fn take_state<T: serde::de::DeserializeOwned>(
    ctx: &Ctx<'_>,
    ceremony: Ceremony,
    client_data_json: &[u8],
    req: &RequestContext,
    now: DateTime<Utc>,
) -> Result<(T, Option<String>)> {
    let binding = binding_hash(req)?;
    let challenge = answered_challenge(client_data_json)?;
    let taken = ctx
        .store
        .take_passkey_challenge(&hash_token(&challenge), ceremony, &binding)
        .await?
        .ok_or(FutureAuthError::PasskeyChallengeInvalid)?;
    if DateTime::<Utc>::from(taken.expires_at) <= now {
        return Err(FutureAuthError::PasskeyChallengeInvalid);
    }
    let mut state: Value = serde_json::from_str(&taken.state)
        .map_err(|e| FutureAuthError::Config(format!("stored passkey state: {e}")))?;
    restore_challenge(&mut state, &challenge)
        .ok_or_else(|| FutureAuthError::Config("stored passkey state has no challenge".into()))?;
    let state = serde_json::from_value(state)
        .map_err(|e| FutureAuthError::Config(format!("stored passkey state: {e}")))?;
    Ok((state, taken.user_id))
}

/// Stores a challenge for the browser of `req`.
async fn store_challenge(
    ctx: &Ctx<'_>,
    rp: &RelyingParty,
    ceremony: Ceremony,
    user_id: Option<&str>,
    state: &impl serde::Serialize,
    req: &RequestContext,
    now: DateTime<Utc>,
) -> Result<()> {
    let binding_hash = binding_hash(req)?;
    let (state, challenge) = detach(state)?;
    let ttl =
        chrono::TimeDelta::from_std(rp.config.challenge_ttl).unwrap_or(chrono::TimeDelta::MAX / 2);
    ctx.store
        .insert_passkey_challenge(
            &NewChallenge {
                id: generate_id(),
                challenge_hash: hash_token(&challenge),
                ceremony,
                user_id,
                state,
                binding_hash,
                expires_at: now + ttl,
            },
            now,
        )
        .await
}

/// A credential as the browser sent it, parsed, or a 422 that says which part is wrong.
fn parse_credential<T: serde::de::DeserializeOwned>(credential: &Value) -> Result<T> {
    T::deserialize(credential)
        .map_err(|e| FutureAuthError::InvalidInput(format!("credential: {e}")))
}

/// Why webauthn-rs refused, for the log; the client only learns that it did.
fn rejected(e: impl std::fmt::Display) -> FutureAuthError {
    tracing::info!(reason = %e, "futureauth: passkey refused");
    FutureAuthError::PasskeyRejected
}

/// Registration options for a signed-in `user`: a discoverable credential with user
/// verification and no attestation, excluding the user's existing passkeys.
pub(crate) async fn register_options(
    ctx: &Ctx<'_>,
    rp: &RelyingParty,
    user: &User,
    req: &RequestContext,
    now: DateTime<Utc>,
) -> Result<Value> {
    limit(ctx, options_key(req)?, rp.config.options_per_ip, now).await?;
    let existing = ctx.store.list_passkeys(&user.id).await?;
    if existing.len() >= rp.config.max_per_user as usize {
        return Err(FutureAuthError::InvalidInput(format!(
            "this account already has {} passkeys, the most it may hold: delete one first",
            existing.len()
        )));
    }
    let exclude = existing
        .iter()
        .filter_map(|p| URL_SAFE_NO_PAD.decode(&p.credential_id).ok())
        .collect();
    let account = user
        .email
        .as_deref()
        .or(user.phone_number.as_deref())
        .unwrap_or(&user.id);
    let display = if user.name.trim().is_empty() {
        account
    } else {
        &user.name
    };
    let (options, state) = rp
        .webauthn
        .start_passkey_registration(user_handle(&user.id), account, display, Some(exclude))
        .map_err(|e| FutureAuthError::Config(format!("passkey registration: {e}")))?;
    let mut options =
        serde_json::to_value(options).map_err(|e| FutureAuthError::Config(e.to_string()))?;
    // Discoverable credentials, so that sign-in needs no address first (webauthn-rs asks
    // for none; its state does not check it).
    let selection = &mut options["publicKey"]["authenticatorSelection"];
    selection["residentKey"] = "required".into();
    selection["requireResidentKey"] = true.into();
    store_challenge(
        ctx,
        rp,
        Ceremony::Register,
        Some(&user.id),
        &state,
        req,
        now,
    )
    .await?;
    Ok(options)
}

/// Verifies the browser's answer to [`register_options`] and stores the passkey for `user`.
pub(crate) async fn register(
    ctx: &Ctx<'_>,
    rp: &RelyingParty,
    user: &User,
    credential: &Value,
    name: Option<&str>,
    req: &RequestContext,
    now: DateTime<Utc>,
) -> Result<PasskeyRow> {
    limit(ctx, verify_key(req), rp.config.verify_per_ip, now).await?;
    let credential: RegisterPublicKeyCredential = parse_credential(credential)?;
    let name = match name.map(|n| printable(n.trim(), MAX_NAME_LEN)) {
        Some(n) if !n.trim().is_empty() => n.trim().to_string(),
        _ => default_name(req.user_agent.as_deref()),
    };
    let (state, asked_by): (PasskeyRegistration, _) = take_state(
        ctx,
        Ceremony::Register,
        &credential.response.client_data_json,
        req,
        now,
    )
    .await?;
    // The challenge was issued to this user in this browser, not to another account.
    if asked_by.as_deref() != Some(user.id.as_str()) {
        return Err(FutureAuthError::PasskeyChallengeInvalid);
    }
    let passkey = rp
        .webauthn
        .finish_passkey_registration(&credential, &state)
        .map_err(rejected)?;
    let stored =
        serde_json::to_value(&passkey).map_err(|e| FutureAuthError::Config(e.to_string()))?;
    let flag = |name: &str| stored["cred"][name].as_bool().unwrap_or(false);
    let transports = credential.response.transports.as_ref().map(|t| {
        t.iter()
            .filter_map(|t| serde_json::to_value(t).ok())
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect::<Vec<_>>()
            .join(",")
    });
    ctx.store
        .insert_passkey(&PasskeyRow {
            id: generate_id(),
            user_id: user.id.clone(),
            credential_id: URL_SAFE_NO_PAD.encode(passkey.cred_id().as_slice()),
            counter: stored["cred"]["counter"].as_i64().unwrap_or(0),
            backup_eligible: flag("backup_eligible"),
            backup_state: flag("backup_state"),
            passkey: stored.to_string(),
            transports,
            name,
            created_at: Ts(now),
            last_used_at: None,
        })
        .await
}

/// Sign-in options: a challenge for a discoverable credential, with user verification.
pub(crate) async fn sign_in_options(
    ctx: &Ctx<'_>,
    rp: &RelyingParty,
    req: &RequestContext,
    now: DateTime<Utc>,
) -> Result<Value> {
    limit(ctx, options_key(req)?, rp.config.options_per_ip, now).await?;
    let (mut options, state) = rp
        .webauthn
        .start_discoverable_authentication()
        .map_err(|e| FutureAuthError::Config(format!("passkey sign-in: {e}")))?;
    // The page chooses: conditional mediation (autofill) or a button.
    options.mediation = None;
    store_challenge(ctx, rp, Ceremony::Authenticate, None, &state, req, now).await?;
    serde_json::to_value(options).map_err(|e| FutureAuthError::Config(e.to_string()))
}

/// Verifies the browser's answer to [`sign_in_options`] and opens a session for the
/// passkey's user.
pub(crate) async fn sign_in(
    ctx: &Ctx<'_>,
    rp: &RelyingParty,
    credential: &Value,
    req: &RequestContext,
    now: DateTime<Utc>,
) -> Result<(User, Session)> {
    limit(ctx, verify_key(req), rp.config.verify_per_ip, now).await?;
    let credential: PublicKeyCredential = parse_credential(credential)?;
    let (state, _): (DiscoverableAuthentication, _) = take_state(
        ctx,
        Ceremony::Authenticate,
        &credential.response.client_data_json,
        req,
        now,
    )
    .await?;
    let row = stored_credential(ctx, rp, &credential).await?;
    let mut passkey: webauthn_rs::prelude::Passkey =
        serde_json::from_str(&row.passkey).map_err(rejected)?;
    let result = rp
        .webauthn
        .finish_discoverable_authentication_v2(&credential, state, &passkey)
        .map_err(rejected)?;
    passkey.update_credential(&result);
    let used = PasskeyUse {
        id: &row.id,
        verified_counter: row.counter,
        counter: i64::from(result.counter()),
        passkey: serde_json::to_string(&passkey).map_err(rejected)?,
        backup_state: result.backup_state(),
        now,
    };
    if !ctx.store.record_passkey_use(&used).await? {
        return Err(rejected("the counter moved while this answer was checked"));
    }
    let user = ctx
        .store
        .user_by_id(&row.user_id)
        .await?
        .ok_or_else(|| rejected("the passkey's user is gone"))?;
    let (token, new) = draft(ctx, req, AuthMethod::Passkey, now);
    ctx.store.insert_session(&user.id, &new).await?;
    // As every sign-in ends: a disabled user is refused (and the session removed), the
    // app's hooks hear of the rest.
    finish(ctx, opened(user, token, new), false, now).await
}

/// The stored passkey an authentication answer names, if the user handle the
/// authenticator gives is its owner's.
async fn stored_credential(
    ctx: &Ctx<'_>,
    rp: &RelyingParty,
    credential: &PublicKeyCredential,
) -> Result<PasskeyRow> {
    let (handle, credential_id) = rp
        .webauthn
        .identify_discoverable_authentication(credential)
        .map_err(rejected)?;
    let row = ctx
        .store
        .passkey_by_credential(&URL_SAFE_NO_PAD.encode(credential_id))
        .await?
        .ok_or_else(|| rejected("unknown credential"))?;
    // The authenticator names the account; it must be the credential's owner.
    if handle != user_handle(&row.user_id) {
        return Err(rejected("the user handle is not the credential owner's"));
    }
    Ok(row)
}

/// A passkey's name when the browser gives none: the platform and browser of its
/// `User-Agent`, e.g. "Chrome on macOS".
pub(crate) fn default_name(user_agent: Option<&str>) -> String {
    let ua = user_agent.unwrap_or_default();
    // The first name whose needle the User-Agent contains (the tables are in priority order).
    let first = |table: &[(&str, &'static str)]| {
        table
            .iter()
            .find(|(needle, _)| ua.contains(needle))
            .map(|&(_, name)| name)
    };
    let platform = first(&[
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Android", "Android"),
        ("CrOS", "ChromeOS"),
        ("Mac OS X", "macOS"),
        ("Macintosh", "macOS"),
        ("Windows", "Windows"),
        ("Linux", "Linux"),
    ]);
    let browser = first(&[
        ("Edg/", "Edge"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
    ]);
    match (browser, platform) {
        (Some(b), Some(p)) => format!("{b} on {p}"),
        (Some(one), None) | (None, Some(one)) => format!("Passkey ({one})"),
        (None, None) => "Passkey".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_leaves_the_state_and_comes_back() {
        let mut state = serde_json::json!({"ast": {"challenge": "abc", "policy": "required"}});
        assert_eq!(strip_challenge(&mut state).as_deref(), Some("abc"));
        assert_eq!(state["ast"]["challenge"], "");
        assert!(!state.to_string().contains("abc"));
        restore_challenge(&mut state, "abc").unwrap();
        assert_eq!(state["ast"]["challenge"], "abc");
        assert_eq!(strip_challenge(&mut serde_json::json!({"x": 1})), None);
    }

    #[test]
    fn names_from_user_agents() {
        let mac = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
        assert_eq!(default_name(Some(mac)), "Chrome on macOS");
        assert_eq!(default_name(None), "Passkey");
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0";
        assert_eq!(default_name(Some(firefox)), "Firefox on Linux");
    }

    #[test]
    fn user_handles_are_stable_and_distinct() {
        assert_eq!(user_handle("a"), user_handle("a"));
        assert_ne!(user_handle("a"), user_handle("b"));
    }
}
