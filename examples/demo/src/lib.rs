//! # futureauth-demo
//!
//! The FutureAuth sample app: passwordless sign-in (email code, SMS code, magic link) for
//! an Axum app, with a small static front end.
//!
//! [`build_app`] turns a [`DemoConfig`] into a [`Demo`]: the router plus, in development,
//! the [`DevOutbox`] that holds every code and link "sent". [`serve`] runs the router with
//! the client address available to FutureAuth's per-IP rate limits. `src/main.rs` is a thin
//! wrapper that reads [`DemoConfig::from_env`] and serves on `127.0.0.1:$PORT`.
//!
//! Tests run the same app in-process:
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use futureauth_demo::{build_app, serve, DemoConfig};
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let url = format!("http://{}", listener.local_addr()?);
//! let demo = build_app(DemoConfig::dev_sqlite("sqlite::memory:").serve_at(listener.local_addr()?)).await?;
//! let outbox = demo.outbox.clone();
//! tokio::spawn(serve(demo.router, listener));
//! # let _ = (url, outbox); Ok(()) }
//! ```

#![warn(missing_docs)]

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futureauth::axum::{auth_router, AuthSession};
use futureauth::delivery::{Channel, DevOutbox, OutboxEntry, Purpose};
use futureauth::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use futureauth::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use futureauth::{Database, FutureAuth, FutureAuthConfig, Origin, PasskeyConfig};
use serde_json::{json, Value};

/// The database used when `DATABASE_URL` is not set: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://futureauth-demo.db?mode=rwc";

/// The project name shown in messages when `FUTUREAUTH_PROJECT_NAME` is not set.
pub const DEFAULT_PROJECT_NAME: &str = "FutureAuth Demo";

const INDEX_HTML: &str = include_str!("../static/index.html");
const APP_JS: &str = include_str!("../static/app.js");
const STYLE_CSS: &str = include_str!("../static/style.css");

/// Where the demo keeps its users and sessions.
#[derive(Debug, Clone)]
pub enum DemoDatabase {
    /// A `sqlite:` or `postgres://` URL to connect to.
    Url(String),
    /// A pool the caller already opened (tests use this for an isolated Postgres schema).
    Pool(Database),
}

/// How codes and links reach people.
#[derive(Debug, Clone)]
pub enum DemoDelivery {
    /// Nothing is sent: messages are printed and listed at `/dev/outbox`.
    DevOutbox(DevOutbox),
    /// Through the FutureAuth server at `auth.api_url`, with `auth.secret_key`.
    FutureAuthServer,
}

/// Everything [`build_app`] needs.
///
/// Call [`serve_at`](Self::serve_at) with the address the demo listens on before
/// [`build_app`]: the app's own origin comes from configuration, never from requests.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// The database.
    pub database: DemoDatabase,
    /// The delivery.
    pub delivery: DemoDelivery,
    /// The FutureAuth SDK configuration.
    pub auth: FutureAuthConfig,
}

impl DemoConfig {
    /// A development configuration: the SQLite database at `url` and a dev outbox.
    ///
    /// The session cookie is not `Secure`, because the demo is served over plain
    /// `http://127.0.0.1`, where browsers would not send a `Secure` cookie back.
    pub fn dev_sqlite(url: &str) -> Self {
        Self::dev(DemoDatabase::Url(url.to_string()))
    }

    /// A development configuration over `database`, with a dev outbox and a non-`Secure`
    /// cookie (see [`dev_sqlite`](Self::dev_sqlite)).
    pub fn dev(database: DemoDatabase) -> Self {
        Self {
            database,
            delivery: DemoDelivery::DevOutbox(DevOutbox::new()),
            auth: dev_auth_config(),
        }
    }

