//! Shared test harness: real databases (a fresh SQLite file or a fresh Postgres schema per
//! test), wiremock fakes of Resend and Twilio, and a server started on 127.0.0.1:0.
#![allow(dead_code)]

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use futureauth_server::cli::{run_admin, Cli};
use futureauth_server::config::{
    Config, DatabaseSettings, ProviderSettings, ResendConfig, TwilioConfig,
};
use futureauth_server::store::Store;
use futureauth_server::RunningServer;
use serde_json::{json, Value};
use sqlx::Connection;
use tokio::net::TcpListener;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates `mod sqlite { … }` and `mod postgres { … }` with one `#[tokio::test]` per
/// listed async fn taking a [`Backend`]: one suite, two backends.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Postgres).await
                }
            )*
        }
    };
}

pub const TWILIO_SID: &str = "AC_test_sid";
pub const TWILIO_TOKEN: &str = "twilio_test_token";
pub const TWILIO_FROM: &str = "+15550001111";
pub const RESEND_KEY: &str = "re_test_key";

/// `prefix_<epoch secs>_<random>`: unique, and old enough ones can be recognised and dropped.
pub fn unique(prefix: &str) -> String {
    use rand::Rng;
    let n: u64 = rand::thread_rng().gen();
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{prefix}_{secs}_{n:016x}")
}

/// Removes SQLite files of test runs over an hour old from the temp dir.
fn remove_stale_sqlite_files() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("fa_server_test_") || name.starts_with("fa_bin_")) {
            continue;
        }
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > std::time::Duration::from_secs(3600));
        if old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Drops test schemas / databases (named by [`unique`]) left by runs over an hour old.
pub async fn drop_stale(conn: &mut sqlx::PgConnection) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let stale = |name: &str| {
        name.split('_')
            .nth(2)
            .and_then(|s| s.parse::<u64>().ok())
            .is_some_and(|t| t + 3600 < now)
    };
    let schemas: Vec<(String,)> =
        sqlx::query_as("SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'fa\\_srv\\_%'")
            .fetch_all(&mut *conn)
            .await
            .unwrap_or_default();
    for (s,) in schemas.into_iter().filter(|(s,)| stale(s)) {
        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{s}\" CASCADE"))
            .execute(&mut *conn)
            .await;
    }
    let dbs: Vec<(String,)> =
        sqlx::query_as("SELECT datname::text FROM pg_database WHERE datname LIKE 'fa\\_sdk\\_%'")
            .fetch_all(&mut *conn)
            .await
            .unwrap_or_default();
    for (d,) in dbs.into_iter().filter(|(d,)| stale(d)) {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{d}\" WITH (FORCE)"))
            .execute(&mut *conn)
            .await;
    }
}

/// Base URL of the Postgres test server.
pub fn pg_base_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh, empty database for one test; `url` reconnects to the same one.
#[derive(Debug, Clone)]
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
}

impl TestDb {
    /// Creates the SQLite file / Postgres schema. Panics (fails the test) if Postgres is unreachable.
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                remove_stale_sqlite_files();
                let path = std::env::temp_dir().join(format!("{}.db", unique("fa_server_test")));
                TestDb {
                    backend,
                    url: format!("sqlite://{}?mode=rwc", path.display()),
                }
            }
            Backend::Postgres => {
                let base = pg_base_url();
                let schema = unique("fa_srv");
                let mut conn = sqlx::PgConnection::connect(&base).await.unwrap_or_else(|e| {
                    panic!("Postgres is required for these tests and is unreachable at {base}: {e}")
                });
                drop_stale(&mut conn).await;
                sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
                    .execute(&mut conn)
                    .await
                    .expect("create schema");
                let sep = if base.contains('?') { '&' } else { '?' };
                TestDb {
                    backend,
                    url: format!("{base}{sep}options=-c%20search_path%3D{schema}"),
                }
            }
        }
    }

    /// Opens (and migrates) the store.
    pub async fn store(&self) -> Store {
        Store::connect(&self.url).await.expect("open store")
    }
}

/// Fake Resend and Twilio.
pub struct Fakes {
    pub resend: MockServer,
    pub twilio: MockServer,
}

impl Fakes {
    /// Both fakes answering 200 to every send.
    pub async fn accepting() -> Fakes {
        let fakes = Fakes::bare().await;
        Mock::given(method("POST"))
            .and(path("/emails"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "re_1"})))
            .mount(&fakes.resend)
            .await;
        Mock::given(method("POST"))
            .and(path(format!(
                "/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
            )))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({"sid": "SM1"})))
            .mount(&fakes.twilio)
            .await;
        fakes
    }

    /// Fakes with no mocks mounted (wiremock answers 404 until a test mounts some).
    pub async fn bare() -> Fakes {
        Fakes {
            resend: MockServer::start().await,
            twilio: MockServer::start().await,
        }
    }

    /// Requests received by the fake Resend at `/emails`.
    pub async fn emails(&self) -> Vec<wiremock::Request> {
        self.resend
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.url.path() == "/emails")
            .collect()
    }

    /// Requests received by the fake Twilio.
    pub async fn sms(&self) -> Vec<wiremock::Request> {
        self.twilio.received_requests().await.unwrap_or_default()
    }
}

/// Fast test configuration pointing at the fakes and the database.
pub fn config(db: &TestDb, fakes: &Fakes) -> Config {
    Config {
        providers: ProviderSettings {
            resend: ResendConfig {
                resend_api_key: Some(RESEND_KEY.into()),
                resend_api_url: fakes.resend.uri(),
                email_from: "FutureAuth Test <login@futureauth.test>".into(),
                ..ResendConfig::default()
            },
            twilio: TwilioConfig {
                twilio_account_sid: Some(TWILIO_SID.into()),
                twilio_auth_token: Some(TWILIO_TOKEN.into()),
                twilio_from_number: Some(TWILIO_FROM.into()),
                twilio_api_url: fakes.twilio.uri(),
                ..TwilioConfig::default()
            },
        },
        // The fakes run on loopback, so development rules may be asked for (with real
        // providers they are refused): projects' webhooks then reach the tests' receivers.
        dev: true,
        ..fast_config(db)
    }
}

