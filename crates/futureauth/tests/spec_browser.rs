//! The spec's router snippet in a real browser: served on loopback over plain http with the
//! spec's `FutureAuthConfig { ..Default::default() }` (no `app_url`, secure cookies), a page
//! of the app on `http://127.0.0.1:PORT` and on `http://localhost:PORT` POSTs `send-otp`
//! with `fetch` from headless Chromium, and is answered 200, not a CSRF 403.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`apt-get install chromium chromium-driver`);
//! without them this test fails, it never skips.

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use axum::response::Html;
use axum::{routing::get, Json, Router};
use fantoccini::{Client, ClientBuilder, Locator};
use futureauth::axum::AuthSession;
use futureauth::{FutureAuth, FutureAuthConfig};
use serde_json::json;
use sqlx::PgPool;
use wiremock::{matchers::path, Mock, MockServer, ResponseTemplate};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const WAIT: Duration = Duration::from_secs(15);

// --- The spec's router snippet, verbatim ----------------------------------------------
#[allow(dead_code)]
#[rustfmt::skip]
#[derive(Clone)] struct AppState { db: PgPool, auth: Arc<FutureAuth>, }
impl AsRef<Arc<FutureAuth>> for AppState {
    fn as_ref(&self) -> &Arc<FutureAuth> {
        &self.auth
    }
}

#[allow(clippy::let_and_return)] // the snippet binds `app`
#[rustfmt::skip]
fn router_snippet(pool: PgPool, auth: FutureAuth) -> Router {
    let state = AppState { db: pool, auth: Arc::new(auth) }; let app = Router::new() .merge(futureauth::axum::auth_router(state.auth.clone())) .route("/api/me", get(me_handler)) .with_state(state);
    app
}

#[rustfmt::skip]
async fn me_handler(auth: AuthSession) -> Json<serde_json::Value> { Json(serde_json::json!({ "id": auth.user.id, "email": auth.user.email })) }

/// The app's own page: on load it asks for a code for `<host name>@example.com` the way a
/// front end does, and shows the answer.
const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8"><title>spec app</title>
<h1>Sign in</h1><p id="status">pending</p>
<script>
const email = location.hostname.replace(/[^a-z0-9]/g, "") + "@example.com";
fetch("/api/auth/send-otp", {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ email }),
})
  .then(async (r) => {
    document.getElementById("status").textContent = "answered " + r.status + " " + (await r.text());
  })
  .catch((e) => {
    document.getElementById("status").textContent = "failed " + e;
  });
</script>
"#;

/// A chromedriver process, killed on drop.
struct ChromeDriver {
    child: Child,
    port: u16,
}

impl ChromeDriver {
    fn start(log: &Path) -> Result<Self> {
        for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            ensure!(
                Path::new(path).exists(),
                "{path} not found: this test needs Debian's {package}; \
                 run `apt-get install chromium chromium-driver`"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log)?)
            .spawn()
            .with_context(|| format!("cannot start {CHROMEDRIVER}"))?;
        let mut driver = Self { child, port };
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = driver.child.try_wait()? {
                bail!("chromedriver exited with {status}; see {}", log.display());
            }
            ensure!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(driver)
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn artifacts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/artifacts")
}

async fn open_browser(driver: &ChromeDriver, profile: &Path) -> Result<Client> {
    // fantoccini's hyper-rustls enables aws-lc-rs and reqwest enables ring: with two
    // providers compiled in, rustls needs to be told which one to use.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let capabilities = json!({
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-proxy-server", "--window-size=800,400",
                format!("--user-data-dir={}", profile.display()),
            ],
        }
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        bail!("capabilities must be an object");
    };
    ClientBuilder::rustls()?
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .context("cannot open a Chromium session through chromedriver")
}

/// Opens `url` and waits for the page's answer to its `send-otp`.
async fn answer_at(c: &Client, url: &str, shot: &str) -> Result<String> {
    c.goto(url).await?;
    let deadline = Instant::now() + WAIT;
    let text = loop {
        let text = c.find(Locator::Css("#status")).await?.text().await?;
        if text != "pending" {
            break text;
        }
        ensure!(
            Instant::now() < deadline,
            "{url}: the page's fetch never answered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    std::fs::create_dir_all(artifacts())?;
    std::fs::write(artifacts().join(shot), c.screenshot().await?)?;
    Ok(text)
}

#[tokio::test]
async fn the_spec_router_accepts_posts_from_its_own_page_on_http_loopback() -> Result<()> {
    let fake = MockServer::start().await;
    Mock::given(path("/api/v1/otp/send"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&fake)
        .await;
    let db = common::TestDb::postgres().await;
    let common::TestDb::Postgres { pool, .. } = &db else {
        bail!("a Postgres database was asked for");
    };
    // The spec's configuration, with the fake service in place of future-auth.com.
    let auth = FutureAuth::new(
        pool.clone(),
        FutureAuthConfig {
            api_url: fake.uri(),
            secret_key: "vx_sec_spec_test_0123456789abcdefghijkl".to_string(),
            project_name: "My App".to_string(),
            ..Default::default()
        },
    );
    auth.ensure_tables().await?;
    let app = router_snippet(pool.clone(), auth).route("/", get(|| async { Html(PAGE) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = std::env::temp_dir().join(format!("futureauth-spec-browser-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let driver = ChromeDriver::start(&dir.join("chromedriver.log"))?;
    let c = open_browser(&driver, &dir.join("profile")).await?;
    let mut answers = Vec::new();
    for (host, shot) in [
        ("127.0.0.1", "spec-browser-127.0.0.1.png"),
        ("localhost", "spec-browser-localhost.png"),
    ] {
        let url = format!("http://{host}:{port}/");
        answers.push((url.clone(), answer_at(&c, &url, shot).await));
    }
    let _ = c.close().await;
    drop(driver);
    let _ = std::fs::remove_dir_all(&dir);
    db.cleanup().await;

    for (url, answer) in answers {
        let answer = answer?;
        ensure!(
            answer.starts_with("answered 200"),
            "the page on {url} was refused: {answer}"
        );
    }
    let sent: Vec<serde_json::Value> = fake
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| serde_json::from_slice(&r.body))
        .collect::<Result<_, _>>()?;
    let to: Vec<&str> = sent
        .iter()
        .filter_map(|m| m["destination"].as_str())
        .collect();
    ensure!(
        to == ["127001@example.com", "localhost@example.com"],
        "codes sent to {to:?}"
    );
    Ok(())
}
