//! Test harness: real Postgres (one fresh schema per test) and real SQLite (one temp file
//! per test), and a macro that runs one test body against both.
#![allow(dead_code)]

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futureauth::delivery::{Delivery, DeliveryError, DevOutbox, Message};
use futureauth::sqlx::{
    self,
    postgres::{PgConnectOptions, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions},
    PgPool, Row, SqlitePool,
};
use futureauth::{FutureAuth, FutureAuthConfig};
use rand::Rng;

/// Postgres the tests use: `DATABASE_URL`, or the local server. Unreachable is a failure.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{:016x}", rand::thread_rng().gen::<u64>())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// A database of one test.
#[derive(Clone)]
pub enum TestDb {
    Postgres {
        pool: PgPool,
        schema: String,
    },
    Sqlite {
        pool: SqlitePool,
        path: std::path::PathBuf,
    },
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Postgres => Self::postgres().await,
            Backend::Sqlite => Self::sqlite().await,
        }
    }

    pub async fn postgres() -> Self {
        let url = database_url();
        let schema = unique("fa_test");
        let admin = PgPool::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("Postgres at {url} is required for these tests: {e}"));
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let options: PgConnectOptions = url.parse().unwrap();
        let pool = PgPoolOptions::new()
            .max_connections(12)
            .connect_with(options.options([("search_path", schema.as_str())]))
            .await
            .unwrap();
        Self::Postgres { pool, schema }
    }

    pub async fn sqlite() -> Self {
        let path = std::env::temp_dir().join(format!("{}.db", unique("futureauth_test")));
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(std::time::Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .unwrap();
        Self::Sqlite { pool, path }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Postgres { .. } => Backend::Postgres,
            Self::Sqlite { .. } => Backend::Sqlite,
        }
    }

    /// A FutureAuth on this database with `config` and `delivery`, tables created.
    pub async fn auth_with(&self, config: FutureAuthConfig, delivery: impl Delivery) -> FutureAuth {
        let auth = match self {
            Self::Postgres { pool, .. } => FutureAuth::new(pool.clone(), config),
            Self::Sqlite { pool, .. } => FutureAuth::new(pool.clone(), config),
        }
        .with_delivery(delivery);
        auth.ensure_tables().await.unwrap();
        auth
    }

    /// A FutureAuth with a quiet dev outbox.
    pub async fn auth(&self, config: FutureAuthConfig) -> (FutureAuth, DevOutbox) {
        let outbox = DevOutbox::quiet();
        (self.auth_with(config, outbox.clone()).await, outbox)
    }

    /// Runs a query returning one text column per row.
    pub async fn strings(&self, sql: &str) -> Vec<String> {
        match self {
            Self::Postgres { pool, .. } => sqlx::query(sql)
                .fetch_all(pool)
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<String, _>(0))
                .collect(),
            Self::Sqlite { pool, .. } => sqlx::query(sql)
                .fetch_all(pool)
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<String, _>(0))
                .collect(),
        }
    }

    pub async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        match self {
            Self::Postgres { pool, .. } => sqlx::query_scalar(&sql).fetch_one(pool).await.unwrap(),
            Self::Sqlite { pool, .. } => sqlx::query_scalar(&sql).fetch_one(pool).await.unwrap(),
        }
    }

    pub async fn attempts(&self, identifier: &str) -> i64 {
        let sql = "SELECT attempts FROM verification WHERE identifier = $1 AND kind = 'otp'";
        match self {
            Self::Postgres { pool, .. } => i64::from(
                sqlx::query_scalar::<_, i32>(sql)
                    .bind(identifier)
                    .fetch_one(pool)
                    .await
                    .unwrap(),
            ),
            Self::Sqlite { pool, .. } => sqlx::query_scalar(sql)
                .bind(identifier)
                .fetch_one(pool)
                .await
                .unwrap(),
        }
    }

    /// Sets `expires_at` of rows of `table` matching `column = value`.
    pub async fn set_expiry(&self, table: &str, column: &str, value: &str, at: DateTime<Utc>) {
        let sql = format!("UPDATE {table} SET expires_at = $1 WHERE {column} = $2");
        let n = match self {
            Self::Postgres { pool, .. } => sqlx::query(&sql)
                .bind(at)
                .bind(value)
                .execute(pool)
                .await
                .unwrap(),
            Self::Sqlite { pool, .. } => {
                let r = sqlx::query(&sql)
                    .bind(at.timestamp_millis())
                    .bind(value)
                    .execute(pool)
                    .await
                    .unwrap();
                return assert_eq!(r.rows_affected(), 1, "{sql} matched no row");
            }
        };
        assert_eq!(n.rows_affected(), 1, "{sql} matched no row");
    }

    /// Sets the timestamp `column` of rows of `table` matching `key_column = key`.
    pub async fn set_time(
        &self,
        table: &str,
        column: &str,
        key_column: &str,
        key: &str,
        at: DateTime<Utc>,
    ) {
        let sql = format!("UPDATE {table} SET {column} = $1 WHERE {key_column} = $2");
        let n = match self {
            Self::Postgres { pool, .. } => sqlx::query(&sql)
                .bind(at)
                .bind(key)
                .execute(pool)
                .await
                .unwrap()
                .rows_affected(),
            Self::Sqlite { pool, .. } => sqlx::query(&sql)
                .bind(at.timestamp_millis())
                .bind(key)
                .execute(pool)
                .await
                .unwrap()
                .rows_affected(),
        };
        assert!(n >= 1, "{sql} matched no row");
    }

    /// Runs a statement without parameters.
    pub async fn exec(&self, sql: &str) {
        match self {
            Self::Postgres { pool, .. } => sqlx::query(sql).execute(pool).await.map(drop),
            Self::Sqlite { pool, .. } => sqlx::query(sql).execute(pool).await.map(drop),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// A builder of a FutureAuth on this database.
    pub fn builder(&self, config: FutureAuthConfig) -> futureauth::FutureAuthBuilder {
        match self {
            Self::Postgres { pool, .. } => FutureAuth::builder(pool.clone(), config),
            Self::Sqlite { pool, .. } => FutureAuth::builder(pool.clone(), config),
        }
    }

    /// A FutureAuth on this database, tables not touched.
    pub fn new_auth(&self, config: FutureAuthConfig) -> FutureAuth {
        match self {
            Self::Postgres { pool, .. } => FutureAuth::new(pool.clone(), config),
            Self::Sqlite { pool, .. } => FutureAuth::new(pool.clone(), config),
        }
    }

    pub async fn session_expiry(&self, id: &str) -> DateTime<Utc> {
        let sql = "SELECT expires_at FROM session WHERE id = $1";
        match self {
            Self::Postgres { pool, .. } => sqlx::query_scalar(sql)
                .bind(id)
                .fetch_one(pool)
                .await
                .unwrap(),
            Self::Sqlite { pool, .. } => {
                let ms: i64 = sqlx::query_scalar(sql)
                    .bind(id)
                    .fetch_one(pool)
                    .await
                    .unwrap();
                DateTime::from_timestamp_millis(ms).unwrap()
            }
        }
    }

    /// Drops the schema or deletes the file.
    pub async fn cleanup(self) {
        match self {
            Self::Postgres { pool, schema } => {
                sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                    .execute(&pool)
                    .await
                    .unwrap();
                pool.close().await;
            }
            Self::Sqlite { pool, path } => {
                pool.close().await;
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
        }
    }
}

/// The app's own address in [`config`].
pub const APP_URL: &str = "https://app.example";

/// Config for tests: a known secret key (so the code hash is keyed), the app at [`APP_URL`],
/// defaults otherwise.
pub fn config() -> FutureAuthConfig {
    FutureAuthConfig {
        secret_key: "vx_sec_test_key_0123456789abcdefghijklmnop".to_string(),
        project_name: "Test App".to_string(),
        app_url: APP_URL.to_string(),
        ..Default::default()
    }
}

/// The last code the outbox got for `to`.
pub fn code_for(outbox: &DevOutbox, to: &str) -> String {
    outbox
        .latest_for(to)
        .unwrap_or_else(|| panic!("no message to {to}"))
        .code
}

/// A delivery that records every message and then fails.
#[derive(Clone, Default)]
pub struct FailingDelivery {
    pub seen: Arc<std::sync::Mutex<Vec<Message>>>,
}

#[futureauth::async_trait]
impl Delivery for FailingDelivery {
    async fn deliver(&self, message: &Message) -> Result<(), DeliveryError> {
        self.seen.lock().unwrap().push(message.clone());
        Err(DeliveryError::Unreachable("test delivery is down".into()))
    }
}

/// `both_backends!(name, ...)` turns each `async fn name(db: TestDb)` into two tests,
/// `name::postgres` and `name::sqlite`. The database is cleaned up when the body returns.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use super::*;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let db = common::TestDb::new(common::Backend::Postgres).await;
                    super::$name(db.clone()).await;
                    db.cleanup().await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let db = common::TestDb::new(common::Backend::Sqlite).await;
                    super::$name(db.clone()).await;
                    db.cleanup().await;
                }
            }
        )*
    };
}
