//! Postgres backend: connection, migrations, the `FOR UPDATE SKIP LOCKED` claim, and the
//! sends and delivery outcomes written in groups, one statement and one commit per group
//! ([`super::group`]).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use super::group::{all_failed, Writer};
use super::sql::BindArgs;
use super::{
    EnqueueOutcome, LimitHit, Message, NewMessage, Outcome, RateBucket, StoreOptions, UnixMillis,
};
use crate::error::StoreError;

/// Embedded Postgres migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Opens a pool whose requests give up after `options.acquire_timeout` when no connection
/// can be had (the database is down) and whose statements the server cancels after
/// `options.statement_timeout` (`statement_timeout`, sent at connection start-up).
pub async fn connect(url: &str, options: &StoreOptions) -> Result<PgPool, sqlx::Error> {
    let connect = PgConnectOptions::from_str(url)?
        .options([("statement_timeout", options.statement_timeout.as_millis())]);
    PgPoolOptions::new()
        .max_connections(10)
        .acquire_timeout(options.acquire_timeout)
        .connect_with(connect)
        .await
}

/// Claims up to `$3` due rows (`$1` the lease's end, `$2` now) through `futureauth_claim`
/// (migration `0026_claim_by_key.sql`): concurrent workers skip each other's locked rows,
/// and each claimed row is updated by its key. (One `UPDATE … WHERE id = ANY(ARRAY(…))`
/// could be planned, on a nearly empty outbox, as a scan of the whole table, and that plan
/// stayed as the outbox grew.)
pub const CLAIM_DUE: &str = "SELECT * FROM futureauth_claim($1, $2, $3)";

/// Calls `futureauth_enqueue` (migration `0023_enqueue.sql`): the counters and the insert of
/// a send in one statement, one round trip, rolled back as a whole over a limit. Used for a
/// send of a group that failed as a whole ([`enqueue_group`]), to write it alone.
const ENQUEUE: &str = "SELECT * FROM futureauth_enqueue($1, $2, $3, $4, $5,
     $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";

/// The SQLSTATE `futureauth_enqueue` raises over a limit; its message lists the buckets.
const OVER_LIMIT: &str = "FA429";

/// One send on its own, in one statement.
async fn enqueue(
    pool: &PgPool,
    bound: Option<std::time::Duration>,
    msg: &NewMessage,
    buckets: &[RateBucket],
    now: UnixMillis,
) -> Result<EnqueueOutcome, StoreError> {
    let keys: Vec<&str> = buckets.iter().map(|b| b.key.as_str()).collect();
    let windows: Vec<i64> = buckets.iter().map(|b| b.window(now).0.into()).collect();
    let limits: Vec<i64> = buckets.iter().map(|b| i64::from(b.limit)).collect();
    let sharded: Vec<bool> = buckets.iter().map(|b| b.sharded).collect();
    let shards = i32::try_from(super::COUNTER_SHARDS).unwrap_or(i32::MAX);
    let message = super::message_args(msg, now);
    let created = super::deadline::bounded!(pool, bound, conn => {
        sqlx::query_as::<_, Message>(ENQUEUE)
            .bind(&keys)
            .bind(&windows)
            .bind(&limits)
            .bind(&sharded)
            .bind(shards)
            .bind_args(&message)
            .fetch_one(&mut *conn)
            .await
    })?;
    match created {
        Ok(m) => Ok(EnqueueOutcome::Created(m)),
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
            Ok(EnqueueOutcome::DuplicateKey)
        }
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some(OVER_LIMIT) => Ok(
            EnqueueOutcome::OverLimit(over_limit(db.message(), buckets, now)?),
        ),
        Err(e) => Err(e.into()),
    }
}

/// The buckets `futureauth_enqueue` reported over their limit (`"1,3"`, 1-based).
fn over_limit(
    listed: &str,
    buckets: &[RateBucket],
    now: UnixMillis,
) -> Result<Vec<LimitHit>, StoreError> {
    listed
        .split(',')
        .map(|n| {
            n.parse::<usize>()
                .ok()
                .and_then(|n| buckets.get(n.checked_sub(1)?))
                .map(|b| LimitHit {
                    scope: b.scope,
                    retry_after_ms: b.window(now).1,
                })
                .ok_or_else(|| StoreError::Corrupt(format!("enqueue reported bucket {n:?}")))
        })
        .collect()
}

