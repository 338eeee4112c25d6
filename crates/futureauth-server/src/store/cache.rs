//! Secret keys and project settings kept in memory, so an accepted send reads neither (the
//! send path's two lookups before its one write), with every instance told of each change.
//!
//! Postgres only: triggers (migration `0024_project_notify.sql`) `NOTIFY` on every change
//! to a project, its keys' revocations, limits, wording and test mode, whoever writes it
//! (another instance, the CLI, a person with `psql`), and each instance `LISTEN`s on one
//! connection of its own and empties its cache on every message. While that connection is
//! down, or before it is up, the cache is bypassed (neither read nor filled), so a change
//! never goes unheard. SQLite has no `LISTEN`, and another process (the CLI) may write the
//! same file: its store never caches.
//!
//! A write through this store empties the cache at once, before its call returns: a key
//! revoked on this instance is refused by its very next request. Every entry also expires
//! after [`TTL`], a net under what cannot happen (a lost notification on a live
//! connection).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::PgPool;
use tokio::task::JoinHandle;

use super::{deadline, Project, SendOverrides, UnixMillis};
use crate::error::StoreError;

/// The channel the triggers notify.
pub(super) const CHANNEL: &str = "futureauth_server_project";

/// Longest an entry is served.
const TTL: Duration = Duration::from_secs(60);

/// Entries of one kind past which the cache starts over (a key or project scan).
const MAX_ENTRIES: usize = 10_000;

/// How often a key's "last used" is written at most (the console shows it by the minute).
const TOUCH_EVERY_MS: i64 = 60_000;

/// How long the listener waits for a notification before checking, with a bounded
/// `SELECT 1`, that its connection still answers: a frozen server sends no error.
const KEEPALIVE: Duration = Duration::from_secs(10);

/// An active key as the send path needs it.
#[derive(Debug, Clone)]
pub(super) struct ActiveKey {
    /// The stored hash (compared in constant time by the caller).
    pub stored: String,
    /// The key's project.
    pub project: Project,
    /// When a rotated key stops working, checked on every hit.
    pub revoked_at: Option<UnixMillis>,
}

#[derive(Debug)]
struct Timed<T> {
    at: Instant,
    value: T,
}

#[derive(Debug, Default)]
struct Entries {
    keys: HashMap<String, Timed<ActiveKey>>,
    overrides: HashMap<String, Timed<SendOverrides>>,
}

/// The cache of one [`Store`](super::Store) and its clones.
#[derive(Debug, Default)]
pub(super) struct ProjectCache {
    /// Whether the listener is connected (on Postgres, once [`spawn`] ran).
    live: AtomicBool,
    /// Moves on every emptying; a fill that read the database before it is dropped.
    generation: AtomicU64,
    entries: RwLock<Entries>,
    /// When each key's use was last written.
    touched: Mutex<HashMap<String, UnixMillis>>,
}

impl ProjectCache {
    /// The ticket a fill must present, taken before reading the database; `None` while
    /// the cache is bypassed.
    pub(super) fn ticket(&self) -> Option<u64> {
        self.live
            .load(Ordering::SeqCst)
            .then(|| self.generation.load(Ordering::SeqCst))
    }

    /// The cached active key with this hash, if the cache is live and has it.
    pub(super) fn key(&self, hash: &str) -> Option<ActiveKey> {
        self.get(|e| e.keys.get(hash))
    }

    /// The cached send overrides of a project, if the cache is live and has them.
    pub(super) fn overrides(&self, project_id: &str) -> Option<SendOverrides> {
        self.get(|e| e.overrides.get(project_id))
    }

    /// The entry `pick` finds, if the cache is live and the entry younger than [`TTL`].
    fn get<T: Clone>(&self, pick: impl FnOnce(&Entries) -> Option<&Timed<T>>) -> Option<T> {
        self.ticket()?;
        let entries = self.entries.read().ok()?;
        let hit = pick(&entries)?;
        (hit.at.elapsed() < TTL).then(|| hit.value.clone())
    }

    /// Keeps a key read from the database after `ticket` was taken.
    pub(super) fn put_key(&self, ticket: Option<u64>, hash: &str, key: ActiveKey) {
        self.fill(ticket, |e| insert(&mut e.keys, hash, key));
    }

    /// Keeps a project's overrides read from the database after `ticket` was taken.
    pub(super) fn put_overrides(&self, ticket: Option<u64>, project_id: &str, o: SendOverrides) {
        self.fill(ticket, |e| insert(&mut e.overrides, project_id, o));
    }

    /// Under the lock [`ProjectCache::clear`] takes after moving the generation on: a fill
    /// either sees the new generation and is dropped, or lands before the emptying. (Going
    /// off empties the cache too, so a ticket taken while live is void once it is not.)
    fn fill(&self, ticket: Option<u64>, put: impl FnOnce(&mut Entries)) {
        let Some(ticket) = ticket else { return };
        if let Ok(mut entries) = self.entries.write() {
            if self.generation.load(Ordering::SeqCst) == ticket {
                put(&mut entries);
            }
        }
    }