    /// Reads the configuration from the process environment; see [`from_lookup`](Self::from_lookup).
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`:
    ///
    /// - `DATABASE_URL`: `postgres://...` or `sqlite:...`; default [`DEFAULT_DATABASE_URL`].
    /// - `FUTUREAUTH_SECRET_KEY` (and optionally `FUTUREAUTH_API_URL`): deliver for real
    ///   through a FutureAuth server. Without a secret key, the dev outbox is used.
    /// - `FUTUREAUTH_APP_URL` (default: the listen address, see [`serve_at`](Self::serve_at)),
    ///   `FUTUREAUTH_PROJECT_NAME`, `FUTUREAUTH_ALLOWED_ORIGINS`, `FUTUREAUTH_CALLBACK_URLS`,
    ///   `FUTUREAUTH_TRUSTED_PROXIES`.
    /// - `FUTUREAUTH_COOKIE_SECURE`: default `false` here (the demo is plain http).
    ///
    /// Empty variables count as unset. Configurations that cannot work are rejected with a
    /// message that says how to fix them.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let lookup = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let database_url =
            lookup("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string());
        check_database_url(&database_url)?;

        let mut auth =
            FutureAuthConfig::from_lookup(lookup).context("invalid FUTUREAUTH_* setting")?;
        if lookup("FUTUREAUTH_COOKIE_SECURE").is_none() {
            // Served over http://127.0.0.1: a Secure cookie would not come back.
            auth.cookie_secure = false;
        }
        if lookup("FUTUREAUTH_PROJECT_NAME").is_none() {
            auth.project_name = DEFAULT_PROJECT_NAME.to_string();
        }
        let delivery = match (
            lookup("FUTUREAUTH_SECRET_KEY"),
            lookup("FUTUREAUTH_API_URL"),
        ) {
            (Some(_), _) => DemoDelivery::FutureAuthServer,
            (None, Some(api_url)) => bail!(
                "FUTUREAUTH_API_URL is set ({api_url}) but FUTUREAUTH_SECRET_KEY is not: set \
                 FUTUREAUTH_SECRET_KEY to your project's secret key to deliver through that \
                 server, or unset FUTUREAUTH_API_URL to use the dev outbox"
            ),
            (None, None) => DemoDelivery::DevOutbox(DevOutbox::new()),
        };
        Ok(Self {
            database: DemoDatabase::Url(database_url),
            delivery,
            auth,
        })
    }

    /// Declares the address the demo is served at: unless `FUTUREAUTH_APP_URL` set
    /// `app_url`, it becomes `http://<addr>`, and on a loopback address
    /// `http://localhost:<port>` is allowed too. Browser requests, magic-link callbacks and
    /// the `/dev/outbox` page are accepted from these origins only.
    pub fn serve_at(mut self, addr: SocketAddr) -> Self {
        if self.auth.app_url.trim().is_empty() {
            self.auth.app_url = format!("http://{addr}");
            if addr.ip().is_loopback() {
                let localhost = format!("http://localhost:{}", addr.port());
                if !self.auth.allowed_origins.contains(&localhost) {
                    self.auth.allowed_origins.push(localhost);
                }
            }
        }
        self
    }
}

/// The SDK configuration of a local development run.
fn dev_auth_config() -> FutureAuthConfig {
    FutureAuthConfig {
        project_name: DEFAULT_PROJECT_NAME.to_string(),
        // Served over http://127.0.0.1: a Secure cookie would not come back.
        cookie_secure: false,
        ..Default::default()
    }
}

fn check_database_url(url: &str) -> anyhow::Result<()> {
    let known = ["postgres://", "postgresql://", "sqlite:"];
    if !known.iter().any(|p| url.starts_with(p)) {
        bail!(
            "DATABASE_URL {:?} is not supported: use postgres://user@host/db, or \
             sqlite://file.db?mode=rwc, or unset it for the default {DEFAULT_DATABASE_URL}",
            redact(url)
        );
    }
    Ok(())
}

/// `url` without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Opens the database at `url` (`postgres://` or `sqlite:`; SQLite files are created and
/// put in WAL mode).
pub async fn connect(url: &str) -> anyhow::Result<Database> {
    check_database_url(url)?;
    if url.starts_with("sqlite:") {
        let options = SqliteConnectOptions::from_str(url)
            .with_context(|| format!("invalid SQLite DATABASE_URL {url:?}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5));
        // A bounded wait for a connection here too (a writer may hold the file locked).
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .with_context(|| format!("cannot open the SQLite database {url:?}"))?;
        Ok(pool.into())
    } else {
        // Bounded waits, so that while Postgres is down (a restart, a fail-over) sign-in and
        // `AuthSession` answer `503 unavailable` within about 2 s instead of hanging for
        // sqlx's default 30 s acquire timeout; no statement may run longer than 5 s.
        let options = PgConnectOptions::from_str(url)
            .with_context(|| format!("invalid Postgres DATABASE_URL {:?}", redact(url)))?
            .options([("statement_timeout", "5s")]);
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(2))
            .connect_with(options)
            .await
            .with_context(|| {
                format!(
                    "cannot connect to Postgres at {} (is it running? check DATABASE_URL)",
                    redact(url)
                )
            })?;
        Ok(pool.into())
    }
}

/// The demo app's shared state.
#[derive(Clone)]
pub struct AppState {
    /// The app's database (FutureAuth keeps its tables in it too).
    pub db: Database,
    /// The FutureAuth SDK.
    pub auth: Arc<FutureAuth>,
    /// The dev outbox, when nothing is really sent.
    pub outbox: Option<DevOutbox>,
}

impl AsRef<Arc<FutureAuth>> for AppState {
    fn as_ref(&self) -> &Arc<FutureAuth> {
        &self.auth
    }
}

/// A built demo app.
pub struct Demo {
    /// The routes: FutureAuth's `/api/auth/*`, `/api/me`, the pages and `/dev/outbox`.
    pub router: Router,
    /// The shared state (database and SDK).
    pub state: AppState,
    /// The dev outbox, if codes are not really sent: tests read codes from it.
    pub outbox: Option<DevOutbox>,
}

impl std::fmt::Debug for Demo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Demo")
            .field("auth", &self.state.auth)
            .field("dev_outbox", &self.outbox.is_some())
            .finish_non_exhaustive()
    }
}

