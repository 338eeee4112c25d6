//! Storage seam: one [`Store`] type with a Postgres and a SQLite backend.
//!
//! Both backends share the same schema (times are epoch milliseconds, lists are JSON text) and,
//! thanks to sqlx accepting `$N` placeholders on SQLite too, the same SQL for everything but the
//! worker claim query (in [`postgres`] and [`sqlite`]), and, on Postgres, sends and delivery
//! outcomes, written in groups ([`group`]): the sends (or outcomes) that arrive while the
//! previous group is written go together in one statement and one commit. SQLite, one writer
//! on one file, writes each in a transaction of its own.

mod cache;
mod deadline;
mod group;
mod model;
pub mod postgres;
pub mod sqlite;

pub use model::*;

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use futureauth_proto::Region;
use sqlx::{Connection, PgPool, SqlitePool};

use crate::error::StoreError;
use sql::{Arg, BindArgs};

/// The database behind a [`Store`].
#[derive(Debug, Clone)]
enum Backend {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// Adds a key to a project (`key_hash`, `key_prefix`, `project_id`, `created_at`); shared by
/// project creation and key rotation.
const INSERT_API_KEY: &str =
    "INSERT INTO api_key (key_hash, key_prefix, project_id, created_at) VALUES ($1, $2, $3, $4)";

/// Every key of project `$2` that would still work after `$1` stops at `$1`: keys with no
/// end, and keys of an earlier rotation whose overlap runs past it. Revoking "now" must cut
/// an overlap short too, or a leaked key rotated out with an overlap keeps working.
const REVOKE_PROJECT_KEYS: &str = "UPDATE api_key SET revoked_at = $1 \
     WHERE project_id = $2 AND (revoked_at IS NULL OR revoked_at > $1)";

/// Appends the fence of [`Store::complete`] to an `UPDATE outbox`: only the claim that holds
/// the current attempt of a queued message may record its outcome (`$1` the id, `$2` the
/// claim's attempt number).
macro_rules! fenced {
    ($update:literal) => {
        concat!(
            $update,
            " WHERE id = $1 AND status = 'queued' AND attempts = $2"
        )
    };
}

/// The statement of [`Store::complete`] on SQLite for one outcome (its [`fenced`] `UPDATE
/// outbox`, the update's own values from `$3`); Postgres writes outcomes in groups
/// ([`postgres::complete_writer`]).
fn completion<'a>(outcome: &Outcome<'a>) -> (&'static str, Vec<Arg<'a>>) {
    match *outcome {
        Outcome::Sent {
            provider_id,
            masked_destination,
            at,
        } => (
            fenced!(
                "UPDATE outbox SET status = 'sent', payload = NULL, destination = $3,
                     sent_at = $4, locked_until = NULL, last_error = NULL,
                     provider_message_id = $5"
            ),
            vec![masked_destination.into(), at.into(), provider_id.into()],
        ),
        Outcome::Failed {
            masked_destination,
            error,
        } => (
            fenced!(
                "UPDATE outbox SET status = 'failed', payload = NULL, destination = $3,
                     last_error = $4, locked_until = NULL"
            ),
            vec![masked_destination.into(), error.into()],
        ),
        Outcome::Retry {
            next_attempt_at,
            error,
        } => (
            fenced!("UPDATE outbox SET next_attempt_at = $3, last_error = $4, locked_until = NULL"),
            vec![next_attempt_at.into(), error.into()],
        ),
    }
}

/// The values of [`INSERT_MESSAGE`]: `queued`, or `test` (never sent).
fn message_args(msg: &NewMessage, now: UnixMillis) -> [Arg<'_>; 10] {
    let status = msg.status();
    [
        msg.id.as_str().into(),
        msg.project_id.as_str().into(),
        msg.channel.as_str().into(),
        msg.destination.as_str().into(),
        msg.payload.as_str().into(),
        now.into(),
        (&msg.idempotency_key).into(),
        (&msg.request_hash).into(),
        (&msg.destination_hash).into(),
        status.as_str().into(),
    ]
}