/// The SQLSTATEs on which a group of sends is written again send by send: `FA409`, an
/// idempotency key of the group taken meanwhile by a send not yet committed when the group
/// looked; `40P01`, a deadlock, which groups avoid among themselves but an instance of an
/// older version, counting send by send in another order, can still cause.
const REWRITE_ALONE: [&str; 2] = ["FA409", "40P01"];

/// One send waiting for its group ([`enqueue_group`]).
#[derive(Debug)]
pub(super) struct EnqueueJob {
    pub msg: NewMessage,
    pub buckets: Vec<RateBucket>,
    pub now: UnixMillis,
}

/// Calls `futureauth_enqueue_batch` (migration `0025_enqueue_batch.sql`, its statements
/// rewritten by `0026_claim_by_key.sql` to reach every row by key): the sends of a group,
/// each written or refused as alone, in one statement and one commit.
const ENQUEUE_GROUP: &str = "SELECT place, over FROM futureauth_enqueue_batch($1, $2, $3, $4,
     $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)";

/// The counter rows of a group and the sends' entries pointing at them, as
/// `futureauth_enqueue_batch` takes them.
#[derive(Debug, Default)]
struct GroupCounters<'a> {
    rows: Vec<Cow<'a, str>>,
    windows: Vec<i64>,
    bases: Vec<Option<&'a str>>,
    entry_send: Vec<i32>,
    entry_row: Vec<i32>,
    entry_limit: Vec<i64>,
}

impl<'a> GroupCounters<'a> {
    /// Every bucket of every send, each counter row once. A sharded bucket counts in one
    /// shard, picked at random for the whole group.
    fn new(jobs: &'a [EnqueueJob]) -> Result<Self, StoreError> {
        let mut c = GroupCounters::default();
        let mut index: HashMap<(Cow<'a, str>, i64), i32> = HashMap::new();
        let mut shards: HashMap<&'a str, u32> = HashMap::new();
        let mut rng = rand::thread_rng();
        for (send, job) in (1..).zip(jobs) {
            for b in &job.buckets {
                let window: i64 = b.window(job.now).0.into();
                let (row, base) = if b.sharded {
                    let shard = *shards
                        .entry(&b.key)
                        .or_insert_with(|| rng.gen_range(0..super::COUNTER_SHARDS));
                    (
                        Cow::Owned(format!("{}#{shard}", b.key)),
                        Some(b.key.as_str()),
                    )
                } else {
                    (Cow::Borrowed(b.key.as_str()), None)
                };
                let next = i32::try_from(c.rows.len() + 1)
                    .map_err(|_| StoreError::Corrupt("too many counters in a group".into()))?;
                let at = *index.entry((row.clone(), window)).or_insert_with(|| {
                    c.rows.push(row);
                    c.windows.push(window);
                    c.bases.push(base);
                    next
                });
                c.entry_send.push(send);
                c.entry_row.push(at);
                c.entry_limit.push(i64::from(b.limit));
            }
        }
        Ok(c)
    }
}

/// What writes the groups of sends of a store on `pool`; `split` counts the groups that
/// failed as a whole.
pub(super) fn enqueue_writer(
    pool: PgPool,
    bound: Option<Duration>,
    split: Arc<AtomicU64>,
) -> Writer<EnqueueJob, EnqueueOutcome> {
    Box::new(move |jobs| Box::pin(enqueue_group(pool.clone(), bound, split.clone(), jobs)))
}

/// Writes a group of sends in one statement; each send's outcome, in order. Should the
/// group fail as a whole for a reason of one send or of another writer ([`REWRITE_ALONE`]),
/// each send is written again alone, so that only a send at fault fails.
async fn enqueue_group(
    pool: PgPool,
    bound: Option<Duration>,
    split: Arc<AtomicU64>,
    jobs: Vec<EnqueueJob>,
) -> Vec<Result<EnqueueOutcome, StoreError>> {
    let refused = match write_group(&pool, bound, &jobs).await {
        Ok(refused) => refused,
        Err(StoreError::Database(sqlx::Error::Database(e)))
            if REWRITE_ALONE.contains(&e.code().as_deref().unwrap_or_default()) =>
        {
            split.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, sends = jobs.len(), "a group of sends failed; writing each alone");
            let mut each = Vec::with_capacity(jobs.len());
            for job in &jobs {
                each.push(enqueue(&pool, bound, &job.msg, &job.buckets, job.now).await);
            }
            return each;
        }
        Err(e) => return all_failed(jobs.len(), &e),
    };
    let mut refused: HashMap<i32, String> = refused.into_iter().collect();
    (1..)
        .zip(jobs)
        .map(|(place, job)| match refused.remove(&place) {
            None => Ok(EnqueueOutcome::Created(written(job.msg, job.now))),
            Some(over) if over.is_empty() => Ok(EnqueueOutcome::DuplicateKey),
            Some(over) => over_limit(&over, &job.buckets, job.now).map(EnqueueOutcome::OverLimit),
        })
        .collect()
}

