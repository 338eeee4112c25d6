//! Postgres backend: connection, migrations and the `FOR UPDATE SKIP LOCKED` claim.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use super::StoreOptions;

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

/// Claims due rows ([`super::claim_due_sql`]); concurrent workers skip each other's
/// locked rows.
pub const CLAIM_DUE: &str = super::claim_due_sql!("\n FOR UPDATE SKIP LOCKED");