    /// Empties the cache (a change was made or heard of).
    pub(super) fn clear(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut entries) = self.entries.write() {
            *entries = Entries::default();
        }
    }

    /// Turns the cache on (the listener is connected) or off (it is not), empty either way:
    /// what changed while nobody listened was not heard.
    fn set_live(&self, live: bool) {
        self.live.store(live, Ordering::SeqCst);
        self.clear();
    }

    /// Whether this use of the key should be written (the first in [`TOUCH_EVERY_MS`]).
    pub(super) fn should_touch(&self, key_hash: &str, now: UnixMillis) -> bool {
        let Ok(mut touched) = self.touched.lock() else {
            return true;
        };
        match touched.get(key_hash) {
            Some(last) if now.millis_since(*last) < TOUCH_EVERY_MS => false,
            _ => {
                if touched.len() >= MAX_ENTRIES {
                    touched.clear();
                }
                touched.insert(key_hash.to_owned(), now);
                true
            }
        }
    }
}

fn insert<T>(map: &mut HashMap<String, Timed<T>>, key: &str, value: T) {
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
    let at = Instant::now();
    map.insert(key.to_owned(), Timed { at, value });
}

/// Starts the listener of `cache` on the current runtime; the cache is live while it is
/// connected. It ends when the pool closes or the handle is aborted.
pub(super) fn spawn(
    pool: PgPool,
    bound: Option<Duration>,
    cache: Arc<ProjectCache>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(50);
        while !pool.is_closed() {
            match listen(&pool, bound, &cache).await {
                Ok(()) => backoff = Duration::from_millis(50),
                Err(error) => tracing::warn!(%error, "project cache: listener connection failed"),
            }
            // Changes may go unheard until the next LISTEN: bypass and empty.
            cache.set_live(false);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
        cache.set_live(false);
    })
}

/// `fut` within `bound`, or [`StoreError::Timeout`].
async fn step<T>(
    bound: Option<Duration>,
    fut: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, StoreError> {
    match deadline::within(bound, fut).await {
        Some(result) => Ok(result?),
        None => Err(StoreError::Timeout(bound.unwrap_or_default())),
    }
}

/// One connection's life: LISTEN, go live, empty on every message, until the connection
/// drops (`Ok`), fails or stops answering the keepalive (`Err`). The connection comes from
/// a private one-connection pool, so that a hung `UNLISTEN` on a frozen server holds no
/// slot of the store's pool.
async fn listen(
    store_pool: &PgPool,
    bound: Option<Duration>,
    cache: &ProjectCache,
) -> Result<(), StoreError> {
    let mut options = PgPoolOptions::new().max_connections(1);
    if let Some(bound) = bound {
        options = options.acquire_timeout(bound);
    }
    let pool = options.connect_lazy_with((*store_pool.connect_options()).clone());
    let mut listener = step(bound, PgListener::connect_with(&pool)).await?;
    listener.eager_reconnect(false);
    step(bound, listener.listen(CHANNEL)).await?;
    cache.set_live(true);
    loop {
        match tokio::time::timeout(KEEPALIVE, listener.try_recv()).await {
            Ok(Ok(Some(_))) => cache.clear(),
            Ok(Ok(None)) => return Ok(()),
            Ok(Err(error)) => return Err(error.into()),
            Err(_) => {
                step(bound, sqlx::query("SELECT 1").execute(&mut listener)).await?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> ActiveKey {
        ActiveKey {
            stored: "h".into(),
            project: Project {
                id: "prj_1".into(),
                name: name.into(),
                allowed_origins: vec![],
                callback_url: None,
                email_from: None,
                sms_countries: vec![],
                sms_caps: Default::default(),
                created_at: UnixMillis::from_millis(0),
            },
            revoked_at: None,
        }
    }

    #[test]
    fn a_cache_that_is_not_live_is_neither_read_nor_filled() {
        let cache = ProjectCache::default();
        assert_eq!(cache.ticket(), None);
        cache.put_key(cache.ticket(), "h", key("a"));
        cache.set_live(true);
        assert!(cache.key("h").is_none(), "filled while not live");
        // A ticket taken while live is void once the cache goes off.
        let ticket = cache.ticket();
        cache.set_live(false);
        cache.set_live(true);
        cache.put_key(ticket, "h", key("a"));
        assert!(
            cache.key("h").is_none(),
            "filled with a ticket from before an outage"
        );
        let ticket = cache.ticket();
        cache.put_key(ticket, "h", key("a"));
        assert_eq!(cache.key("h").map(|k| k.project.name), Some("a".into()));
        cache.set_live(false);
        assert!(cache.key("h").is_none(), "read while not live");
    }

    #[test]
    fn a_fill_that_read_before_a_change_is_dropped() {
        let cache = ProjectCache::default();
        cache.set_live(true);
        let ticket = cache.ticket();
        // The database is read here, then a change is heard before the fill.
        cache.clear();
        cache.put_key(ticket, "h", key("stale"));
        assert!(cache.key("h").is_none(), "a stale read was cached");
    }

    #[test]
    fn a_key_is_touched_once_a_minute() {
        let cache = ProjectCache::default();
        let t = UnixMillis::from_millis(1_000_000);
        assert!(cache.should_touch("h", t));
        assert!(!cache.should_touch("h", UnixMillis::from_millis(1_059_999)));
        assert!(cache.should_touch("h", UnixMillis::from_millis(1_060_000)));
        assert!(cache.should_touch("other", t));
    }
}
