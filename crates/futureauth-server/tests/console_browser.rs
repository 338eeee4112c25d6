//! The console end to end in headless Chromium (chromedriver): a server with no provider
//! configured (dev outbox) and a fresh SQLite file; an operator added with the CLI signs in
//! with a code from the dev outbox, creates a project, copies its key from the page, the
//! `futureauth` SDK sends a code with that key, and the delivery shows up in the log and the
//! chart. Also: rotation and the end of its overlap (the old key then gets 401), settings
//! errors, members, audit, another project's 404.
//!
//! Needs Debian's `chromium` and `chromium-driver`; without them this test fails, it never
//! skips. Screenshots: `target/artifacts/console-*.png`.

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context, Result};
use common::*;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use futureauth::sqlx::sqlite::SqlitePoolOptions;
use futureauth::{FutureAuth, FutureAuthConfig, OtpChannel};
use futureauth_server::clock::UnixMillis;
use futureauth_server::store::{MessageStatus, ProviderEvent};
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const WAIT: Duration = Duration::from_secs(15);
const OPERATOR: &str = "ada@example.com";

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Result<Self> {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "futureauth-console-{tag}-{}-{nanos}",
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

struct ChromeDriver {
    child: Child,
    port: u16,
}

impl ChromeDriver {
    fn start(log: &Path) -> Result<Self> {
        for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            if !Path::new(path).exists() {
                bail!("{path} not found: install Debian's {package}");
            }
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

async fn open_browser(driver: &ChromeDriver, profile: &Path) -> Result<Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let capabilities = json!({
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--window-size=1280,1000",
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
            bail!("timed out waiting for {css} (at {url})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reloads until the page's `css` element contains `needle`.
async fn reload_until(c: &Client, css: &str, needle: &str) -> Result<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(el) = c.find(Locator::Css(css)).await {
            let text = el.html(false).await.unwrap_or_default();
            if text.contains(needle) {
                return Ok(text);
            }
        }
        ensure!(
            Instant::now() < deadline,
            "{css} never contained {needle:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        c.refresh().await?;
    }
}

/// Polls (page may still be loading) until `css` has text containing `needle`.
async fn text_containing(c: &Client, css: &str, needle: &str) -> Result<String> {
    let deadline = Instant::now() + WAIT;
    let mut last = String::new();
    loop {
        if let Ok(el) = c.find(Locator::Css(css)).await {
            last = el.text().await.unwrap_or_default();
            if last.contains(needle) {
                return Ok(last);
            }
        }
        ensure!(
            Instant::now() < deadline,
            "{css} never contained {needle:?}: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn screenshot(c: &Client, name: &str) -> Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/artifacts");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(name);
    std::fs::write(&path, c.screenshot().await?)?;
    eprintln!("screenshot: {}", path.display());
    Ok(())
}

async fn fill(c: &Client, css: &str, text: &str) -> Result<()> {
    let el = visible(c, css).await?;
    el.clear().await?;
    el.send_keys(text).await?;
    Ok(())
}

async fn click(c: &Client, css: &str) -> Result<()> {
    visible(c, css).await?.click().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_signs_in_creates_a_project_and_watches_a_delivery() -> Result<()> {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = db.store().await;
    // The CLI adds the first operator.
    let out = cli(&store, &["futureauth-server", "operator", "add", OPERATOR]).await;
    assert!(out.contains(OPERATOR), "{out}");
    // No provider keys: everything goes to the dev outbox, like a first run.
    let config = fast_config(&db);
    let server = TestServer::start(&db, &config).await;
    let base = server.server.url();
    let outbox = server
        .server
        .state
        .delivery
        .dev_outbox()
        .context("dev outbox")?
        .clone();

    let tmp = TempDir::new("browser")?;
    let driver = ChromeDriver::start(&tmp.0.join("chromedriver.log"))?;
    let c = open_browser(&driver, &tmp.0.join("profile")).await?;
    let result = scenario(&c, &base, &server, &outbox).await;
    if result.is_err() {
        let _ = screenshot(&c, "console-failure.png").await;
    }
    c.close().await?;
    result
}

async fn scenario(
    c: &Client,
    base: &str,
    server: &TestServer,
    outbox: &futureauth_server::provider::DevOutbox,
) -> Result<()> {
    // `/` → `/dashboard` → sign-in page.
    c.goto(base).await?;
    visible(c, "#email").await?;
    ensure!(c.current_url().await?.path() == "/dashboard/login");
    screenshot(c, "console-sign-in.png").await?;
    fill(c, "#email", OPERATOR).await?;
    click(c, "button[value=code]").await?;
    visible(c, "#code").await?;
    let deadline = Instant::now() + WAIT;
    let code = loop {
        if let Some(e) = outbox.entries().into_iter().find(|e| e.to == OPERATOR) {
            break e
                .subject
                .unwrap_or_default()
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
        }
        ensure!(Instant::now() < deadline, "no code in the dev outbox");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    screenshot(c, "console-code.png").await?;
    fill(c, "#code", &code).await?;
    click(c, "form[action='/dashboard/login/verify'] button").await?;
    visible(c, "#create-project").await?;
    screenshot(c, "console-projects-empty.png").await?;

    // Create a project and copy its key from the page.
    fill(c, "#name", "Acme Shop").await?;
    click(c, "#create-project button").await?;
    let secret = visible(c, "#secret").await?;
    let key = secret.prop("value").await?.unwrap_or_default();
    ensure!(key.starts_with("vx_sec_") && key.len() == 47, "key {key:?}");
    click(c, "#copy").await?;
    let label = visible(c, "#copy").await?.text().await?;
    ensure!(label.contains("Copied"), "copy button says {label:?}");
    screenshot(c, "console-key.png").await?;
    let project_url = c
        .find(Locator::Css(".secret-card a.btn"))
        .await?
        .attr("href")
        .await?
        .context("continue link")?;

    // The app: the futureauth SDK with HttpDelivery pointed at this server and that key.
    let app_db = SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await?;
    let app = FutureAuth::new(
        app_db,
        FutureAuthConfig {
            api_url: base.to_owned(),
            secret_key: key.clone(),
            project_name: "Acme Shop".into(),
            ..FutureAuthConfig::default()
        },
    );
    app.ensure_tables().await?;
    app.send_otp(OtpChannel::Email, "jane@example.com").await?;

    // The delivery appears in the log (masked) and in the chart.
    c.goto(&format!("{base}{project_url}")).await?;
    reload_until(c, "#deliveries", "pill-sent").await?;
    let chart = visible(c, "#chart").await?.html(false).await?;
    ensure!(chart.contains("data-status=\"sent\""), "chart: {chart}");
    screenshot(c, "console-overview.png").await?;
    c.goto(&format!("{base}{project_url}/deliveries")).await?;
    let rows = visible(c, "#deliveries").await?.text().await?;
    ensure!(rows.contains("ja***@example.com") && !rows.contains("jane@example.com"));
    screenshot(c, "console-deliveries.png").await?;
    click(c, "#deliveries tbody tr a").await?;
    text_containing(c, "#timeline", "Attempt 1: accepted by the provider").await?;
    // The provider then reports it delivered, and later a complaint (as its status webhooks
    // would; tests/webhooks.rs checks those routes): the page shows where it got to.
    let delivery_url = c.current_url().await?;
    let message_id = delivery_url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .context("message id in the URL")?
        .to_owned();
    for (state, reason, at) in [
        (MessageStatus::Delivered, None, 1_000),
        (
            MessageStatus::Complained,
            Some("abuse report (feedback loop)"),
            2_000,
        ),
    ] {
        let event = ProviderEvent {
            provider: "resend",
            provider_message_id: format!("dev_{message_id}"),
            event_key: format!("evt_{}", state.as_str()),
            state,
            reason: reason.map(str::to_owned),
            occurred_at: UnixMillis::now() + Duration::from_millis(at),
        };
        futureauth_server::service::provider_events::record(
            server.store(),
            &event,
            UnixMillis::now(),
        )
        .await?;
    }
    c.goto(delivery_url.as_str()).await?;
    text_containing(c, "#timeline", "Delivered to the recipient (resend)").await?;
    text_containing(c, "#timeline", "abuse report (feedback loop)").await?;
    let status = visible(c, ".facts .pill").await?.text().await?;
    ensure!(status == "complained", "status pill: {status}");
    screenshot(c, "console-delivery.png").await?;

    // Webhook & test mode: an invalid URL is refused next to its field; a webhook's secret
    // is shown once; test mode lists its destinations.
    c.goto(&format!("{base}{project_url}/integrations")).await?;
    fill(c, "#url", "ftp://app.example.com/hooks").await?;
    click(c, "#webhook-form button").await?;
    text_containing(c, "#error-url", "https://").await?;
    c.find(Locator::Css("#url")).await?.clear().await?;
    fill(c, "#url", "http://127.0.0.1:9/hooks/futureauth").await?;
    click(c, "#webhook-form button").await?;
    let secret = visible(c, "#webhook-secret pre").await?.text().await?;
    ensure!(secret.starts_with("whsec_"), "secret shown once: {secret}");
    fill(c, "#destinations", "Review@Example.com\n+12015550100").await?;
    fill(c, "#code", "424242").await?;
    click(c, "#test-mode-form button").await?;
    visible(c, "#saved").await?;
    let listed = visible(c, "#destinations")
        .await?
        .prop("value")
        .await?
        .unwrap_or_default();
    ensure!(
        listed == "review@example.com\n+12015550100",
        "normalised: {listed:?}"
    );
    let project_id = project_url.rsplit('/').next().context("project id")?;
    ensure!(
        server.store().test_mode(project_id).await?.is_some(),
        "test mode saved"
    );
    c.goto(&format!("{base}{project_url}/integrations")).await?;
    ensure!(
        c.find_all(Locator::Css("#webhook-secret"))
            .await?
            .is_empty(),
        "the secret is shown only once"
    );
    screenshot(c, "console-integrations.png").await?;

    // Rotate with a one-hour overlap: the old key keeps working.
    c.goto(&format!("{base}{project_url}")).await?;
    visible(c, "#rotate-form").await?;
    c.find(Locator::Css("#overlap option[value='3600']"))
        .await?
        .click()
        .await?;
    click(c, "#rotate-form button").await?;
    let new_key = visible(c, "#secret")
        .await?
        .prop("value")
        .await?
        .unwrap_or_default();
    ensure!(new_key.starts_with("vx_sec_") && new_key != key);
    text_containing(c, ".note", "1 hour").await?;
    app.send_otp(OtpChannel::Email, "jim@example.com").await?;
    c.goto(&format!("{base}{project_url}")).await?;
    let keys = visible(c, "#keys").await?.html(false).await?;
    ensure!(keys.contains("data-state=\"expiring\"") && keys.contains("works until"));
    screenshot(c, "console-rotated.png").await?;

    // Rotate again with an overlap of 2 s (an option the test adds; the server takes any
    // number of seconds up to 30 days): the previous key works until then, then gets 401.
    let send_with = |k: String| {
        let http = server.http.clone();
        let url = format!("{base}/api/v1/otp/send");
        async move {
            http.post(url)
                .bearer_auth(k)
                .json(&json!({"channel": "email", "destination": "overlap@example.com", "code": "123456", "project_name": "Acme Shop"}))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    };
    c.execute(
        "document.querySelector('#overlap').add(new Option('2 seconds', '2', true, true));",
        vec![],
    )
    .await?;
    click(c, "#rotate-form button").await?;
    text_containing(c, ".note", "2 seconds").await?;
    let rotated_at = Instant::now();
    let during = send_with(new_key.clone()).await?;
    ensure!(
        during == 202,
        "during the overlap the previous key gets {during}"
    );
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(rotated_at.elapsed())).await;
    let after = send_with(new_key.clone()).await?;
    ensure!(
        after == 401,
        "after the overlap the previous key gets {after}"
    );

    // Settings: a bad callback URL is flagged next to its field.
    c.goto(&format!("{base}{project_url}/settings")).await?;
    fill(c, "#callback_url", "ftp://files.example.com/cb").await?;
    fill(c, "#allowed_origins", "http://localhost:3000").await?;
    fill(c, "#sms_countries", "US, CA, XX").await?;
    fill(c, "#sms_per_hour", "0").await?;
    click(c, "#settings-form button[type=submit]").await?;
    text_containing(c, "#error-callback_url", "http or https").await?;
    text_containing(c, "#error-sms_countries", "ISO 3166-1").await?;
    text_containing(c, "#error-sms_per_hour", "1 to 1000000").await?;
    screenshot(c, "console-settings.png").await?;
    c.execute(
        "document.getElementById('sms_countries').scrollIntoView({block: 'center'})",
        vec![],
    )
    .await?;
    screenshot(c, "console-settings-sms.png").await?;
    fill(c, "#callback_url", "https://shop.example.com/auth/magic").await?;
    fill(c, "#sms_countries", "US, CA, DE").await?;
    fill(c, "#sms_per_hour", "200").await?;
    click(c, "#settings-form button[type=submit]").await?;
    visible(c, ".flash").await?;
    let project_id = project_url.rsplit('/').next().unwrap_or_default();
    let saved = server
        .store()
        .get_project(project_id)
        .await?
        .context("project")?;
    let countries: Vec<_> = saved.sms_countries.iter().map(|r| r.as_str()).collect();
    ensure!(countries == ["US", "CA", "DE"], "{countries:?}");
    ensure!(saved.sms_caps.per_hour == Some(200));

    // Message wording with a live preview (typed, not yet saved).
    c.goto(&format!("{base}{project_url}/messages")).await?;
    text_containing(c, "#preview-sms", "4f7k2q is your Acme Shop sign-in code").await?;
    fill(
        c,
        "#sms_text",
        "{{ code }} is your code for {{ project }} — welcome back!",
    )
    .await?;
    text_containing(
        c,
        "#preview-sms",
        "4f7k2q is your code for Acme Shop — welcome back!",
    )
    .await?;
    fill(c, "#email_subject", "Your {{ project }} code: {{ code }}").await?;
    text_containing(c, "#preview-subject", "Your Acme Shop code: 4f7k2q").await?;
    screenshot(c, "console-messages.png").await?;
    click(c, "#templates-form button[type=submit]").await?;
    visible(c, ".flash").await?;

    // Members and the audit log.
    c.goto(&format!("{base}{project_url}/members")).await?;
    fill(c, "#invite-email", "grace@example.com").await?;
    click(c, "#invite-form button").await?;
    text_containing(c, "#members", "grace@example.com").await?;
    screenshot(c, "console-members.png").await?;
    c.goto(&format!("{base}{project_url}/audit")).await?;
    let audit = text_containing(c, "#audit", "member.invited").await?;
    for action in [
        "project.created",
        "key.rotated",
        "settings.changed",
        "member.invited",
    ] {
        ensure!(audit.contains(action), "{action} missing: {audit}");
    }
    ensure!(!audit.contains(&key) && !audit.contains(&new_key));
    screenshot(c, "console-audit.png").await?;

    // Another operator's project is a 404 for this one.
    let other =
        futureauth_server::service::console::add_operator(server.store(), "eve@example.com")
            .await?;
    let theirs =
        futureauth_server::service::console::create_project(server.store(), &other, "Eve's")
            .await?;
    c.goto(&format!("{base}/dashboard/projects/{}", theirs.project.id))
        .await?;
    let body = text_containing(c, "main", "404").await?;
    ensure!(!body.contains("Eve's"), "{body}");
    screenshot(c, "console-not-found.png").await?;

    // The projects list and the API tokens page.
    c.goto(&format!("{base}/dashboard")).await?;
    visible(c, "#projects").await?;
    screenshot(c, "console-projects.png").await?;
    c.goto(&format!("{base}/dashboard/account")).await?;
    fill(c, "#token-name", "CI deploys").await?;
    click(c, "#token-form button").await?;
    let token = visible(c, "#secret")
        .await?
        .prop("value")
        .await?
        .unwrap_or_default();
    ensure!(token.starts_with("vx_op_"));
    screenshot(c, "console-tokens.png").await?;
    let listed = server
        .http
        .get(format!("{base}/api/v1/projects"))
        .bearer_auth(&token)
        .send()
        .await?
        .json::<serde_json::Value>()
        .await?;
    ensure!(listed[0]["name"] == "Acme Shop", "{listed}");

    // Forged forms, in the real browser. A page on another origin (same site: another port of
    // 127.0.0.1, so the Lax cookie goes along) posts a form with this operator's real CSRF
    // token, as if it had leaked: the Origin check alone refuses it.
    c.goto(&format!("{base}/dashboard")).await?;
    let csrf = c
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("input[name=csrf]"))
        .await?
        .prop("value")
        .await?
        .unwrap_or_default();
    ensure!(!csrf.is_empty());
    let attacker = attacker_page(&format!(
        r#"<form id="f" method="post" action="{base}/dashboard/projects">
             <input name="csrf" value="{csrf}"><input name="name" value="Forged cross-site">
           </form><script>document.getElementById("f").submit()</script>"#
    ))
    .await?;
    c.goto(&attacker).await?;
    text_containing(c, "main", "Cross-site request refused").await?;
    screenshot(c, "console-cross-site-refused.png").await?;
    // A form on the console's own page without its token (e.g. injected markup) is refused too.
    c.goto(&format!("{base}/dashboard")).await?;
    visible(c, "#projects").await?;
    c.execute(
        r#"const f = document.createElement("form");
           f.method = "post"; f.action = "/dashboard/projects";
           const i = document.createElement("input"); i.name = "name"; i.value = "Forged no token";
           f.appendChild(i); document.body.appendChild(f); f.submit();"#,
        vec![],
    )
    .await?;
    text_containing(c, "main", "This form has expired").await?;
    let names: Vec<String> = server
        .store()
        .list_projects()
        .await?
        .into_iter()
        .map(|p| p.name)
        .collect();
    ensure!(
        !names.iter().any(|n| n.starts_with("Forged")),
        "a forged form created a project: {names:?}"
    );
    Ok(())
}

/// Serves `body` as an HTML page on a loopback port of its own (another origin than the
/// console's) and returns its URL.
async fn attacker_page(body: &str) -> Result<String> {
    let html = format!("<!doctype html><html><body>{body}</body></html>");
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let html = html.clone();
            async move { axum::response::Html(html) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}/"))
}

/// A member (not an owner) in a real browser: every page opens, and the settings, messages
/// and webhook forms are shown read-only (disabled fields and buttons, a note saying owners
/// change them), so nothing a member clicks can submit a change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_sees_read_only_forms() -> Result<()> {
    const MEMBER: &str = "grace@example.com";
    let db = TestDb::new(Backend::Sqlite).await;
    let store = db.store().await;
    let (id, _) = acme(&store).await;
    operator_of(&store, &id, MEMBER, futureauth_server::store::Role::Member).await;
    let config = db_config(&db);
    let server = TestServer::start(&db, &config).await;
    let base = server.server.url();
    let outbox = server
        .server
        .state
        .delivery
        .dev_outbox()
        .context("dev outbox")?
        .clone();
    let tmp = TempDir::new("browser-member")?;
    let driver = ChromeDriver::start(&tmp.0.join("chromedriver.log"))?;
    let c = open_browser(&driver, &tmp.0.join("profile")).await?;
    let result = async {
        c.goto(&format!("{base}/dashboard/login")).await?;
        fill(&c, "#email", MEMBER).await?;
        click(&c, "button[value=code]").await?;
        visible(&c, "#code").await?;
        let deadline = Instant::now() + WAIT;
        let code = loop {
            if let Some(e) = outbox.entries().into_iter().find(|e| e.to == MEMBER) {
                break e
                    .subject
                    .unwrap_or_default()
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
            }
            ensure!(Instant::now() < deadline, "no code in the dev outbox");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        fill(&c, "#code", &code).await?;
        click(&c, "form[action='/dashboard/login/verify'] button").await?;
        visible(&c, "#create-project").await?;
        for (page, field, button) in [
            ("settings", "#name", "#settings-form button[type=submit]"),
            (
                "messages",
                "#email_subject",
                "#templates-form button[type=submit]",
            ),
            (
                "integrations",
                "#webhook-form input[name=url]",
                "#webhook-form button[type=submit]",
            ),
        ] {
            c.goto(&format!("{base}/dashboard/projects/{id}/{page}"))
                .await?;
            let input = visible(&c, field).await?;
            ensure!(
                !input.is_enabled().await?,
                "{page}: {field} is editable for a member"
            );
            let submit = c.find(Locator::Css(button)).await?;
            ensure!(!submit.is_enabled().await?, "{page}: a member can submit");
            ensure!(
                c.find(Locator::Css(".owners-only")).await.is_ok(),
                "{page}: no note that owners change it"
            );
        }
        c.goto(&format!("{base}/dashboard/projects/{id}/settings"))
            .await?;
        screenshot(&c, "console-member-settings.png").await?;
        let project = server.store().get_project(&id).await?.context("project")?;
        ensure!(project.name == "Acme", "nothing changed");
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = screenshot(&c, "console-member-failure.png").await;
    }
    c.close().await?;
    result
}

/// The W3C WebDriver virtual authenticator of a session (chromedriver's
/// `/session/{id}/webauthn/authenticator` endpoints), as the demo's passkeys_browser.rs.
struct Authenticator {
    url: String,
}

impl Authenticator {
    async fn add(driver: &ChromeDriver, c: &Client) -> Result<Self> {
        let session = c.session_id().await?.context("no WebDriver session")?;
        let base = format!(
            "http://127.0.0.1:{}/session/{session}/webauthn/authenticator",
            driver.port
        );
        let answer: serde_json::Value = reqwest::Client::new()
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

    async fn credentials(&self) -> Result<Vec<serde_json::Value>> {
        let answer: serde_json::Value = reqwest::get(format!("{}/credentials", self.url))
            .await?
            .json()
            .await?;
        Ok(answer["value"].as_array().cloned().unwrap_or_default())
    }
}

/// Runs a Chrome DevTools command through chromedriver (`goog/cdp/execute`).
async fn cdp(
    driver: &ChromeDriver,
    c: &Client,
    cmd: &str,
    params: serde_json::Value,
) -> Result<()> {
    let session = c.session_id().await?.context("no WebDriver session")?;
    let resp = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{}/session/{session}/goog/cdp/execute",
            driver.port
        ))
        .json(&json!({ "cmd": cmd, "params": params }))
        .send()
        .await?;
    ensure!(resp.status().is_success(), "{cmd}: {}", resp.text().await?);
    Ok(())
}

/// Signs in on the console's sign-in page with a code from the dev outbox.
async fn sign_in_by_code(
    c: &Client,
    outbox: &futureauth_server::provider::DevOutbox,
    email: &str,
) -> Result<()> {
    let count = |outbox: &futureauth_server::provider::DevOutbox, email: &str| {
        outbox
            .entries()
            .into_iter()
            .filter(|e| e.to == email)
            .count()
    };
    let before = count(outbox, email);
    fill(c, "#email", email).await?;
    click(c, "button[value=code]").await?;
    visible(c, "#code").await?;
    let deadline = Instant::now() + WAIT;
    let code = loop {
        // Newest first: the new code once there are more than `before`.
        let entries: Vec<_> = outbox
            .entries()
            .into_iter()
            .filter(|e| e.to == email)
            .collect();
        if let Some(e) = entries
            .into_iter()
            .next()
            .filter(|_| before < count(outbox, email))
        {
            break e
                .subject
                .unwrap_or_default()
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
        }
        ensure!(Instant::now() < deadline, "no code in the dev outbox");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    fill(c, "#code", &code).await?;
    click(c, "form[action='/dashboard/login/verify'] button").await?;
    visible(c, "#create-project").await?;
    Ok(())
}

async fn sign_out(c: &Client) -> Result<()> {
    click(c, "form[action='/dashboard/logout'] button").await?;
    visible(c, "#email").await?;
    Ok(())
}

/// Waits until the browser is on `path`.
async fn at_path(c: &Client, path: &str) -> Result<()> {
    let deadline = Instant::now() + WAIT;
    loop {
        if c.current_url().await?.path() == path {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "never reached {path}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Passkeys in a real browser (a WebDriver virtual authenticator), on the console opened as
/// `http://localhost:<port>` (its relying party): an operator signs in by code, adds a
/// passkey on the Passkeys page, signs out, is signed in again by the email field's
/// autofill, signs out and in with the "Sign in with a passkey" button, renames and
/// deletes it (a deleted passkey is refused), and signs in by code again. On 127.0.0.1 the
/// button is not offered (a browser refuses the passkey there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_adds_and_uses_a_passkey() -> Result<()> {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = db.store().await;
    cli(&store, &["futureauth-server", "operator", "add", OPERATOR]).await;
    let config = db_config(&db);
    let server = TestServer::start(&db, &config).await;
    let base = format!("http://localhost:{}", server.server.addr.port());
    let outbox = server
        .server
        .state
        .delivery
        .dev_outbox()
        .context("dev outbox")?
        .clone();
    let tmp = TempDir::new("browser-passkeys")?;
    let driver = ChromeDriver::start(&tmp.0.join("chromedriver.log"))?;
    let c = open_browser(&driver, &tmp.0.join("profile")).await?;
    let result = async {
        let authenticator = Authenticator::add(&driver, &c).await?;
        // Not on 127.0.0.1: the button stays hidden there.
        c.goto(&format!("{}/dashboard/login", server.server.url()))
            .await?;
        visible(&c, "#email").await?;
        let hidden = c.find(Locator::Css("#passkey-sign-in")).await?;
        ensure!(!hidden.is_displayed().await?, "passkeys offered on 127.0.0.1");

        c.goto(&format!("{base}/dashboard/login")).await?;
        visible(&c, "#passkey-button").await?;
        screenshot(&c, "console-passkey-sign-in.png").await?;
        sign_in_by_code(&c, &outbox, OPERATOR).await?;
        let first_code = Instant::now();

        // Add a passkey from the nav's Passkeys page.
        click(&c, "nav a[href='/dashboard/account/passkeys']").await?;
        visible(&c, "#no-passkeys").await?;
        fill(&c, "#passkey-name", "Work laptop").await?;
        click(&c, "#add-passkey").await?;
        text_containing(&c, "#notice", "Passkey added").await?;
        let name = visible(&c, "#passkeys .passkey-name").await?;
        ensure!(name.prop("value").await?.as_deref() == Some("Work laptop"));
        let held = authenticator.credentials().await?;
        ensure!(held.len() == 1, "the authenticator holds {held:?}");
        screenshot(&c, "console-passkey-added.png").await?;

        // Sign out: the email field's autofill (conditional mediation) offers the passkey,
        // which the virtual authenticator accepts by itself.
        // (Signed out from the Passkeys page, so that reaching /dashboard means signed in.)
        click(&c, "form[action='/dashboard/logout'] button").await?;
        at_path(&c, "/dashboard").await?;
        visible(&c, "#create-project").await?;

        // From now on no autofill (as if the operator ignored it): the button.
        cdp(
            &driver,
            &c,
            "Page.addScriptToEvaluateOnNewDocument",
            json!({ "source": "PublicKeyCredential.isConditionalMediationAvailable = async () => false;" }),
        )
        .await?;
        sign_out(&c).await?;
        click(&c, "#passkey-button").await?;
        visible(&c, "#create-project").await?;

        // Used, renamed (a form: Post/Redirect/Get), deleted.
        c.goto(&format!("{base}/dashboard/account/passkeys")).await?;
        let used = text_containing(&c, "#passkeys .last-used", "UTC").await?;
        ensure!(!used.contains("never"), "last used: {used}");
        fill(&c, "#passkeys .passkey-name", "Desk").await?;
        click(&c, "#passkeys .passkey-rename").await?;
        text_containing(&c, "#notice", "renamed").await?;
        let name = visible(&c, "#passkeys .passkey-name").await?;
        ensure!(name.prop("value").await?.as_deref() == Some("Desk"));
        screenshot(&c, "console-passkey-renamed.png").await?;
        click(&c, "#passkeys .passkey-delete").await?;
        c.accept_alert().await?;
        text_containing(&c, "#notice", "deleted").await?;
        visible(&c, "#no-passkeys").await?;
        screenshot(&c, "console-passkey-deleted.png").await?;

        // The deleted passkey (still in the authenticator) signs nobody in; a code does.
        sign_out(&c).await?;
        click(&c, "#passkey-button").await?;
        text_containing(&c, "#passkey-error", "not accepted").await?;
        ensure!(c.current_url().await?.path() == "/dashboard/login");
        screenshot(&c, "console-passkey-refused.png").await?;
        // The SDK sends one code per address and client per 30 s.
        tokio::time::sleep(Duration::from_secs(31).saturating_sub(first_code.elapsed())).await;
        sign_in_by_code(&c, &outbox, OPERATOR).await?;
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = screenshot(&c, "console-passkey-failure.png").await;
    }
    c.close().await?;
    result
}
