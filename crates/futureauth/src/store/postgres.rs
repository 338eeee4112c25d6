//! Postgres: the schema (timestamps `TIMESTAMPTZ`, metadata `JSONB`), which upgrades
//! futureauth 0.4/0.5 tables in place by itself, and the JSON merge.

use chrono::{DateTime, Utc};

use super::rows::{user_columns, UserRow};
use super::Ts;
use crate::error::Result;
use crate::model::User;

/// The Postgres schema, for [`migration_sql`](crate::migration_sql).
pub(crate) const SCHEMA: &str = include_str!("sql/postgres.sql");

/// Everything is in [`SCHEMA`], which Postgres can run conditionally.
pub(super) async fn migrate(pool: &sqlx::PgPool) -> Result<()> {
    sqlx::raw_sql(SCHEMA).execute(pool).await?;
    Ok(())
}

/// `metadata || patch`: Postgres replaces top-level keys, in one statement.
pub(super) async fn merge_metadata(
    conn: &mut sqlx::PgConnection,
    id: &str,
    patch: &serde_json::Map<String, serde_json::Value>,
    now: DateTime<Utc>,
) -> Result<Option<User>> {
    const SQL: &str = concat!(
        "UPDATE \"user\" SET metadata = metadata || $2, updated_at = $3 WHERE id = $1 RETURNING ",
        user_columns!()
    );
    let row: Option<UserRow> = sqlx::query_as(SQL)
        .bind(id)
        .bind(sqlx::types::Json(patch))
        .bind(Ts(now))
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(User::from))
}