/// The default configuration on the database: no provider (the dev outbox).
pub fn db_config(db: &TestDb) -> Config {
    Config {
        database: DatabaseSettings {
            database_url: Some(db.url.clone()),
            ..DatabaseSettings::default()
        },
        ..Config::default()
    }
}

/// [`db_config`] with quick retries and polls.
pub fn outbox_config(db: &TestDb) -> Config {
    let mut config = db_config(db);
    config.delivery.retry_base_ms = 50;
    config.delivery.poll_interval_ms = 50;
    config
}

/// [`outbox_config`] with short leases and provider timeouts, and two workers.
pub fn fast_config(db: &TestDb) -> Config {
    let mut config = outbox_config(db);
    config.delivery.lease_ms = 3_000;
    config.delivery.provider_timeout_ms = 2_000;
    config.delivery.workers = NonZeroUsize::new(2).unwrap();
    config
}

/// A running server plus an HTTP client.
pub struct TestServer {
    pub server: RunningServer,
    pub http: reqwest::Client,
    pub db: TestDb,
}

impl TestServer {
    pub async fn start(db: &TestDb, config: &Config) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let server = futureauth_server::start(config, listener)
            .await
            .expect("start server");
        TestServer {
            server,
            http: reqwest::Client::new(),
            db: db.clone(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    pub fn store(&self) -> &Store {
        &self.server.state.store
    }

    /// `POST /api/v1/otp/send` with a JSON body.
    pub async fn send(&self, key: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url("/api/v1/otp/send"))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .expect("send request")
    }

    /// Sends and expects 202, returning the message id.
    pub async fn send_ok(&self, key: &str, body: &Value) -> String {
        let resp = self.send(key, body).await;
        let status = resp.status();
        let v: Value = resp.json().await.expect("json");
        assert_eq!(status, 202, "{v}");
        assert_eq!(v["status"], "queued");
        v["id"].as_str().expect("id").to_owned()
    }

    /// `GET /api/v1/messages/{id}`.
    pub async fn status(&self, key: &str, id: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(self.url(&format!("/api/v1/messages/{id}")))
            .bearer_auth(key)
            .send()
            .await
            .expect("status request");
        let code = resp.status().as_u16();
        (code, resp.json().await.expect("json"))
    }

    /// Polls until the message is `sent` or `failed` (10 s deadline).
    pub async fn wait_final(&self, key: &str, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (code, v) = self.status(key, id).await;
            assert_eq!(code, 200, "{v}");
            if v["status"] != "queued" {
                return v;
            }
            assert!(Instant::now() < deadline, "message {id} still queued: {v}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// Polls `cond` until true (deadline `secs`).
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Creates a project through the CLI code path (`project create … --json`) and returns
/// `(project_id, secret_key)`.
pub async fn cli_create_project(store: &Store, args: &[&str]) -> (String, String) {
    let mut argv = vec!["futureauth-server", "project", "create"];
    argv.extend_from_slice(args);
    argv.push("--json");
    let out = cli(store, &argv).await;
    let v: Value = serde_json::from_str(out.trim()).expect("CLI JSON output");
    let obj = v.as_object().expect("object");
    assert_eq!(obj.len(), 2, "exactly project_id and secret_key: {v}");
    (
        v["project_id"].as_str().expect("project_id").to_owned(),
        v["secret_key"].as_str().expect("secret_key").to_owned(),
    )
}

/// Runs an admin command through the CLI parser and returns its output.
pub async fn cli(store: &Store, argv: &[&str]) -> String {
    let cli = Cli::try_parse_from_argv(argv);
    let mut out = Vec::new();
    run_admin(cli.command.as_ref().expect("a subcommand"), store, &mut out)
        .await
        .expect("admin command");
    String::from_utf8(out).expect("utf8")
}

trait ParseArgv {
    fn try_parse_from_argv(argv: &[&str]) -> Cli;
}

impl ParseArgv for Cli {
    fn try_parse_from_argv(argv: &[&str]) -> Cli {
        // The binary's own parse (main.rs), not clap's alone.
        Cli::try_parse_checked_from(argv).expect("CLI arguments parse")
    }
}

/// The standard project used by most tests: name "Acme", callback https://app.acme.test/auth/magic.
pub async fn acme(store: &Store) -> (String, String) {
    cli_create_project(
        store,
        &[
            "--name",
            "Acme",
            "--callback-url",
            "https://app.acme.test/auth/magic",
            "--allowed-origin",
            "http://localhost:3000",
        ],
    )
    .await
}

/// A new operator with `role` in the project (as if invited from the console).
pub async fn operator_of(
    store: &Store,
    project_id: &str,
    email: &str,
    role: futureauth_server::store::Role,
) -> futureauth_server::store::Operator {
    let op = futureauth_server::service::console::add_operator(store, email)
        .await
        .expect("operator");
    store
        .set_member(
            project_id,
            &op.id,
            role,
            futureauth_server::store::UnixMillis::from_millis(0),
        )
        .await
        .expect("membership");
    op
}

/// The owner of a project created by the CLI, for the owner-only services.
pub async fn owner_of(store: &Store, project_id: &str) -> futureauth_server::store::Operator {
    operator_of(
        store,
        project_id,
        "owner@acme.test",
        futureauth_server::store::Role::Owner,
    )
    .await
}