/// Writes a new message, `queued` and due now (or `test`: never sent), returning the row
/// (no second read).
const INSERT_MESSAGE: &str = "INSERT INTO outbox (id, project_id, channel, destination, payload,
         status, attempts, next_attempt_at, idempotency_key, request_hash, created_at,
         destination_hash)
     VALUES ($1, $2, $3, $4, $5, $10, 0, $6, $7, $8, $6, $9)
     RETURNING *";

/// One statement that increments every counter of a send and returns the new counts
/// (`$1, $2` = bucket key and window start of the first, and so on); `None` for no buckets.
/// A send has 2 or 5 buckets, so the usual statements are built once each.
fn upsert_counters_sql(n: usize) -> Option<Cow<'static, str>> {
    static SQL: LazyLock<Vec<String>> =
        LazyLock::new(|| (0..=MAX_BUCKETS).map(build_upsert_counters).collect());
    match SQL.get(n) {
        _ if n == 0 => None,
        Some(sql) => Some(Cow::Borrowed(sql)),
        None => Some(Cow::Owned(build_upsert_counters(n))),
    }
}

fn build_upsert_counters(n: usize) -> String {
    let rows: Vec<String> = (0..n)
        .map(|i| format!("(${}, ${}, 1)", 2 * i + 1, 2 * i + 2))
        .collect();
    format!(
        "INSERT INTO rate_counter (bucket, window_start, count) VALUES {}
         ON CONFLICT (bucket, window_start) DO UPDATE SET count = rate_counter.count + 1
         RETURNING bucket, count",
        rows.join(", ")
    )
}

/// The most buckets one send counts (per recipient, per project, three SMS caps), with room;
/// more are still counted, with a statement built on the spot.
const MAX_BUCKETS: usize = 8;

/// How many rows a [sharded](RateBucket::sharded) counter is spread over on Postgres. A
/// send increments one of them, picked at random, and reads the sum of all without locking
/// them, so the sends of one project no longer wait for each other's commit. The price: sends
/// committing at the same instant don't see each other, so a project-wide limit can be passed
/// by at most the number of sends in flight. SQLite has one writer and needs no shards.
pub const COUNTER_SHARDS: u32 = 8;

/// A counter row's key and count.
type CounterRow = (String, i64);

/// The buckets whose count (what the upsert returned, in the buckets' order) is over their
/// limit, and when their windows end.
fn limit_hits(buckets: &[RateBucket], counted: &[CounterRow], now: UnixMillis) -> Vec<LimitHit> {
    buckets
        .iter()
        .filter(|b| {
            let count = counted
                .iter()
                .find(|(key, _)| *key == b.key)
                .map_or(0, |(_, count)| *count);
            count > i64::from(b.limit)
        })
        .map(|b| LimitHit {
            scope: b.scope,
            retry_after_ms: b.window(now).1,
        })
        .collect()
}

/// Runs `$body` with `$conn` bound to `&mut` a connection of whichever pool backs the store
/// (same code, two drivers), under the store's deadline ([`deadline`]): the one place every
/// query of the store goes through. Pass the connection on as `&mut *conn`. Evaluates to the
/// body's value; a failure or an expired deadline returns early with `?`.
macro_rules! with_pool {
    ($self:expr, $conn:ident => $body:expr) => {{
        let store: &$crate::store::Store = $self;
        match &store.backend {
            Backend::Postgres(pool) => $crate::store::deadline::bounded!(pool, store.bound, $conn => $body)?,
            Backend::Sqlite(pool) => $crate::store::deadline::bounded!(pool, store.bound, $conn => $body)?,
        }
    }};
}

mod console;
mod events;
mod sql;
mod test_mode;
mod webhooks;
pub use console::*;
pub use events::*;
pub use test_mode::TestMode;
pub use webhooks::ProjectWebhook;

#[derive(sqlx::FromRow)]
struct ProjectRow {
    id: String,
    name: String,
    allowed_origins: String,
    callback_url: Option<String>,
    email_from: Option<String>,
    sms_prefixes: String,
    sms_countries: Option<String>,
    sms_per_country_per_hour: Option<i64>,
    sms_per_hour: Option<i64>,
    sms_per_day: Option<i64>,
    created_at: UnixMillis,
}

