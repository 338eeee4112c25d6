//! The `passkey` and `passkey_challenge` tables: created only when passkeys are configured,
//! on Postgres and SQLite from one schema whose column types are values
//! ([`ColumnTypes`]), and read and written by statements shared by both backends.
//!
//! Narrow and policy-free: the flow decides, this stores. The one guard kept here is
//! atomicity: a challenge is taken (deleted and returned) by one statement, so it can be
//! used once; a passkey's counter moves only from the value the flow verified against.

use chrono::{DateTime, Utc};
use sqlx::{Connection, FromRow};

use crate::error::{FutureAuthError, Result};
use crate::store::{execute, fetch_optional, on_pool, sql_text, Database, Store, Ts};

/// What the two backends call the types the passkey tables use.
struct ColumnTypes {
    timestamp: &'static str,
    boolean: &'static str,
    bigint: &'static str,
}

/// The passkey tables, for either backend (advisory-locked on Postgres like its schema).
fn schema(t: &ColumnTypes) -> String {
    let ColumnTypes {
        timestamp,
        boolean,
        bigint,
    } = t;
    format!(
        "CREATE TABLE IF NOT EXISTS passkey (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES \"user\"(id) ON DELETE CASCADE,
            credential_id TEXT NOT NULL UNIQUE,
            passkey TEXT NOT NULL,
            counter {bigint} NOT NULL DEFAULT 0,
            backup_eligible {boolean} NOT NULL DEFAULT FALSE,
            backup_state {boolean} NOT NULL DEFAULT FALSE,
            transports TEXT,
            name TEXT NOT NULL,
            created_at {timestamp} NOT NULL,
            last_used_at {timestamp}
        );
        CREATE INDEX IF NOT EXISTS idx_passkey_user ON passkey(user_id);
        CREATE TABLE IF NOT EXISTS passkey_challenge (
            id TEXT PRIMARY KEY,
            challenge_hash TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            user_id TEXT,
            state TEXT NOT NULL,
            binding_hash TEXT NOT NULL,
            expires_at {timestamp} NOT NULL
        );
        CREATE INDEX IF NOT EXISTS idx_passkey_challenge_expires_at
            ON passkey_challenge(expires_at);"
    )
}

/// Creates the passkey tables if they are missing (idempotent).
pub(crate) async fn migrate(store: &Store) -> Result<()> {
    // One transaction; on Postgres under the main schema's advisory lock, so that
    // instances starting together create the tables once.
    let script = match &store.db {
        #[cfg(feature = "postgres")]
        Database::Postgres(_) => format!(
            "SELECT pg_advisory_xact_lock(4012460581);\n{}",
            schema(&ColumnTypes {
                timestamp: "TIMESTAMPTZ",
                boolean: "BOOLEAN",
                bigint: "BIGINT",
            })
        ),
        #[cfg(feature = "sqlite")]
        Database::Sqlite(_) => schema(&ColumnTypes {
            timestamp: "INTEGER",
            boolean: "INTEGER",
            bigint: "INTEGER",
        }),
    };
    // Statement by statement: the future of a script (`raw_sql`) on a connection is not
    // `Send`.
    let statements: Vec<&str> = script
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    on_pool!(store, conn => {
        let mut tx = conn.begin().await?;
        for statement in &statements {
            sqlx::query(statement).execute(&mut *tx).await?;
        }
        tx.commit().await?
    });
    Ok(())
}

/// What a challenge was issued for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ceremony {
    Register,
    Authenticate,
}

impl Ceremony {
    fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Authenticate => "authenticate",
        }
    }
}

/// A challenge about to be stored: only its hash, and the ceremony state without it.
pub(crate) struct NewChallenge<'a> {
    pub id: String,
    pub challenge_hash: String,
    pub ceremony: Ceremony,
    pub user_id: Option<&'a str>,
    pub state: String,
    pub binding_hash: String,
    pub expires_at: DateTime<Utc>,
}

/// A challenge taken from the table (it is gone from there).
#[derive(FromRow)]
pub(crate) struct TakenChallenge {
    pub user_id: Option<String>,
    pub state: String,
    pub expires_at: Ts,
}

/// A passkey as stored: read back, or about to be inserted.
#[derive(FromRow)]
pub(crate) struct PasskeyRow {
    pub id: String,
    pub user_id: String,
    pub credential_id: String,
    pub passkey: String,
    pub counter: i64,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub transports: Option<String>,
    pub name: String,
    pub created_at: Ts,
    pub last_used_at: Option<Ts>,
}

/// A verified use of a passkey, to record.
pub(crate) struct PasskeyUse<'a> {
    pub id: &'a str,
    /// The counter the signature was verified against.
    pub verified_counter: i64,
    pub counter: i64,
    pub passkey: String,
    pub backup_state: bool,
    pub now: DateTime<Utc>,
}

const PASSKEY_COLUMNS: &str = "id, user_id, credential_id, passkey, counter, backup_eligible, \
     backup_state, transports, name, created_at, last_used_at";

/// Whether a database error is a unique-constraint violation.
fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

