//! End-to-end browser test: the demo in-process (temp SQLite file, dev outbox), driven
//! through headless Chromium by chromedriver.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`apt-get install chromium chromium-driver`);
//! without them this test fails, it never skips. All scenarios run in one test, one after
//! the other, in one browser (the machine is small).

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, ensure, Context, Result};
use axum::extract::Request;
use axum::middleware::{self, Next};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use futureauth::delivery::{DevOutbox, Message, Purpose};
use futureauth::sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use futureauth::RateLimit;
use futureauth_demo::{build_app, serve, DemoConfig, DemoDelivery};
use reqwest::StatusCode;
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const WAIT: Duration = Duration::from_secs(15);
/// Codes one address may get per window in this test (lowered to reach the limit quickly).
const SEND_LIMIT: u32 = 3;
/// Wrong guesses a code survives: the SDK's default `max_otp_attempts`, which this test keeps.
const MAX_ATTEMPTS: usize = 5;
/// Where the front end keeps the pending code screen across reloads.
const PENDING_KEY: &str = "futureauth-demo.pending-code";
/// What the front end says when a code has had too many wrong guesses.
const TOO_MANY_TRIES: &str = "Too many wrong tries for this code";

/// What the scenarios share: the browser, the app and what the test can see of it.
struct Env {
    c: Client,
    /// A second browser profile (another device): its own cookies.
    c2: Client,
    base: String,
    outbox: DevOutbox,
    /// A second connection to the demo's SQLite file, to age codes.
    db: SqlitePool,
    /// How many `POST /api/auth/verify-otp` the app has answered so far.
    verifies: Arc<AtomicUsize>,
}

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

async fn displayed(c: &Client, css: &str) -> Result<bool> {
    Ok(c.find(Locator::Css(css)).await?.is_displayed().await?)
}

