//! Storage: one seam ([`Store`]) with a Postgres and a SQLite implementation.
//!
//! The sign-in flows speak only to [`Store`]; each backend turns its calls into SQL. Every
//! operation that must be race-free is a single atomic statement (an `UPDATE ... RETURNING`
//! that reserves a guess, a `DELETE ... RETURNING` that consumes a code, an upsert that
//! creates a user), so the guarantees hold across app instances and need no locks in Rust.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::{FutureAuthError, Result};
use crate::identifier::Identifier;
use crate::model::{CleanupReport, Session, User};

#[macro_use]
mod sql_store;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "postgres")]
pub(crate) use postgres::PgStore;
#[cfg(feature = "sqlite")]
pub(crate) use sqlite::SqliteStore;

#[cfg(not(any(feature = "postgres", feature = "sqlite")))]
compile_error!("futureauth needs a database: enable the `postgres` or `sqlite` feature");

/// The database FutureAuth keeps its tables in: a sqlx pool of your app.
///
/// You rarely name this type: [`FutureAuth::new`](crate::FutureAuth::new) takes a `PgPool`
/// or a `SqlitePool` directly.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Database {
    /// Postgres.
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
    /// SQLite.
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
}

#[cfg(feature = "postgres")]
impl From<sqlx::PgPool> for Database {
    fn from(pool: sqlx::PgPool) -> Self {
        Self::Postgres(pool)
    }
}

#[cfg(feature = "sqlite")]
impl From<sqlx::SqlitePool> for Database {
    fn from(pool: sqlx::SqlitePool) -> Self {
        Self::Sqlite(pool)
    }
}

#[cfg(feature = "postgres")]
pub(crate) fn postgres_schema() -> &'static str {
    postgres::SCHEMA
}

#[cfg(feature = "sqlite")]
pub(crate) fn sqlite_schema() -> &'static str {
    sqlite::SCHEMA
}

/// Above this, a pool's acquire timeout makes every request hang while the database is down.
const SLOW_ACQUIRE: std::time::Duration = std::time::Duration::from_secs(10);

impl Database {
    /// How long the pool lets a query wait for a connection.
    fn acquire_timeout(&self) -> std::time::Duration {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(pool) => pool.options().get_acquire_timeout(),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(pool) => pool.options().get_acquire_timeout(),
        }
    }

    pub(crate) fn into_store(self) -> std::sync::Arc<dyn Store> {
        let acquire = self.acquire_timeout();
        if acquire > SLOW_ACQUIRE {
            tracing::warn!(
                acquire_timeout_secs = acquire.as_secs(),
                "futureauth: the database pool waits {} s for a connection, so while the database \
                 is down every sign-in and AuthSession hangs that long before answering 503; build \
                 it with PgPoolOptions::new().acquire_timeout(Duration::from_secs(2))",
                acquire.as_secs()
            );
        }
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(pool) => std::sync::Arc::new(PgStore::new(pool)),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(pool) => std::sync::Arc::new(SqliteStore::new(pool)),
        }
    }
}

/// `s`, if the database can store and compare it: no NUL (Postgres refuses it in text and
/// would answer with an error, a 5xx). Every caller-supplied string bound to SQL goes
/// through here.
pub(crate) fn sql_text(s: &str) -> Result<&str> {
    if s.contains('\0') {
        return Err(FutureAuthError::InvalidInput(
            "text may not contain NUL characters".to_string(),
        ));
    }
    Ok(s)
}

/// `v`, if no string or key in it holds NUL (Postgres' JSONB refuses `\u0000`).
pub(crate) fn sql_json(v: &serde_json::Value) -> Result<&serde_json::Value> {
    fn clean(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::String(s) => !s.contains('\0'),
            serde_json::Value::Array(items) => items.iter().all(clean),
            serde_json::Value::Object(map) => {
                map.iter().all(|(k, v)| !k.contains('\0') && clean(v))
            }
            _ => true,
        }
    }
    if clean(v) {
        Ok(v)
    } else {
        Err(FutureAuthError::InvalidInput(
            "metadata may not contain NUL characters".to_string(),
        ))
    }
}

/// The kind of a row in the `verification` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Otp,
    MagicLink,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Otp => "otp",
            Self::MagicLink => "magic_link",
        }
    }
}

/// A code or link about to be stored. Replaces the live one of the same identifier, kind
/// and binding.
#[derive(Debug)]
pub(crate) struct NewVerification<'a> {
    pub id: String,
    pub identifier: &'a str,
    pub kind: Kind,
    /// Hash of the secret of the client the row belongs to; `None` for the one unbound row.
    pub binding_hash: Option<&'a str>,
    pub code_hash: &'a str,
    pub expires_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