/// The statement of [`enqueue_group`]: the sends it refused, by 1-based place, with the
/// buckets over their limit (`""`: the idempotency key was taken).
async fn write_group(
    pool: &PgPool,
    bound: Option<Duration>,
    jobs: &[EnqueueJob],
) -> Result<Vec<(i32, String)>, StoreError> {
    let c = GroupCounters::new(jobs)?;
    let shards = i32::try_from(super::COUNTER_SHARDS).unwrap_or(i32::MAX);
    let column = |f: fn(&EnqueueJob) -> Option<&str>| jobs.iter().map(f).collect::<Vec<_>>();
    let now: Vec<i64> = jobs.iter().map(|j| j.now.into()).collect();
    super::deadline::bounded!(pool, bound, conn => {
        sqlx::query_as::<_, (i32, String)>(ENQUEUE_GROUP)
            .bind(&c.rows)
            .bind(&c.windows)
            .bind(&c.bases)
            .bind(shards)
            .bind(&c.entry_send)
            .bind(&c.entry_row)
            .bind(&c.entry_limit)
            .bind(column(|j| Some(&j.msg.id)))
            .bind(column(|j| Some(&j.msg.project_id)))
            .bind(column(|j| Some(j.msg.channel.as_str())))
            .bind(column(|j| Some(&j.msg.destination)))
            .bind(column(|j| Some(&j.msg.payload)))
            .bind(column(|j| j.msg.idempotency_key.as_deref()))
            .bind(column(|j| j.msg.request_hash.as_deref()))
            .bind(column(|j| j.msg.destination_hash.as_deref()))
            .bind(column(|j| Some(j.msg.status().as_str())))
            .bind(&now)
            .fetch_all(&mut *conn)
            .await?
    })
}

/// The row `futureauth_enqueue_batch` wrote for `msg` at `now` (the columns
/// `INSERT_MESSAGE` writes too), without reading it back.
fn written(msg: NewMessage, now: UnixMillis) -> Message {
    Message {
        status: msg.status(),
        id: msg.id,
        project_id: msg.project_id,
        channel: msg.channel,
        destination: msg.destination,
        payload: Some(msg.payload),
        attempts: 0,
        next_attempt_at: now,
        locked_until: None,
        last_error: None,
        idempotency_key: msg.idempotency_key,
        request_hash: msg.request_hash,
        created_at: now,
        sent_at: None,
        provider_message_id: None,
        status_reason: None,
        status_at: None,
    }
}

/// One delivery outcome waiting for its group ([`complete_group`]): what
/// [`Store::complete`](super::Store::complete) was given, owned.
#[derive(Debug)]
pub(super) struct CompleteJob {
    pub id: String,
    pub attempt: i64,
    /// `sent`, `failed` or `retry`.
    pub outcome: &'static str,
    /// The masked destination kept once the message is finished (`sent`, `failed`).
    pub destination: Option<String>,
    /// When the provider accepted it (`sent`).
    pub sent_at: Option<i64>,
    pub provider_id: Option<String>,
    pub error: Option<String>,
    /// When to try again (`retry`).
    pub next_attempt_at: Option<i64>,
    pub now: UnixMillis,
}