/// Polls until the button `css` is displayed and enabled.
async fn enabled(c: &Client, css: &str) -> Result<Element> {
    let deadline = Instant::now() + WAIT;
    loop {
        let button = visible(c, css).await?;
        if button.is_enabled().await.unwrap_or(false) {
            return Ok(button);
        }
        ensure!(
            Instant::now() < deadline,
            "timed out waiting for {css} to be enabled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls until exactly `n` elements match `css`.
async fn count_of(c: &Client, css: &str, n: usize) -> Result<()> {
    let deadline = Instant::now() + WAIT;
    loop {
        let found = c.find_all(Locator::Css(css)).await?.len();
        if found == n {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "timed out waiting for {n} matches of {css}; found {found}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Types `code` on the code screen and presses Verify; returns once the app has answered
/// that request, so that the message shown next is about this code, not the one before.
async fn submit_code(env: &Env, code: &str) -> Result<()> {
    let c = &env.c;
    let before = env.verifies.load(Ordering::SeqCst);
    fill(c, "#code", code).await?;
    enabled(c, "#verify-code").await?.click().await?;
    let deadline = Instant::now() + WAIT;
    while env.verifies.load(Ordering::SeqCst) == before {
        ensure!(
            Instant::now() < deadline,
            "the app never answered the code {code:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Everything in the page's `sessionStorage` and `localStorage`, as JSON text.
async fn web_storage(c: &Client) -> Result<String> {
    let dump = c
        .execute(
            "const dump = (s) => { const o = {}; \
               for (let i = 0; i < s.length; i++) o[s.key(i)] = s.getItem(s.key(i)); \
               return o; }; \
             return JSON.stringify({ session: dump(sessionStorage), local: dump(localStorage) });",
            vec![],
        )
        .await?;
    dump.as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("storage dump is not a string: {dump}"))
}

/// The pending code screen the front end remembers for reloads, if any.
async fn pending_code_screen(c: &Client) -> Result<Option<String>> {
    let value = c
        .execute(
            "return sessionStorage.getItem(arguments[0]);",
            vec![json!(PENDING_KEY)],
        )
        .await?;
    Ok(value.as_str().map(str::to_string))
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

/// The demo's link opens the SDK's landing page: a scanner's GET uses nothing; in the
/// browser that asked, its button signs in and lands on the app with no token in the address.
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
        link.starts_with(&format!("{base}/api/auth/magic-link?token=")),
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

    // The browser that asked gets the plain button.
    c.goto(&link).await?;
    click(c, "#sign-in").await?;
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
    text_containing(c, "h1", "no longer works").await?;
    c.goto(base).await?;
    assert_signed_in(c, "#user-email", "grace@example.com").await?;

    sign_out(c, base).await
}

/// Two browser profiles, as a laptop and a phone: the link asked for in the first and
/// opened in the second signs in the first once the number it shows is typed in the
/// second; a wrong number signs in neither and cancels the link; the second is never
/// signed in. Then the code from the same email, typed where the link was asked for.
async fn cross_device(env: &Env) -> Result<()> {
    let (laptop, phone, base, outbox) = (&env.c, &env.c2, env.base.as_str(), &env.outbox);
    let email = "cross@example.com";
    laptop.goto(base).await?;
    fill(laptop, "#magic-email", email).await?;
    click(laptop, "#send-magic-link").await?;
    visible(laptop, "#magic-sent").await?;
    let first = message_for(outbox, email, None).await?;
    let number = wait_for_number(laptop).await?;

    // Opened on the phone: who asked, and a number to type; a wrong one cancels the link.
    phone.goto(first.link.as_deref().context("a link")?).await?;
    text_containing(phone, "h1", "other device").await?;
    text_containing(phone, "main", "Chrome on Linux").await?;
    let wrong = if number == "99" {
        "10".to_string()
    } else {
        (number.parse::<u8>()? + 1).to_string()
    };
    fill(phone, "#number", &wrong).await?;
    click(phone, "#approve").await?;
    text_containing(phone, "h1", "did not match").await?;
    screenshot(phone, "magic-link-mismatch.png").await?;
    // The dead end leads back to the app.
    click(phone, "#back-to-app").await?;
    visible(phone, "#sign-in").await?;
    // The asking page stops showing the dead number and code box, and offers a new link at
    // once (no countdown).
    text_containing(laptop, "#error", "no longer works").await?;
    visible(laptop, "#magic-sent").await?;
    ensure!(
        !displayed(laptop, "#link-match").await? && !displayed(laptop, "#link-code-form").await?,
        "the dead number or code box is still shown after a wrong number"
    );
    let resend = enabled(laptop, "#resend-link").await?;
    ensure!(
        resend.text().await?.contains("Send a new link"),
        "the asking page does not offer a new link"
    );
    screenshot(laptop, "demo-magic-link-dead.png").await?;

    // A new link, and the right number: the laptop signs in by itself, the phone does not.
    resend.click().await?;
    visible(laptop, "#link-match").await?;
    visible(laptop, "#link-code-form").await?;
    let second = message_for(outbox, email, Some(&first)).await?;
    let number = wait_for_number_other_than(laptop, &number).await?;
    screenshot(laptop, "demo-magic-link-waiting.png").await?;
    phone
        .goto(second.link.as_deref().context("a link")?)
        .await?;
    visible(phone, "#number").await?;
    screenshot(phone, "magic-link-approve.png").await?;
    fill(phone, "#number", &number).await?;
    click(phone, "#approve").await?;
    text_containing(phone, "h1", "Approved").await?;
    screenshot(phone, "magic-link-approved.png").await?;
    assert_signed_in(laptop, "#user-email", email).await?;
    phone.goto(base).await?;
    visible(phone, "#sign-in").await?;
    sign_out(laptop, base).await?;

    // The code from the same email finishes the sign-in where the link was asked for.
    let email = "typed@example.com";
    fill(laptop, "#magic-email", email).await?;
    click(laptop, "#send-magic-link").await?;
    visible(laptop, "#magic-sent").await?;
    let message = message_for(outbox, email, None).await?;
    fill(
        laptop,
        "#link-code",
        &message.link_code.context("a code beside the link")?,
    )
    .await?;
    click(laptop, "#verify-link-code").await?;
    assert_signed_in(laptop, "#user-email", email).await?;
    sign_out(laptop, base).await
}

/// An app that requires same-browser links (`magic_link_same_browser`), in two profiles: the
/// second profile is offered approval only, and a sign-in it forces anyway (the form posted
/// with `action=sign_in`) is refused and leaves the link working in the first profile.
async fn same_browser_required(env: &Env, dir: &Path) -> Result<()> {
    let (laptop, phone) = (&env.c, &env.c2);
    let outbox = DevOutbox::quiet();
    let db_url = format!("sqlite://{}?mode=rwc", dir.join("strict.db").display());
    let mut cfg = DemoConfig::dev_sqlite(&db_url);
    cfg.delivery = DemoDelivery::DevOutbox(outbox.clone());
    cfg.auth.magic_link_same_browser = true;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let demo = build_app(cfg.serve_at(listener.local_addr()?)).await?;
    let server = tokio::spawn(serve(demo.router, listener));
    let outcome = async {
        let email = "strict@example.com";
        laptop.goto(&base).await?;
        fill(laptop, "#magic-email", email).await?;
        click(laptop, "#send-magic-link").await?;
        visible(laptop, "#magic-sent").await?;
        let link = message_for(&outbox, email, None)
            .await?
            .link
            .context("a link")?;
        phone.goto(&link).await?;
        visible(phone, "#number").await?;
        ensure!(
            phone.find(Locator::Css("#sign-in-here")).await.is_err(),
            "a same-browser app offered another browser a sign-in"
        );
        // Forced: the approval form re-aimed at a sign-in (WebDriver scripts pass the CSP).
        phone
            .execute(
                "const f = document.querySelector('form.approve');\
                 f.querySelector('input[name=action]').value = 'sign_in';\
                 f.submit();",
                vec![],
            )
            .await?;
        text_containing(phone, "h1", "browser you asked from").await?;
        phone.goto(&base).await?;
        visible(phone, "#sign-in").await?;
        // The link still works where it was asked for.
        laptop.goto(&link).await?;
        click(laptop, "#sign-in").await?;
        assert_signed_in(laptop, "#user-email", email).await?;
        sign_out(laptop, &base).await
    }
    .await;
    server.abort();
    outcome
}

/// The two-digit number the "check your inbox" screen shows.
async fn wait_for_number(c: &Client) -> Result<String> {
    wait_for_number_other_than(c, "··").await
}

async fn wait_for_number_other_than(c: &Client, old: &str) -> Result<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = text_of(c, "#match-number").await.unwrap_or_default();
        let text = text.trim();
        if text.len() == 2 && text.chars().all(|ch| ch.is_ascii_digit()) && text != old {
            return Ok(text.to_string());
        }
        ensure!(
            Instant::now() < deadline,
            "no new number on the page: {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The SDK's own landing page (a link sent without `callback_url` opens it): a scanner's
/// GETs use nothing up, the page takes the token out of the address bar, and its button
/// signs the person in and sends the browser to the app. The code in the same email is the
/// other way to finish, and dies with the link.
async fn sdk_landing_page(c: &Client, base: &str, outbox: &DevOutbox) -> Result<()> {
    let api = common::Api::new(base)?;
    api.post_ok(
        "/api/auth/send-magic-link",
        &json!({ "email": "lin@example.com" }),
    )
    .await?;
    let message = message_for(outbox, "lin@example.com", None).await?;
    let link = message.link.context("a link")?;
    ensure!(
        link.starts_with(&format!("{base}/api/auth/magic-link?token=")),
        "the link opens the landing page: {link}"
    );
    let code = message.link_code.context("a code beside the link")?;
    for _ in 0..2 {
        let scanned = reqwest::get(&link).await?;
        ensure!(scanned.status().is_success() && scanned.headers().get("set-cookie").is_none());
    }
    // The API client asked, so this browser is "another device": it may approve the asker
    // or sign in here instead.
    c.goto(&link).await?;
    visible(c, "#number").await?;
    let button = visible(c, "#sign-in-here").await?;
    let url = c.current_url().await?;
    ensure!(
        url.query().is_none(),
        "token left in the address bar: {url}"
    );
    screenshot(c, "demo-landing-page.png").await?;
    button.click().await?;
    assert_signed_in(c, "#user-email", "lin@example.com").await?;
    // The code from the same email is spent with the link.
    let late = api
        .post(format!("{base}/api/auth/verify-otp"))
        .header("origin", base)
        .json(&json!({ "email": "lin@example.com", "code": code }))
        .send()
        .await?;
    ensure!(
        late.status() == StatusCode::BAD_REQUEST,
        "the code outlived its link: {}",
        late.status()
    );
    sign_out(c, base).await
}

/// A callback URL that carries an attacker's own token besides the victim's (login CSRF
/// through the app's genuine email): the landing page signs nobody in and uses neither.
/// The SDK refuses such callbacks; this is the page's own line of defence.
async fn two_tokens(c: &Client, base: &str, outbox: &DevOutbox) -> Result<()> {
    let api = common::Api::new(base)?;
    let mut tokens = vec![];
    for who in ["mallory@example.com", "victim@example.com"] {
        let body = json!({ "email": who, "callback_url": format!("{base}/auth/verify") });
        api.post_ok("/api/auth/send-magic-link", &body).await?;
        tokens.push(message_for(outbox, who, None).await?.code);
    }
    let (attackers, victims) = (&tokens[0], &tokens[1]);
    c.goto(&format!(
        "{base}/auth/verify?token={attackers}&token={victims}"
    ))
    .await?;
    text_containing(c, "#error", "more than one token").await?;
    visible(c, "#sign-in").await?;
    c.goto(base).await?;
    visible(c, "#sign-in").await?;
    // Neither token was spent: each still signs its owner in.
    for token in [attackers, victims] {
        common::Api::new(base)?
            .post_ok("/api/auth/verify-magic-link", &json!({ "token": token }))
            .await?;
    }
    Ok(())
}

/// A reload on the code screen keeps it (destination and channel in `sessionStorage`, never
/// the code); "Use a different address" goes back to the form and forgets it.
async fn reload_on_code_screen(env: &Env) -> Result<()> {
    let c = &env.c;
    c.goto(&env.base).await?;
    fill(c, "#email", "Reload@Example.com").await?;
    click(c, "#send-email-code").await?;
    visible(c, "#code-screen").await?;
    let message = message_for(&env.outbox, "reload@example.com", None).await?;

    c.refresh().await?;
    visible(c, "#code-screen").await?;
    text_containing(c, "#code-destination", "Reload@Example.com").await?;
    text_containing(c, "#back", "Use a different address").await?;
    // The resend countdown carries on from the first send.
    text_containing(c, "#countdown", "You can resend in").await?;
    ensure!(
        !visible(c, "#resend").await?.is_enabled().await?,
        "Resend must still wait for the countdown after a reload"
    );
    let stored = web_storage(c).await?;
    ensure!(
        stored.contains("Reload@Example.com") && stored.contains("email"),
        "pending destination not remembered: {stored}"
    );
    ensure!(
        !stored.contains(&message.code),
        "the code was stored in the browser: {stored}"
    );
    screenshot(c, "demo-code-after-reload.png").await?;

    // The code from before the reload still signs in, and the pending screen is forgotten.
    submit_code(env, &message.code).await?;
    assert_signed_in(c, "#user-email", "reload@example.com").await?;
    let left = pending_code_screen(c).await?;
    ensure!(
        left.is_none(),
        "pending code screen kept after sign-in: {left:?}"
    );
    sign_out(c, &env.base).await?;

    // SMS too; "Use a different address" after a reload goes back to the form, number filled in.
    fill(c, "#phone", "+1 555 987 6543").await?;
    click(c, "#send-phone-code").await?;
    visible(c, "#code-screen").await?;
    c.refresh().await?;
    text_containing(c, "#code-destination", "+1 555 987 6543").await?;
    click(c, "#back").await?;
    visible(c, "#sign-in").await?;
    let phone = visible(c, "#phone").await?.prop("value").await?;
    ensure!(
        phone.as_deref() == Some("+1 555 987 6543"),
        "phone not filled in after going back: {phone:?}"
    );
    let left = pending_code_screen(c).await?;
    ensure!(
        left.is_none(),
        "pending code screen kept after going back: {left:?}"
    );
    c.refresh().await?;
    visible(c, "#sign-in").await?;
    ensure!(
        !displayed(c, "#code-screen").await?,
        "code screen came back after \"Use a different address\" and a reload"
    );
    Ok(())
}

/// Five wrong codes use the code up: the fifth wrong answer and the right code after it
/// say "too many tries", and nobody is signed in.
async fn too_many_tries(env: &Env) -> Result<()> {
    let c = &env.c;
    c.goto(&env.base).await?;
    fill(c, "#email", "tries@example.com").await?;
    click(c, "#send-email-code").await?;
    visible(c, "#code-screen").await?;
    let message = message_for(&env.outbox, "tries@example.com", None).await?;
    let wrong = if message.code == "zzzzzz" {
        "yyyyyy"
    } else {
        "zzzzzz"
    };
    for attempt in 1..=MAX_ATTEMPTS {
        submit_code(env, wrong).await?;
        let expected = if attempt < MAX_ATTEMPTS {
            "That code is wrong"
        } else {
            TOO_MANY_TRIES
        };
        text_containing(c, "#error", expected)
            .await
            .with_context(|| format!("wrong code #{attempt}"))?;
        visible(c, "#code-screen").await?;
    }
    text_containing(c, "#error", "Resend code").await?;
    // The code is used up: Resend works now, without waiting for the countdown.
    enabled(c, "#resend").await?;
    screenshot(c, "demo-too-many-tries.png").await?;

    submit_code(env, &message.code).await?;
    text_containing(c, "#error", TOO_MANY_TRIES)
        .await
        .context("the right code after too many tries")?;
    visible(c, "#code-screen").await?;
    // Not signed in: a reload comes back to the code screen, not to the signed-in page.
    c.refresh().await?;
    visible(c, "#code-screen").await?;
    ensure!(
        !displayed(c, "#signed-in").await?,
        "signed in with a used-up code"
    );
    click(c, "#back").await?;
    visible(c, "#sign-in").await?;
    Ok(())
}

/// A code past its expiry (aged in the database) is refused as expired.
async fn expired_code(env: &Env) -> Result<()> {
    let c = &env.c;
    c.goto(&env.base).await?;
    fill(c, "#email", "late@example.com").await?;
    click(c, "#send-email-code").await?;
    visible(c, "#code-screen").await?;
    let message = message_for(&env.outbox, "late@example.com", None).await?;

    // SQLite keeps timestamps as INTEGER milliseconds since the Unix epoch.
    let a_minute_ago =
        i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis())? - 60_000;
    let aged = futureauth::sqlx::query(
        "UPDATE verification SET expires_at = ?1 WHERE identifier = ?2 AND kind = 'otp'",
    )
    .bind(a_minute_ago)
    .bind("late@example.com")
    .execute(&env.db)
    .await?
    .rows_affected();
    ensure!(aged == 1, "expected 1 code to age, aged {aged}");

    submit_code(env, &message.code).await?;
    text_containing(c, "#error", "That code has expired").await?;
    visible(c, "#code-screen").await?;
    enabled(c, "#resend").await?;
    screenshot(c, "demo-code-expired.png").await?;

    // Resend gets a fresh code, which signs in.
    click(c, "#resend").await?;
    text_containing(c, "#notice", "A new code is on its way").await?;
    let fresh = message_for(&env.outbox, "late@example.com", Some(&message)).await?;
    submit_code(env, &fresh.code).await?;
    assert_signed_in(c, "#user-email", "late@example.com").await?;
    sign_out(c, &env.base).await
}

/// Signing out another session from the list: the same user also signs in with an HTTP
/// client; the browser lists both sessions, revokes the other one, and that client is out.
async fn revoke_other_session(env: &Env) -> Result<()> {
    let (c, base) = (&env.c, env.base.as_str());
    c.goto(base).await?;
    fill(c, "#email", "hopper@example.com").await?;
    click(c, "#send-email-code").await?;
    visible(c, "#code-screen").await?;
    let first = message_for(&env.outbox, "hopper@example.com", None).await?;
    submit_code(env, &first.code).await?;
    assert_signed_in(c, "#user-email", "hopper@example.com").await?;

    let other = common::Api::with_agent(base, "reqwest (futureauth-demo browser test)")?;
    other
        .post_ok(
            "/api/auth/send-otp",
            &json!({ "email": "hopper@example.com" }),
        )
        .await?;
    let second = message_for(&env.outbox, "hopper@example.com", Some(&first)).await?;
    other
        .post_ok(
            "/api/auth/verify-otp",
            &json!({ "email": "hopper@example.com", "code": second.code }),
        )
        .await?;
    let me = other.get_json("/api/me").await?;
    ensure!(me["user"]["email"] == "hopper@example.com", "/api/me: {me}");
    let other_id = me["session"]["id"]
        .as_str()
        .filter(|id| !id.is_empty() && !id.contains(['"', '\\']))
        .ok_or_else(|| anyhow!("unexpected session id in {me}"))?
        .to_string();
    let other_item = format!("#sessions li[data-session-id=\"{other_id}\"]");

    // The browser lists both sessions after a reload.
    c.refresh().await?;
    assert_signed_in(c, "#user-email", "hopper@example.com").await?;
    count_of(c, "#sessions li", 2).await?;
    text_containing(c, &other_item, "API client").await?;
    text_containing(c, "#sessions li:first-child", "This device").await?;
    ensure!(
        !displayed(c, "#sessions li.current button")
            .await
            .unwrap_or(false),
        "this device's session has its own sign-out button in the list"
    );
    screenshot(c, "demo-two-sessions.png").await?;

    click(c, &format!("{other_item} button")).await?;
    count_of(c, &other_item, 0).await?;
    count_of(c, "#sessions li", 1).await?;
    assert_signed_in(c, "#user-email", "hopper@example.com").await?;

    let me = other.get(format!("{base}/api/me")).send().await?;
    ensure!(
        me.status() == StatusCode::UNAUTHORIZED,
        "/api/me of the revoked session: {}",
        me.status()
    );
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

async fn scenarios(env: &Env) -> Result<()> {
    let (c, base, outbox) = (&env.c, env.base.as_str(), &env.outbox);
    email_code(c, base, outbox)
        .await
        .context("scenario: email code")?;
    reload_on_code_screen(env)
        .await
        .context("scenario: reload on the code screen")?;
    phone_code(c, base, outbox)
        .await
        .context("scenario: phone code")?;
    magic_link(c, base, outbox)
        .await
        .context("scenario: magic link")?;
    two_tokens(c, base, outbox)
        .await
        .context("scenario: a link with two tokens")?;
    sdk_landing_page(c, base, outbox)
        .await
        .context("scenario: the SDK's landing page")?;
    cross_device(env)
        .await
        .context("scenario: a link approved on another device")?;
    too_many_tries(env)
        .await
        .context("scenario: too many tries")?;
    expired_code(env).await.context("scenario: expired code")?;
    revoke_other_session(env)
        .await
        .context("scenario: revoke another session")?;
    outbox_page(c, base)
        .await
        .context("scenario: dev outbox page")?;
    rate_limited(c, base)
        .await
        .context("scenario: rate limited")?;
    Ok(())
}

/// Counts the answers to `POST /api/auth/verify-otp` in `verifies`.
fn count_verifies(router: axum::Router, verifies: Arc<AtomicUsize>) -> axum::Router {
    router.layer(middleware::from_fn(move |request: Request, next: Next| {
        let verifies = verifies.clone();
        async move {
            let is_verify = request.uri().path() == "/api/auth/verify-otp";
            let response = next.run(request).await;
            if is_verify {
                verifies.fetch_add(1, Ordering::SeqCst);
            }
            response
        }
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_in_a_real_browser() -> Result<()> {
    let started = Instant::now();
    let tmp = TempDir::new("browser")?;
    let outbox = DevOutbox::quiet();
    let db_url = format!("sqlite://{}?mode=rwc", tmp.0.join("demo.db").display());
    let mut cfg = DemoConfig::dev_sqlite(&db_url);
    cfg.delivery = DemoDelivery::DevOutbox(outbox.clone());
    cfg.auth.rate_limits.send_per_identifier = RateLimit::new(SEND_LIMIT, Duration::from_secs(900));
    // The scenarios send to one address several times within 30 s from one IP (loopback):
    // let the per-address limit above, not the resend throttle, be the one they meet.
    cfg.auth.rate_limits.send_throttle = RateLimit::new(SEND_LIMIT, Duration::from_secs(30));
    ensure!(
        cfg.auth.max_otp_attempts as usize == MAX_ATTEMPTS,
        "the SDK's default max_otp_attempts changed to {}",
        cfg.auth.max_otp_attempts
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let demo = build_app(cfg.serve_at(listener.local_addr()?)).await?;
    let db = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(SqliteConnectOptions::from_str(&db_url)?.busy_timeout(WAIT))
        .await?;
    let verifies = Arc::new(AtomicUsize::new(0));
    let server = tokio::spawn(serve(
        count_verifies(demo.router, verifies.clone()),
        listener,
    ));

    let driver = ChromeDriver::start(&tmp.0.join("chromedriver.log"))?;
    let profile = tmp.0.join("profile");
    std::fs::create_dir_all(&profile)?;
    let c = open_browser(&driver, &profile).await?;
    let profile2 = tmp.0.join("profile2");
    std::fs::create_dir_all(&profile2)?;
    let c2 = open_browser(&driver, &profile2).await?;
    let env = Env {
        c,
        c2,
        base,
        outbox,
        db,
        verifies,
    };

    let mut outcome = scenarios(&env).await;
    if outcome.is_ok() {
        outcome = same_browser_required(&env, &tmp.0)
            .await
            .context("scenario: same-browser links required");
    }
    if outcome.is_err() {
        if let Ok(png) = env.c.screenshot().await {
            let dir = artifacts_dir();
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(dir.join("demo-failure.png"), png);
        }
    }
    let _ = env.c.clone().close().await;
    let _ = env.c2.clone().close().await;
    env.db.close().await;
    drop(driver);
    server.abort();
    eprintln!("browser scenarios took {:.1?}", started.elapsed());
    outcome
}

/// The account page in a real browser (issue 21): change the email (code to the new
/// address, notice to the old one), add a phone and sign in with it, then delete the
/// account, which signs the browser out and leaves no user, session or code behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_page_in_a_real_browser() -> Result<()> {
    let tmp = TempDir::new("account")?;
    let outbox = DevOutbox::quiet();
    let db_url = format!("sqlite://{}?mode=rwc", tmp.0.join("demo.db").display());
    let mut cfg = DemoConfig::dev_sqlite(&db_url);
    cfg.delivery = DemoDelivery::DevOutbox(outbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let demo = build_app(cfg.serve_at(listener.local_addr()?)).await?;
    let db = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(SqliteConnectOptions::from_str(&db_url)?.busy_timeout(WAIT))
        .await?;
    let server = tokio::spawn(serve(demo.router, listener));
    let driver = ChromeDriver::start(&tmp.0.join("chromedriver.log"))?;
    let profile = tmp.0.join("profile");
    std::fs::create_dir_all(&profile)?;
    let c = open_browser(&driver, &profile).await?;
    let outcome = account_scenario(&c, &base, &outbox, &db).await;
    if outcome.is_err() {
        if let Ok(png) = c.screenshot().await {
            let dir = artifacts_dir();
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(dir.join("demo-account-failure.png"), png);
        }
    }
    let _ = c.close().await;
    db.close().await;
    drop(driver);
    server.abort();
    outcome
}

async fn account_scenario(
    c: &Client,
    base: &str,
    outbox: &DevOutbox,
    db: &SqlitePool,
) -> Result<()> {
    const OLD: &str = "grace@example.com";
    const NEW: &str = "grace.hopper@example.com";
    const PHONE: &str = "+15557654321";
    // Sign in by email code.
    c.goto(base).await?;
    fill(c, "#email", OLD).await?;
    click(c, "#send-email-code").await?;
    let code = message_for(outbox, OLD, None).await?;
    fill(c, "#code", &code.code).await?;
    click(c, "#verify-code").await?;
    assert_signed_in(c, "#user-email", OLD).await?;

    // Change the email: a code to the new address, a notice to the old one.
    let notices_before = outbox
        .messages()
        .iter()
        .filter(|e| e.message.destination == OLD)
        .count();
    fill(c, "#new-email", NEW).await?;
    click(c, "#send-change-email").await?;
    visible(c, "#confirm-change-form").await?;
    text_containing(c, "#change-destination", NEW).await?;
    let to_new = message_for(outbox, NEW, None).await?;
    let notices = outbox
        .messages()
        .iter()
        .filter(|e| e.message.destination == OLD)
        .count();
    ensure!(
        notices == notices_before + 1,
        "the old address got no notice"
    );
    // The notice is a notice (no code, the new address masked); the new address's code
    // says it confirms an address.
    let notice = outbox
        .latest_for(OLD)
        .context("no notice to the old address")?;
    ensure!(
        notice.purpose == Some(Purpose::AddressChangeNotice)
            && notice.code.is_empty()
            && notice.new_address.as_deref() == Some("g***@example.com"),
        "the old address got no proper notice: {notice:?}"
    );
    ensure!(
        to_new.purpose == Some(Purpose::ConfirmAddress),
        "the new address's code is not a confirm-address code: {to_new:?}"
    );
    screenshot(c, "demo-account-change-email.png").await?;
    // The dev outbox page, as a developer reads it, in a second window.
    let account = c.window().await?;
    let outbox_window = c.new_window(true).await?;
    c.switch_to_window(outbox_window.handle).await?;
    c.goto(&format!("{base}/dev/outbox")).await?;
    text_containing(c, "#outbox", "Email notice: new address asked for").await?;
    text_containing(c, "#outbox", "No code · new address g***@example.com").await?;
    text_containing(c, "#outbox", "Email code (confirm new address)").await?;
    screenshot(c, "demo-account-outbox-notice.png").await?;
    c.close_window().await?;
    c.switch_to_window(account).await?;
    // With app_url the code travels beside a confirm link (the link is tested in
    // futureauth's tests/accounts.rs); the person types the code here.
    let code = to_new.link_code.clone().unwrap_or(to_new.code.clone());
    fill(c, "#change-code", &code).await?;
    click(c, "#confirm-change").await?;
    text_containing(c, "#notice", "Your email is now").await?;
    text_containing(c, "#user-email", NEW).await?;

    // Add a phone: the code goes to the phone; then the phone signs in too.
    fill(c, "#new-phone", PHONE).await?;
    click(c, "#send-add-phone").await?;
    visible(c, "#confirm-change-form").await?;
    let to_phone = message_for(outbox, PHONE, None).await?;
    fill(c, "#change-code", &to_phone.code).await?;
    click(c, "#confirm-change").await?;
    text_containing(c, "#user-phone", PHONE).await?;
    text_containing(c, "#notice", "sign in with").await?;
    screenshot(c, "demo-account-phone-added.png").await?;

    // Delete the account: asks first, then signs out; nothing of it is left.
    click(c, "#delete-account").await?;
    visible(c, "#confirm-delete-box").await?;
    screenshot(c, "demo-account-delete-confirm.png").await?;
    click(c, "#confirm-delete").await?;
    visible(c, "#sign-in").await?;
    text_containing(c, "#notice", "Your account is deleted").await?;
    screenshot(c, "demo-account-deleted.png").await?;
    c.refresh().await?;
    visible(c, "#sign-in").await?;
    let users: i64 = futureauth::sqlx::query_scalar("SELECT COUNT(*) FROM \"user\"")
        .fetch_one(db)
        .await?;
    let sessions: i64 = futureauth::sqlx::query_scalar("SELECT COUNT(*) FROM session")
        .fetch_one(db)
        .await?;
    ensure!(
        users == 0 && sessions == 0,
        "left behind: {users} users, {sessions} sessions"
    );
    Ok(())
}