impl Store {
    /// Stores a challenge and drops expired ones (their number is bounded by the options
    /// rate limit).
    pub(crate) async fn insert_passkey_challenge(
        &self,
        c: &NewChallenge<'_>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        const PRUNE: &str = "DELETE FROM passkey_challenge WHERE expires_at <= $1";
        const INSERT: &str = "INSERT INTO passkey_challenge \
             (id, challenge_hash, kind, user_id, state, binding_hash, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)";
        on_pool!(self, conn => {
            sqlx::query(PRUNE).bind(Ts(now)).execute(&mut *conn).await?;
            sqlx::query(INSERT)
                .bind(&c.id)
                .bind(&c.challenge_hash)
                .bind(c.ceremony.as_str())
                .bind(c.user_id)
                .bind(&c.state)
                .bind(&c.binding_hash)
                .bind(Ts(c.expires_at))
                .execute(&mut *conn)
                .await?;
        });
        Ok(())
    }

    /// Takes (deletes and returns) the challenge of this hash, ceremony and browser binding,
    /// expired or not, in one statement: two requests cannot both get it. A challenge of
    /// another browser is left alone.
    pub(crate) async fn take_passkey_challenge(
        &self,
        challenge_hash: &str,
        ceremony: Ceremony,
        binding_hash: &str,
    ) -> Result<Option<TakenChallenge>> {
        const SQL: &str = "DELETE FROM passkey_challenge \
             WHERE challenge_hash = $1 AND kind = $2 AND binding_hash = $3 \
             RETURNING user_id, state, expires_at";
        Ok(fetch_optional!(
            self,
            SQL,
            challenge_hash,
            ceremony.as_str(),
            binding_hash
        ))
    }

    /// Stores a new passkey and returns it as stored; [`FutureAuthError::PasskeyRejected`]
    /// if its credential is already registered (to anyone).
    pub(crate) async fn insert_passkey(&self, p: &PasskeyRow) -> Result<PasskeyRow> {
        let sql = format!(
            "INSERT INTO passkey ({PASSKEY_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {PASSKEY_COLUMNS}"
        );
        let inserted: std::result::Result<PasskeyRow, sqlx::Error> = on_pool!(self, conn => sqlx::query_as(&sql)
                .bind(&p.id)
                .bind(&p.user_id)
                .bind(&p.credential_id)
                .bind(&p.passkey)
                .bind(p.counter)
                .bind(p.backup_eligible)
                .bind(p.backup_state)
                .bind(p.transports.as_deref())
                .bind(&p.name)
                .bind(p.created_at)
                .bind(p.last_used_at)
                .fetch_one(&mut *conn)
                .await);
        match inserted {
            Ok(row) => Ok(row),
            Err(e) if is_unique_violation(&e) => {
                tracing::info!("futureauth: passkey refused: its credential is already registered");
                Err(FutureAuthError::PasskeyRejected)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The passkey with this credential id (base64url).
    pub(crate) async fn passkey_by_credential(
        &self,
        credential_id: &str,
    ) -> Result<Option<PasskeyRow>> {
        let sql = format!("SELECT {PASSKEY_COLUMNS} FROM passkey WHERE credential_id = $1");
        Ok(fetch_optional!(self, &sql, sql_text(credential_id)?))
    }

    /// Records a verified use: the new counter, state and time, only if the counter is
    /// still the one the signature was checked against (a concurrent use of a cloned
    /// authenticator loses). False if it was not.
    pub(crate) async fn record_passkey_use(&self, u: &PasskeyUse<'_>) -> Result<bool> {
        const SQL: &str = "UPDATE passkey SET counter = $3, passkey = $4, backup_state = $5, \
             last_used_at = $6 WHERE id = $1 AND counter = $2";
        let n = execute!(
            self,
            SQL,
            u.id,
            u.verified_counter,
            u.counter,
            &u.passkey,
            u.backup_state,
            Ts(u.now),
        );
        Ok(n == 1)
    }

    /// A user's passkeys, oldest first.
    pub(crate) async fn list_passkeys(&self, user_id: &str) -> Result<Vec<PasskeyRow>> {
        let sql = format!(
            "SELECT {PASSKEY_COLUMNS} FROM passkey WHERE user_id = $1 ORDER BY created_at, id"
        );
        Ok(on_pool!(self, conn => sqlx::query_as(&sql)
            .bind(sql_text(user_id)?)
            .fetch_all(&mut *conn)
            .await?))
    }

    /// Renames one of a user's passkeys; `None` if the user has no such passkey.
    pub(crate) async fn rename_passkey(
        &self,
        user_id: &str,
        id: &str,
        name: &str,
    ) -> Result<Option<PasskeyRow>> {
        let sql = format!(
            "UPDATE passkey SET name = $3 WHERE user_id = $1 AND id = $2 \
             RETURNING {PASSKEY_COLUMNS}"
        );
        Ok(fetch_optional!(
            self,
            &sql,
            sql_text(user_id)?,
            sql_text(id)?,
            sql_text(name)?
        ))
    }

    /// Deletes one of a user's passkeys; false if the user has no such passkey.
    pub(crate) async fn delete_passkey(&self, user_id: &str, id: &str) -> Result<bool> {
        const SQL: &str = "DELETE FROM passkey WHERE user_id = $1 AND id = $2";
        let n = execute!(self, SQL, sql_text(user_id)?, sql_text(id)?);
        Ok(n > 0)
    }
}