impl TryFrom<ProjectRow> for Project {
    type Error = StoreError;
    fn try_from(r: ProjectRow) -> Result<Self, StoreError> {
        let corrupt = |e: String| StoreError::Corrupt(format!("project {}: {e}", r.id));
        let list = |s: &str| -> Result<Vec<String>, StoreError> {
            serde_json::from_str(s).map_err(|e| corrupt(e.to_string()))
        };
        let sms_countries = match &r.sms_countries {
            Some(json) => list(json)?
                .iter()
                .map(|c| Region::parse(c).map_err(|e| corrupt(e.to_string())))
                .collect::<Result<Vec<_>, _>>()?,
            None => crate::sms::countries_from_legacy_prefixes(&list(&r.sms_prefixes)?),
        };
        let cap = |v: Option<i64>| -> Result<Option<u32>, StoreError> {
            v.map(|n| u32::try_from(n).map_err(|e| corrupt(e.to_string())))
                .transpose()
        };
        Ok(Project {
            allowed_origins: list(&r.allowed_origins)?,
            sms_countries,
            sms_caps: SmsCaps {
                per_country_per_hour: cap(r.sms_per_country_per_hour)?,
                per_hour: cap(r.sms_per_hour)?,
                per_day: cap(r.sms_per_day)?,
            },
            id: r.id,
            name: r.name,
            callback_url: r.callback_url,
            email_from: r.email_from,
            created_at: r.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct KeyProjectRow {
    key_hash: String,
    revoked_at: Option<UnixMillis>,
    #[sqlx(flatten)]
    project: ProjectRow,
}

/// Timeouts of the database pool: how the service stays fast while its database is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// How long an operation waits for a connection (connecting included) before failing.
    pub acquire_timeout: Duration,
    /// Longest a single statement may run (Postgres `statement_timeout`, SQLite `busy_timeout`).
    pub statement_timeout: Duration,
    /// Longest any store call may take on our side, the wait for a connection included;
    /// bounds what `statement_timeout` cannot (a frozen or partitioned database).
    pub call_timeout: Duration,
}

impl Default for StoreOptions {
    /// The server's defaults: 2 s to get a connection, 5 s per statement, 6 s per call.
    fn default() -> Self {
        StoreOptions {
            acquire_timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(5),
            call_timeout: DEFAULT_CALL_TIMEOUT,
        }
    }
}

/// The state of the outbox queue, for `/readyz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueStats {
    /// Messages waiting for delivery.
    pub depth: i64,
    /// Creation time of the oldest waiting message.
    pub oldest_created_at: Option<UnixMillis>,
}

const PROJECT_COLUMNS: &str = "p.id, p.name, p.allowed_origins, p.callback_url, p.email_from, \
     p.sms_prefixes, p.sms_countries, p.sms_per_country_per_hour, p.sms_per_hour, p.sms_per_day, \
     p.created_at";

/// A country list as stored: a JSON array of ISO codes.
pub(crate) fn countries_json(countries: &[Region]) -> String {
    let codes: Vec<&str> = countries.iter().map(Region::as_str).collect();
    serde_json::Value::from(codes).to_string()
}

/// Default of [`StoreOptions::call_timeout`]: a little above the default statement timeout,
/// so that a slow statement is still cancelled by the database first.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(6);

/// Handle to the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    /// The deadline of every call ([`deadline`]).
    bound: Option<Duration>,
    /// Keys and send settings in memory (Postgres, once [`Store::cache_projects`] runs).
    cache: Arc<cache::ProjectCache>,
    /// The queues of the writes made in groups (Postgres).
    groups: Arc<Groups>,
}

/// The writes a Postgres store makes in groups ([`group`]), shared by a store's clones.
#[derive(Debug, Default)]
struct Groups {
    sends: group::Group<postgres::EnqueueJob, EnqueueOutcome>,
    outcomes: group::Group<postgres::CompleteJob, bool>,
    /// Groups of sends that failed as a whole and were written send by send.
    split: Arc<AtomicU64>,
}

impl Store {
    /// Connects to `url` (`postgres://…` or `sqlite:…`) with the default
    /// [`StoreOptions`] and runs the embedded migrations.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Store::connect_with(url, &StoreOptions::default()).await
    }

