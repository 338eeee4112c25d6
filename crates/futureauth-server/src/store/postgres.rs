//! Postgres backend: connection, migrations and the `FOR UPDATE SKIP LOCKED` claim.

use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use super::Message;

/// Embedded Postgres migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Opens a pool.
pub async fn connect(url: &str) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new().max_connections(10).connect(url).await
}

/// Claims due rows; concurrent workers skip each other's locked rows.
pub async fn claim_due(
    pool: &PgPool,
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
    .fetch_all(pool)
    .await
}
