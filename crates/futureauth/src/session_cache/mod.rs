//! The opt-in in-process session cache ([`SessionCacheConfig`]).
//!
//! A hit answers a session check without a query. It must never answer for a revoked
//! session, so:
//! - every revoke through this crate evicts locally before it returns and, on Postgres,
//!   sends `NOTIFY futureauth_session_revoked` that every instance's [listener] turns into
//!   the same eviction;
//! - while the listener is not connected (starting, or after its connection dropped) the
//!   cache is bypassed and emptied, because notifications may have been missed;
//! - a lookup that read the database fills the cache only if no eviction happened since it
//!   started (the `epoch`), so a revoke racing with a read cannot leave a stale entry.
//!
//! Expiry and sliding stay in `flow::session::check`, which treats a hit like a row.
//!
//! Entries are keyed by a keyed 128-bit SipHash-2-4 of the token (the key drawn from the OS
//! at start-up): a hit then costs no SHA-256 and no allocation, while the map holds no token
//! and nothing that can be turned back into one or matched without the key. Each entry keeps
//! its token's SHA-256 too, which is what the database and the other instances know it by.

mod entries;
#[cfg(feature = "postgres")]
mod listener;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::RngCore;
use siphasher::sip128::{Hasher128, SipHasher24};
use tokio::sync::Notify;

use self::entries::Entries;
use crate::error::{FutureAuthError, Result};
use crate::model::{Session, User};
use crate::store::Database;

/// An in-process cache of session checks, off by default. Turn it on with
/// `FutureAuthConfig { session_cache: Some(SessionCacheConfig::default()), .. }`.
///
/// A cached session is served without a query for at most `ttl`. Revoking through this
/// crate (`revoke_session`, `revoke_user_session`, `revoke_all_sessions`, sign-out) and
/// changing a user through it evict the entry on **every** instance: on Postgres through
/// `LISTEN/NOTIFY` on the channel `futureauth_session_revoked` (each instance keeps one
/// connection of its pool listening; while that connection is down the cache is bypassed).
/// On SQLite eviction is in-process only, so use the cache there with a single process.
///
/// Changes made outside this crate (SQL run by hand, another instance without the cache)
/// are seen after at most `ttl`. Enable it on every instance that shares the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionCacheConfig {
    /// How long an entry may answer without asking the database. Default 5 seconds;
    /// at most one hour.
    pub ttl: Duration,
    /// Most sessions kept. Default 10,000.
    pub max_entries: u64,
}

impl Default for SessionCacheConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(5),
            max_entries: 10_000,
        }
    }
}

impl SessionCacheConfig {
    /// Rejects a cache that could not work or would keep entries for too long.
    pub fn validate(&self) -> Result<()> {
        if self.ttl.is_zero() || self.ttl > Duration::from_secs(3600) {
            return Err(FutureAuthError::Config(format!(
                "session_cache.ttl is {:?}; use a short positive TTL (e.g. 5 s, at most 1 hour)",
                self.ttl
            )));
        }
        if self.max_entries == 0 {
            return Err(FutureAuthError::Config(
                "session_cache.max_entries is 0; use None to turn the cache off".to_string(),
            ));
        }
        Ok(())
    }
}

/// What to forget, on this instance and (through NOTIFY) on the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Eviction {
    /// One session by the hash of its token.
    Token(String),
    /// One session by its public id.
    Session(String),
    /// Every session of a user.
    User(String),
    /// Everything (an unreadable message, or a payload too long to send).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    All,
}

/// A cached check: the user and session as the database last returned them.
#[derive(Debug)]
struct Entry {
    /// The SHA-256 of the session's token (hex), as stored: what a token eviction names.
    token_hash: String,
    user: User,
    session: Session,
}

/// What the cache knows a token by: a keyed hash no one without the key can compute.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CacheKey(u128);

/// The secret key of [`CacheKey`]s, drawn once per cache.
#[derive(Clone, Copy)]
struct KeyOf(u64, u64);

impl KeyOf {
    fn random() -> Self {
        let mut rng = rand::rngs::OsRng;
        Self(rng.next_u64(), rng.next_u64())
    }