/// Connects to the database, creates FutureAuth's tables and builds the router.
///
/// Fails with a message that says how to fix it when the configuration cannot work
/// (unreachable database, real delivery without a secret key, ...).
pub async fn build_app(cfg: DemoConfig) -> anyhow::Result<Demo> {
    let db = match cfg.database {
        DemoDatabase::Url(url) => connect(&url).await?,
        DemoDatabase::Pool(db) => db,
    };
    let mut config = cfg.auth;
    // Passkeys whenever a relying party can be named: app_url or an allowed origin on a
    // domain name (http://localhost:<port> beside http://127.0.0.1:<port>, see serve_at).
    if config.passkeys.is_none() && passkey_rp_id(&config).is_some() {
        config.passkeys = Some(PasskeyConfig::default());
    }
    let mut auth = FutureAuth::new(db.clone(), config);
    let outbox = match cfg.delivery {
        DemoDelivery::DevOutbox(outbox) => {
            auth = auth.with_delivery(outbox.clone());
            Some(outbox)
        }
        DemoDelivery::FutureAuthServer => None,
    };
    auth.ensure_tables()
        .await
        .context("cannot set up FutureAuth (configuration or database tables)")?;
    let state = AppState {
        db,
        auth: Arc::new(auth),
        outbox: outbox.clone(),
    };
    Ok(Demo {
        router: router(state.clone()),
        state,
        outbox,
    })
}

/// The demo's routes over `state`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(auth_router(state.auth.clone()))
        .route("/api/me", get(me_handler))
        .route("/api/demo/config", get(demo_config))
        .route("/", get(index))
        .route("/auth/verify", get(index))
        .route("/app.js", get(app_js))
        .route("/style.css", get(style_css))
        .route("/dev/outbox", get(dev_outbox))
        .fallback(not_found)
        .with_state(state)
}

/// Serves `router` on `listener`, giving FutureAuth the client address for per-IP limits.
pub async fn serve(router: Router, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}

/// `GET /api/me`: the signed-in user (401 when signed out).
pub async fn me_handler(auth: AuthSession) -> Json<Value> {
    Json(json!({
        "user": {
            "id": auth.user.id,
            "email": auth.user.email,
            "phone_number": auth.user.phone_number,
            "created_at": auth.user.created_at,
        },
        "session": {
            "id": auth.session.id,
            "expires_at": auth.session.expires_at,
        },
    }))
}

/// The passkey relying party ID of `config`, as the SDK names it: the host of the first of
/// `app_url` and `allowed_origins` that is a domain name.
fn passkey_rp_id(config: &FutureAuthConfig) -> Option<String> {
    std::iter::once(&config.app_url)
        .chain(&config.allowed_origins)
        .filter_map(|o| url::Url::parse(o.trim()).ok())
        .find_map(|u| u.domain().map(str::to_ascii_lowercase))
}

/// `GET /api/demo/config`: what the front end needs to know about this run. `passkey_rp_id`
/// is set when passkeys are on: the page offers them only on that host (a browser refuses
/// them elsewhere, e.g. on 127.0.0.1).
async fn demo_config(State(state): State<AppState>) -> Json<Value> {
    let config = state.auth.config();
    let rp_id = config.passkeys.as_ref().and_then(|_| passkey_rp_id(config));
    Json(json!({
        "dev_outbox": state.outbox.is_some(),
        "project_name": config.project_name,
        "passkey_rp_id": rp_id,
    }))
}

/// Headers of every page: no caching, no framing, scripts only from this origin, and no
/// `Referer` (the magic-link page has a token in its URL).
fn page_headers() -> [(HeaderName, HeaderValue); 5] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
            ),
        ),
    ]
}

