//! SQLite backend: connection, migrations and the single-statement claim.

use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::SqlitePool;

use super::{Message, StoreOptions};

/// Embedded SQLite migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Opens a pool. SQLite allows one writer at a time, so the pool has a single connection:
/// every statement and transaction is serialised and "database is locked" cannot happen
/// within one process. Another process holding the file waits at most
/// `options.statement_timeout` (`busy_timeout`); a request waits at most
/// `options.acquire_timeout` for the connection.
pub async fn connect(url: &str, options: &StoreOptions) -> Result<SqlitePool, sqlx::Error> {
    let connect = SqliteConnectOptions::from_str(url)?
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(options.statement_timeout)
        .foreign_keys(true);
    SqlitePoolOptions::new()
        .max_connections(1)
        .acquire_timeout(options.acquire_timeout)
        .connect_with(connect)
        .await
}

/// Claims due rows in one atomic `UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING`.
pub async fn claim_due(
    pool: &SqlitePool,
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
             LIMIT $3)
         RETURNING *",
    )
    .bind(lease_until)
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await
}