    fn of(self, token: &str) -> CacheKey {
        let mut h = SipHasher24::new_with_keys(self.0, self.1);
        std::hash::Hasher::write(&mut h, token.as_bytes());
        CacheKey(h.finish128().as_u128())
    }
}

/// The eviction state shared with the listener task.
struct Shared {
    entries: Entries<Entry>,
    /// The key of the entries' keys.
    key: KeyOf,
    /// Bumped by every eviction; a fill started under an older epoch is dropped.
    epoch: AtomicU64,
    /// The cache may answer: no listener is needed, or it is connected.
    live: AtomicBool,
}

impl Shared {
    fn new(config: SessionCacheConfig, live: bool) -> Self {
        Self {
            entries: Entries::new(config.max_entries, config.ttl),
            key: KeyOf::random(),
            epoch: AtomicU64::new(0),
            live: AtomicBool::new(live),
        }
    }

    /// Forgets what `eviction` names. The epoch moves first: a fill that has not yet
    /// inserted sees it under its shard's lock and drops its row, and one that did insert
    /// is removed here, after it.
    fn evict(&self, eviction: &Eviction) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        // Entries are keyed by a hash only this instance can compute; the others name a
        // session by its token's SHA-256, which each entry keeps.
        match eviction {
            Eviction::Token(hash) => self.entries.remove_if(|e| e.token_hash == *hash),
            Eviction::Session(id) => self.entries.remove_if(|e| e.session.id == *id),
            Eviction::User(id) => self.entries.remove_if(|e| e.user.id == *id),
            Eviction::All => self.entries.clear(),
        }
    }

    fn clear(&self) {
        self.evict(&Eviction::All);
    }

    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    /// Turns the cache on or off (listener connected or not), emptying it either way.
    fn set_live(&self, live: bool) {
        self.live.store(live, Ordering::SeqCst);
        self.clear();
    }
}

/// Taken before a database lookup; [`SessionCache::fill`] stores only under the same epoch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket(u64);

/// The cache of one [`FutureAuth`](crate::FutureAuth).
pub(crate) struct SessionCache {
    shared: Arc<Shared>,
    #[cfg(feature = "postgres")]
    pg: Option<sqlx::PgPool>,
    /// The deadline of each database call ([`FutureAuthConfig::db_call_timeout`]).
    ///
    /// [`FutureAuthConfig::db_call_timeout`]: crate::FutureAuthConfig::db_call_timeout
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    bound: Option<std::time::Duration>,
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    listener: Once,
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    shutdown: Arc<Notify>,
}

impl SessionCache {
    pub(crate) fn new(
        config: SessionCacheConfig,
        db: &Database,
        bound: Option<std::time::Duration>,
    ) -> Self {
        #[cfg(feature = "postgres")]
        let pg = match db {
            Database::Postgres(pool) => Some(pool.clone()),
            #[allow(unreachable_patterns)]
            _ => None,
        };
        #[cfg(not(feature = "postgres"))]
        let _ = db;
        // Without Postgres there is no other instance to hear from.
        #[cfg(feature = "postgres")]
        let live = pg.is_none();
        #[cfg(not(feature = "postgres"))]
        let live = true;
        Self {
            shared: Arc::new(Shared::new(config, live)),
            #[cfg(feature = "postgres")]
            pg,
            bound,
            listener: Once::new(),
            shutdown: Arc::new(Notify::new()),
        }
    }

    /// Starts the Postgres listener once (needs a Tokio runtime); until it is connected
    /// the cache stays bypassed.
    pub(crate) fn start(&self) {
        #[cfg(feature = "postgres")]
        if let Some(pool) = &self.pg {
            self.listener.call_once(|| {
                listener::spawn(
                    pool.clone(),
                    self.bound,
                    self.shared.clone(),
                    self.shutdown.clone(),
                );
            });
        }
    }

    /// What the cache knows `token` by.
    pub(crate) fn key(&self, token: &str) -> CacheKey {
        self.shared.key.of(token)
    }

