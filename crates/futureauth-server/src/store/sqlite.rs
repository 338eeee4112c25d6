//! SQLite backend: connection, migrations and the single-statement claim.

use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::SqlitePool;

use super::StoreOptions;

/// Embedded SQLite migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Opens a pool. SQLite allows one writer at a time, so the pool has a single connection:
/// every statement and transaction is serialised and "database is locked" cannot happen
/// within one process. Another process holding the file waits at most
/// `options.statement_timeout` (`busy_timeout`); a request waits at most
/// `options.acquire_timeout` for the connection.
///
/// The database file and its `-wal` and `-shm` files are made readable by their owner only
/// (0600), whatever the umask: they hold webhook signing secrets, console keys and queued
/// messages with live codes.
pub async fn connect(url: &str, options: &StoreOptions) -> Result<SqlitePool, sqlx::Error> {
    let connect = SqliteConnectOptions::from_str(url)?
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(options.statement_timeout)
        .foreign_keys(true);
    let file = on_disk(url).then(|| connect.get_filename().to_path_buf());
    if let Some(path) = &file {
        // Created here with 0600 before SQLite creates it with 0644 & !umask; SQLite gives
        // the -wal and -shm files the database file's mode.
        if url.contains("mode=rwc") {
            create_private(path)?;
        }
    }
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .acquire_timeout(options.acquire_timeout)
        .connect_with(connect)
        .await?;
    if let Some(path) = &file {
        // Also for a database created before this rule, or by another tool.
        restrict_files(path)?;
    }
    Ok(pool)
}

/// Whether the URL names a file (not `sqlite::memory:` or `mode=memory`).
fn on_disk(url: &str) -> bool {
    !(url.contains(":memory:") || url.contains("mode=memory"))
}

/// Creates `path` with mode 0600 if it does not exist yet (an existing file is left as is).
#[cfg(unix)]
fn create_private(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn create_private(_path: &std::path::Path) -> std::io::Result<()> {
    Ok(())
}

/// Sets 0600 on the database file and on its `-wal` and `-shm` files where they exist.
#[cfg(unix)]
fn restrict_files(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::set_permissions(&name, std::fs::Permissions::from_mode(0o600)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict_files(_path: &std::path::Path) -> std::io::Result<()> {
    Ok(())
}

/// Claims up to `$3` due rows in one atomic statement (`$1` the lease's end, `$2` now):
/// SQLite has one writer, so no row locks. Postgres' claim is [`super::postgres::CLAIM_DUE`].
pub const CLAIM_DUE: &str = "UPDATE outbox SET locked_until = $1, attempts = attempts + 1
     WHERE id IN (
         SELECT id FROM outbox
         WHERE status = 'queued' AND next_attempt_at <= $2
           AND (locked_until IS NULL OR locked_until <= $2)
         ORDER BY next_attempt_at
         LIMIT $3)
     RETURNING *";
