//! Sessions: created at sign-in, checked on every request, slid forward when used.

use chrono::{DateTime, Utc};

use super::{clip, Ctx};
use crate::context::RequestContext;
use crate::error::{FutureAuthError, Result};
use crate::hooks;
use crate::identifier::Identifier;
use crate::model::{AuthMethod, Session, User};
use crate::session_cache::{CacheKey, SessionCache, Ticket};
use crate::store::NewSession;
use crate::token::{ct_eq, generate_id, generate_token, hash_token};

/// Longest token we look up; anything longer is not ours.
const MAX_TOKEN_LEN: usize = 256;

/// A new session for the client of `req`: its token (for the client only) and the row
/// that stores its hash.
pub(crate) fn draft(
    ctx: &Ctx<'_>,
    req: &RequestContext,
    method: AuthMethod,
    now: DateTime<Utc>,
) -> (String, NewSession) {
    let token = generate_token();
    let new = NewSession {
        id: generate_id(),
        token_hash: hash_token(&token),
        expires_at: now + ctx.config.session_ttl.min(ctx.config.session_max_lifetime),
        ip_address: req.client_ip.map(|ip| ip.to_string()),
        // Client-supplied text, shown later in session lists: printable and bounded.
        user_agent: req.user_agent.as_deref().map(|s| printable(s, 512)),
        now,
        method,
    };
    (token, new)
}

/// The signed-in pair once `new` is stored for `user`.
pub(crate) fn opened(user: User, token: String, new: NewSession) -> (User, Session) {
    let session = Session {
        id: new.id,
        user_id: user.id.clone(),
        token,
        expires_at: new.expires_at,
        ip_address: new.ip_address,
        user_agent: new.user_agent,
        created_at: new.now,
        auth_method: Some(new.method),
        authenticated: Some(new.now),
    };
    (user, session)
}

/// Finds or creates the verified user and opens a session for them, proved by `method`.
pub(crate) async fn sign_in(
    ctx: &Ctx<'_>,
    identifier: &Identifier,
    req: &RequestContext,
    method: AuthMethod,
    now: DateTime<Utc>,
) -> Result<(User, Session)> {
    let (token, new) = draft(ctx, req, method, now);
    let new_id = generate_id();
    let user = ctx
        .store
        .upsert_verified_user(identifier, &new_id, now)
        .await?;
    ctx.store.insert_session(&user.id, &new).await?;
    let created = user.id == new_id;
    finish(ctx, opened(user, token, new), created, now).await
}

/// The last step of every sign-in, once the session is stored: a disabled user's session
/// is deleted again and the sign-in refused (the session could not authenticate anyway:
/// the lookup skips disabled users); otherwise the app's hooks hear of it.
pub(crate) async fn finish(
    ctx: &Ctx<'_>,
    (user, session): (User, Session),
    created: bool,
    now: DateTime<Utc>,
) -> Result<(User, Session)> {
    if ctx.store.user_disabled(&user.id, now).await? {
        ctx.store
            .end_session_by_hash(&hash_token(&session.token))
            .await?;
        return Err(FutureAuthError::UserDisabled);
    }
    Ok(welcome(ctx, (user, session), created).await)
}

/// Tells the app's hooks of a sign-in whose user is known not to be disabled.
pub(crate) async fn welcome(
    ctx: &Ctx<'_>,
    (user, session): (User, Session),
    created: bool,
) -> (User, Session) {
    if created {
        hooks::report("user_created", ctx.hooks.user_created(&user).await);
    }
    hooks::report("signed_in", ctx.hooks.signed_in(&user, &session).await);
    (user, session)
}

/// The result of a session check.
pub(crate) struct Checked {
    pub user: User,
    pub session: Session,
    /// The expiry moved forward: a cookie should be re-issued.
    pub extended: bool,
}

/// One indexed query (none on a cache hit); plus one write at most once per half-life,
/// when a session used past half its life is extended to a full `session_ttl` again, but
/// never beyond `session_max_lifetime` after sign-in: past that, the session no longer
/// authenticates. Every session check goes through here, cached or not.
pub(crate) async fn check(
    ctx: &Ctx<'_>,
    cache: Option<&SessionCache>,
    token: &str,
) -> Result<Option<Checked>> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Ok(None);
    }
    let now = Utc::now();
    let key = cache.map(|c| c.key(token));
    let Some((user, mut session, fill)) = find(ctx, cache.zip(key), token, now).await? else {
        return Ok(None);
    };
    // The expiry checks, in one place for rows and cache hits alike.
    let Some(slid) = slide(ctx, &session, now) else {
        return Ok(None);
    };
    let extended = slid.is_some();
    if let Some(expires_at) = slid {
        session.expires_at = expires_at;
        ctx.store.extend_session(&session.id, expires_at).await?;
        // The cache only holds what the database returned: re-read the new expiry next time.
        if let (Some(cache), Some(key)) = (cache, key) {
            cache.forget(key).await;
        }
    } else if let (Some(cache), Some(key), Some((ticket, token_hash))) = (cache, key, fill) {
        cache.fill(ticket, key, &token_hash, &user, &session).await;
    }
    Ok(Some(Checked {
        user,
        session,
        extended,
    }))
}

/// The session of `token` and its user: from the cache (no hashing but the cache's own),
/// else from the database by the token's SHA-256, compared in constant time; a database
/// answer comes with the cache's ticket and the hash, to fill the cache afterwards.
async fn find(
    ctx: &Ctx<'_>,
    cache: Option<(&SessionCache, CacheKey)>,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Option<(User, Session, Option<(Ticket, String)>)>> {
    if let Some((cache, key)) = cache {
        if let Some((user, session)) = cache.get(key).await {
            return Ok(Some((user, session, None)));
        }
    }
    let ticket = cache.map(|(c, _)| c.ticket());
    let token_hash = hash_token(token);
    let Some((user, session, stored_hash)) = ctx.store.find_session(&token_hash, now).await? else {
        return Ok(None);
    };
    if !ct_eq(&stored_hash, &token_hash) {
        return Ok(None);
    }
    Ok(Some((user, session, ticket.map(|t| (t, token_hash)))))
}

/// Whether `session` still authenticates at `now` (`None`: expired, or past
/// `session_max_lifetime`), and if so its new expiry when it is due to slide (used past
/// half its life, moved to a full `session_ttl` but never past the maximum lifetime).
/// Arithmetic only: no allocation, no query.
fn slide(ctx: &Ctx<'_>, session: &Session, now: DateTime<Utc>) -> Option<Option<DateTime<Utc>>> {
    if session.expires_at <= now {
        return None;
    }
    let max_lifetime = chrono::TimeDelta::from_std(ctx.config.session_max_lifetime)
        .unwrap_or(chrono::TimeDelta::MAX);
    // Its age, not its end of life: a subtraction, where the end (a checked date addition)
    // is only needed on the rare check that slides it.
    if now.signed_duration_since(session.created_at) >= max_lifetime {
        return None;
    }
    let ttl = ctx.config.session_ttl;
    let half_life = chrono::TimeDelta::from_std(ttl / 2).unwrap_or(chrono::TimeDelta::MAX);
    if session.expires_at - now >= half_life {
        return Some(None);
    }
    let end_of_life = session
        .created_at
        .checked_add_signed(max_lifetime)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    let slid = (now + ttl).min(end_of_life);
    Some((slid > session.expires_at).then_some(slid))
}

/// `s` without control characters, cut to at most `max` bytes.
pub(crate) fn printable(s: &str, max: usize) -> String {
    let cut = clip(Some(s), max).unwrap_or_default();
    cut.chars().filter(|c| !c.is_control()).collect()
}
