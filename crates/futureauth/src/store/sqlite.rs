//! SQLite storage. Timestamps are INTEGER milliseconds (so they compare as numbers),
//! metadata is JSON text.

use chrono::{DateTime, Utc};

use super::{CodeState, Kind, NewSession, NewVerification, ReservedGuess, Store};
use crate::error::Result;
use crate::identifier::Identifier;
use crate::model::{CleanupReport, Session, User};

/// The SQLite schema, for [`sqlite_migration_sql`](crate::sqlite_migration_sql).
pub(crate) const SCHEMA: &str = include_str!("sql/sqlite.sql");

/// [`Store`] on a SQLite pool.
pub(crate) struct SqliteStore {
    pool: sqlx::SqlitePool,
}

impl SqliteStore {
    pub(crate) fn new(pool: sqlx::SqlitePool) -> Self {
        Self { pool }
    }
}

fn to_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

sql_store! {
    store = SqliteStore,
    row = sqlx::sqlite::SqliteRow,
    ts = i64,
    to_db = to_millis,
    from_db = from_millis,
    schema = SCHEMA,
    extra = {
        async fn merge_user_metadata(
            &self,
            id: &str,
            patch: &serde_json::Map<String, serde_json::Value>,
            now: DateTime<Utc>,
        ) -> Result<Option<User>> {
            // SQLite's json_patch merges nested objects too; Postgres' `||` (and our contract)
            // replaces top-level keys. Merge in Rust and write with compare-and-swap on the
            // stored text, so a concurrent merge is never lost.
            for _ in 0..16 {
                let raw: Option<String> = sqlx::query_scalar("SELECT metadata FROM \"user\" WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                let Some(raw) = raw else {
                    return Ok(None);
                };
                let mut merged = match serde_json::from_str(&raw) {
                    Ok(serde_json::Value::Object(map)) => map,
                    _ => serde_json::Map::new(),
                };
                merged.extend(patch.iter().map(|(k, v)| (k.clone(), v.clone())));
                let sql = format!(
                    "UPDATE \"user\" SET metadata = $2, updated_at = $3 WHERE id = $1 AND metadata = $4 RETURNING {USER_RETURNING}"
                );
                let row = sqlx::query(&sql)
                    .bind(id)
                    .bind(sqlx::types::Json(&merged))
                    .bind(to_millis(now))
                    .bind(&raw)
                    .fetch_optional(&self.pool)
                    .await?;
                if let Some(row) = row {
                    return user_from_row(&row).map(Some);
                }
            }
            Err(sqlx::Error::Protocol("metadata kept changing during merge".into()).into())
        }
    }
}
