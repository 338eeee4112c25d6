//! Postgres backend: connection, migrations and the `FOR UPDATE SKIP LOCKED` claim.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use super::{Message, StoreOptions};

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

/// Claims due rows; concurrent workers skip each other's locked rows.
pub async fn claim_due(
    conn: &mut sqlx::PgConnection,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> Result<Vec<Message>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE outbox SET locked_until = $1, attempts = attempts + 1
         WHERE id IN (
             SELECT id FROM outbox
             WHERE status = 'queued' AND next_attempt_at <= $2
               AND (locked_until IS NULL OR locked_until <= $2)
             ORDER BY next_attempt_at
             LIMIT $3
             FOR UPDATE SKIP LOCKED)
         RETURNING *",
    )
    .bind(lease_until)
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await
}