impl CompleteJob {
    /// `outcome` of attempt `attempt` of message `id`, ended at `now`.
    pub fn new(id: &str, attempt: i64, outcome: &Outcome<'_>, now: UnixMillis) -> CompleteJob {
        let mut job = CompleteJob {
            id: id.to_owned(),
            attempt,
            outcome: outcome.name(),
            destination: None,
            sent_at: None,
            provider_id: None,
            error: outcome.error().map(str::to_owned),
            next_attempt_at: None,
            now,
        };
        match *outcome {
            Outcome::Sent {
                provider_id,
                masked_destination,
                at,
            } => {
                job.destination = Some(masked_destination.to_owned());
                job.sent_at = Some(at.into());
                job.provider_id = provider_id.map(str::to_owned);
            }
            Outcome::Failed {
                masked_destination, ..
            } => {
                job.destination = Some(masked_destination.to_owned());
            }
            Outcome::Retry {
                next_attempt_at, ..
            } => {
                job.next_attempt_at = Some(next_attempt_at.into());
            }
        }
        job
    }
}

/// The outcomes of a group in one statement, `futureauth_complete_batch` (migration
/// `0026_claim_by_key.sql`): each row updated by its key as
/// [`Store::complete`](super::Store::complete) updates it alone (fenced by its attempt), with
/// its timeline entry; returns the `(id, attempt)` of the rows it updated.
const COMPLETE_GROUP: &str = "SELECT done_id, done_attempt FROM futureauth_complete_batch(
     $1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// What writes the groups of delivery outcomes of a store on `pool`.
pub(super) fn complete_writer(pool: PgPool, bound: Option<Duration>) -> Writer<CompleteJob, bool> {
    Box::new(move |jobs| Box::pin(complete_group(pool.clone(), bound, jobs)))
}

/// Writes a group of outcomes in one statement; whether each applied, in order. Should the
/// statement fail, each outcome gets the error: the worker that recorded it writes it again
/// (`Worker::record`), as it does whenever the database does not take an outcome. No outcome
/// of one message can make another's fail: the statement only sets the values it is given.
async fn complete_group(
    pool: PgPool,
    bound: Option<Duration>,
    jobs: Vec<CompleteJob>,
) -> Vec<Result<bool, StoreError>> {
    match write_outcomes(&pool, bound, &jobs).await {
        Ok(done) => jobs
            .into_iter()
            .map(|j| Ok(done.contains(&(j.id, j.attempt))))
            .collect(),
        Err(e) => all_failed(jobs.len(), &e),
    }
}

/// The statement of [`complete_group`]: the `(id, attempt)` of every row it updated.
async fn write_outcomes(
    pool: &PgPool,
    bound: Option<Duration>,
    jobs: &[CompleteJob],
) -> Result<HashSet<(String, i64)>, StoreError> {
    let column = |f: fn(&CompleteJob) -> Option<&str>| jobs.iter().map(f).collect::<Vec<_>>();
    let number = |f: fn(&CompleteJob) -> Option<i64>| jobs.iter().map(f).collect::<Vec<_>>();
    let done = super::deadline::bounded!(pool, bound, conn => {
        sqlx::query_as::<_, (String, i64)>(COMPLETE_GROUP)
            .bind(column(|j| Some(&j.id)))
            .bind(number(|j| Some(j.attempt)))
            .bind(column(|j| Some(j.outcome)))
            .bind(column(|j| j.destination.as_deref()))
            .bind(number(|j| j.sent_at))
            .bind(column(|j| j.provider_id.as_deref()))
            .bind(column(|j| j.error.as_deref()))
            .bind(number(|j| j.next_attempt_at))
            .bind(number(|j| Some(j.now.into())))
            .fetch_all(&mut *conn)
            .await?
    })?;
    Ok(done.into_iter().collect())
}
