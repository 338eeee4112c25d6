//! SQLite: the schema (timestamps INTEGER milliseconds, so they compare as numbers;
//! metadata JSON text), the one upgrade plain SQL cannot express, and the JSON merge.

use chrono::{DateTime, Utc};

use super::rows::{user_columns, UserRow};
use super::Ts;
use crate::error::Result;
use crate::model::User;

/// The SQLite schema, for [`sqlite_migration_sql`](crate::sqlite_migration_sql).
pub(crate) const SCHEMA: &str = include_str!("sql/sqlite.sql");

/// Runs [`SCHEMA`], then [`upgrade`], then adds the columns of this version to older tables.
pub(super) async fn migrate(pool: &sqlx::SqlitePool) -> Result<()> {
    sqlx::raw_sql(SCHEMA).execute(pool).await?;
    upgrade(pool).await?;
    // Magic links bound to the browser that asked.
    add_verification_column(pool, "requester_hash", "TEXT").await?;
    // The code sent with a magic link names its link.
    add_verification_column(pool, "link_hash", "TEXT").await?;
    // Approval of a link from another device.
    add_verification_column(pool, "requester_ip", "TEXT").await?;
    add_verification_column(pool, "requester_agent", "TEXT").await?;
    add_verification_column(pool, "match_number", "TEXT").await?;
    add_verification_column(pool, "approved_at", "INTEGER").await?;
    // 0.7: how a session was proved, and disabled users.
    add_column(pool, "session", "auth_method", "TEXT").await?;
    add_column(pool, "session", "authenticated_at", "INTEGER").await?;
    add_column(pool, "user", "disabled_at", "INTEGER").await?;
    add_column(pool, "user", "disabled_until", "INTEGER").await?;
    // After the columns, so that tables of every age get them.
    sqlx::raw_sql(INDEXES).execute(pool).await?;
    Ok(())
}

/// Indexes on columns [`migrate`] may have added.
const INDEXES: &str = "\
    CREATE INDEX IF NOT EXISTS idx_verification_link_hash ON verification(link_hash) \
        WHERE link_hash IS NOT NULL;\
    CREATE INDEX IF NOT EXISTS idx_verification_requester_hash ON verification(requester_hash) \
        WHERE requester_hash IS NOT NULL;";

/// Adds the nullable column `verification.<column>` of type `decl` to a table made before
/// it. SQLite has no `ADD COLUMN IF NOT EXISTS`: the check is repeated under the write lock,
/// so instances starting together add it once.
async fn add_verification_column(
    pool: &sqlx::SqlitePool,
    column: &'static str,
    decl: &'static str,
) -> Result<()> {
    add_column(pool, "verification", column, decl).await
}

/// Adds the nullable column `<table>.<column>` of type `decl` if the table lacks it (see
/// [`add_verification_column`]).
async fn add_column(
    pool: &sqlx::SqlitePool,
    table: &'static str,
    column: &'static str,
    decl: &'static str,
) -> Result<()> {
    let has = format!("SELECT COUNT(*) FROM pragma_table_info('{table}') WHERE name = '{column}'");
    let count: i64 = sqlx::query_scalar(&has).fetch_one(pool).await?;
    if count > 0 {
        return Ok(());
    }
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let count: i64 = sqlx::query_scalar(&has).fetch_one(tx.as_mut()).await?;
    if count == 0 {
        let add = format!("ALTER TABLE \"{table}\" ADD COLUMN {column} {decl}");
        sqlx::query(&add).execute(tx.as_mut()).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Rebuilds a `verification` table made before codes were bound to clients: its
/// `UNIQUE (identifier, kind)` constraint would allow one code per address, and SQLite cannot
/// drop a table constraint in place. The table is made anew by [`SCHEMA`] (all `IF NOT
/// EXISTS`, so only the dropped table and its indexes are created); codes and links are
/// kept. Runs once, under a write lock, so several instances starting together rebuild it
/// once.
async fn upgrade(pool: &sqlx::SqlitePool) -> Result<()> {
    const HAS_BINDING: &str =
        "SELECT COUNT(*) FROM pragma_table_info('verification') WHERE name = 'binding_hash'";
    const SET_ASIDE: [&str; 2] = [
        "CREATE TEMP TABLE verification_unbound AS SELECT * FROM verification",
        "DROP TABLE verification",
    ];
    const RESTORE: [&str; 2] = [
        "INSERT INTO verification (id, identifier, code_hash, expires_at, attempts, created_at, kind) \
         SELECT id, identifier, code_hash, expires_at, attempts, created_at, kind \
         FROM verification_unbound",
        "DROP TABLE verification_unbound",
    ];

    let count: i64 = sqlx::query_scalar(HAS_BINDING).fetch_one(pool).await?;
    if count > 0 {
        return Ok(());
    }
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    // Another instance may have rebuilt it while we waited for the write lock.
    let count: i64 = sqlx::query_scalar(HAS_BINDING)
        .fetch_one(tx.as_mut())
        .await?;
    if count == 0 {
        // One statement at a time: the future of `raw_sql` on a transaction is not `Send`.
        let schema = SCHEMA.split(';').filter(|s| !s.trim().is_empty());
        for statement in SET_ASIDE.into_iter().chain(schema).chain(RESTORE) {
            sqlx::query(statement).execute(tx.as_mut()).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// SQLite's `json_patch` merges nested objects too; Postgres' `||` (and our contract)
/// replaces top-level keys. Merged in Rust and written with compare-and-swap on the stored
/// text, so a concurrent merge is never lost.
pub(super) async fn merge_metadata(
    conn: &mut sqlx::SqliteConnection,
    id: &str,
    patch: &serde_json::Map<String, serde_json::Value>,
    now: DateTime<Utc>,
) -> Result<Option<User>> {
    const READ: &str = "SELECT metadata FROM \"user\" WHERE id = $1";
    const SWAP: &str = concat!(
        "UPDATE \"user\" SET metadata = $2, updated_at = $3 WHERE id = $1 AND metadata = $4 \
         RETURNING ",
        user_columns!()
    );
    for _ in 0..16 {
        let raw: Option<String> = sqlx::query_scalar(READ)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
        let Some(raw) = raw else {
            return Ok(None);
        };
        let mut merged = match serde_json::from_str(&raw) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        merged.extend(patch.iter().map(|(k, v)| (k.clone(), v.clone())));
        let row: Option<UserRow> = sqlx::query_as(SWAP)
            .bind(id)
            .bind(sqlx::types::Json(&merged))
            .bind(Ts(now))
            .bind(&raw)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(row) = row {
            return Ok(Some(row.into()));
        }
    }
    Err(sqlx::Error::Protocol("metadata kept changing during merge".into()).into())
}