/// A guess reserved against a live code: the attempt is already counted.
#[derive(Debug)]
pub(crate) struct ReservedGuess {
    pub id: String,
    pub code_hash: String,
    pub attempts: i32,
}

/// State of the live one-time code of an identifier, to explain a failed verify.
#[derive(Debug)]
pub(crate) struct CodeState {
    pub expires_at: DateTime<Utc>,
    pub attempts: i32,
}

/// A session about to be stored.
#[derive(Debug)]
pub(crate) struct NewSession<'a> {
    pub id: String,
    pub user_id: &'a str,
    pub token_hash: &'a str,
    pub expires_at: DateTime<Utc>,
    pub ip_address: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub now: DateTime<Utc>,
}

/// The storage seam. Implemented by [`PgStore`] and [`SqliteStore`]; both run one
/// conformance suite (`tests/`).
#[async_trait]
pub(crate) trait Store: Send + Sync {
    /// Creates or upgrades the tables.
    async fn migrate(&self) -> Result<()>;

    /// Stores a code or link, replacing (and so invalidating) the live one of its
    /// identifier, kind and binding; rows of other bindings are untouched.
    async fn put_verification(&self, v: &NewVerification<'_>) -> Result<()>;
    /// Deletes a code or link if it is still the one with this hash.
    async fn delete_verification(
        &self,
        identifier: &str,
        kind: Kind,
        code_hash: &str,
    ) -> Result<()>;
    /// Atomically counts one guess against the live, unexpired code of `identifier` with
    /// this binding (`None`: the unbound code), if it has fewer than `max_attempts` guesses.
    async fn reserve_guess(
        &self,
        identifier: &str,
        binding_hash: Option<&str>,
        now: DateTime<Utc>,
        max_attempts: u32,
    ) -> Result<Option<ReservedGuess>>;
    /// The one-time code of `identifier` with this binding, if any.
    async fn code_state(
        &self,
        identifier: &str,
        binding_hash: Option<&str>,
    ) -> Result<Option<CodeState>>;
    /// Deletes a verification row; true for exactly one caller.
    async fn consume_verification(&self, id: &str) -> Result<bool>;
    /// Deletes the magic link with this hash and returns its identifier and expiry.
    async fn take_magic_link(&self, token_hash: &str) -> Result<Option<(String, DateTime<Utc>)>>;

    /// Finds or creates the user of a verified identifier and marks it verified.
    async fn upsert_verified_user(
        &self,
        identifier: &Identifier,
        new_id: &str,
        now: DateTime<Utc>,
    ) -> Result<User>;
    async fn user_by_id(&self, id: &str) -> Result<Option<User>>;
    async fn user_by_email(&self, email: &str) -> Result<Option<User>>;
    async fn user_by_phone(&self, phone: &str) -> Result<Option<User>>;
    async fn update_user_name(
        &self,
        id: &str,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<User>>;
    async fn set_user_metadata(
        &self,
        id: &str,
        metadata: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<Option<User>>;
    /// Shallow merge: top-level keys of `patch` replace those of the stored object.
    async fn merge_user_metadata(
        &self,
        id: &str,
        patch: &serde_json::Map<String, serde_json::Value>,
        now: DateTime<Utc>,
    ) -> Result<Option<User>>;

    async fn insert_session(&self, s: &NewSession<'_>) -> Result<()>;
    /// The hot path: one indexed query joining the session and its user.
    async fn find_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(User, Session, String)>>;
    /// Moves a session's expiry forward (never backward).
    async fn extend_session(&self, id: &str, expires_at: DateTime<Utc>) -> Result<()>;
    async fn delete_session_by_hash(&self, token_hash: &str) -> Result<bool>;
    async fn delete_user_session(&self, user_id: &str, session_id: &str) -> Result<bool>;
    async fn delete_user_sessions(&self, user_id: &str) -> Result<u64>;
    async fn list_sessions(&self, user_id: &str, now: DateTime<Utc>) -> Result<Vec<Session>>;

    /// Counts one event under `key` at `now` (Unix seconds) in a window of `window` seconds
    /// that starts with the first event after the previous window ended; returns the count
    /// and the window's end.
    async fn rate_limit_hit(&self, key: &str, now: i64, window: i64) -> Result<(i64, i64)>;
    /// Forgets the count under `key`.
    async fn rate_limit_reset(&self, key: &str) -> Result<()>;

    /// Deletes expired sessions, codes, dead codes and old rate-limit windows, at most
    /// `limit` rows of each.
    async fn cleanup(
        &self,
        now: DateTime<Utc>,
        max_attempts: u32,
        limit: u32,
    ) -> Result<CleanupReport>;
}