    /// The cached user and session of a token, if the cache may answer and the session is
    /// still quiet (the entry's deadline, on the monotonic clock: a hit reads no other
    /// clock). Not `async`: a hit must not build (and move) the future of a database lookup.
    pub(crate) fn get(&self, key: CacheKey) -> Option<(User, Session)> {
        self.start();
        if !self.shared.live.load(Ordering::SeqCst) {
            return None;
        }
        self.shared
            .entries
            .get(key.0, |e| (e.user.clone(), e.session.clone()))
    }

    /// Call before reading the database for [`fill`](Self::fill).
    pub(crate) fn ticket(&self) -> Ticket {
        Ticket(self.shared.epoch.load(Ordering::SeqCst))
    }

    /// Remembers a database answer for the token of `key` (whose SHA-256 is `token_hash`)
    /// to answer until `quiet_until`, unless an eviction happened since `ticket` (checked
    /// under the shard's lock).
    pub(crate) fn fill(
        &self,
        ticket: Ticket,
        key: CacheKey,
        token_hash: &str,
        user: &User,
        session: &Session,
        quiet_until: DateTime<Utc>,
    ) {
        let shared = &self.shared;
        if !shared.live.load(Ordering::SeqCst) || shared.epoch.load(Ordering::SeqCst) != ticket.0 {
            return;
        }
        // Until `quiet_until`, counted on the monotonic clock from now.
        let Ok(quiet) = (quiet_until - Utc::now()).to_std() else {
            return;
        };
        let entry = Entry {
            token_hash: token_hash.to_string(),
            user: user.clone(),
            session: session.clone(),
        };
        shared.entries.insert_if(key.0, entry, quiet, || {
            shared.epoch.load(Ordering::SeqCst) == ticket.0
        });
    }

    /// Drops one entry here only (its session was just extended: re-read it next time).
    pub(crate) fn forget(&self, key: CacheKey) {
        self.shared.entries.remove(key.0);
    }

    /// Evicts here and, if the database `changed`, tells the other instances. Call after
    /// the database change.
    pub(crate) async fn evict(&self, eviction: Eviction, changed: bool) -> Result<()> {
        self.shared.evict(&eviction);
        #[cfg(feature = "postgres")]
        if let (Some(pool), true) = (&self.pg, changed) {
            listener::notify(pool, self.bound, &eviction).await?;
        }
        #[cfg(not(feature = "postgres"))]
        let _ = changed;
        Ok(())
    }
}