/// `GET /` and `GET /auth/verify`: the single page. The magic-link page never signs in on
/// GET; its script POSTs the token (mail scanners follow links but do not run scripts).
async fn index() -> Response {
    (page_headers(), Html(INDEX_HTML)).into_response()
}

async fn app_js() -> Response {
    let content_type = HeaderValue::from_static("text/javascript; charset=utf-8");
    ([(header::CONTENT_TYPE, content_type)], APP_JS).into_response()
}

async fn style_css() -> Response {
    let content_type = HeaderValue::from_static("text/css; charset=utf-8");
    ([(header::CONTENT_TYPE, content_type)], STYLE_CSS).into_response()
}

async fn not_found() -> Response {
    let body = json!({ "error": { "code": "not_found", "message": "no such page" } });
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

/// `GET /dev/outbox`: the messages the dev outbox "sent", newest first; JSON for
/// `Accept: application/json`, else an HTML page. 404 when delivery is real.
///
/// Only for requests addressed to the demo's own origins: a page on another site that
/// re-binds its DNS name to 127.0.0.1 reaches this server with its own name as `Host`,
/// and gets 421 instead of every code and link.
async fn dev_outbox(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(outbox) = state.outbox else {
        let body = json!({ "error": {
            "code": "not_found",
            "message": "the dev outbox is off: messages are delivered by the FutureAuth server"
        }});
        return (StatusCode::NOT_FOUND, Json(body)).into_response();
    };
    if !addressed_to_us(&state.auth, &headers) {
        let body = json!({ "error": {
            "code": "misdirected_request",
            "message": "the dev outbox answers only at the demo's own address (FUTUREAUTH_APP_URL)"
        }});
        return (StatusCode::MISDIRECTED_REQUEST, Json(body)).into_response();
    }
    let messages = outbox.messages();
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    if wants_json {
        let body = json!({
            "dev_outbox": true,
            "note": "development outbox: nothing is really sent",
            "messages": messages,
        });
        return (
            [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
            Json(body),
        )
            .into_response();
    }
    match outbox_page(&messages) {
        Ok(page) => (page_headers(), Html(page)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "demo: the outbox page failed to render");
            let body = json!({ "error": {
                "code": "internal_error",
                "message": "the outbox page failed to render; see the log"
            }});
            (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
        }
    }
}

/// Whether the request's `Host` names one of the configured origins (scheme aside: a
/// plain-http demo is reached as http, but the host and port must be ours).
fn addressed_to_us(auth: &FutureAuth, headers: &HeaderMap) -> bool {
    let (Ok(origins), Some(host)) = (
        auth.origins(),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) else {
        return false;
    };
    ["http", "https"].iter().any(|scheme| {
        Origin::parse(&format!("{scheme}://{host}")).is_ok_and(|o| origins.trusts(&o))
    })
}

/// The outbox page. minijinja escapes every value of an `.html` template: addresses come
/// from whoever asked for a code.
fn outbox_page(messages: &[OutboxEntry]) -> Result<String, minijinja::Error> {
    static PAGE: std::sync::LazyLock<Result<minijinja::Environment<'static>, minijinja::Error>> =
        std::sync::LazyLock::new(|| {
            let mut env = minijinja::Environment::new();
            env.add_template("outbox.html", include_str!("../templates/outbox.html"))?;
            Ok(env)
        });
    let env = PAGE.as_ref().map_err(|e| {
        minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string())
    })?;
    let rows: Vec<_> = messages
        .iter()
        .map(|entry| {
            let m = &entry.message;
            let kind = match (m.purpose(), m.channel) {
                (Purpose::AddressChangeNotice, Channel::Sms) => "SMS notice: new address asked for",
                (Purpose::AddressChangeNotice, _) => "Email notice: new address asked for",
                (Purpose::ConfirmAddress, Channel::Sms) => "SMS code (confirm new address)",
                (Purpose::ConfirmAddress, _) => "Email code (confirm new address)",
                (_, Channel::Email) => "Email code",
                (_, Channel::Sms) => "SMS code",
                (_, Channel::MagicLink) => "Magic link",
            };
            json!({
                "time": entry.sent_at.format("%H:%M:%S").to_string(),
                "kind": kind,
                "destination": m.destination,
                "code": m.code,
                // A notice has no code: the page shows the masked address it names.
                "new_address": m.new_address,
                "link": (m.channel == Channel::MagicLink).then_some(m.link.as_deref()).flatten(),
                "link_code": m.link_code,
                "link_label": if m.purpose() == Purpose::ConfirmAddress {
                    "Open confirm link"
                } else {
                    "Open sign-in link"
                },
            })
        })
        .collect();
    env.get_template("outbox.html")?
        .render(minijinja::context! { messages => rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn no_env_means_sqlite_and_dev_outbox() {
        let cfg = DemoConfig::from_lookup(env(&[])).unwrap();
        assert!(matches!(cfg.database, DemoDatabase::Url(ref u) if u == DEFAULT_DATABASE_URL));
        assert!(matches!(cfg.delivery, DemoDelivery::DevOutbox(_)));
        assert!(!cfg.auth.cookie_secure);
        assert_eq!(cfg.auth.project_name, DEFAULT_PROJECT_NAME);
    }

    #[test]
    fn secret_key_means_real_delivery() {
        let cfg = DemoConfig::from_lookup(env(&[
            ("FUTUREAUTH_SECRET_KEY", "vx_sec_x"),
            ("FUTUREAUTH_API_URL", "http://127.0.0.1:8080"),
            ("DATABASE_URL", "postgres://u:pw@db/app"),
            ("FUTUREAUTH_COOKIE_SECURE", "true"),
        ]))
        .unwrap();
        assert!(matches!(cfg.delivery, DemoDelivery::FutureAuthServer));
        assert!(cfg.auth.cookie_secure);
        assert_eq!(cfg.auth.api_url, "http://127.0.0.1:8080");
    }

    #[test]
    fn misconfigurations_explain_the_fix() {
        let err = DemoConfig::from_lookup(env(&[("FUTUREAUTH_API_URL", "http://x")])).unwrap_err();
        assert!(err.to_string().contains("FUTUREAUTH_SECRET_KEY"), "{err}");
        let err =
            DemoConfig::from_lookup(env(&[("DATABASE_URL", "mysql://u:secret@h/db")])).unwrap_err();
        assert!(err.to_string().contains("postgres://"), "{err}");
        assert!(!err.to_string().contains("secret"), "{err}");
        let err =
            DemoConfig::from_lookup(env(&[("FUTUREAUTH_COOKIE_SECURE", "maybe")])).unwrap_err();
        assert!(
            format!("{err:#}").contains("FUTUREAUTH_COOKIE_SECURE"),
            "{err:#}"
        );
    }

    #[test]
    fn serve_at_sets_the_apps_origins_unless_configured() {
        let addr: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let cfg = DemoConfig::dev_sqlite("sqlite::memory:").serve_at(addr);
        assert_eq!(cfg.auth.app_url, "http://127.0.0.1:4000");
        assert_eq!(cfg.auth.allowed_origins, ["http://localhost:4000"]);
        let cfg = DemoConfig::from_lookup(env(&[("FUTUREAUTH_APP_URL", "https://demo.example")]))
            .unwrap()
            .serve_at(addr);
        assert_eq!(cfg.auth.app_url, "https://demo.example");
        assert!(cfg.auth.allowed_origins.is_empty());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite://a.db"), "sqlite://a.db");
    }

    #[tokio::test]
    async fn outbox_page_escapes() {
        let outbox = DevOutbox::quiet();
        let message = futureauth::delivery::Message {
            channel: Channel::MagicLink,
            destination: "<a href=\"x\">&'@example.com".into(),
            code: "tok".into(),
            project_name: "Demo".into(),
            link: Some("https://app.example/?token=\"><script>".into()),
            callback_url: None,
            locale: None,
            link_code: Some("k3x9p2".into()),
            purpose: None,
            new_address: None,
        };
        futureauth::delivery::Delivery::deliver(&outbox, &message)
            .await
            .unwrap();
        let page = outbox_page(&outbox.messages()).unwrap();
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("<a href=\"x\">"), "{page}");
        assert!(page.contains("&lt;a href=&quot;x&quot;&gt;&amp;"), "{page}");
        assert!(page.contains("k3x9p2"), "{page}");
        // A notice shows no code, only the masked address it names.
        let notice = futureauth::delivery::Message {
            channel: Channel::Email,
            destination: "ada@example.com".into(),
            code: String::new(),
            project_name: "Demo".into(),
            link: None,
            callback_url: None,
            locale: None,
            link_code: None,
            purpose: Some(Purpose::AddressChangeNotice),
            new_address: Some("g***@example.com".into()),
        };
        futureauth::delivery::Delivery::deliver(&outbox, &notice)
            .await
            .unwrap();
        let page = outbox_page(&outbox.messages()).unwrap();
        assert!(
            page.contains("Email notice: new address asked for")
                && page.contains("No code · new address g***@example.com"),
            "{page}"
        );
        assert!(!page.contains(r#"<code class="otp"></code>"#), "{page}");
        let empty = outbox_page(&[]).unwrap();
        assert!(empty.contains("Nothing sent yet"), "{empty}");
    }
}
