//! Sessions: created at sign-in, checked on every request, slid forward when used.

use chrono::{DateTime, Utc};

use super::{clip, Ctx};
use crate::config::FutureAuthConfig;
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
///
/// A cache hit answers from here, without building the future of a database lookup: that
/// future is large, and moving it down the extractor's futures cost more than the hit
/// itself (`scripts/check-cost`). The lookup runs boxed.
pub(crate) async fn check(
    ctx: &Ctx<'_>,
    cache: Option<&SessionCache>,
    token: &str,
) -> Result<Option<Checked>> {
    if !well_formed(token) {
        return Ok(None);
    }
    let cache = cache.map(|c| (c, c.key(token)));
    // A hit is only what needs neither a write nor a look at its expiry: a session due to
    // slide (or past its end) is read again from the database, below.
    if let Some((user, session)) = cache.and_then(|(c, key)| c.get(key)) {
        return Ok(Some(Checked {
            user,
            session,
            extended: false,
        }));
    }
    Box::pin(from_database(ctx, cache, token, Utc::now())).await
}

/// The session of `token` and its user from the database, by the token's SHA-256 compared
/// in constant time; the cache's ticket is taken first, to fill it afterwards.
async fn from_database(
    ctx: &Ctx<'_>,
    cache: Option<(&SessionCache, CacheKey)>,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Option<Checked>> {
    let ticket = cache.map(|(c, _)| c.ticket());
    let token_hash = hash_token(token);
    let Some((user, session, stored_hash)) = ctx.store.find_session(&token_hash, now).await? else {
        return Ok(None);
    };
    if !ct_eq(&stored_hash, &token_hash) {
        return Ok(None);
    }
    let fill = ticket.map(|t| (t, token_hash));
    settle(ctx, cache, user, session, fill, now).await
}

/// The expiry checks of a row, then the slide's write (and the cache forgetting the old
/// expiry), or else the cache's fill with the row, to answer until [`quiet_until`].
async fn settle(
    ctx: &Ctx<'_>,
    cache: Option<(&SessionCache, CacheKey)>,
    user: User,
    mut session: Session,
    fill: Option<(Ticket, String)>,
    now: DateTime<Utc>,
) -> Result<Option<Checked>> {
    let Some(slid) = slide(ctx.config, &session, now) else {
        return Ok(None);
    };
    let extended = slid.is_some();
    if let Some(expires_at) = slid {
        session.expires_at = expires_at;
        ctx.store.extend_session(&session.id, expires_at).await?;
        // The cache only holds what the database returned: re-read the new expiry next time.
        if let Some((cache, key)) = cache {
            cache.forget(key);
        }
    } else if let (Some((cache, key)), Some((ticket, token_hash))) = (cache, fill) {
        let quiet = quiet_until(ctx.config, &session);
        cache.fill(ticket, key, &token_hash, &user, &session, quiet);
    }
    Ok(Some(Checked {
        user,
        session,
        extended,
    }))
}

/// Whether `token` can be a session token at all (anything else is no session, unread).
fn well_formed(token: &str) -> bool {
    !token.is_empty() && token.len() <= MAX_TOKEN_LEN
}

/// What [`check`] answers for `token` from the cache alone, if the cache holds it: a plain
/// function, for the extractor's hit to answer without building (and moving through its
/// futures) the check's future at all.
pub(crate) fn cached(cache: Option<&SessionCache>, token: &str) -> Option<(User, Session)> {
    let cache = cache.filter(|_| well_formed(token))?;
    cache.get(cache.key(token))
}

/// Whether `session` still authenticates at `now` (`None`: expired, or past
/// `session_max_lifetime`), and if so its new expiry when it is due to slide (used past
/// half its life, moved to a full `session_ttl` but never past the maximum lifetime).
/// Arithmetic only: no allocation, no query.
fn slide(
    config: &FutureAuthConfig,
    session: &Session,
    now: DateTime<Utc>,
) -> Option<Option<DateTime<Utc>>> {
    if session.expires_at <= now {
        return None;
    }
    let max_lifetime = max_lifetime(config);
    // Its age, not its end of life: a subtraction, where the end (a checked date addition)
    // is only needed on the rare check that slides it.
    if now.signed_duration_since(session.created_at) >= max_lifetime {
        return None;
    }
    let ttl = config.session_ttl;
    if session.expires_at - now >= half_life(config) {
        return Some(None);
    }
    let end_of_life = session
        .created_at
        .checked_add_signed(max_lifetime)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    let slid = (now + ttl).min(end_of_life);
    Some((slid > session.expires_at).then_some(slid))
}

/// Until when [`slide`] answers `Some(None)` for `session` (it authenticates, and is not due
/// to slide): a cached session answers without a look at its expiry until then, and is read
/// from the database after. Before its end of life and half a TTL before it expires.
pub(crate) fn quiet_until(config: &FutureAuthConfig, session: &Session) -> DateTime<Utc> {
    let due = session
        .expires_at
        .checked_sub_signed(half_life(config))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let end_of_life = session
        .created_at
        .checked_add_signed(max_lifetime(config))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    due.min(end_of_life)
}

fn max_lifetime(config: &FutureAuthConfig) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(config.session_max_lifetime).unwrap_or(chrono::TimeDelta::MAX)
}

fn half_life(config: &FutureAuthConfig) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(config.session_ttl / 2).unwrap_or(chrono::TimeDelta::MAX)
}

/// `s` without control characters, cut to at most `max` bytes.
pub(crate) fn printable(s: &str, max: usize) -> String {
    let cut = clip(Some(s), max).unwrap_or_default();
    cut.chars().filter(|c| !c.is_control()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Before `quiet_until` a session always authenticates without sliding, so a cache hit
    /// may skip `slide`; and it is no earlier than it must be (within a microsecond).
    #[test]
    fn quiet_until_is_where_slide_stops_being_quiet() {
        let base = Utc::now();
        let mut config = FutureAuthConfig {
            session_ttl: Duration::from_secs(3600),
            session_max_lifetime: Duration::from_secs(5000),
            ..Default::default()
        };
        let session = |created: i64, expires: i64| Session {
            id: String::new(),
            user_id: String::new(),
            token: String::new(),
            expires_at: base + chrono::TimeDelta::seconds(expires),
            ip_address: None,
            user_agent: None,
            created_at: base + chrono::TimeDelta::seconds(created),
            auth_method: None,
            authenticated: None,
        };
        // Due by its half-life (at 1800 s), by its end of life (at 5000 s), or at once.
        for (s, max) in [
            (session(0, 3600), 5000),
            (session(0, 3600), 1000),
            (session(-9000, 3600), 5000),
            (session(0, 60), 5000),
        ] {
            config.session_max_lifetime = Duration::from_secs(max);
            let quiet = quiet_until(&config, &s);
            let us = chrono::TimeDelta::microseconds(1);
            for step in 0..200 {
                let now = base + chrono::TimeDelta::seconds(step * 30 - 100);
                if now < quiet {
                    assert_eq!(slide(&config, &s, now), Some(None), "{now} before {quiet}");
                }
            }
            assert_eq!(slide(&config, &s, quiet - us), Some(None));
            assert_ne!(
                slide(&config, &s, quiet + us),
                Some(None),
                "{quiet} is the end"
            );
        }
    }
}
