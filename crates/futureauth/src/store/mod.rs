//! Storage: one seam ([`Store`]) over a Postgres or a SQLite pool.
//!
//! The sign-in flows speak only to [`Store`]. Its statements are written once and run on
//! either backend ([`on_pool!`]): timestamps are [`Ts`], which encodes for both, and rows
//! decode with `FromRow`. What really differs (the schema and its upgrades, the JSON merge)
//! lives in `postgres.rs` and `sqlite.rs`. Every operation that must be race-free is a single
//! atomic statement (a guess that either consumes a code and opens the session or counts
//! an attempt, in `redeem.rs`; an upsert that creates a user; a counter upsert), so the
//! guarantees hold across app instances and need no locks in Rust.

use chrono::{DateTime, Utc};

use crate::error::{FutureAuthError, Result};
use crate::model::AuthMethod;

mod accounts;
mod approval;
mod codes;
pub(crate) mod deadline;
mod limits;
#[cfg(feature = "postgres")]
mod postgres;
mod redeem;
mod rows;
mod sessions;
#[cfg(feature = "sqlite")]
mod sqlite;
mod ts;
mod users;

pub(crate) use accounts::{change_binding as accounts_change_binding, Changed, Proof, UserFilter};
pub(crate) use approval::Approval;
pub(crate) use redeem::{Counter, Redemption};
pub(crate) use ts::Ts;
pub(crate) use users::UserField;

#[cfg(not(any(feature = "postgres", feature = "sqlite")))]
compile_error!("futureauth needs a database: enable the `postgres` or `sqlite` feature");

/// Runs `$body` with `$conn` bound to `&mut` a connection of the store `$store`, whichever
/// backend it is, under the store's deadline ([`deadline`]): the one place every query of
/// the SDK goes through. The body is compiled once per backend, so one statement serves
/// both; pass the connection on as `&mut *conn`. Evaluates to the body's value; a failure or
/// an expired deadline returns early with `?`.
macro_rules! on_pool {
    ($store:expr, $conn:ident => $body:expr) => {
        $crate::store::on_pool!($store, $conn => postgres: $body, sqlite: $body)
    };
    ($store:expr, $conn:ident => postgres: $pg:expr, sqlite: $sqlite:expr) => {{
        let store: &$crate::store::Store = $store;
        match &store.db {
            #[cfg(feature = "postgres")]
            $crate::store::Database::Postgres(pool) => {
                $crate::store::deadline::bounded!(pool, store.bound, $conn => $pg)?
            }
            #[cfg(feature = "sqlite")]
            $crate::store::Database::Sqlite(pool) => {
                $crate::store::deadline::bounded!(pool, store.bound, $conn => $sqlite)?
            }
        }
    }};
}
pub(crate) use on_pool;

/// Runs the one statement `$sql`, the `$arg`s bound in order, through [`on_pool!`], and
/// evaluates to the number of rows it changed: the shape of most writes of the store.
macro_rules! execute {
    ($store:expr, $sql:expr $(, $arg:expr)* $(,)?) => {
        $crate::store::on_pool!($store, conn => sqlx::query($sql)
            $(.bind($arg))*
            .execute(&mut *conn)
            .await?
            .rows_affected())
    };
}
pub(crate) use execute;

/// Fetches the row, if any, that the one statement `$sql` (the `$arg`s bound in order)
/// selects or returns, through [`on_pool!`], as the `FromRow` type the caller names.
macro_rules! fetch_optional {
    ($store:expr, $sql:expr $(, $arg:expr)* $(,)?) => {
        $crate::store::on_pool!($store, conn => sqlx::query_as($sql)
            $(.bind($arg))*
            .fetch_optional(&mut *conn)
            .await?)
    };
}
pub(crate) use fetch_optional;

/// The database FutureAuth keeps its tables in: a sqlx pool of your app.
///
/// You rarely name this type: [`FutureAuth::new`](crate::FutureAuth::new) takes a `PgPool`
/// or a `SqlitePool` directly.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Database {
    /// Postgres.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    Postgres(sqlx::PgPool),
    /// SQLite.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
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

    /// The store over this pool, whose every call is bounded by `bound`
    /// ([`FutureAuthConfig::db_call_timeout`](crate::FutureAuthConfig::db_call_timeout)).
    pub(crate) fn into_store(self, bound: Option<std::time::Duration>) -> Store {
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
        Store {
            db: self,
            bound,
            #[cfg(feature = "passkeys")]
            passkeys: false,
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
    /// A code to a signed-in user's new address; the row's binding names the user.
    ChangeAddress,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Otp => "otp",
            Self::MagicLink => "magic_link",
            Self::ChangeAddress => "change_address",
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
    /// For the code sent in a magic-link email: the link's token hash.
    pub link_hash: Option<&'a str>,
    /// Magic links: the browser that asked, if it keeps cookies.
    pub requester: Option<Requester<'a>>,
}

/// The browser that asked for a magic link: the hash of its binding cookie, what the
/// person who opens the link elsewhere is shown about it, and the number it shows them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Requester<'a> {
    pub hash: &'a str,
    pub ip: Option<&'a str>,
    pub agent: Option<&'a str>,
    pub match_number: &'a str,
}

/// What [`Store::take_magic_link`] found.
#[derive(Debug)]
pub(crate) enum TakenLink {
    /// Used now: its identifier and expiry.
    Taken(String, DateTime<Utc>),
    /// Unknown or already used.
    Unknown,
    /// Live, but asked for by another browser (only when same-browser is required); untouched.
    OtherBrowser,
}

/// State of the live one-time code of an identifier, to explain a failed verify.
#[derive(Debug)]
pub(crate) struct CodeState {
    pub expires_at: DateTime<Utc>,
    pub attempts: i32,
}

/// A session about to be stored, before its user is known (a code sign-in finds or
/// creates the user in the same statement that stores the session).
#[derive(Debug)]
pub(crate) struct NewSession {
    pub id: String,
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub now: DateTime<Utc>,
    /// How the user proved who they are; `now` is when.
    pub method: AuthMethod,
}

/// The storage seam: every read and write of the sign-in flows, on the app's pool. Methods
/// are grouped by table in `codes.rs`, `users.rs`, `sessions.rs` and `limits.rs`.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    // Crate-visible because `on_pool!` reads them wherever it expands (the passkey store
    // in `passkey/store.rs` too); nothing else touches them.
    pub(crate) db: Database,
    /// The deadline of every call ([`deadline`]).
    pub(crate) bound: Option<std::time::Duration>,
    /// The `passkey` table is in use (passkeys are configured): deleting a user deletes
    /// their passkeys in the same transaction (SQLite does not cascade by itself).
    #[cfg(feature = "passkeys")]
    pub(crate) passkeys: bool,
}

impl Store {
    /// Creates or upgrades the tables.
    pub(crate) async fn migrate(&self) -> Result<()> {
        // On the pool, not through the deadline: a schema upgrade may rightly take longer
        // than one call's bound, and the future of `raw_sql` on a connection is not `Send`
        // (`ensure_tables` must be spawnable). It runs at start-up, before any request.
        match &self.db {
            #[cfg(feature = "postgres")]
            Database::Postgres(pool) => postgres::migrate(pool).await,
            #[cfg(feature = "sqlite")]
            Database::Sqlite(pool) => sqlite::migrate(pool).await,
        }
    }
}
