//! The demo delivering for real through a `futureauth-server` running in dev-outbox mode
//! (no Resend/Twilio keys): the SDK's HTTP delivery, the server's API and its outbox, end
//! to end. Both run in-process on SQLite files.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{ensure, Context, Result};
use futureauth::FutureAuthConfig;
use futureauth_demo::{build_app, serve, DemoConfig, DemoDatabase, DemoDelivery};
use futureauth_server::provider::outbox::OutboxEntry;
use futureauth_server::service::projects::create_project_with;
use futureauth_server::service::settings::{parse_callback, ProjectName, ProjectSettings};
use futureauth_server::store::Store;
use futureauth_server::RunningServer;
use reqwest::StatusCode;
use serde_json::{json, Value};

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls the server's dev outbox for a message to `to`.
async fn server_message(server: &RunningServer, to: &str) -> Result<OutboxEntry> {
    let outbox = server
        .state
        .delivery
        .dev_outbox()
        .context("the server is not in dev-outbox mode")?;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(e) = outbox.entries().into_iter().find(|e| e.to == to) {
            return Ok(e);
        }
        ensure!(
            Instant::now() < deadline,
            "no message to {to} reached the server's outbox"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_delivers_through_futureauth_server() -> Result<()> {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    let tmp = TempDir(std::env::temp_dir().join(format!(
        "futureauth-demo-server-{}-{nanos}",
        std::process::id()
    )));
    std::fs::create_dir_all(&tmp.0)?;

    // The demo's address first: the project's magic-link callback lives there.
    let demo_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", demo_listener.local_addr()?);

    // futureauth-server with no provider keys: the dev outbox.
    let server_db = format!("sqlite://{}?mode=rwc", tmp.0.join("server.db").display());
    let store = Store::connect(&server_db).await?;
    let callback = parse_callback(&format!("{base}/auth/verify")).map_err(anyhow::Error::msg)?;
    let settings = ProjectSettings {
        name: ProjectName::parse("FutureAuth Demo").ok(),
        callback_url: Some(callback),
        ..ProjectSettings::default()
    };
    let project = create_project_with(&store, None, settings).await?;
    let mut config = futureauth_server::Config::default();
    config.database.database_url = Some(server_db);
    config.delivery.workers = std::num::NonZeroUsize::new(1).expect("not zero");
    config.delivery.poll_interval_ms = 50;
    config.delivery.retry_base_ms = 50;
    let server_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = futureauth_server::start(&config, server_listener).await?;

    let demo = build_app(DemoConfig {
        database: DemoDatabase::Url(format!(
            "sqlite://{}?mode=rwc",
            tmp.0.join("demo.db").display()
        )),
        delivery: DemoDelivery::FutureAuthServer,
        auth: FutureAuthConfig {
            api_url: server.url(),
            secret_key: project.secret_key.clone(),
            project_name: "FutureAuth Demo".into(),
            cookie_secure: false,
            ..Default::default()
        },
    })
    .await?;
    ensure!(
        demo.outbox.is_none(),
        "real delivery must not use the SDK's dev outbox"
    );
    let app = tokio::spawn(serve(demo.router, demo_listener));

    let http = common::Api::new(&base)?;
    let outbox_page = http.get(format!("{base}/dev/outbox")).send().await?;
    ensure!(
        outbox_page.status() == StatusCode::NOT_FOUND,
        "demo /dev/outbox with real delivery"
    );
    let config: Value = http
        .get(format!("{base}/api/demo/config"))
        .send()
        .await?
        .json()
        .await?;
    ensure!(config["dev_outbox"] == false, "{config}");

    // Email code: the server renders "<code> is your <project> sign-in code".
    http.post_ok("/api/auth/send-otp", &json!({ "email": "ada@example.com" }))
        .await?;
    let email = server_message(&server, "ada@example.com").await?;
    let subject = email.subject.clone().unwrap_or_default();
    let code = subject
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    ensure!(
        email.text.contains(&code),
        "code {code:?} not in the email text: {email:?}"
    );
    http.post_ok(
        "/api/auth/verify-otp",
        &json!({ "email": "ada@example.com", "code": code }),
    )
    .await?;
    let me = http.get_json("/api/me").await?;
    ensure!(me["user"]["email"] == "ada@example.com", "{me}");
    http.post(format!("{base}/api/auth/sign-out"))
        .json(&json!({}))
        .send()
        .await?
        .error_for_status()?;

    // Magic link: the browser's Origin is the demo's, the link points back at /auth/verify.
    http.post_ok(
        "/api/auth/send-magic-link",
        &json!({ "email": "grace@example.com", "callback_url": format!("{base}/auth/verify") }),
    )
    .await?;
    // No origins configured in the demo here: the server's per-project list decides, and
    // its refusal reaches the browser as 422 callback_not_allowed, not as a delivery failure.
    let refused = http
        .post(format!("{base}/api/auth/send-magic-link"))
        .header("origin", &base)
        .json(
            &json!({ "email": "victim@example.com", "callback_url": "https://evil.example/steal" }),
        )
        .send()
        .await?;
    ensure!(
        refused.status() == StatusCode::UNPROCESSABLE_ENTITY,
        "foreign callback: {}",
        refused.status()
    );
    let body: Value = refused.json().await?;
    ensure!(body["error"]["code"] == "callback_not_allowed", "{body}");

    let email = server_message(&server, "grace@example.com").await?;
    let prefix = format!("{base}/auth/verify?token=");
    let start = email
        .text
        .find(&prefix)
        .context("no link in the magic-link email")?;
    let link: String = email.text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    let token = link.trim_start_matches(&prefix).to_string();
    http.post_ok("/api/auth/verify-magic-link", &json!({ "token": token }))
        .await?;
    let me = http.get_json("/api/me").await?;
    ensure!(me["user"]["email"] == "grace@example.com", "{me}");

    // A German browser gets the German email: the SDK passes Accept-Language's first choice
    // as the wire's `locale`, the server renders that locale.
    let sent = http
        .post(format!("{base}/api/auth/send-otp"))
        .header("origin", &base)
        .header("accept-language", "de-AT,de;q=0.9,en;q=0.5")
        .json(&json!({ "email": "gertrud@example.com" }))
        .send()
        .await?;
    ensure!(
        sent.status() == StatusCode::OK,
        "German send: {}",
        sent.status()
    );
    let german = server_message(&server, "gertrud@example.com").await?;
    let subject = german.subject.clone().unwrap_or_default();
    ensure!(
        subject.contains("ist Ihr Anmeldecode für FutureAuth Demo"),
        "not the German email: {subject:?}"
    );

    app.abort();
    server.abort();
    store.close().await;
    Ok(())
}
