//! Postgres storage. Timestamps are `TIMESTAMPTZ`, metadata `JSONB`; the schema upgrades
//! futureauth 0.4/0.5 tables in place.

use chrono::{DateTime, Utc};

use super::{CodeState, Kind, NewSession, NewVerification, ReservedGuess, Store};
use crate::error::Result;
use crate::identifier::Identifier;
use crate::model::{CleanupReport, Session, User};

/// The Postgres schema, for [`migration_sql`](crate::migration_sql).
pub(crate) const SCHEMA: &str = include_str!("sql/postgres.sql");

/// [`Store`] on a Postgres pool.
pub(crate) struct PgStore {
    pool: sqlx::PgPool,
}

impl PgStore {
    pub(crate) fn new(pool: sqlx::PgPool) -> Self {
        Self { pool }
    }
}

fn identity(t: DateTime<Utc>) -> DateTime<Utc> {
    t
}

/// Everything is in [`SCHEMA`], which Postgres can run conditionally.
async fn upgrade(_pool: &sqlx::PgPool) -> Result<()> {
    Ok(())
}

sql_store! {
    store = PgStore,
    row = sqlx::postgres::PgRow,
    ts = DateTime<Utc>,
    to_db = identity,
    from_db = identity,
    schema = SCHEMA,
    upgrade = upgrade,
    extra = {
        async fn merge_user_metadata(
            &self,
            id: &str,
            patch: &serde_json::Map<String, serde_json::Value>,
            now: DateTime<Utc>,
        ) -> Result<Option<User>> {
            let sql = format!(
                "UPDATE \"user\" SET metadata = metadata || $2, updated_at = $3 WHERE id = $1 RETURNING {USER_RETURNING}"
            );
            let row = sqlx::query(&sql)
                .bind(id)
                .bind(sqlx::types::Json(patch))
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
            row.as_ref().map(user_from_row).transpose()
        }
    }
}
