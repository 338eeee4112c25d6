//! The delivery server: accepted sends/s on Postgres (each `202` means durably queued) and
//! its memory. The server runs in a child process of its own (this binary, `server-child`),
//! so that its RSS is its own; a fake Resend in this process answers the deliveries.

use std::num::NonZeroU32;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use axum::routing::post;
use axum::{Json, Router};
use futureauth_server::service::projects::create_project_with;
use futureauth_server::service::settings::{ProjectName, ProjectSettings};
use futureauth_server::Config;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::load::{self, Stats};

/// The child: starts the server on `database_url` with Resend at `resend_url`, prints
/// `READY <url> <secret key>`, and runs until its stdin closes (the parent is done or gone).
pub async fn child(database_url: String, resend_url: String) -> Result<()> {
    let mut config = Config::default();
    config.database.database_url = Some(database_url.clone());
    config.providers.resend.resend_api_key = Some("re_bench".into());
    config.providers.resend.resend_api_url = resend_url;
    config.limits.limit_per_destination = NonZeroU32::MAX;
    config.limits.limit_per_project_per_minute = NonZeroU32::MAX;
    let store = futureauth_server::store::Store::connect(&database_url).await?;
    let settings = ProjectSettings {
        name: Some(ProjectName::parse("Bench").map_err(anyhow::Error::msg)?),
        ..ProjectSettings::default()
    };
    let created = create_project_with(&store, None, settings).await?;
    drop(store);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = futureauth_server::start(&config, listener).await?;
    println!("READY {} {}", server.url(), created.secret_key);
    let mut sink = Vec::new();
    tokio::io::stdin().read_to_end(&mut sink).await?;
    server.abort();
    Ok(())
}

/// The server's measurement.
pub struct ServerRun {
    pub sends: Stats,
    pub idle_rss_kib: u64,
    pub peak_rss_kib: u64,
    pub delivered: u64,
}

fn status_kib(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

async fn fake_resend() -> Result<(String, Arc<AtomicU64>)> {
    let delivered = Arc::new(AtomicU64::new(0));
    let count = delivered.clone();
    let app = Router::new().route(
        "/emails",
        post(move || {
            count.fetch_add(1, Ordering::Relaxed);
            async { Json(json!({ "id": "re_bench" })) }
        }),
    );
    Ok((crate::apps::serve(app).await?, delivered))
}

async fn ready_line(child: &mut Child) -> Result<(String, String)> {
    let stdout = child.stdout.take().context("child stdout")?;
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(60),
        BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .context("the server did not start within 60 s")??;
    let mut parts = line.split_whitespace();
    match (parts.next(), parts.next(), parts.next()) {
        (Some("READY"), Some(url), Some(key)) => Ok((url.to_string(), key.to_string())),
        _ => bail!("the server child said {line:?}"),
    }
}

/// Starts the server child on `database_url`, measures idle RSS, fires unique sends for
/// `duration` from `concurrency` tasks, then reads its peak RSS.
pub async fn measure(
    database_url: &str,
    http: &reqwest::Client,
    duration: Duration,
    concurrency: usize,
) -> Result<ServerRun> {
    let (resend, delivered) = fake_resend().await?;
    let mut child = Command::new(std::env::current_exe()?)
        .arg("server-child")
        .arg(database_url)
        .arg(&resend)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().context("child pid")?;
    let (url, key) = ready_line(&mut child).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss_kib = status_kib(pid, "VmRSS:")?;

    let (send, sent_by) = (format!("{url}/api/v1/otp/send"), http.clone());
    let sends = load::run(duration, concurrency, move |i| {
        let request = sent_by.post(send.clone()).bearer_auth(&key).json(&json!({
            "channel": "email",
            "destination": format!("u{i}@bench.test"),
            "code": "123456",
        }));
        load::expect(request, 202)
    })
    .await?;
    let peak_rss_kib = status_kib(pid, "VmHWM:")?;
    drop(child.stdin.take());
    if tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .is_err()
    {
        child.kill().await?;
    }
    Ok(ServerRun {
        sends,
        idle_rss_kib,
        peak_rss_kib,
        delivered: delivered.load(Ordering::Relaxed),
    })
}