impl Drop for SessionCache {
    fn drop(&mut self) {
        // Stops the listener task (the permit waits if it is between two waits).
        self.shutdown.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A quiet-until far enough away for every test here.
    const FAR: DateTime<Utc> = DateTime::<Utc>::MAX_UTC;

    fn in_process() -> SessionCache {
        SessionCache {
            shared: Arc::new(Shared::new(SessionCacheConfig::default(), true)),
            #[cfg(feature = "postgres")]
            pg: None,
            bound: None,
            listener: Once::new(),
            shutdown: Arc::new(Notify::new()),
        }
    }

    fn row(user_id: &str, session_id: &str) -> (User, Session) {
        let now = chrono::Utc::now();
        let user = User {
            id: user_id.into(),
            email: None,
            phone_number: None,
            name: String::new(),
            email_verified: true,
            phone_number_verified: false,
            metadata: serde_json::json!({}),
            created_at: now,
            updated_at: now,
        };
        let session = Session {
            id: session_id.into(),
            user_id: user_id.into(),
            token: String::new(),
            expires_at: now + chrono::Duration::days(30),
            ip_address: None,
            user_agent: None,
            created_at: now,
            auth_method: None,
            authenticated: None,
        };
        (user, session)
    }

    /// Caches session `s<n>` of `user` under token `t<n>`, whose SHA-256 stands as `h<n>`.
    async fn fill_nth(cache: &SessionCache, n: u32, user: &str) {
        let (u, s) = row(user, &format!("s{n}"));
        let key = cache.key(&format!("t{n}"));
        cache.fill(cache.ticket(), key, &format!("h{n}"), &u, &s, FAR);
    }

    #[tokio::test]
    async fn a_read_that_raced_a_revoke_is_not_cached() {
        let cache = in_process();
        let (user, session) = row("u1", "s1");
        // The lookup read the row, then a revoke evicted before the lookup could fill.
        let ticket = cache.ticket();
        cache
            .evict(Eviction::Token("h1".into()), true)
            .await
            .unwrap();
        cache.fill(ticket, cache.key("t1"), "h1", &user, &session, FAR);
        assert!(cache.get(cache.key("t1")).is_none(), "stale row was cached");
        // Without a race the row is cached.
        let ticket = cache.ticket();
        cache.fill(ticket, cache.key("t1"), "h1", &user, &session, FAR);
        assert!(cache.get(cache.key("t1")).is_some());
    }

    /// An entry answers until its session's quiet-until (then the check reads the database,
    /// to slide the session or find it expired), however long the cache's TTL; one whose
    /// quiet-until has passed is not cached at all.
    #[tokio::test]
    async fn an_entry_answers_only_until_its_quiet_until() {
        let cache = in_process();
        let (user, session) = row("u1", "s1");
        let soon = Utc::now() + chrono::Duration::milliseconds(300);
        cache.fill(cache.ticket(), cache.key("t1"), "h1", &user, &session, soon);
        assert!(cache.get(cache.key("t1")).is_some(), "quiet: answers");
        tokio::time::sleep(std::time::Duration::from_millis(350)).await;
        assert!(cache.get(cache.key("t1")).is_none(), "past its quiet-until");
        let past = Utc::now() - chrono::Duration::milliseconds(1);
        cache.fill(cache.ticket(), cache.key("t2"), "h2", &user, &session, past);
        assert!(
            cache.get(cache.key("t2")).is_none(),
            "cached past its quiet-until"
        );
    }

    #[tokio::test]
    async fn evictions_by_token_session_and_user_hit_only_theirs() {
        let cache = in_process();
        for (n, user) in [(1, "u1"), (2, "u1"), (3, "u2"), (4, "u2")] {
            fill_nth(&cache, n, user).await;
        }
        let holds = |n: u32| cache.get(cache.key(&format!("t{n}")));
        // Another instance names a session by its token's SHA-256, not by the cache's key.
        for (eviction, gone, kept) in [
            (Eviction::Token("h4".into()), &[4][..], &[1, 2, 3][..]),
            (Eviction::Session("s1".into()), &[1], &[2, 3]),
            (Eviction::User("u1".into()), &[2], &[3]),
            (Eviction::All, &[3], &[]),
        ] {
            cache.evict(eviction.clone(), true).await.unwrap();
            for &n in gone {
                assert!(holds(n).is_none(), "{eviction:?} left t{n}");
            }
            for &n in kept {
                assert!(holds(n).is_some(), "{eviction:?} took t{n}");
            }
        }
    }

    #[test]
    fn each_cache_keys_tokens_with_its_own_secret() {
        let (a, b) = (in_process(), in_process());
        assert_eq!(a.key("t1").0, a.key("t1").0);
        assert_ne!(a.key("t1").0, a.key("t2").0);
        assert_ne!(a.key("t1").0, b.key("t1").0, "the key is drawn per cache");
    }

    #[tokio::test]
    async fn nothing_is_served_while_not_live() {
        let cache = in_process();
        let (user, session) = row("u1", "s1");
        cache.fill(cache.ticket(), cache.key("t1"), "h1", &user, &session, FAR);
        cache.shared.set_live(false);
        assert!(
            cache.get(cache.key("t1")).is_none(),
            "emptied when the listener drops"
        );
        cache.fill(cache.ticket(), cache.key("t1"), "h1", &user, &session, FAR);
        assert!(
            cache.get(cache.key("t1")).is_none(),
            "neither filled nor served while off"
        );
        cache.shared.set_live(true);
        assert!(
            cache.get(cache.key("t1")).is_none(),
            "nothing was filled while off"
        );
    }

    #[test]
    fn config_must_be_short_and_non_empty() {
        SessionCacheConfig::default().validate().unwrap();
        let zero = SessionCacheConfig {
            ttl: Duration::ZERO,
            ..Default::default()
        };
        assert!(zero.validate().unwrap_err().to_string().contains("ttl"));
        let empty = SessionCacheConfig {
            max_entries: 0,
            ..Default::default()
        };
        assert!(empty.validate().is_err());
    }
}
