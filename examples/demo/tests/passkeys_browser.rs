//! Passkeys in a real browser: headless Chromium through chromedriver, with the W3C
//! WebDriver virtual authenticator (CTAP2, internal transport, resident keys, user
//! verification), against the demo on SQLite and on Postgres. Sign in by code, add a
//! passkey, sign out, sign in by autofill (conditional mediation) and by the button,
//! rename, delete, and sign in by code again.
//!
//! Needs Debian's `chromium` and `chromium-driver`; without them this test fails, it never
//! skips. Screenshots go to `target/artifacts/passkeys-*.png`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context, Result};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use futureauth::delivery::DevOutbox;
use futureauth::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use futureauth::sqlx::{self, PgPool};
use futureauth::RateLimit;
use futureauth_demo::{build_app, serve, DemoConfig, DemoDatabase, DemoDelivery};
use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const WAIT: Duration = Duration::from_secs(15);

/// A chromedriver process, killed on drop.
struct ChromeDriver {
    child: Child,
    port: u16,
}

impl ChromeDriver {
    fn start(log: &Path) -> Result<Self> {
        for path in [CHROMIUM, CHROMEDRIVER] {
            ensure!(
                Path::new(path).exists(),
                "{path} not found: apt-get install chromium chromium-driver"
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
            .context("cannot start chromedriver")?;
        let deadline = Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            ensure!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self { child, port })
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn temp_dir(tag: &str) -> Result<PathBuf> {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    let dir = std::env::temp_dir().join(format!("futureauth-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

async fn open_browser(driver: &ChromeDriver, profile: &Path) -> Result<Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let capabilities = json!({
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-background-networking", "--disable-sync",
                "--window-size=900,1100", format!("--user-data-dir={}", profile.display()),
            ],
        }
    });
    let Value::Object(capabilities) = capabilities else {
        bail!("capabilities must be an object");
    };
    ClientBuilder::rustls()?
        .capabilities(capabilities)
        .connect(&driver.url())
        .await
        .context("cannot open a Chromium session through chromedriver")
}

/// The W3C WebDriver virtual authenticator of a session (chromedriver's
/// `/session/{id}/webauthn/authenticator` endpoints).
struct Authenticator {
    url: String,
}

impl Authenticator {
    async fn add(driver: &ChromeDriver, c: &Client) -> Result<Self> {
        let session = c.session_id().await?.context("no WebDriver session")?;
        let base = format!("{}/session/{session}/webauthn/authenticator", driver.url());
        let answer: Value = reqwest::Client::new()
            .post(&base)
            .json(&json!({
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserConsenting": true,
                "isUserVerified": true,
            }))
            .send()
            .await?
            .json()
            .await?;
        let id = answer["value"]
            .as_str()
            .with_context(|| format!("no authenticator id in {answer}"))?;
        Ok(Self {
            url: format!("{base}/{id}"),
        })
    }

    /// The credentials it holds.
    async fn credentials(&self) -> Result<Vec<Value>> {
        let answer: Value = reqwest::get(format!("{}/credentials", self.url))
            .await?
            .json()
            .await?;
        Ok(answer["value"].as_array().cloned().unwrap_or_default())
    }

    async fn remove(self) -> Result<()> {
        reqwest::Client::new().delete(&self.url).send().await?;
        Ok(())
    }
}

async fn visible(c: &Client, css: &str) -> Result<Element> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(el) = c.find(Locator::Css(css)).await {
            if el.is_displayed().await.unwrap_or(false) {
                return Ok(el);
            }
        }
        if Instant::now() > deadline {
            let error = match c.find(Locator::Css("#error")).await {
                Ok(e) => e.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            bail!("timed out waiting for {css} (#error = {error:?})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn text_containing(c: &Client, css: &str, needle: &str) -> Result<String> {
    let deadline = Instant::now() + WAIT;
    let mut last = String::new();
    loop {
        if let Ok(el) = c.find(Locator::Css(css)).await {
            if el.is_displayed().await.unwrap_or(false) {
                last = el.text().await.unwrap_or_default();
                if last.contains(needle) {
                    return Ok(last);
                }
            }
        }
        ensure!(
            Instant::now() < deadline,
            "timed out waiting for {css} to contain {needle:?}; last text {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn click(c: &Client, css: &str) -> Result<()> {
    visible(c, css).await?.click().await?;
    Ok(())
}

async fn fill(c: &Client, css: &str, value: &str) -> Result<()> {
    let input = visible(c, css).await?;
    input.clear().await?;
    input.send_keys(value).await?;
    Ok(())
}

async fn screenshot(c: &Client, name: &str) -> Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/artifacts");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(name);
    std::fs::write(&path, c.screenshot().await?)?;
    eprintln!("screenshot: {}", path.display());
    Ok(())
}

/// How the current session of the page was made (`auth_method` of `/api/auth/session`).
async fn auth_method(c: &Client) -> Result<String> {
    let value = c
        .execute_async(
            "const done = arguments[0];
             fetch('/api/auth/session').then(r => r.json())
               .then(j => done(j.session ? j.session.auth_method : 'none'));",
            vec![],
        )
        .await?;
    Ok(value.as_str().unwrap_or_default().to_string())
}

async fn sign_in_by_code(c: &Client, outbox: &DevOutbox, email: &str) -> Result<()> {
    visible(c, "#sign-in").await?;
    fill(c, "#email", email).await?;
    click(c, "#send-email-code").await?;
    visible(c, "#code-screen").await?;
    let deadline = Instant::now() + WAIT;
    let code = loop {
        if let Some(m) = outbox.latest_for(email) {
            break m.code;
        }
        ensure!(Instant::now() < deadline, "no code for {email}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    fill(c, "#code", &code).await?;
    click(c, "#verify-code").await?;
    text_containing(c, "#user-email", email).await?;
    Ok(())
}

/// The passkey scenario on the demo at `base` (`http://localhost:port`).
async fn scenario(
    driver: &ChromeDriver,
    c: &Client,
    base: &str,
    outbox: &DevOutbox,
    tag: &str,
) -> Result<()> {
    let authenticator = Authenticator::add(driver, c).await?;
    c.goto(base).await?;
    visible(c, "#passkey-button").await?;
    let email = format!("ada-{tag}@example.com");
    sign_in_by_code(c, outbox, &email).await?;
    ensure!(
        auth_method(c).await? == "otp",
        "the first sign-in is by code"
    );

    // Add a passkey: named after the browser, held by the authenticator as a resident key.
    visible(c, "#no-passkeys").await?;
    click(c, "#add-passkey").await?;
    text_containing(c, "#passkeys li .passkey-name", "Chrome on Linux").await?;
    text_containing(c, "#notice", "added").await?;
    let held = authenticator.credentials().await?;
    ensure!(held.len() == 1, "the authenticator holds {held:?}");
    ensure!(
        held[0]["isResidentCredential"] == json!(true),
        "a discoverable credential: {held:?}"
    );
    screenshot(c, &format!("passkeys-{tag}-added.png")).await?;

    // Sign out: the sign-in page's email field offers the passkey (conditional mediation),
    // which the virtual authenticator answers by itself, so the page signs in again.
    click(c, "#sign-out").await?;
    let deadline = Instant::now() + WAIT;
    while auth_method(c).await? != "passkey" {
        ensure!(
            Instant::now() < deadline,
            "autofill (conditional mediation) did not sign in with the passkey"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    text_containing(c, "#user-email", &email).await?;
    screenshot(c, &format!("passkeys-{tag}-autofill.png")).await?;

    // By the button: with the autofill request aborted by the click.
    c.execute("stopConditional(); passkeysOn = false;", vec![])
        .await?;
    click(c, "#sign-out").await?;
    visible(c, "#passkey-button").await?;
    screenshot(c, &format!("passkeys-{tag}-sign-in.png")).await?;
    click(c, "#passkey-button").await?;
    text_containing(c, "#user-email", &email).await?;
    ensure!(
        auth_method(c).await? == "passkey",
        "signed in by the button"
    );

    // The list after a reload (passkeys on again): used, renamed.
    c.refresh().await?;
    text_containing(c, "#passkeys li .session-meta", "last used").await?;
    click(c, "#passkeys li .passkey-rename").await?;
    fill(c, "#passkeys li .passkey-name-input", "Work laptop").await?;
    click(c, "#passkeys li .passkey-save").await?;
    text_containing(c, "#passkeys li .passkey-name", "Work laptop").await?;
    screenshot(c, &format!("passkeys-{tag}-renamed.png")).await?;

    // Deleted: the passkey signs nobody in; a code still does.
    click(c, "#passkeys li .passkey-delete").await?;
    visible(c, "#no-passkeys").await?;
    text_containing(c, "#notice", "deleted").await?;
    c.execute("passkeysOn = false;", vec![]).await?;
    click(c, "#sign-out").await?;
    c.execute("passkeysOn = true;", vec![]).await?;
    click(c, "#passkey-button").await?;
    text_containing(c, "#error", "not accepted").await?;
    screenshot(c, &format!("passkeys-{tag}-deleted.png")).await?;
    sign_in_by_code(c, outbox, &email).await?;
    ensure!(
        auth_method(c).await? == "otp",
        "a code after the passkey went"
    );
    click(c, "#sign-out").await?;
    authenticator.remove().await
}

/// The demo on `database`, served at `http://localhost:port`; runs the scenario.
async fn on_database(
    driver: &ChromeDriver,
    c: &Client,
    database: DemoDatabase,
    tag: &str,
) -> Result<()> {
    let outbox = DevOutbox::quiet();
    let mut cfg = DemoConfig::dev(database);
    cfg.delivery = DemoDelivery::DevOutbox(outbox.clone());
    // The scenario signs the same address in by code twice within 30 s.
    cfg.auth.rate_limits.send_throttle = RateLimit::new(5, Duration::from_secs(30));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let demo = build_app(cfg.serve_at(listener.local_addr()?)).await?;
    let server = tokio::spawn(serve(demo.router, listener));
    let outcome = scenario(driver, c, &format!("http://localhost:{port}"), &outbox, tag).await;
    if outcome.is_err() {
        let _ = screenshot(c, &format!("passkeys-{tag}-failure.png")).await;
    }
    server.abort();
    outcome
}

async fn postgres_schema() -> Result<(PgPool, PgPool, String)> {
    let url = std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_string());
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .with_context(|| format!("Postgres is unreachable at {url}"))?;
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    let schema = format!("passkeys_{:x}_{}", nanos, std::process::id());
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await?;
    let options = PgConnectOptions::from_str(&url)?.options([("search_path", schema.as_str())]);
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await?;
    Ok((admin, pool, schema))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkeys_in_a_real_browser() -> Result<()> {
    let dir = temp_dir("passkeys-browser")?;
    let driver = ChromeDriver::start(&dir.join("chromedriver.log"))?;
    let profile = dir.join("profile");
    std::fs::create_dir_all(&profile)?;
    let c = open_browser(&driver, &profile).await?;

    let sqlite = format!("sqlite://{}?mode=rwc", dir.join("demo.db").display());
    let mut outcome = on_database(&driver, &c, DemoDatabase::Url(sqlite), "sqlite")
        .await
        .context("on SQLite");
    if outcome.is_ok() {
        let (admin, pool, schema) = postgres_schema().await?;
        outcome = on_database(
            &driver,
            &c,
            DemoDatabase::Pool(pool.clone().into()),
            "postgres",
        )
        .await
        .context("on Postgres");
        pool.close().await;
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&admin)
            .await?;
    }
    let _ = c.close().await;
    drop(driver);
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}