    /// Connects to `url` with these pool timeouts and runs the embedded migrations.
    pub async fn connect_with(url: &str, options: &StoreOptions) -> Result<Store, StoreError> {
        let store = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Store::from_postgres(postgres::connect(url, options).await?)
        } else {
            Store::from_sqlite(sqlite::connect(url, options).await?)
        }
        .with_call_timeout(Some(options.call_timeout));
        store.migrate().await?;
        Ok(store)
    }

    /// Wraps an existing Postgres pool (call [`Store::migrate`] next).
    pub fn from_postgres(pool: PgPool) -> Store {
        Store {
            backend: Backend::Postgres(pool),
            bound: Some(DEFAULT_CALL_TIMEOUT),
            cache: Arc::default(),
            groups: Arc::default(),
        }
    }

    /// Wraps an existing SQLite pool (call [`Store::migrate`] next).
    pub fn from_sqlite(pool: SqlitePool) -> Store {
        Store {
            backend: Backend::Sqlite(pool),
            bound: Some(DEFAULT_CALL_TIMEOUT),
            cache: Arc::default(),
            groups: Arc::default(),
        }
    }

    /// This store with every call bounded by `bound` (`None`: as long as the database takes,
    /// not recommended); see [`StoreOptions::call_timeout`].
    pub fn with_call_timeout(mut self, bound: Option<Duration>) -> Store {
        self.bound = bound;
        self
    }

    /// Keeps secret keys and send settings in memory from now on, emptied on every change
    /// any instance makes ([`cache`]); on Postgres only (a SQLite store never caches:
    /// another process may write its file unheard). The task that listens for changes runs
    /// until the pool closes or the returned handle is aborted.
    pub fn cache_projects(&self) -> Option<tokio::task::JoinHandle<()>> {
        match &self.backend {
            Backend::Postgres(pool) => {
                Some(cache::spawn(pool.clone(), self.bound, self.cache.clone()))
            }
            Backend::Sqlite(_) => None,
        }
    }

    /// Whether keys and send settings are served from memory right now (the listener of
    /// [`Store::cache_projects`] is connected); `false` means every call reads the database.
    pub fn caches_projects(&self) -> bool {
        self.cache.ticket().is_some()
    }

    /// `result` of a write to projects, keys or send settings, once this store's cache no
    /// longer holds what it changed (other instances hear of it through the triggers).
    fn changed<T>(&self, result: T) -> T {
        self.cache.clear();
        result
    }

    /// How many groups of sends ([`group`]) failed as a whole, so that each of their sends
    /// was written again alone; `0` unless another writer took a key or an older instance
    /// deadlocked with a group (diagnostics, tests).
    pub fn split_groups(&self) -> u64 {
        self.groups.split.load(Ordering::Relaxed)
    }

    /// The deadline of every call of this store.
    pub fn call_timeout(&self) -> Option<Duration> {
        self.bound
    }

    /// `"postgres"` or `"sqlite"`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Postgres(_) => "postgres",
            Backend::Sqlite(_) => "sqlite",
        }
    }

    /// Runs the embedded migrations of the backend.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Postgres(pool) => postgres::MIGRATOR.run(pool).await?,
            Backend::Sqlite(pool) => sqlite::MIGRATOR.run(pool).await?,
        }
        Ok(())
    }

    /// How many messages wait for delivery and since when; also proves the database answers.
    pub async fn queue_stats(&self) -> Result<QueueStats, StoreError> {
        let (depth, oldest_created_at): (i64, Option<UnixMillis>) = self
            .fetch_one(
                "SELECT COUNT(*), MIN(created_at) FROM outbox WHERE status = 'queued'",
                &[],
            )
            .await?;
        Ok(QueueStats {
            depth,
            oldest_created_at,
        })
    }

    /// Queued messages created before `before` that no worker holds a lease on at `now`, at
    /// most `limit`: the ones too old to be worth sending.
    pub async fn stale_queued(
        &self,
        before: UnixMillis,
        now: UnixMillis,
        limit: i64,
    ) -> Result<Vec<Message>, StoreError> {
        self.fetch_all(
            "SELECT * FROM outbox
             WHERE status = 'queued' AND created_at < $1
               AND (locked_until IS NULL OR locked_until <= $2)
             ORDER BY created_at
             LIMIT $3",
            &[before.into(), now.into(), limit.into()],
        )
        .await
    }

    /// Closes the pool.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Postgres(pool) => pool.close().await,
            Backend::Sqlite(pool) => pool.close().await,
        }
    }

    /// All projects, oldest first.
    pub async fn list_projects(&self) -> Result<Vec<Project>, StoreError> {
        let sql = format!("SELECT {PROJECT_COLUMNS} FROM project p ORDER BY p.created_at, p.id");
        let rows: Vec<ProjectRow> = self.fetch_all(&sql, &[]).await?;
        rows.into_iter().map(Project::try_from).collect()
    }

    /// One project by id.
    pub async fn get_project(&self, id: &str) -> Result<Option<Project>, StoreError> {
        let sql = format!("SELECT {PROJECT_COLUMNS} FROM project p WHERE p.id = $1");
        let row: Option<ProjectRow> = self.fetch_optional(&sql, &[id.into()]).await?;
        row.map(Project::try_from).transpose()
    }

    /// The stored hash and the project of the key with this SHA-256 hex hash that is active
    /// at `now` (not revoked, or still in its rotation overlap). A revoked key and an unknown
    /// key both give `None`: the database answers the same way for both, so callers cannot
    /// tell them apart.
    pub async fn active_key_by_hash(
        &self,
        key_hash: &str,
        now: UnixMillis,
    ) -> Result<Option<(String, Project)>, StoreError> {
        let active = |revoked_at: Option<UnixMillis>| revoked_at.map_or(true, |r| r > now);
        if let Some(hit) = self.cache.key(key_hash).filter(|k| active(k.revoked_at)) {
            return Ok(Some((hit.stored, hit.project)));
        }
        let ticket = self.cache.ticket();
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT k.key_hash, k.revoked_at, {PROJECT_COLUMNS}
                 FROM api_key k JOIN project p ON p.id = k.project_id
                 WHERE k.key_hash = $1 AND (k.revoked_at IS NULL OR k.revoked_at > $2)"
            )
        });
        // A key rotated with an overlap keeps working until its `revoked_at`.
        let row: Option<KeyProjectRow> = self
            .fetch_optional(&SQL, &[key_hash.into(), now.into()])
            .await?;
        let Some(KeyProjectRow {
            key_hash: stored,
            revoked_at,
            project,
        }) = row
        else {
            return Ok(None);
        };
        let project = Project::try_from(project)?;
        let key = cache::ActiveKey {
            stored,
            project,
            revoked_at,
        };
        self.cache.put_key(ticket, key_hash, key.clone());
        Ok(Some((key.stored, key.project)))
    }

    /// Adds a key to the project and makes every other key that would still work after
    /// `old_until` stop then (`now` for no overlap; an earlier end already set is kept),
    /// atomically. Returns `false` if the project does not exist.
    pub async fn rotate_key(
        &self,
        project_id: &str,
        key_hash: &str,
        key_prefix: &str,
        now: UnixMillis,
        old_until: UnixMillis,
    ) -> Result<bool, StoreError> {
        let rotated = with_pool!(self, conn => {
            let mut tx = conn.begin().await?;
            let exists: Option<(String,)> = sqlx::query_as("SELECT id FROM project WHERE id = $1")
                .bind(project_id)
                .fetch_optional(&mut *tx)
                .await?;
            // A `return` here would leave the bounded block only, so the body yields a value.
            if exists.is_none() {
                tx.rollback().await?;
                false
            } else {
                sqlx::query(REVOKE_PROJECT_KEYS)
                    .bind_args(&[old_until.into(), project_id.into()])
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(INSERT_API_KEY)
                    .bind_args(&[key_hash.into(), key_prefix.into(), project_id.into(), now.into()])
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                true
            }
        });
        Ok(self.changed(rotated))
    }

    /// Revokes now the keys whose display prefix is `key_prefix` and that still work (an
    /// overlap after a rotation is cut short); returns how many.
    pub async fn revoke_keys_by_prefix(
        &self,
        key_prefix: &str,
        now: UnixMillis,
    ) -> Result<u64, StoreError> {
        self.execute(
            "UPDATE api_key SET revoked_at = $1 \
             WHERE key_prefix = $2 AND (revoked_at IS NULL OR revoked_at > $1)",
            &[now.into(), key_prefix.into()],
        )
        .await
        .map(|n| self.changed(n))
    }

    /// Revokes now every key of a project that still works; returns how many.
    pub async fn revoke_project_keys(
        &self,
        project_id: &str,
        now: UnixMillis,
    ) -> Result<u64, StoreError> {
        self.execute(REVOKE_PROJECT_KEYS, &[now.into(), project_id.into()])
            .await
            .map(|n| self.changed(n))
    }

    /// The project's message sent with this `Idempotency-Key`, if any.
    pub async fn find_by_idempotency_key(
        &self,
        project_id: &str,
        key: &str,
    ) -> Result<Option<Message>, StoreError> {
        self.fetch_optional(
            "SELECT * FROM outbox WHERE project_id = $1 AND idempotency_key = $2",
            &[project_id.into(), key.into()],
        )
        .await
    }

    /// Counts every bucket and, if none went over its limit, writes the message as `queued`
    /// and due now, atomically: nothing is written when a limit is hit or the idempotency
    /// key is taken. On Postgres, in a group with the sends that arrive meanwhile, one
    /// statement and one commit for all of them, each counted as if alone, in order
    /// (`futureauth_enqueue_batch`, sharded project counters); on SQLite, one transaction of
    /// two statements (one writer, no shards).
    pub async fn enqueue(
        &self,
        msg: &NewMessage,
        buckets: &[RateBucket],
        now: UnixMillis,
    ) -> Result<EnqueueOutcome, StoreError> {
        let conn = match &self.backend {
            Backend::Postgres(pool) => {
                let job = postgres::EnqueueJob {
                    msg: msg.clone(),
                    buckets: buckets.to_vec(),
                    now,
                };
                let writer = || {
                    postgres::enqueue_writer(pool.clone(), self.bound, self.groups.split.clone())
                };
                return self.groups.sends.call(job, self.bound, writer).await;
            }
            Backend::Sqlite(pool) => pool,
        };
        let upsert = upsert_counters_sql(buckets.len());
        let message = message_args(msg, now);
        let outcome = deadline::bounded!(conn, self.bound, conn => async {
            let mut tx = conn.begin().await?;
            if let Some(sql) = &upsert {
                let mut q = sqlx::query_as::<_, (String, i64)>(sql);
                for b in buckets {
                    q = q.bind(b.key.as_str()).bind(b.window(now).0);
                }
                let counted = q.fetch_all(&mut *tx).await?;
                let hits = limit_hits(buckets, &counted, now);
                if !hits.is_empty() {
                    tx.rollback().await?;
                    return Ok(EnqueueOutcome::OverLimit(hits));
                }
            }
            let created = sqlx::query_as(INSERT_MESSAGE)
                .bind_args(&message)
                .fetch_one(&mut *tx)
                .await;
            match created {
                Ok(m) => {
                    tx.commit().await?;
                    Ok(EnqueueOutcome::Created(m))
                }
                // The transaction rolls back when dropped.
                Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                    Ok(EnqueueOutcome::DuplicateKey)
                }
                Err(e) => Err(e),
            }
        }
        .await)?;
        outcome.map_err(StoreError::Database)
    }

    /// A message of the given project.
    pub async fn get_message(
        &self,
        project_id: &str,
        id: &str,
    ) -> Result<Option<Message>, StoreError> {
        self.fetch_optional(
            "SELECT * FROM outbox WHERE id = $1 AND project_id = $2",
            &[id.into(), project_id.into()],
        )
        .await
    }

    /// A message of any project (workers and tests).
    pub async fn get_message_any(&self, id: &str) -> Result<Option<Message>, StoreError> {
        self.fetch_optional("SELECT * FROM outbox WHERE id = $1", &[id.into()])
            .await
    }

    /// Claims up to `limit` due messages for a worker until `lease_until`, counting an attempt
    /// on each. A message whose lease expired (crashed worker) is due again.
    pub async fn claim_due(
        &self,
        now: UnixMillis,
        lease_until: UnixMillis,
        limit: i64,
    ) -> Result<Vec<Message>, StoreError> {
        let sql = match self.backend {
            Backend::Postgres(_) => postgres::CLAIM_DUE,
            Backend::Sqlite(_) => sqlite::CLAIM_DUE,
        };
        self.fetch_all(sql, &[lease_until.into(), now.into(), limit.into()])
            .await
    }

    /// Records how a delivery attempt ended: `sent` and `failed` finish the message (its
    /// payload, the code, is erased and the masked destination kept); `retry` releases the
    /// lease and schedules another attempt. `now` is when the attempt ended (its timeline
    /// entry).
    ///
    /// Fenced by `attempt`, the attempt number the worker's claim returned: if the lease
    /// expired and another worker claimed the row since (so `attempts` moved on), or the row
    /// is no longer queued, nothing changes and `false` is returned.
    pub async fn complete(
        &self,
        id: &str,
        attempt: i64,
        outcome: Outcome<'_>,
        now: UnixMillis,
    ) -> Result<bool, StoreError> {
        if let Backend::Postgres(pool) = &self.backend {
            let job = postgres::CompleteJob::new(id, attempt, &outcome, now);
            let writer = || postgres::complete_writer(pool.clone(), self.bound);
            return self.groups.outcomes.call(job, self.bound, writer).await;
        }
        let (update, values) = completion(&outcome);
        let args: Vec<Arg<'_>> = [id.into(), attempt.into()]
            .into_iter()
            .chain(values)
            .collect();
        let n = self.execute(update, &args).await?;
        if n == 1 {
            self.record_attempt(id, attempt, outcome.name(), outcome.error(), now)
                .await;
        }
        Ok(n == 1)
    }

    /// Number of outbox messages of a project (tests, diagnostics).
    pub async fn count_messages(&self, project_id: &str) -> Result<i64, StoreError> {
        let (n,): (i64,) = self
            .fetch_one(
                "SELECT COUNT(*) FROM outbox WHERE project_id = $1",
                &[project_id.into()],
            )
            .await?;
        Ok(n)
    }

    /// Deletes finished (every state but `queued`) messages created before `before`, in
    /// batches of `batch` rows so no single statement holds locks (or SQLite's only
    /// connection) for long; returns how many. Queued messages are never deleted.
    pub async fn delete_finished_messages(
        &self,
        before: UnixMillis,
        batch: i64,
    ) -> Result<u64, StoreError> {
        let batch = batch.max(1);
        let mut total = 0u64;
        loop {
            let n = self
                .execute(
                    "DELETE FROM outbox WHERE id IN (
                         SELECT id FROM outbox
                         WHERE status <> 'queued' AND created_at < $1
                         LIMIT $2)",
                    &[before.into(), batch.into()],
                )
                .await?;
            total += n;
            if n < u64::try_from(batch).unwrap_or(u64::MAX) {
                return Ok(total);
            }
        }
    }

    /// Deletes rate-limit counters whose window started before `before`.
    pub async fn prune_rate_counters(&self, before: UnixMillis) -> Result<u64, StoreError> {
        self.execute(
            "DELETE FROM rate_counter WHERE window_start < $1",
            &[before.into()],
        )
        .await
    }
}

// Here rather than in config.rs: configuration sits below the store and names none of it.
impl crate::config::Config {
    /// Timeouts of the database pool.
    pub fn store_options(&self) -> StoreOptions {
        StoreOptions {
            acquire_timeout: self.database.db_acquire_timeout(),
            statement_timeout: self.database.db_statement_timeout(),
            call_timeout: self.database.db_call_timeout(),
        }
    }
}
