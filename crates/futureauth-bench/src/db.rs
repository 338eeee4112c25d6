//! The bench's own Postgres database, created at start and dropped at the end, with one
//! schema per variant so that their tables (0.5.1's and ours share names) never meet.

use anyhow::{Context, Result};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};

/// A database of this run.
pub struct BenchDb {
    admin: PgPool,
    name: String,
    url: url::Url,
}

impl BenchDb {
    /// Creates `futureauth_bench_<pid>` on the server of `admin_url`.
    pub async fn create(admin_url: &str) -> Result<Self> {
        let admin = PgPool::connect(admin_url)
            .await
            .with_context(|| format!("connecting to Postgres at {admin_url} (set DATABASE_URL)"))?;
        let name = format!("futureauth_bench_{}", std::process::id());
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
            .execute(&admin)
            .await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await?;
        let mut url = url::Url::parse(admin_url).context("DATABASE_URL is not a URL")?;
        url.set_path(&format!("/{name}"));
        Ok(Self { admin, name, url })
    }

    /// A pool of `max` connections whose tables live in `schema` (created here).
    pub async fn pool(&self, schema: &str, max: u32) -> Result<PgPool> {
        let options: PgConnectOptions = self.url.as_str().parse()?;
        let options = options.disable_statement_logging();
        let setup = PgPool::connect_with(options.clone()).await?;
        sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .execute(&setup)
            .await?;
        setup.close().await;
        Ok(PgPoolOptions::new()
            .max_connections(max)
            .connect_with(options.options([("search_path", schema)]))
            .await?)
    }

    /// Creates `schema` and returns its URL, for a process of its own
    /// (`options=-c search_path=...`).
    pub async fn schema_url_created(&self, schema: &str) -> Result<String> {
        self.pool(schema, 1).await?.close().await;
        let mut url = self.url.clone();
        url.query_pairs_mut()
            .append_pair("options", &format!("-c search_path={schema}"));
        Ok(url.to_string())
    }

    /// Drops the database (closing whatever is still connected to it).
    pub async fn drop_all(self) -> Result<()> {
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&self.admin)
        .await?;
        self.admin.close().await;
        Ok(())
    }
}
