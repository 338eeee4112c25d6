//! Postgres backend: connection, migrations, the `FOR UPDATE SKIP LOCKED` claim and the
//! one-statement enqueue.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use super::sql::BindArgs;
use super::{EnqueueOutcome, LimitHit, Message, NewMessage, RateBucket, StoreOptions, UnixMillis};
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

/// Claims up to `$3` due rows (`$1` the lease's end, `$2` now); concurrent workers skip each other's
/// locked rows. `id = ANY(ARRAY(…))`, not `id IN (…)`: with `LIMIT $3` unknown, the
/// generic plan of `IN` joins the due ids by hash with a scan of the whole outbox, so each
/// claim cost as much as the outbox was long; an array of ids is looked up by key.
pub const CLAIM_DUE: &str = "UPDATE outbox SET locked_until = $1, attempts = attempts + 1
     WHERE id = ANY(ARRAY(
         SELECT id FROM outbox
         WHERE status = 'queued' AND next_attempt_at <= $2
           AND (locked_until IS NULL OR locked_until <= $2)
         ORDER BY next_attempt_at
         LIMIT $3
         FOR UPDATE SKIP LOCKED))
     RETURNING *";

/// Calls `futureauth_enqueue` (migration `0023_enqueue.sql`): the counters and the insert of
/// a send in one statement, one round trip, rolled back as a whole over a limit.
const ENQUEUE: &str = "SELECT * FROM futureauth_enqueue($1, $2, $3, $4, $5,
     $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";

/// The SQLSTATE `futureauth_enqueue` raises over a limit; its message lists the buckets.
const OVER_LIMIT: &str = "FA429";

/// [`Store::enqueue`](super::Store::enqueue) on Postgres, in one statement.
pub(super) async fn enqueue(
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
