//! End-to-end browser test: the demo in-process (temp SQLite file, dev outbox), driven
//! through headless Chromium by chromedriver.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`apt-get install chromium chromium-driver`);
//! without them this test fails, it never skips. All scenarios run in one test, one after
//! the other, in one browser (the machine is small).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, ensure, Context, Result};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use futureauth::delivery::{DevOutbox, Message};
use futureauth::RateLimit;
use futureauth_demo::{build_app, serve, DemoConfig, DemoDelivery};
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const WAIT: Duration = Duration::from_secs(15);
/// Codes one address may get per window in this test (lowered to reach the limit quickly).
const SEND_LIMIT: u32 = 3;

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Result<Self> {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "futureauth-demo-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A chromedriver process, killed on drop.
struct ChromeDriver {
    child: Child,
    port: u16,
}

impl ChromeDriver {
    fn start(log: &Path) -> Result<Self> {
        for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            if !Path::new(path).exists() {
                bail!(
                    "{path} not found: the browser test needs Debian's {package}; \
                     run `apt-get install chromium chromium-driver`"
                );
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log_file = std::fs::File::create(log)?;
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .with_context(|| {
                format!("cannot start {CHROMEDRIVER} (apt-get install chromium chromium-driver)")
            })?;
        let mut driver = Self { child, port };
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = driver.child.try_wait()? {
                bail!("chromedriver exited with {status}; see {}", log.display());
            }
            ensure!(
                Instant::now() < deadline,
                "chromedriver did not listen on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(driver)
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
                "--disable-sync", "--window-size=900,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
        }
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        bail!("capabilities must be an object");
    };
    ClientBuilder::rustls()?
        .capabilities(capabilities)
        .connect(&driver.url())
        .await
        .context("cannot open a Chromium session through chromedriver (apt-get install chromium chromium-driver)")
}

/// Polls until `css` matches a displayed element.
async fn visible(c: &Client, css: &str) -> Result<Element> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(el) = c.find(Locator::Css(css)).await {
            if el.is_displayed().await.unwrap_or(false) {
                return Ok(el);
            }
        }
        if Instant::now() > deadline {
            let url = c
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            let error = text_of(c, "#error").await.unwrap_or_default();
            bail!("timed out waiting for {css} to be visible (at {url}, #error = {error:?})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls until the displayed element `css` has text containing `needle`; returns the text.
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

async fn text_of(c: &Client, css: &str) -> Result<String> {
    Ok(c.find(Locator::Css(css)).await?.text().await?)
}

async fn fill(c: &Client, css: &str, value: &str) -> Result<()> {
    let input = visible(c, css).await?;
    input.clear().await?;
    input.send_keys(value).await?;
    Ok(())
}

async fn click(c: &Client, css: &str) -> Result<()> {
    visible(c, css).await?.click().await?;
    Ok(())
}

/// Polls the outbox for a message to `destination` other than `previous`.
async fn message_for(
    outbox: &DevOutbox,
    destination: &str,
    previous: Option<&Message>,
) -> Result<Message> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(m) = outbox.latest_for(destination) {
            if previous != Some(&m) {
                return Ok(m);
            }
        }
        ensure!(
            Instant::now() < deadline,
            "no message to {destination} in the dev outbox"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The signed-in page shows `identity` in `field`, and the current session is marked.
async fn assert_signed_in(c: &Client, field: &str, identity: &str) -> Result<()> {
    visible(c, "#signed-in").await?;
    text_containing(c, field, identity).await?;
    text_containing(c, "#sessions li.current", "This device").await?;
    let id = text_of(c, "#user-id").await?;
    ensure!(!id.trim().is_empty(), "user id is empty");
    Ok(())
}

async fn sign_out(c: &Client, base: &str) -> Result<()> {
    click(c, "#sign-out").await?;
    visible(c, "#sign-in").await?;
    text_containing(c, "#notice", "signed out").await?;
    // A reload shows the sign-in form again: the session is gone.
    c.goto(base).await?;
    visible(c, "#sign-in").await?;
    ensure!(
        !c.find(Locator::Css("#signed-in"))
            .await?
            .is_displayed()
            .await?,
        "still signed in after sign-out"
    );
    Ok(())
}

fn artifacts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/artifacts")
}

/// Saves a screenshot as `target/artifacts/<name>` (workspace root).
async fn screenshot(c: &Client, name: &str) -> Result<()> {
    let dir = artifacts_dir();
    std::fs::create_dir_all(&dir)?;
    let png = c.screenshot().await?;
    let path = dir.join(name);
    std::fs::write(&path, png).with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("screenshot: {}", path.display());
    Ok(())
}

async fn email_code(c: &Client, base: &str, outbox: &DevOutbox) -> Result<()> {
    c.goto(base).await?;
    visible(c, "#sign-in").await?;
    text_containing(c, "#dev-banner", "nothing is really sent").await?;
    screenshot(c, "demo-sign-in.png").await?;

    // A malformed address is explained.
    fill(c, "#email", "not-an-email").await?;
    click(c, "#send-email-code").await?;
    text_containing(c, "#error", "doesn't look right").await?;

    fill(c, "#email", "Ada@Example.com").await?;
    click(c, "#send-email-code").await?;
    visible(c, "#code-screen").await?;
    text_containing(c, "#code-destination", "Ada@Example.com").await?;
    text_containing(c, "#countdown", "You can resend in").await?;
    ensure!(
        !visible(c, "#resend").await?.is_enabled().await?,
        "Resend must wait for the countdown"
    );
    let message = message_for(outbox, "ada@example.com", None).await?;

    // A wrong code shows the error and keeps the code screen.
    let wrong = if message.code == "zzzzzz" {
        "yyyyyy"
    } else {
        "zzzzzz"
    };
    fill(c, "#code", wrong).await?;
    click(c, "#verify-code").await?;
    text_containing(c, "#error", "That code is wrong").await?;
    visible(c, "#code-screen").await?;
    screenshot(c, "demo-wrong-code.png").await?;

    fill(c, "#code", &message.code).await?;
    click(c, "#verify-code").await?;
    assert_signed_in(c, "#user-email", "ada@example.com").await?;
    ensure!(
        !c.find(Locator::Css("#error")).await?.is_displayed().await?,
        "error still shown after sign-in"
    );

    screenshot(c, "demo-signed-in.png").await?;

    // A reload keeps the session (cookie).
    c.refresh().await?;
    assert_signed_in(c, "#user-email", "ada@example.com").await?;

    sign_out(c, base).await
}

async fn phone_code(c: &Client, base: &str, outbox: &DevOutbox) -> Result<()> {
    c.goto(base).await?;
    fill(c, "#phone", "5551234567").await?;
    click(c, "#send-phone-code").await?;
    text_containing(c, "#error", "international format").await?;

    fill(c, "#phone", "+1 555 123 4567").await?;
    click(c, "#send-phone-code").await?;
    visible(c, "#code-screen").await?;
    let message = message_for(outbox, "+15551234567", None).await?;
    fill(c, "#code", &message.code).await?;
    click(c, "#verify-code").await?;
    assert_signed_in(c, "#user-phone", "+15551234567").await?;
    c.refresh().await?;
    assert_signed_in(c, "#user-phone", "+15551234567").await?;

    click(c, "#sign-out-all").await?;
    visible(c, "#sign-in").await?;
    text_containing(c, "#notice", "Signed out everywhere").await?;
    c.goto(base).await?;
    visible(c, "#sign-in").await?;
    Ok(())
}

async fn magic_link(c: &Client, base: &str, outbox: &DevOutbox) -> Result<()> {
    c.goto(base).await?;
    fill(c, "#magic-email", "grace@example.com").await?;
    click(c, "#send-magic-link").await?;
    visible(c, "#magic-sent").await?;
    text_containing(c, "#magic-destination", "grace@example.com").await?;
    let message = message_for(outbox, "grace@example.com", None).await?;
    let link = message
        .link
        .ok_or_else(|| anyhow!("magic-link message without a link"))?;
    ensure!(
        link.starts_with(&format!("{base}/auth/verify?token=")),
        "unexpected link {link}"
    );

    // A mail scanner fetching the link (GET, no script) must not use it up.
    let scanned = reqwest::get(&link).await?;
    ensure!(
        scanned.status().is_success(),
        "GET {link}: {}",
        scanned.status()
    );
    ensure!(
        scanned.headers().get("set-cookie").is_none(),
        "GET of the link set a cookie"
    );

    c.goto(&link).await?;
    assert_signed_in(c, "#user-email", "grace@example.com").await?;
    let url = c.current_url().await?;
    ensure!(
        url.path() == "/" && url.query().is_none(),
        "token left in the address bar: {url}"
    );
    c.refresh().await?;
    assert_signed_in(c, "#user-email", "grace@example.com").await?;

    // The link works once.
    c.goto(&link).await?;
    text_containing(c, "#error", "invalid or was already used").await?;
    assert_signed_in(c, "#user-email", "grace@example.com").await?;

    sign_out(c, base).await
}

/// The dev outbox page lists what was "sent" and says that nothing really was.
async fn outbox_page(c: &Client, base: &str) -> Result<()> {
    c.goto(&format!("{base}/dev/outbox")).await?;
    text_containing(c, "#dev-banner", "Nothing is really").await?;
    text_containing(c, "#outbox", "grace@example.com").await?;
    text_containing(c, "#outbox", "+15551234567").await?;
    Ok(())
}

/// Too many sends to one address: the page says how long to wait (from `Retry-After`).
async fn rate_limited(c: &Client, base: &str) -> Result<()> {
    c.goto(base).await?;
    for _ in 0..SEND_LIMIT {
        fill(c, "#email", "busy@example.com").await?;
        click(c, "#send-email-code").await?;
        visible(c, "#code-screen").await?;
        click(c, "#back").await?;
    }
    fill(c, "#email", "busy@example.com").await?;
    click(c, "#send-email-code").await?;
    let text = text_containing(c, "#error", "Too many attempts. Please wait").await?;
    ensure!(
        text.contains("minutes") || text.contains("seconds"),
        "no wait time in {text:?}"
    );
    visible(c, "#sign-in").await?;
    Ok(())
}

async fn scenarios(c: &Client, base: &str, outbox: &DevOutbox) -> Result<()> {
    email_code(c, base, outbox)
        .await
        .context("scenario: email code")?;
    phone_code(c, base, outbox)
        .await
        .context("scenario: phone code")?;
    magic_link(c, base, outbox)
        .await
        .context("scenario: magic link")?;
    outbox_page(c, base)
        .await
        .context("scenario: dev outbox page")?;
    rate_limited(c, base)
        .await
        .context("scenario: rate limited")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_in_a_real_browser() -> Result<()> {
    let tmp = TempDir::new("browser")?;
    let outbox = DevOutbox::quiet();
    let mut cfg = DemoConfig::dev_sqlite(&format!(
        "sqlite://{}?mode=rwc",
        tmp.0.join("demo.db").display()
    ));
    cfg.delivery = DemoDelivery::DevOutbox(outbox.clone());
    cfg.auth.rate_limits.send_per_identifier = RateLimit::new(SEND_LIMIT, Duration::from_secs(900));
    let demo = build_app(cfg).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(serve(demo.router, listener));

    let driver = ChromeDriver::start(&tmp.0.join("chromedriver.log"))?;
    let profile = tmp.0.join("profile");
    std::fs::create_dir_all(&profile)?;
    let client = open_browser(&driver, &profile).await?;

    let outcome = scenarios(&client, &base, &outbox).await;
    if outcome.is_err() {
        if let Ok(png) = client.screenshot().await {
            let dir = artifacts_dir();
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(dir.join("demo-failure.png"), png);
        }
    }
    let _ = client.close().await;
    drop(driver);
    server.abort();
    outcome
}
